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
