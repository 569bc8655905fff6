"""Login flood benchmark: does a burst of failed logins slow the rest of the server?

It starts one `teleconsult serve` (`tests/support/server.py`: demo data, a free loopback port, a
temporary DATA_DIR; the per-username and per-address login limits lifted so that every login
reaches the password check, the password-check settings at their defaults unless
`--server-env` says otherwise), then measures two phases of `--duration` seconds each, side by
side in one run:

1. idle   nothing else happens;
2. flood  `--concurrency` clients (default 50) each send failed logins back to back (half with
          unknown usernames, half a known username with a wrong password) for the whole phase.

In both phases, at a steady pace (`--interval`, default 20 ms between probes), it measures:

- healthz:        `GET /healthz` request until its answer (one kept-alive connection);
- signal ack:     a socket.io `signal` (an ICE candidate) from the exam-room doctor to the
                  specialist in the demo consult, emit until the server's ack;
- signal one-way: the same signal's emit until the specialist's client receives it;
- relay forwarding (unless `--no-relay`): a second consult, on the server's media relay, carries
                  one 720p VP8 video track from a real aiortc publisher to a real aiortc
                  subscriber (both in child processes; bench/relay_parts/served.py); per frame,
                  from the publisher handing its first RTP packet to SRTP until that packet
                  reaches the subscriber, i.e. two loopback hops and the server's forwarding, on
                  the event loop that also answers the logins.

The flood's logins are counted by answer (401 `bad_credentials`, 429 `rate_limited` when the
password checkers are busy, other) with their latency. Server CPU seconds per phase come from
psutil. The goal in issue 14: healthz, signal and relay forwarding latency during the flood
within 10 ms of idle.

`--server-tree PATH` runs the server from another checkout of the repository (e.g. `git
archive` of an older commit unpacked in /tmp) to compare before and after.

    .venv/bin/python bench/login.py                       # table
    .venv/bin/python bench/login.py --json                # one JSON object on stdout
    .venv/bin/python bench/login.py --table-from r.json   # table of a saved report

Progress goes to stderr. Nothing passes or fails on time. Clients and server share the machine.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import platform
import sys
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import aiohttp
import psutil
import socketio

if TYPE_CHECKING:
    from tests.support.server import RunningServer

REPO = Path(__file__).resolve().parents[1]


def _use_repo_packages() -> None:
    """Put the repository root first on sys.path (this folder's `signaling.py` would shadow
    the `signaling` package otherwise); project modules are imported inside functions."""
    here = str(Path(__file__).resolve().parent)
    sys.path[:] = [p for p in sys.path if str(Path(p or os.curdir).resolve()) != here]
    if str(REPO) not in sys.path:
        sys.path.insert(0, str(REPO))


_use_repo_packages()

SERVER_ENV = {
    # Every flood login must reach the password check: lift the failed-login limits (with them
    # the flood would mostly be answered 429 before any verify, which costs nothing).
    "LOGIN_ATTEMPTS_PER_MINUTE": "1000000",
    "LOGIN_ATTEMPTS_PER_ADDRESS_PER_MINUTE": "1000000",
    "SIGNALS_PER_SECOND": "1000000",
}


def candidate(seq: int) -> dict[str, Any]:
    """A host candidate whose foundation carries the probe's sequence number."""
    return {
        "candidate": f"candidate:{seq} 1 udp 2122260223 192.168.1.10 50000 typ host generation 0",
        "sdpMid": "0",
        "sdpMLineIndex": 0,
    }


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def percentile(sorted_values: Sequence[float], p: float) -> float:
    rank = max(1, math.ceil(p / 100 * len(sorted_values)))
    return sorted_values[rank - 1]


def summarize(values: Sequence[float]) -> dict[str, Any]:
    """n, p50, p99, max and mean of durations in seconds, in milliseconds."""
    if not values:
        return {"n": 0, "p50_ms": None, "p99_ms": None, "max_ms": None, "mean_ms": None}
    s = sorted(values)
    return {
        "n": len(s),
        "p50_ms": round(percentile(s, 50) * 1000, 2),
        "p99_ms": round(percentile(s, 99) * 1000, 2),
        "max_ms": round(s[-1] * 1000, 2),
        "mean_ms": round(sum(s) / len(s) * 1000, 2),
    }


