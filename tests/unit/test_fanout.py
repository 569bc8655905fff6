"""The Redis fan-out's bookkeeping, without a Redis (the outages themselves, with a real
redis-server: tests/integration/test_redis_outage.py): an emit's message for the other processes
is queued without waiting, dropped while Redis is unreachable, and dropped beyond the backlog
(and then remembered, and handed on once the queue has drained); each outage, and each time
publishing falls behind, is logged once. The queue and the record of what was missed on their
own: tests/unit/test_fanout_outbox.py."""

from __future__ import annotations

import asyncio
import logging

import pytest

from signaling.fanout import RedisFanOut, RedisLink
from signaling.fanout_outbox import Missed


def warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]


def wire_size(fanout: RedisFanOut, message: dict[str, object]) -> int:
    return len(fanout.json.dumps(message).encode())


async def test_messages_beyond_the_backlog_are_dropped_logged_once_and_remembered(
    caplog: pytest.LogCaptureFixture,
) -> None:
    probe = RedisFanOut("redis://127.0.0.1:1/0")
    state = {"method": "emit", "event": "consult-state", "data": [{"consult": {"id": "c0"}}]}
    size = wire_size(probe, state)
    # never started: nothing publishes; room for two messages of this size
    fanout = RedisFanOut("redis://127.0.0.1:1/0", backlog_bytes=2 * size)
    for n in range(5):
        await fanout._publish(
            {"method": "emit", "event": "consult-state", "data": [{"consult": {"id": f"c{n}"}}]}
        )
    assert len(fanout.outbox) == 2
    assert fanout.outbox.high_water_bytes == 2 * size
    assert (fanout.link.dropped, fanout.full_drops, fanout.dropped_total) == (3, 3, 3)
    assert fanout.missed.consults == {"c2", "c3", "c4"}
    [line] = warnings(caplog)
    assert "falls behind" in line


async def test_once_drained_what_was_missed_is_handed_on_once() -> None:
    fanout = RedisFanOut("redis://127.0.0.1:1/0", backlog_bytes=1)
    handed: list[Missed] = []

    async def on_missed(missed: Missed) -> None:
        handed.append(missed)

    fanout.on_missed = on_missed
    await fanout._publish({"method": "emit", "event": "x", "data": {}, "room": "user:1"})
    await fanout._publish(
        {"method": "emit", "event": "consult-state", "data": [{"consult": {"id": "c1"}}]}
    )
    fanout.notice({"kind": "roster", "owner": "n1", "consult": "c2", "peers": {}})
    assert fanout.outbox.take(1 << 20) and not fanout.outbox  # as the publisher does
    fanout._caught_up()
    await asyncio.gather(*fanout._making_good)
    [missed] = handed
    assert (missed.consults, missed.rooms) == ({"c1"}, {"c2"})
    assert missed.by_kind == {"consult": 1, "room": 1}
    assert fanout.consults_resent == 1
    assert not fanout.missed  # taken: the next drain starts afresh


async def test_while_redis_is_unreachable_messages_are_dropped_not_queued() -> None:
    fanout = RedisFanOut("redis://127.0.0.1:1/0")
    fanout.link.failed("ConnectionError: refused")
    for n in range(3):
        await fanout._publish({"method": "emit", "n": n})
    assert not fanout.outbox
    assert fanout.link.dropped == 3
    assert not fanout.missed  # the outage's rule: dropped, not made good afterwards


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
        return fanout.json.dumps(message).encode()  # as `_queue` encodes it

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
    [there_raw] = there.outbox.take(1 << 20)
    [here_raw] = here.outbox.take(1 << 20)
    assert here._noticed(there_raw) is True
    assert here._noticed(here_raw) is True
    assert noticed == [roster]
