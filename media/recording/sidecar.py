"""The files of a track being recorded: ``<id>.<ext>.part`` and its sidecar ``<id>.json``.

The sidecar says what the partial file is (consult, participant, codec, when it started), so
that a partial file found after a crash can be finalized without the process that wrote it.
It is written atomically (temporary file, fsync, rename, fsync of the folder) before the
partial file gets its first byte: a partial file without a sidecar is never a normal state.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from media.recording.model import TrackInfo
from media.storage import fsync_directory

SIDECAR_SUFFIX = ".json"
PART_SUFFIX = ".part"
TEMP_SUFFIX = ".tmp"


def part_path(partial_dir: Path, recording_id: str, extension: str) -> Path:
    return partial_dir / f"{recording_id}.{extension}{PART_SUFFIX}"


def sidecar_path(partial_dir: Path, recording_id: str) -> Path:
    return partial_dir / f"{recording_id}{SIDECAR_SUFFIX}"


def write_sidecar(partial_dir: Path, info: TrackInfo) -> Path:
    """Durably write `info` as the track's sidecar; blocking (fsyncs), run it in a thread."""
    partial_dir.mkdir(parents=True, exist_ok=True)
    target = sidecar_path(partial_dir, info.recording_id)
    temp = target.with_name(target.name + TEMP_SUFFIX)
    with temp.open("w", encoding="utf-8") as f:
        json.dump(info.to_json(), f, ensure_ascii=False, indent=1)
        f.flush()
        os.fsync(f.fileno())
    os.replace(temp, target)
    fsync_directory(partial_dir)
    return target


def read_sidecar(path: Path) -> TrackInfo:
    """The track a sidecar describes; ValueError if it is unreadable or not ours."""
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ValueError(f"unreadable sidecar {path.name}: {e}") from None
    return TrackInfo.from_json(record)
