"""PostgreSQL stops under a running server and comes back: the outage is answered as 503
`database_unavailable` (REST, socket.io acks, `/healthz`), logged once rather than a traceback
per request, and the server recovers on its own with nothing lost.

The test runs its own cluster (the session's `postgres` fixture is shared) and stops it by its
own postmaster's pid.
"""

from __future__ import annotations

import pytest
import socketio

from tests.support.peer import Participant
from tests.support.postgres import PostgresServer
from tests.support.server import RunningServer, booking, in_hours
from tests.support.waiting import until


async def test_a_stopped_postgresql_is_answered_503_logged_once_and_recovered() -> None:
    with (
        PostgresServer() as pg,
        RunningServer(env_overrides={"DATABASE_URL": pg.url}) as server,
    ):
        doctor = server.token("doctor.a")
        stranger = server.token("obstetrician2")  # minted now; the server has not seen them
        before = server.book()
        exam_room = Participant("doctor.a")
        await exam_room.connect(server.url, doctor)
        try:
            log_start = server.log_path.stat().st_size

            pg.stop_postmaster()

            reply = server.request("GET", f"/api/consults/{before['id']}", token=doctor)
            assert reply.status == 503, reply.body
            assert reply.body["code"] == "database_unavailable"
            for _ in range(10):  # a burst of requests during the outage, reads and writes
                assert server.request("GET", "/api/consults", token=doctor).status == 503
                booked = server.request(
                    "POST", "/api/consults", booking("obstetrics", "x", in_hours()), token=doctor
                )
                assert (booked.status, booked.body["code"]) == (503, "database_unavailable")
            ack = await exam_room.join(before["id"])
            assert ack["ok"] is False
            assert ack["error"]["code"] == "database_unavailable"
            # A user the server has not seen cannot be looked up: refused, said why. (One it
            # knows is in memory for its token's lifetime, signaling/known_users.py: it connects.)
            late = Participant("obstetrician2")
            with pytest.raises(socketio.exceptions.ConnectionError):
                await late.connect(server.url, stranger)
            assert late.connect_error["data"]["code"] == "database_unavailable"
            await late.close()
            known = Participant("doctor.a")
            await known.connect(server.url, doctor)
            await known.close()
            health = server.request("GET", "/healthz")
            assert (health.status, health.body) == (
                503,
                {
                    "status": "unavailable",
                    "database": "unavailable",
                    "database_storage": "not_watched",
                    "storage": "ok",
                    "redis": "not_configured",
                },
            )
            assert server.process is not None and server.process.poll() is None

            during = server.log_path.read_bytes()[log_start:].decode(errors="replace")
            assert "Traceback" not in during, during
            warnings = [line for line in during.splitlines() if " WARNING " in line]
            assert len(warnings) == 1, during
            assert "database unavailable" in warnings[0]
            assert not [line for line in during.splitlines() if " ERROR " in line], during

            pg.start()

            until(lambda: server.request("GET", "/healthz").status == 200, 30, "/healthz 200")
            assert server.request("GET", "/healthz").body == {
                "status": "ok",
                "database": "ok",
                "database_storage": "not_watched",
                "storage": "ok",
                "redis": "not_configured",
            }
            after = server.book()
            consults = server.request("GET", "/api/consults", token=doctor).body["consults"]
            assert {before["id"], after["id"]} <= {c["id"] for c in consults}
            trail = server.request(
                "GET", f"/api/consults/{before['id']}/audit", token=server.token("supervisor")
            ).body["entries"]
            assert [e["action"] for e in trail][:3] == [
                "consult.book",
                "consult.notified",
                "consult.accept",
            ]
            assert (await exam_room.join(before["id"]))["ok"] is True

            whole = server.log_path.read_bytes()[log_start:].decode(errors="replace")
            assert "Traceback" not in whole, whole
            recovered = [line for line in whole.splitlines() if "database answers again" in line]
            assert len(recovered) == 1 and " INFO " in recovered[0], whole
        finally:
            await exam_room.close()
