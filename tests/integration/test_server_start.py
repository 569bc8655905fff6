"""A test server that cannot start is reported as soon as its process exits, with its log,
not after `RunningServer`'s generous start deadline (tests/support/server.py)."""

from __future__ import annotations

import time

import pytest

from tests.support.server import START_DEADLINE_S, RunningServer


def test_a_server_that_exits_at_start_is_reported_at_once_with_its_reason() -> None:
    server = RunningServer(env_overrides={"QUALITY_BUCKET_SECONDS": "0"})  # refused at start
    started = time.monotonic()
    try:
        with pytest.raises(RuntimeError, match="exited early") as refused:
            server.launch()
    finally:
        server.cleanup()
    assert "QUALITY_BUCKET_SECONDS must be at least 1" in str(refused.value)
    # Noticed when the process exited, not by running out the deadline.
    assert time.monotonic() - started < START_DEADLINE_S / 2
