"""Recordings and consents in storage, kept alike by every implementation: a track is added
while it is written and finished once finalized, each with its audit entry; a consult's tracks
in the order they started; consent answers in the order given."""

from __future__ import annotations

from datetime import timedelta

from rooms.calls.recordings import ConsentAnswer, Recording, RecordingStatus, TrackSource
from tests.integration.stores import Stores, actions, audit, booked
from tests.unit.fakes import NOON


def track(stores: Stores, consult_id: str, seconds: float = 0.0) -> Recording:
    return Recording(
        id=Recording.new_id(),
        consult_id=consult_id,
        participant_id=stores.doctor_id,
        source=TrackSource.CAMERA,
        kind="video",
        codec="vp8",
        container="webm",
        storage_key=f"{consult_id}/partial",
        started_at=NOON + timedelta(seconds=seconds),
        started_offset_s=seconds,
    )


async def test_a_track_is_unfinished_until_it_is_finished_each_step_audited(
    stores: Stores,
) -> None:
    consult = await booked(stores)
    writing = track(stores, consult.id)
    await stores.recordings.add_recording(writing, audit("recording.track_started", consult.id))
    assert await stores.recordings.get_recording(writing.id) == writing
    assert await stores.recordings.unfinished_recordings() == [writing]
    done = writing.finished(
        NOON + timedelta(seconds=90), 89.5, 1_234_567, "ab" * 32, f"{consult.id}/done.webm"
    )
    await stores.recordings.finish_recording(done, audit("recording.finalized", consult.id))
    assert await stores.recordings.get_recording(writing.id) == done
    assert done.status is RecordingStatus.READY
    assert await stores.recordings.unfinished_recordings() == []
    assert await stores.recordings.list_recordings(consult.id) == [done]
    assert await actions(stores, consult.id) == [
        "consult.book",
        "recording.track_started",
        "recording.finalized",
    ]


async def test_a_consults_tracks_are_listed_in_the_order_they_started(stores: Stores) -> None:
    consult = await booked(stores)
    other = await booked(stores, id="d" * 32)
    later, earlier = track(stores, consult.id, 30.0), track(stores, consult.id, 0.5)
    elsewhere = track(stores, other.id)
    for rec in (later, earlier, elsewhere):
        await stores.recordings.add_recording(rec, audit("recording.track_started", rec.consult_id))
    assert await stores.recordings.list_recordings(consult.id) == [earlier, later]
    assert await stores.recordings.list_recordings("f" * 32) == []
    assert await stores.recordings.get_recording("f" * 32) is None


async def test_consent_answers_are_kept_in_the_order_given_with_their_audit(
    stores: Stores,
) -> None:
    consult = await booked(stores)
    other = await booked(stores, id="d" * 32)
    yes = ConsentAnswer(consult.id, stores.doctor_id, True, NOON + timedelta(seconds=2), "s1")
    no = ConsentAnswer(consult.id, stores.doctor_id, False, NOON, "s2")
    elsewhere = ConsentAnswer(other.id, stores.doctor_id, True, NOON, "s3")
    for answer, action in ((yes, "recording.consent"), (no, "recording.consent_refused")):
        await stores.recordings.add_consent(answer, audit(action, consult.id))
    await stores.recordings.add_consent(elsewhere, audit("recording.consent", other.id))
    assert await stores.recordings.consents(consult.id) == [yes, no]
    assert await stores.recordings.consents("f" * 32) == []
    assert await actions(stores, consult.id) == [
        "consult.book",
        "recording.consent",
        "recording.consent_refused",
    ]
