"""A server has exactly the REST features it was built with.

`create_app` mounts the features the composition root hands it; one left out has no routes
(its paths answer the usual `not_found`) and is not in the OpenAPI document. Built here on the
in-memory store with two features, login and notes, and no recordings.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from rooms.consults.service import ConsultService
from rooms.records.notes import NoteService
from signaling.app import create_app, realtime
from signaling.auth import TokenIssuer
from signaling.context import Signaling
from signaling.http import login, notes
from signaling.http.api import Edge
from signaling.ratelimit import RateLimiter
from tests.unit.fakes import DOCTOR_A, InMemoryStore

CONSULT_ID = "0" * 32


@dataclass
class Server:
    client: TestClient[Any, Any]
    token: str

    async def call(self, method: str, path: str) -> tuple[int, dict[str, Any]]:
        headers = {"Authorization": f"Bearer {self.token}"}
        async with self.client.request(method, path, headers=headers) as response:
            return response.status, await response.json()


@pytest.fixture
async def server() -> AsyncIterator[Server]:
    store = InMemoryStore()
    tokens = TokenIssuer("s" * 32, "teleconsult", timedelta(hours=1))
    note_service = NoteService(store, store)
    ctx = Signaling(service=ConsultService(store), tokens=tokens, notes=note_service)
    edge = Edge(tokens, store)
    features = [
        login.routes(edge, failed_logins=RateLimiter(10)),
        notes.routes(edge, notes=note_service),
    ]
    app = create_app(ctx, realtime(ctx), features, None, "test")
    async with TestClient(TestServer(app)) as client:
        yield Server(client, tokens.issue(DOCTOR_A)[0])


async def test_the_features_it_was_built_with_answer(server: Server) -> None:
    status, me = await server.call("GET", "/api/me")
    assert (status, me["username"]) == (200, DOCTOR_A.username)

    status, body = await server.call("GET", f"/api/consults/{CONSULT_ID}/notes")
    # The notes feature ran and the service found no such consult.
    assert (status, body["code"]) == (404, "not_found")
    assert not body["message"].startswith("no API endpoint")


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", f"/api/consults/{CONSULT_ID}/recordings"),
        ("POST", f"/api/recordings/{CONSULT_ID}/playback"),
        ("GET", "/api/statistics?from=2026-01&to=2026-02"),
    ],
)
async def test_a_feature_left_out_has_no_routes(server: Server, method: str, path: str) -> None:
    status, body = await server.call(method, path)
    assert (status, body["code"]) == (404, "not_found")
    assert body["message"].startswith("no API endpoint")


async def test_the_openapi_document_lists_only_the_features_built(server: Server) -> None:
    status, document = await server.call("GET", "/api/openapi.json")
    assert status == 200
    assert set(document["paths"]) == {
        "/healthz",
        "/api/auth/login",
        "/api/me",
        "/api/consults/{consult_id}/notes",
    }
