"""The OpenAPI document's path templates: valid for a generator, whatever the routes match with."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from signaling.http.api import Endpoint
from signaling.http.openapi import build_openapi, path_template


def endpoint(path: str) -> Endpoint:
    return Endpoint("DELETE", path, "a route", None, None, 200, True, ())


@pytest.mark.parametrize(
    ("route", "template", "names"),
    [
        ("/api/consults", "/api/consults", []),
        ("/api/consults/{consult_id}", "/api/consults/{consult_id}", ["consult_id"]),
        (
            "/api/consults/{consult_id}/invitations/{user_id:\\d+}",
            "/api/consults/{consult_id}/invitations/{user_id}",
            ["consult_id", "user_id"],
        ),
        ("/a/{x:[0-9]{1,19}}/b/{y}", "/a/{x}/b/{y}", ["x", "y"]),
    ],
)
def test_a_route_regex_is_left_out_of_the_template(
    route: str, template: str, names: list[str]
) -> None:
    assert path_template(route) == (template, names)


def test_the_document_names_each_path_parameter_as_its_template_does() -> None:
    doc = build_openapi([endpoint("/api/consults/{consult_id}/invitations/{user_id:\\d+}")], "1")
    assert list(doc["paths"]) == ["/api/consults/{consult_id}/invitations/{user_id}"]
    parameters = doc["paths"]["/api/consults/{consult_id}/invitations/{user_id}"]["delete"][
        "parameters"
    ]
    assert [p["name"] for p in parameters] == ["consult_id", "user_id"]


def test_every_operation_declares_its_503_and_healthz_names_the_failing_part() -> None:
    from signaling.http.login import HealthOut

    health = Endpoint(
        "GET", "/healthz", "health", None, HealthOut, 200, False, (), unavailable_response=HealthOut
    )
    doc = build_openapi([endpoint("/api/consults/{consult_id}"), health], "1")
    api = doc["paths"]["/api/consults/{consult_id}"]["delete"]["responses"]["503"]
    assert api["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/ErrorOut"}
    assert "database_unavailable" in api["description"]
    healthz = doc["paths"]["/healthz"]["get"]["responses"]["503"]
    assert healthz["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/HealthOut"
    }


def test_query_parameters_come_from_the_query_model_with_their_types() -> None:
    from signaling.http.consults import ConsultSearchQuery

    doc = build_openapi([replace(endpoint("/api/consults"), query=ConsultSearchQuery)], "1")
    parameters = {p["name"]: p for p in doc["paths"]["/api/consults"]["delete"]["parameters"]}
    assert set(parameters) == {
        "status",
        "specialty",
        "institution",
        "from",
        "to",
        "recorded",
        "limit",
        "offset",
    }
    assert all(p["in"] == "query" and not p["required"] for p in parameters.values())
    status = parameters["status"]
    assert (status["style"], status["explode"], status["schema"]["type"]) == ("form", True, "array")
    assert status["schema"]["items"] == {"$ref": "#/components/schemas/ConsultStatus"}
    assert "ConsultStatus" in doc["components"]["schemas"]
    assert parameters["specialty"]["schema"]["type"] == "array"
    assert parameters["institution"]["schema"]["type"] == "integer"  # not `integer | null`
    assert parameters["from"]["schema"] == {"type": "string", "format": "date-time"}
    assert parameters["recorded"]["schema"] == {"type": "string", "enum": ["yes", "no"]}
    assert parameters["limit"]["schema"]["maximum"] >= parameters["limit"]["schema"]["minimum"]


def test_a_required_query_parameter_is_declared_required() -> None:
    from signaling.http.statistics import StatisticsQuery

    doc = build_openapi([replace(endpoint("/api/statistics"), query=StatisticsQuery)], "1")
    parameters = {p["name"]: p for p in doc["paths"]["/api/statistics"]["delete"]["parameters"]}
    assert {name for name, p in parameters.items() if p["required"]} == {"from", "to"}
    assert set(parameters) == {"from", "to", "institution", "specialty"}


def test_a_ranged_download_declares_the_range_header_206_and_416() -> None:
    ranged = replace(
        endpoint("/api/recordings/{recording_id}/media"),
        ranges=True,
        binary_response=("video/webm",),
    )
    operation = build_openapi([ranged], "1")["paths"]["/api/recordings/{recording_id}/media"][
        "delete"
    ]
    headers = [p for p in operation["parameters"] if p["in"] == "header"]
    assert [(h["name"], h["required"]) for h in headers] == [("Range", False)]
    responses = operation["responses"]
    assert "Content-Range" in responses["206"]["headers"]
    assert "video/webm" in responses["206"]["content"]
    assert "Content-Range" in responses["416"]["headers"]
    assert "range_not_satisfiable" in responses["416"]["description"]


def test_an_authenticated_operation_names_the_bearer_scheme() -> None:
    doc = build_openapi([endpoint("/api/consults")], "1")
    assert doc["paths"]["/api/consults"]["delete"]["security"] == [{"bearer": []}]
    assert doc["components"]["securitySchemes"]["bearer"] == {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "JWT",
    }


def test_the_handlers_read_their_query_through_the_documented_model() -> None:
    from aiohttp.test_utils import make_mocked_request

    from signaling.errors import ApiError
    from signaling.http.api import query_of
    from signaling.http.consults import ConsultSearchQuery
    from signaling.http.duty import RosterQuery

    def request(query: str) -> Any:
        return make_mocked_request("GET", "/api/x?" + query)

    roster = query_of(request("from=2026-11-23T09:00:00%2B08:00&to=&other=1"), RosterQuery)
    assert roster.from_ is not None and roster.from_.hour == 1  # read as UTC
    assert roster.to is None and roster.specialty is None  # empty counts as absent
    search = query_of(request("status=requested&status=accepted&limit=5"), ConsultSearchQuery)
    assert [s.value for s in search.status] == ["requested", "accepted"] and search.limit == 5
    with pytest.raises(ApiError) as refused:
        query_of(request("specialty=surgery"), RosterQuery)
    assert (refused.value.status, refused.value.code) == (422, "invalid_payload")


def test_a_route_regex_becomes_the_path_parameters_pattern() -> None:
    doc = build_openapi([endpoint("/api/consults/{consult_id}/invitations/{user_id:\\d+}")], "1")
    operation = doc["paths"]["/api/consults/{consult_id}/invitations/{user_id}"]["delete"]
    schemas = {p["name"]: p["schema"] for p in operation["parameters"]}
    assert schemas == {
        "consult_id": {"type": "string"},
        "user_id": {"type": "string", "pattern": "^(?:\\d+)$"},
    }
