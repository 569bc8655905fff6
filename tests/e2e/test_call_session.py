"""The call view's state machine in real Chromium, against a scripted socket: what the page does
when the server says its call was taken over by another device (`replaced`), that someone moved
to another device, asks how a direct link is (`p2p-check`), refuses a join for a while
(`rate_limited`, `busy`), reports a recording interrupted by a restart, or ends the session.

The call view (web_client/js/call/view.js) is mounted on a served page with a fake socket that
answers each event as the test says, so every server behaviour is exactly the one under test.
The last test goes through the real server and the page's real socket."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from playwright.sync_api import Page, Route, WebSocketRoute, expect

from tests.e2e.browser import ARTIFACTS, Client
from tests.e2e.flows import open_call_link, sign_in, wait_until_live
from tests.support.server import RunningServer
from tests.support.waiting import until

pytestmark = pytest.mark.e2e

CONSULT_ID = "c0ffee" + "0" * 26
ME = {"id": 1, "display_name": "李医生 Dr Li", "role": "exam_room_doctor"}
WANG = {"id": 7, "display_name": "王芳 (产科) Wang Fang", "role": "specialist"}
# The page's sentences (full-width punctuation, as written in web_client/locales/zh-CN.json).
INTERRUPTED = "录像已因服务器重启而中断\uff0c之前的录像已保存。"
DISABLED = "账号已停用\uff0c请联系管理员。"
CONSULT: dict[str, Any] = {
    "id": CONSULT_ID,
    "status": "live",
    "media_mode": "p2p",
    "specialty": "obstetrics",
    "patient": {"name": "测试患者"},
    "specialist": {"id": WANG["id"], "display_name": WANG["display_name"]},
    "invited": [],
    "closing_note": None,
}

# A socket.io socket as the call session uses it (on/once/off, timeout().emitWithAck/emit,
# connected), whose server is the test: each event's answers are queued per event name
# (`window.__call.answer(event, ack)`), {ok: true} when none is queued. Events from the
# "server" are fired with `window.__call.fire(event, payload)`, which resolves with the page's
# ack, if the handler gave one. The view is mounted on the page, and every change of its
# data-session-state is logged in `window.__call.states`.
HARNESS = """async ({ user }) => {
  const { CallView } = await import('/js/call/view.js');
  class FakeSocket {
    constructor() { this.connected = true; this.handlers = {}; this.sent = []; this.answers = {}; }
    on(event, fn) { (this.handlers[event] ??= []).push(fn); }
    off(event, fn) { this.handlers[event] = (this.handlers[event] ?? []).filter((f) => f !== fn); }
    once(event, fn) {
      const once = (...a) => { this.off(event, once); fn(...a); };
      this.on(event, once);
    }
    timeout() { return this; }
    reply(event, payload) {
      this.sent.push([event, payload]);
      const ack = this.answers[event]?.shift() ?? { ok: true };
      // "hold": the answer waits until the test releases it with __call.release(ack)
      return ack === 'hold' ? new Promise((resolve) => { this.release = resolve; }) : ack;
    }
    async emitWithAck(event, payload) { return this.reply(event, payload); }
    emit(event, payload, callback) { callback?.(null, this.reply(event, payload)); }
    fire(event, payload) {
      return new Promise((resolve) => {
        for (const fn of [...(this.handlers[event] ?? [])]) fn(payload, resolve);
        queueMicrotask(() => resolve(null));
      });
    }
  }
  const socket = new FakeSocket();
  const root = document.createElement('div');
  document.querySelector('main').replaceChildren(root);
  const call = { socket, closed: 0, states: [] };
  call.view = new CallView({ root, socket, user, onClose: () => { call.closed += 1; } });
  const section = root.querySelector('[data-testid="call-view"]');
  new MutationObserver(() => {
    const state = section.dataset.sessionState;
    if (call.states.at(-1) !== state) call.states.push(state);
  }).observe(section, { attributes: true, attributeFilter: ['data-session-state'] });
  call.answer = (event, ack) => { (socket.answers[event] ??= []).push(ack); };
  call.release = (ack) => socket.release(ack);
  call.fire = (event, payload) => socket.fire(event, payload);
  call.sent = (event) => socket.sent.filter(([e]) => e === event).map(([, p]) => p);
  call.drop = () => {
    socket.connected = false;
    return socket.fire('disconnect', 'transport close');
  };
  call.back = () => { socket.connected = true; return socket.fire('connect'); };
  window.__call = call;
}"""


def join_ack(**fields: Any) -> dict[str, Any]:
    ack = {
        "ok": True,
        "peer_id": "self-1",
        "consult": CONSULT,
        "peers": [],
        "ice_servers": [],
        "media_path": "p2p",
        "recording": None,
        "notes": [],
    }
    ack.update(fields)
    return ack


@pytest.fixture
def call_page(server: RunningServer, open_client: Callable[..., Client]) -> Iterator[Page]:
    """A served page (the sign-in page, whose <main> the call view replaces) with the harness."""
    client = open_client("desktop", "call-session")
    client.page.clock.install()  # the join retries' backoff runs on the test's clock
    client.page.goto(f"{server.url}/")
    client.page.evaluate(HARNESS, {"user": ME})
    yield client.page
    client.assert_clean()


def screenshot(page: Page, label: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{label}.png"), full_page=True)


def answer(page: Page, event: str, ack: dict[str, Any] | str) -> None:
    page.evaluate("([event, ack]) => window.__call.answer(event, ack)", [event, ack])


def fire(page: Page, event: str, payload: dict[str, Any]) -> Any:
    return page.evaluate("([event, p]) => window.__call.fire(event, p)", [event, payload])


def sent(page: Page, event: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = page.evaluate("(event) => window.__call.sent(event)", event)
    return found


def states(page: Page) -> list[str]:
    found: list[str] = page.evaluate("window.__call.states")
    return found


def join(page: Page) -> None:
    page.evaluate("(id) => window.__call.view.join(id)", CONSULT_ID)


def test_a_call_taken_over_elsewhere_stops_and_continues_here_only_when_asked(
    call_page: Page,
) -> None:
    page = call_page
    view = page.get_by_test_id("call-view")
    answer(page, "join", join_ack())
    join(page)
    expect(view).to_have_attribute("data-call-state", "waiting")

    fire(page, "replaced", {"consult_id": CONSULT_ID, "reason": "replaced"})
    expect(view).to_have_attribute("data-call-state", "replaced")
    expect(page.get_by_test_id("call-replaced")).to_contain_text("已在另一设备或标签页打开")
    expect(page.get_by_test_id("local-video")).to_be_hidden()
    assert (
        page.evaluate("document.querySelector('[data-testid=\"local-video\"]').srcObject") is None
    )
    expect(page.get_by_test_id("mute-button")).to_be_hidden()
    expect(page.get_by_test_id("call-message")).to_be_hidden()  # no "lost connection" here
    screenshot(page, "80-call-replaced")

    # A reconnect of the socket does not bring the call back by itself.
    page.evaluate("window.__call.drop()")
    page.evaluate("window.__call.back()")
    expect(view).to_have_attribute("data-call-state", "replaced")
    assert len(sent(page, "join")) == 1

    answer(page, "join", join_ack(peer_id="self-2"))
    page.get_by_test_id("take-over-button").click()
    expect(view).to_have_attribute("data-call-state", "waiting")
    assert len(sent(page, "join")) == 2
    expect(page.get_by_test_id("local-video")).to_be_visible()
    assert states(page) == ["joining", "in_call", "replaced", "joining", "in_call"]


def test_a_replaced_that_comes_before_our_own_join_ack_is_superseded_by_that_join(
    call_page: Page,
) -> None:
    page = call_page
    answer(page, "join", "hold")
    join(page)
    # Polled from here, not in the page: the page's timers run on the test's clock.
    until(lambda: len(sent(page, "join")) == 1)  # on its way, unanswered
    # The server took the other device's join before ours: what it replaced is our old place.
    fire(page, "replaced", {"consult_id": CONSULT_ID, "reason": "replaced"})
    page.evaluate("(ack) => window.__call.release(ack)", join_ack())
    expect(page.get_by_test_id("call-view")).to_have_attribute("data-call-state", "waiting")
    expect(page.get_by_test_id("local-video")).to_be_visible()
    assert states(page) == ["joining", "in_call"]


def test_a_room_that_moved_with_a_dead_signaling_process_is_left_and_joined_again(
    call_page: Page,
) -> None:
    """Several signaling processes: the one holding the consult's room died and this page's own
    process says `rejoin`; the page leaves and joins again (which opens the room in a live
    process), and meets whoever is there then."""
    page = call_page
    view = page.get_by_test_id("call-view")
    answer(page, "join", join_ack())
    join(page)
    expect(view).to_have_attribute("data-call-state", "waiting")

    peer = {"peer_id": "wang-2", "user": WANG}
    answer(page, "join", join_ack(peer_id="self-2", peers=[peer]))
    fire(page, "rejoin", {"consult_id": "someone-elses", "reason": "room_moved"})
    assert len(sent(page, "join")) == 1  # not about this consult: ignored
    fire(page, "rejoin", {"consult_id": CONSULT_ID, "reason": "room_moved"})
    until(lambda: len(sent(page, "join")) == 2)
    expect(page.get_by_test_id("call-message")).to_contain_text("承载本会诊的服务器已断开")
    assert sent(page, "leave") == [{"consult_id": CONSULT_ID}]
    assert sent(page, "join")[-1] == {"consult_id": CONSULT_ID}
    expect(view).to_have_attribute("data-call-state", "connecting")
    # The newcomer calls the others: an offer to the person in the room it found.
    until(lambda: any(s.get("to") == "wang-2" for s in sent(page, "signal")))
    assert states(page) == ["joining", "in_call", "rejoining", "in_call"]


def test_someone_moving_to_another_device_is_not_reported_as_a_lost_connection(
    call_page: Page,
) -> None:
    page = call_page
    answer(page, "join", join_ack(peers=[{"peer_id": "wang-phone", "user": WANG}]))
    join(page)
    expect(page.get_by_test_id("remote-video")).to_have_attribute("data-peer-id", "wang-phone")

    fire(
        page, "peer-left", {"consult_id": CONSULT_ID, "peer_id": "wang-phone", "reason": "replaced"}
    )
    fire(
        page,
        "peer-joined",
        {"consult_id": CONSULT_ID, "peer": {"peer_id": "wang-tab", "user": WANG}},
    )
    message = page.get_by_test_id("call-message")
    expect(message).to_have_text(f"{WANG['display_name']} 已切换到另一台设备或另一个标签页。")
    expect(message).to_have_attribute("data-kind", "info")
    expect(page.get_by_test_id("remote-video")).to_have_attribute("data-peer-id", "wang-tab")


def test_the_page_answers_the_servers_p2p_check_about_its_direct_link(call_page: Page) -> None:
    page = call_page
    answer(page, "join", join_ack(peers=[{"peer_id": "wang-phone", "user": WANG}]))
    join(page)
    expect(page.get_by_test_id("remote-video")).to_have_count(1)

    # Nobody answers on the other side: the link is not connected.
    check = {"consult_id": CONSULT_ID, "peer_id": "wang-phone", "generation": 0}
    assert fire(page, "p2p-check", check) == {"state": "failed", "generation": 0}
    gone = {"consult_id": CONSULT_ID, "peer_id": "nobody", "generation": 3}
    assert fire(page, "p2p-check", gone) == {"state": "gone", "generation": 3}

    # After its ICE restarts fail, the link is reported with the generation that failed; the
    # server keeps the direct path, and the page keeps trying.
    answer(page, "p2p-failed", {"ok": True, "media_path": "p2p", "ignored": "unconfirmed"})
    page.clock.run_for(20_000)
    reports = sent(page, "p2p-failed")
    assert reports == [{"consult_id": CONSULT_ID, "peer_id": "wang-phone", "generation": 2}]
    assert fire(page, "p2p-check", check)["generation"] >= 2
    expect(page.get_by_test_id("call-view")).to_have_attribute("data-media-path", "p2p")


def test_a_join_refused_for_a_while_is_tried_again_with_backoff_and_the_view_stays(
    call_page: Page,
) -> None:
    page = call_page
    view = page.get_by_test_id("call-view")
    answer(page, "join", {"ok": False, "error": {"code": "rate_limited", "message": "slow down"}})
    answer(page, "join", {"ok": False, "error": {"code": "busy", "message": "database locked"}})
    answer(page, "join", join_ack())
    join(page)
    expect(view).to_have_attribute("data-call-state", "reconnecting")
    expect(page.get_by_test_id("call-message")).to_contain_text("正在重新连接")
    assert len(sent(page, "join")) == 1
    page.clock.run_for(1_000)  # 1 s at most (up to a fifth less)
    until(lambda: len(sent(page, "join")) == 2)
    expect(view).to_have_attribute("data-call-state", "reconnecting")
    page.clock.run_for(2_000)
    expect(view).to_have_attribute("data-call-state", "waiting")
    assert len(sent(page, "join")) == 3
    expect(page.get_by_test_id("call-message")).to_be_hidden()
    assert states(page) == ["joining", "in_call"]
    assert page.evaluate("window.__call.closed") == 0


def test_a_join_refused_for_good_says_why_and_stays_until_the_user_goes_back(
    call_page: Page,
) -> None:
    page = call_page
    answer(page, "join", {"ok": False, "error": {"code": "consult_full", "message": "full"}})
    join(page)
    expect(page.get_by_test_id("call-view")).to_have_attribute("data-call-state", "failed")
    expect(page.get_by_test_id("call-message")).to_contain_text("无法进入会诊")
    page.get_by_test_id("call-back-button").click()
    expect(page.get_by_test_id("call-view")).to_be_hidden()
    assert states(page) == ["joining", "failed", "idle"]


def test_every_join_replaces_the_recording_state_and_an_interrupted_recording_is_said(
    call_page: Page,
) -> None:
    page = call_page
    started = (datetime.now(UTC) - timedelta(minutes=3)).isoformat()  # running for 3 minutes
    recording = {"state": "recording", "started_at": started, "pending": []}
    answer(page, "join", join_ack(recording={**recording, "declined_by": None, "notice": None}))
    join(page)
    expect(page.get_by_test_id("recording-indicator")).to_be_visible()

    # The server restarted: the socket comes back, and the rejoin's ack says what is true now.
    interrupted: dict[str, Any] = {
        "state": "off",
        "started_at": None,
        "pending": [],
        "declined_by": None,
    }
    answer(
        page, "join", join_ack(peer_id="self-2", recording={**interrupted, "notice": "interrupted"})
    )
    page.evaluate("window.__call.drop()")
    page.evaluate("window.__call.back()")
    expect(page.get_by_test_id("call-view")).to_have_attribute("data-call-state", "waiting")
    expect(page.get_by_test_id("recording-indicator")).to_be_hidden()
    expect(page.get_by_test_id("recording-notice")).to_have_text(INTERRUPTED)
    screenshot(page, "81-call-recording-interrupted")
    assert states(page) == ["joining", "in_call", "rejoining", "in_call"]


def test_an_ended_session_stops_the_call_and_the_sign_in_page_says_why(
    server: RunningServer, open_client: Callable[..., Client]
) -> None:
    consult = server.book()
    client = open_client("desktop", "exam-room")
    sockets: list[WebSocketRoute] = []

    def proxy(ws: WebSocketRoute) -> None:
        ws.connect_to_server()
        sockets.append(ws)

    # The client speaks WebSocket from the start (js/socket.js): events travel on this socket.
    client.context.route_web_socket(re.compile(r".*/socket\.io/.*"), proxy)
    room = open_call_link(client, server, "doctor.a", consult["id"])
    expect(room.get_by_test_id("call-view")).to_have_attribute("data-call-state", "waiting")
    wait_until_live(room)
    until(lambda: bool(sockets), within=10)

    ended = {"code": "user_disabled", "message": "user disabled"}
    sockets[-1].send("42" + json.dumps(["session-ended", ended]))
    # Signing in again returns to the exam room (`next`, the page it came from).
    room.wait_for_url(re.compile(r".*/\?session=user_disabled&next=%2Fexam-room\.html$"))
    expect(room.get_by_test_id("login-notice")).to_have_text(DISABLED)
    assert room.evaluate("sessionStorage.getItem('teleconsult.token')") is None
    client.assert_clean()


def test_a_page_goes_to_sign_in_once_though_requests_on_their_way_are_refused_meanwhile(
    server: RunningServer, open_client: Callable[..., Client]
) -> None:
    """The session ends; while the sign-in page loads (held here, as on a busy machine), a request
    the page had on its way comes back 401. A second trip to sign in would abort the first one
    (Chromium's net::ERR_ABORTED) and replace its reason; the first reason must stand."""
    client = open_client("desktop", "exam-room")
    room = sign_in(client, server, "doctor.a")
    held: list[Route] = []

    def hold(route: Route) -> None:
        held.append(route)

    room.route(re.compile(r".*/\?session=.*"), hold)
    trips = room.evaluate(
        """async () => {
          const { goToLogin } = await import('/js/session.js');
          const { api } = await import('/js/api.js');
          const trips = [];
          navigation.addEventListener('navigate', (e) => trips.push(e.destination.url));
          goToLogin('user_disabled');
          await api.consults().catch(() => {}); // sent without the token: 401
          return trips.map((url) => url.slice(url.indexOf('?')));
        }"""
    )
    assert trips == ["?session=user_disabled&next=%2Fexam-room.html"]
    held[0].continue_()
    room.wait_for_url(re.compile(r".*/\?session=user_disabled&next=%2Fexam-room\.html$"))
    expect(room.get_by_test_id("login-notice")).to_have_text(DISABLED)
    # The refused request is logged by Chromium, and is all that is.
    assert [e for e in client.page_errors if "401 (Unauthorized)" not in e] == []
    assert client.offsite_requests == []
