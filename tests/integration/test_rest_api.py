"""The REST API against a real server: happy paths, and every bad request with its code."""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Any

import pytest

from signaling.http.login import storage_state
from teleconsult.config import MIN_FREE_DISK_MB, load_settings
from tests.support.server import RunningServer, in_hours


def booking(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "patient": {"name": "患者 Patient", "sex": "female", "age_years": 28},
        "specialty": "obstetrics",
        "reason": "review",
        "scheduled_at": in_hours(1),
        "intake": {"gestational_week": 30},
    }
    body.update(overrides)
    return body


def consult_count(server: RunningServer) -> int:
    return len(
        server.request("GET", "/api/consults", token=server.token("doctor.a")).body["consults"]
    )


def test_health_reports_the_database(server: RunningServer) -> None:
    assert server.request("GET", "/healthz").body == {
        "status": "ok",
        "database": "ok",
        "database_storage": "ok",
        "storage": "ok",
        "redis": "not_configured",
    }


def test_health_reports_recording_storage_below_its_free_space_threshold_as_low(
    tmp_path: Path,
) -> None:
    free_mb = shutil.disk_usage(tmp_path).free // (1024 * 1024)
    with RunningServer(
        env_overrides={"RECORDINGS_DIR": str(tmp_path), "MIN_FREE_DISK_MB": str(free_mb + 1024)},
        expect_healthy=False,
    ) as server:
        health = server.request("GET", "/healthz")
        # The SQLite database in the data directory is watched alike: low too on the same disk.
        same_disk = server.data_dir.stat().st_dev == tmp_path.stat().st_dev
        assert (health.status, health.body) == (
            503,
            {
                "status": "unavailable",
                "database": "ok",
                "database_storage": "low" if same_disk else "ok",
                "storage": "low",
                "redis": "not_configured",
            },
        )
        # Only the check says so: the server goes on serving.
        assert server.request("GET", "/api/me", token=server.token("doctor.a")).status == 200


def test_the_storage_check_reads_the_free_space_of_the_directory(tmp_path: Path) -> None:
    assert storage_state(tmp_path, 1) == "ok"
    assert storage_state(tmp_path, 10**9) == "low"  # a petabyte
    assert storage_state(tmp_path, 0) == "ok"  # 0: not checked
    assert storage_state(tmp_path / "missing", 1) == "unavailable"
    assert load_settings({}).min_free_disk_mb == MIN_FREE_DISK_MB
    assert load_settings({"MIN_FREE_DISK_MB": "5"}).min_free_disk_mb == 5


def test_login_returns_a_token_and_who_i_am(server: RunningServer) -> None:
    reply = server.request(
        "POST", "/api/auth/login", {"username": "obstetrician", "password": "demo-obstetrician"}
    )
    assert reply.status == 200
    assert reply.body["user"]["role"] == "specialist"
    assert reply.body["user"]["specialty"] == "obstetrics"
    me = server.request("GET", "/api/me", token=reply.body["token"])
    assert me.body["username"] == "obstetrician"


@pytest.mark.parametrize(
    "credentials",
    [
        {"username": "obstetrician", "password": "wrong"},
        {"username": "nobody", "password": "demo-nobody"},
    ],
)
def test_wrong_credentials_are_refused_alike(
    server: RunningServer, credentials: dict[str, str]
) -> None:
    reply = server.request("POST", "/api/auth/login", credentials)
    assert (reply.status, reply.body["code"]) == (401, "bad_credentials")
    assert reply.body["message"] == "wrong username or password"


def test_repeated_failed_logins_are_rate_limited() -> None:
    with RunningServer(env_overrides={"LOGIN_ATTEMPTS_PER_MINUTE": "2"}) as strict:
        wrong = {"username": "doctor.a", "password": "guess"}
        codes = [strict.request("POST", "/api/auth/login", wrong).body["code"] for _ in range(3)]
        assert codes == ["bad_credentials", "bad_credentials", "rate_limited"]
        right = {"username": "doctor.a", "password": "demo-doctor.a"}
        assert strict.request("POST", "/api/auth/login", right).status == 429


def test_failed_logins_from_one_address_are_rate_limited_across_usernames() -> None:
    env = {"LOGIN_ATTEMPTS_PER_ADDRESS_PER_MINUTE": "2", "PASSWORD_CHECKS_AT_ONCE": "2"}
    with RunningServer(env_overrides=env) as strict:
        codes = [
            strict.request("POST", "/api/auth/login", {"username": name, "password": "guess"}).body[
                "code"
            ]
            for name in ("doctor.a", "nobody", "obstetrician")
        ]
        assert codes == ["bad_credentials", "bad_credentials", "rate_limited"]


