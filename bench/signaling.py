"""Signalling benchmark: N concurrent consults through one `teleconsult serve` process, and
through a bare python-socketio relay (`bench/bare_relay.py`, the anchor) with the same clients.

For each `--pairs N` and each of `--servers` (teleconsult, bare) it starts a fresh server
(`tests/support/server.py`: `teleconsult demo`, then `teleconsult serve` on a free loopback port
with a temporary DATA_DIR, which books and accepts N consults over REST; or the bare relay),
then drives 2N socket.io clients (python-socketio `AsyncClient`, websocket transport only) from
`--workers` worker processes, one event loop each. Every consult is a pair: an exam-room doctor
(A) and a specialist (B), both clients in the same worker so that one clock times them. The
parent runs the phases in lock-step across the workers and measures the server between them:

1. connect     every client connects with `auth={"token": ...}`; per connection: from
               `connect()` until socket.io's namespace CONNECT is acknowledged (TCP, websocket
               upgrade, engine.io OPEN, JWT check and user lookup on the server).
2. join-first  every A emits `join`; per consult: the ack's latency.
3. join-second every B emits `join` (A is already in the room). Per consult:
               - peer-joined: from B's `join` emit until A has received `peer-joined` for B;
               - join ack:    from B's `join` emit until B has its ack (whose `peers` names A);
               - peer ready:  the later of the two, i.e. until both sides know each other and
                 either could send an offer. It includes the consult's move to in_progress,
                 which the server writes to the database before acknowledging.
4. signal      `--rounds` negotiations per consult: A emits an offer (a Chrome-like SDP of
               ~5.1 KB with audio and video that passes signaling/sdp.py's `check_sdp`), then
               trickles `--candidates` ICE candidates and `end_of_candidates`; B, on the offer,
               emits an answer of similar size and its own candidates. Per negotiation:
               - offer→answer round trip: from A's offer emit until A receives B's answer;
               - candidate one-way: from a candidate's emit until the other side receives it.
               Every emit waits for the server's ack; a refused ack is counted as an error.
5. flood       an open loop of `--rate` signals a second for `--flood-seconds`, round-robin
               over every client, each a ~5.1 KB offer carrying its number: delivery (emit until
               the peer has it), ack, and the load generator's own lag.
6. disconnect  every client disconnects (only its wall time is reported).

The bare relay has no database: its consults need no booking, and its join and signal do only
what relaying needs. Every figure is reported for both, and teleconsult's beside the bare
relay's with their ratio (`comparison` in the JSON). Server memory per connection is (RSS with
every consult joined - RSS before the first connection) / connections, from psutil on the server
process; server CPU seconds per phase are read from /proc/<pid>/stat. `--in-flight K` bounds how
many consults are mid-operation at once (spread over the workers), so latencies are those of a
server with about K concurrent operations, not of one giant burst; `--in-flight 0` sends
everything at once.

Identities (`--identities`): `distinct` (default) gives every consult its own exam-room doctor
and specialist, with `--pairs-per-county` consults per county institution, as a province-wide
deployment would. `shared` puts every consult on the demo users doctor.a and obstetrician; the
server fans each consult's state changes out to every connection of those users and of County
A, so the join phase then costs O(N²) messages: that measures the fan-out, not signalling.

Clients and server share one machine (and its cores), so the figures are a lower bound on what
the server alone could do. Nothing passes or fails on time. Everything is bounded by `--timeout`;
a phase that runs out of time is cut short and reported with what it measured. All traffic
stays on 127.0.0.1.

    .venv/bin/python bench/signaling.py                           # 200 pairs, table
    .venv/bin/python bench/signaling.py --full --json             # 2000 clients x 1000/s x 30 s
    .venv/bin/python bench/signaling.py --table-from report.json  # table of a saved report

Progress goes to stderr; see bench/README.md for the options and how to read the figures.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import math
import multiprocessing as mp
import os
import platform
import resource
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import traceback
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from multiprocessing.connection import wait as wait_for_any
from multiprocessing.process import BaseProcess
from pathlib import Path
from typing import TYPE_CHECKING, Any

import aiohttp
import psutil
import socketio

if TYPE_CHECKING:
    from tests.support.server import RunningServer

REPO = Path(__file__).resolve().parents[1]


def _use_repo_packages() -> None:
    """Put the repository root first on sys.path.

    Run as `python bench/signaling.py`, this file's folder leads sys.path and the file's name
    would shadow the `signaling` package; project modules are imported inside functions, after
    this has run.
    """
    here = str(Path(__file__).resolve().parent)
    sys.path[:] = [p for p in sys.path if str(Path(p or os.curdir).resolve()) != here]
    if str(REPO) not in sys.path:
        sys.path.insert(0, str(REPO))


_use_repo_packages()

PHASES = ("connect", "join-first", "join-second", "signal", "flood", "disconnect")
SERVERS = ("teleconsult", "bare", "cluster", "baseline", "cluster-baseline")
"""What `--servers` may name: teleconsult (one process), the bare python-socketio relay (the
anchor), and `cluster`: two teleconsult processes through Redis (a redis-server of its own,
`REDIS_URL`, one data directory), every consult's exam room on the first and its specialist on
the second, so that every join, signal and ack of a B crosses the processes; `baseline`: one
process of the server in `--baseline-tree` (another version, e.g. `git archive main`), for a
before / after in one run; `cluster-baseline`: the `cluster` shape with both processes run from
`--baseline-tree`."""
DEFAULT_SERVERS = ("teleconsult", "bare")
SERVER_ENV = {
    # The benchmark joins and signals far more often than a person would; lift the
    # per-connection and per-process join limits, the per-connection signal and the login
    # rate limits (it measures what the process can take), keep the participant limit at its
    # default of 8.
    "JOINS_PER_MINUTE": "1000000",
    "JOINS_PER_SECOND": "1000000",
    "SIGNALS_PER_SECOND": "1000000",
    "LOGIN_ATTEMPTS_PER_MINUTE": "1000000",
    "MAX_PARTICIPANTS_PER_CONSULT": "8",
}
MACHINE_NOTE = (
    "clients and server share this machine's CPUs; figures include client-side overhead "
    "and are a lower bound on what the server alone could do"
)


# ---- realistic signalling payloads ---------------------------------------------------------

_AUDIO_CODECS: list[tuple[int, str, str | None]] = [
    (111, "opus/48000/2", "minptime=10;useinbandfec=1"),
    (63, "red/48000/2", "111/111"),
    (9, "G722/8000", None),
    (0, "PCMU/8000", None),
    (8, "PCMA/8000", None),
    (13, "CN/8000", None),
    (110, "telephone-event/48000", None),
    (126, "telephone-event/8000", None),
]
_H264 = "level-asymmetry-allowed=1;packetization-mode={};profile-level-id={}"
_VIDEO_CODECS: list[tuple[int, str, str | None, int | None]] = [
    (96, "VP8/90000", None, 97),
    (98, "VP9/90000", "profile-id=0", 99),
    (100, "VP9/90000", "profile-id=2", 101),
    (102, "H264/90000", _H264.format(1, "42001f"), 103),
    (104, "H264/90000", _H264.format(0, "42001f"), 105),
    (106, "H264/90000", _H264.format(1, "42e01f"), 107),
    (108, "H264/90000", _H264.format(0, "42e01f"), 109),
    (127, "H264/90000", _H264.format(1, "4d001f"), 125),
    (39, "H264/90000", _H264.format(1, "64001f"), 40),
    (45, "AV1/90000", "level-idx=5;profile=0;tier=0", 46),
    (112, "red/90000", None, 113),
    (114, "ulpfec/90000", None, None),
]
_VIDEO_FEEDBACK = ("goog-remb", "transport-cc", "ccm fir", "nack", "nack pli")


def _hex(seed: int, n: int) -> str:
    """n pseudo-random hex digits, deterministic in `seed`."""
    out: list[str] = []
    x = seed * 2654435761 + 1
    while len(out) < n:
        x = (x * 6364136223846793005 + 1442695040888963407) % 2**64
        out.append(f"{x >> 32:08x}")
    return "".join(out)[:n]


def ice_ufrag(pair: int, side: str) -> str:
    return _hex(pair * 2 + (side == "b"), 4)


def chrome_sdp(kind: str, pair: int, side: str, version: int) -> str:
    """A session description shaped like Chrome's for one audio and one video track (~5.1 KB)."""
    seed = pair * 2 + (side == "b")
    stream = _hex(seed + 7, 8) + "-" + _hex(seed + 8, 4) + "-" + _hex(seed + 9, 12)
    fingerprint = ":".join(_hex(seed + 11, 64)[i : i + 2].upper() for i in range(0, 64, 2))
    cname = _hex(seed + 13, 16)
    setup = "actpass" if kind == "offer" else "active"
    lines = [
        "v=0",
        f"o=- {int(_hex(seed, 15), 16)} {version + 2} IN IP4 127.0.0.1",
        "s=-",
        "t=0 0",
        "a=group:BUNDLE 0 1",
        "a=extmap-allow-mixed",
        f"a=msid-semantic: WMS {stream}",
    ]
    common = [
        "c=IN IP4 0.0.0.0",
        "a=rtcp:9 IN IP4 0.0.0.0",
        f"a=ice-ufrag:{ice_ufrag(pair, side)}",
        f"a=ice-pwd:{_hex(seed + 17, 24)}",
        "a=ice-options:trickle",
        f"a=fingerprint:sha-256 {fingerprint}",
        f"a=setup:{setup}",
    ]
    audio_ssrc = int(_hex(seed + 19, 8), 16) % 2**31
    lines += [
        "m=audio 9 UDP/TLS/RTP/SAVPF " + " ".join(str(pt) for pt, _, _ in _AUDIO_CODECS),
        *common,
        "a=mid:0",
        "a=extmap:1 urn:ietf:params:rtp-hdrext:ssrc-audio-level",
        "a=extmap:2 http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time",
        "a=extmap:3 http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01",
        "a=extmap:4 urn:ietf:params:rtp-hdrext:sdes:mid",
        "a=sendrecv",
        f"a=msid:{stream} {_hex(seed + 23, 8)}-audio",
        "a=rtcp-mux",
        "a=rtcp-rsize",
    ]
    for pt, name, fmtp in _AUDIO_CODECS:
        lines.append(f"a=rtpmap:{pt} {name}")
        if pt == 111:
            lines.append(f"a=rtcp-fb:{pt} transport-cc")
        if fmtp:
            lines.append(f"a=fmtp:{pt} {fmtp}")
    lines += [f"a=ssrc:{audio_ssrc} cname:{cname}", f"a=ssrc:{audio_ssrc} msid:{stream} audio"]
    payload_types = []
    for pt, _, _, rtx in _VIDEO_CODECS:
        payload_types += [pt] if rtx is None else [pt, rtx]
    video_ssrc = int(_hex(seed + 29, 8), 16) % 2**31
    rtx_ssrc = int(_hex(seed + 31, 8), 16) % 2**31
    lines += [
        "m=video 9 UDP/TLS/RTP/SAVPF " + " ".join(str(pt) for pt in payload_types),
        *common,
        "a=mid:1",
        "a=extmap:14 urn:ietf:params:rtp-hdrext:toffset",
        "a=extmap:2 http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time",
        "a=extmap:13 urn:3gpp:video-orientation",
        "a=extmap:3 http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01",
        "a=extmap:5 http://www.webrtc.org/experiments/rtp-hdrext/playout-delay",
        "a=extmap:6 http://www.webrtc.org/experiments/rtp-hdrext/video-content-type",
        "a=extmap:7 http://www.webrtc.org/experiments/rtp-hdrext/video-timing",
        "a=extmap:8 http://www.webrtc.org/experiments/rtp-hdrext/color-space",
        "a=extmap:4 urn:ietf:params:rtp-hdrext:sdes:mid",
        "a=extmap:10 urn:ietf:params:rtp-hdrext:sdes:rtp-stream-id",
        "a=extmap:11 urn:ietf:params:rtp-hdrext:sdes:repaired-rtp-stream-id",
        "a=sendrecv",
        f"a=msid:{stream} {_hex(seed + 37, 8)}-video",
        "a=rtcp-mux",
        "a=rtcp-rsize",
    ]
    for pt, name, fmtp, rtx in _VIDEO_CODECS:
        lines.append(f"a=rtpmap:{pt} {name}")
        if not name.startswith(("red", "ulpfec")):
            lines += [f"a=rtcp-fb:{pt} {fb}" for fb in _VIDEO_FEEDBACK]
        if fmtp:
            lines.append(f"a=fmtp:{pt} {fmtp}")
        if rtx is not None:
            lines += [f"a=rtpmap:{rtx} rtx/90000", f"a=fmtp:{rtx} apt={pt}"]
    lines += [
        f"a=ssrc-group:FID {video_ssrc} {rtx_ssrc}",
        f"a=ssrc:{video_ssrc} cname:{cname}",
        f"a=ssrc:{video_ssrc} msid:{stream} video",
        f"a=ssrc:{rtx_ssrc} cname:{cname}",
        f"a=ssrc:{rtx_ssrc} msid:{stream} video",
    ]
    return "\r\n".join(lines) + "\r\n"


