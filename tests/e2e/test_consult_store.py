"""The pages' consult list (web_client/js/consults.js, `ConsultStore`) on its own, in real
Chromium: what a reload of the list and the live events leave on the page when they cross.

CI once lost an invited consult from the specialist's page: the page's own first load and the
reload on the socket's connect were both on their way, the newer answer (with the invitation)
came first and the older one (without it) after, and replaced it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from tests.e2e.browser import Client
from tests.support.server import RunningServer

pytestmark = pytest.mark.e2e

# `steps`: ["mark", name] | ["upsert", id, version] | ["list", mark name, [[id, version]...]];
# the ids and versions the store holds after each step.
RUN = """async (steps) => {
  const { ConsultStore } = await import('/js/consults.js');
  const store = new ConsultStore(() => {});
  const marks = {};
  const consult = ([id, version]) => ({ id, version, status: 'accepted', scheduled_at: '' });
  const after = [];
  for (const [kind, ...args] of steps) {
    if (kind === 'mark') marks[args[0]] = store.mark();
    if (kind === 'upsert') store.upsert(consult(args));
    if (kind === 'list') store.replaceAll(args[1].map(consult), marks[args[0]]);
    after.push([...store.byId.values()].map((c) => [c.id, c.version]).sort());
  }
  return after;
}"""


@pytest.fixture
def run(
    server: RunningServer, open_client: Callable[..., Client]
) -> Callable[[list[list[Any]]], list[list[list[Any]]]]:
    page = open_client("desktop", "consult-store").page
    page.goto(f"{server.url}/")

    def steps(given: list[list[Any]]) -> list[list[list[Any]]]:
        held: list[list[list[Any]]] = page.evaluate(RUN, given)
        return held

    return steps


def test_an_older_list_answering_after_a_newer_one_does_not_take_away_an_invitation(
    run: Callable[[list[list[Any]]], list[list[list[Any]]]],
) -> None:
    after = run(
        [
            ["mark", "on-connect"],  # the reload on connect asks (before the invitation)
            ["upsert", "invited", 2],  # consult-invited
            ["mark", "first-load"],  # the page's own load asks (after it)
            ["list", "first-load", [["earlier", 5], ["invited", 2]]],  # answers first
            ["list", "on-connect", [["earlier", 5]]],  # the older list answers last
        ]
    )
    assert after[-1] == [["earlier", 5], ["invited", 2]]


def test_an_event_newer_than_the_list_stays_and_one_the_list_has_is_the_lists(
    run: Callable[[list[list[Any]]], list[list[list[Any]]]],
) -> None:
    after = run(
        [
            ["upsert", "known", 1],
            ["mark", "load"],
            ["upsert", "arrived", 1],  # while the list was on its way
            ["upsert", "known", 3],  # changed while the list was on its way
            ["list", "load", [["known", 2]]],
            ["mark", "reload"],
            ["list", "reload", [["known", 4], ["arrived", 1]]],
            ["mark", "again"],
            ["list", "again", [["known", 4]]],  # "arrived" went away since: gone
        ]
    )
    assert after[4] == [["arrived", 1], ["known", 3]]
    assert after[6] == [["arrived", 1], ["known", 4]]
    assert after[8] == [["known", 4]]
