"""The FHIR export, on plain objects: every status maps, and the bundle validates.

Validation uses the `fhir.resources` models of FHIR R4B (4.3.0), the R4-line release that
`fhir.resources` 8 ships; every resource and element the export uses is the same in R4 (4.0.1).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import timedelta
from typing import Any

import pytest
from fhir.resources.R4B import get_fhir_model_class
from fhir.resources.R4B.bundle import Bundle
from pydantic import ValidationError

from rooms.calls.recordings import Recording, TrackSource
from rooms.consults.audit import AuditEntry
from rooms.consults.consult import Consult, PatientSummary, Sex
from rooms.consults.errors import PermissionDenied
from rooms.consults.lifecycle import ConsultStatus
from rooms.records.attachments import Attachment
from rooms.records.notes import Note
from rooms.reporting.export_service import ExportService
from rooms.reporting.fhir import (
    APPOINTMENT_STATUS,
    ENCOUNTER_STATUS,
    EXT_SHA256,
    EXT_TIMELINE_OFFSET,
    V3_ACT_CODE,
    consult_bundle,
)
from tests.unit.fakes import (
    ADMIN,
    DOCTOR_A,
    DOCTOR_B,
    EVERYONE,
    INSTITUTIONS,
    NOON,
    OBSTETRICIAN,
    OBSTETRICIAN_2,
    PAEDIATRICIAN,
    SUPERVISOR,
    InMemoryStore,
    consult_in,
)

BASE = "https://tc.example.org"
PEOPLE = {u.id: u for u in EVERYONE}
S = ConsultStatus

# The mapping asked for, written out by hand (the specification, not derived from the code).
EXPECTED_APPOINTMENT = {
    S.REQUESTED: "proposed",
    S.ACCEPTED: "booked",
    S.WAITING: "arrived",
    S.LIVE: "arrived",
    S.ENDED: "fulfilled",
    S.DECLINED: "cancelled",
    S.CANCELLED: "cancelled",
    S.EXPIRED: "noshow",
}
# FHIR R4 value sets (required bindings) the mapped codes must come from.
APPOINTMENT_CODES = {
    "proposed",
    "pending",
    "booked",
    "arrived",
    "fulfilled",
    "cancelled",
    "noshow",
    "entered-in-error",
    "checked-in",
    "waitlist",
}
ENCOUNTER_CODES = {
    "planned",
    "arrived",
    "triaged",
    "in-progress",
    "onleave",
    "finished",
    "cancelled",
    "entered-in-error",
    "unknown",
}
AUDIT_ACTIONS = {"C", "R", "U", "D", "E"}


def recording(kind: str = "video", container: str = "webm", **changes: Any) -> Recording:
    rec = Recording(
        id=(kind[0] + container[0]) * 16,
        consult_id="c" * 32,
        participant_id=OBSTETRICIAN.id,
        source=TrackSource.CAMERA if kind == "video" else TrackSource.MICROPHONE,
        kind=kind,
        codec="vp8" if kind == "video" else "opus",
        container=container,
        storage_key=f"key-{kind}-{container}",
        started_at=NOON + timedelta(minutes=1),
        started_offset_s=0.25,
    ).finished(NOON + timedelta(minutes=11), 600.0, 123_456, "ab" * 32, f"key-{kind}")
    return replace(rec, **changes)


def ended_consult() -> Consult:
    return replace(
        consult_in(S.ENDED),
        patient=PatientSummary("王芳 Wang Fang", Sex.FEMALE, 30, "G2P1, 32 weeks"),
        started_at=NOON + timedelta(seconds=30),
        ended_at=NOON + timedelta(minutes=20),
        closing_note="Continue monitoring; review in two weeks.",
    )


AUDIT = [
    AuditEntry(NOON, DOCTOR_A.id, "consult.book", "c" * 32, {"specialty": "obstetrics"}, 1),
    AuditEntry(NOON, OBSTETRICIAN.id, "consult.accept", "c" * 32, {"from": "requested"}, 2),
    AuditEntry(NOON, None, "recording.finalized", "c" * 32, {"recording": "vw" * 16}, 3),
    AuditEntry(NOON, SUPERVISOR.id, "recording.accessed", "c" * 32, {"range": [0, 99]}, 4),
]


def full_bundle(consult: Consult | None = None) -> dict[str, Any]:
    recordings = [
        recording("video", "webm"),
        recording("audio", "webm"),
        recording("video", "matroska"),
    ]
    return consult_bundle(
        consult or ended_consult(), PEOPLE, INSTITUTIONS, recordings, AUDIT, BASE, NOON
    )


def resources(bundle: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    return [e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == kind]


def references(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "reference" and isinstance(value, str):
                yield value
            else:
                yield from references(value)
    elif isinstance(node, list):
        for item in node:
            yield from references(item)


def validate(bundle: dict[str, Any]) -> Bundle:
    """Parse with fhir.resources: the Bundle, then every entry by its own resource model."""
    parsed = Bundle.model_validate(bundle)
    for entry in bundle["entry"]:
        model = get_fhir_model_class(entry["resource"]["resourceType"])
        model.model_validate(entry["resource"])
    return parsed


def test_every_status_has_a_mapping() -> None:
    assert set(APPOINTMENT_STATUS) == set(ConsultStatus) == set(ENCOUNTER_STATUS)
    assert set(APPOINTMENT_STATUS.values()) <= APPOINTMENT_CODES
    assert set(ENCOUNTER_STATUS.values()) <= ENCOUNTER_CODES


@pytest.mark.parametrize("status", list(ConsultStatus))
def test_each_status_exports_a_valid_bundle(status: ConsultStatus) -> None:
    consult = replace(ended_consult(), status=status)
    if status is S.REQUESTED:
        consult = replace(consult, specialist_id=None, started_at=None, ended_at=None)
    bundle = consult_bundle(consult, PEOPLE, INSTITUTIONS, [], AUDIT, BASE, NOON)
    validate(bundle)
    (appointment,) = resources(bundle, "Appointment")
    (encounter,) = resources(bundle, "Encounter")
    assert appointment["status"] == EXPECTED_APPOINTMENT[status]
    assert encounter["status"] == ENCOUNTER_STATUS[status]
    assert len(resources(bundle, "Communication")) == (1 if status is S.ENDED else 0)


def test_the_bundle_parses_with_fhir_resources() -> None:
    parsed = validate(full_bundle())
    assert parsed.type == "collection"
    kinds = sorted({e.resource.get_resource_type() for e in parsed.entry})
    assert kinds == [
        "Appointment",
        "AuditEvent",
        "Communication",
        "DocumentReference",
        "Encounter",
        "Organization",
        "Patient",
        "Practitioner",
    ]


def test_the_validator_is_not_a_rubber_stamp() -> None:
    bundle = full_bundle()
    (audit_event, *_) = resources(bundle, "AuditEvent")
    del audit_event["source"]  # 1..1 in FHIR
    with pytest.raises(ValidationError):
        validate(bundle)


def test_every_reference_resolves_inside_the_bundle() -> None:
    bundle = full_bundle()
    full_urls = [e["fullUrl"] for e in bundle["entry"]]
    assert len(full_urls) == len(set(full_urls))
    assert all(u.startswith("urn:uuid:") for u in full_urls)
    for entry in bundle["entry"]:
        assert entry["fullUrl"] == f"urn:uuid:{entry['resource']['id']}"
    found = set(references(bundle))
    assert found, "the bundle references nothing"
    assert found <= set(full_urls)


def test_the_same_consult_exports_under_the_same_names() -> None:
    first, second = full_bundle(), full_bundle()
    assert [e["fullUrl"] for e in first["entry"]] == [e["fullUrl"] for e in second["entry"]]


def test_an_installation_urn_names_identifiers_and_the_base_url_only_the_links() -> None:
    """Without PUBLIC_URL the server names its identifiers `urn:teleconsult:<installation>`:
    exported through two addresses, the identities agree; only the links follow the address."""
    identity = "urn:teleconsult:0123456789abcdef0123456789abcdef"
    recordings = [recording("video", "webm")]

    def exported(base: str) -> dict[str, Any]:
        return consult_bundle(
            ended_consult(), PEOPLE, INSTITUTIONS, recordings, AUDIT, base, NOON, identity=identity
        )

    one, other = exported("http://10.0.0.5:8080"), exported("https://tc.example.org")
    assert [e["fullUrl"] for e in one["entry"]] == [e["fullUrl"] for e in other["entry"]]
    assert (
        one["identifier"]
        == other["identifier"]
        == {
            "system": f"{identity}:sid:consult-export",
            "value": ended_consult().id,
        }
    )
    [document] = resources(one, "DocumentReference")
    assert document["identifier"] == [{"system": f"{identity}:sid:recording", "value": "vw" * 16}]
    assert document["content"][0]["attachment"]["url"].startswith("http://10.0.0.5:8080/api/")
    validate(one)


def test_encounter_is_virtual_with_period_reason_and_provider() -> None:
    bundle = full_bundle()
    (encounter,) = resources(bundle, "Encounter")
    assert encounter["class"] == {"system": V3_ACT_CODE, "code": "VR", "display": "virtual"}
    assert encounter["period"] == {"start": "2026-11-23T12:00:30Z", "end": "2026-11-23T12:20:00Z"}
    assert encounter["reasonCode"] == [{"text": "review"}]
    by_url = {e["fullUrl"]: e["resource"] for e in bundle["entry"]}
    provider = by_url[encounter["serviceProvider"]["reference"]]
    assert (provider["resourceType"], provider["name"]) == ("Organization", "County A")
    # The institution hierarchy travels along: County A → City → Province.
    city = by_url[provider["partOf"]["reference"]]
    province = by_url[city["partOf"]["reference"]]
    assert (city["name"], province["name"]) == ("City", "Provincial hospital")
    individuals = {
        by_url[p["individual"]["reference"]]["name"][0]["text"] for p in encounter["participant"]
    }
    assert individuals == {"Dr A", "Obstetrician"}


def test_invited_specialists_are_further_consultants_of_the_encounter() -> None:
    consult = replace(ended_consult(), invited_ids=frozenset({PAEDIATRICIAN.id}))
    bundle = full_bundle(consult)
    validate(bundle)
    (encounter,) = resources(bundle, "Encounter")
    by_url = {e["fullUrl"]: e["resource"] for e in bundle["entry"]}
    roles = [
        (p["type"][0]["coding"][0]["code"], by_url[p["individual"]["reference"]]["name"][0]["text"])
        for p in encounter["participant"]
    ]
    assert roles == [("REF", "Dr A"), ("CON", "Obstetrician"), ("CON", "Paediatrician")]


def test_invited_specialists_are_optional_consultants_of_the_appointment() -> None:
    consult = replace(
        consult_in(S.ACCEPTED),
        patient=PatientSummary("P", Sex.FEMALE),
        invited_ids=frozenset({PAEDIATRICIAN.id, OBSTETRICIAN_2.id}),
    )
    bundle = consult_bundle(consult, PEOPLE, INSTITUTIONS, [], [], BASE, NOON)
    validate(bundle)
    (appointment,) = resources(bundle, "Appointment")
    by_url = {e["fullUrl"]: e["resource"] for e in bundle["entry"]}
    slots = [
        (
            p["type"][0]["coding"][0]["code"] if "type" in p else None,
            by_url[p["actor"]["reference"]]["resourceType"],
            by_url[p["actor"]["reference"]].get("name", [{}])[0].get("text"),
            p["required"],
            p["status"],
        )
        for p in appointment["participant"]
    ]
    assert slots == [
        ("REF", "Practitioner", "Dr A", "required", "accepted"),
        ("CON", "Practitioner", "Obstetrician", "required", "accepted"),
        ("CON", "Practitioner", "Paediatrician", "optional", "accepted"),
        ("CON", "Practitioner", "Obstetrician 2", "optional", "accepted"),
        (None, "Patient", "P", "required", "accepted"),
    ]
    # Each invitee is one Practitioner, shared with the Encounter's participants.
    (encounter,) = resources(bundle, "Encounter")
    assert [p["actor"] for p in appointment["participant"][2:4]] == [
        p["individual"] for p in encounter["participant"][2:]
    ]


def test_appointment_names_doctor_specialist_and_patient() -> None:
    bundle = full_bundle()
    (appointment,) = resources(bundle, "Appointment")
    by_url = {e["fullUrl"]: e["resource"] for e in bundle["entry"]}
    actors = [by_url[p["actor"]["reference"]] for p in appointment["participant"]]
    assert [a["resourceType"] for a in actors] == ["Practitioner", "Practitioner", "Patient"]
    patient = actors[2]
    assert patient["name"] == [{"text": "王芳 Wang Fang"}]
    assert patient["gender"] == "female"
    assert patient["birthDate"] == "1996"
    assert patient["extension"][0]["valueAge"]["value"] == 30
    assert appointment["start"] == "2026-11-23T12:00:00Z"


def test_an_open_request_has_a_specialist_slot_without_actor() -> None:
    consult = replace(
        consult_in(S.REQUESTED, specialist_id=None), patient=PatientSummary("P", Sex.UNKNOWN)
    )
    bundle = consult_bundle(consult, PEOPLE, INSTITUTIONS, [], [], BASE, NOON)
    validate(bundle)
    (appointment,) = resources(bundle, "Appointment")
    slot = appointment["participant"][1]
    assert "actor" not in slot and slot["status"] == "needs-action"
    (patient,) = resources(bundle, "Patient")
    assert patient["gender"] == "unknown" and "birthDate" not in patient


def test_a_declined_consult_carries_its_reason_as_cancelation_reason() -> None:
    consult = replace(consult_in(S.DECLINED), closing_note="out of scope")
    bundle = consult_bundle(consult, PEOPLE, INSTITUTIONS, [], [], BASE, NOON)
    validate(bundle)
    (appointment,) = resources(bundle, "Appointment")
    assert appointment["cancelationReason"] == {"text": "out of scope"}
    assert appointment["participant"][1]["status"] == "declined"
    assert resources(bundle, "Communication") == []


def test_the_conclusion_is_a_communication_from_the_specialist() -> None:
    bundle = full_bundle()
    (communication,) = resources(bundle, "Communication")
    by_url = {e["fullUrl"]: e["resource"] for e in bundle["entry"]}
    assert communication["payload"] == [
        {"contentString": "Continue monitoring; review in two weeks."}
    ]
    assert by_url[communication["sender"]["reference"]]["name"][0]["text"] == "Obstetrician"
    assert by_url[communication["encounter"]["reference"]]["resourceType"] == "Encounter"
    assert communication["sent"] == "2026-11-23T12:20:00Z"


def test_each_note_is_a_communication_from_its_author_on_the_recording_timeline() -> None:
    consult = ended_consult()
    notes = [
        Note("n1" * 16, consult.id, DOCTOR_A.id, "Fundal height 32 cm", NOON, 12.5),
        Note("n2" * 16, consult.id, OBSTETRICIAN.id, "Advise growth scan", NOON, None),
    ]
    bundle = consult_bundle(consult, PEOPLE, INSTITUTIONS, [], AUDIT, BASE, NOON, notes=notes)
    validate(bundle)
    by_url = {e["fullUrl"]: e["resource"] for e in bundle["entry"]}
    taken = [c for c in resources(bundle, "Communication") if c["category"][0]["text"] == "note"]
    assert [c["payload"][0]["contentString"] for c in taken] == [
        "Fundal height 32 cm",
        "Advise growth scan",
    ]
    authors = [by_url[c["sender"]["reference"]]["name"][0]["text"] for c in taken]
    assert authors == [DOCTOR_A.display_name, OBSTETRICIAN.display_name]
    assert taken[0]["extension"] == [{"url": EXT_TIMELINE_OFFSET, "valueDecimal": 12.5}]
    assert "extension" not in taken[1]


def test_each_recording_is_a_document_reference() -> None:
    bundle = full_bundle()
    documents = resources(bundle, "DocumentReference")
    attachments = [d["content"][0]["attachment"] for d in documents]
    assert [a["contentType"] for a in attachments] == [
        "video/webm",
        "audio/webm",
        "video/x-matroska",
    ]
    for document, attachment in zip(documents, attachments, strict=True):
        recording_id = document["identifier"][0]["value"]
        assert attachment["url"] == f"{BASE}/api/recordings/{recording_id}/media"
        assert "access=" not in attachment["url"]
        assert attachment["size"] == 123_456
        assert "hash" not in attachment  # FHIR's hash is SHA-1; ours is SHA-256
        assert {"url": EXT_SHA256, "valueString": "ab" * 32} in attachment["extension"]
        assert attachment["creation"] == "2026-11-23T12:01:00Z"
        encounter_urls = [r["reference"] for r in document["context"]["encounter"]]
        assert encounter_urls == [
            e["fullUrl"] for e in bundle["entry"] if e["resource"]["resourceType"] == "Encounter"
        ]


ULTRASOUND_STILL = Attachment(
    id="a" * 32,
    consult_id="c" * 32,
    uploader_id=DOCTOR_A.id,
    file_name="B超 32周.png",
    media_type="image/png",
    bytes=4321,
    sha256="cd" * 32,
    storage_key=f"{'c' * 32}/{'a' * 32}",
    uploaded_at=NOON,
)


def test_each_attachment_is_a_document_reference_from_its_uploader() -> None:
    audit = [
        *AUDIT,
        AuditEntry(NOON, DOCTOR_A.id, "attachment.added", "c" * 32, {"attachment": "a" * 32}, 5),
    ]
    bundle = consult_bundle(
        ended_consult(),
        PEOPLE,
        INSTITUTIONS,
        [],
        audit,
        BASE,
        NOON,
        attachments=[ULTRASOUND_STILL],
    )
    validate(bundle)
    by_url = {e["fullUrl"]: e["resource"] for e in bundle["entry"]}
    (document,) = resources(bundle, "DocumentReference")
    assert document["identifier"][0]["value"] == "a" * 32
    assert document["description"] == "B超 32周.png"
    assert by_url[document["author"][0]["reference"]]["name"] == [{"text": DOCTOR_A.display_name}]
    attachment = document["content"][0]["attachment"]
    assert attachment == {
        "contentType": "image/png",
        "url": f"{BASE}/api/attachments/{'a' * 32}/content",
        "size": 4321,
        "title": "B超 32周.png",
        "creation": "2026-11-23T12:00:00Z",
        "extension": [{"url": EXT_SHA256, "valueString": "cd" * 32}],
    }
    added = resources(bundle, "AuditEvent")[-1]
    assert added["action"] == "C"
    assert by_url[added["entity"][1]["what"]["reference"]] is document


async def test_the_export_includes_the_consults_attachments() -> None:
    store = InMemoryStore()
    consult = ended_consult()
    await store.add_consult(replace(consult, status=ConsultStatus.LIVE), AUDIT[0])
    await store.add_attachment(ULTRASOUND_STILL, AUDIT[0], 20)  # attached while it was open
    await store.update_consult(consult, AUDIT[0])  # then it ended
    bundle = await ExportService(store, None, attachments=store).fhir_bundle(
        SUPERVISOR, consult.id, BASE
    )
    validate(bundle)
    (document,) = resources(bundle, "DocumentReference")
    assert document["content"][0]["attachment"]["title"] == ULTRASOUND_STILL.file_name


def test_unfinished_recordings_are_left_out() -> None:
    unfinished = Recording(
        "u" * 32,
        "c" * 32,
        OBSTETRICIAN.id,
        TrackSource.CAMERA,
        "video",
        "vp8",
        "webm",
        "k",
        NOON,
        0,
    )
    bundle = consult_bundle(ended_consult(), PEOPLE, INSTITUTIONS, [unfinished], [], BASE, NOON)
    assert resources(bundle, "DocumentReference") == []


def test_each_audit_entry_is_an_audit_event() -> None:
    bundle = full_bundle()
    events = resources(bundle, "AuditEvent")
    assert [e["type"]["code"] for e in events] == [a.action for a in AUDIT]
    assert {e["action"] for e in events} <= AUDIT_ACTIONS
    assert [e["action"] for e in events] == ["C", "U", "U", "R"]
    assert all(e["recorded"] == "2026-11-23T12:00:00Z" for e in events)
    system_event = events[2]
    assert system_event["agent"] == [
        {"who": {"display": "teleconsult (system)"}, "requestor": False}
    ]
    # The finalized recording is named as a second entity, resolved to its DocumentReference.
    by_url = {e["fullUrl"]: e["resource"] for e in bundle["entry"]}
    what = [
        by_url[entity["what"]["reference"]]["resourceType"] for entity in system_event["entity"]
    ]
    assert what == ["Appointment", "DocumentReference"]
    supervisor = by_url[events[3]["agent"][0]["who"]["reference"]]
    assert supervisor["name"] == [{"text": SUPERVISOR.display_name}]


# ---- the use case ---------------------------------------------------------------------------


async def test_export_is_permitted_audited_and_complete() -> None:
    store = InMemoryStore()
    consult = ended_consult()
    await store.add_consult(consult, AUDIT[0])
    rec = recording()
    store.recordings[rec.id] = rec
    bundle = await ExportService(store, store, clock=lambda: NOON).fhir_bundle(
        SUPERVISOR, consult.id, BASE
    )
    validate(bundle)
    exported = [e for e in store.audit_log if e.action == "consult.exported"]
    assert [(e.actor_id, e.consult_id) for e in exported] == [(SUPERVISOR.id, consult.id)]
    codes = [e["type"]["code"] for e in resources(bundle, "AuditEvent")]
    assert codes == ["consult.book", "consult.exported"]
    assert len(resources(bundle, "DocumentReference")) == 1


@pytest.mark.parametrize("user", [DOCTOR_A, OBSTETRICIAN, ADMIN])
async def test_those_the_table_allows_may_export(user: Any) -> None:
    store = InMemoryStore()
    consult = ended_consult()
    await store.add_consult(consult, AUDIT[0])
    bundle = await ExportService(store, None).fhir_bundle(user, consult.id, BASE)
    validate(bundle)


async def test_a_doctor_of_another_county_may_not_export() -> None:
    store = InMemoryStore()
    consult = ended_consult()
    await store.add_consult(consult, AUDIT[0])
    with pytest.raises(PermissionDenied):
        await ExportService(store, store).fhir_bundle(DOCTOR_B, consult.id, BASE)
    assert all(e.action != "consult.exported" for e in store.audit_log)
