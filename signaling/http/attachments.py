"""REST for attachments: upload one file (multipart, streamed), list them, serve the bytes.

The upload is read part by part with aiohttp's multipart reader, a chunk at a time, so the
app's small `client_max_size` (meant for JSON bodies) stays small and a file is never held in
memory whole; `rooms.records.attachments` checks the name, type and size while it streams to disk.
The bytes are served only with the bearer token (`fetch` → blob in the web client), with the
stored media type, `nosniff`, a sandboxing CSP and an RFC 5987 file name.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime
from urllib.parse import quote

from aiohttp import BodyPartReader, MultipartReader, hdrs, web
from aiohttp.http import HttpProcessingError
from pydantic import BaseModel

from rooms.records.attachments import (
    ALLOWED_TYPES,
    Attachment,
    AttachmentService,
    AttachmentTooLarge,
    InvalidAttachment,
)
from signaling import errors
from signaling.errors import ApiError
from signaling.http.api import Edge, Feature, consult_id_of, hex_id_of, json_response
from signaling.hub import ConsultHub
from signaling.schemas import PersonRef
from signaling.views import Directory

# ---- wire schemas --------------------------------------------------------------------------


class AttachmentOut(BaseModel):
    id: str
    consult_id: str
    file_name: str
    media_type: str
    bytes: int
    sha256: str
    uploaded_by: PersonRef
    uploaded_at: datetime
    content_url: str
    """`GET` it with the bearer token; the bytes come with `media_type`."""


class AttachmentListOut(BaseModel):
    attachments: list[AttachmentOut]


class AttachmentAddedEvent(BaseModel):
    """Sent as `attachment-added` to everyone who may see the consult's attachments."""

    consult_id: str
    attachment: AttachmentOut


UPLOAD_FIELD = "file"
"""The multipart field that carries the file."""

UPLOAD_CHUNK_BYTES = 64 * 1024
"""How much of the upload is read from the socket at a time."""

MULTIPART_OVERHEAD_BYTES = 16 * 1024
"""Room for the multipart boundaries and part headers around the file when a request's
`Content-Length` is compared with the attachment size limit (refused before reading)."""

CONTENT_SECURITY_POLICY = "default-src 'none'; sandbox"
"""The bytes are data, never a page: no scripts, no loads, a sandboxed origin if opened."""


def content_url(attachment: Attachment) -> str:
    return f"/api/attachments/{attachment.id}/content"


async def attachments_out(directory: Directory, found: list[Attachment]) -> list[AttachmentOut]:
    return [
        AttachmentOut(
            id=a.id,
            consult_id=a.consult_id,
            file_name=a.file_name,
            media_type=a.media_type,
            bytes=a.bytes,
            sha256=a.sha256,
            uploaded_by=await directory.person(a.uploader_id),
            uploaded_at=a.uploaded_at,
            content_url=content_url(a),
        )
        for a in found
    ]


def content_disposition(file_name: str) -> str:
    """`inline` with the name twice: an ASCII fallback and the exact name (RFC 5987/6266)."""
    fallback = "".join(c if " " <= c < "\x7f" and c not in '"\\%' else "_" for c in file_name)
    return f"inline; filename=\"{fallback}\"; filename*=UTF-8''{quote(file_name, safe='')}"


def malformed(exc: Exception) -> ApiError:
    reason = getattr(exc, "message", None) or str(exc)
    return ApiError(errors.INVALID_PAYLOAD, f"malformed multipart body: {reason[:200]}", 400)


async def _file_part(reader: MultipartReader) -> BodyPartReader:
    try:
        part = await reader.next()
    except (HttpProcessingError, ValueError) as exc:
        raise malformed(exc) from None
    if not isinstance(part, BodyPartReader) or part.name != UPLOAD_FIELD:
        raise ApiError(
            errors.INVALID_PAYLOAD,
            f'the form must hold one file in a part named "{UPLOAD_FIELD}"',
            422,
        )
    if part.filename is None:
        raise InvalidAttachment(f'the "{UPLOAD_FIELD}" part carries no file name')
    return part