def ice_candidates(pair: int, side: str, round_: int, count: int) -> list[dict[str, Any]]:
    """`count` Chrome-style trickled candidates (host udp/tcp, srflx, relay), unique per round."""
    ufrag = ice_ufrag(pair, side)
    octet = 10 if side == "a" else 20
    out = []
    for i in range(count):
        port = 50000 + (round_ * 64 + i) % 15000
        kind = i % 4
        if kind == 0:
            text = f"1 udp 2122260223 192.168.1.{octet} {port} typ host"
        elif kind == 1:
            text = f"1 tcp 1518280447 192.168.1.{octet} 9 typ host tcptype active"
        elif kind == 2:
            text = (
                f"1 udp 1686052607 203.0.113.{octet} {port} typ srflx "
                f"raddr 192.168.1.{octet} rport {port}"
            )
        else:
            text = f"1 udp 41885695 198.51.100.7 {port} typ relay raddr 203.0.113.{octet} rport 0"
        foundation = int(_hex(pair * 8 + i, 8), 16) % 4294967295
        out.append(
            {
                "candidate": f"candidate:{foundation} {text} generation {round_} ufrag {ufrag} "
                f"network-id 1 network-cost 10",
                "sdpMid": "0",
                "sdpMLineIndex": 0,
                "usernameFragment": ufrag,
            }
        )
    return out


def flood_template(pair: int, side: str) -> tuple[str, str]:
    """A flood message's offer around its number: `head + str(n) + tail` is a ~5.1 KB offer
    (as `chrome_sdp`) whose `o=` line's session version is `n`."""
    lines = chrome_sdp("offer", pair, side, 0).split("\r\n")
    origin = lines[1].split(" ")
    head = "\r\n".join(lines[:1]) + "\r\n" + " ".join(origin[:2]) + " "
    tail = " " + " ".join(origin[3:]) + "\r\n" + "\r\n".join(lines[2:])
    return head, tail


def flood_number(sdp: str) -> int:
    """The number a flood message carries (its `o=` line's session version)."""
    return int(sdp.split("\r\n", 2)[1].split(" ", 3)[2])


def check_payloads(candidates: int) -> tuple[int, int]:
    """Sizes of the offer and answer, after making sure the server would accept them."""
    from signaling.limits import Limits
    from signaling.sdp import check_candidate, check_sdp

    limits = Limits()
    offer, answer = chrome_sdp("offer", 0, "a", 0), chrome_sdp("answer", 0, "b", 0)
    for sdp in (offer, answer):
        check_sdp(sdp, limits.max_sdp_bytes)
    for side in "ab":
        for c in ice_candidates(0, side, 0, candidates):
            check_candidate(c["candidate"], limits.max_candidate_bytes)
    return len(offer.encode()), len(answer.encode())


# ---- statistics ----------------------------------------------------------------------------


def percentile(sorted_values: Sequence[float], p: float) -> float:
    """Nearest-rank percentile of an already sorted, non-empty sequence."""
    rank = max(1, math.ceil(p / 100 * len(sorted_values)))
    return sorted_values[rank - 1]


def summarize(values: Sequence[float]) -> dict[str, float | int | None]:
    """n, p50, p99, max and mean of durations in seconds, reported in milliseconds."""
    if not values:
        return {"n": 0, "p50_ms": None, "p99_ms": None, "max_ms": None, "mean_ms": None}
    xs = sorted(values)
    return {
        "n": len(xs),
        "p50_ms": round(percentile(xs, 50) * 1000, 2),
        "p99_ms": round(percentile(xs, 99) * 1000, 2),
        "max_ms": round(xs[-1] * 1000, 2),
        "mean_ms": round(sum(xs) / len(xs) * 1000, 2),
    }


# ---- worker processes: the clients ---------------------------------------------------------


@dataclass(frozen=True)
class PairSpec:
    index: int
    consult_id: str
    exam_token: str
    specialist_token: str


@dataclass(frozen=True)
class WorkerSpec:
    worker: int
    url: str
    pairs: list[PairSpec]
    in_flight: int
    rounds: int
    candidates: int
    op_timeout: float
    flood_rate: float = 0.0
    """`signal` messages per second this worker sends in the flood phase (all its clients)."""
    flood_seconds: float = 0.0
    url_b: str = ""
    """Where the specialists (B) connect, if not `url` (the cluster: the second process)."""


@dataclass
class PhaseReport:
    """What one worker measured in one phase; merged by the parent."""

    phase: str
    wall_s: float = 0.0
    samples: dict[str, list[float]] = field(default_factory=dict)
    errors: Counter[str] = field(default_factory=Counter)
    error_samples: list[str] = field(default_factory=list)
    counts: Counter[str] = field(default_factory=Counter)

    def sample(self, metric: str, seconds: float) -> None:
        self.samples.setdefault(metric, []).append(seconds)

    def error(self, code: str, detail: str) -> None:
        self.errors[code] += 1
        if len(self.error_samples) < 5:
            self.error_samples.append(f"{self.phase}: {code}: {detail}"[:300])

    def as_dict(self) -> dict[str, Any]:
        """Plain data for the pipe (the parent cannot unpickle classes of a spawned main)."""
        return {
            "phase": self.phase,
            "wall_s": self.wall_s,
            "samples": self.samples,
            "errors": dict(self.errors),
            "error_samples": self.error_samples,
            "counts": dict(self.counts),
        }


