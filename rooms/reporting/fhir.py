"""A consult as a FHIR R4 Bundle: plain dicts, no FHIR library at run time.

`consult_bundle` maps what teleconsult knows about one consult onto FHIR resources
(Appointment, Encounter, Patient, Practitioner, Organization, Communication, DocumentReference,
AuditEvent) and returns a `collection` Bundle ready for `json.dumps`. The mapping is described
field by field in docs/fhir.md; the tests validate the output with the `fhir.resources` models.

Every entry's `fullUrl` is a `urn:uuid:` derived (UUID v5) from the server's identity (`PUBLIC_URL`,
or `urn:teleconsult:<installation id>`: never the address a request happened to reach) and the
thing it stands for, so exporting the same consult twice names its resources the same way and
every reference inside the bundle resolves to an entry of the bundle.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from rooms.calls.recordings import Recording, RecordingStatus
from rooms.consults.audit import AuditEntry
from rooms.consults.consult import Consult, Sex
from rooms.consults.institutions import Institution
from rooms.consults.lifecycle import ConsultStatus
from rooms.consults.people import User
from rooms.records.attachments import Attachment
from rooms.records.notes import Note

FHIR_JSON = "application/fhir+json"
FHIR_VERSION = "4.0.1"
"""The FHIR release the bundle is written for (R4); the resources used are unchanged in R4B."""

CANONICAL = "urn:teleconsult:fhir"
"""Prefix of teleconsult's own code systems and extensions (a URN: nothing to resolve)."""
EXT_AGE_AT_BOOKING = f"{CANONICAL}:StructureDefinition:age-at-booking"
EXT_SHA256 = f"{CANONICAL}:StructureDefinition:attachment-sha256"
EXT_DURATION = f"{CANONICAL}:StructureDefinition:media-duration-seconds"
EXT_TIMELINE_OFFSET = f"{CANONICAL}:StructureDefinition:recording-offset-seconds"
CS_SPECIALTY = f"{CANONICAL}:CodeSystem:specialty"
CS_INSTITUTION_LEVEL = f"{CANONICAL}:CodeSystem:institution-level"
CS_AUDIT_ACTION = f"{CANONICAL}:CodeSystem:audit-action"
CS_COMMUNICATION = f"{CANONICAL}:CodeSystem:communication-category"
CS_RECORDING_SOURCE = f"{CANONICAL}:CodeSystem:recording-source"
CS_DOCUMENT_KIND = f"{CANONICAL}:CodeSystem:document-kind"

V3_ACT_CODE = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
V3_PARTICIPATION = "http://terminology.hl7.org/CodeSystem/v3-ParticipationType"
UCUM = "http://unitsofmeasure.org"

NOMINAL_SLOT = timedelta(minutes=30)
"""teleconsult books a start time, not a length; Appointment.end is start + this nominal slot."""

APPOINTMENT_STATUS: dict[ConsultStatus, str] = {
    ConsultStatus.REQUESTED: "proposed",
    ConsultStatus.ACCEPTED: "booked",
    ConsultStatus.WAITING: "arrived",
    ConsultStatus.LIVE: "arrived",
    ConsultStatus.ENDED: "fulfilled",
    ConsultStatus.DECLINED: "cancelled",
    ConsultStatus.CANCELLED: "cancelled",
    ConsultStatus.EXPIRED: "noshow",
}
ENCOUNTER_STATUS: dict[ConsultStatus, str] = {
    ConsultStatus.REQUESTED: "planned",
    ConsultStatus.ACCEPTED: "planned",
    ConsultStatus.WAITING: "arrived",
    ConsultStatus.LIVE: "in-progress",
    ConsultStatus.ENDED: "finished",
    ConsultStatus.DECLINED: "cancelled",
    ConsultStatus.CANCELLED: "cancelled",
    ConsultStatus.EXPIRED: "cancelled",
}
MEDIA_TYPES: dict[tuple[str, str], str] = {
    ("webm", "video"): "video/webm",
    ("webm", "audio"): "audio/webm",
    ("matroska", "video"): "video/x-matroska",
    ("matroska", "audio"): "audio/x-matroska",
}