async def _chunks(reader: MultipartReader, part: BodyPartReader) -> AsyncIterator[bytes]:
    try:
        while chunk := await part.read_chunk(UPLOAD_CHUNK_BYTES):
            yield chunk
        another = await reader.next()
    except (HttpProcessingError, ValueError) as exc:
        raise malformed(exc) from None
    if another is not None:
        raise InvalidAttachment("send one file per request")


# ---- routes --------------------------------------------------------------------------------


def routes(edge: Edge, *, service: AttachmentService, hub: ConsultHub) -> Feature:
    feature = Feature("attachments")

    @feature.route(
        "POST",
        "/api/consults/{consult_id}/attachments",
        "Attach one file (PNG, JPEG, WebP, PDF) to a consult; multipart/form-data, field `file` "
        "(exam-room doctors of the booking institution; audited as attachment.added)",
        response=AttachmentOut,
        status=201,
        upload_field=UPLOAD_FIELD,
        errors=(
            "not_found",
            "forbidden",
            "illegal_transition",
            "invalid_attachment",
            "attachment_too_large",
            "too_many_attachments",
            errors.INVALID_PAYLOAD,
        ),
    )
    async def upload_attachment(request: web.Request) -> web.Response:
        user = await edge.caller(request)
        consult_id = consult_id_of(request)
        # Permission, status and count first: a refused upload is answered before its body is read.
        consult = await service.authorize_upload(user, consult_id)
        limit = service.limits.max_bytes
        length = request.content_length
        if length is not None and length > limit + MULTIPART_OVERHEAD_BYTES:
            raise AttachmentTooLarge(f"the file is larger than the limit of {limit} bytes")
        if request.content_type != "multipart/form-data":
            raise ApiError(
                errors.INVALID_PAYLOAD,
                f'send the file as multipart/form-data in a part named "{UPLOAD_FIELD}"',
                415,
            )
        try:
            reader = await request.multipart()
        except (ValueError, AssertionError) as exc:
            raise ApiError(
                errors.INVALID_PAYLOAD, f"malformed multipart body: {exc}", 400
            ) from None
        part = await _file_part(reader)
        attachment = await service.upload(
            user,
            consult_id,
            part.filename,
            part.headers.get(hdrs.CONTENT_TYPE),
            _chunks(reader, part),
        )
        [view] = await attachments_out(edge.directory(), [attachment])
        event = AttachmentAddedEvent(consult_id=consult_id, attachment=view)
        await hub.attachment_added(consult, event.model_dump(mode="json"))
        return json_response(view, 201)

    @feature.route(
        "GET",
        "/api/consults/{consult_id}/attachments",
        "The files attached to a consult, oldest first",
        response=AttachmentListOut,
        errors=("not_found", "forbidden"),
    )
    async def list_attachments(request: web.Request) -> web.Response:
        user = await edge.caller(request)
        found = await service.list(user, consult_id_of(request))
        return json_response(
            AttachmentListOut(attachments=await attachments_out(edge.directory(), found))
        )

    @feature.route(
        "GET",
        "/api/attachments/{attachment_id}/content",
        "An attachment's bytes, with its stored media type (audited as attachment.viewed)",
        writes=True,  # the audit entry
        binary_response=ALLOWED_TYPES,
        errors=("not_found", "forbidden"),
    )
    async def attachment_content(request: web.Request) -> web.StreamResponse:
        user = await edge.caller(request)
        attachment = await service.open(user, hex_id_of(request, "attachment"))
        response = web.StreamResponse(
            status=200,
            headers={
                "Content-Type": attachment.media_type,
                "Content-Length": str(service.files.size(attachment.storage_key)),
                "Content-Disposition": content_disposition(attachment.file_name),
                "Content-Security-Policy": CONTENT_SECURITY_POLICY,
                "X-Content-Type-Options": "nosniff",
                "Cross-Origin-Resource-Policy": "same-origin",
                "Cache-Control": "private, no-store",
            },
        )
        await response.prepare(request)
        async for chunk in service.files.chunks(attachment.storage_key):
            await response.write(chunk)
        await response.write_eof()
        return response

    return feature