class Refused(Exception):
    """The server acknowledged an event with ok=false (or something unexpected)."""

    def __init__(self, code: str, detail: str) -> None:
        super().__init__(detail)
        self.code = code


@dataclass
class Pair:
    """One consult's two clients and what the event handlers need to time them."""

    spec: PairSpec
    a: socketio.AsyncClient | None = None
    b: socketio.AsyncClient | None = None
    a_peer: str = ""
    b_peer: str = ""
    usable: bool = True
    peer_joined: asyncio.Future[float] | None = None
    answer: asyncio.Future[float] | None = None
    a_done: asyncio.Event = field(default_factory=asyncio.Event)
    """A has received B's end_of_candidates in the current round."""
    b_done: asyncio.Event = field(default_factory=asyncio.Event)
    sent: dict[str, float] = field(default_factory=dict)
    """Candidate line → when it was emitted, for the one-way latency."""
    round: int = 0
    flood_sent: dict[int, float] = field(default_factory=dict)
    """Flood message number → when it was emitted (both directions; numbers are unique)."""


class Fleet:
    """The clients of one worker process and the phases it runs over them."""

    def __init__(self, spec: WorkerSpec) -> None:
        self.spec = spec
        self.pairs = [Pair(p) for p in spec.pairs]
        self.http: aiohttp.ClientSession | None = None
        self.report = PhaseReport("setup")
        self.closing = False
        self.tasks: set[asyncio.Task[None]] = set()
        self.counts: Counter[str] = Counter()
        self.flooding = False
        """In the flood phase every `signal` received is a timed flood message."""
        self.flood_all_sent = False
        self.flood_waiting = 0
        """Flood messages sent and not yet received by their peer."""
        self.flood_acks_pending = 0
        self.flood_settled = asyncio.Event()

    # -- helpers --

    async def call(self, client: socketio.AsyncClient, event: str, data: Any) -> dict[str, Any]:
        """Emit with an ack; the ack if ok, `Refused` otherwise."""
        try:
            ack = await client.call(event, data, timeout=self.spec.op_timeout)
        except socketio.exceptions.TimeoutError:
            raise Refused("ack_timeout", f"no ack to {event} in {self.spec.op_timeout}s") from None
        if not isinstance(ack, dict):
            raise Refused("bad_ack", f"{event} ack is {ack!r}")
        if not ack.get("ok"):
            error = ack.get("error") or {}
            raise Refused(str(error.get("code", "refused")), str(error.get("message", ack)))
        self.counts[f"{event}_acked"] += 1
        return ack

    def spawn(self, coro: Awaitable[None]) -> None:
        async def guarded() -> None:
            try:
                await coro
            except Refused as exc:
                self.report.error(exc.code, str(exc))
            except Exception as exc:
                self.report.error(type(exc).__name__, str(exc))

        task = asyncio.create_task(guarded())
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    def _client(self, pair: Pair, side: str) -> socketio.AsyncClient:
        client = socketio.AsyncClient(
            reconnection=False,
            handle_sigint=False,
            http_session=self.http,
            request_timeout=self.spec.op_timeout,
        )

        async def on_signal(data: dict[str, Any]) -> None:
            await self._on_signal(pair, side, data)

        async def on_peer_joined(data: dict[str, Any]) -> None:
            now = time.perf_counter()
            if side == "a" and pair.peer_joined is not None and not pair.peer_joined.done():
                pair.b_peer = str(data.get("peer", {}).get("peer_id", ""))
                pair.peer_joined.set_result(now)

        async def on_consult_state(_data: Any) -> None:
            self.counts["consult_state_events"] += 1

        async def on_disconnect(reason: Any = None) -> None:
            if not self.closing:
                self.report.error(
                    "unexpected_disconnect", f"pair {pair.spec.index}{side}: {reason}"
                )
                pair.usable = False

        client.on("signal", on_signal)
        client.on("peer-joined", on_peer_joined)
        client.on("consult-state", on_consult_state)
        client.on("disconnect", on_disconnect)
        return client

    async def _on_signal(self, pair: Pair, side: str, data: dict[str, Any]) -> None:
        now = time.perf_counter()
        if self.flooding:
            self._on_flood(pair, data, now)
            return
        self.counts["signals_received"] += 1
        expected_from = pair.a_peer if side == "b" else pair.b_peer
        if data.get("from") != expected_from:
            self.report.error(
                "wrong_sender", f"signal from {data.get('from')}, not {expected_from}"
            )
            return
        if "candidate" in data:
            sent = pair.sent.pop(data["candidate"]["candidate"], None)
            if sent is None:
                self.report.error("unknown_candidate", data["candidate"]["candidate"][:80])
            else:
                self.report.sample("candidate_one_way", now - sent)
        elif data.get("end_of_candidates"):
            (pair.a_done if side == "a" else pair.b_done).set()
        elif side == "b" and data.get("description", {}).get("type") == "offer":
            self.spawn(self._answer(pair))
        elif side == "a" and data.get("description", {}).get("type") == "answer":
            if pair.answer is not None and not pair.answer.done():
                pair.answer.set_result(now)
        else:
            self.report.error("unexpected_signal", json.dumps(data)[:120])

    def _on_flood(self, pair: Pair, data: dict[str, Any], now: float) -> None:
        try:
            number = flood_number(data["description"]["sdp"])
        except (KeyError, TypeError, ValueError, IndexError):
            self.report.error("unexpected_signal", json.dumps(data)[:120])
            return
        sent = pair.flood_sent.pop(number, None)
        if sent is None:
            self.report.error("unknown_flood_message", str(number))
            return
        self.counts["flood_delivered"] += 1
        self.report.sample("flood_delivery", now - sent)
        self.flood_waiting -= 1
        self._flood_check()

    def _flood_check(self) -> None:
        """Wake the flood once everything it sent is acknowledged and delivered."""
        if self.flood_all_sent and self.flood_waiting <= 0 and self.flood_acks_pending <= 0:
            self.flood_settled.set()

    async def flood(self, budget: float) -> None:
        """Send `flood_rate` signals a second for `flood_seconds`, round-robin over every
        client (A → B, then B → A, then the next consult's), open loop: a message goes out at
        its time whether or not the earlier ones were answered. Each is a ~5.1 KB offer whose
        `o=` line carries the message's number, so the receiver times it."""
        spec = self.spec
        senders = [(p, side) for p in self.pairs if p.usable and p.b_peer for side in "ab"]
        total = int(spec.flood_rate * spec.flood_seconds) if senders else 0
        templates = {
            (p.spec.index, side): flood_template(p.spec.index, side) for p, side in senders
        }
        self.flood_all_sent = False
        self.flood_waiting = self.flood_acks_pending = 0
        self.flood_settled.clear()

        def acked(started: float, reply: Any = None) -> None:
            self.flood_acks_pending -= 1
            if isinstance(reply, dict) and reply.get("ok"):
                self.counts["flood_acked"] += 1
                self.report.sample("flood_ack", time.perf_counter() - started)
            else:
                error = reply.get("error") if isinstance(reply, dict) else None
                code = str(error.get("code", "refused")) if isinstance(error, dict) else "bad_ack"
                self.report.error(code, f"flood signal refused: {reply!r}"[:200])
            self._flood_check()

        self.flooding = True
        started = time.perf_counter()
        stop_at = started + budget
        number = 0
        try:
            while number < total and time.perf_counter() < stop_at:
                now = time.perf_counter()
                due = min(total, int((now - started) * spec.flood_rate) + 1)
                while number < due:
                    pair, side = senders[number % len(senders)]
                    client = pair.a if side == "a" else pair.b
                    assert client is not None
                    head, tail = templates[(pair.spec.index, side)]
                    payload = {
                        "consult_id": pair.spec.consult_id,
                        "to": pair.b_peer if side == "a" else pair.a_peer,
                        "description": {"type": "offer", "sdp": f"{head}{number}{tail}"},
                    }
                    emitted = time.perf_counter()
                    self.report.sample("flood_lag", emitted - (started + number / spec.flood_rate))
                    pair.flood_sent[number] = emitted
                    self.flood_waiting += 1
                    self.flood_acks_pending += 1
                    try:
                        await client.emit(
                            "signal", payload, callback=lambda r=None, t=emitted: acked(t, r)
                        )
                    except Exception as exc:
                        self.flood_waiting -= 1
                        self.flood_acks_pending -= 1
                        pair.flood_sent.pop(number, None)
                        self.report.error(type(exc).__name__, str(exc) or repr(exc))
                    number += 1
                next_at = started + number / spec.flood_rate
                await asyncio.sleep(max(0.0, next_at - time.perf_counter()))
            self.flood_all_sent = True
            self.counts["flood_sent"] += number
            self._flood_check()
            # Whatever is still on its way gets the operation timeout to arrive.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.flood_settled.wait(), max(1.0, spec.op_timeout))
        finally:
            self.flooding = False
            if number < total:
                self.report.errors["flood_not_sent"] += total - number
            if self.flood_acks_pending > 0:
                self.report.errors["flood_ack_missing"] += self.flood_acks_pending
            lost = sum(len(p.flood_sent) for p in self.pairs)
            if lost:
                self.report.error("flood_undelivered", f"{lost} flood signals never arrived")
                self.report.errors["flood_undelivered"] += lost - 1
            for p in self.pairs:
                p.flood_sent.clear()

    async def _trickle(self, pair: Pair, side: str) -> None:
        client = pair.a if side == "a" else pair.b
        to = pair.b_peer if side == "a" else pair.a_peer
        assert client is not None
        base = {"consult_id": pair.spec.consult_id, "to": to}
        for candidate in ice_candidates(pair.spec.index, side, pair.round, self.spec.candidates):
            pair.sent[candidate["candidate"]] = time.perf_counter()
            await self.call(client, "signal", {**base, "candidate": candidate})
        await self.call(client, "signal", {**base, "end_of_candidates": True})

    async def _answer(self, pair: Pair) -> None:
        assert pair.b is not None
        sdp = chrome_sdp("answer", pair.spec.index, "b", pair.round)
        description = {"type": "answer", "sdp": sdp}
        await self.call(
            pair.b,
            "signal",
            {"consult_id": pair.spec.consult_id, "to": pair.a_peer, "description": description},
        )
        await self._trickle(pair, "b")

    # -- phases, each per consult --

    async def connect(self, pair: Pair) -> None:
        for side, token in (("a", pair.spec.exam_token), ("b", pair.spec.specialist_token)):
            client = self._client(pair, side)
            if side == "a":
                pair.a = client
            else:
                pair.b = client
            started = time.perf_counter()
            await client.connect(
                self.spec.url_b if side == "b" and self.spec.url_b else self.spec.url,
                auth={"token": token},
                transports=["websocket"],
                wait_timeout=self.spec.op_timeout,
            )
            self.report.sample("connect", time.perf_counter() - started)

    async def join_first(self, pair: Pair) -> None:
        assert pair.a is not None
        started = time.perf_counter()
        ack = await self.call(pair.a, "join", {"consult_id": pair.spec.consult_id})
        self.report.sample("join_first_ack", time.perf_counter() - started)
        pair.a_peer = str(ack["peer_id"])

    async def join_second(self, pair: Pair) -> None:
        assert pair.b is not None
        pair.peer_joined = asyncio.get_running_loop().create_future()
        started = time.perf_counter()
        ack = await self.call(pair.b, "join", {"consult_id": pair.spec.consult_id})
        acked = time.perf_counter()
        pair.b_peer = pair.b_peer or str(ack["peer_id"])
        if not any(p.get("peer_id") == pair.a_peer for p in ack.get("peers", [])):
            raise Refused("peer_missing", f"join ack of pair {pair.spec.index} does not name A")
        joined = await asyncio.wait_for(pair.peer_joined, self.spec.op_timeout)
        if pair.b_peer != ack["peer_id"]:
            raise Refused("peer_mismatch", "peer-joined named another peer than B's join ack")
        self.report.sample("join_second_ack", acked - started)
        self.report.sample("peer_joined", joined - started)
        self.report.sample("peer_ready", max(joined, acked) - started)

    async def negotiate(self, pair: Pair) -> None:
        assert pair.a is not None
        loop = asyncio.get_running_loop()
        for round_ in range(self.spec.rounds):
            pair.round = round_
            pair.answer = loop.create_future()
            pair.a_done.clear()
            pair.b_done.clear()
            sdp = chrome_sdp("offer", pair.spec.index, "a", round_)
            description = {"type": "offer", "sdp": sdp}
            started = time.perf_counter()
            await self.call(
                pair.a,
                "signal",
                {"consult_id": pair.spec.consult_id, "to": pair.b_peer, "description": description},
            )
            await self._trickle(pair, "a")
            answered = await asyncio.wait_for(pair.answer, self.spec.op_timeout)
            self.report.sample("offer_answer_rtt", answered - started)
            await asyncio.wait_for(pair.a_done.wait(), self.spec.op_timeout)
            await asyncio.wait_for(pair.b_done.wait(), self.spec.op_timeout)
            if pair.sent:
                raise Refused("candidates_lost", f"{len(pair.sent)} candidates never arrived")

    async def disconnect(self, pair: Pair) -> None:
        for client in (pair.a, pair.b):
            if client is not None and client.connected:
                await client.disconnect()

    # -- running a phase --

    async def run_phase(self, phase: str, budget: float) -> PhaseReport:
        self.report = report = PhaseReport(phase)
        self.counts = Counter()
        step: Callable[[Pair], Awaitable[None]] = {
            "connect": self.connect,
            "join-first": self.join_first,
            "join-second": self.join_second,
            "signal": self.negotiate,
            "flood": self.negotiate,  # not per consult: run by `flood` below
            "disconnect": self.disconnect,
        }[phase]
        if phase == "connect" and self.http is None:
            self.http = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=0), cookie_jar=aiohttp.DummyCookieJar()
            )
        if phase == "disconnect":
            self.closing = True
        limit = asyncio.Semaphore(self.spec.in_flight or len(self.pairs) or 1)

        async def one(pair: Pair) -> None:
            async with limit:
                try:
                    await step(pair)
                except Refused as exc:
                    pair.usable = False
                    report.error(exc.code, str(exc))
                except TimeoutError:
                    pair.usable = False
                    report.error("timeout", f"pair {pair.spec.index} timed out")
                except Exception as exc:
                    pair.usable = False
                    report.error(type(exc).__name__, str(exc) or repr(exc))

        chosen = [p for p in self.pairs if p.usable or phase == "disconnect"]
        started = time.perf_counter()
        if phase == "flood":
            await self.flood(budget)
            chosen = []
        jobs = {asyncio.create_task(one(p)): p for p in chosen}
        if jobs:
            _, pending = await asyncio.wait(jobs, timeout=max(budget, 0.1))
            for job in pending:
                job.cancel()
                jobs[job].usable = False
            if pending:
                report.errors["phase_timeout"] += len(pending)
                report.error_samples.append(
                    f"{phase}: {len(pending)} consults unfinished after {budget:.0f}s"
                )
                await asyncio.gather(*pending, return_exceptions=True)
        if self.tasks:
            # B's answers and candidates run as tasks of their own; their last acks belong
            # to this phase too.
            await asyncio.wait(self.tasks, timeout=max(budget - (time.perf_counter() - started), 1))
        report.wall_s = time.perf_counter() - started
        report.counts.update(self.counts)
        report.counts["consults"] = len(chosen)
        if phase == "disconnect" and self.http is not None:
            await self.http.close()
        return report


