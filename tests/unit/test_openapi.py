"""The OpenAPI document's path templates: valid for a generator, whatever the routes match with."""

from __future__ import annotations

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