_AUDIT_ACTION_CODE: dict[str, str] = {
    "consult.book": "C",
    "recording.track_started": "C",
    "recording.consent": "C",
    "recording.consent_refused": "C",
    "consult.exported": "R",
    "recording.playback_granted": "R",
    "recording.accessed": "R",
    "attachment.added": "C",
    "attachment.viewed": "R",
    "consult.notified": "E",
    "consult.escalated": "E",
    "consult.reminded": "E",
}
"""FHIR AuditEvent.action (C create, R read, U update, E execute) of known teleconsult actions;
anything else is an update (U) of the consult."""


def _instant(at: datetime) -> str:
    """An aware timestamp in FHIR's `instant` form (UTC, seconds, `Z`)."""
    if at.tzinfo is None:
        at = at.replace(tzinfo=UTC)
    return at.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


class _Names:
    """Stable `urn:uuid:` names of the bundle's resources and identifier systems, derived from
    the server's `identity`; `base_url` only makes the links to media and content."""

    def __init__(self, base_url: str, identity: str) -> None:
        self.base_url = base_url.rstrip("/")
        self.identity = identity.rstrip("/")

    def uuid(self, kind: str, key: object) -> str:
        return str(uuid.uuid5(uuid.NAMESPACE_URL, f"{self.identity}/{kind}/{key}"))

    def urn(self, kind: str, key: object) -> str:
        return f"urn:uuid:{self.uuid(kind, key)}"

    def system(self, kind: str) -> str:
        """Identifier system of this server's `kind` ids (consult, user, institution …):
        `<PUBLIC_URL>/sid/<kind>`, or `urn:teleconsult:<installation id>:sid:<kind>`."""
        if self.identity.startswith("urn:"):
            return f"{self.identity}:sid:{kind}"
        return f"{self.identity}/sid/{kind}"


def _ref(urn: str, display: str | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"reference": urn}
    if display:
        out["display"] = display
    return out


def _participation(code: str, display: str) -> list[dict[str, Any]]:
    return [{"coding": [{"system": V3_PARTICIPATION, "code": code, "display": display}]}]