class Probes:
    """The steady probes: healthz and a socket.io signal between the demo consult's pair."""

    def __init__(self, base: str, tokens: dict[str, str], consult_id: str) -> None:
        self.base = base
        self.tokens = tokens
        self.consult_id = consult_id
        self.http = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=1))
        self.a = socketio.AsyncClient(reconnection=False, handle_sigint=False)
        self.b = socketio.AsyncClient(reconnection=False, handle_sigint=False)
        self.b_peer = ""
        self.sent: dict[int, float] = {}
        self.one_way: list[float] = []
        self.b.on("signal", self._received)

    async def _received(self, data: dict[str, Any]) -> None:
        now = time.perf_counter()
        line = str((data.get("candidate") or {}).get("candidate", ""))
        foundation = line.removeprefix("candidate:").split(" ", 1)[0]
        started = self.sent.pop(int(foundation), None) if foundation.isdigit() else None
        if started is not None:
            self.one_way.append(now - started)

    async def start(self) -> None:
        for client, who in ((self.a, "doctor.a"), (self.b, "obstetrician")):
            await client.connect(
                self.base, auth={"token": self.tokens[who]}, transports=["websocket"]
            )
        ack = await self.a.call("join", {"consult_id": self.consult_id}, timeout=30)
        if not ack.get("ok", True) or "peer_id" not in ack:
            raise RuntimeError(f"join refused: {ack}")
        ack = await self.b.call("join", {"consult_id": self.consult_id}, timeout=30)
        if "peer_id" not in ack:
            raise RuntimeError(f"join refused: {ack}")
        self.b_peer = str(ack["peer_id"])

    async def run(self, seconds: float, interval: float) -> dict[str, Any]:
        healthz: list[float] = []
        acks: list[float] = []
        errors: Counter[str] = Counter()
        self.one_way = []
        end = time.perf_counter() + seconds
        seq = 0
        while time.perf_counter() < end:
            started = time.perf_counter()
            try:
                async with self.http.get(self.base + "/healthz") as response:
                    await response.read()
                    if response.status != 200:
                        errors[f"healthz {response.status}"] += 1
                healthz.append(time.perf_counter() - started)
            except aiohttp.ClientError as exc:
                errors[f"healthz {type(exc).__name__}"] += 1
            seq += 1
            started = time.perf_counter()
            self.sent[seq] = started
            ack = await self.a.call(
                "signal",
                {"consult_id": self.consult_id, "to": self.b_peer, "candidate": candidate(seq)},
                timeout=30,
            )
            acks.append(time.perf_counter() - started)
            if not (isinstance(ack, dict) and ack.get("ok")):
                errors[f"signal {ack}"[:80]] += 1
            await asyncio.sleep(max(0.0, interval - (time.perf_counter() - started)))
        await asyncio.sleep(0.2)  # the last signals' deliveries
        self.sent.clear()
        return {
            "healthz": summarize(healthz),
            "signal_ack": summarize(acks),
            "signal_one_way": summarize(self.one_way),
            "probe_errors": dict(errors),
        }

    async def close(self) -> None:
        for client in (self.a, self.b):
            with contextlib.suppress(Exception):
                await client.disconnect()
        await self.http.close()


async def flood(base: str, concurrency: int, stop: asyncio.Event) -> dict[str, Any]:
    """`concurrency` clients sending failed logins back to back until `stop`."""
    answers: Counter[str] = Counter()
    latencies: list[float] = []
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector) as http:

        async def attacker(n: int) -> None:
            attempt = 0
            while not stop.is_set():
                attempt += 1
                username = f"guess{n}-{attempt}" if attempt % 2 else "doctor.a"
                body = {"username": username, "password": f"wrong-{n}-{attempt}"}
                started = time.perf_counter()
                try:
                    async with http.post(base + "/api/auth/login", json=body) as response:
                        payload = await response.json(content_type=None)
                        code = payload.get("code") if isinstance(payload, dict) else None
                        answers[f"{response.status} {code}"] += 1
                    latencies.append(time.perf_counter() - started)
                except aiohttp.ClientError as exc:
                    answers[type(exc).__name__] += 1
                    await asyncio.sleep(0.01)

        started = time.perf_counter()
        await asyncio.gather(*(attacker(n) for n in range(concurrency)))
        wall = time.perf_counter() - started
    total = sum(answers.values())
    return {
        "answers": dict(answers),
        "logins": total,
        "logins_per_s": round(total / wall, 1) if wall else None,
        "latency": summarize(latencies),
    }