def test_booking_shows_up_in_the_specialists_queue(server: RunningServer) -> None:
    booked = server.request(
        "POST",
        "/api/consults",
        booking(intake={"gestational_week": 30}),
        token=server.token("doctor.a"),
    )
    assert booked.status == 201 and booked.body["status"] == "requested"
    assert booked.body["requesting_institution"]["name"].startswith("A县")
    queue = server.request(
        "GET", "/api/consults?status=requested", token=server.token("obstetrician")
    ).body["consults"]
    assert booked.body["id"] in [c["id"] for c in queue]
    other = server.request("GET", "/api/consults", token=server.token("paediatrician"))
    assert booked.body["id"] not in [c["id"] for c in other.body["consults"]]


def test_specialists_can_be_listed_by_specialty(server: RunningServer) -> None:
    reply = server.request(
        "GET", "/api/specialists?specialty=paediatrics", token=server.token("doctor.a")
    )
    assert [s["display_name"] for s in reply.body["specialists"]] == ["张伟 (儿科) Zhang Wei"]


@pytest.mark.parametrize(
    ("body", "status", "code", "field"),
    [
        ({**booking(), "reason": ""}, 422, "invalid_payload", "reason"),
        ({k: v for k, v in booking().items() if k != "patient"}, 422, "invalid_payload", "patient"),
        (booking(specialty="astrology"), 422, "invalid_payload", "specialty"),
        (booking(scheduled_at="2026-11-23T09:00:00"), 422, "invalid_payload", "scheduled_at"),
        (booking(scheduled_at="tomorrow"), 422, "invalid_payload", "scheduled_at"),
        (
            booking(patient={"name": "x", "sex": "female", "age_years": -3}),
            422,
            "invalid_payload",
            "patient.age_years",
        ),
        ({**booking(), "status": "live"}, 422, "invalid_payload", "status"),
        (booking(media_mode="relay"), 422, "invalid_payload", "media_mode"),
        (booking(specialist_id=99999), 422, "invalid_booking", None),
    ],
)
def test_a_bad_booking_is_refused_naming_the_field_and_nothing_is_stored(
    server: RunningServer,
    body: dict[str, Any],
    status: int,
    code: str,
    field: str | None,
) -> None:
    before = consult_count(server)
    reply = server.request("POST", "/api/consults", body, token=server.token("doctor.a"))
    assert (reply.status, reply.body["code"]) == (status, code)
    if field:
        assert reply.body["details"][0]["field"] == field
    assert consult_count(server) == before


def test_a_body_that_is_not_json_is_refused(server: RunningServer) -> None:
    reply = server.request(
        "POST", "/api/consults", raw=b"{patient:", token=server.token("doctor.a")
    )
    assert (reply.status, reply.body["code"]) == (400, "invalid_payload")


def test_an_oversized_body_is_refused_before_it_is_read(server: RunningServer) -> None:
    before = consult_count(server)
    huge = booking(intake={"notes": "x" * 300_000})
    reply = server.request("POST", "/api/consults", huge, token=server.token("doctor.a"))
    assert (reply.status, reply.body["code"]) == (413, "payload_too_large")
    assert consult_count(server) == before


def test_an_oversized_intake_form_is_refused(server: RunningServer) -> None:
    reply = server.request(
        "POST",
        "/api/consults",
        booking(intake={"notes": "x" * 40_000}),
        token=server.token("doctor.a"),
    )
    assert (reply.status, reply.body["code"]) == (413, "payload_too_large")


@pytest.mark.parametrize("username", ["obstetrician", "supervisor", "admin"])
def test_only_exam_room_doctors_book(server: RunningServer, username: str) -> None:
    reply = server.request("POST", "/api/consults", booking(), token=server.token(username))
    assert (reply.status, reply.body["code"]) == (403, "forbidden")


def test_an_exam_room_doctor_cannot_accept(server: RunningServer) -> None:
    consult = server.book(accept=False)
    reply = server.request(
        "POST", f"/api/consults/{consult['id']}/accept", {}, token=server.token("doctor.a")
    )
    assert (reply.status, reply.body["code"]) == (403, "forbidden")


