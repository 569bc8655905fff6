"""The FHIR export against a real server: a consult booked, held and ended, exported and validated.

Validation uses `fhir.resources` (FHIR R4B models, the R4 line it ships; see docs/fhir.md).
"""

from __future__ import annotations

import json
import urllib.request
from typing import Any

from fhir.resources.R4B import get_fhir_model_class
from fhir.resources.R4B.bundle import Bundle

from tests.support.peer import Participant
from tests.support.server import RunningServer


def fhir_path(consult_id: str) -> str:
    return f"/api/consults/{consult_id}/fhir"


def resources(bundle: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    return [e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == kind]


def validate(bundle: dict[str, Any]) -> None:
    Bundle.model_validate(bundle)
    for entry in bundle["entry"]:
        get_fhir_model_class(entry["resource"]["resourceType"]).model_validate(entry["resource"])


async def ended_consult(server: RunningServer) -> dict[str, Any]:
    """Booked by doctor.a, accepted by the obstetrician, held (both joined) and ended."""
    consult = server.book()
    exam_room, specialist = Participant("exam room"), Participant("specialist")
    try:
        await exam_room.connect(server.url, server.token("doctor.a"))
        await specialist.connect(server.url, server.token("obstetrician"))
        assert (await exam_room.join(consult["id"]))["ok"]
        assert (await specialist.join(consult["id"]))["consult"]["status"] == "live"
        ended = server.request(
            "POST",
            f"/api/consults/{consult['id']}/end",
            {"conclusion": "每两周复查 review every two weeks"},
            token=server.token("obstetrician"),
        )
        assert ended.status == 200, ended.body
    finally:
        await exam_room.close()
        await specialist.close()
    result: dict[str, Any] = ended.body
    return result


async def test_a_supervisor_exports_a_valid_fhir_bundle(server: RunningServer) -> None:
    consult = await ended_consult(server)
    reply = server.request("GET", fhir_path(consult["id"]), token=server.token("supervisor"))
    assert reply.status == 200, reply.body
    bundle = reply.body
    validate(bundle)
    assert bundle["type"] == "collection"
    (appointment,) = resources(bundle, "Appointment")
    (encounter,) = resources(bundle, "Encounter")
    (communication,) = resources(bundle, "Communication")
    assert appointment["status"] == "fulfilled"
    assert encounter["status"] == "finished"
    assert encounter["class"]["code"] == "VR"
    assert set(encounter["period"]) == {"start", "end"}
    assert communication["payload"] == [{"contentString": "每两周复查 review every two weeks"}]
    (patient,) = resources(bundle, "Patient")
    assert patient["name"] == [{"text": "测试患者 Test Patient"}]
    full_urls = {e["fullUrl"] for e in bundle["entry"]}
    refs = {
        ref["reference"]
        for r in (appointment, encounter, communication)
        for ref in [
            *(p.get("actor") or p.get("individual") for p in r.get("participant", [])),
            r.get("subject"),
            r.get("serviceProvider"),
            r.get("sender"),
        ]
        if ref and "reference" in ref
    }
    assert refs and refs <= full_urls
    audit_codes = [e["type"]["code"] for e in resources(bundle, "AuditEvent")]
    assert audit_codes[:3] == ["consult.book", "consult.notified", "consult.accept"]
    assert audit_codes[-1] == "consult.exported"


def test_the_export_is_fhir_json_and_is_audited(server: RunningServer) -> None:
    consult = server.book(accept=False)
    request = urllib.request.Request(
        server.url + fhir_path(consult["id"]),
        headers={"Authorization": f"Bearer {server.token('doctor.a')}"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        assert response.status == 200
        assert response.headers["Content-Type"] == "application/fhir+json; charset=utf-8"
    trail = server.request(
        "GET", f"/api/consults/{consult['id']}/audit", token=server.token("supervisor")
    ).body["entries"]
    exported = [e for e in trail if e["action"] == "consult.exported"]
    assert len(exported) == 1
    me = server.request("GET", "/api/me", token=server.token("doctor.a")).body
    assert exported[0]["actor_id"] == me["id"]


def test_a_doctor_of_another_county_is_refused(server: RunningServer) -> None:
    consult = server.book()
    reply = server.request("GET", fhir_path(consult["id"]), token=server.token("doctor.b"))
    assert (reply.status, reply.body["code"]) == (403, "forbidden")
    trail = server.request(
        "GET", f"/api/consults/{consult['id']}/audit", token=server.token("supervisor")
    ).body["entries"]
    assert all(e["action"] != "consult.exported" for e in trail)


def test_an_unknown_consult_is_not_found(server: RunningServer) -> None:
    reply = server.request("GET", fhir_path("f" * 32), token=server.token("supervisor"))
    assert (reply.status, reply.body["code"]) == (404, "not_found")


def test_the_endpoint_is_in_the_openapi_document(server: RunningServer) -> None:
    document = server.request("GET", "/api/openapi.json").body
    assert "get" in document["paths"]["/api/consults/{consult_id}/fhir"]


def test_with_public_url_set_the_bundle_is_named_by_it_not_by_the_host_header() -> None:
    public = "https://teleconsult.hospital.example"
    with RunningServer(env_overrides={"PUBLIC_URL": public}) as server:
        consult = server.book(accept=False)
        request = urllib.request.Request(
            server.url + fhir_path(consult["id"]),
            headers={
                "Authorization": f"Bearer {server.token('doctor.a')}",
                "Host": "attacker.example",
            },
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            bundle = json.loads(response.read())
    systems = {
        identifier["system"]
        for entry in bundle["entry"]
        for identifier in entry["resource"].get("identifier", [])
    }
    assert systems and all(s.startswith(public + "/") for s in systems)
    assert "attacker.example" not in json.dumps(bundle)


def test_without_public_url_one_consult_has_one_identity_whichever_host_it_is_exported_through(
    server: RunningServer,
) -> None:
    """Identifiers and resource names come from the installation's id in the data directory,
    not from the `Host` header; only the media and content links follow the address reached."""
    consult = server.book(accept=False)

    def exported(host: str) -> dict[str, Any]:
        request = urllib.request.Request(
            server.url + fhir_path(consult["id"]),
            headers={"Authorization": f"Bearer {server.token('doctor.a')}", "Host": host},
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            bundle: dict[str, Any] = json.loads(response.read())
        return bundle

    def identities(bundle: dict[str, Any]) -> list[Any]:
        return [
            (entry["fullUrl"], entry["resource"].get("identifier"))
            for entry in bundle["entry"]
            if entry["resource"]["resourceType"] != "AuditEvent"  # the exports themselves
        ] + [bundle["identifier"]]

    one, other = exported("one.example"), exported("other.example:8443")
    assert identities(one) == identities(other)
    systems = {i["system"] for e in one["entry"] for i in e["resource"].get("identifier", [])}
    assert systems and all(s.startswith("urn:teleconsult:") for s in systems)
    assert "one.example" not in json.dumps(one)
    validate(one)
