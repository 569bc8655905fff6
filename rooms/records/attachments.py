"""Attachments of a consult booking: ultrasound stills, images and PDFs, checked and audited.

An attachment is accepted only when

- its file name is a plain name (no path: `/`, `\\`, `..`, a drive letter, NUL or other control
  or format characters, Windows-reserved characters or device names, surrounding spaces; not
  empty, at most `MAX_FILE_NAME_CHARS`). A bad name is *refused* with `invalid_attachment`,
  never silently rewritten: the doctor renames the file and tries again. The name is only ever
  shown; the file is stored under a key the server chooses (`<consult>/<attachment id>`);
- its content is one of `ALLOWED_TYPES`, decided by the content's first bytes (magic numbers),
  and the media type the client declared agrees with it: an HTML page or a program renamed
  `.png` is refused;
- it is at most `AttachmentLimits.max_bytes` long, counted while the bytes stream in (the body
  is never buffered), and the consult holds fewer than `AttachmentLimits.max_per_consult`.

The booking institution's exam-room doctors (`Action.ATTACH_FILE`) attach files while the
consult is not finished; everyone who may view the consult (`Action.VIEW_ATTACHMENTS`) lists
and reads them, the specialist of the specialty too while the request is still open. Every
upload (`attachment.added`) and every read of the bytes (`attachment.viewed`) is audited.

The bytes live behind the `AttachmentFiles` port (`media.attachments` on local disk): written to
a temporary file, fsynced, renamed into place; only then are the row and its audit entry written
in one transaction. A refused or failed upload leaves neither a file nor a row.
"""

from __future__ import annotations

import re
import unicodedata
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from rooms.consults.audit import AuditEntry
from rooms.consults.consult import Consult
from rooms.consults.errors import DomainError, IllegalTransition, NotFound
from rooms.consults.lifecycle import FINISHED
from rooms.consults.people import User
from rooms.consults.permissions import Action
from rooms.consults.ports import ConsultStore
from rooms.consults.service import Clock, load_consult, load_permitted, utc_now
from rooms.records.ports import AttachmentStore

ATTACHMENT_MAX_BYTES = 20 * 1024 * 1024
"""Largest attachment, in bytes (20 MiB): an ultrasound still is a few hundred KiB, a scanned
multi-page report a few MiB. Larger uploads are cut off with `attachment_too_large` as soon as
the limit is passed."""

ATTACHMENTS_PER_CONSULT = 20
"""Most attachments one consult may hold; a further upload gets `too_many_attachments`."""

MAX_FILE_NAME_CHARS = 200
"""Longest display file name, in characters."""

SNIFF_BYTES = 16
"""How many leading bytes decide the type (the longest signature checked is 12)."""


@dataclass(frozen=True, slots=True)
class AttachmentLimits:
    max_bytes: int = ATTACHMENT_MAX_BYTES
    max_per_consult: int = ATTACHMENTS_PER_CONSULT


class InvalidAttachment(DomainError):
    """A file that is not accepted: bad name, type not allowed, or content not matching the
    declared type; nothing was stored."""

    code = "invalid_attachment"


class AttachmentTooLarge(DomainError):
    """A file longer than `AttachmentLimits.max_bytes`; nothing was stored."""

    code = "attachment_too_large"


class TooManyAttachments(DomainError):
    """The consult already holds `AttachmentLimits.max_per_consult` attachments."""

    code = "too_many_attachments"


# ---- the file's type, from its content -----------------------------------------------------

PNG, JPEG, PDF, WEBP = "image/png", "image/jpeg", "application/pdf", "image/webp"
ALLOWED_TYPES = (PNG, JPEG, PDF, WEBP)
"""The media types teleconsult accepts and serves back."""

TYPE_ALIASES = {"image/jpg": JPEG, "image/pjpeg": JPEG, "application/x-pdf": PDF}
"""Non-standard names some clients send for allowed types."""


def sniff(head: bytes) -> str | None:
    """The allowed media type the content starts like, or None."""
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return PNG
    if head.startswith(b"\xff\xd8\xff"):
        return JPEG
    if head.startswith(b"%PDF-"):
        return PDF
    if len(head) >= 12 and head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return WEBP
    return None


def declared_type(raw: str | None) -> str:
    """The client's declared media type, normalised; `InvalidAttachment` unless allowed."""
    essence = (raw or "").split(";", 1)[0].strip().lower()
    essence = TYPE_ALIASES.get(essence, essence)
    if essence not in ALLOWED_TYPES:
        shown = essence[:80] or "none"
        raise InvalidAttachment(
            f"files of type {shown} are not accepted; allowed: PNG, JPEG, WebP images and PDF"
        )
    return essence


