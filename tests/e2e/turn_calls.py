"""Steps the TURN e2e tests share: watch a page's peer connections and what its call says, read
which ICE candidate pair each connection really uses, and move a call onto the relay."""

from __future__ import annotations

from typing import Any

from playwright.sync_api import Page, expect

from tests.e2e.browser import Client
from tests.support.server import RunningServer
from tests.support.waiting import until

# Before any page script: keep every RTCPeerConnection the page makes, every TURN error Chromium
# reports, and every line the call's message shows (it changes faster than a test polls).
WATCH_CALL = """(() => {
  const Native = window.RTCPeerConnection;
  window.__e2ePcs = [];
  window.__e2eIceErrors = [];
  window.__e2eMessages = [];
  window.RTCPeerConnection = class extends Native {
    constructor(...args) {
      super(...args);
      window.__e2ePcs.push(this);
      this.addEventListener('icecandidateerror', (e) => window.__e2eIceErrors.push(
        {url: e.url, code: e.errorCode, text: e.errorText}));
    }
  };
  new MutationObserver(() => {
    const line = document.querySelector('[data-testid="call-message"]');
    const text = line && !line.hidden ? line.textContent : '';
    if (text && window.__e2eMessages.at(-1) !== text) window.__e2eMessages.push(text);
  }).observe(document, {subtree: true, childList: true, characterData: true, attributes: true});
})();"""

# For each connected peer connection: its ICE transport policy, the selected candidate pair's
# local and remote candidates, and the video frames it decoded.
CONNECTED_PATHS = """async () => {
  const out = [];
  for (const pc of window.__e2ePcs) {
    if (pc.connectionState !== 'connected') continue;
    const stats = await pc.getStats();
    let pair = null;
    let frames = 0;
    stats.forEach((s) => {
      const selected = s.type === 'transport' && s.selectedCandidatePairId;
      if (selected) pair = stats.get(s.selectedCandidatePairId);
      if (s.type === 'inbound-rtp' && s.kind === 'video') frames += s.framesDecoded ?? 0;
    });
    if (!pair) continue;
    const local = stats.get(pair.localCandidateId);
    const remote = stats.get(pair.remoteCandidateId);
    out.push({
      policy: pc.getConfiguration().iceTransportPolicy,
      local: {type: local.candidateType, relayProtocol: local.relayProtocol ?? null,
              address: local.address, port: local.port, url: local.url ?? null},
      remote: {type: remote.candidateType, address: remote.address, port: remote.port},
      framesDecoded: frames,
    });
  }
  return out;
}"""


def watch_call(client: Client) -> None:
    client.context.add_init_script(WATCH_CALL)


def connected_paths(page: Page) -> list[dict[str, Any]]:
    paths: list[dict[str, Any]] = page.evaluate(CONNECTED_PATHS)
    return paths


def messages(page: Page) -> list[str]:
    said: list[str] = page.evaluate("() => window.__e2eMessages")
    return said


def console_says(client: Client, text: str) -> bool:
    """Whether a console line of the page contains `text` (Playwright delivers console events
    while it talks to the page, so this asks the page something first)."""
    client.page.evaluate("0")
    return any(text in line for line in client.console)


def ice_errors(page: Page) -> list[dict[str, Any]]:
    errors: list[dict[str, Any]] = page.evaluate("() => window.__e2eIceErrors")
    return errors


def through_turn(
    page: Page, transport: str, remote_type: str, connections: int, within: float = 20
) -> list[dict[str, Any]]:
    """Once `connections` connections of the page are connected and video is decoded: each one
    sends from a relayed candidate of coturn's over `transport` to a `remote_type` candidate."""
    paths: list[dict[str, Any]] = []

    def flowing() -> bool:
        nonlocal paths
        paths = connected_paths(page)
        return len(paths) == connections and any(p["framesDecoded"] > 0 for p in paths)

    until(flowing, within=within, what=f"{connections} connected connection(s) decoding video")
    for path in paths:
        assert path["policy"] == "relay", path
        assert path["local"]["type"] == "relay", path
        assert path["local"]["relayProtocol"] == transport, path
        assert path["remote"]["type"] == remote_type, path
    return paths


def decoded_frames(page: Page) -> int:
    """The video frames the page's connected connections have decoded so far."""
    return sum(path["framesDecoded"] for path in connected_paths(page))


def video_advances(page: Page, within: float) -> None:
    """The page keeps decoding video: its decoded frames go up from now on."""
    before = decoded_frames(page)
    until(lambda: decoded_frames(page) > before, within=within, what="decoded frames advancing")


def move_to_relay_by_recording(room: Page, phone: Page) -> None:
    """The specialist starts recording and the exam room consents: the consult moves to the
    server's relay (only the relay records), both pages follow."""
    phone.get_by_test_id("record-start-button").click()
    expect(room.get_by_test_id("consent-dialog")).to_be_visible()
    if phone.get_by_test_id("consent-dialog").is_visible():
        phone.get_by_test_id("consent-agree").click()
    room.get_by_test_id("consent-agree").click()
    for page in (room, phone):
        expect(page.get_by_test_id("call-view")).to_have_attribute(
            "data-media-path", "relay", timeout=15_000
        )


def turn_env(urls: list[str], secret: str, **more: str) -> dict[str, str]:
    """Server settings for a call through TURN only, with the relay's UDP in a known range."""
    return {
        "TURN_URLS": ",".join(urls),
        "TURN_SECRET": secret,
        "ICE_TRANSPORT_POLICY": "relay",
        "JOINS_PER_MINUTE": "10000",
        "LOGIN_ATTEMPTS_PER_MINUTE": "10000",
        **more,
    }


def minted_users(server: RunningServer, *usernames: str) -> dict[str, int]:
    """The user ids the server puts into TURN usernames (`<expiry>:<user id>`)."""
    return {
        name: int(server.request("GET", "/api/me", token=server.token(name)).body["id"])
        for name in usernames
    }