async def _worker(conn: Connection, spec: WorkerSpec) -> None:
    # A dropped connection is counted as `unexpected_disconnect`; engine.io's own error lines
    # for it ("packet queue is empty, aborting") would only flood stderr.
    logging.getLogger("engineio.client").setLevel(logging.CRITICAL)
    logging.getLogger("socketio.client").setLevel(logging.CRITICAL)
    loop = asyncio.get_running_loop()
    fleet = Fleet(spec)
    conn.send(("ready", spec.worker))
    while True:
        message = await loop.run_in_executor(None, conn.recv)
        if message[0] == "stop":
            break
        _, phase, budget = message
        conn.send(("report", (await fleet.run_phase(phase, budget)).as_dict()))
    if not fleet.closing:
        await fleet.run_phase("disconnect", spec.op_timeout)


def worker_main(conn: Connection, spec: WorkerSpec) -> None:
    """Entry point of a worker process: runs phases on command until told to stop."""
    try:
        asyncio.run(_worker(conn, spec))
    except BaseException:
        with contextlib.suppress(OSError):
            conn.send(("fatal", traceback.format_exc()))


# ---- the parent: server, setup, phases -----------------------------------------------------


def raise_fd_limit(needed: int) -> dict[str, int]:
    """Raise the soft open-files limit (inherited by the server and workers) to `needed`."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < needed:
        target = needed if hard == resource.RLIM_INFINITY else min(needed, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        soft = target
    return {"soft": int(soft), "hard": int(hard), "needed": needed}


async def seed_identities(
    env: dict[str, str], pairs: int, per_county: int
) -> list[tuple[str, str, int]]:
    """Per consult a new exam-room doctor and specialist: (doctor token, specialist token, id).

    Written straight into the server's database before it starts, and tokens minted with its
    secret, as `teleconsult user add` and `teleconsult token` would (logins cost an argon2
    verification each, which is not what this benchmark measures).
    """
    from rooms.consults.institutions import InstitutionLevel
    from rooms.consults.people import Role, Specialty
    from signaling.passwords import hash_password
    from teleconsult.bootstrap import build_repositories, build_tokens
    from teleconsult.config import load_settings

    settings = load_settings(env)
    repos = build_repositories(settings)
    store = repos.consults
    tokens = build_tokens(settings)
    try:
        institutions = await store.institutions()
        province = next(i for i in institutions if i.level is InstitutionLevel.PROVINCE)
        city = next((i for i in institutions if i.level is InstitutionLevel.CITY), province)
        password_hash = hash_password("bench-password")
        counties = [
            await store.add_institution(f"Bench County {c}", InstitutionLevel.COUNTY, city.id)
            for c in range(math.ceil(pairs / per_county))
        ]
        out = []
        for i in range(pairs):
            doctor = await store.add_user(
                f"bench.doctor.{i}",
                f"Bench Doctor {i}",
                Role.EXAM_ROOM_DOCTOR,
                counties[i // per_county].id,
                None,
                password_hash,
            )
            specialist = await store.add_user(
                f"bench.obstetrician.{i}",
                f"Bench Obstetrician {i}",
                Role.SPECIALIST,
                province.id,
                Specialty.OBSTETRICS,
                password_hash,
            )
            out.append((tokens.issue(doctor)[0], tokens.issue(specialist)[0], specialist.id))
        return out
    finally:
        await repos.close()


async def book_consults(
    url: str, identities: Sequence[tuple[str, str, int]], concurrency: int = 16
) -> tuple[list[str], list[str]]:
    """Book one consult per identity pair over REST and have its specialist accept it.

    The consult ids, and the server errors (5xx) that were retried on the way.
    """
    from tests.support.server import in_hours

    limit = asyncio.Semaphore(concurrency)
    retried: list[str] = []
    body: dict[str, Any] = {
        "patient": {"name": "测试患者 Bench Patient", "sex": "female", "age_years": 30},
        "specialty": "obstetrics",
        "reason": "signalling benchmark",
        "scheduled_at": in_hours(0),  # not a calendar date: past ones expire
        "intake": {"gestational_week": 32},
    }
    async with aiohttp.ClientSession() as http:

        async def post(path: str, token: str, payload: dict[str, Any], expect: int) -> Any:
            for attempt in range(4):
                headers = {"Authorization": f"Bearer {token}"}
                async with http.post(f"{url}{path}", json=payload, headers=headers) as reply:
                    if reply.status == expect:
                        return await reply.json()
                    status, text = reply.status, await reply.text()
                if status < 500 or attempt == 3:
                    raise RuntimeError(f"POST {path} failed: {status} {text}")
                retried.append(f"POST {path}: {status} {text[:160]}")
                await asyncio.sleep(0.5 * (attempt + 1))
            raise AssertionError("unreachable")

        async def book(doctor: str, specialist: str, specialist_id: int) -> str:
            async with limit:
                booking = {**body, "specialist_id": specialist_id}
                consult_id = str((await post("/api/consults", doctor, booking, 201))["id"])
                await post(f"/api/consults/{consult_id}/accept", specialist, {}, 200)
                return consult_id

        ids = await asyncio.gather(*(book(*ident) for ident in identities))
        return list(ids), retried


FANOUT_FIGURES = (
    "high_water_messages",
    "high_water_bytes",
    "largest_batch_messages",
    "published_messages",
    "dropped_full_messages",
    "dropped_messages",
    "consults_resent",
)
"""The Redis fan-out's figures read from each cluster process's `/metrics` after every phase
(`teleconsult_fanout_<name>`, signaling/metrics.py; cumulative since the process started)."""


def fanout_figures(url: str) -> dict[str, float]:
    """The Redis fan-out's figures on `url`'s `/metrics` (loopback: no token); {} when it has
    none (a tree from before they existed, or no answer)."""
    import urllib.request

    try:
        with urllib.request.urlopen(url + "/metrics", timeout=10) as reply:
            text = reply.read().decode()
    except OSError:
        return {}
    figures: dict[str, float] = {}
    for line in text.splitlines():
        name, _, value = line.partition(" ")
        key = name.removeprefix("teleconsult_fanout_")
        if key != name and key in FANOUT_FIGURES:
            figures[key] = float(value)
    return figures


def user_id(server: RunningServer, username: str) -> int:
    reply = server.request("GET", "/api/me", token=server.token(username))
    return int(reply.body["id"])


def log_problems(log_path: Path) -> dict[str, Any]:
    """WARNING/ERROR lines and tracebacks in the server log: a count and a few distinct ones."""
    try:
        text = log_path.read_text(errors="replace")
    except OSError:
        return {"count": 0, "samples": []}
    all_lines = text.splitlines()
    lines = []
    for number, line in enumerate(all_lines):
        if " WARNING " in line or " ERROR " in line or " CRITICAL " in line:
            lines.append(line)
        elif line.startswith("Traceback"):
            # The exception itself is the first unindented line after the traceback.
            rest = all_lines[number + 1 :]
            lines.append(next((x for x in rest if x and not x.startswith(" ")), line))
    distinct: dict[str, str] = {}
    for line in lines:
        # Drop the timestamp so repeats of one message collapse into one sample.
        key = line.split(" ", 2)[-1] if line[:2].isdigit() else line
        distinct.setdefault(key[:160], line[:300])
    return {"count": len(lines), "samples": list(distinct.values())[:8]}


def log(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


@dataclass
class Workers:
    """The worker processes and the parent's end of their pipes."""

    processes: list[BaseProcess]
    conns: list[Connection]

    def ask(self, phase: str, budget: float, grace: float) -> list[dict[str, Any]]:
        """Run one phase on every worker; the reports of those that answered in time."""
        for conn in self.conns:
            conn.send(("phase", phase, budget))
        return self.collect(budget + grace)

    def collect(self, timeout: float) -> list[dict[str, Any]]:
        reports: list[dict[str, Any]] = []
        waiting = list(self.conns)
        deadline = time.monotonic() + timeout
        while waiting:
            ready = wait_for_any(waiting, timeout=max(0.0, deadline - time.monotonic()))
            if not ready:
                raise TimeoutError(f"{len(waiting)} workers did not report in {timeout:.0f}s")
            for conn in ready:
                assert isinstance(conn, Connection)
                waiting.remove(conn)
                kind, payload = conn.recv()
                if kind == "fatal":
                    raise RuntimeError(f"a worker crashed:\n{payload}")
                if kind == "report":
                    reports.append(payload)
        return reports

    def stop(self) -> None:
        for conn in self.conns:
            with contextlib.suppress(OSError):
                conn.send(("stop",))
        for process in self.processes:
            process.join(timeout=30)
            if process.is_alive():
                process.terminate()
                process.join(timeout=5)