def content_type(head: bytes, declared: str) -> str:
    """The media type of content starting with `head`, if it agrees with `declared`."""
    found = sniff(head)
    if found is None:
        raise InvalidAttachment(
            "the file's content is not a PNG, JPEG or WebP image nor a PDF (whatever its name says)"
        )
    if found != declared:
        raise InvalidAttachment(f"the file was sent as {declared} but its content is {found}")
    return found


# ---- the file's name -----------------------------------------------------------------------

_DRIVE = re.compile(r"^[A-Za-z]:")
_WINDOWS_RESERVED_CHARS = frozenset('<>:"|?*')
_WINDOWS_DEVICES = frozenset(
    {"CON", "PRN", "AUX", "NUL"} | {f"COM{i}" for i in range(10)} | {f"LPT{i}" for i in range(10)}
)


def file_name(name: str | None) -> str:
    """`name` if it is a plain file name to show; `InvalidAttachment` saying why not.

    Nothing is stripped or replaced: a name that needs changing is refused.
    """
    if name is None or name == "":
        raise InvalidAttachment("the file has no name")
    if len(name) > MAX_FILE_NAME_CHARS:
        raise InvalidAttachment(
            f"the file name is longer than {MAX_FILE_NAME_CHARS} characters ({len(name)})"
        )
    if "\x00" in name:
        raise InvalidAttachment("the file name contains a NUL character")
    if "/" in name or "\\" in name:
        raise InvalidAttachment("the file name contains a path ('/' or '\\'); send the name only")
    if ".." in name:
        raise InvalidAttachment("the file name contains '..'; rename the file")
    if _DRIVE.match(name):
        raise InvalidAttachment("the file name starts with a drive letter; send the name only")
    for char in name:
        if unicodedata.category(char) in ("Cc", "Cf", "Zl", "Zp"):
            raise InvalidAttachment(
                f"the file name contains the control character U+{ord(char):04X}"
            )
        if char in _WINDOWS_RESERVED_CHARS:
            raise InvalidAttachment(f"the file name contains {char!r}, which file names may not")
    if name != name.strip():
        raise InvalidAttachment("the file name starts or ends with a space")
    if name.startswith("."):
        raise InvalidAttachment("the file name starts with '.'")
    if name.endswith("."):
        raise InvalidAttachment("the file name ends with '.'")
    if name.split(".", 1)[0].strip().upper() in _WINDOWS_DEVICES:
        raise InvalidAttachment("the file name is a reserved device name")
    return name


# ---- the attachment ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Attachment:
    id: str
    consult_id: str
    uploader_id: int
    file_name: str
    """The name to show (checked by `file_name`); never used to find the file."""
    media_type: str
    """One of `ALLOWED_TYPES`, decided from the content."""
    bytes: int
    sha256: str
    storage_key: str
    """Where the bytes are in attachment storage: ``<consult_id>/<id>``."""
    uploaded_at: datetime

    @staticmethod
    def new_id() -> str:
        return uuid.uuid4().hex


def attachment_key(consult_id: str, attachment_id: str) -> str:
    """The storage key of an attachment's bytes: server-chosen, never the client's name."""
    return f"{consult_id}/{attachment_id}"


@dataclass(frozen=True, slots=True)
class StoredFile:
    bytes: int
    sha256: str


class AttachmentFiles(Protocol):
    """Where attachments' bytes are kept (local disk today; S3-compatible later)."""

    async def write(self, key: str, chunks: AsyncIterator[bytes]) -> StoredFile:
        """Stream `chunks` into a temporary file, make it durable and move it under `key`.

        If `chunks` raises (a refused or broken upload), the temporary file is removed and the
        error propagates: nothing is left under `key`.
        """
        ...

    async def delete(self, key: str) -> None:
        """Remove the file under `key` (a row that could not be written); missing is fine."""
        ...

    def size(self, key: str) -> int:
        """The file's size; `NotFound` if it is missing."""
        ...

    def chunks(self, key: str) -> AsyncIterator[bytes]:
        """The whole file, in chunks, read off the event loop."""
        ...


