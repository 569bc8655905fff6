"""After a crash: finalize the recordings the previous process was writing, and say so.

At start-up every `.part` file left in the partial directory is remuxed, hashed and renamed
into place by `media.recording.recover`; its `Recording` row (left in status `recording`) is
completed with `recovered = true`, and the consult's audit log gets a `recording.recovered`
entry. A row whose file cannot be found is reported and left for an operator.
"""

from __future__ import annotations

import logging
from pathlib import Path

from media.consult_recorder import finished_recording
from media.recording import FinishedTrack, recover
from media.storage import RecordingStorage
from rooms.calls.recording_service import RecordingService
from rooms.calls.recordings import Recording, TrackSource

log = logging.getLogger(__name__)


def row_from_sidecar(done: FinishedTrack) -> Recording | None:
    meta = done.metadata
    consult_id, participant, source = (
        meta.get("consult_id"),
        meta.get("participant_id"),
        meta.get("source"),
    )
    if not isinstance(consult_id, str) or not isinstance(participant, int):
        return None
    try:
        track_source = TrackSource(str(source))
    except ValueError:
        return None
    return Recording(
        id=done.recording_id,
        consult_id=consult_id,
        participant_id=participant,
        source=track_source,
        kind=done.kind,
        codec=done.codec,
        container=done.container,
        storage_key="",
        started_at=done.started_at,
        started_offset_s=done.started_offset_s,
    )


async def recover_recordings(
    partial_dir: Path, storage: RecordingStorage, ledger: RecordingService
) -> list[Recording]:
    unfinished = {r.id: r for r in await ledger.unfinished()}
    recovered: list[Recording] = []
    for done in await recover(partial_dir, storage):
        row = unfinished.pop(done.recording_id, None)
        if row is None:
            row = row_from_sidecar(done)
            if row is None:
                log.warning(
                    "recovered file %s names no consult participant; it is kept at %s",
                    done.recording_id,
                    done.path,
                )
                continue
            # The process died before the row was written: the sidecar says what it was.
            await ledger.recording_began(row)
        finished = finished_recording(row, done)
        await ledger.recording_finished(finished)
        recovered.append(finished)
        log.warning(
            "recording %s of consult %s was recovered after a crash (%.1f s)",
            finished.id,
            finished.consult_id,
            finished.duration_s,
        )
    for row in unfinished.values():
        log.error(
            "recording %s of consult %s has no file to recover; check %s",
            row.id,
            row.consult_id,
            partial_dir,
        )
    return recovered
