"""Training broadcast benchmark: what packaging and serving one lecturer to many trainees costs.

Two parts, nothing passes or fails on time:

1. **Packaging** (in this process): 60 s of 1280x720 30 fps H.264 (libx264, encoded first and
   not counted) fed frame by frame to `media.broadcast.hls.HlsPackager`, the stream copy the
   server does for each stream of a training. Reported: CPU seconds per media second (% of one
   core), per frame, and the output's bit rate.
2. **Live** (a real `teleconsult serve` on a free loopback port): an aiortc lecturer publishes
   1280x720 30 fps video (aiortc encodes H.264) + Opus over WebRTC; after `--warmup` s,
   `--viewers` simulated trainees play the camera stream as hls.js does without low-latency
   mode: blocking playlist reload for the next segment (`_HLS_msn`), then every new segment,
   for `--seconds` s, once per load generator (`--generator new old`: `new` is
   `bench/training_viewers.py`, raw protocols on uvloop; `old` is aiohttp's client in
   `--workers` processes), each generator's own CPU reported beside the server's with the load
   average. One more viewer follows the low-latency parts (`_HLS_msn` + `_HLS_part`).
   `--server-tree DIR` repeats the live part against a server from another source tree.
   Reported: server CPU (psutil, every thread)
   before the viewers and with them, and the difference per 100 viewers; segment delivery
   (request to last byte) p50/p99 against the segment duration; failed requests; latency:
   capture → segment in a viewer's hands, and capture → part in the LL viewer's hands, from
   `EXT-X-PROGRAM-DATE-TIME` (the server's clock at the segment's first frame, which on
   loopback is the capture time plus a few milliseconds) — a player adds its hold-back
   (`PART-HOLD-BACK` 1.5 s for LL-HLS, three segments for plain HLS) on top.

    .venv/bin/python bench/training.py                 # 1 000 viewers, 30 s (~4 minutes)
    .venv/bin/python bench/training.py --quick         # 50 viewers, 10 s
    .venv/bin/python bench/training.py --json          # one JSON object on stdout
"""

from __future__ import annotations

import argparse
import asyncio
import fractions
import json
import os
import re
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import av
import psutil

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from aiortc import (
    RTCBundlePolicy,
    RTCConfiguration,
    RTCPeerConnection,
    RTCSessionDescription,
)
from aiortc.mediastreams import AudioStreamTrack, MediaStreamTrack

from bench.training_viewers import ViewerFigures, when
from media.broadcast.hls import HlsPackager
from tests.support.h264 import h264_frames
from tests.support.server import RunningServer


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


# ---- 1. packaging -------------------------------------------------------------------------


def packaging(seconds: int) -> dict[str, Any]:
    log(f"packaging: encoding {seconds} s of 1280x720 30 fps H.264 first (not timed)")
    frames = list(h264_frames(seconds, size=(1280, 720), keyframe_every_s=2.0))
    with tempfile.TemporaryDirectory() as directory:
        packager = HlsPackager(Path(directory), (1280, 720), clock=lambda: datetime.now(UTC))
        started = time.process_time()
        for frame in frames:
            packager.add(*frame)
        packager.close()
        cpu = time.process_time() - started
        written = sum(p.stat().st_size for p in Path(directory).glob("s*.m4s"))
    return {
        "media_seconds": seconds,
        "frames": len(frames),
        "cpu_seconds": round(cpu, 4),
        "percent_of_a_core": round(100 * cpu / seconds, 3),
        "microseconds_per_frame": round(1e6 * cpu / len(frames), 1),
        "segments": len(packager.segments),
        "output_kbit_per_s": round(written * 8 / seconds / 1000, 1),
    }


# ---- 2. live ------------------------------------------------------------------------------


