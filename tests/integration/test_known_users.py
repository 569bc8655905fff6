"""The user behind a token is kept in memory (`signaling.known_users`), yet a user disabled with
the CLI is refused at once: on the next request and the next connection with a token they still
hold, through the change stamp on this machine and, for a server that cannot see that stamp (another
machine), through Redis."""

from __future__ import annotations

import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import socketio

from tests.support.peer import Participant
from tests.support.redis import RedisServer
from tests.support.server import REPO, RunningServer
from tests.support.waiting import until


@pytest.fixture(scope="module")
def server_with_redis() -> Iterator[RunningServer]:
    with (
        RedisServer() as redis,
        RunningServer(
            env_overrides={"REDIS_URL": redis.url, "LOGIN_ATTEMPTS_PER_MINUTE": "10000"}
        ) as running,
    ):
        running.add_colleague_of("obstetrician", "obstetrician.k1")
        running.add_colleague_of("obstetrician", "obstetrician.k2")
        yield running


def cli_elsewhere(server: RunningServer, *args: str) -> subprocess.CompletedProcess[str]:
    """The CLI on "another machine": the server's database and Redis, its own DATA_DIR (so the
    server's change stamp is not touched)."""
    other = Path(tempfile.mkdtemp(prefix="teleconsult-cli-"))
    env = {
        **server.env(),
        "DATA_DIR": str(other),
        "DATABASE_URL": f"sqlite:///{server.data_dir / 'teleconsult.db'}",
    }
    return subprocess.run(
        [sys.executable, "-m", "teleconsult", *args],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def me(server: RunningServer, token: str) -> int:
    return server.request("GET", "/api/me", token=token).status


async def test_a_user_disabled_with_the_cli_is_refused_at_once_with_the_token_they_hold(
    server_with_redis: RunningServer,
) -> None:
    server = server_with_redis
    token = server.token("obstetrician.k1")
    assert me(server, token) == 200
    assert me(server, token) == 200  # now known to the server
    disabled = server.cli("user", "disable", "--username", "obstetrician.k1")
    assert disabled.returncode == 0, disabled.stderr
    refused = server.request("GET", "/api/me", token=token)
    assert refused.status == 401
    assert refused.body["code"] == "token_invalid"
    p = Participant("obstetrician.k1")
    with pytest.raises(socketio.exceptions.ConnectionError):
        await p.connect(server.url, token)
    assert p.connect_error is not None
    assert p.connect_error["data"]["code"] == "token_invalid"
    await p.close()
    enabled = server.cli("user", "enable", "--username", "obstetrician.k1")
    assert enabled.returncode == 0, enabled.stderr
    assert me(server, token) == 200


def test_a_user_disabled_from_another_machine_is_refused_through_redis(
    server_with_redis: RunningServer,
) -> None:
    server = server_with_redis
    token = server.token("obstetrician.k2")
    assert me(server, token) == 200
    stamp = server.data_dir / "users.changed"
    stamp_before = stamp.stat().st_mtime_ns if stamp.exists() else None
    disabled = cli_elsewhere(server, "user", "disable", "--username", "obstetrician.k2")
    assert disabled.returncode == 0, disabled.stderr
    assert (stamp.stat().st_mtime_ns if stamp.exists() else None) == stamp_before
    # The notice crosses Redis to the server's reader: a round trip on loopback.
    until(lambda: me(server, token) == 401, within=5, what="the token refused")
