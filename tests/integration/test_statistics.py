"""Consult statistics through the real server: consults driven through the real API and
socket.io lifecycle (held peer-to-peer, held on the relay, declined, cancelled, open) in two
counties and two specialties, read back as JSON and as CSV, by supervisors of different subtrees.

Nothing in the server expires consults yet, so `expired` is proven at the store level
(tests/integration/test_sql_statistics.py) and in the unit tests.
"""

from __future__ import annotations

import asyncio
import csv
import io
import sqlite3
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import closing
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from tests.support.peer import eventually
from tests.support.relay_peer import RelayParticipant
from tests.support.server import RunningServer

SHANGHAI = ZoneInfo("Asia/Shanghai")
FORMULA_NAME = '=HYPERLINK("http://127.0.0.1/x","点击")'
"""A township whose name a spreadsheet would run as a formula."""


def this_month() -> str:
    return datetime.now(UTC).astimezone(SHANGHAI).strftime("%Y-%m")


@dataclass
class Scenario:
    server: RunningServer
    first: str
    last: str
    county_a: int
    county_b: int
    township: int

    def get(self, username: str, query: str, csv_: bool = False) -> Any:
        path = "/api/statistics.csv" if csv_ else "/api/statistics"
        return self.server.request("GET", f"{path}?{query}", token=self.server.token(username))

    @property
    def period(self) -> str:
        return f"from={self.first}&to={self.last}"


async def held(
    server: RunningServer, doctor: str, specialist: str, specialty: str, relay: bool
) -> None:
    consult_id = server.book(doctor, specialty, specialist)["id"]
    people = [RelayParticipant(doctor), RelayParticipant(specialist)]
    try:
        for person in people:
            await person.connect(server.url, server.token(person.name))
            await person.join(consult_id)
        await eventually(
            lambda: any(
                e["consult"]["status"] == "live" for e in people[0].events_named("consult-state")
            )
        )
        if relay:
            reply = await people[0].report_p2p_failed(people[1].peer_id)
            assert reply == {"ok": True, "media_path": "relay", "ignored": None}, reply
    finally:
        for person in people:
            await person.close()
    reply = server.request(
        "POST",
        f"/api/consults/{consult_id}/end",
        {"conclusion": "建议复查"},
        token=server.token(specialist),
    )
    assert reply.status == 200 and reply.body["status"] == "ended", reply


def finish(server: RunningServer, consult_id: str, username: str, verb: str) -> None:
    reply = server.request(
        "POST",
        f"/api/consults/{consult_id}/{verb}",
        {"reason": "测试"},
        token=server.token(username),
    )
    assert reply.status == 200, reply


def add_user(server: RunningServer, username: str, role: str, institution_id: int) -> None:
    made = server.cli(
        "user", "add", "--username", username, "--role", role,
        "--institution-id", str(institution_id), "--password-stdin",
        stdin=f"demo-{username}\n",
    )  # fmt: skip
    assert made.returncode == 0, made.stderr


def institution_ids(server: RunningServer) -> dict[str, int]:
    listed = server.cli("institution", "list")
    assert listed.returncode == 0, listed.stderr
    ids = {}
    for line in listed.stdout.splitlines():
        number, _level, _parent, name = line.split(maxsplit=3)
        ids[name] = int(number)
    return ids


@pytest.fixture(scope="module")
def scenario() -> Iterator[Scenario]:
    with RunningServer(
        env_overrides={"JOINS_PER_MINUTE": "10000", "LOGIN_ATTEMPTS_PER_MINUTE": "10000"}
    ) as server:
        first = this_month()
        ids = institution_ids(server)
        county_a = next(v for k, v in ids.items() if k.startswith("A县人民医院"))
        county_b = next(v for k, v in ids.items() if k.startswith("B县人民医院"))
        added = server.cli(
            "institution", "add", "--name", FORMULA_NAME, "--level", "township",
            "--parent-id", str(county_b),
        )  # fmt: skip
        assert added.returncode == 0, added.stderr
        township = institution_ids(server)[FORMULA_NAME]
        add_user(server, "supervisor.b", "supervisor", county_b)
        add_user(server, "doctor.t", "exam_room_doctor", township)

        async def drive() -> None:
            # County A, obstetrics (plus the demo's accepted consult, still open):
            await held(server, "doctor.a", "obstetrician", "obstetrics", relay=False)
            await held(server, "doctor.a", "obstetrician", "obstetrics", relay=True)
            declined = server.book("doctor.a", "obstetrics", None, accept=False)["id"]
            finish(server, declined, "obstetrician", "decline")
            cancelled = server.book("doctor.a", "obstetrics", "obstetrician", accept=True)["id"]
            finish(server, cancelled, "doctor.a", "cancel")
            # County B, paediatrics:
            await held(server, "doctor.b", "paediatrician", "paediatrics", relay=False)
            declined_b = server.book("doctor.b", "paediatrics", None, accept=False)["id"]
            finish(server, declined_b, "paediatrician", "decline")
            # The township under County B, obstetrics, still requested:
            server.book("doctor.t", "obstetrics", None, accept=False)

        asyncio.run(drive())
        yield Scenario(server, first, this_month(), county_a, county_b, township)


