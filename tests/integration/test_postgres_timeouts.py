"""A PostgreSQL that answers too slowly is an outage, not a wait without end: a statement stuck
behind another connection's lock is cancelled after `DATABASE_STATEMENT_TIMEOUT_SECONDS`, and a
server that hangs (SIGSTOP: connections open, nothing answers) is given up on by the client a
little later; both are answered 503 `database_unavailable`, logged without a traceback, and the
next request after the lock is released (or the server resumes) succeeds.

Each test runs its own cluster (the session's `postgres` fixture is shared)."""

from __future__ import annotations

import time
from collections.abc import Iterator

import asyncpg
import pytest

from tests.support.postgres import PostgresServer
from tests.support.server import RunningServer, booking, in_hours
from tests.support.waiting import until

STATEMENT_TIMEOUT = 1
CONNECT_TIMEOUT = 1
SLACK = 3.0
"""Seconds a busy 2-core machine may add to an answer beyond the configured limits."""


@pytest.fixture
def pg_server() -> Iterator[tuple[PostgresServer, RunningServer]]:
    with PostgresServer() as pg:
        env = {
            "DATABASE_URL": pg.url,
            "DATABASE_STATEMENT_TIMEOUT_SECONDS": str(STATEMENT_TIMEOUT),
            "DATABASE_CONNECT_TIMEOUT_SECONDS": str(CONNECT_TIMEOUT),
        }
        with RunningServer(env_overrides=env) as server:
            yield pg, server


def _log_since(server: RunningServer, start: int) -> str:
    return server.log_path.read_bytes()[start:].decode(errors="replace")


async def test_a_statement_stuck_behind_a_table_lock_is_cancelled_503_and_the_next_one_succeeds(
    pg_server: tuple[PostgresServer, RunningServer],
) -> None:
    pg, server = pg_server
    doctor = server.token("doctor.a")
    consult = server.book()
    log_start = server.log_path.stat().st_size
    holder = await asyncpg.connect(pg.url)
    try:
        async with holder.transaction():
            await holder.execute("LOCK TABLE consults IN ACCESS EXCLUSIVE MODE")

            started = time.monotonic()
            read = server.request("GET", f"/api/consults/{consult['id']}", token=doctor)
            waited = time.monotonic() - started
            assert (read.status, read.body["code"]) == (503, "database_unavailable"), read.body
            assert STATEMENT_TIMEOUT * 0.9 <= waited < STATEMENT_TIMEOUT + 1 + SLACK, waited

            started = time.monotonic()
            write = server.request(
                "POST", "/api/consults", booking("obstetrics", "x", in_hours()), token=doctor
            )
            waited = time.monotonic() - started
            assert (write.status, write.body["code"]) == (503, "database_unavailable"), write.body
            assert waited < STATEMENT_TIMEOUT + 1 + SLACK, waited
            assert server.process is not None and server.process.poll() is None
    finally:
        await holder.close()  # the lock goes with its transaction

    after = server.request("GET", f"/api/consults/{consult['id']}", token=doctor)
    assert (after.status, after.body["id"]) == (200, consult["id"])
    assert server.book()["status"] == "accepted"
    log = _log_since(server, log_start)
    assert "Traceback" not in log, log
    assert not [line for line in log.splitlines() if " ERROR " in line], log
    warnings = [line for line in log.splitlines() if " WARNING " in line]
    assert warnings and all("statement timeout" in line for line in warnings), log


async def test_a_hung_postgresql_is_answered_503_within_the_limits_and_recovered(
    pg_server: tuple[PostgresServer, RunningServer],
) -> None:
    pg, server = pg_server
    doctor = server.token("doctor.a")
    consult = server.book()
    log_start = server.log_path.stat().st_size
    # The server's pooled connection may wait the client-side limit (the statement timeout and
    # a second), then a new connection the connect timeout.
    limit = STATEMENT_TIMEOUT + 1 + 2 * CONNECT_TIMEOUT + SLACK
    pg.hang()
    try:
        for _ in range(3):
            started = time.monotonic()
            reply = server.request("GET", f"/api/consults/{consult['id']}", token=doctor)
            waited = time.monotonic() - started
            assert (reply.status, reply.body["code"]) == (503, "database_unavailable"), reply
            assert waited < limit, waited
        health = server.request("GET", "/healthz")
        assert (health.status, health.body["database"]) == (503, "unavailable")
        assert server.process is not None and server.process.poll() is None
    finally:
        pg.resume()

    until(lambda: server.request("GET", "/healthz").status == 200, 30, "/healthz 200")
    after = server.request("GET", f"/api/consults/{consult['id']}", token=doctor)
    assert (after.status, after.body["id"]) == (200, consult["id"])
    log = _log_since(server, log_start)
    assert "Traceback" not in log, log
    assert not [line for line in log.splitlines() if " ERROR " in line], log
    warnings = [line for line in log.splitlines() if " WARNING " in line]
    assert len(warnings) == 1 and "database unavailable" in warnings[0], log
    assert len([line for line in log.splitlines() if "database answers again" in line]) == 1, log