RELAY_PEOPLE = ("doctor.b", "obstetrician2")
"""The relayed consult's exam room and specialist (not the signal probe's pair)."""


async def start_relay(server: RunningServer) -> Any:
    """A consult of `RELAY_PEOPLE` on the relay, video flowing (bench/relay_parts/served.py)."""
    from bench.relay_parts.served import ServedRelay
    from bench.relay_parts.source import ClipSpec, encoded_clip

    clip = ClipSpec()
    log("encoding the 720p clip once (cached for later runs)")
    encoded_clip(clip)
    exam_room, specialist = RELAY_PEOPLE
    consult = server.book(username=exam_room, specialist=specialist)
    relay = ServedRelay(
        server.url, consult["id"], (server.token(exam_room), server.token(specialist)), clip
    )
    try:
        ready_s = await relay.start()
    except BaseException:
        await relay.close()
        raise
    log(f"relayed consult: video flowing after {ready_s:.1f} s")
    return relay


def traffic(before: dict[str, Any], after: dict[str, Any]) -> dict[str, int]:
    """RTP packets the publisher sent, the subscriber got, and lost, between two counters."""

    def lost(counters: dict[str, Any]) -> int:
        return int(counters["received"]["expected"] - counters["received"]["unique"])

    return {
        "packets_sent": after["sent"]["packets"] - before["sent"]["packets"],
        "packets_received": after["received"]["unique"] - before["received"]["unique"],
        "lost": lost(after) - lost(before),
    }


async def measure(server: RunningServer, args: argparse.Namespace) -> dict[str, Any]:
    tokens = {who: server.token(who) for who in ("doctor.a", "obstetrician")}
    process = psutil.Process(server.process.pid) if server.process else None
    relay = await start_relay(server) if args.relay else None
    probes = Probes(server.url, tokens, server.demo_consult_id)
    await probes.start()
    phases: dict[str, Any] = {}
    try:
        if relay is not None:
            await asyncio.sleep(args.warmup)  # the relay's legs settle (bandwidth, keyframes)
        for phase in ("idle", "flood"):
            log(f"{phase}: {args.duration:.0f} s")
            cpu_before = sum(process.cpu_times()[:2]) if process else 0.0
            stop = asyncio.Event()
            flooding = (
                asyncio.create_task(flood(server.url, args.concurrency, stop))
                if phase == "flood"
                else None
            )
            if flooding is not None:
                await asyncio.sleep(0.5)  # the flood under way before probing
            # The relayed video is measured over the probes' window (the flood's stragglers,
            # still waiting for a password check after it, are not part of it).
            relay_before = await relay.counters() if relay is not None else None
            window_start = time.time()
            result = await probes.run(args.duration, args.interval)
            window_end = time.time()
            relay_after = await relay.counters() if relay is not None else None
            stop.set()
            if flooding is not None:
                result["logins"] = await flooding
            cpu_after = sum(process.cpu_times()[:2]) if process else 0.0
            result["server_cpu_s"] = round(cpu_after - cpu_before, 2)
            if relay is not None and relay_before is not None and relay_after is not None:
                forwarding = await relay.window(window_start, window_end)
                forwarding.update(traffic(relay_before, relay_after))
                result["relay_forwarding"] = forwarding
            phases[phase] = result
    finally:
        await probes.close()
        if relay is not None:
            if relay.problems:
                phases["relay_problems"] = relay.problems
            await relay.close()
    return phases


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--concurrency", type=int, default=50, help="flooding clients (50)")
    parser.add_argument("--duration", type=float, default=8.0, help="seconds per phase (8)")
    parser.add_argument("--interval", type=float, default=0.02, help="probe pace, s (0.02)")
    parser.add_argument(
        "--server-env",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="extra server setting, e.g. PASSWORD_CHECKS_AT_ONCE=1 (repeatable)",
    )
    parser.add_argument(
        "--server-tree",
        type=Path,
        help="run the server from this checkout instead (PYTHONPATH), to compare versions",
    )
    parser.add_argument(
        "--no-relay",
        dest="relay",
        action="store_false",
        help="leave out the relayed consult and its forwarding latency",
    )
    parser.add_argument(
        "--warmup", type=float, default=3.0, help="seconds the relayed video runs before (3)"
    )
    parser.add_argument("--json", action="store_true", help="one JSON object on stdout")
    parser.add_argument("--table-from", type=Path, help="print the table of a saved report")
    return parser.parse_args(argv)