class Lecture720p(MediaStreamTrack):
    """A 1280x720 30 fps H.264 clip (libx264, a key frame every 2 s, encoded once before the
    run), sent as encoded packets in real time and looped: aiortc only packetizes them, so the
    lecturer costs this machine little and keeps real time."""

    kind = "video"

    def __init__(self, frames: list[tuple[bytes, int, bool]]) -> None:
        super().__init__()
        self._frames = frames
        self._count = 0
        self._start: float | None = None

    async def recv(self) -> av.Packet:
        if self._start is None:
            self._start = time.monotonic()
        due = self._start + self._count / 30
        await asyncio.sleep(max(0.0, due - time.monotonic()))
        data, _pts, _key = self._frames[self._count % len(self._frames)]
        packet = av.Packet(data)
        packet.pts = self._count * 3000
        packet.time_base = fractions.Fraction(1, 90_000)
        self._count += 1
        return packet


SEGMENT = re.compile(
    r"#EXT-X-PROGRAM-DATE-TIME:(\S+)\n(?:#EXT-X-PART:[^\n]*\n)*#EXTINF:([0-9.]+),\n(s(\d+)\.m4s)"
)
PART = re.compile(r'#EXT-X-PART:DURATION=([0-9.]+),URI="s(\d+)\.(\d+)\.m4s"')
PDT = re.compile(r"#EXT-X-PROGRAM-DATE-TIME:(\S+)")


@dataclass
class Figures(ViewerFigures):
    """What the viewers measured, with the low-latency viewer's parts."""

    capture_to_part_s: list[float] = field(default_factory=list)


async def viewer(http: aiohttp.ClientSession, base: str, figures: Figures, until: float) -> None:
    """hls.js without low-latency mode: the playlist for the next segment, then the segment."""
    last = -1
    while time.monotonic() < until:
        query = f"?_HLS_msn={last + 1}" if last >= 0 else ""
        try:
            async with http.get(f"{base}live.m3u8{query}") as reply:
                text = await reply.text()
                if reply.status != 200:
                    figures.fail(f"playlist {reply.status}")
                    await asyncio.sleep(1)
                    continue
            figures.playlists += 1
            for pdt, _duration, uri, number in SEGMENT.findall(text):
                if int(number) <= last:
                    continue
                if last < 0 and int(number) < int(SEGMENT.findall(text)[-1][3]):
                    continue  # a new viewer starts at the newest segment
                started = time.monotonic()
                async with http.get(base + uri) as reply:
                    body = await reply.read()
                    if reply.status != 200:
                        figures.fail(f"segment {reply.status}")
                        continue
                done = time.time()
                figures.delivery_s.append(time.monotonic() - started)
                figures.capture_to_segment_s.append(done - when(pdt))
                figures.segment_bytes.append(len(body))
                figures.segments += 1
                last = int(number)
        except (aiohttp.ClientError, TimeoutError) as exc:
            figures.fail(type(exc).__name__)
            await asyncio.sleep(0.5)


async def ll_viewer(http: aiohttp.ClientSession, base: str, figures: Figures, until: float) -> None:
    """hls.js in low-latency mode, simplified: each next part, as soon as it exists."""
    async with http.get(f"{base}live.m3u8") as reply:
        text = await reply.text()
    parts = PART.findall(text)
    msn, part = (int(parts[-1][1]), int(parts[-1][2]) + 1) if parts else (0, 0)
    while time.monotonic() < until:
        async with http.get(f"{base}live.m3u8?_HLS_msn={msn}&_HLS_part={part}") as reply:
            text = await reply.text()
        listed = {(int(m), int(p)): float(d) for d, m, p in PART.findall(text)}
        if (msn, part) not in listed:
            if (msn + 1, 0) in listed:
                msn, part = msn + 1, 0
            continue
        # the segment's PROGRAM-DATE-TIME and the parts before this one give its capture time
        block = text[text.rfind("#EXT-X-PROGRAM-DATE-TIME", 0, text.find(f'"s{msn}.{part}.m4s"')) :]
        start = when(PDT.search(block)[1])  # type: ignore[index]
        offset = sum(listed[(msn, p)] for p in range(part))
        async with http.get(f"{base}s{msn}.{part}.m4s") as reply:
            await reply.read()
            if reply.status != 200:
                figures.fail(f"part {reply.status}")
        figures.capture_to_part_s.append(time.time() - (start + offset))
        part += 1


