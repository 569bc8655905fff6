"""Recording storage: where finished recording files live, addressed by safe keys.

A recording file is named by a *storage key* such as ``<consult_id>/<recording_id>.webm``: a
relative path of ``/``-separated names, each of letters, digits, ``_``, ``-`` and ``.``, starting
with a letter or digit. Keys come from our own ids, but they also arrive in playback requests, so
every method checks the key first and refuses a path trick (absolute path, ``..``, a backslash, a
NUL, a hidden name, a symlink leading out of the storage root) with `UnsafeStorageKey`.

`RecordingStorage` is the port; `LocalRecordingStorage` keeps files in a data directory. An
S3-compatible store can implement the same port later: the recorder always writes to a local
`partial_dir` and a local staging file, and only `commit` moves a finished file into storage.

Methods are blocking (file I/O); async code calls them in a thread (`asyncio.to_thread`).
"""

from __future__ import annotations

import errno
import os
import re
from pathlib import Path
from typing import Protocol

SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,199}")
"""One component of a key: no separators, no NUL, not hidden, not `.`/`..`, at most 200 chars."""

MAX_KEY_DEPTH = 4
"""Keys are `<consult>/<file>` today; a few more levels are allowed, no more."""


class UnsafeStorageKey(ValueError):
    """A storage key (or a name meant to become part of one) that could escape the storage."""

    def __init__(self, key: str, reason: str) -> None:
        super().__init__(f"unsafe storage key {key!r}: {reason}")
        self.key = key
        self.reason = reason


class RecordingNotFound(LookupError):
    """No finished recording file under this key."""


def safe_name(name: str) -> str:
    """`name` if it can be one component of a storage key; raises `UnsafeStorageKey` otherwise."""
    if "\x00" in name:
        raise UnsafeStorageKey(name, "contains NUL")
    if "/" in name or "\\" in name:
        raise UnsafeStorageKey(name, "contains a path separator")
    if name in ("", ".", ".."):
        raise UnsafeStorageKey(name, "is empty or a relative directory name")
    if not SAFE_NAME.fullmatch(name):
        raise UnsafeStorageKey(name, "allowed: letters, digits, '_', '-', '.', not leading '.'")
    return name


def key_parts(key: str) -> tuple[str, ...]:
    """The names of a key, each checked; raises `UnsafeStorageKey` for any path trick."""
    if "\x00" in key:
        raise UnsafeStorageKey(key, "contains NUL")
    if "\\" in key:
        raise UnsafeStorageKey(key, "contains a backslash")
    if key.startswith("/"):
        raise UnsafeStorageKey(key, "is absolute")
    parts = tuple(key.split("/"))
    if len(parts) > MAX_KEY_DEPTH:
        raise UnsafeStorageKey(key, f"more than {MAX_KEY_DEPTH} levels")
    for part in parts:
        try:
            safe_name(part)
        except UnsafeStorageKey as bad:
            raise UnsafeStorageKey(key, f"component {part!r} {bad.reason}") from None
    return parts


def recording_key(consult_id: str, recording_id: str, extension: str) -> str:
    """The storage key of one finished track file: ``<consult_id>/<recording_id>.<extension>``."""
    key = f"{safe_name(consult_id)}/{safe_name(recording_id)}.{safe_name(extension)}"
    key_parts(key)  # the file name as a whole must be a safe name too (its length)
    return key


class RecordingStorage(Protocol):
    """Where recordings are written while recording, and kept once finished."""

    @property
    def partial_dir(self) -> Path:
        """Local directory for files being recorded (and their sidecars); always local disk."""
        ...

    def staging_path(self, key: str) -> Path:
        """A local path to write the finished file for `key` to, before `commit`."""
        ...

    def commit(self, key: str, staged: Path) -> None:
        """Durably move the file at `staged` under `key`: readers see all of it or nothing."""
        ...

    def exists(self, key: str) -> bool: ...

    def size(self, key: str) -> int:
        """Size in bytes of the file under `key`; `RecordingNotFound` if there is none."""
        ...

    def open_range(self, key: str, start: int, end: int) -> bytes:
        """Bytes ``[start, end)`` of the file under `key` (end is clamped to the file's size)."""
        ...


def fsync_directory(path: Path) -> None:
    """Make a rename or unlink in `path` durable."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def replace_durably(staged: Path, final: Path) -> None:
    """Atomically rename the (already fsynced) `staged` file to `final`, durably: readers see
    all of it or nothing, and the rename survives a power cut."""
    os.replace(staged, final)
    fsync_directory(final.parent)


class KeyedFolder:
    """A local folder whose files are named by storage keys (``<folder>/<key>``); every method
    checks the key, and a symlink leading out of the folder is refused."""

    def __init__(self, folder: Path) -> None:
        self.dir = folder.absolute()
        self.dir.mkdir(parents=True, exist_ok=True)
        self._real = self.dir.resolve()

    def path(self, key: str) -> Path:
        """Where the file for `key` lives; refuses keys that lead out of the folder."""
        path = self.dir.joinpath(*key_parts(key))
        # A symlink planted anywhere on the way (a consult folder, the file itself) must not
        # lead out of the folder.
        if not path.resolve().is_relative_to(self._real):
            raise UnsafeStorageKey(key, "leads out of the storage through a symlink")
        return path

    def open_for_reading(self, key: str) -> int:
        """A read-only descriptor of the file under `key` (the caller closes it);
        `FileNotFoundError` if there is none."""
        path = self.path(key)
        try:
            # O_NOFOLLOW: a symlink swapped in after the check above is refused, not followed.
            return os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
        except OSError as e:
            if e.errno == errno.ELOOP:
                raise UnsafeStorageKey(key, "is a symlink") from None
            raise


class LocalRecordingStorage:
    """Recordings in a local data directory: ``root/partial/`` and ``root/recordings/<key>``."""

    def __init__(self, root: Path) -> None:
        self.root = root.absolute()
        self._partial_dir = self.root / "partial"
        self._partial_dir.mkdir(parents=True, exist_ok=True)
        self._recordings = KeyedFolder(self.root / "recordings")
        self.recordings_dir = self._recordings.dir

    @property
    def partial_dir(self) -> Path:
        return self._partial_dir

    def final_path(self, key: str) -> Path:
        """Where the finished file for `key` lives; refuses keys that lead out of the storage."""
        return self._recordings.path(key)

    def staging_path(self, key: str) -> Path:
        final = self.final_path(key)
        final.parent.mkdir(parents=True, exist_ok=True)
        # Same folder as the final file (so `commit` is an atomic rename); the leading dot keeps
        # it out of the key space, since no key component may start with one.
        return final.with_name(f".{final.name}.staging")

    def commit(self, key: str, staged: Path) -> None:
        final = self.final_path(key)
        with staged.open("rb") as f:
            os.fsync(f.fileno())
        replace_durably(staged, final)

    def exists(self, key: str) -> bool:
        return self.final_path(key).is_file()

    def size(self, key: str) -> int:
        try:
            return self.final_path(key).stat().st_size
        except FileNotFoundError:
            raise RecordingNotFound(key) from None

    def open_range(self, key: str, start: int, end: int) -> bytes:
        if start < 0 or end < start:
            raise ValueError(f"bad byte range [{start}, {end})")
        try:
            fd = self._recordings.open_for_reading(key)
        except FileNotFoundError:
            raise RecordingNotFound(key) from None
        try:
            size = os.fstat(fd).st_size
            return os.pread(fd, max(0, min(end, size) - start), start)
        finally:
            os.close(fd)
