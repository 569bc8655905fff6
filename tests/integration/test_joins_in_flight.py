"""A hundred joins at once on one server with SQLite: every one is answered `ok` (none `busy`),
and every acknowledged join's status move is on disk with its audit entry, even when the server
is killed the moment the last answer arrives (a join is answered only after its commit).

Cost: one server of its own (its start is most of it), 50 consults booked over REST, 100
socket.io clients; 46 s in all at load 30.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
from collections import Counter
from typing import Any

import socketio

from tests.support.server import RunningServer

PAIRS = 50


async def _connected(url: str, token: str) -> socketio.AsyncClient:
    client = socketio.AsyncClient(reconnection=False)
    await client.connect(url, auth={"token": token}, transports=["websocket"], wait_timeout=10)
    return client


async def test_a_hundred_joins_at_once_are_all_answered_and_all_audited_before_the_answer() -> None:
    server = RunningServer()
    clients: list[socketio.AsyncClient] = []
    try:
        server.start()
        consults = [server.book()["id"] for _ in range(PAIRS)]
        doctor, specialist = server.token("doctor.a"), server.token("obstetrician")
        for _ in consults:
            clients.append(await _connected(server.url, doctor))
            clients.append(await _connected(server.url, specialist))
        joins = [
            client.call("join", {"consult_id": consults[n // 2]}, timeout=60)
            for n, client in enumerate(clients)
        ]
        replies: list[dict[str, Any]] = await asyncio.gather(*joins)
        server.kill()  # at once: a power cut right after the last answer

        refused = [r["error"] for r in replies if not r["ok"]]
        assert refused == [], f"{len(refused)} joins refused: {Counter(e['code'] for e in refused)}"
        assert Counter(r["consult"]["status"] for r in replies) == {"waiting": 50, "live": 50}

        db = sqlite3.connect(server.data_dir / "teleconsult.db")
        try:
            marks = ",".join("?" * len(consults))
            rows = db.execute(
                f"SELECT consult_id, action, detail FROM audit_log WHERE consult_id IN ({marks}) "
                "AND action IN ('consult.open_room', 'consult.start')",
                consults,
            ).fetchall()
            statuses = dict(
                db.execute(f"SELECT id, status FROM consults WHERE id IN ({marks})", consults)
            )
        finally:
            db.close()
        # One status move per join, each with its entry: the first in opens the room, the
        # second starts the consult with both present.
        assert Counter((c, a) for c, a, _ in rows) == {
            (c, a): 1 for c in consults for a in ("consult.open_room", "consult.start")
        }
        assert all(
            len(json.loads(d)["present"]) == (1 if a == "consult.open_room" else 2)
            for _, a, d in rows
        )
        assert set(statuses.values()) == {"live"}
    finally:
        for client in clients:
            if client.connected:
                await client.disconnect()
        server.cleanup()
