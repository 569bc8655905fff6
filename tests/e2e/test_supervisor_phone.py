"""The supervisor's pages on a phone (390 x 844), in both languages: the consult list and the
review's audit trail as cards (nothing cut, no column one character wide), the review timeline
as wide as the screen with note markers that do not overlap, and the audit trail in words, not
codes ("p2p → relay · recording")."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest
from playwright.sync_api import Page, expect

from tests.e2e.browser import Client
from tests.e2e.flows import recorded_consult
from tests.support.server import RunningServer

pytestmark = pytest.mark.e2e

# Widths (CSS px) of what a phone shows: the page, every cell of the consult and audit tables.
LAYOUT = """(selector) => ({
  viewport: window.innerWidth,
  page: document.documentElement.scrollWidth,
  cells: [...document.querySelectorAll(`${selector} td`)]
    .map((td) => td.getBoundingClientRect().width),
})"""
# The markers' boxes on screen, and the slider's width.
TIMELINE = """() => ({
  slider: document.querySelector('[data-testid="review-scrubber"]').getBoundingClientRect().width,
  markers: [...document.querySelectorAll('[data-testid="review-marker"]')].map((m) => {
    const r = m.getBoundingClientRect();
    return { left: r.left, right: r.right, top: r.top, bottom: r.bottom };
  }),
})"""


def assert_fits_the_phone(page: Page, table: str) -> None:
    layout = page.evaluate(LAYOUT, f'[data-testid="{table}"]')
    assert layout["page"] <= layout["viewport"], layout  # nothing cut or scrolling sideways
    assert layout["cells"], layout
    # As cards, every value has most of the screen's width (a squeezed column had ~20 px).
    assert min(layout["cells"]) >= 0.6 * layout["viewport"], layout


def overlapping(boxes: list[dict[str, float]]) -> list[tuple[int, int]]:
    return [
        (i, j)
        for i, a in enumerate(boxes)
        for j, b in enumerate(boxes)
        if i < j
        and a["left"] < b["right"]
        and b["left"] < a["right"]
        and a["top"] < b["bottom"]
        and b["top"] < a["bottom"]
    ]


@pytest.mark.parametrize(("lang", "short"), [("zh-CN", "zh"), ("en", "en")])
def test_the_supervisor_reviews_a_recorded_consult_on_a_phone(
    server: RunningServer, open_client: Callable[..., Client], lang: str, short: str
) -> None:
    # Three notes a moment apart: their markers would sit on top of each other.
    consult = recorded_consult(server, notes=("胎心减速", "血压复测 150/96", "建议转诊"))
    client = open_client("phone", f"supervisor-{short}")
    client.context.add_init_script(f"localStorage.setItem('teleconsult.lang', '{lang}')")
    page = client.page
    page.goto(f"{server.url}/supervisor.html#token={server.token('supervisor')}")
    row = page.locator(f'[data-testid="consult-item"][data-consult-id="{consult["id"]}"]')
    expect(row).to_be_visible()
    assert_fits_the_phone(page, "consult-table")
    client.screenshot(f"60-{short}-supervisor-list-phone")

    row.get_by_test_id("open-review").click()
    expect(page.get_by_test_id("review")).to_be_visible()
    expect(page.get_by_test_id("review-marker")).to_have_count(3)
    audit = page.get_by_test_id("audit-table")
    expect(audit.locator('[data-action="consult.media_path"]')).to_have_count(1)
    assert_fits_the_phone(page, "audit-table")

    timeline = page.evaluate(TIMELINE)
    assert timeline["slider"] >= 0.7 * 390, timeline
    assert overlapping(timeline["markers"]) == [], timeline
    # Each marker seeks there: the player's clock moves to the note.
    page.get_by_test_id("review-marker").nth(2).click()
    at = float(page.get_by_test_id("review-marker").nth(2).get_attribute("data-at-s") or "nan")
    expect(page.get_by_test_id("review-player")).to_have_attribute("data-position", f"{at:.2f}")

    moved = audit.locator('[data-action="consult.media_path"]').inner_text()
    if lang == "zh-CN":
        assert "直连 → 经服务器中转" in moved and "原因：录像" in moved, moved  # noqa: RUF001
        # No code of the server's shows through in the Chinese audit trail.
        codes = re.findall(r"p2p|relay|recording|consult\.|[a-z]+_[a-z]+", audit.inner_text())
        assert codes == [], codes
    else:
        assert "Direct → Via server relay" in moved and "because: recording" in moved, moved
    client.screenshot(f"61-{short}-supervisor-review-phone")
    client.assert_clean()