def start_workers(
    count: int,
    url: str,
    pairs: list[PairSpec],
    args: argparse.Namespace,
    timeout: float,
    url_b: str = "",
) -> Workers:
    ctx = mp.get_context("spawn")
    count = max(1, min(count, len(pairs)))
    in_flight = math.ceil(args.in_flight / count) if args.in_flight else 0
    processes: list[BaseProcess] = []
    conns: list[Connection] = []
    for w in range(count):
        parent_end, child_end = ctx.Pipe()
        spec = WorkerSpec(
            worker=w,
            url=url,
            pairs=pairs[w::count],
            in_flight=in_flight,
            rounds=args.rounds,
            candidates=args.candidates,
            op_timeout=args.op_timeout,
            flood_rate=args.rate / count,
            flood_seconds=args.flood_seconds,
            url_b=url_b,
        )
        process = ctx.Process(target=worker_main, args=(child_end, spec), daemon=True)
        process.start()
        child_end.close()
        processes.append(process)
        conns.append(parent_end)
    workers = Workers(processes, conns)
    deadline = time.monotonic() + timeout
    for conn in conns:
        if not conn.poll(max(0.0, deadline - time.monotonic())):
            workers.stop()
            raise TimeoutError("workers did not start")
        kind, payload = conn.recv()
        if kind != "ready":
            workers.stop()
            raise RuntimeError(f"a worker failed to start:\n{payload}")
    return workers


OPERATIONS = {
    # phase -> (what one operation is, the sample or count that numbers them)
    "connect": ("connection", "connect"),
    "join-first": ("join", "join_first_ack"),
    "join-second": ("join", "peer_ready"),
    "signal": ("signal event", "signal_acked"),
    "flood": ("relayed signal", "flood_delivered"),
}


def merge(reports: list[dict[str, Any]], wall_s: float) -> dict[str, Any]:
    samples: dict[str, list[float]] = {}
    errors: Counter[str] = Counter()
    counts: Counter[str] = Counter()
    error_samples: list[str] = []
    for r in reports:
        for metric, values in r["samples"].items():
            samples.setdefault(metric, []).extend(values)
        errors.update(r["errors"])
        counts.update(r["counts"])
        error_samples += r["error_samples"]
    return {
        "wall_s": round(wall_s, 3),
        "latency": {metric: summarize(values) for metric, values in sorted(samples.items())},
        "errors": dict(errors),
        "error_samples": error_samples[:8],
        "counts": dict(counts),
    }


def server_cpu_s(pid: int) -> float:
    """The process's CPU time so far (user + system, every thread), from /proc/<pid>/stat."""
    with open(f"/proc/{pid}/stat", "rb") as f:
        fields = f.read().rsplit(b")", 1)[1].split()
    # After the command name: state is field 3, utime and stime are fields 14 and 15.
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class BareRelay:
    """`bench/bare_relay.py` in a subprocess on a free loopback port: the anchor."""

    def __init__(self) -> None:
        from tests.support.server import free_port

        self.port = free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="bare-relay-"))
        self.log_path = self.dir / "bare-relay.log"
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        with self.log_path.open("ab") as out:
            self.process = subprocess.Popen(
                [sys.executable, str(REPO / "bench" / "bare_relay.py"), "--port", str(self.port)],
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=REPO,
            )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"bare relay exited early:\n{self.log_path.read_text()}")
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", self.port)):
                return
            time.sleep(0.1)
        self.stop()
        raise RuntimeError("the bare relay did not come up")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)

    def cleanup(self) -> None:
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


