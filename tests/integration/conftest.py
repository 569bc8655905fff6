"""Fixtures of real services for integration tests."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest

from tests.integration.stores import sql, stores  # noqa: F401  (fixtures of the storage tests)
from tests.support.peer import Participant
from tests.support.postgres import PostgresServer
from tests.support.relay_peer import RelayParticipant


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    with PostgresServer() as pg:
        yield pg


@pytest.fixture
async def people() -> AsyncIterator[list[Participant | RelayParticipant]]:
    """Socket.io participants a test connects (see `tests.support.inprocess.connected`), plain
    or on the relay; closed when the test ends."""
    made: list[Participant | RelayParticipant] = []
    yield made
    for p in made:
        await p.close()
