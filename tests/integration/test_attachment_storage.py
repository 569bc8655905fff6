"""Attachment files on a real disk: durable and atomic, nothing left by a failed stream, and
keys that could leave the folder refused."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from media.attachments import LocalAttachmentFiles
from media.storage import UnsafeStorageKey
from rooms.consults.errors import NotFound

CONSULT, ATTACHMENT = "c" * 32, "a" * 32
KEY = f"{CONSULT}/{ATTACHMENT}"


async def chunks(*parts: bytes) -> AsyncIterator[bytes]:
    for part in parts:
        yield part


async def failing_after(data: bytes) -> AsyncIterator[bytes]:
    yield data
    raise RuntimeError("the client went away")


def everything(root: Path) -> list[Path]:
    return sorted(p for p in (root / "attachments").rglob("*"))


async def test_a_file_is_written_hashed_and_read_back(tmp_path: Path) -> None:
    files = LocalAttachmentFiles(tmp_path)
    data = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 2000  # > one write buffer
    stored = await files.write(KEY, chunks(data[:1000], data[1000:]))
    assert (stored.bytes, stored.sha256) == (len(data), hashlib.sha256(data).hexdigest())
    path = tmp_path / "attachments" / CONSULT / ATTACHMENT
    assert path.read_bytes() == data
    assert path.stat().st_mode & 0o777 == 0o600
    assert files.size(KEY) == len(data)
    assert b"".join([c async for c in files.chunks(KEY)]) == data
    assert everything(tmp_path) == [path.parent, path]  # no partial file left


async def test_a_failed_stream_leaves_no_file_and_no_folder(tmp_path: Path) -> None:
    files = LocalAttachmentFiles(tmp_path)
    with pytest.raises(RuntimeError, match="went away"):
        await files.write(KEY, failing_after(b"x" * 10_000))
    assert everything(tmp_path) == []
    with pytest.raises(NotFound):
        files.size(KEY)


async def test_delete_removes_the_file_and_its_empty_folder(tmp_path: Path) -> None:
    files = LocalAttachmentFiles(tmp_path)
    await files.write(KEY, chunks(b"%PDF-1.4"))
    await files.delete(KEY)
    await files.delete(KEY)  # already gone: fine
    assert everything(tmp_path) == []


@pytest.mark.parametrize(
    "key", ["../escape", "/etc/passwd", f"{CONSULT}/../../x", f"{CONSULT}\\x", f"{CONSULT}/.x"]
)
async def test_keys_that_could_leave_the_folder_are_refused(tmp_path: Path, key: str) -> None:
    files = LocalAttachmentFiles(tmp_path)
    with pytest.raises(UnsafeStorageKey):
        await files.write(key, chunks(b"x"))
    assert everything(tmp_path) == []


async def test_a_symlinked_consult_folder_is_refused(tmp_path: Path) -> None:
    files = LocalAttachmentFiles(tmp_path)
    outside = tmp_path / "outside"
    outside.mkdir()
    (tmp_path / "attachments" / CONSULT).symlink_to(outside)
    with pytest.raises(UnsafeStorageKey, match="symlink"):
        await files.write(KEY, chunks(b"x"))
    assert list(outside.iterdir()) == []
