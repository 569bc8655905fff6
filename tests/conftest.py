"""Fixtures shared by every test folder."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.server import RunningServer


@pytest.fixture(scope="session")
def server() -> Iterator[RunningServer]:
    """One real server for the session, with demo data; limits raised so tests don't trip them."""
    with RunningServer(
        env_overrides={"JOINS_PER_MINUTE": "10000", "LOGIN_ATTEMPTS_PER_MINUTE": "10000"}
    ) as running:
        yield running
