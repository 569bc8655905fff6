"""Whose partial recording files are whose: one folder per writer, held by an OS file lock.

Every process that records (the embedded media node of `teleconsult serve`, or a
`teleconsult media-node`) writes its partial files into ``<partial>/<writer id>/`` and holds an
exclusive `fcntl.flock` on ``<partial>/<writer id>/.writer.lock`` for as long as it runs. The
kernel drops the lock when the process dies, however it dies (SIGKILL, OOM, power cut of a
container), so "the lock is free" means exactly "nobody is writing here".

Recovery (`media.recovery`) only ever finalizes the files of a folder whose lock it could take:
a starting process never touches another live process's `.part` files, which is what used to
happen when two processes shared one data directory. While it recovers a folder it holds that
folder's lock, so two processes starting together do not recover the same files twice, and a
writer that restarts under the same id waits (`claim`) until a recovery of its folder is done.

Files directly in ``<partial>/`` come from a version before these folders; nothing writes there
any more, so they are recovered as a folder of their own under ``<partial>/.legacy.lock``.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from media.storage import safe_name

LOCK_NAME = ".writer.lock"
LEGACY_LOCK_NAME = ".legacy.lock"
QUARANTINE_DIR = "quarantine"
CLAIM_WAIT_SECONDS = 30.0
"""How long `claim` waits for a recovery of the same folder (by another process) to finish."""


class FolderInUse(RuntimeError):
    """Another live process holds this writer id's folder."""


@dataclass
class WriterFolder:
    """A partial folder and the open descriptor whose lock says its writer is alive."""

    writer_id: str
    path: Path
    _fd: int | None

    def release(self) -> None:
        """Give the folder up (the process stops writing into it)."""
        if self._fd is not None:
            os.close(self._fd)  # closing the descriptor drops the flock
            self._fd = None


def _try_lock(lock_path: Path) -> int | None:
    """An open descriptor holding the exclusive lock on `lock_path`, or None if it is held."""
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    return fd


def claim(partial_root: Path, writer_id: str, wait: float = CLAIM_WAIT_SECONDS) -> WriterFolder:
    """Take ``<partial_root>/<writer_id>/`` for this process (blocking, a short while at most).

    Raises `FolderInUse` if another live process is writing there (two processes configured
    with the same `MEDIA_NODE_ID`), after waiting up to `wait` seconds in case the holder is
    only recovering it.
    """
    folder = partial_root / safe_name(writer_id)
    folder.mkdir(parents=True, exist_ok=True)
    deadline = time.monotonic() + wait
    while True:
        fd = _try_lock(folder / LOCK_NAME)
        if fd is not None:
            # The descriptor must not leak into child processes (they would keep the lock).
            os.set_inheritable(fd, False)
            return WriterFolder(writer_id, folder, fd)
        if time.monotonic() >= deadline:
            raise FolderInUse(
                f"another live process is writing recordings as {writer_id!r} "
                f"({folder}); give each process its own MEDIA_NODE_ID"
            )
        time.sleep(0.1)


def is_alive(partial_root: Path, writer_id: str) -> bool:
    """Whether a live process holds `writer_id`'s folder now."""
    lock = partial_root / safe_name(writer_id) / LOCK_NAME
    if not lock.exists():
        return False
    fd = _try_lock(lock)
    if fd is None:
        return True
    os.close(fd)
    return False


@contextlib.contextmanager
def dead_folder(partial_root: Path, writer_id: str) -> Iterator[Path | None]:
    """``<partial_root>/<writer_id>/`` with its lock held by us while the block runs, if its
    writer is dead; None if a live process holds it (or there is no such folder)."""
    folder = partial_root / safe_name(writer_id)
    if not folder.is_dir():
        yield None
        return
    fd = _try_lock(folder / LOCK_NAME)
    if fd is None:
        yield None
        return
    try:
        yield folder
    finally:
        os.close(fd)


def writer_ids(partial_root: Path) -> list[str]:
    """The writer folders under `partial_root` (live or dead), sorted."""
    if not partial_root.is_dir():
        return []
    return sorted(
        p.name
        for p in partial_root.iterdir()
        if p.is_dir() and p.name != QUARANTINE_DIR and not p.name.startswith(".")
    )


@contextlib.contextmanager
def legacy_folder(partial_root: Path) -> Iterator[Path | None]:
    """The flat partial folder of older versions, locked while the block runs; None if another
    process is recovering it right now."""
    partial_root.mkdir(parents=True, exist_ok=True)
    fd = _try_lock(partial_root / LEGACY_LOCK_NAME)
    if fd is None:
        yield None
        return
    try:
        yield partial_root
    finally:
        os.close(fd)


def remove_if_empty(folder: Path) -> None:
    """Drop a dead writer's folder once nothing but its lock file is left (call it with the
    lock still held); a quarantine inside keeps it."""
    if any(p.name != LOCK_NAME for p in folder.iterdir()):
        return
    with contextlib.suppress(OSError):
        (folder / LOCK_NAME).unlink()
        folder.rmdir()
