"""Recording use cases on plain objects: who may record and view, and what is audited."""

from __future__ import annotations

from datetime import timedelta

import pytest

from rooms.calls.media_path import RelayReason
from rooms.calls.recording_service import RecordingService
from rooms.calls.recordings import Recording, TrackSource
from rooms.consults.audit import AuditEntry
from rooms.consults.consult import Consult, MediaMode
from rooms.consults.errors import IllegalTransition, NotFound, PermissionDenied
from rooms.consults.lifecycle import ConsultStatus
from tests.unit.fakes import (
    COUNTY_B,
    DOCTOR_A,
    DOCTOR_B,
    NOON,
    OBSTETRICIAN,
    OBSTETRICIAN_2,
    SUPERVISOR,
    SUPERVISOR_B,
    InMemoryStore,
    consult_in,
)


@pytest.fixture
def store() -> InMemoryStore:
    return InMemoryStore()


async def live_consult(store: InMemoryStore, institution_id: int = 3) -> Consult:
    consult = consult_in(ConsultStatus.LIVE, institution_id=institution_id)
    await store.add_consult(consult, audit_entry(consult.id))
    return consult


def audit_entry(consult_id: str) -> AuditEntry:
    return AuditEntry(at=NOON, actor_id=None, action="test", consult_id=consult_id)


async def finished_recording(store: InMemoryStore, consult: Consult) -> Recording:
    service = RecordingService(store, store, clock=lambda: NOON)
    recording = Recording(
        id="r" * 32,
        consult_id=consult.id,
        participant_id=DOCTOR_A.id,
        source=TrackSource.CAMERA,
        kind="video",
        codec="VP8",
        container="webm",
        storage_key=f"{consult.id}/x.webm.part",
        started_at=NOON,
        started_offset_s=0.0,
    )
    await service.recording_began(recording)
    done = recording.finished(NOON + timedelta(seconds=5), 5.0, 1000, "ab" * 32, "k.webm")
    await service.recording_finished(done)
    return done


async def test_only_the_assigned_specialist_may_record_a_live_consult(
    store: InMemoryStore,
) -> None:
    consult = await live_consult(store)
    service = RecordingService(store, store)
    assert (await service.authorize_recording(OBSTETRICIAN, consult.id)).id == consult.id
    for user in (DOCTOR_A, OBSTETRICIAN_2, SUPERVISOR):
        with pytest.raises(PermissionDenied):
            await service.authorize_recording(user, consult.id)


async def test_a_consult_that_is_not_live_cannot_be_recorded(store: InMemoryStore) -> None:
    consult = consult_in(ConsultStatus.WAITING)
    await store.add_consult(consult, audit_entry(consult.id))
    with pytest.raises(IllegalTransition):
        await RecordingService(store, store).authorize_recording(OBSTETRICIAN, consult.id)


async def test_consent_is_stored_with_who_and_when_and_audited(store: InMemoryStore) -> None:
    consult = await live_consult(store)
    service = RecordingService(store, store, clock=lambda: NOON)
    await service.store_consent(DOCTOR_A, consult.id, True, "s1")
    await service.store_consent(OBSTETRICIAN, consult.id, False, "s1")
    answers = await store.consents(consult.id)
    assert [(a.user_id, a.granted, a.at) for a in answers] == [
        (DOCTOR_A.id, True, NOON),
        (OBSTETRICIAN.id, False, NOON),
    ]
    actions = [e.action for e in store.audit_log]
    assert "recording.consent" in actions and "recording.consent_refused" in actions


async def test_moving_to_the_relay_happens_once_and_is_audited_with_its_reason(
    store: InMemoryStore,
) -> None:
    consult = await live_consult(store)
    service = RecordingService(store, store)
    moved = await service.move_to_relay(consult.id, RelayReason.PARTICIPANTS, DOCTOR_A)
    assert moved is not None and moved.media_mode is MediaMode.RELAY
    assert await service.move_to_relay(consult.id, RelayReason.RECORDING, DOCTOR_A) is None
    paths = [e for e in store.audit_log if e.action == "consult.media_path"]
    assert [e.detail["reason"] for e in paths] == ["participants"]


async def test_recordings_are_listed_and_played_only_for_permitted_users(
    store: InMemoryStore,
) -> None:
    consult = await live_consult(store)
    done = await finished_recording(store, consult)
    service = RecordingService(store, store)
    for user in (DOCTOR_A, OBSTETRICIAN, SUPERVISOR):
        assert [r.id for r in await service.list_recordings(user, consult.id)] == [done.id]
        assert (await service.viewable(user, done.id)).id == done.id
    for user in (DOCTOR_B, SUPERVISOR_B, OBSTETRICIAN_2):
        with pytest.raises(PermissionDenied):
            await service.viewable(user, done.id)


async def test_a_recording_still_being_written_is_not_offered(store: InMemoryStore) -> None:
    consult = await live_consult(store, institution_id=COUNTY_B)
    service = RecordingService(store, store)
    recording = Recording(
        id="q" * 32,
        consult_id=consult.id,
        participant_id=DOCTOR_B.id,
        source=TrackSource.MICROPHONE,
        kind="audio",
        codec="opus",
        container="webm",
        storage_key="k",
        started_at=NOON,
        started_offset_s=0.0,
    )
    await service.recording_began(recording)
    assert await service.list_recordings(DOCTOR_B, consult.id) == []
    with pytest.raises(NotFound):
        await service.viewable(DOCTOR_B, recording.id)
    assert [r.id for r in await service.unfinished()] == [recording.id]


async def test_every_playback_grant_and_byte_read_is_audited(store: InMemoryStore) -> None:
    consult = await live_consult(store)
    done = await finished_recording(store, consult)
    service = RecordingService(store, store, clock=lambda: NOON)
    await service.grant_playback(SUPERVISOR, done.id)
    await service.record_access(SUPERVISOR, done, 0, 999)
    trail = [(e.action, e.actor_id, e.detail) for e in store.audit_log]
    assert ("recording.playback_granted", SUPERVISOR.id, {"recording": done.id}) in trail
    assert ("recording.accessed", SUPERVISOR.id, {"recording": done.id, "range": [0, 999]}) in trail
