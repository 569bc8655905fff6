"""After a crash: finalize the recordings a dead process was writing, and say so.

At start-up (and on `teleconsult recover`) every `.part` file left in a partial folder whose
writer is dead (`media.writer_folders`: its lock is free) is remuxed, hashed and renamed into
place by `media.recording.recover`; its `Recording` row (left in status `recording`) is
completed with `recovered = true`, and the consult's audit log gets a `recording.recovered`
entry. The folders of live writers (another `serve` or media node on the same data directory)
are left alone. A row whose file cannot be found in any partial folder is reported and left for
an operator.
"""

from __future__ import annotations

import logging
from pathlib import Path

from media import writer_folders
from media.consult_recorder import finished_recording
from media.recording import FinishedTrack, recover
from media.recording.sidecar import SIDECAR_SUFFIX
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


def _being_written(partial_root: Path) -> set[str]:
    """Recording ids with a sidecar in any partial folder (a live writer's, or one left for the
    next recovery): their rows are not missing a file."""
    if not partial_root.is_dir():
        return set()
    return {
        p.name.removesuffix(SIDECAR_SUFFIX)
        for p in partial_root.rglob(f"*{SIDECAR_SUFFIX}")
        if writer_folders.QUARANTINE_DIR not in p.relative_to(partial_root).parts
    }


async def recover_dead_writers(
    partial_root: Path,
    storage: RecordingStorage,
    ledger: RecordingService,
    only: str | None = None,
    own: Path | None = None,
) -> list[Recording]:
    """Recover the partial files of every dead writer under `partial_root` (or of writer `only`);
    the folders of live writers are not touched. `own` is this process's folder, locked by it
    (`writer_folders.claim`): what a previous process of the same id left there comes first.
    The recordings finalized."""
    recovered: list[Recording] = []
    unfinished = {r.id: r for r in await ledger.unfinished()}
    if own is not None:
        recovered += await _recover_folder(own, storage, ledger, unfinished)
    names = [only] if only is not None else writer_ids_with_legacy(partial_root)
    for name in names:
        lock = (
            writer_folders.legacy_folder(partial_root)
            if name == LEGACY
            else writer_folders.dead_folder(partial_root, name)
        )
        with lock as folder:
            if folder is None:
                if name != LEGACY and (partial_root / name).is_dir():
                    log.info("partial folder %s has a live writer; left alone", name)
                continue
            recovered += await _recover_folder(folder, storage, ledger, unfinished)
            if name != LEGACY:
                writer_folders.remove_if_empty(folder)
    live = _being_written(partial_root)
    for row in unfinished.values():
        if row.id in live:
            continue
        log.error(
            "recording %s of consult %s has no file to recover; check %s",
            row.id,
            row.consult_id,
            partial_root,
        )
    return recovered


LEGACY = ""
"""The name `recover_dead_writers` gives the flat partial folder of older versions."""


def writer_ids_with_legacy(partial_root: Path) -> list[str]:
    return [LEGACY, *writer_folders.writer_ids(partial_root)]


async def _recover_folder(
    partial_dir: Path,
    storage: RecordingStorage,
    ledger: RecordingService,
    unfinished: dict[str, Recording],
) -> list[Recording]:
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
    return recovered
