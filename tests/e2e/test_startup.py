"""Opening a call link: each page marks its start-up steps (web_client/js/timings.js, read by
bench/startup.py), camera and socket do not wait for each other, and the
page's code comes as one file, its bundle (teleconsult/web_bundle.py), not ~40 modules one by
one. Speed itself is measured in bench/startup.py, never asserted here."""

from __future__ import annotations

from collections.abc import Callable

import pytest

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
LOADED_SCRIPTS = """() => performance.getEntriesByType('resource')
  .map((e) => new URL(e.name))
  .filter((u) => u.origin === location.origin && u.pathname.endsWith('.js'))
  .map((u) => u.pathname)"""


def test_a_call_link_marks_its_start_up_steps_and_loads_its_code_as_one_file(
    server: RunningServer, open_client: Callable[..., Client]
) -> None:
    consult = server.book()
    exam_room = open_client("desktop", "exam-room")
    specialist = open_client("phone", "specialist")
    room = open_call_link(exam_room, server, "doctor.a", consult["id"])
    phone = open_call_link(specialist, server, "obstetrician", consult["id"])
    wait_for_remote_video([room, phone], within_s=20)
    for client, page in ((exam_room, room), (specialist, phone)):
        page.wait_for_function("'first_remote_frame' in window.teleconsultTimings.marks")
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