def rows_by(body: dict[str, Any]) -> dict[tuple[int, str], dict[str, Any]]:
    return {(r["institution_id"], r["specialty"]): r for r in body["rows"]}


def test_the_provincial_supervisor_sees_every_figure_of_the_driven_consults(
    scenario: Scenario,
) -> None:
    reply = scenario.get("supervisor", scenario.period)
    assert reply.status == 200, reply
    body = reply.body
    assert (body["from_month"], body["timezone"]) == (scenario.first, "Asia/Shanghai")
    rows = rows_by(body)
    assert set(rows) == {
        (scenario.county_a, "obstetrics"),
        (scenario.county_b, "paediatrics"),
        (scenario.township, "obstetrics"),
    }
    a = rows[(scenario.county_a, "obstetrics")]
    assert a["institution_name"].startswith("A县人民医院")
    counts = {
        k: a[k]
        for k in ("requested", "held", "declined", "expired", "cancelled", "ended_unheld", "open")
    }
    # 2 held + declined + cancelled + the demo's accepted consult
    assert counts == {
        "requested": 5, "held": 2, "declined": 1, "expired": 0,
        "cancelled": 1, "ended_unheld": 0, "open": 1,
    }  # fmt: skip
    assert (a["relayed"], a["peer_to_peer"], a["relay_share"]) == (1, 1, 0.5)
    # Accepted: the demo's, both held ones, the cancelled one.
    assert a["time_to_accept"]["count"] == 4
    assert a["booking_to_start"]["count"] == 2
    assert a["duration"]["count"] == 2 and a["duration"]["median_s"] > 0
    b = rows[(scenario.county_b, "paediatrics")]
    assert (b["requested"], b["held"], b["declined"], b["relay_share"]) == (2, 1, 1, 0.0)
    overall = body["overall"]
    assert (overall["requested"], overall["held"], overall["relayed"]) == (8, 3, 1)
    assert sum(m["requested"] for m in body["months"]) == 8
    assert {i["id"] for i in body["institutions"]} >= {scenario.county_a, scenario.county_b}


def test_a_county_supervisor_sees_only_their_subtree(scenario: Scenario) -> None:
    body = scenario.get("supervisor.b", scenario.period).body
    assert set(rows_by(body)) == {
        (scenario.county_b, "paediatrics"),
        (scenario.township, "obstetrics"),
    }
    assert body["overall"]["requested"] == 3
    assert {i["id"] for i in body["institutions"]} == {scenario.county_b, scenario.township}


def test_filters_narrow_to_an_institution_subtree_and_a_specialty(scenario: Scenario) -> None:
    by_institution = scenario.get("admin", f"{scenario.period}&institution={scenario.county_b}")
    assert by_institution.body["overall"]["requested"] == 3
    by_both = scenario.get(
        "supervisor.b", f"{scenario.period}&institution={scenario.county_b}&specialty=obstetrics"
    )
    assert set(rows_by(by_both.body)) == {(scenario.township, "obstetrics")}
    assert by_both.body["specialty"] == "obstetrics"