async def checked(
    chunks: AsyncIterator[bytes], declared: str, max_bytes: int, found: list[str]
) -> AsyncIterator[bytes]:
    """`chunks` passed through while checking them: the content type (from the first
    `SNIFF_BYTES`, appended to `found`) must agree with `declared`, and the total must stay
    within `max_bytes`. Raises as soon as either fails, so the writer stops and cleans up."""
    head = b""
    total = 0
    sniffed = False
    async for chunk in chunks:
        if not chunk:
            continue
        total += len(chunk)
        if total > max_bytes:
            raise AttachmentTooLarge(f"the file is larger than the limit of {max_bytes} bytes")
        if not sniffed:
            head += chunk
            if len(head) < SNIFF_BYTES:
                continue
            found.append(content_type(head, declared))
            sniffed = True
            chunk, head = head, b""
        yield chunk
    if not sniffed:
        if not head:
            raise InvalidAttachment("the file is empty")
        found.append(content_type(head, declared))
        yield head


class AttachmentService:
    """`consults` keeps the consults, `store` the attachments' metadata, `files` their bytes."""

    def __init__(
        self,
        consults: ConsultStore,
        store: AttachmentStore,
        files: AttachmentFiles,
        limits: AttachmentLimits | None = None,
        clock: Clock = utc_now,
    ) -> None:
        self.consults = consults
        self.store = store
        self.files = files
        self.limits = limits or AttachmentLimits()
        self.clock = clock

    async def authorize_upload(self, user: User, consult_id: str) -> Consult:
        """The consult, if `user` may attach a file to it now; raises otherwise."""
        consult = await load_permitted(self.consults, user, consult_id, Action.ATTACH_FILE)
        if consult.status in FINISHED:
            raise IllegalTransition(consult.status.value, "take attachments")
        if await self.store.count_attachments(consult_id) >= self.limits.max_per_consult:
            raise TooManyAttachments(
                f"a consult holds at most {self.limits.max_per_consult} attachments"
            )
        return consult

    async def upload(
        self,
        user: User,
        consult_id: str,
        name: str | None,
        media_type: str | None,
        chunks: AsyncIterator[bytes],
    ) -> Attachment:
        """Store one file for the consult: checks, durable bytes, then row + audit together.

        The caller must not have read `chunks` yet; it is consumed here (or not at all when a
        check fails first).
        """
        await self.authorize_upload(user, consult_id)
        shown = file_name(name)
        declared = declared_type(media_type)
        attachment_id = Attachment.new_id()
        key = attachment_key(consult_id, attachment_id)
        found: list[str] = []
        stored = await self.files.write(
            key, checked(chunks, declared, self.limits.max_bytes, found)
        )
        try:
            # The consult may have ended while the file streamed in: then it takes no file, and
            # the bytes just written belong to nothing (deleted below).
            status = (await load_consult(self.consults, consult_id)).status
            if status in FINISHED:
                raise IllegalTransition(status.value, "take attachments")
            now = self.clock()
            attachment = Attachment(
                id=attachment_id,
                consult_id=consult_id,
                uploader_id=user.id,
                file_name=shown,
                media_type=found[0],
                bytes=stored.bytes,
                sha256=stored.sha256,
                storage_key=key,
                uploaded_at=now,
            )
            await self.store.add_attachment(
                attachment,
                AuditEntry(
                    at=now,
                    actor_id=user.id,
                    action="attachment.added",
                    consult_id=consult_id,
                    detail={
                        "attachment": attachment.id,
                        "media_type": attachment.media_type,
                        "bytes": attachment.bytes,
                        "sha256": attachment.sha256,
                    },
                ),
                self.limits.max_per_consult,
            )
        except BaseException:
            await self.files.delete(key)
            raise
        return attachment

    async def list(self, user: User, consult_id: str) -> list[Attachment]:
        """The consult's attachments, oldest first, for those who may see them."""
        await load_permitted(self.consults, user, consult_id, Action.VIEW_ATTACHMENTS)
        return await self.store.list_attachments(consult_id)

    async def viewable(self, user: User, attachment_id: str) -> Attachment:
        """The attachment, if `user` may read it; raises otherwise."""
        attachment = await self.store.get_attachment(attachment_id)
        if attachment is None:
            raise NotFound(f"no attachment {attachment_id}")
        await load_permitted(self.consults, user, attachment.consult_id, Action.VIEW_ATTACHMENTS)
        return attachment

    async def open(self, user: User, attachment_id: str) -> Attachment:
        """The attachment to send to `user`, its reading audited before any byte goes out."""
        attachment = await self.viewable(user, attachment_id)
        self.files.size(attachment.storage_key)  # NotFound if the file is gone
        await self.consults.append_audit(
            AuditEntry(
                at=self.clock(),
                actor_id=user.id,
                action="attachment.viewed",
                consult_id=attachment.consult_id,
                detail={"attachment": attachment.id, "bytes": attachment.bytes},
            )
        )
        return attachment
