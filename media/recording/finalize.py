"""Turning a partial file into a finished recording, on stop or after a crash.

`finalize_track` is the one way a partial file becomes a finished one: remux it into a staging
file next to its final place (rebuilding the index), hash it, fsync it, rename it into place
(`RecordingStorage.commit`), and only then remove the partial file and its sidecar. A crash at
any point leaves either the partial file (finalized again at the next start) or the finished
file, never neither.

`recover` runs at start-up over the partial folder. Files it cannot make sense of are moved to
``quarantine/`` beside them, with a warning in the log; a recording file is never deleted.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
from pathlib import Path

from media.recording.container import remux
from media.recording.errors import NothingDecodable
from media.recording.model import FinishedTrack, TrackInfo
from media.recording.sidecar import (
    PART_SUFFIX,
    SIDECAR_SUFFIX,
    TEMP_SUFFIX,
    part_path,
    read_sidecar,
    sidecar_path,
)
from media.storage import RecordingStorage, fsync_directory, recording_key

log = logging.getLogger(__name__)

QUARANTINE_DIR = "quarantine"
HASH_CHUNK_BYTES = 1 << 20


def finalize_track(
    partial_dir: Path, info: TrackInfo, storage: RecordingStorage, recovered: bool
) -> FinishedTrack:
    """Finalize the partial file of `info`'s track into `storage`. Blocking: run in a thread.

    Raises `NothingDecodable` (and leaves the partial file alone) if it has no readable frame.
    """
    part = part_path(partial_dir, info.recording_id, info.extension)
    key = recording_key(info.consult_id, info.recording_id, info.extension)
    staged = storage.staging_path(key)
    try:
        result = remux(part, staged, info.container)
        sha256, size = _hash(staged)
        storage.commit(key, staged)
    except BaseException:
        staged.unlink(missing_ok=True)
        raise
    part.unlink()
    sidecar_path(partial_dir, info.recording_id).unlink()
    fsync_directory(partial_dir)
    log.info(
        "recording %s finalized%s: %s, %d frames, %.1f s, %d bytes%s",
        info.recording_id,
        " (recovered)" if recovered else "",
        key,
        result.frames,
        result.duration_s,
        size,
        ", cut short by a crash" if result.damaged else "",
    )
    return FinishedTrack(
        recording_id=info.recording_id,
        path=key,
        container=info.container,
        codec=info.codec,
        kind=info.kind,
        duration_s=result.duration_s,
        bytes=size,
        sha256=sha256,
        frames=result.frames,
        started_offset_s=info.started_offset_s,
        recovered=recovered,
        started_at=info.started_at,
        metadata=info.metadata,
    )


def _hash(path: Path) -> tuple[str, int]:
    digest = hashlib.sha256()
    size = 0
    with path.open("rb") as f:
        while chunk := f.read(HASH_CHUNK_BYTES):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


async def recover(partial_dir: Path, storage: RecordingStorage) -> list[FinishedTrack]:
    """Finalize every track a crash left in `partial_dir`; the tracks rescued.

    Call it at start-up, before any recorder writes into the same folder. The work (remux,
    hashing, fsync) runs in a thread. Running it again does nothing more.
    """
    return await asyncio.to_thread(recover_blocking, partial_dir, storage)


def recover_blocking(partial_dir: Path, storage: RecordingStorage) -> list[FinishedTrack]:
    """`recover`, in the calling thread."""
    if not partial_dir.is_dir():
        return []
    for temp in partial_dir.glob(f"*{SIDECAR_SUFFIX}{TEMP_SUFFIX}"):
        # A sidecar write that never reached its rename: its track wrote no media yet.
        temp.unlink()
    claimed: set[Path] = set()
    rescued: list[FinishedTrack] = []
    for sidecar in sorted(partial_dir.glob(f"*{SIDECAR_SUFFIX}")):
        try:
            info = read_sidecar(sidecar)
            if sidecar.name != f"{info.recording_id}{SIDECAR_SUFFIX}":
                raise ValueError(f"names recording {info.recording_id}")
        except (ValueError, OSError) as e:
            _quarantine(sidecar, f"unreadable sidecar: {e}")
            continue
        part = part_path(partial_dir, info.recording_id, info.extension)
        claimed.add(part)
        if not part.exists():
            _sidecar_alone(sidecar, info, storage)
            continue
        try:
            rescued.append(finalize_track(partial_dir, info, storage, recovered=True))
        except NothingDecodable as e:
            _quarantine(part, f"no readable frame ({e})")
            _quarantine(sidecar, "its partial file had no readable frame")
        except Exception:
            log.exception("could not recover recording %s; left for the next start", part.name)
    for part in sorted(partial_dir.glob(f"*{PART_SUFFIX}")):
        if part not in claimed:
            _quarantine(part, "partial recording without a sidecar")
    return rescued


def _sidecar_alone(sidecar: Path, info: TrackInfo, storage: RecordingStorage) -> None:
    key = recording_key(info.consult_id, info.recording_id, info.extension)
    if storage.exists(key):
        # Finalized, then the crash came between removing the partial file and its sidecar.
        sidecar.unlink()
        fsync_directory(sidecar.parent)
    else:
        _quarantine(sidecar, "sidecar without a partial file: the track wrote no media")


def _quarantine(path: Path, reason: str) -> Path:
    folder = path.parent / QUARANTINE_DIR
    folder.mkdir(exist_ok=True)
    target = folder / path.name
    n = 0
    while target.exists():
        n += 1
        target = folder / f"{path.name}.{n}"
    os.replace(path, target)
    fsync_directory(folder)
    fsync_directory(path.parent)
    log.warning("recording file %s quarantined as %s: %s", path.name, target, reason)
    return target