def fetch_csv(scenario: Scenario, username: str, query: str) -> tuple[dict[str, str], bytes]:
    request = urllib.request.Request(
        f"{scenario.server.url}/api/statistics.csv?{query}",
        headers={"Authorization": f"Bearer {scenario.server.token(username)}"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return dict(response.headers), response.read()


def test_the_csv_has_a_bom_a_header_names_and_defused_formulas(scenario: Scenario) -> None:
    headers, raw = fetch_csv(scenario, "supervisor", scenario.period)
    assert headers["Content-Type"] == "text/csv; charset=utf-8"
    assert headers["Content-Disposition"] == (
        f'attachment; filename="teleconsult-statistics-{scenario.first}_{scenario.last}.csv"'
    )
    assert raw.startswith(b"\xef\xbb\xbf")
    table = list(csv.DictReader(io.StringIO(raw.decode("utf-8-sig"))))
    assert list(table[0])[:4] == ["month", "institution", "specialty", "requested"]
    assert len(table) == 3
    by_name = {r["institution"]: r for r in table}
    county_a = next(r for name, r in by_name.items() if name.startswith("A县人民医院"))
    assert (county_a["requested"], county_a["held"], county_a["relay_share_percent"]) == (
        "5",
        "2",
        "50.0",
    )
    assert "'" + FORMULA_NAME in by_name, list(by_name)
    assert not any(cell.startswith(("=", "+", "-", "@")) for r in table for cell in r.values())


def test_a_csv_export_is_audited(scenario: Scenario) -> None:
    fetch_csv(scenario, "supervisor.b", f"{scenario.period}&specialty=paediatrics")
    with closing(sqlite3.connect(scenario.server.data_dir / "teleconsult.db")) as db:
        found = db.execute(
            "SELECT actor_id, consult_id, detail FROM audit_log"
            " WHERE action = 'statistics.exported' ORDER BY id DESC LIMIT 1"
        ).fetchone()
    assert found is not None
    actor_id, consult_id, detail = found
    assert consult_id is None
    assert '"specialty": "paediatrics"' in detail and '"rows": 1' in detail
    me = scenario.server.request("GET", "/api/me", token=scenario.server.token("supervisor.b"))
    assert actor_id == me.body["id"]


@pytest.mark.parametrize("username", ["doctor.a", "obstetrician"])
@pytest.mark.parametrize("as_csv", [False, True], ids=["json", "csv"])
def test_exam_room_doctors_and_specialists_are_refused(
    scenario: Scenario, username: str, as_csv: bool
) -> None:
    reply = scenario.get(username, scenario.period, csv_=as_csv)
    assert (reply.status, reply.body["code"]) == (403, "forbidden")


@pytest.mark.parametrize(
    ("query", "status", "code", "says"),
    [
        ("from=2026-1&to=2026-02", 422, "invalid_period", "from must be a month written YYYY-MM"),
        ("from=2026-01&to=2026-13", 422, "invalid_period", "to must be a month"),
        ("from=9999-12&to=9999-12", 422, "invalid_period", "from must be a month"),
        (
            "from=2026-01&to=2026-02&institution=9223372036854775808",
            422,
            "invalid_payload",
            "institution",
        ),
        ("from=2026-03&to=2026-02", 422, "invalid_period", "is after to"),
        ("from=2024-01&to=2026-01", 422, "invalid_period", "spans 25 months; at most 24"),
        ("from=2026-01", 422, "invalid_payload", "to: Field required"),
        ("from=2026-01&to=2026-02&to=2026-03", 422, "invalid_payload", "'to' given twice"),
        ("from=2026-01&to=2026-02&page=2", 422, "invalid_payload", "page: Extra inputs"),
        ("from=2026-01&to=2026-02&specialty=dentistry", 422, "invalid_payload", "specialty"),
        ("from=2026-01&to=2026-02&institution=abc", 422, "invalid_payload", "institution"),
        ("from=2026-01&to=2026-02&institution=0", 422, "invalid_payload", "institution"),
        ("from=2026-01&to=2026-02&institution=9999", 403, "forbidden", "institution 9999"),
    ],
)
@pytest.mark.parametrize("as_csv", [False, True], ids=["json", "csv"])
def test_bad_parameters_are_refused_with_a_clear_error(
    scenario: Scenario, query: str, status: int, code: str, says: str, as_csv: bool
) -> None:
    reply = scenario.get("supervisor", query, csv_=as_csv)
    assert (reply.status, reply.body["code"]) == (status, code), reply
    assert says in reply.body["message"]


def test_an_institution_outside_the_subtree_is_refused(scenario: Scenario) -> None:
    reply = scenario.get("supervisor.b", f"{scenario.period}&institution={scenario.county_a}")
    assert (reply.status, reply.body["code"]) == (403, "forbidden")
    assert "not within your institution's subtree" in reply.body["message"]


def test_a_longer_period_is_allowed_when_max_statistics_months_says_so() -> None:
    with RunningServer(env_overrides={"MAX_STATISTICS_MONTHS": "36"}) as server:
        token = server.token("supervisor")
        ok = server.request("GET", "/api/statistics?from=2024-01&to=2026-12", token=token)
        assert ok.status == 200 and len(ok.body["months"]) == 36
        refused = server.request("GET", "/api/statistics?from=2024-01&to=2027-01", token=token)
        assert refused.body["code"] == "invalid_period"


@pytest.mark.parametrize("path", ["/api/statistics", "/api/statistics.csv"])
def test_without_a_token_nothing_is_counted(scenario: Scenario, path: str) -> None:
    reply = scenario.server.request("GET", f"{path}?{scenario.period}")
    assert (reply.status, reply.body["code"]) == (401, "token_missing")


def test_the_openapi_document_lists_both_statistics_endpoints(scenario: Scenario) -> None:
    doc = scenario.server.request("GET", "/api/openapi.json").body
    assert doc["paths"]["/api/statistics"]["get"]["responses"]["200"]["content"][
        "application/json"
    ]["schema"]["$ref"].endswith("StatisticsOut")
    assert (
        "invalid_period"
        in doc["paths"]["/api/statistics.csv"]["get"]["responses"]["422"]["description"]
    )
