"""A Redis fan-out queue that overflows (Redis answering, but too slowly for what a process
emits) loses no state change: once the queue has drained, the consults whose news was dropped
have their current state sent again to everyone taking part, on every process.

Real parts: a redis-server hung (SIGSTOP) for a moment, shorter than `REDIS_TIMEOUT_SECONDS`
(so it is slow, not lost), and two `teleconsult serve` processes; the first with a queue of one
byte (`FANOUT_BACKLOG_BYTES=1`: one message may wait, whatever its size). Costs about as much
as tests/integration/test_redis_fanout.py (two servers, one redis-server)."""

from __future__ import annotations

from tests.support.peer import Participant, eventually
from tests.support.redis import RedisServer
from tests.support.server import RunningServer


def figure(server: RunningServer, name: str) -> float:
    """One of the fan-out's figures on `/metrics` (loopback: no token needed)."""
    reply = server.request("GET", "/metrics")
    assert reply.status == 200, reply
    for line in str(reply.body).splitlines():
        if line.startswith(f"teleconsult_fanout_{name} "):
            return float(line.split()[1])
    raise AssertionError(f"teleconsult_fanout_{name} is not on /metrics")


def states(specialist: Participant, consult_id: str) -> list[str]:
    return [
        e["consult"]["status"]
        for e in specialist.events_named("consult-state")
        if e["consult"]["id"] == consult_id
    ]


async def test_a_state_change_dropped_by_a_full_fan_out_queue_reaches_the_other_process() -> None:
    with RedisServer() as redis:
        env = {"REDIS_URL": redis.url, "REDIS_TIMEOUT_SECONDS": "30"}
        with (
            RunningServer(env_overrides={**env, "FANOUT_BACKLOG_BYTES": "1"}) as first,
            RunningServer(env_overrides=env, data_dir=first.data_dir) as second,
        ):
            specialist = Participant("obstetrician on the second process")
            await specialist.connect(second.url, second.token("obstetrician"))
            try:
                token = first.token("obstetrician")
                fillers = [first.book(accept=False)["id"] for _ in range(2)]
                watched = first.book(accept=False)["id"]
                # The fan-out is up once one booking's news reached the other process: a
                # booking's own two emits already overflow a one-byte queue now and then (more
                # often on a busy machine), so not every `consult-requested` arrives.
                await eventually(
                    lambda: any(
                        e["consult"]["id"] in {watched, *fillers}
                        for e in specialist.events_named("consult-requested")
                    ),
                    within=10,
                )
                dropped_before = figure(first, "dropped_full_messages")
                redis.hang()
                try:
                    # The first acceptance's news is taken for a round trip that Redis holds;
                    # the second's waits (the one message the queue holds); the watched
                    # consult's `consult-state` finds the queue full and is dropped.
                    for consult_id in [*fillers, watched]:
                        reply = first.request(
                            "POST", f"/api/consults/{consult_id}/accept", {}, token=token
                        )
                        assert reply.status == 200, reply
                    assert figure(first, "dropped_full_messages") > dropped_before
                    assert "accepted" not in states(specialist, watched)
                finally:
                    redis.resume()
                await eventually(lambda: "accepted" in states(specialist, watched), within=10)
                assert figure(first, "consults_resent") >= 1
                assert first.request("GET", "/healthz").status == 200  # slow, never lost
            finally:
                await specialist.close()