async def _play(
    base: str, viewers: int, start_at: float, seconds: float, low_latency: bool
) -> tuple[Figures, float]:
    figures = Figures()
    connector = aiohttp.TCPConnector(limit=0)
    timeout = aiohttp.ClientTimeout(total=30)
    await asyncio.sleep(max(0.0, start_at - time.time()))
    cpu_before = time.process_time()
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as http:
        until = time.monotonic() + seconds
        if low_latency:
            await ll_viewer(http, base, figures, until)
        else:
            await asyncio.gather(*(viewer(http, base, figures, until) for _ in range(viewers)))
    return figures, time.process_time() - cpu_before


def _worker(base: str, viewers: int, seconds: float, low_latency: bool, channel: Any) -> None:
    """One load-generating process of the old generator (aiohttp's client): its viewers, its
    figures and its CPU seconds over the viewing sent back as a dict."""
    channel.send("ready")
    start_at = channel.recv()
    figures, cpu = asyncio.run(_play(base, viewers, start_at, seconds, low_latency))
    channel.send({**figures.__dict__, "generator_cpu_s": cpu})
    channel.close()


START_MARGIN_S = 1.0
"""Once every load process is up (imports done), they all begin playing this much later."""

GENERATORS = ("new", "old")
"""`new`: `bench/training_viewers.py` (raw protocols on uvloop, one reused receive buffer, one
playlist parse per version per process); `old`: aiohttp's client, as before."""


