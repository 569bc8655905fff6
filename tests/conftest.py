"""Fixtures shared by every test folder."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable, Iterator

import pytest

from media.event_loop import loop_factory as new_loop_factory
from teleconsult import web_bundle
from tests.support.server import RunningServer


def pytest_sessionstart(session: pytest.Session) -> None:
    """The call pages' bundles (web_client/dist) rebuilt if a source under web_client/js is
    newer, so that every page a test opens runs today's code (esbuild: `make system-deps`)."""
    try:
        web_bundle.ensure_fresh()
    except web_bundle.BundleError as err:
        raise pytest.UsageError(str(err)) from err


@pytest.fixture(scope="session")
def server() -> Iterator[RunningServer]:
    """One real server for the session, with demo data; limits raised so tests don't trip them."""
    with RunningServer(
        env_overrides={"JOINS_PER_MINUTE": "10000", "LOGIN_ATTEMPTS_PER_MINUTE": "10000"}
    ) as running:
        yield running


def pytest_asyncio_loop_factories(
    config: pytest.Config, item: pytest.Item
) -> dict[str, Callable[[], asyncio.AbstractEventLoop]]:
    """The loop in-process async tests run on: asyncio's, or uvloop with TEST_EVENT_LOOP=uvloop
    (the relay tests pass on both; a server under test picks its own with EVENT_LOOP)."""
    name = os.environ.get("TEST_EVENT_LOOP", "asyncio")
    return {name: new_loop_factory(name)}
