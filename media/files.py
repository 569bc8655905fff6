"""Finished recordings' bytes for the HTTP layer (`rooms.calls.media_port.RecordingFiles`)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from media.storage import RecordingNotFound, RecordingStorage
from rooms.consults.errors import NotFound

CHUNK_BYTES = 256 * 1024
"""How much is read (off the event loop) and written to the client at a time."""


class StoredRecordingFiles:
    """Reads through the `RecordingStorage` (local disk or a bucket), always in the executor:
    a bucket's answer may take a network round trip. A bucket that does not answer raises
    `RecordingStorageUnavailable` (503)."""

    def __init__(self, storage: RecordingStorage) -> None:
        self.storage = storage

    async def size(self, storage_key: str) -> int:
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(None, self.storage.size, storage_key)
        except RecordingNotFound:
            raise NotFound(f"the file of recording {storage_key} is missing") from None

    async def chunks(self, storage_key: str, first: int, last: int) -> AsyncIterator[bytes]:
        loop = asyncio.get_running_loop()
        position = first
        while position <= last:
            end = min(last + 1, position + CHUNK_BYTES)
            try:
                chunk = await loop.run_in_executor(
                    None, self.storage.open_range, storage_key, position, end
                )
            except RecordingNotFound:
                raise NotFound(f"the file of recording {storage_key} is missing") from None
            if not chunk:
                return
            yield chunk
            position += len(chunk)