def run_viewers(
    base: str,
    viewers: int,
    seconds: float,
    workers: int,
    generator: str,
    starting: Callable[[float], None],
) -> tuple[Figures, dict[str, float]]:
    """`viewers` spread over `workers` processes of `generator`, and the low-latency viewer
    (aiohttp, both generators) in one more, all starting to play at the same moment once every
    process is up (told to `starting` as a `time.time()`); their figures merged, and the CPU
    seconds of the viewers' processes while they played (`viewers`) and of the LL viewer's
    (`ll_viewer`)."""
    import multiprocessing

    from bench import training_viewers

    context = multiprocessing.get_context("spawn")
    jobs = []
    shares = [viewers // workers + (1 if i < viewers % workers else 0) for i in range(workers)]
    for share, low_latency in [*((n, False) for n in shares if n), (1, True)]:
        mine, theirs = context.Pipe()
        if generator == "new" and not low_latency:
            target: Any = training_viewers.worker
            arguments: tuple[Any, ...] = (base, share, seconds, theirs)
        else:
            target, arguments = _worker, (base, share, seconds, low_latency, theirs)
        process = context.Process(target=target, args=arguments)
        process.start()
        jobs.append((process, mine, low_latency))
    for _, channel, _ in jobs:
        if channel.recv() != "ready":
            raise RuntimeError("a load process did not start")
    start_at = time.time() + START_MARGIN_S
    for _, channel, _ in jobs:
        channel.send(start_at)
    starting(start_at)
    merged = Figures()
    cpu = {"viewers": 0.0, "ll_viewer": 0.0, "playlist_parses": 0.0}
    for process, channel, low_latency in jobs:
        part = channel.recv()
        process.join()
        cpu["ll_viewer" if low_latency else "viewers"] += part.pop("generator_cpu_s")
        cpu["playlist_parses"] += part.pop("playlist_parses", 0)
        for name, value in part.items():
            mine = getattr(merged, name)
            if isinstance(mine, list):
                mine.extend(value)
            elif isinstance(mine, dict):
                for key, count in value.items():
                    mine[key] = mine.get(key, 0) + count
            else:
                setattr(merged, name, mine + value)
    return merged, cpu


def _established(process: psutil.Process) -> int:
    connections = process.net_connections(kind="tcp")
    return sum(1 for c in connections if c.status == psutil.CONN_ESTABLISHED)


async def _viewers_gone(process: psutil.Process, baseline: int, within_s: float) -> None:
    """Wait (polling, at most `within_s`) until the server holds no more connections than it
    did before any viewer came, so that the next generator starts on an idle server; say so
    if it does not."""
    for _ in range(int(within_s / 0.2)):
        if _established(process) <= baseline:
            return
        await asyncio.sleep(0.2)
    still_open = _established(process) - baseline
    log(f"live: {still_open} viewer connections still open after {within_s} s")


def cpu_of(process: psutil.Process) -> float:
    times = process.cpu_times()
    return float(times.user + times.system)


async def live(
    viewers: int,
    seconds: float,
    warmup: float,
    workers: dict[str, int],
    generators: list[str],
    tree: Path | None = None,
) -> dict[str, Any]:
    """The live part against a server run from this source tree, or from `tree`."""
    clip = list(h264_frames(10, size=(1280, 720), keyframe_every_s=2.0))
    server = RunningServer(env_overrides={"LOGIN_ATTEMPTS_PER_MINUTE": "10000"})
    if tree is not None:
        server.tree = tree
    server.start()
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[], bundlePolicy=RTCBundlePolicy.MAX_BUNDLE))
    try:
        assert server.process is not None
        process = psutil.Process(server.process.pid)
        now = datetime.now(UTC)
        admin = server.request("GET", "/api/me", token=server.token("admin")).body
        lecturer = server.request("GET", "/api/me", token=server.token("obstetrician")).body
        made = server.request(
            "POST",
            "/api/trainings",
            {
                "title": "bench",
                "lecturer_ids": [lecturer["id"]],
                "starts_at": now.isoformat(),
                "ends_at": (now + timedelta(hours=1)).isoformat(),
                "audience": {"kind": "subtree", "institution_ids": [admin["institution_id"]]},
            },
            token=server.token("admin"),
        ).body
        named = [
            (pc.addTransceiver(Lecture720p(clip), direction="sendonly"), "camera"),
            (pc.addTransceiver(AudioStreamTrack(), direction="sendonly"), "microphone"),
        ]
        await pc.setLocalDescription(await pc.createOffer())
        answer = server.request(
            "POST",
            f"/api/trainings/{made['id']}/broadcast",
            {
                "description": {"type": "offer", "sdp": pc.localDescription.sdp},
                "sources": {t.mid: s for t, s in named},
            },
            token=server.token("obstetrician"),
        ).body
        await pc.setRemoteDescription(RTCSessionDescription(answer["description"]["sdp"], "answer"))
        admission = server.request(
            "POST", f"/api/trainings/{made['id']}/admission", token=server.token("admin")
        ).body
        base = f"{server.url}{admission['viewer_url']}camera/"
        log(f"live: lecturer publishing; warming up {warmup} s")
        await asyncio.sleep(warmup)
        before = cpu_of(process)
        idle_started = time.monotonic()
        await asyncio.sleep(5)
        idle_cpu = (cpu_of(process) - before) / (time.monotonic() - idle_started)
        log(f"live: server {100 * idle_cpu:.1f} % of a core with no viewer")
        runs: dict[str, Any] = {}
        baseline = _established(process)
        for generator in generators:
            log(
                f"live: {viewers} viewers for {seconds} s, generator {generator} in "
                f"{workers[generator]} processes (load average {os.getloadavg()[0]:.2f})"
            )
            runs[generator] = await _viewing(
                process, base, viewers, seconds, workers[generator], generator, idle_cpu
            )
            log(f"live: {generator}: {_summary(runs[generator])}")
            await _viewers_gone(process, baseline, within_s=30)
        return {
            "server_tree": str(tree or "this tree"),
            "viewers": viewers,
            "server_cpu_percent_no_viewers": round(100 * idle_cpu, 1),
            "generators": runs,
        }
    finally:
        await pc.close()
        server.cleanup()