def consult_bundle(
    consult: Consult,
    people: Mapping[int, User],
    institutions: Iterable[Institution],
    recordings: Iterable[Recording],
    audit_entries: Iterable[AuditEntry],
    base_url: str,
    generated_at: datetime | None = None,
    notes: Iterable[Note] = (),
    attachments: Iterable[Attachment] = (),
    identity: str | None = None,
) -> dict[str, Any]:
    """The consult as a FHIR R4 `collection` Bundle (a JSON-ready dict).

    `identity` names the identifiers and resources (see `_Names`; `base_url` when not given);
    `base_url` is where the media and attachment links point.

    `people` must hold every user the consult, its recordings and its audit entries name
    (a missing one is exported as a display-only reference); `institutions` the requesting
    institution and its ancestors. Only finished (`ready`) recordings become DocumentReferences,
    and so does every attachment of the booking.
    """
    names = _Names(base_url, base_url if identity is None else identity)
    by_id = {inst.id: inst for inst in institutions}
    entries: dict[str, dict[str, Any]] = {}

    def add(urn: str, resource: dict[str, Any]) -> None:
        if urn not in entries:
            resource["id"] = urn.removeprefix("urn:uuid:")
            entries[urn] = {"fullUrl": urn, "resource": resource}

    def organization(institution_id: int) -> dict[str, Any]:
        urn = names.urn("institution", institution_id)
        if urn not in entries:
            inst = by_id.get(institution_id)
            if inst is None:
                return {"display": f"institution {institution_id}"}
            org: dict[str, Any] = {
                "resourceType": "Organization",
                "identifier": [{"system": names.system("institution"), "value": str(inst.id)}],
                "active": True,
                "type": [
                    {
                        "coding": [{"system": CS_INSTITUTION_LEVEL, "code": inst.level.value}],
                        "text": inst.level.value,
                    }
                ],
                "name": inst.name,
            }
            add(urn, org)
            if inst.parent_id is not None:
                org["partOf"] = organization(inst.parent_id)
        return _ref(urn, by_id[institution_id].name)

    def practitioner(user_id: int) -> dict[str, Any]:
        user = people.get(user_id)
        if user is None:
            return {"display": f"user {user_id}"}
        urn = names.urn("user", user.id)
        add(
            urn,
            {
                "resourceType": "Practitioner",
                "identifier": [{"system": names.system("user"), "value": str(user.id)}],
                "active": user.active,
                "name": [{"text": user.display_name}],
            },
        )
        return _ref(urn, user.display_name)

    patient_urn = names.urn("consult-patient", consult.id)
    patient: dict[str, Any] = {
        "resourceType": "Patient",
        "name": [{"text": consult.patient.name}],
        "gender": {Sex.FEMALE: "female", Sex.MALE: "male"}.get(consult.patient.sex, "unknown"),
    }
    if consult.patient.age_years is not None:
        # Only the age is known: the birth year is approximate (±1), so it is given to the year,
        # and the stated age travels alongside it.
        patient["birthDate"] = f"{consult.requested_at.year - consult.patient.age_years:04d}"
        patient["extension"] = [
            {
                "url": EXT_AGE_AT_BOOKING,
                "valueAge": {
                    "value": consult.patient.age_years,
                    "unit": "a",
                    "system": UCUM,
                    "code": "a",
                },
            }
        ]
    add(patient_urn, patient)
    patient_ref = _ref(patient_urn, consult.patient.name)

    consult_identifier = [{"system": names.system("consult"), "value": consult.id}]
    specialty = {
        "coding": [{"system": CS_SPECIALTY, "code": consult.specialty.value}],
        "text": consult.specialty.value,
    }
    reason = [{"text": consult.reason}] if consult.reason else []
    requester = practitioner(consult.requesting_doctor_id)
    specialist = practitioner(consult.specialist_id) if consult.specialist_id is not None else None
    provider = organization(consult.requesting_institution_id)

    # -- Appointment: the booking ---------------------------------------------------------------
    if consult.status is ConsultStatus.REQUESTED:
        specialist_status = "needs-action"
    elif consult.status is ConsultStatus.DECLINED:
        specialist_status = "declined"
    elif specialist is None:
        specialist_status = "needs-action"
    else:
        specialist_status = "accepted"
    specialist_slot: dict[str, Any] = {
        "type": _participation("CON", "consultant"),
        "required": "required",
        "status": specialist_status,
    }
    if specialist is not None:
        specialist_slot["actor"] = specialist
    appointment_urn = names.urn("appointment", consult.id)
    appointment: dict[str, Any] = {
        "resourceType": "Appointment",
        "identifier": consult_identifier,
        "status": APPOINTMENT_STATUS[consult.status],
        "specialty": [specialty],
        "reasonCode": reason,
        "description": consult.reason or None,
        "start": _instant(consult.scheduled_at),
        "end": _instant(consult.scheduled_at + NOMINAL_SLOT),
        "minutesDuration": int(NOMINAL_SLOT.total_seconds() // 60),
        "created": _instant(consult.requested_at),
        "comment": consult.patient.summary or None,
        "participant": [
            {
                "type": _participation("REF", "referrer"),
                "actor": requester,
                "required": "required",
                "status": "accepted",
            },
            specialist_slot,
            # Invited specialists of a multi-disciplinary consult: further consultants, optional
            # to the appointment; an invitation stands until declined (which removes it).
            *(
                {
                    "type": _participation("CON", "consultant"),
                    "actor": practitioner(uid),
                    "required": "optional",
                    "status": "accepted",
                }
                for uid in sorted(consult.invited_ids)
            ),
            {"actor": patient_ref, "required": "required", "status": "accepted"},
        ],
    }
    if consult.status in (ConsultStatus.DECLINED, ConsultStatus.CANCELLED) and (
        consult.closing_note
    ):
        appointment["cancelationReason"] = {"text": consult.closing_note}
    add(appointment_urn, {k: v for k, v in appointment.items() if v not in (None, [])})

    # -- Encounter: the virtual visit -------------------------------------------------------------
    encounter_urn = names.urn("encounter", consult.id)
    period: dict[str, str] = {}
    if consult.started_at is not None:
        period["start"] = _instant(consult.started_at)
    if consult.ended_at is not None and consult.status is ConsultStatus.ENDED:
        period["end"] = _instant(consult.ended_at)
    encounter_participants = [{"type": _participation("REF", "referrer"), "individual": requester}]
    if specialist is not None:
        encounter_participants.append(
            {"type": _participation("CON", "consultant"), "individual": specialist}
        )
    # Invited specialists of a multi-disciplinary consult advise too: further consultants.
    encounter_participants.extend(
        {"type": _participation("CON", "consultant"), "individual": practitioner(uid)}
        for uid in sorted(consult.invited_ids)
    )
    encounter: dict[str, Any] = {
        "resourceType": "Encounter",
        "identifier": consult_identifier,
        "status": ENCOUNTER_STATUS[consult.status],
        "class": {"system": V3_ACT_CODE, "code": "VR", "display": "virtual"},
        "serviceType": specialty,
        "subject": patient_ref,
        "participant": encounter_participants,
        "appointment": [_ref(appointment_urn)],
        "period": period or None,
        "reasonCode": reason,
        "serviceProvider": provider,
    }
    add(encounter_urn, {k: v for k, v in encounter.items() if v not in (None, [])})
    encounter_ref = _ref(encounter_urn)

    # -- Communication: the specialist's conclusion (in-call notes will map the same way) -------
    if consult.status is ConsultStatus.ENDED and consult.closing_note:
        communication: dict[str, Any] = {
            "resourceType": "Communication",
            "identifier": [{"system": names.system("conclusion"), "value": consult.id}],
            "status": "completed",
            "category": [
                {
                    "coding": [{"system": CS_COMMUNICATION, "code": "conclusion"}],
                    "text": "conclusion",
                }
            ],
            "subject": patient_ref,
            "encounter": encounter_ref,
            "recipient": [requester],
            "payload": [{"contentString": consult.closing_note}],
        }
        if consult.ended_at is not None:
            communication["sent"] = _instant(consult.ended_at)
        if specialist is not None:
            communication["sender"] = specialist
        add(names.urn("conclusion", consult.id), communication)

    # -- Communication: each note taken during the call, on the recording's timeline ------------
    for note in notes:
        note_resource: dict[str, Any] = {
            "resourceType": "Communication",
            "identifier": [{"system": names.system("note"), "value": note.id}],
            "status": "completed",
            "category": [
                {"coding": [{"system": CS_COMMUNICATION, "code": "note"}], "text": "note"}
            ],
            "subject": patient_ref,
            "encounter": encounter_ref,
            "sent": _instant(note.at),
            "sender": practitioner(note.author_id),
            "payload": [{"contentString": note.text}],
        }
        if note.recording_offset_s is not None:
            note_resource["extension"] = [
                {"url": EXT_TIMELINE_OFFSET, "valueDecimal": round(note.recording_offset_s, 3)}
            ]
        add(names.urn("note", note.id), note_resource)

    # -- DocumentReference: one per recorded track -----------------------------------------------
    recording_refs: dict[str, dict[str, Any]] = {}
    for rec in recordings:
        if rec.status is not RecordingStatus.READY:
            continue
        urn = names.urn("recording", rec.id)
        attachment: dict[str, Any] = {
            "contentType": MEDIA_TYPES.get((rec.container, rec.kind), "application/octet-stream"),
            # Where the bytes live in the API; reading them needs a playback grant
            # (POST /api/recordings/{id}/playback), so this is a reference, not a link.
            "url": f"{names.base_url}/api/recordings/{rec.id}/media",
            "size": rec.bytes,
            "title": f"{rec.kind} track ({rec.source.value}) of participant {rec.participant_id}",
            "creation": _instant(rec.started_at),
            "extension": [{"url": EXT_DURATION, "valueDecimal": round(rec.duration_s, 3)}],
        }
        if rec.sha256:
            # FHIR's Attachment.hash is SHA-1; the recorder computes SHA-256.
            attachment["extension"].append({"url": EXT_SHA256, "valueString": rec.sha256})
        context: dict[str, Any] = {
            "encounter": [encounter_ref],
            "period": {"start": _instant(rec.started_at)},
        }
        if rec.finished_at is not None:
            context["period"]["end"] = _instant(rec.finished_at)
        document: dict[str, Any] = {
            "resourceType": "DocumentReference",
            "identifier": [{"system": names.system("recording"), "value": rec.id}],
            "status": "current",
            "type": {
                "coding": [{"system": CS_RECORDING_SOURCE, "code": rec.source.value}],
                "text": f"consult recording: {rec.kind}, {rec.source.value}",
            },
            "subject": patient_ref,
            "date": _instant(rec.finished_at or rec.started_at),
            "author": [practitioner(rec.participant_id)],
            "content": [{"attachment": attachment}],
            "context": context,
            "extension": [
                {"url": EXT_TIMELINE_OFFSET, "valueDecimal": round(rec.started_offset_s, 3)}
            ],
        }
        add(urn, document)
        recording_refs[rec.id] = _ref(urn)

    # -- DocumentReference: one per attachment of the booking -------------------------------------
    attachment_refs: dict[str, dict[str, Any]] = {}
    for att in attachments:
        urn = names.urn("attachment", att.id)
        add(
            urn,
            {
                "resourceType": "DocumentReference",
                "identifier": [{"system": names.system("attachment"), "value": att.id}],
                "status": "current",
                "type": {
                    "coding": [{"system": CS_DOCUMENT_KIND, "code": "attachment"}],
                    "text": "consult attachment",
                },
                "subject": patient_ref,
                "date": _instant(att.uploaded_at),
                "author": [practitioner(att.uploader_id)],
                "description": att.file_name,
                "content": [
                    {
                        "attachment": {
                            "contentType": att.media_type,
                            # Reading the bytes needs a bearer token with the view permission.
                            "url": f"{names.base_url}/api/attachments/{att.id}/content",
                            "size": att.bytes,
                            "title": att.file_name,
                            "creation": _instant(att.uploaded_at),
                            "extension": [{"url": EXT_SHA256, "valueString": att.sha256}],
                        }
                    }
                ],
                "context": {"encounter": [encounter_ref]},
            },
        )
        attachment_refs[att.id] = _ref(urn)

    # -- AuditEvent: one per audit entry ----------------------------------------------------------
    for index, entry in enumerate(audit_entries):
        key = entry.id if entry.id is not None else f"{consult.id}-{index}"
        agent: dict[str, Any]
        if entry.actor_id is None:
            agent = {"who": {"display": "teleconsult (system)"}, "requestor": False}
        else:
            agent = {"who": practitioner(entry.actor_id), "requestor": True}
        entities: list[dict[str, Any]] = [
            {
                "what": _ref(appointment_urn),
                "detail": [
                    {
                        "type": name,
                        "valueString": value if isinstance(value, str) else json.dumps(value),
                    }
                    for name, value in sorted(entry.detail.items())
                ],
            }
        ]
        if not entities[0]["detail"]:
            del entities[0]["detail"]
        recording_id = entry.detail.get("recording")
        if isinstance(recording_id, str):
            entities.append(
                {
                    "what": recording_refs.get(recording_id)
                    or {"identifier": {"system": names.system("recording"), "value": recording_id}}
                }
            )
        attachment_id = entry.detail.get("attachment")
        if isinstance(attachment_id, str):
            entities.append(
                {
                    "what": attachment_refs.get(attachment_id)
                    or {
                        "identifier": {"system": names.system("attachment"), "value": attachment_id}
                    }
                }
            )
        add(
            names.urn("audit", key),
            {
                "resourceType": "AuditEvent",
                "type": {"system": CS_AUDIT_ACTION, "code": entry.action},
                "action": _AUDIT_ACTION_CODE.get(entry.action, "U"),
                "recorded": _instant(entry.at),
                "outcome": "0",
                "agent": [agent],
                "source": {"observer": {"display": "teleconsult server"}},
                "entity": entities,
            },
        )

    stamp = generated_at or datetime.now(UTC)
    return {
        "resourceType": "Bundle",
        "id": names.uuid("bundle", f"{consult.id}/{_instant(stamp)}"),
        "meta": {"lastUpdated": _instant(stamp)},
        "identifier": {"system": names.system("consult-export"), "value": consult.id},
        "type": "collection",
        "timestamp": _instant(stamp),
        "entry": list(entries.values()),
    }
