"""Fixtures shared by every test folder."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from media.event_loop import loop_factory as new_loop_factory
from teleconsult import web_bundle
from tests.support.server import RunningServer


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """How `make test` (`-n 2`, pytest-xdist) shares the tests between its two processes: all of
    tests/e2e in one unit, so that one Chromium runs calls at a time (two calls encoding video
    side by side on two cores would judge the network adaptation by the CPU) and the package's
    one Playwright starts once; every other module a unit of its own, so that its
    module-scoped servers start once. (`--dist loadgroup` did not keep even explicitly
    `xdist_group`-marked tests together here, xdist 3.8 under pytest 9.2: six marked tests
    spread over both processes; hence a scheduler of our own.)"""
    from xdist.scheduler import LoadScopeScheduling

    class ByFolder(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            path = nodeid.split("::", 1)[0]
            return "tests/e2e" if path.startswith("tests/e2e/") else path

    return ByFolder(config, log)


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