def run_once(
    pairs: int, args: argparse.Namespace, deadline: float, target: str = "teleconsult"
) -> dict[str, Any]:
    """One server (`target`: teleconsult or the bare relay), `pairs` consults, every phase;
    partial results if time or clients run out."""
    from tests.support.redis import RedisServer
    from tests.support.server import RunningServer

    run_started = time.perf_counter()
    connections = 2 * pairs
    result: dict[str, Any] = {
        "server": target,
        "pairs": pairs,
        "connections": connections,
        "complete": False,
        "fd_limit": raise_fd_limit(connections + 1024),
        "load_average_before": [round(x, 2) for x in os.getloadavg()],
        "phases": {},
        "errors": {},
        "memory": {},
        "server_cpu_s": {},
    }
    redis = RedisServer() if target in ("cluster", "cluster-baseline") else None
    tree = args.baseline_tree if target in ("baseline", "cluster-baseline") else None
    env = dict(SERVER_ENV)
    env.update(args.server_env_pairs)
    if tree is not None:
        env.update(args.baseline_env_pairs)
    if redis is not None:
        redis.start()
        env["REDIS_URL"] = redis.url
    server: RunningServer | BareRelay = (
        BareRelay()
        if target == "bare"
        else RunningServer(env_overrides=env, tree=tree)
        if tree is not None
        else RunningServer(env_overrides=env)
    )
    second: RunningServer | None = None
    second_proc: psutil.Process | None = None
    workers: Workers | None = None
    name = f"{target}, {pairs} pairs"
    try:
        log(f"{name}: setting up server, identities and consults")
        setup_started = time.perf_counter()
        setup: dict[str, float] = {}
        if isinstance(server, BareRelay):
            server.start()
            identities = [("bench-a", "bench-b", 0)] * pairs
            consult_ids = [f"{i:032x}" for i in range(pairs)]
            retried: list[str] = []
        elif args.identities == "distinct":
            demo = server.cli("demo")
            if demo.returncode != 0:
                raise RuntimeError(f"teleconsult demo failed:\n{demo.stdout}\n{demo.stderr}")
            identities = asyncio.run(seed_identities(server.env(), pairs, args.pairs_per_county))
            setup["identities_s"] = time.perf_counter() - setup_started
            server.start()
        else:
            server.start()
            shared = (
                server.token("doctor.a"),
                server.token("obstetrician"),
                user_id(server, "obstetrician"),
            )
            identities = [shared] * pairs
        booking_started = time.perf_counter()
        if isinstance(server, RunningServer):
            consult_ids, retried = asyncio.run(book_consults(server.url, identities))
        if retried:
            result["setup_retries"] = {"count": len(retried), "samples": retried[:5]}
            log(f"{name}: {len(retried)} bookings retried after a server error")
        setup["bookings_s"] = time.perf_counter() - booking_started
        specs = [
            PairSpec(i, consult_ids[i], identities[i][0], identities[i][1]) for i in range(pairs)
        ]
        assert server.process is not None
        proc = psutil.Process(server.process.pid)
        result["server_pid"] = proc.pid
        log(f"{name}: server pid {proc.pid}, {server.url}")
        url_b = ""
        if redis is not None and isinstance(server, RunningServer):
            second = (
                RunningServer(env_overrides=env, data_dir=server.data_dir, tree=tree)
                if tree is not None
                else RunningServer(env_overrides=env, data_dir=server.data_dir)
            )
            second.launch()
            assert second.process is not None
            second_proc = psutil.Process(second.process.pid)
            result["second_server_pid"] = second_proc.pid
            result["second_server_cpu_s"] = {}
            url_b = second.url
            log(f"{name}: second process pid {second_proc.pid}, {second.url} (specialists)")
        workers = start_workers(args.workers, server.url, specs, args, 120, url_b)
        result["setup_s"] = round(time.perf_counter() - setup_started, 3)
        result["setup_parts_s"] = {k: round(v, 3) for k, v in setup.items()}
        log(f"{name}: setup took {result['setup_s']:.1f}s {result['setup_parts_s']}")
        result["workers"] = len(workers.processes)

        rss = {"before_connect": proc.memory_info().rss}
        cpu_before = server_cpu_s(proc.pid)
        second_before = server_cpu_s(second_proc.pid) if second_proc is not None else 0.0
        peak_fds = proc.num_fds()
        errors: Counter[str] = Counter()
        for phase in PHASES:
            budget = deadline - time.monotonic() - 15
            if budget <= 1 and phase != "disconnect":
                errors["out_of_time"] += 1
                log(f"{name}: out of time before {phase}")
                continue
            log(f"{name}: {phase}")
            started = time.perf_counter()
            reports = workers.ask(
                phase, max(budget, 10.0 if phase == "disconnect" else 1.0), grace=30
            )
            merged = merge(reports, time.perf_counter() - started)
            cpu_now = server_cpu_s(proc.pid)
            result["server_cpu_s"][phase] = round(cpu_now - cpu_before, 3)
            if second_proc is not None:
                second_now = server_cpu_s(second_proc.pid)
                result["second_server_cpu_s"][phase] = round(second_now - second_before, 3)
                second_before = second_now
            if phase in OPERATIONS:
                what, key = OPERATIONS[phase]
                ops = merged["counts"].get(key) or merged["latency"].get(key, {}).get("n") or 0
                merged["operations"] = {
                    "what": what,
                    "count": ops,
                    "per_s": round(ops / merged["wall_s"], 1) if merged["wall_s"] else None,
                    "server_cpu_ms_each": round((cpu_now - cpu_before) * 1000 / ops, 3)
                    if ops
                    else None,
                }
            cpu_before = cpu_now
            rss[f"after_{phase}"] = proc.memory_info().rss
            if second is not None and isinstance(server, RunningServer):
                result.setdefault("fanout", {})[phase] = {
                    "first": fanout_figures(server.url),
                    "second": fanout_figures(second.url),
                }
            peak_fds = max(peak_fds, proc.num_fds())
            result["phases"][phase] = merged
            errors.update(merged["errors"])
        result["errors"] = dict(errors)
        result["server_fds_peak"] = peak_fds
        mib = 1024 * 1024
        result["memory"] = {f"rss_{k}_mib": round(v / mib, 1) for k, v in rss.items()}
        if "after_connect" in rss:
            per_conn = (rss["after_connect"] - rss["before_connect"]) / connections
            result["memory"]["per_connection_connected_kib"] = round(per_conn / 1024, 1)
        if "after_join-second" in rss:
            per_conn = (rss["after_join-second"] - rss["before_connect"]) / connections
            result["memory"]["per_connection_kib"] = round(per_conn / 1024, 1)
        result["complete"] = not errors
    except Exception as exc:
        result["errors"]["aborted"] = 1
        result["aborted"] = f"{type(exc).__name__}: {exc}"[:2000]
        log(f"{name} aborted: {result['aborted']}")
    finally:
        if workers is not None:
            workers.stop()
        if second is not None:
            second.stop()  # its data directory is the first's, removed with it
        server.stop()
        if redis is not None:
            redis.stop()
        result["server_log"] = log_problems(server.log_path)
        if args.keep_logs is not None:
            args.keep_logs.mkdir(parents=True, exist_ok=True)
            kept = args.keep_logs / f"{target}-{pairs}-pairs.log"
            with contextlib.suppress(OSError):
                shutil.copyfile(server.log_path, kept)
                result["server_log"]["kept_at"] = str(kept)
        server.cleanup()
    result["wall_s"] = round(time.perf_counter() - run_started, 3)
    result["load_average_after"] = [round(x, 2) for x in os.getloadavg()]
    return result


# ---- output --------------------------------------------------------------------------------


def _op(run: dict[str, Any], phase: str, key: str) -> float | None:
    value = run["phases"].get(phase, {}).get("operations", {}).get(key)
    return None if value is None else float(value)


def _lat(run: dict[str, Any], phase: str, metric: str, key: str) -> float | None:
    value = run["phases"].get(phase, {}).get("latency", {}).get(metric, {}).get(key)
    return None if value is None else float(value)


COMPARED: list[tuple[str, Callable[[dict[str, Any]], float | None]]] = [
    ("flood: server CPU per relayed signal ms", lambda r: _op(r, "flood", "server_cpu_ms_each")),
    ("flood: relayed signals/s", lambda r: _op(r, "flood", "per_s")),
    ("flood: delivery p50 ms", lambda r: _lat(r, "flood", "flood_delivery", "p50_ms")),
    ("flood: delivery p99 ms", lambda r: _lat(r, "flood", "flood_delivery", "p99_ms")),
    ("flood: delivery max ms", lambda r: _lat(r, "flood", "flood_delivery", "max_ms")),
    (
        "flood: errors",
        lambda r: float(sum(r["phases"].get("flood", {}).get("errors", {}).values())),
    ),
    ("join (1st): server CPU per join ms", lambda r: _op(r, "join-first", "server_cpu_ms_each")),
    ("join (1st): joins/s", lambda r: _op(r, "join-first", "per_s")),
    ("join (2nd): server CPU per join ms", lambda r: _op(r, "join-second", "server_cpu_ms_each")),
    ("join (2nd): joins/s", lambda r: _op(r, "join-second", "per_s")),
    ("join: `busy` refusals", lambda r: float(r["errors"].get("busy", 0))),
    ("negotiation: server CPU per signal ms", lambda r: _op(r, "signal", "server_cpu_ms_each")),
    ("errors, every phase", lambda r: float(sum(r["errors"].values()))),
]
"""The figures set side by side: teleconsult, the bare relay, and their ratio."""


