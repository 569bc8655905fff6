"""Opening a call link: each page marks its start-up steps (web_client/js/timings.js, read by
bench/startup.py), camera and socket do not wait for each other, and the
page's code comes as one file, its bundle (teleconsult/web_bundle.py), not ~40 modules one by
one. Speed itself is measured in bench/startup.py, never asserted here."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from playwright.sync_api import Page

from tests.e2e.browser import Client
from tests.e2e.flows import open_call_link, wait_for_remote_video
from tests.support.server import RunningServer

pytestmark = pytest.mark.e2e

# link_start: the call link's camera, socket and join were started by call-link.js.
STEPS = [
    "link_start",
    "script",
    "token",
    "socket_connected",
    "media",
    "join_acked",
    "ice_connected",
    "first_remote_frame",
]
# Keeps every RTCPeerConnection the page makes (window.__connections), to read its senders.
KEEP_CONNECTIONS = """(() => {
  const Native = window.RTCPeerConnection;
  window.__connections = [];
  window.__firstSent = [];
  // The first video frame each connection encoded: its size, and how often the browser had
  // changed the camera's resolution for lack of bandwidth by then.
  const watch = async (pc) => {
    while (pc.connectionState !== 'closed') {
      const stats = await pc.getStats();
      for (const s of stats.values()) {
        if (s.type === 'outbound-rtp' && s.kind === 'video' && s.framesEncoded > 0) {
          window.__firstSent.push({ width: s.frameWidth, height: s.frameHeight,
            resolutionChanges: s.qualityLimitationResolutionChanges });
          return;
        }
      }
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  };
  // Every scaleResolutionDownBy a video sender is given, in order.
  window.__scales = [];
  const setParameters = RTCRtpSender.prototype.setParameters;
  RTCRtpSender.prototype.setParameters = function (params, ...rest) {
    if (this.track?.kind === 'video') {
      window.__scales.push(params.encodings?.[0]?.scaleResolutionDownBy ?? 1);
    }
    return setParameters.call(this, params, ...rest);
  };
  window.RTCPeerConnection = class extends Native {
    constructor(...args) {
      super(...args);
      window.__connections.push(this);
      watch(this);
    }
  };
})()"""
# The camera's size and how much each connection scales it down before sending.
CAMERA_SENT = """() => window.__connections.filter((pc) => pc.connectionState !== 'closed')
  .flatMap((pc) => pc.getSenders())
  .filter((sender) => sender.track?.kind === 'video')
  .map((sender) => ({
    camera: [sender.track.getSettings().width, sender.track.getSettings().height],
    scale: sender.getParameters().encodings?.[0]?.scaleResolutionDownBy ?? 1,
  }))"""
LOADED_SCRIPTS = """() => performance.getEntriesByType('resource')
  .map((e) => new URL(e.name))
  .filter((u) => u.origin === location.origin && u.pathname.endsWith('.js'))
  .map((u) => u.pathname)"""


def both_in_a_call(
    server: RunningServer, open_client: Callable[..., Client], init_script: str | None = None
) -> list[tuple[Client, Page]]:
    """The exam room (desktop) and the specialist (phone) open a fresh consult's call links and
    see each other; each page with its first remote frame marked."""
    consult = server.book()
    clients = [open_client("desktop", "exam-room"), open_client("phone", "specialist")]
    if init_script is not None:
        for client in clients:
            client.context.add_init_script(init_script)
    pages = [
        open_call_link(client, server, user, consult["id"])
        for client, user in zip(clients, ("doctor.a", "obstetrician"), strict=True)
    ]
    wait_for_remote_video(pages, within_s=20)
    for page in pages:
        page.wait_for_function("'first_remote_frame' in window.teleconsultTimings.marks")
    return list(zip(clients, pages, strict=True))


def test_a_call_link_marks_its_start_up_steps_and_loads_its_code_as_one_file(
    server: RunningServer, open_client: Callable[..., Client]
) -> None:
    for client, page in both_in_a_call(server, open_client):
        marks = page.evaluate("window.teleconsultTimings.marks")
        assert set(STEPS) <= set(marks), marks
        assert all(marks[step] > 0 for step in STEPS), marks
        # The call waits for neither the lists nor the booking form: the camera is asked for
        # before the join's answer comes, and the video connects after it.
        assert marks["media"] <= marks["ice_connected"], marks
        assert marks["join_acked"] <= marks["ice_connected"] <= marks["first_remote_frame"], marks
        steps = page.evaluate("window.teleconsultTimings.steps()")
        assert [s["at"] for s in steps] == sorted(s["at"] for s in steps), steps
        # The page's code comes as one file, its bundle (teleconsult/web_bundle.py): not ~40
        # modules one after another from the Python server.
        assert page.evaluate(LOADED_SCRIPTS) == [f"/dist/{client.name}.js"]
        client.assert_clean()


def test_the_camera_s_first_frame_goes_out_at_the_size_the_start_bitrate_carries_then_full_size(
    server: RunningServer, open_client: Callable[..., Client]
) -> None:
    """A 1280x720 camera's first frames are sent scaled down to 480x270 (call/first-frames.js),
    which a new connection's 300 kbit/s start carries, instead of at full size, which the encoder
    drops and shrinks (to 320x180 or 640x360 on `main`); once the first frame went out, the
    sender's adaptation sets full size. Which frames a loaded machine's encoder still drops is
    the browser's affair (a congested start may shrink even 480x270): the test checks the sizes
    asked for, and that the first frame shown is no larger than the start size."""
    for client, page in both_in_a_call(server, open_client, init_script=KEEP_CONNECTIONS):
        first = page.evaluate("window.teleconsultTimings.firstFrame")
        assert 0 < first["width"] <= 480 and 0 < first["height"] <= 270, first
        page.wait_for_function("window.__firstSent.length > 0")
        sent = page.evaluate("window.__firstSent")
        assert 0 < sent[0]["width"] <= 480, sent
        # Full size once the first frame went out (the adaptation looks once a second).
        page.wait_for_function(
            f"({CAMERA_SENT})().length > 0 && ({CAMERA_SENT})().every((s) => s.scale === 1)"
        )
        assert [s["camera"] for s in page.evaluate(CAMERA_SENT)] == [[1280, 720]]
        # Asked for: the start size first (1280 / 480), full size after.
        scales = page.evaluate("window.__scales")
        assert scales[0] == pytest.approx(1280 / 480) and scales[-1] == 1, scales
        client.assert_clean()
