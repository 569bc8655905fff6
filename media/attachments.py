"""Attachment storage on local disk (`rooms.records.attachments.AttachmentFiles`), kept like
recordings.

Files live in ``<root>/attachments/<consult_id>/<attachment_id>`` (root is `RECORDINGS_DIR`,
by default ``$DATA_DIR/media``), a `media.storage.KeyedFolder` as recordings are: keys are checked
(no absolute path, ``..``, backslash, NUL, hidden name), and a symlink leading out of the folder
is refused.

An upload streams into ``.<id>.partial`` next to its final place (created exclusively, mode
0600), hashing (SHA-256) as it goes; when the stream ends the file is fsynced and atomically
renamed, and the rename is made durable with an fsync of the folder. If the stream raises (a
check failed, the client went away), the partial file is removed and nothing remains.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
from collections.abc import AsyncIterator
from pathlib import Path

from media.storage import KeyedFolder, fsync_directory, replace_durably
from rooms.consults.errors import NotFound
from rooms.records.attachments import StoredFile

WRITE_BUFFER_BYTES = 256 * 1024
"""Bytes gathered in memory before one write (off the event loop) to the partial file."""

READ_CHUNK_BYTES = 256 * 1024
"""How much is read (off the event loop) and sent to the client at a time."""


class LocalAttachmentFiles:
    def __init__(self, root: Path) -> None:
        self.folder = KeyedFolder(root / "attachments")

    async def write(self, key: str, chunks: AsyncIterator[bytes]) -> StoredFile:
        final = self.folder.path(key)
        folder = final.parent
        await asyncio.to_thread(folder.mkdir, parents=True, exist_ok=True)
        partial = folder / f".{final.name}.partial"
        fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        digest = hashlib.sha256()
        total = 0
        try:
            buffer = bytearray()
            async for chunk in chunks:
                digest.update(chunk)
                total += len(chunk)
                buffer += chunk
                if len(buffer) >= WRITE_BUFFER_BYTES:
                    await asyncio.to_thread(_write_all, fd, bytes(buffer))
                    buffer.clear()
            if buffer:
                await asyncio.to_thread(_write_all, fd, bytes(buffer))
            await asyncio.to_thread(os.fsync, fd)
        except BaseException:
            os.close(fd)
            await asyncio.to_thread(_discard, partial)
            raise
        os.close(fd)
        await asyncio.to_thread(replace_durably, partial, final)
        return StoredFile(bytes=total, sha256=digest.hexdigest())

    async def delete(self, key: str) -> None:
        await asyncio.to_thread(_discard, self.folder.path(key))

    def size(self, key: str) -> int:
        try:
            return self.folder.path(key).stat().st_size
        except FileNotFoundError:
            raise NotFound(f"the file of attachment {key} is missing") from None

    async def chunks(self, key: str) -> AsyncIterator[bytes]:
        try:
            fd = self.folder.open_for_reading(key)
        except FileNotFoundError:
            raise NotFound(f"the file of attachment {key} is missing") from None
        try:
            position = 0
            while chunk := await asyncio.to_thread(os.pread, fd, READ_CHUNK_BYTES, position):
                yield chunk
                position += len(chunk)
        finally:
            os.close(fd)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def _discard(path: Path) -> None:
    """Remove `path` (and its consult folder when that is left empty), durably."""
    with contextlib.suppress(FileNotFoundError):
        path.unlink()
        fsync_directory(path.parent)
    with contextlib.suppress(OSError):
        path.parent.rmdir()  # only succeeds when empty
