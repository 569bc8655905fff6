"""The supervisor's statistics in Chromium: the vendored ECharts draws the charts, the table
shows the counts, the CSV downloads (with the bearer token) and other roles are turned away."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from playwright.sync_api import Page, expect

from tests.e2e.browser import Client
from tests.support.server import RunningServer

pytestmark = pytest.mark.e2e

# Chart containers with a live ECharts instance drawing on a canvas of nonzero size.
CHARTS_DRAWN = """() => ['outcomes', 'waits', 'media'].map((name) => {
  const box = document.querySelector(`[data-testid="stats-chart-${name}"]`);
  const chart = box && window.echarts?.getInstanceByDom(box);
  const canvas = box?.querySelector('canvas');
  return {
    name, instance: Boolean(chart),
    width: canvas?.width ?? 0, height: canvas?.height ?? 0,
    series: chart ? chart.getOption().series.length : 0,
  };
})"""


@pytest.fixture(scope="module")
def stats_server() -> Iterator[RunningServer]:
    """A server of its own, so the counts on the page are exactly the consults made here."""
    with RunningServer(env_overrides={"LOGIN_ATTEMPTS_PER_MINUTE": "10000"}) as server:
        # The demo's accepted consult stays open; one is declined, one cancelled.
        declined = server.book("doctor.a", "obstetrics", None, accept=False)["id"]
        cancelled = server.book("doctor.a", "obstetrics", "obstetrician")["id"]
        for consult_id, username, verb in (
            (declined, "obstetrician", "decline"),
            (cancelled, "doctor.a", "cancel"),
        ):
            reply = server.request(
                "POST",
                f"/api/consults/{consult_id}/{verb}",
                {"reason": "e2e"},
                token=server.token(username),
            )
            assert reply.status == 200, reply
        yield server


def open_statistics(client: Client, server: RunningServer, username: str) -> Page:
    page = client.page
    page.goto(f"{server.url}/statistics.html#token={server.token(username)}")
    return page


def this_month() -> str:
    return datetime.now(UTC).astimezone(ZoneInfo("Asia/Shanghai")).strftime("%Y-%m")


def test_the_supervisor_sees_charts_a_table_and_downloads_the_csv(
    stats_server: RunningServer, open_client: Callable[..., Client], tmp_path: Path
) -> None:
    client = open_client("desktop", "supervisor")
    page = open_statistics(client, stats_server, "supervisor")
    section = page.get_by_test_id("statistics-section")
    expect(section).to_have_attribute("data-charts-ready", "true")
    expect(page.get_by_role("heading", name="会诊统计")).to_be_visible()

    charts = page.evaluate(CHARTS_DRAWN)
    assert all(c["instance"] and c["width"] > 0 and c["height"] > 0 for c in charts), charts
    assert [c["series"] for c in charts] == [6, 3, 2]

    row = page.get_by_test_id("stats-row")
    expect(row).to_have_count(1)
    expect(row.locator('[data-field="month"]')).to_have_text(this_month())
    expect(row.locator('[data-field="institution"]')).to_contain_text("A县人民医院")
    expect(row.locator('[data-field="specialty"]')).to_have_text("产科")
    for name, count in (("requested", "3"), ("held", "0"), ("declined", "1"), ("cancelled", "1")):
        expect(row.locator(f'[data-field="{name}"]')).to_have_text(count)
    expect(row.locator('[data-field="open"]')).to_have_text("1")
    expect(page.get_by_test_id("stats-total").locator('[data-field="requested"]')).to_have_text("3")
    client.screenshot("32-statistics-supervisor")

    with page.expect_download() as download_info:
        page.get_by_test_id("stats-download").click()
    download = download_info.value
    assert download.suggested_filename.startswith("teleconsult-statistics-")
    saved = tmp_path / download.suggested_filename
    download.save_as(saved)
    raw = saved.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")
    table = list(csv.DictReader(io.StringIO(raw.decode("utf-8-sig"))))
    assert len(table) == 1
    assert (table[0]["requested"], table[0]["declined"], table[0]["cancelled"]) == ("3", "1", "1")
    assert table[0]["institution"].startswith("A县人民医院")
    client.assert_clean()


def test_filters_and_english_relabel_the_table_and_a_bad_period_is_explained(
    stats_server: RunningServer, open_client: Callable[..., Client]
) -> None:
    client = open_client("desktop", "admin")
    page = open_statistics(client, stats_server, "admin")
    section = page.get_by_test_id("statistics-section")
    expect(section).to_have_attribute("data-charts-ready", "true")
    page.get_by_test_id("lang-switch").select_option("en")
    expect(page.get_by_role("heading", name="Consult statistics")).to_be_visible()
    expect(page.get_by_role("columnheader", name="Requested")).to_be_visible()

    page.get_by_test_id("stats-specialty").select_option("paediatrics")
    page.get_by_test_id("stats-apply").click()
    expect(page.get_by_test_id("stats-row")).to_have_count(0)
    expect(page.get_by_test_id("stats-empty")).to_be_visible()

    page.get_by_test_id("stats-from").fill("2020-01")
    page.get_by_test_id("stats-to").fill("2022-01")  # 25 months: one more than allowed
    page.get_by_test_id("stats-apply").click()
    expect(page.get_by_test_id("stats-error")).to_contain_text("Invalid period")
    client.screenshot("33-statistics-bad-period-en")
    # The refused request is the expected answer here, not a script error.
    client.page_errors = [e for e in client.page_errors if "422" not in e]
    client.assert_clean()


def test_an_exam_room_doctor_is_told_statistics_are_not_for_them(
    stats_server: RunningServer, open_client: Callable[..., Client]
) -> None:
    client = open_client("desktop", "doctor")
    page = open_statistics(client, stats_server, "doctor.a")
    expect(page.get_by_test_id("statistics-forbidden")).to_be_visible()
    expect(page.get_by_test_id("stats-table")).to_have_count(0)
    client.assert_clean()


def test_the_trainings_table_and_its_csv_are_on_the_statistics_page(
    stats_server: RunningServer, open_client: Callable[..., Client], tmp_path: Path
) -> None:
    # The figures themselves are checked against heartbeats on a server with a manual clock
    # (tests/integration/test_training_statistics.py); here: the table and the download.
    client = open_client("phone", "supervisor-trainings")
    client.context.add_init_script("localStorage.setItem('teleconsult.lang', 'en')")
    page = open_statistics(client, stats_server, "supervisor")
    expect(page.get_by_test_id("statistics-section")).to_have_attribute("data-charts-ready", "true")
    expect(page.get_by_role("heading", name="Trainings")).to_be_visible()
    table = page.get_by_test_id("stats-trainings-table")
    expect(table.get_by_role("columnheader", name="Attendance hours")).to_be_visible()
    total = page.get_by_test_id("stats-trainings-total")
    expect(total.locator('[data-field="trainings"]')).to_have_text("0")
    client.screenshot("32-statistics-trainings-phone-en")
    with page.expect_download() as download_info:
        page.get_by_test_id("stats-trainings-download").click()
    download = download_info.value
    assert download.suggested_filename.startswith("teleconsult-trainings-")
    saved = tmp_path / download.suggested_filename
    download.save_as(saved)
    text = saved.read_bytes().decode("utf-8-sig")
    assert text.splitlines()[0] == "month,institution,trainings,trainees,attendance_hours"
    client.assert_clean()
