"""Local recording storage on a real disk: reading ranges, and symlinks that lead out of it."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from media.storage import LocalRecordingStorage, RecordingNotFound, UnsafeStorageKey


def stored(storage: LocalRecordingStorage, key: str, data: bytes) -> None:
    staged = storage.staging_path(key)
    staged.write_bytes(data)
    storage.commit(key, staged)


def test_a_committed_file_is_read_back_by_byte_ranges(tmp_path: Path) -> None:
    storage = LocalRecordingStorage(tmp_path)
    stored(storage, "c1/r1.webm", bytes(range(100)))

    assert storage.exists("c1/r1.webm")
    assert storage.size("c1/r1.webm") == 100
    assert storage.open_range("c1/r1.webm", 10, 14) == bytes([10, 11, 12, 13])
    assert storage.open_range("c1/r1.webm", 98, 1000) == bytes([98, 99])
    assert storage.open_range("c1/r1.webm", 200, 300) == b""
    assert not any(p.name.endswith(".staging") for p in storage.recordings_dir.rglob("*"))


def test_bad_ranges_and_missing_files_are_told_apart(tmp_path: Path) -> None:
    storage = LocalRecordingStorage(tmp_path)
    stored(storage, "c1/r1.webm", b"abc")

    with pytest.raises(ValueError):
        storage.open_range("c1/r1.webm", 2, 1)
    with pytest.raises(RecordingNotFound):
        storage.open_range("c1/nope.webm", 0, 1)
    with pytest.raises(RecordingNotFound):
        storage.size("c1/nope.webm")
    assert not storage.exists("c1/nope.webm")


def test_a_consult_folder_symlinked_out_of_the_storage_is_refused(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.webm").write_bytes(b"not yours")
    storage = LocalRecordingStorage(tmp_path / "data")
    os.symlink(outside, storage.recordings_dir / "c1")

    with pytest.raises(UnsafeStorageKey):
        storage.open_range("c1/secret.webm", 0, 100)
    with pytest.raises(UnsafeStorageKey):
        storage.size("c1/secret.webm")
    with pytest.raises(UnsafeStorageKey):
        storage.staging_path("c1/new.webm")


def test_a_recording_file_symlinked_out_of_the_storage_is_refused(tmp_path: Path) -> None:
    secret = tmp_path / "secret"
    secret.write_bytes(b"not yours")
    storage = LocalRecordingStorage(tmp_path / "data")
    (storage.recordings_dir / "c1").mkdir()
    os.symlink(secret, storage.recordings_dir / "c1" / "r1.webm")

    with pytest.raises(UnsafeStorageKey):
        storage.open_range("c1/r1.webm", 0, 100)


def test_path_tricks_are_refused_before_touching_the_disk(tmp_path: Path) -> None:
    storage = LocalRecordingStorage(tmp_path / "data")
    (tmp_path / "outside.webm").write_bytes(b"not yours")

    for key in ("../../outside.webm", str(tmp_path / "outside.webm"), "c1/\x00", "..\\x"):
        with pytest.raises(UnsafeStorageKey):
            storage.open_range(key, 0, 10)
