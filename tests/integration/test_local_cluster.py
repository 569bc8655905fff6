"""`make cluster` (scripts/cluster.py): the whole cluster on loopback from one command.

The script runs as a subprocess, as a developer runs it: haproxy, two signaling processes, two
media nodes, redis-server, PostgreSQL, SeaweedFS and coturn. Two real aiortc participants book
and join a consult through the load balancer; SIGKILL of the signaling process owning the room
(a pid from CLUSTER_PIDS) brings them back into the consult; SIGINT stops every process."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import redis

from tests.support.peer import eventually
from tests.support.reconnecting_page import Page, back_in_the_consult, meet_with_video
from tests.support.server import REPO, booking, in_hours
from tests.support.waiting import until

pytestmark = pytest.mark.slow

ROLES = {"signaling", "media", "redis", "postgres", "s3", "turn", "lb"}


@dataclass
class ClusterScript:
    process: subprocess.Popen[str]
    lines: list[str] = field(default_factory=list)

    def read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line.rstrip("\n"))

    def value(self, key: str) -> str | None:
        for line in self.lines:
            if line.startswith(key + "="):
                return line.split("=", 1)[1]
        return None

    def output(self) -> str:
        return "\n".join(self.lines)


def parts(pids_file: Path) -> list[tuple[str, str, int]]:
    rows = [line.split() for line in pids_file.read_text().splitlines()]
    return [(role, name, int(pid)) for role, name, pid in rows]


def alive(pid: int) -> bool:
    """The process exists and is not a zombie waiting to be reaped."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def request(url: str, method: str = "GET", body: Any = None, token: str = "") -> tuple[int, Any]:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method)
    req.add_header("Content-Type", "application/json")
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(req, timeout=30) as reply:
            return reply.status, json.loads(reply.read() or b"null")
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read() or b"null")


def token_of(link: str) -> str:
    return parse_qs(urlsplit(link).fragment)["token"][0]


@pytest.fixture
def cluster_script() -> Iterator[ClusterScript]:
    """The script with a free port for the load balancer, its folder in the system's temp
    directory (as `make cluster` runs it; PostgreSQL's `postgres` user must reach it)."""
    process = subprocess.Popen(
        [sys.executable, "scripts/cluster.py", "--port", "0"],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    script = ClusterScript(process)
    reader = threading.Thread(target=script.read, daemon=True)
    reader.start()
    try:
        until(
            lambda: script.value("CLUSTER_PIDS") is not None or process.poll() is not None,
            within=300,
            what="the cluster's CLUSTER_PIDS line",
        )
        assert script.value("CLUSTER_PIDS"), script.output()
        yield script
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
            process.wait(timeout=120)
        reader.join(timeout=10)


async def test_make_cluster_serves_a_consult_through_the_lb_survives_a_signaling_kill_and_stops(
    cluster_script: ClusterScript,
) -> None:
    url = cluster_script.value("CLUSTER_URL")
    exam_link = cluster_script.value("EXAM_ROOM_URL")
    specialist_link = cluster_script.value("SPECIALIST_URL")
    pids_file = Path(cluster_script.value("CLUSTER_PIDS") or "")
    assert url and exam_link and specialist_link, cluster_script.output()
    assert exam_link.startswith(url + "/exam-room.html#consult=")
    assert specialist_link.startswith(url + "/specialist.html#consult=")
    running = parts(pids_file)
    assert {role for role, _, _ in running} == ROLES
    assert sum(role == "signaling" for role, _, _ in running) == 2
    assert sum(role == "media" for role, _, _ in running) == 2
    assert all(alive(pid) for _, _, pid in running)

    status, health = request(url + "/healthz")
    assert status == 200, health

    # Book and accept a consult through the load balancer, with the demo links' tokens.
    doctor, specialist_token = token_of(exam_link), token_of(specialist_link)
    status, consult = request(
        url + "/api/consults", "POST", booking("obstetrics", "cluster", in_hours(0)), doctor
    )
    assert status == 201, consult
    status, consult = request(
        f"{url}/api/consults/{consult['id']}/accept", "POST", {}, specialist_token
    )
    assert status == 200, consult

    exam_room = Page("exam room", url, doctor, consult["id"])
    specialist = Page("specialist", url, specialist_token, consult["id"])
    try:
        ack = await meet_with_video(exam_room, specialist, within=60)
        assert ack["consult"]["status"] == "live"

        # SIGKILL the signaling process that owns the consult's room (its node id is in
        # Redis and in its log, beside CLUSTER_PIDS).
        redis_url = re.search(r"^redis (redis://\S+),", cluster_script.output(), re.M)
        assert redis_url, cluster_script.output()
        client = redis.Redis.from_url(redis_url.group(1), decode_responses=True)
        try:
            owner_node = client.get(f"teleconsult:room:{consult['id']}")
        finally:
            client.close()
        logs = pids_file.parent / "logs"
        owner = [
            (name, pid)
            for role, name, pid in running
            if role == "signaling"
            and f"signaling node {owner_node}" in (logs / f"{name}.log").read_text()
        ]
        assert len(owner) == 1, (owner_node, running)
        killed_at = time.monotonic()
        os.kill(owner[0][1], signal.SIGKILL)

        await eventually(
            lambda: back_in_the_consult(exam_room, specialist),
            within=60,
            interval=0.05,
        )
        back_after = time.monotonic() - killed_at
        print(f"\nmake cluster: back in the consult {back_after:.2f} s after the SIGKILL")
        status, after = request(f"{url}/api/consults/{consult['id']}", token=doctor)
        assert status == 200 and after["status"] == "live", after
    finally:
        await exam_room.close()
        await specialist.close()

    # Ctrl-C stops every process of the cluster.
    interrupted_at = time.monotonic()
    cluster_script.process.send_signal(signal.SIGINT)
    assert cluster_script.process.wait(timeout=120) == 0, cluster_script.output()
    print(f"make cluster: stopped {time.monotonic() - interrupted_at:.2f} s after SIGINT")
    print("\n".join(line for line in cluster_script.lines if line.startswith("  stopped ")))
    until(
        lambda: not any(alive(pid) for _, _, pid in running),
        within=30,
        what="every pid in CLUSTER_PIDS gone",
    )
    assert not pids_file.parent.exists()