async def _viewing(
    process: psutil.Process,
    base: str,
    viewers: int,
    seconds: float,
    workers: int,
    generator: str,
    idle_cpu: float,
) -> dict[str, Any]:
    """One generator's viewers against the live broadcast: the server's figures and its own."""
    load_before = os.getloadavg()[0]
    loop = asyncio.get_running_loop()
    started: asyncio.Future[float] = loop.create_future()

    def starting(at: float) -> None:
        loop.call_soon_threadsafe(started.set_result, at)

    playing = asyncio.create_task(
        asyncio.to_thread(run_viewers, base, viewers, seconds, workers, generator, starting)
    )
    # the server's CPU while the viewers play (not while their processes start)
    start_at = await started
    await asyncio.sleep(max(0.0, start_at - time.time()))
    before = cpu_of(process)
    started = time.monotonic()
    await asyncio.sleep(seconds)
    elapsed = time.monotonic() - started
    busy_cpu = (cpu_of(process) - before) / elapsed
    figures, generator_cpu = await playing
    segment_s = 2.0
    return {
        "generator": generator,
        "load_processes": workers,
        "seconds": round(elapsed, 1),
        "load_average_1min_before": round(load_before, 2),
        "load_average_1min_after": round(os.getloadavg()[0], 2),
        "server_cpu_percent_with_viewers": round(100 * busy_cpu, 1),
        "server_cpu_percent_per_100_viewers": round(100 * (busy_cpu - idle_cpu) / viewers * 100, 2),
        "generator_cpu_percent": round(100 * generator_cpu["viewers"] / elapsed, 1),
        "generator_cpu_percent_per_100_viewers": round(
            100 * generator_cpu["viewers"] / elapsed / viewers * 100, 2
        ),
        "server_cpu_us_per_segment": round(1e6 * busy_cpu * elapsed / figures.segments)
        if figures.segments
        else None,
        "generator_cpu_us_per_segment": round(1e6 * generator_cpu["viewers"] / figures.segments)
        if figures.segments
        else None,
        "ll_viewer_cpu_percent": round(100 * generator_cpu["ll_viewer"] / elapsed, 1),
        "playlist_parses": int(generator_cpu["playlist_parses"]) if generator == "new" else None,
        "segments_delivered": figures.segments,
        "segments_expected": round(viewers * (seconds / segment_s + 1)),
        "playlists_delivered": figures.playlists,
        "segment_kbytes_mean": round(statistics.fmean(figures.segment_bytes) / 1000, 1)
        if figures.segment_bytes
        else None,
        "delivery_ms_p50": _ms(percentile(figures.delivery_s, 50)),
        "delivery_ms_p99": _ms(percentile(figures.delivery_s, 99)),
        "segment_duration_ms": segment_s * 1000,
        "capture_to_segment_ms_p50": _ms(percentile(figures.capture_to_segment_s, 50)),
        "capture_to_segment_ms_p99": _ms(percentile(figures.capture_to_segment_s, 99)),
        "capture_to_part_ms_p50": _ms(percentile(figures.capture_to_part_s, 50)),
        "capture_to_part_ms_p99": _ms(percentile(figures.capture_to_part_s, 99)),
        "failed_requests": figures.failed,
        "failures": figures.errors,
    }


def _summary(run: dict[str, Any]) -> str:
    return (
        f"server {run['server_cpu_percent_with_viewers']} %, generator "
        f"{run['generator_cpu_percent']} %, {run['segments_delivered']} segments, delivery "
        f"p50/p99 {run['delivery_ms_p50']}/{run['delivery_ms_p99']} ms, "
        f"{run['failed_requests']} failed, load {run['load_average_1min_after']}"
    )


def _ms(value: float | None) -> float | None:
    return None if value is None else round(1000 * value, 1)


def table(report: dict[str, Any]) -> str:
    p = report["packaging"]
    lines = [
        f"packaging (stream copy, 720p30): {p['percent_of_a_core']} % of a core, "
        f"{p['microseconds_per_frame']} µs/frame, {p['output_kbit_per_s']} kbit/s out"
    ]
    for key in ("live", "live_server_tree"):
        if key in report:
            lines += ["", f"server from {report[key]['server_tree']}:", live_table(report[key])]
    return "\n".join(lines)


