"""Attachments on plain objects: type sniffing, size, every file-name trick, who may do what,
and that a refused upload stores nothing and audits nothing."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator, Iterable
from dataclasses import replace

import pytest

from rooms.consults.audit import AuditEntry
from rooms.consults.consult import Consult
from rooms.consults.errors import IllegalTransition, NotFound, PermissionDenied
from rooms.consults.lifecycle import ConsultStatus
from rooms.consults.people import User
from rooms.records.attachments import (
    ATTACHMENT_MAX_BYTES,
    ATTACHMENTS_PER_CONSULT,
    MAX_FILE_NAME_CHARS,
    AttachmentLimits,
    AttachmentService,
    AttachmentTooLarge,
    InvalidAttachment,
    TooManyAttachments,
    content_type,
    declared_type,
    file_name,
    sniff,
)
from teleconsult.config import ConfigError, load_settings
from tests.unit.fakes import (
    ADMIN,
    DISABLED_DOCTOR_A,
    DOCTOR_A,
    DOCTOR_B,
    NOON,
    OBSTETRICIAN,
    OBSTETRICIAN_2,
    PAEDIATRICIAN,
    SUPERVISOR,
    SUPERVISOR_B,
    InMemoryAttachmentFiles,
    InMemoryStore,
    consult_in,
)

PNG_BYTES = b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\rIHDR" + b"\x00" * 40
JPEG_BYTES = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + b"\x00" * 40
PDF_BYTES = b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<<>>\nendobj\n%%EOF\n"
WEBP_BYTES = b"RIFF\x24\x00\x00\x00WEBPVP8 " + b"\x00" * 40
HTML_BYTES = b"<!doctype html><script>alert(1)</script>"
EXE_BYTES = b"MZ\x90\x00\x03\x00\x00\x00" + b"\x00" * 40


async def stream(data: bytes, chunk: int = 7) -> AsyncIterator[bytes]:
    for i in range(0, len(data), chunk):
        yield data[i : i + chunk]


async def collect(chunks: AsyncIterator[bytes]) -> bytes:
    return b"".join([c async for c in chunks])


# ---- type sniffing --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "media_type"),
    [
        (PNG_BYTES, "image/png"),
        (JPEG_BYTES, "image/jpeg"),
        (PDF_BYTES, "application/pdf"),
        (WEBP_BYTES, "image/webp"),
        (HTML_BYTES, None),
        (EXE_BYTES, None),
        (b"GIF89a" + b"\x00" * 20, None),
        (b"RIFF\x24\x00\x00\x00WAVEfmt ", None),  # a RIFF that is not WebP
        (b"", None),
    ],
)
def test_the_type_is_decided_by_the_content(data: bytes, media_type: str | None) -> None:
    assert sniff(data) == media_type


@pytest.mark.parametrize(
    ("raw", "normalised"),
    [
        ("image/png", "image/png"),
        ("IMAGE/PNG", "image/png"),
        ("image/jpg", "image/jpeg"),
        ("application/pdf; charset=binary", "application/pdf"),
        ("image/webp", "image/webp"),
    ],
)
def test_the_declared_type_is_normalised(raw: str, normalised: str) -> None:
    assert declared_type(raw) == normalised


@pytest.mark.parametrize(
    "raw", [None, "", "text/html", "application/octet-stream", "image/gif", "image/svg+xml"]
)
def test_a_declared_type_outside_the_allowed_ones_is_refused(raw: str | None) -> None:
    with pytest.raises(InvalidAttachment, match="not accepted"):
        declared_type(raw)


def test_content_must_agree_with_the_declared_type() -> None:
    assert content_type(PNG_BYTES, "image/png") == "image/png"
    with pytest.raises(InvalidAttachment, match="sent as image/png but its content is image/jpeg"):
        content_type(JPEG_BYTES, "image/png")
    with pytest.raises(InvalidAttachment, match="not a PNG, JPEG or WebP image nor a PDF"):
        content_type(HTML_BYTES, "image/png")


# ---- file names -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    [
        "scan.png",
        "B超 胎儿 32周.jpg",
        "report (1).pdf",
        "a.b.c.webp",
        "x" * MAX_FILE_NAME_CHARS,
        "超声报告\uff1a张三.pdf",  # a full-width colon is an ordinary character
    ],
)
def test_plain_names_are_kept_exactly(name: str) -> None:
    assert file_name(name) == name


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        (None, "has no name"),
        ("", "has no name"),
        ("x" * (MAX_FILE_NAME_CHARS + 1), "longer than"),
        ("../etc/passwd", "path"),
        ("..", "'..'"),
        ("a..png", "'..'"),
        ("dir/scan.png", "path"),
        ("/etc/passwd", "path"),
        ("dir\\scan.png", "path"),
        ("..\\..\\windows\\system.ini", "path"),
        ("C:scan.png", "drive letter"),
        ("c:\\scan.png", "path"),
        ("scan\x00.png.exe", "NUL"),
        ("scan\n.png", "control character U+000A"),
        ("scan\r.png", "control character U+000D"),
        ("scan\x1b[31m.png", "control character U+001B"),
        ("scan\x7f.png", "control character U+007F"),
        ("gnp\u202e.exe", "control character U+202E"),  # right-to-left override
        ("scan\u2028.png", "control character U+2028"),
        ("scan.png:stream", "':'"),
        ('sc"an.png', "'\"'"),
        ("scan?.png", "'?'"),
        ("scan*.png", "'*'"),
        ("<scan>.png", "'<'"),
        ("scan|x.png", "'|'"),
        (" scan.png", "space"),
        ("scan.png ", "space"),
        (".hidden.png", "starts with '.'"),
        ("scan.", "ends with '.'"),
        ("CON.png", "device name"),
        ("nul", "device name"),
        ("com1.pdf", "device name"),
    ],
)
def test_every_name_trick_is_refused_not_sanitised(name: str | None, reason: str) -> None:
    with pytest.raises(InvalidAttachment) as refused:
        file_name(name)
    assert reason in refused.value.message
    assert refused.value.code == "invalid_attachment"


def test_the_limits_are_named_settings() -> None:
    assert AttachmentLimits() == AttachmentLimits(ATTACHMENT_MAX_BYTES, ATTACHMENTS_PER_CONSULT)
    assert ATTACHMENT_MAX_BYTES == 20 * 1024 * 1024


# ---- the service ----------------------------------------------------------------------------


@pytest.fixture
def store() -> InMemoryStore:
    return InMemoryStore()


@pytest.fixture
def files() -> InMemoryAttachmentFiles:
    return InMemoryAttachmentFiles()


async def consult_of(
    store: InMemoryStore, status: ConsultStatus, specialist_id: int | None = OBSTETRICIAN.id
) -> Consult:
    consult = consult_in(status, specialist_id=specialist_id)
    await store.add_consult(
        consult, AuditEntry(at=NOON, actor_id=None, action="test", consult_id=consult.id)
    )
    return consult


def service(
    store: InMemoryStore, files: InMemoryAttachmentFiles, **limits: int
) -> AttachmentService:
    return AttachmentService(store, store, files, AttachmentLimits(**limits), clock=lambda: NOON)


def audit_actions(store: InMemoryStore) -> list[str]:
    return [e.action for e in store.audit_log if e.action.startswith("attachment.")]


@pytest.mark.parametrize(
    ("data", "media_type"),
    [(PNG_BYTES, "image/png"), (JPEG_BYTES, "image/jpeg"), (PDF_BYTES, "application/pdf")],
)
async def test_the_exam_room_doctor_attaches_a_file_stored_under_a_server_key_and_audited(
    store: InMemoryStore, files: InMemoryAttachmentFiles, data: bytes, media_type: str
) -> None:
    consult = await consult_of(store, ConsultStatus.REQUESTED, specialist_id=None)
    attachments = service(store, files)
    added = await attachments.upload(DOCTOR_A, consult.id, "扫描 1.x", media_type, stream(data))
    assert (added.file_name, added.media_type, added.bytes) == ("扫描 1.x", media_type, len(data))
    assert added.sha256 == hashlib.sha256(data).hexdigest()
    assert added.storage_key == f"{consult.id}/{added.id}"  # never the client's name
    assert files.files == {added.storage_key: data}
    assert await attachments.list(OBSTETRICIAN_2, consult.id) == [added]  # the open queue
    [entry] = [e for e in store.audit_log if e.action == "attachment.added"]
    assert entry.actor_id == DOCTOR_A.id
    assert entry.detail == {
        "attachment": added.id,
        "media_type": media_type,
        "bytes": len(data),
        "sha256": added.sha256,
    }


@pytest.mark.parametrize(
    ("name", "declared", "data", "error"),
    [
        ("../x.png", "image/png", PNG_BYTES, InvalidAttachment),
        ("x.png", "text/html", HTML_BYTES, InvalidAttachment),
        ("x.png", "image/png", HTML_BYTES, InvalidAttachment),  # HTML renamed .png
        ("x.png", "image/png", EXE_BYTES, InvalidAttachment),  # a program renamed .png
        ("x.png", "image/png", JPEG_BYTES, InvalidAttachment),  # declared type disagrees
        ("x.png", "image/png", b"", InvalidAttachment),
        ("x.png", "image/png", b"\x89PNG", InvalidAttachment),  # too short to be a PNG
        ("x.png", "image/png", PNG_BYTES + b"\x00" * 100, AttachmentTooLarge),
    ],
)
async def test_a_refused_upload_leaves_no_file_no_row_no_audit(
    store: InMemoryStore,
    files: InMemoryAttachmentFiles,
    name: str,
    declared: str,
    data: bytes,
    error: type[Exception],
) -> None:
    consult = await consult_of(store, ConsultStatus.REQUESTED)
    with pytest.raises(error):
        await service(store, files, max_bytes=100).upload(
            DOCTOR_A, consult.id, name, declared, stream(data)
        )
    assert (files.files, store.attachments, audit_actions(store)) == ({}, [], [])


async def test_the_size_limit_holds_to_the_byte(
    store: InMemoryStore, files: InMemoryAttachmentFiles
) -> None:
    consult = await consult_of(store, ConsultStatus.REQUESTED)
    exact = PNG_BYTES + b"\x00" * (100 - len(PNG_BYTES))
    added = await service(store, files, max_bytes=100).upload(
        DOCTOR_A, consult.id, "x.png", "image/png", stream(exact)
    )
    assert added.bytes == 100
    with pytest.raises(AttachmentTooLarge, match="limit of 100 bytes"):
        await service(store, files, max_bytes=100).upload(
            DOCTOR_A, consult.id, "y.png", "image/png", stream(exact + b"\x00")
        )


async def test_the_size_limit_stops_reading_at_the_limit(
    store: InMemoryStore, files: InMemoryAttachmentFiles
) -> None:
    consult = await consult_of(store, ConsultStatus.REQUESTED)
    read: list[int] = []

    async def endless() -> AsyncIterator[bytes]:
        yield PNG_BYTES
        while True:
            read.append(1)
            yield b"\x00" * 10

    with pytest.raises(AttachmentTooLarge):
        await service(store, files, max_bytes=100).upload(
            DOCTOR_A, consult.id, "x.png", "image/png", endless()
        )
    assert len(read) < 10  # cut off as soon as the limit was passed


async def test_a_consult_holds_at_most_the_configured_number(
    store: InMemoryStore, files: InMemoryAttachmentFiles
) -> None:
    consult = await consult_of(store, ConsultStatus.REQUESTED)
    attachments = service(store, files, max_per_consult=2)
    for name in ("a.png", "b.png"):
        await attachments.upload(DOCTOR_A, consult.id, name, "image/png", stream(PNG_BYTES))
    with pytest.raises(TooManyAttachments, match="at most 2"):
        await attachments.upload(DOCTOR_A, consult.id, "c.png", "image/png", stream(PNG_BYTES))
    assert len(files.files) == len(store.attachments) == 2
    assert files.streams_read == 2  # the third body was never read


async def test_a_row_that_cannot_be_written_takes_its_file_away(
    store: InMemoryStore, files: InMemoryAttachmentFiles
) -> None:
    consult = await consult_of(store, ConsultStatus.REQUESTED)
    attachments = service(store, files, max_per_consult=1)

    async def racing_upload() -> AsyncIterator[bytes]:
        # Another upload lands while this one streams: the count is full at insert time.
        await attachments.upload(DOCTOR_A, consult.id, "a.png", "image/png", stream(PNG_BYTES))
        yield PNG_BYTES

    with pytest.raises(TooManyAttachments):
        await attachments.upload(DOCTOR_A, consult.id, "b.png", "image/png", racing_upload())
    assert [a.file_name for a in store.attachments] == ["a.png"]
    assert list(files.files) == [store.attachments[0].storage_key]


async def test_a_consult_that_ends_while_a_file_streams_in_takes_no_file(
    store: InMemoryStore, files: InMemoryAttachmentFiles
) -> None:
    consult = await consult_of(store, ConsultStatus.LIVE)

    async def ended_meanwhile() -> AsyncIterator[bytes]:
        # The upload was authorized while the consult was live; it ends before the last byte.
        yield PNG_BYTES[:8]
        live = await store.get_consult(consult.id)
        assert live is not None
        await store.update_consult(
            replace(live, status=ConsultStatus.ENDED),
            AuditEntry(at=NOON, actor_id=OBSTETRICIAN.id, action="consult.ended"),
        )
        yield PNG_BYTES[8:]

    with pytest.raises(IllegalTransition, match="take attachments"):
        await service(store, files).upload(
            DOCTOR_A, consult.id, "x.png", "image/png", ended_meanwhile()
        )
    assert files.streams_read == 1  # it was read to the end, then refused
    assert store.attachments == []
    assert files.files == {}  # the unreferenced bytes are gone
    assert audit_actions(store) == []


@pytest.mark.parametrize(
    "status",
    [ConsultStatus.REQUESTED, ConsultStatus.ACCEPTED, ConsultStatus.WAITING, ConsultStatus.LIVE],
)
async def test_files_are_attached_until_the_consult_is_finished(
    store: InMemoryStore, files: InMemoryAttachmentFiles, status: ConsultStatus
) -> None:
    consult = await consult_of(store, status)
    await service(store, files).upload(
        DOCTOR_A, consult.id, "x.png", "image/png", stream(PNG_BYTES)
    )
    assert len(store.attachments) == 1


@pytest.mark.parametrize(
    "status",
    [ConsultStatus.ENDED, ConsultStatus.DECLINED, ConsultStatus.CANCELLED, ConsultStatus.EXPIRED],
)
async def test_a_finished_consult_takes_no_more_files(
    store: InMemoryStore, files: InMemoryAttachmentFiles, status: ConsultStatus
) -> None:
    consult = await consult_of(store, status)
    with pytest.raises(IllegalTransition, match="take attachments"):
        await service(store, files).upload(
            DOCTOR_A, consult.id, "x.png", "image/png", stream(PNG_BYTES)
        )
    assert files.streams_read == 0


@pytest.mark.parametrize(
    "user",
    [
        DOCTOR_B,
        OBSTETRICIAN,
        OBSTETRICIAN_2,
        PAEDIATRICIAN,
        SUPERVISOR,
        SUPERVISOR_B,
        ADMIN,
        DISABLED_DOCTOR_A,
    ],
)
async def test_nobody_but_the_booking_institution_attaches(
    store: InMemoryStore, files: InMemoryAttachmentFiles, user: User
) -> None:
    consult = await consult_of(store, ConsultStatus.ACCEPTED)
    with pytest.raises(PermissionDenied):
        await service(store, files).upload(
            user, consult.id, "x.png", "image/png", stream(PNG_BYTES)
        )
    assert (files.streams_read, store.attachments) == (0, [])


async def test_an_unknown_consult_is_not_found(
    store: InMemoryStore, files: InMemoryAttachmentFiles
) -> None:
    with pytest.raises(NotFound):
        await service(store, files).upload(
            DOCTOR_A, "f" * 32, "x.png", "image/png", stream(PNG_BYTES)
        )
    with pytest.raises(NotFound):
        await service(store, files).open(DOCTOR_A, "f" * 32)


def names(users: Iterable[User]) -> list[str]:
    return [u.username for u in users]


VIEWERS_OF_ASSIGNED = [DOCTOR_A, OBSTETRICIAN, SUPERVISOR, ADMIN]
NOT_VIEWERS_OF_ASSIGNED = [
    DOCTOR_B,
    OBSTETRICIAN_2,
    PAEDIATRICIAN,
    SUPERVISOR_B,
    DISABLED_DOCTOR_A,
]


@pytest.mark.parametrize("user", VIEWERS_OF_ASSIGNED, ids=names(VIEWERS_OF_ASSIGNED))
async def test_those_who_view_the_consult_read_its_files_each_read_audited(
    store: InMemoryStore, files: InMemoryAttachmentFiles, user: User
) -> None:
    consult = await consult_of(store, ConsultStatus.ACCEPTED)
    attachments = service(store, files)
    added = await attachments.upload(
        DOCTOR_A, consult.id, "x.pdf", "application/pdf", stream(PDF_BYTES)
    )
    assert await attachments.list(user, consult.id) == [added]
    opened = await attachments.open(user, added.id)
    assert await collect(files.chunks(opened.storage_key)) == PDF_BYTES
    [viewed] = [e for e in store.audit_log if e.action == "attachment.viewed"]
    assert (viewed.actor_id, viewed.detail) == (
        user.id,
        {"attachment": added.id, "bytes": len(PDF_BYTES)},
    )


@pytest.mark.parametrize("user", NOT_VIEWERS_OF_ASSIGNED, ids=names(NOT_VIEWERS_OF_ASSIGNED))
async def test_nobody_else_lists_or_reads_the_files_and_nothing_is_audited(
    store: InMemoryStore, files: InMemoryAttachmentFiles, user: User
) -> None:
    consult = await consult_of(store, ConsultStatus.ACCEPTED)
    attachments = service(store, files)
    added = await attachments.upload(DOCTOR_A, consult.id, "x.png", "image/png", stream(PNG_BYTES))
    with pytest.raises(PermissionDenied):
        await attachments.list(user, consult.id)
    with pytest.raises(PermissionDenied):
        await attachments.open(user, added.id)
    assert audit_actions(store) == ["attachment.added"]


async def test_a_missing_file_is_not_found_and_not_audited_as_viewed(
    store: InMemoryStore, files: InMemoryAttachmentFiles
) -> None:
    consult = await consult_of(store, ConsultStatus.ACCEPTED)
    attachments = service(store, files)
    added = await attachments.upload(DOCTOR_A, consult.id, "x.png", "image/png", stream(PNG_BYTES))
    files.files.clear()
    with pytest.raises(NotFound):
        await attachments.open(SUPERVISOR, added.id)
    assert audit_actions(store) == ["attachment.added"]


def test_the_limits_are_read_from_the_environment() -> None:
    settings = load_settings({"ATTACHMENT_MAX_BYTES": "1024", "ATTACHMENTS_PER_CONSULT": "3"})
    assert settings.attachments == AttachmentLimits(max_bytes=1024, max_per_consult=3)
    assert load_settings({}).attachments == AttachmentLimits()


@pytest.mark.parametrize(
    ("name", "value", "problem"),
    [
        ("ATTACHMENT_MAX_BYTES", "0", "at least 1"),
        ("ATTACHMENT_MAX_BYTES", "20MB", "whole number"),
        ("ATTACHMENTS_PER_CONSULT", "0", "at least 1"),
        ("ATTACHMENTS_PER_CONSULT", "-2", "negative"),
    ],
)
def test_a_bad_limit_stops_start_up_naming_the_variable(
    name: str, value: str, problem: str
) -> None:
    with pytest.raises(ConfigError, match=f"{name}.*{problem}"):
        load_settings({name: value})