def test_accepting_twice_is_a_conflict_naming_the_state(server: RunningServer) -> None:
    consult = server.book()
    reply = server.request(
        "POST", f"/api/consults/{consult['id']}/accept", {}, token=server.token("obstetrician")
    )
    assert (reply.status, reply.body["code"]) == (409, "illegal_transition")
    assert "accepted" in reply.body["message"]


def test_another_countys_doctor_cannot_see_a_consult(server: RunningServer) -> None:
    consult = server.book()
    reply = server.request("GET", f"/api/consults/{consult['id']}", token=server.token("doctor.b"))
    assert (reply.status, reply.body["code"]) == (403, "forbidden")
    listed = server.request("GET", "/api/consults", token=server.token("doctor.b"))
    assert consult["id"] not in [c["id"] for c in listed.body["consults"]]


def test_an_unknown_consult_is_not_found(server: RunningServer) -> None:
    reply = server.request("GET", f"/api/consults/{'0' * 32}", token=server.token("doctor.a"))
    assert (reply.status, reply.body["code"]) == (404, "not_found")


def test_declining_keeps_the_reason_in_the_record(server: RunningServer) -> None:
    consult = server.book(accept=False)
    reply = server.request(
        "POST",
        f"/api/consults/{consult['id']}/decline",
        {"reason": "请转儿科 please refer to paediatrics"},
        token=server.token("obstetrician"),
    )
    assert reply.body["status"] == "declined"
    assert reply.body["closing_note"] == "请转儿科 please refer to paediatrics"


def test_an_unknown_api_path_answers_json(server: RunningServer) -> None:
    reply = server.request("GET", "/api/nothing-here")
    assert (reply.status, reply.body["code"]) == (404, "not_found")


@pytest.mark.parametrize(
    "path",
    [
        "/../pyproject.toml",
        "/%2e%2e/pyproject.toml",
        "/js/..%2f..%2fpyproject.toml",
        "/..%5c..%5cpyproject.toml",
        "/vendor/%2e%2e/%2e%2e/rooms/consults/permissions.py",
    ],
)
def test_path_tricks_do_not_reach_files_outside_the_web_client(
    server: RunningServer, path: str
) -> None:
    reply = server.request("GET", path)
    assert reply.status in (403, 404)
    assert "teleconsult" not in str(reply.body) and "PERMISSIONS" not in str(reply.body)


def test_the_openapi_document_describes_every_endpoint(server: RunningServer) -> None:
    doc = server.request("GET", "/api/openapi.json").body
    assert doc["openapi"].startswith("3.")
    assert set(doc["paths"]) >= {
        "/healthz",
        "/api/auth/login",
        "/api/me",
        "/api/specialists",
        "/api/consults",
        "/api/consults/{consult_id}",
        "/api/consults/{consult_id}/accept",
        "/api/consults/{consult_id}/decline",
        "/api/consults/{consult_id}/cancel",
        "/api/consults/{consult_id}/end",
        "/api/consults/{consult_id}/audit",
        "/api/intake-forms",
        "/api/intake-forms/{specialty}",
        "/api/consults/{consult_id}/invitations/{user_id}",
    }
    for path, operations in doc["paths"].items():
        template_names = re.findall(r"\{([^}]*)\}", path)
        assert all(re.fullmatch(r"[a-z_]+", name) for name in template_names), path
        for op in operations.values():
            declared = [p["name"] for p in op.get("parameters", []) if p["in"] == "path"]
            assert declared == template_names, (path, declared)
    book = doc["paths"]["/api/consults"]["post"]
    assert book["requestBody"]["content"]["application/json"]["schema"]["$ref"].endswith(
        "BookConsultRequest"
    )
    assert "BookConsultRequest" in doc["components"]["schemas"]


