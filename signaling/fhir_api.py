"""REST for interoperability: a consult exported as a FHIR R4 Bundle (see docs/fhir.md)."""

from __future__ import annotations

import json

from aiohttp import web

from rooms.reporting.export_service import ExportService
from rooms.reporting.fhir import FHIR_JSON, FHIR_VERSION
from signaling.rest import SIGNALING, api, consult_id_of, current_user


def base_url_of(request: web.Request) -> str:
    """The server's public address: names identifiers and recording URLs in the bundle.

    `PUBLIC_URL` when it is set (behind a proxy, and so that a client's `Host` header cannot
    choose the identifiers); otherwise the address the client reached.
    """
    public_url = request.app[SIGNALING].public_url
    return public_url or f"{request.scheme}://{request.host}"


@api.route(
    "GET",
    "/api/consults/{consult_id}/fhir",
    "The consult as a FHIR R4 Bundle (`application/fhir+json`; audited as consult.exported)",
    errors=("not_found", "forbidden"),
)
async def consult_fhir(request: web.Request) -> web.Response:
    user = await current_user(request)
    ctx = request.app[SIGNALING]
    recordings = ctx.recordings.store if ctx.recordings is not None else None
    notes = ctx.notes.store if ctx.notes is not None else None
    attachments = ctx.attachments.store if ctx.attachments is not None else None
    bundle = await ExportService(
        ctx.service.store, recordings, notes=notes, attachments=attachments
    ).fhir_bundle(user, consult_id_of(request), base_url_of(request))
    return web.Response(
        text=json.dumps(bundle, ensure_ascii=False),
        content_type=FHIR_JSON,
        charset="utf-8",
        headers={
            "Cache-Control": "private, no-store",
            "Content-Disposition": f'attachment; filename="consult-{bundle["identifier"]["value"]}'
            f'.fhir.json"',
            "X-FHIR-Version": FHIR_VERSION,
        },
    )