def _ms(value: Any) -> str:
    return "—" if value is None else f"{value:.1f}"


def table(report: dict[str, Any]) -> str:
    idle, busy = report["phases"]["idle"], report["phases"]["flood"]
    logins = busy.get("logins", {})
    rows: list[tuple[str, str, str, str]] = []
    for probe, label in (
        ("healthz", "GET /healthz"),
        ("signal_ack", "socket.io signal, emit→ack"),
        ("signal_one_way", "socket.io signal, emit→peer receives"),
    ):
        for metric in ("p50_ms", "p99_ms", "max_ms"):
            a, b = idle[probe][metric], busy[probe][metric]
            delta = None if a is None or b is None else b - a
            rows.append((f"{label} {metric[:-3]} (ms)", _ms(a), _ms(b), _ms(delta)))
        rows.append((f"{label} samples", str(idle[probe]["n"]), str(busy[probe]["n"]), ""))
    if "relay_forwarding" in idle and "relay_forwarding" in busy:
        a_relay, b_relay = idle["relay_forwarding"], busy["relay_forwarding"]
        label = "relay forwarding, publisher→subscriber"
        for metric in ("p50_ms", "p99_ms", "max_ms"):
            a, b = a_relay.get(metric), b_relay.get(metric)
            delta = None if a is None or b is None else b - a
            rows.append((f"{label} {metric[:-3]} (ms)", _ms(a), _ms(b), _ms(delta)))
        rows.append((f"{label} frames", str(a_relay["n"]), str(b_relay["n"]), ""))
        rows.append(
            (f"{label} packets lost", str(a_relay.get("lost")), str(b_relay.get("lost")), "")
        )
    rows.append(("server CPU s", str(idle["server_cpu_s"]), str(busy["server_cpu_s"]), ""))
    rows.append(
        ("probe errors", str(idle["probe_errors"] or 0), str(busy["probe_errors"] or 0), "")
    )
    answers = ", ".join(f"{k}: {v}" for k, v in sorted(logins.get("answers", {}).items()))
    lat = logins.get("latency", {})
    cfg = report["config"]
    width = max(len(r[0]) for r in rows)
    lines = [
        f"login flood: {cfg['concurrency']} concurrent failed logins, {cfg['duration_s']:.0f} s "
        f"per phase, probes every {cfg['interval_s'] * 1000:.0f} ms; server {cfg['server']}",
        f"load average before: {report['load_average_before'][0]:.2f}",
        "",
        f"{'':<{width}}  {'idle':>9}  {'flood':>9}  {'flood-idle':>10}",
    ]
    lines += [f"{r[0]:<{width}}  {r[1]:>9}  {r[2]:>9}  {r[3]:>10}" for r in rows]
    lines += [
        "",
        f"flood logins: {logins.get('logins')} ({logins.get('logins_per_s')}/s); {answers}",
        f"flood login latency p50/p99/max (ms): {_ms(lat.get('p50_ms'))} / "
        f"{_ms(lat.get('p99_ms'))} / {_ms(lat.get('max_ms'))}",
    ]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.table_from is not None:
        print(table(json.loads(args.table_from.read_text())))
        return 0
    import tests.support.server as support
    from tests.support.server import RunningServer

    env = dict(SERVER_ENV)
    for item in args.server_env:
        key, _, value = item.partition("=")
        env[key] = value
    if args.server_tree is not None:
        # `python -m teleconsult` puts its working directory first on sys.path: run it there.
        support.REPO = args.server_tree.resolve()
        env["PYTHONPATH"] = str(support.REPO)
        env["PYTHONDONTWRITEBYTECODE"] = "1"
    load_before = os.getloadavg()
    log("starting the server")
    with RunningServer(env_overrides=env) as server:
        phases = asyncio.run(measure(server, args))
    report = {
        "benchmark": "login",
        "machine": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "python": platform.python_version(),
        },
        "config": {
            "concurrency": args.concurrency,
            "duration_s": args.duration,
            "interval_s": args.interval,
            "relay": args.relay,
            "server_env": env,
            "server": str(args.server_tree) if args.server_tree else "this checkout",
        },
        "load_average_before": list(load_before),
        "phases": phases,
    }
    print(json.dumps(report, ensure_ascii=False) if args.json else table(report))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