def test_the_openapi_document_declares_query_parameters_and_the_media_range(
    server: RunningServer,
) -> None:
    doc = server.request("GET", "/api/openapi.json").body

    def parameters(path: str, method: str = "get") -> dict[tuple[str, str], dict[str, Any]]:
        declared = doc["paths"][path][method].get("parameters", [])
        return {(p["in"], p["name"]): p for p in declared}

    consults = parameters("/api/consults")
    assert {name for where, name in consults if where == "query"} == {
        "status",
        "institution",
        "specialty",
        "from",
        "to",
        "recorded",
        "limit",
        "offset",
    }
    assert consults["query", "status"]["explode"] is True
    assert consults["query", "specialty"]["explode"] is True
    assert {name for _, name in parameters("/api/statistics")} == {
        "from",
        "to",
        "institution",
        "specialty",
    }
    assert parameters("/api/statistics.csv") == parameters("/api/statistics")
    assert {name for _, name in parameters("/api/roster/shifts")} == {"from", "to", "specialty"}
    assert {name for _, name in parameters("/api/specialists")} == {"specialty"}
    media_path = "/api/recordings/{recording_id}/media"
    media = parameters(media_path)
    assert media["query", "access"]["required"] is True
    assert media["header", "Range"]["required"] is False
    responses = doc["paths"][media_path]["get"]["responses"]
    assert {"200", "206", "416"} <= set(responses)
    assert "Content-Range" in responses["206"]["headers"]
    assert "Content-Range" in responses["416"]["headers"]
    assert "security" not in doc["paths"][media_path]["get"]  # the link's `access` token instead
    assert doc["paths"]["/api/consults"]["get"]["security"] == [{"bearer": []}]


# ---- intake forms ---------------------------------------------------------------------------


def test_every_specialty_has_an_intake_form_with_labels_in_both_languages(
    server: RunningServer,
) -> None:
    reply = server.request("GET", "/api/intake-forms", token=server.token("doctor.a"))
    assert reply.status == 200
    forms = {f["specialty"]: f for f in reply.body["forms"]}
    assert len(forms) == 10
    assert forms["cardiology"]["form"] == "default"
    week = next(f for f in forms["obstetrics"]["fields"] if f["name"] == "gestational_week")
    assert week["type"] == "number" and (week["min"], week["max"], week["integer"]) == (4, 42, True)
    assert week["required"] is True
    assert week["label"] == {"zh-CN": "孕周", "en": "Gestational week"}
    assert week["unit"] == {"zh-CN": "周", "en": "weeks"}
    one = server.request(
        "GET", "/api/intake-forms/child_growth", token=server.token("obstetrician")
    )
    assert one.status == 200 and one.body == forms["child_growth"]


def test_intake_forms_need_a_token_and_a_known_specialty(server: RunningServer) -> None:
    assert server.request("GET", "/api/intake-forms").body["code"] == "token_missing"
    reply = server.request("GET", "/api/intake-forms/astrology", token=server.token("doctor.a"))
    assert (reply.status, reply.body["code"]) == (404, "not_found")


def test_a_booking_with_a_bad_intake_is_refused_field_by_field_and_nothing_is_stored(
    server: RunningServer,
) -> None:
    before = consult_count(server)
    bad = booking(intake={"gestational_week": 45, "fundal_height_cm": "tall", "bp": 120})
    reply = server.request("POST", "/api/consults", bad, token=server.token("doctor.a"))
    assert (reply.status, reply.body["code"]) == (422, "invalid_intake")
    assert [(d["field"], d["reason"]) for d in reply.body["details"]] == [
        ("intake.gestational_week", "above_max"),
        ("intake.fundal_height_cm", "not_a_number"),
        ("intake.bp", "unknown_field"),
    ]
    assert all(d["problem"] for d in reply.body["details"])
    assert consult_count(server) == before
    missing = server.request(
        "POST", "/api/consults", booking(intake={}), token=server.token("doctor.a")
    )
    assert missing.body["details"] == [
        {"field": "intake.gestational_week", "problem": "is required", "reason": "required"}
    ]
    assert consult_count(server) == before


def test_a_booking_with_a_good_intake_is_stored_and_returned(server: RunningServer) -> None:
    intake = {
        "birth_date": "2019-05-01",
        "height_cm": 101.5,
        "weight_kg": 15.2,
        "bone_age_years": 6,
    }
    reply = server.request(
        "POST",
        "/api/consults",
        booking(specialty="child_growth", intake=intake),
        token=server.token("doctor.a"),
    )
    assert reply.status == 201 and reply.body["intake"] == intake
    again = server.request(
        "GET", f"/api/consults/{reply.body['id']}", token=server.token("doctor.a")
    )
    assert again.body["intake"] == intake


def test_recording_media_with_only_a_bearer_token_says_the_link_is_needed(
    server: RunningServer,
) -> None:
    reply = server.request(
        "GET", f"/api/recordings/{'a' * 32}/media", token=server.token("doctor.a")
    )
    assert (reply.status, reply.body["code"]) == (401, "token_missing")
    assert "access=" in reply.body["message"]
    assert "Authorization" in reply.body["message"]
