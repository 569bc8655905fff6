"""A connect whose authentication fails in an unexpected way is still answered, with a code."""

from __future__ import annotations

import logging
from typing import Any

import pytest
import socketio

from rooms.consults.errors import DatabaseUnavailable
from signaling.events import ConsultEvents


class FailingContext:
    def __init__(self, exc: Exception) -> None:
        self.exc = exc

    async def authenticate_claims(self, token: str | None) -> Any:
        raise self.exc


def events_failing_with(exc: Exception) -> ConsultEvents:
    events = ConsultEvents.__new__(ConsultEvents)  # only `ctx` is read before the refusal
    events.ctx = FailingContext(exc)
    return events


async def test_an_unexpected_error_during_authentication_refuses_as_internal_error(
    caplog: pytest.LogCaptureFixture,
) -> None:
    events = events_failing_with(OverflowError("timestamp out of range"))
    with (
        caplog.at_level(logging.ERROR),
        pytest.raises(socketio.exceptions.ConnectionRefusedError) as refused,
    ):
        await events.on_connect("sid1", {}, {"token": "x"})
    assert refused.value.error_args["data"]["code"] == "internal_error"
    assert "unhandled error authenticating connection sid1" in caplog.text


async def test_a_database_outage_during_authentication_refuses_as_database_unavailable() -> None:
    events = events_failing_with(DatabaseUnavailable("the database is unavailable"))
    with pytest.raises(socketio.exceptions.ConnectionRefusedError) as refused:
        await events.on_connect("sid1", {}, {"token": "x"})
    assert refused.value.error_args["data"]["code"] == "database_unavailable"
