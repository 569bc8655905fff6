"""A real call in Chromium through haproxy in front of two signaling processes (Redis,
PostgreSQL): SIGKILL of the process that owns the consult's room, and both pages are back in
the consult with video playing, by themselves (the page on the dead process reconnects through
haproxy; the page on the other process is told `rejoin`)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import pytest
from playwright.sync_api import Page, expect

from tests.e2e.browser import Client
from tests.e2e.flows import HOME, wait_for_remote_video, wait_until_live
from tests.support.cluster import Cluster, running_cluster
from tests.support.waiting import until

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

FAILOVER_BOUND_SECONDS = 5.0
SLACK = 5.0
"""The issue's bound, asserted with generous slack (two Chromium pages and five servers on a
shared 2-core machine); the measured time is printed and reported in docs/deployment.md."""

# Every change of the call view's one-word state, with the time it happened (performance.now()).
WATCH_STATES = """() => {
  const section = document.querySelector('[data-testid="call-view"]');
  window.__states = [[section.dataset.callState, performance.now()]];
  new MutationObserver(() => {
    const state = section.dataset.callState;
    if (window.__states.at(-1)[0] !== state) window.__states.push([state, performance.now()]);
  }).observe(section, { attributes: true, attributeFilter: ['data-call-state'] });
}"""
LEFT_AND_BACK = """() => {
  const states = window.__states.map(([s]) => s);
  const left = states.findIndex((s) => s !== 'connected');
  return left >= 0 && states.slice(left).includes('connected')
    && document.querySelector('[data-testid="call-view"]').dataset.callState === 'connected';
}"""


@pytest.fixture
def cluster() -> Iterator[Cluster]:
    with running_cluster() as parts:
        yield parts


def open_through_lb(client: Client, cluster: Cluster, username: str, consult_id: str) -> Page:
    server = cluster.servers[0]
    page = client.page
    page.goto(
        f"{cluster.lb.url}{HOME[username]}#token={server.token(username)}&consult={consult_id}"
    )
    wait_until_live(page)
    return page


def test_sigkill_of_the_rooms_process_brings_both_pages_back_with_video_playing(
    cluster: Cluster, open_client: Callable[..., Client]
) -> None:
    consult = cluster.servers[0].book()["id"]
    # haproxy balances round robin: the two pages' sockets land on different processes.
    clients = [open_client("desktop", "exam-room"), open_client("phone", "specialist")]
    pages = [
        open_through_lb(clients[0], cluster, "doctor.a", consult),
        open_through_lb(clients[1], cluster, "obstetrician", consult),
    ]
    for page in pages:
        expect(page.get_by_test_id("call-view")).to_have_attribute(
            "data-call-state", "connected", timeout=30_000
        )
    wait_for_remote_video(pages, within_s=30)
    for page in pages:
        page.evaluate(WATCH_STATES)

    owner = cluster.owning_server_now(consult)
    killed_at = time.monotonic()
    owner.kill()
    for page in pages:
        page.wait_for_function(LEFT_AND_BACK, polling=50, timeout=30_000)
    page_times = [page.evaluate("window.__states") for page in pages]
    for page in pages:
        page.evaluate("window.__e2eSeen = new WeakMap()")
    wait_for_remote_video(pages, within_s=30)
    back_after = time.monotonic() - killed_at
    print(f"\nbrowser failover: both pages back, video playing, {back_after:.2f} s; {page_times}")
    assert back_after < FAILOVER_BOUND_SECONDS + SLACK
    survivor = next(s for s in cluster.servers if s is not owner)
    until(
        lambda: (
            survivor.request(
                "GET", f"/api/consults/{consult}", token=survivor.token("doctor.a")
            ).body["status"]
            == "live"
        )
    )
    for client in clients:
        client.assert_clean()  # no script error on either page through all of it
