"""A recorded consult has ONE "play recording" on its card, which opens the synced player (the
supervisor's review player) for everyone who may play it: the exam room's doctor at a desk, the
specialist on a phone; every track's link is audited under their name."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from playwright.sync_api import expect

from tests.e2e.browser import Client
from tests.e2e.flows import HOME, recorded_consult, wait_until_live
from tests.support.server import RunningServer

pytestmark = pytest.mark.e2e

# The player's clock moved on and every video track in play shows real pictures.
PLAYER_PLAYS = """(card) => {
  const player = card.querySelector('[data-testid="review-player"]');
  if (!player || player.dataset.playing !== 'true') return false;
  if (Number(player.dataset.position) < 0.5) return false;
  const videos = [...player.querySelectorAll('video')];
  return videos.length > 0 && videos.every((v) => v.videoWidth > 0 && v.currentTime > 0);
}"""


@pytest.mark.parametrize(
    ("kind", "username", "lang", "label"),
    [
        ("desktop", "doctor.a", "zh-CN", "zh-exam-room"),
        ("phone", "obstetrician", "en", "en-specialist"),
    ],
)
def test_a_recorded_consult_has_one_play_that_opens_the_synced_player_and_is_audited(
    server: RunningServer,
    open_client: Callable[..., Client],
    kind: str,
    username: str,
    lang: str,
    label: str,
) -> None:
    consult = recorded_consult(server)
    client = open_client(kind, username)
    client.context.add_init_script(f"localStorage.setItem('teleconsult.lang', '{lang}')")
    page = client.page
    page.goto(f"{server.url}{HOME[username]}#token={server.token(username)}")
    wait_until_live(page)
    card = page.locator(f'[data-testid="consult-item"][data-consult-id="{consult["id"]}"]')
    expect(card).to_have_attribute("data-status", "ended")
    play = card.get_by_test_id("consult-play-recording")
    expect(play).to_have_count(1)
    expect(card.locator("video, audio")).to_have_count(0)  # no raw tracks before asking
    client.screenshot(f"50-{label}-recorded-consult")

    play.click()
    player = card.get_by_test_id("review-player")
    expect(player.get_by_test_id("review-track")).to_have_count(4)  # camera + mic of each side
    expect(player.get_by_test_id("review-marker")).to_have_count(1)  # the note, on the timeline
    page.wait_for_function(PLAYER_PLAYS, arg=card.element_handle(), polling=250, timeout=20_000)
    expect(play).to_be_hidden()  # one player, its own play/pause from now on
    client.screenshot(f"51-{label}-recording-playing")

    audit = server.request(
        "GET", f"/api/consults/{consult['id']}/audit", token=server.token("supervisor")
    ).body["entries"]
    timeline = server.request(
        "GET", f"/api/consults/{consult['id']}/playback", token=server.token(username)
    ).body["timeline"]
    me = server.request("GET", "/api/me", token=server.token(username)).body["id"]
    granted = {
        e["detail"]["recording"]
        for e in audit
        if e["action"] == "recording.playback_granted" and e["actor_id"] == me
    }
    assert granted == {t["recording"]["id"] for t in timeline["tracks"]}, audit
    assert any(e["action"] == "recording.accessed" and e["actor_id"] == me for e in audit)
    client.assert_clean()