def live_table(v: dict[str, Any]) -> str:
    runs = list(v["generators"].values())
    head = [
        (
            "server CPU, no viewer",
            f"{v['server_cpu_percent_no_viewers']} % of a core (WebRTC in + packaging)",
        ),
    ]
    rows: list[tuple[str, Callable[[dict[str, Any]], str]]] = [
        ("viewers", lambda r: f"{v['viewers']} in {r['load_processes']} proc., {r['seconds']} s"),
        (
            "load average (1 min) before / after",
            lambda r: f"{r['load_average_1min_before']} / {r['load_average_1min_after']}",
        ),
        ("server CPU, with viewers", lambda r: f"{r['server_cpu_percent_with_viewers']} %"),
        ("server CPU per 100 viewers", lambda r: f"{r['server_cpu_percent_per_100_viewers']} %"),
        ("generator CPU, all its viewers", lambda r: f"{r['generator_cpu_percent']} %"),
        (
            "generator CPU per 100 viewers",
            lambda r: f"{r['generator_cpu_percent_per_100_viewers']} %",
        ),
        (
            "CPU per segment delivered (+ its playlist): server / generator",
            lambda r: (
                f"{r.get('server_cpu_us_per_segment')} / {r.get('generator_cpu_us_per_segment')} µs"
            ),
        ),
        (
            "segments delivered (of ~expected)",
            lambda r: f"{r['segments_delivered']} (~{r['segments_expected']})",
        ),
        ("segment size", lambda r: f"{r['segment_kbytes_mean']} kB"),
        ("playlists delivered", lambda r: f"{r['playlists_delivered']}"),
        (
            "segment delivery p50 / p99",
            lambda r: f"{r['delivery_ms_p50']} / {r['delivery_ms_p99']} ms",
        ),
        (
            "capture → segment fetched p50 / p99",
            lambda r: f"{r['capture_to_segment_ms_p50']} / {r['capture_to_segment_ms_p99']} ms",
        ),
        (
            "capture → LL part fetched p50 / p99",
            lambda r: f"{r['capture_to_part_ms_p50']} / {r['capture_to_part_ms_p99']} ms",
        ),
        ("failed requests", lambda r: f"{r['failed_requests']} {r['failures'] or ''}".strip()),
    ]
    width = max(len(name) for name, _ in [*head, *rows])
    lines = [f"{name:<{width}}  {value}" for name, value in head]
    cells = [[show(r) for r in runs] for _, show in rows]
    column = max(
        [len(f"generator {r['generator']}") for r in runs] + [len(c) for row in cells for c in row]
    )
    lines.append(
        f"{'':<{width}}  " + "  ".join(f"{'generator ' + r['generator']:<{column}}" for r in runs)
    )
    for (name, _), values in zip(rows, cells, strict=True):
        lines.append(f"{name:<{width}}  " + "  ".join(f"{c:<{column}}" for c in values))
    lines.append(
        f"(segment duration {runs[0]['segment_duration_ms']:.0f} ms; CPU in % of one core)"
    )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--viewers", type=int, default=1000)
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--warmup", type=float, default=6)
    parser.add_argument("--packaging-seconds", type=int, default=60)
    parser.add_argument(
        "--generator",
        nargs="+",
        choices=GENERATORS,
        default=list(GENERATORS),
        help="load generators, run one after the other against the same broadcast "
        "(default: new old)",
    )
    parser.add_argument(
        "--workers", type=int, default=4, help="processes the old generator's viewers run in"
    )
    parser.add_argument(
        "--new-workers", type=int, default=1, help="processes the new generator's viewers run in"
    )
    parser.add_argument(
        "--server-tree",
        type=Path,
        help="the live part again against a server run from this source tree (before / after in "
        "one run, e.g. `git archive main | tar -x -C DIR`)",
    )
    parser.add_argument("--quick", action="store_true", help="50 viewers, 10 s, 20 s packaged")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    if args.quick:
        args.viewers, args.seconds, args.packaging_seconds = 50, 10, 20

    def watched(tree: Path | None = None) -> dict[str, Any]:
        workers = {"old": args.workers, "new": args.new_workers}
        return asyncio.run(
            live(args.viewers, args.seconds, args.warmup, workers, args.generator, tree=tree)
        )

    report = {
        "packaging": packaging(args.packaging_seconds),
        "live": watched(),
        "machine": {"cpus": psutil.cpu_count(), "python": sys.version.split()[0]},
    }
    if args.server_tree is not None:
        report["live_server_tree"] = watched(args.server_tree.resolve())
    print(json.dumps(report, indent=2) if args.json else table(report))


if __name__ == "__main__":
    main()
