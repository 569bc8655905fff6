"""The OpenAPI document against the routes the composition root actually mounts: nothing the
server answers under `/api` (or `/healthz`, or a broadcast's `/hls`) is missing from it, and
each path template declares exactly the parameters the route has."""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path
from typing import Any

from aiohttp.test_utils import make_mocked_request

from teleconsult.bootstrap import build_app
from teleconsult.config import load_settings

NOT_IN_THE_DOCUMENT = {"/api/openapi.json", "/api/asyncapi.json", "/api/{tail}"}
"""The document itself, the socket.io events' AsyncAPI document, and the catch-all that
answers `not_found` for any other `/api` path."""


def served_routes(tmp_path: Path) -> tuple[set[tuple[str, str]], dict[str, Any]]:
    """(method, path template) of every API route of the whole app, and the document it serves."""
    app = build_app(load_settings({"DATA_DIR": str(tmp_path), "HOST": "127.0.0.1", "PORT": "1"}))
    routes: set[tuple[str, str]] = set()
    document: dict[str, Any] | None = None
    for route in app.router.routes():
        info = route.resource.get_info() if route.resource is not None else {}
        path = info.get("formatter") or info.get("path") or ""
        if path == "/api/openapi.json" and route.method == "GET":
            reply = asyncio.run(route.handler(make_mocked_request("GET", path)))  # type: ignore[arg-type]
            document = json.loads(reply.body)  # type: ignore[union-attr]
        if not path.startswith(("/api/", "/healthz", "/hls/")) or path in NOT_IN_THE_DOCUMENT:
            continue
        if route.method == "HEAD":  # aiohttp adds one to every GET
            continue
        routes.add((route.method, path))
    assert document is not None
    return routes, document


def test_every_route_of_the_app_is_in_the_document_with_its_method_and_parameters(
    tmp_path: Path,
) -> None:
    routes, document = served_routes(tmp_path)
    assert len(routes) > 30
    documented = {
        (method.upper(), path)
        for path, operations in document["paths"].items()
        for method in operations
    }
    assert routes - documented == set()
    assert documented - routes == set()
    for method, path in routes:
        operation = document["paths"][path][method.lower()]
        in_path = [p["name"] for p in operation.get("parameters", []) if p["in"] == "path"]
        assert in_path == re.findall(r"\{([a-z_]+)\}", path), (method, path)
        assert all(p["required"] for p in operation.get("parameters", []) if p["in"] == "path")
        success = [r for code, r in operation["responses"].items() if code.startswith("2")]
        assert success and all("content" in r for r in success), (method, path)
