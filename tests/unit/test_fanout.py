"""The Redis fan-out's bookkeeping, without a Redis (the outages themselves, with a real
redis-server: tests/integration/test_redis_outage.py): an emit's message for the other processes
is queued without waiting, dropped while Redis is unreachable, and dropped beyond the backlog;
each outage, and each time publishing falls behind, is logged once."""

from __future__ import annotations

import logging

import pytest

from signaling.fanout import RedisFanOut, RedisLink


def warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]


async def test_messages_beyond_the_backlog_are_dropped_and_logged_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    fanout = RedisFanOut("redis://127.0.0.1:1/0", backlog=2)  # never started: nothing publishes
    for n in range(5):
        await fanout._publish({"method": "emit", "n": n})
    assert fanout._outbox.qsize() == 2
    assert fanout.link.dropped == 3
    [line] = warnings(caplog)
    assert "falls behind" in line


async def test_while_redis_is_unreachable_messages_are_dropped_not_queued() -> None:
    fanout = RedisFanOut("redis://127.0.0.1:1/0")
    fanout.link.failed("ConnectionError: refused")
    for n in range(3):
        await fanout._publish({"method": "emit", "n": n})
    assert fanout._outbox.empty()
    assert fanout.link.dropped == 3


def test_an_outage_is_logged_once_when_it_starts_and_once_when_it_ends(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="signaling.fanout")
    link = RedisLink()
    assert link.state == "ok"
    for _ in range(10):
        link.failed("TimeoutError")
    link.dropped += 4
    assert (link.state, link.outages) == ("unreachable", 1)
    for _ in range(10):
        link.answered()
    assert link.state == "ok"
    lines = [(r.levelno, r.getMessage()) for r in caplog.records]
    assert len(lines) == 2
    assert lines[0][0] == logging.WARNING and "redis unreachable (TimeoutError)" in lines[0][1]
    assert lines[1][0] == logging.INFO and "4 message(s)" in lines[1][1]
    link.failed("ConnectionError")
    assert link.outages == 2 and link.dropped == 0


def test_own_emits_are_passed_over_and_notices_taken_in_before_python_socketio() -> None:
    """What reaches python-socketio's reader: another process's emits and the callbacks meant
    for this one; not this process's own emits (it would decode a 5 KB signal only to ignore
    it), nor the cluster's notices (handed to `on_notice`, another process's only)."""
    here, there = RedisFanOut("redis://127.0.0.1:1/0"), RedisFanOut("redis://127.0.0.1:1/0")
    noticed: list[dict[str, object]] = []
    here.on_notice = noticed.append

    def wire(fanout: RedisFanOut, message: dict[str, object]) -> bytes:
        return fanout.json.dumps(message).encode()  # as `_publishing` sends it

    def emit(fanout: RedisFanOut) -> dict[str, object]:
        return {
            "method": "emit",
            "event": "signal",
            "data": [{"sdp": '"host_id": "' + here.host_id + '"}'}],
            "namespace": "/",
            "room": "sid",
            "skip_sid": None,
            "callback": None,
            "host_id": fanout.host_id,
        }

    callback = {"method": "callback", "host_id": here.host_id, "sid": "s", "id": 1, "args": []}
    assert here._noticed(wire(here, emit(here))) is True  # passed over
    assert here._noticed(wire(there, emit(there))) is False  # python-socketio's
    assert here._noticed(wire(there, callback)) is False  # python-socketio's: it is for here
    roster = {"kind": "roster", "owner": "n1", "consult": "c", "peers": {}}
    there.notice(roster)
    here.notice(roster)
    assert here._noticed(wire(there, there._outbox.get_nowait())) is True
    assert here._noticed(wire(here, here._outbox.get_nowait())) is True
    assert noticed == [roster]