def compare(
    runs: list[dict[str, Any]], first: str = "teleconsult", second: str = "bare"
) -> list[dict[str, Any]]:
    """Per --pairs with both servers run: each figure of `COMPARED` for both, and the ratio
    (`first`'s figure / `second`'s)."""
    out = []
    for pairs in sorted({r["pairs"] for r in runs}):
        ours = next((r for r in runs if r["pairs"] == pairs and r["server"] == first), None)
        other = next((r for r in runs if r["pairs"] == pairs and r["server"] == second), None)
        if ours is None or other is None:
            continue
        figures = {}
        for name, get in COMPARED:
            a, b = get(ours), get(other)
            figures[name] = {
                first: a,
                second: b,
                "ratio": round(a / b, 2) if a is not None and b else None,
            }
        out.append({"pairs": pairs, "servers": [first, second], "figures": figures})
    return out


COMPARISON_TITLES = {
    ("teleconsult", "bare"): "teleconsult beside the bare python-socketio relay",
    ("cluster", "teleconsult"): "two processes through Redis (cluster) beside one process",
    ("teleconsult", "baseline"): "this tree (after) beside --baseline-tree (before)",
    ("cluster", "cluster-baseline"): "two processes, this tree (after) beside --baseline-tree "
    "(before)",
}


def comparison_table(comparison: list[dict[str, Any]]) -> list[str]:
    lines: list[str] = []
    for c in comparison:
        first, second = c.get("servers", ["teleconsult", "bare"])
        width = max(len(name) for name in c["figures"]) + 2
        lines += [
            "",
            f"{COMPARISON_TITLES.get((first, second), f'{first} beside {second}')}, "
            f"{c['pairs']} pairs ({2 * c['pairs']} clients), same load generator, same run:",
            "".ljust(width) + first.rjust(14) + second.rjust(12) + "ratio".rjust(10),
        ]
        for name, f in c["figures"].items():

            def show(v: float | None) -> str:
                return "—" if v is None else f"{v:.3f}" if v < 10 else f"{v:.1f}"

            ratio = "—" if f["ratio"] is None else f"x{f['ratio']:.2f}"
            lines.append(
                name.ljust(width)
                + show(f[first]).rjust(14)
                + show(f[second]).rjust(12)
                + ratio.rjust(10)
            )
    return lines


def _ms(stats: dict[str, Any] | None) -> str:
    if not stats or not stats.get("n"):
        return "—"
    return f"{stats['p50_ms']:.1f} / {stats['p99_ms']:.1f}"


