"""REST for interoperability: a consult exported as a FHIR R4 Bundle (see docs/fhir.md)."""

from __future__ import annotations

import json

from aiohttp import web

from rooms.reporting.export_service import ExportService
from rooms.reporting.fhir import FHIR_JSON, FHIR_VERSION
from signaling.http.api import Edge, Feature, consult_id_of


def base_url_of(request: web.Request, public_url: str) -> str:
    """The server's public address: where the bundle's recording and attachment links point.

    `PUBLIC_URL` when it is set (behind a proxy, and so that a client's `Host` header cannot
    choose the identifiers); otherwise the address the client reached.
    """
    return public_url or f"{request.scheme}://{request.host}"


def routes(edge: Edge, *, export: ExportService, public_url: str, identity: str) -> Feature:
    """`public_url`: `PUBLIC_URL`, or empty for the address each request reached; `identity`
    names the bundle's identifiers whatever address the request reached (see `fhir_identity`)."""
    feature = Feature("fhir")

    @feature.route(
        "GET",
        "/api/consults/{consult_id}/fhir",
        "The consult as a FHIR R4 Bundle (`application/fhir+json`; audited as consult.exported)",
        writes=True,  # the audit entry
        errors=("not_found", "forbidden"),
        other_response=((FHIR_JSON, "object"),),
    )
    async def consult_fhir(request: web.Request) -> web.Response:
        user = await edge.caller(request)
        bundle = await export.fhir_bundle(
            user, consult_id_of(request), base_url_of(request, public_url), identity
        )
        return web.Response(
            text=json.dumps(bundle, ensure_ascii=False),
            content_type=FHIR_JSON,
            charset="utf-8",
            headers={
                "Cache-Control": "private, no-store",
                "Content-Disposition": "attachment; "
                f'filename="consult-{bundle["identifier"]["value"]}.fhir.json"',
                "X-FHIR-Version": FHIR_VERSION,
            },
        )

    return feature
