"""Steps the e2e tests share: sign in, book, wait until a page really receives video."""

from __future__ import annotations

import asyncio
import re
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from playwright.sync_api import FilePayload, Page, WebSocketRoute, expect

from tests.e2e.browser import Client
from tests.integration.test_supervisor_review import record_consult
from tests.support.server import RunningServer

HOME = {
    "doctor.a": "/exam-room.html",
    "doctor.b": "/exam-room.html",
    "obstetrician": "/specialist.html",
    "paediatrician": "/specialist.html",
    "supervisor": "/supervisor.html",
    "admin": "/admin.html",
}

# True once every video of data-testid `arg` has frames (videoWidth > 0) and its clock moved since
# the previous poll: the page is receiving and decoding video, not showing a frozen frame.
VIDEOS_PLAY = """(testid) => {
  const videos = [...document.querySelectorAll(`[data-testid="${testid}"]`)];
  window.__e2eSeen ??= new WeakMap();
  let all = videos.length > 0;
  for (const v of videos) {
    const before = window.__e2eSeen.get(v);
    window.__e2eSeen.set(v, v.currentTime);
    if (!(v.videoWidth > 0 && before !== undefined && v.currentTime > before)) all = false;
  }
  return all;
}"""


def sign_in(client: Client, server: RunningServer, username: str, *, live: bool = True) -> Page:
    """Log in through the login page and land on the user's home page; with `live`, wait until
    its socket is connected (the supervisor's and the admin's pages are not waited for)."""
    page = client.page
    page.goto(f"{server.url}/")
    page.get_by_test_id("login-username").fill(username)
    page.get_by_test_id("login-password").fill(f"demo-{username}")
    page.get_by_test_id("login-submit").click()
    page.wait_for_url(f"{server.url}{HOME[username]}")
    if live:
        wait_until_live(page)
    return page


def wait_until_live(page: Page) -> None:
    """The page's socket is connected, so server events from now on reach it."""
    expect(page.locator("html")).to_have_attribute("data-socket", "connected")


def open_call_link(client: Client, server: RunningServer, username: str, consult_id: str) -> Page:
    """Open the user's page through a join link (`#token=…&consult=…`), as the demo prints."""
    page = client.page
    page.goto(f"{server.url}{HOME[username]}#token={server.token(username)}&consult={consult_id}")
    return page


def unique_patient() -> str:
    return f"测试 E2E {uuid.uuid4().hex[:8]}"


OBSTETRIC_INTAKE = {
    "gestational_week": "33",
    "bp_systolic": "152",
    "bp_diastolic": "98",
    "fetal_presentation": "cephalic",
}
"""Answers to every required field of the obstetric intake form."""


def fill_intake(room: Page, intake: Mapping[str, str]) -> None:
    """Answer intake fields by their key (`intake-<key>`): choose in a select, type otherwise."""
    for key, value in intake.items():
        field = room.get_by_test_id(f"intake-{key}")
        if field.evaluate("(el) => el.tagName") == "SELECT":
            field.select_option(value)
        else:
            field.fill(value)


def fill_booking(
    room: Page,
    patient: str,
    *,
    specialty: str = "obstetrics",
    reason: str = "妊娠期高血压 请产科会诊",
    sex: str | None = None,
    age: int | None = None,
    summary: str | None = None,
    intake: Mapping[str, str] = OBSTETRIC_INTAKE,
    files: Sequence[FilePayload] = (),
) -> None:
    """Fill the exam room's booking form (without sending it); the fields left None keep the
    form's defaults. The specialty is chosen before the intake, whose form it brings."""
    room.get_by_test_id("book-patient-name").fill(patient)
    if sex is not None:
        room.get_by_test_id("book-patient-sex").select_option(sex)
    if age is not None:
        room.get_by_test_id("book-patient-age").fill(str(age))
    if summary is not None:
        room.get_by_test_id("book-summary").fill(summary)
    room.get_by_test_id("book-specialty").select_option(specialty)
    room.get_by_test_id("book-reason").fill(reason)
    fill_intake(room, intake)
    if files:
        room.get_by_test_id("book-files").set_input_files(list(files))


def submit_booking(room: Page, patient: str) -> None:
    """Send the booking form; the exam room confirms the booking by the patient's name."""
    room.get_by_test_id("book-submit").click()
    expect(room.get_by_test_id("book-message")).to_contain_text(patient)


def book(
    room: Page,
    patient: str,
    *,
    specialty: str = "obstetrics",
    reason: str = "妊娠期高血压 请产科会诊",
    sex: str | None = None,
    age: int | None = None,
    summary: str | None = None,
    intake: Mapping[str, str] = OBSTETRIC_INTAKE,
    files: Sequence[FilePayload] = (),
) -> None:
    """Book a consult through the exam room's form, as the doctor does (`fill_booking`), and
    wait until the page confirms it."""
    fill_booking(
        room,
        patient,
        specialty=specialty,
        reason=reason,
        sex=sex,
        age=age,
        summary=summary,
        intake=intake,
        files=files,
    )
    submit_booking(room, patient)


def wait_for_remote_video(pages: list[Page], within_s: float) -> None:
    """Every page's remote videos play, all within `within_s` seconds from now."""
    deadline = time.monotonic() + within_s
    for page in pages:
        remaining_ms = max(1.0, (deadline - time.monotonic()) * 1000)
        page.wait_for_function(VIDEOS_PLAY, arg="remote-video", polling=250, timeout=remaining_ms)


def recorded_consult(server: RunningServer, notes: Sequence[str] = ("胎心减速",)) -> dict[str, Any]:
    """A consult booked over REST, really recorded on the relay by two aiortc participants
    (`notes` taken while recording), then ended: four finished tracks. No browser takes part."""
    consult = server.book()
    with ThreadPoolExecutor(max_workers=1) as pool:  # Playwright's loop owns this thread
        recording = record_consult(server, consult["id"], notes)
        pool.submit(asyncio.run, recording).result(timeout=120)
    return consult


def end_consult(page: Page, conclusion: str | None = None) -> None:
    """Press End and confirm in the dialog it opens: the assigned specialist with `conclusion`
    (None: ends without one, on purpose), anyone else (the exam room) by confirming."""
    page.get_by_test_id("hangup-button").click()
    dialog = page.get_by_test_id("end-dialog")
    expect(dialog).to_be_visible()
    if conclusion is not None:
        dialog.get_by_test_id("end-conclusion").fill(conclusion)
        dialog.get_by_test_id("end-confirm").click()
    elif dialog.get_by_test_id("end-skip").is_visible():
        dialog.get_by_test_id("end-skip").click()
    else:
        dialog.get_by_test_id("end-confirm").click()
    expect(dialog).to_be_hidden()


def cuttable_sockets(client: Client) -> Callable[[], None]:
    """Route the client's socket.io websockets through the test; the returned call cuts them,
    so the page sees its transport die, as on a network blip."""
    sockets: list[WebSocketRoute] = []

    def proxy(ws: WebSocketRoute) -> None:
        ws.connect_to_server()
        sockets.append(ws)

    client.context.route_web_socket(re.compile(r".*/socket\.io/.*"), proxy)

    def cut() -> None:
        for ws in sockets:
            ws.close()

    return cut