def table(report: dict[str, Any]) -> str:
    runs: list[dict[str, Any]] = report["runs"]
    cfg = report["config"]

    def lat(phase: str, metric: str) -> list[str]:
        return [_ms(r["phases"].get(phase, {}).get("latency", {}).get(metric)) for r in runs]

    def wall(phase: str) -> list[str]:
        out = []
        for r in runs:
            p = r["phases"].get(phase)
            if p is None:
                out.append("—")
                continue
            rate = p.get("operations", {}).get("per_s")
            out.append(f"{p['wall_s']:.2f}" + (f" ({rate:.0f}/s)" if rate else ""))
        return out

    def cpu_each(phase: str) -> list[str]:
        out = []
        for r in runs:
            each = r["phases"].get(phase, {}).get("operations", {}).get("server_cpu_ms_each")
            out.append("—" if each is None else f"{each:.2f}")
        return out

    def val(key: str, section: str | None = None, fmt: str = "{}") -> list[str]:
        out = []
        for r in runs:
            v = r.get(section, {}).get(key) if section else r.get(key)
            out.append("—" if v is None else fmt.format(v))
        return out

    rows: list[tuple[str, list[str]]] = [
        ("connections", [str(r["connections"]) for r in runs]),
        (
            "machine load average (1 min) before / after",
            [
                f"{r['load_average_before'][0]:.2f} / {r.get('load_average_after', ['?'])[0]}"
                for r in runs
            ],
        ),
        ("setup (demo, identities, bookings, workers) s", val("setup_s")),
        ("connect: wall s (connections/s)", wall("connect")),
        ("connect: per connection p50 / p99 ms", lat("connect", "connect")),
        ("join (1st participant): wall s (joins/s)", wall("join-first")),
        ("join (1st participant): ack p50 / p99 ms", lat("join-first", "join_first_ack")),
        ("join (2nd participant): wall s (joins/s)", wall("join-second")),
        ("  2nd join → 1st gets peer-joined p50 / p99 ms", lat("join-second", "peer_joined")),
        ("  2nd join → 2nd gets ack p50 / p99 ms", lat("join-second", "join_second_ack")),
        ("  peer ready (later of both) p50 / p99 ms", lat("join-second", "peer_ready")),
        ("signal: wall s (signal events/s)", wall("signal")),
        ("  offer → answer round trip p50 / p99 ms", lat("signal", "offer_answer_rtt")),
        ("  candidate one-way p50 / p99 ms", lat("signal", "candidate_one_way")),
        ("flood: wall s (relayed signals/s)", wall("flood")),
        ("  delivery (emit → peer) p50 / p99 ms", lat("flood", "flood_delivery")),
        ("  ack (emit → ack) p50 / p99 ms", lat("flood", "flood_ack")),
        ("  load generator lag p50 / p99 ms", lat("flood", "flood_lag")),
        ("disconnect: wall s", wall("disconnect")),
        ("server RSS before connecting MiB", val("rss_before_connect_mib", "memory")),
        ("server RSS all connected MiB", val("rss_after_connect_mib", "memory")),
        ("server RSS all joined MiB", val("rss_after_join-second_mib", "memory")),
        ("server RSS after signalling MiB", val("rss_after_signal_mib", "memory")),
        (
            "server memory per connection, connected KiB",
            val("per_connection_connected_kib", "memory"),
        ),
        ("server memory per connection, joined KiB", val("per_connection_kib", "memory")),
        ("server open fds (peak)", val("server_fds_peak")),
    ]
    for phase in PHASES:
        rows.append((f"server CPU s during {phase}", val(phase, "server_cpu_s")))
    if any("second_server_cpu_s" in r for r in runs):
        for phase in PHASES:
            rows.append(
                (f"cluster: 2nd process CPU s during {phase}", val(phase, "second_server_cpu_s"))
            )
    rows += [
        ("server CPU per connection ms", cpu_each("connect")),
        (
            "server CPU per join (1st / 2nd participant) ms",
            [
                f"{a} / {b}"
                for a, b in zip(cpu_each("join-first"), cpu_each("join-second"), strict=True)
            ],
        ),
        ("server CPU per signal event ms", cpu_each("signal")),
        ("server CPU per relayed flood signal ms", cpu_each("flood")),
    ]
    rows += [
        (
            "consult-state events received by clients",
            [
                str(
                    sum(
                        p.get("counts", {}).get("consult_state_events", 0)
                        for p in r["phases"].values()
                    )
                )
                for r in runs
            ],
        ),
        (
            "  of which in phase " + "/".join(PHASES),
            [
                "/".join(
                    str(r["phases"].get(ph, {}).get("counts", {}).get("consult_state_events", 0))
                    for ph in PHASES
                )
                for r in runs
            ],
        ),
    ]
    if any("fanout" in r for r in runs):

        def fanout(name: str, phase: str = PHASES[-1], scale: float = 1.0) -> list[str]:
            out = []
            for r in runs:
                seen = r.get("fanout", {}).get(phase, {})
                pair = [seen.get(p, {}).get(name) for p in ("first", "second")]
                out.append(
                    "—"
                    if None in pair
                    else " / ".join(f"{v / scale:.0f}" for v in pair if v is not None)
                )
            return out

        rows += [
            ("cluster fan-out (1st / 2nd process), since start:", ["" for _ in runs]),
            ("  queue high-water mark, messages", fanout("high_water_messages")),
            ("  queue high-water mark, KiB", fanout("high_water_bytes", scale=1024)),
            ("  largest round trip, messages", fanout("largest_batch_messages")),
            ("  messages published", fanout("published_messages")),
            ("  dropped, queue full", fanout("dropped_full_messages")),
            ("  dropped, all causes", fanout("dropped_messages")),
            ("  consult states sent again", fanout("consults_resent")),
        ]
        rows += [
            (f"  high-water messages after {phase}", fanout("high_water_messages", phase))
            for phase in PHASES
        ]
    rows += [
        ("errors (by code below)", [str(sum(r["errors"].values())) for r in runs]),
        ("server log warnings/errors", [str(r["server_log"]["count"]) for r in runs]),
        (
            "setup: bookings retried after a 5xx",
            [str(r.get("setup_retries", {}).get("count", 0)) for r in runs],
        ),
        ("wall time of the run s", val("wall_s")),
    ]
    width = max(len(name) for name, _ in rows) + 2
    cols = [max(14, *(len(v[i]) for _, v in rows)) + 2 for i in range(len(runs))]
    header = "".ljust(width) + "".join(
        f"{r.get('server', 'teleconsult')} {r['pairs']}".rjust(c)
        for r, c in zip(runs, cols, strict=True)
    )
    lines = [
        "teleconsult signalling benchmark",
        f"machine: {report['machine']['cpus']} CPUs, Python {report['machine']['python']}; "
        f"{MACHINE_NOTE}",
        f"clients: {cfg['workers']} worker processes, python-socketio over websocket; "
        f"in flight: {cfg['in_flight'] or 'all'} consults; identities: {cfg['identities']}"
        + (
            f" ({cfg['pairs_per_county']} consults per county)"
            if cfg["identities"] == "distinct"
            else ""
        ),
        f"payloads: offer {cfg['offer_bytes']} B, answer {cfg['answer_bytes']} B, "
        f"{cfg['candidates']} candidates + end-of-candidates per side, {cfg['rounds']} "
        f"negotiation(s) per consult; flood: {cfg.get('flood_rate_per_s', 0):g} signals/s "
        f"for {cfg.get('flood_seconds', 0):g} s",
        "",
        header,
    ]
    for name, values in rows:
        lines.append(
            name.ljust(width) + "".join(v.rjust(c) for v, c in zip(values, cols, strict=True))
        )
    for r in runs:
        who = f"{r.get('server', 'teleconsult')} {r['pairs']} pairs"
        samples = [s for p in r["phases"].values() for s in p.get("error_samples", [])]
        if r.get("aborted"):
            samples.insert(0, r["aborted"])
        if r["errors"]:
            by_code = ", ".join(f"{k}={v}" for k, v in r["errors"].items())
            lines += ["", f"{who} — errors: {by_code}"]
        if samples:
            lines += [f"{who} — error samples:", *(f"  {s}" for s in samples)]
        if r.get("setup_retries"):
            lines += [
                "",
                f"{who} — bookings retried:",
                *(f"  {s}" for s in r["setup_retries"]["samples"]),
            ]
        if r["server_log"]["samples"]:
            lines += [
                "",
                f"{who} — server log:",
                *(f"  {s}" for s in r["server_log"]["samples"]),
            ]
    lines += comparison_table(report.get("comparison", []))
    lines += ["", f"total wall time: {report['wall_s']:.1f} s"]
    return "\n".join(lines)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description="Signalling benchmark: N concurrent consults through one server process.",
    )
    p.add_argument("--pairs", type=int, nargs="+", default=[200], help="consults per run")
    p.add_argument(
        "--servers",
        nargs="+",
        choices=SERVERS,
        default=list(DEFAULT_SERVERS),
        help="which servers each --pairs runs against (bare: the python-socketio anchor; "
        "cluster: two processes through Redis, pairs split across them)",
    )
    p.add_argument(
        "--baseline-tree",
        type=Path,
        metavar="DIR",
        help="the source tree the `baseline` server runs from (e.g. `git archive main`)",
    )
    p.add_argument(
        "--rate", type=float, default=400.0, help="flood: signal messages a second, all clients"
    )
    p.add_argument("--flood-seconds", type=float, default=8.0, help="flood: how long to send")
    p.add_argument(
        "--full",
        action="store_true",
        help="the issue's run: 1000 pairs (2000 clients), 1000 signals/s for 30 s "
        "(overrides --pairs, --rate and --flood-seconds)",
    )
    p.add_argument("--workers", type=int, default=2, help="client worker processes")
    p.add_argument(
        "--in-flight",
        type=int,
        default=100,
        help="consults mid-operation at once across all workers (0 = everything at once)",
    )
    p.add_argument("--rounds", type=int, default=2, help="offer/answer negotiations per consult")
    p.add_argument("--candidates", type=int, default=4, help="ICE candidates per side per round")
    p.add_argument("--identities", choices=["distinct", "shared"], default="distinct")
    p.add_argument("--pairs-per-county", type=int, default=10)
    p.add_argument("--op-timeout", type=float, default=60.0, help="seconds for any one operation")
    p.add_argument("--timeout", type=float, default=600.0, help="seconds for the whole benchmark")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    p.add_argument(
        "--keep-logs", type=Path, metavar="DIR", help="copy each run's server log into DIR"
    )
    p.add_argument(
        "--server-env",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="another setting for every teleconsult server process (repeatable), e.g. "
        "PYTHONPATH=bench/gc_probe to log garbage collections (bench/README.md)",
    )
    p.add_argument(
        "--baseline-env",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="another setting for the `baseline` / `cluster-baseline` servers only (after "
        "--server-env); with --baseline-tree set to this tree, a before / after of a setting",
    )
    p.add_argument(
        "--table-from",
        type=Path,
        metavar="FILE",
        help="run nothing; print the table of a report saved earlier with --json",
    )
    args = p.parse_args(argv)
    if args.full:
        args.pairs, args.rate, args.flood_seconds = [1000], 1000.0, 30.0
    if {"baseline", "cluster-baseline"} & set(args.servers) and args.baseline_tree is None:
        p.error("--servers baseline / cluster-baseline need --baseline-tree DIR")
    for option in ("server_env", "baseline_env"):
        pairs = {}
        for item in getattr(args, option):
            key, sep, value = item.partition("=")
            if not sep or not key:
                p.error(f"--{option.replace('_', '-')} takes KEY=VALUE, not {item!r}")
            pairs[key] = value
        setattr(args, option + "_pairs", pairs)
    if args.rate < 0 or args.flood_seconds < 0:
        p.error("--rate and --flood-seconds must not be negative")
    if min(args.pairs) < 1 or args.workers < 1 or args.rounds < 1 or args.pairs_per_county < 1:
        p.error("--pairs, --workers, --rounds and --pairs-per-county must be positive")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.table_from is not None:
        print(table(json.loads(args.table_from.read_text())))
        return 0
    started = time.perf_counter()
    deadline = time.monotonic() + args.timeout
    offer_bytes, answer_bytes = check_payloads(args.candidates)
    runs = []
    for pairs in args.pairs:
        for target in args.servers:
            if time.monotonic() > deadline - 30:
                runs.append({"server": target, "pairs": pairs, "skipped": "out of time"})
                continue
            runs.append(run_once(pairs, args, deadline, target))
    report: dict[str, Any] = {
        "benchmark": "signaling",
        "machine": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "python": platform.python_version(),
            "note": MACHINE_NOTE,
        },
        "config": {
            "workers": args.workers,
            "in_flight": args.in_flight,
            "rounds": args.rounds,
            "candidates": args.candidates,
            "identities": args.identities,
            "pairs_per_county": args.pairs_per_county,
            "op_timeout_s": args.op_timeout,
            "timeout_s": args.timeout,
            "offer_bytes": offer_bytes,
            "answer_bytes": answer_bytes,
            "servers": args.servers,
            "flood_rate_per_s": args.rate,
            "flood_seconds": args.flood_seconds,
        },
        "definitions": {
            "connect": "connect() call until the socket.io namespace is connected",
            "join_first_ack": "1st participant's join emit until its ack",
            "peer_joined": "2nd participant's join emit until the 1st receives peer-joined",
            "join_second_ack": "2nd participant's join emit until its ack (naming the 1st)",
            "peer_ready": "2nd participant's join emit until both of the above have happened",
            "offer_answer_rtt": "A's offer emit until A receives B's answer (B answers at once)",
            "candidate_one_way": "a candidate's emit until the other participant receives it",
            "per_connection_kib": "(server RSS all joined - RSS before connecting) / connections",
            "flood_delivery": "flood: a signal's emit until the other participant receives it",
            "flood_ack": "flood: a signal's emit until the sender has the server's ack",
            "flood_lag": "flood: how late the load generator emitted a message (its own lag)",
            "server_cpu_ms_each": "server process CPU (user + system, /proc/<pid>/stat) "
            "during the phase / operations",
            "ratio": "teleconsult's figure / the bare python-socketio relay's, same run "
            "(cluster: two processes' figure / one process's)",
            "cluster": "two teleconsult processes through one redis-server (REDIS_URL), exam "
            "rooms (A) on the first, specialists (B) on the second; server_cpu_s is the "
            "first's (the rooms' owner), second_server_cpu_s the second's",
        },
        "runs": [r for r in runs if "skipped" not in r],
        "comparison": compare([r for r in runs if "skipped" not in r])
        + compare([r for r in runs if "skipped" not in r], "cluster", "teleconsult")
        + compare([r for r in runs if "skipped" not in r], "teleconsult", "baseline")
        + compare([r for r in runs if "skipped" not in r], "cluster", "cluster-baseline"),
        "skipped": [r for r in runs if "skipped" in r],
        "wall_s": round(time.perf_counter() - started, 3),
    }
    if args.json:
        print(json.dumps(report, ensure_ascii=False))
    else:
        print(table(report))
    # Slow or partial runs are results, not failures; only a run that could not be set up
    # or lost its workers makes the exit status non-zero.
    return 1 if any(r.get("aborted") for r in report["runs"]) else 0


if __name__ == "__main__":
    sys.exit(main())
