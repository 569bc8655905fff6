"""Relay benchmark: what forwarding 720p video through the media relay costs, against transcoding.

Publishers → relay → subscribers, as aiortc peers in three processes (publishers, relay,
subscribers; see relay_parts/cluster.py), all on 127.0.0.1. The publishers send a synthetic
1280x720 30 fps VP8 clip (≈1.7 Mbit/s) that was encoded once and cached (relay_parts/source.py),
so they only packetize; the subscribers time and count what arrives and decode nothing
(relay_parts/peers.py). Nothing passes or fails on time.

For every `--streams N` (a stream is one published video track forwarded to one subscriber;
`--topology pairs`, the default: N consults of one publisher and one subscriber each) a fresh
set of processes connects, warms up for `--warmup` s, and then measures `--seconds` s of steady
state:

1. relay CPU: user + system CPU time of the relay process (psutil, every thread) over the
   window / wall time, in % of one core, and that divided by N;
2. with the recorder tapping every forwarded track (unless --skip-recording): the same window
   again, then once more after the recorder has finished its files; recording cost per stream
   = (CPU with recording - mean of the CPU before and after) / N;
3. latency: per frame, from the publisher handing the frame's first RTP packet to SRTP until
   that packet reaches the subscriber's receiver, for every relayed stream and for a direct
   publisher → subscriber peer connection (no relay) running at the same time; added latency
   = relay percentile - direct percentile;
4. traffic: packets, bytes, frames, loss and retransmissions seen by publishers and subscribers.

Then the same for aiortc's transcoding path (`--transcode-streams`, default 1 and 2; a 2-core
machine saturates beyond that): the relay process receives and decodes each track, hands it
to `aiortc.contrib.media.MediaRelay`, and one sender per subscriber re-encodes it.

    .venv/bin/python bench/relay.py                    # table (about 3-4 minutes)
    .venv/bin/python bench/relay.py --json             # one JSON object on stdout
    .venv/bin/python bench/relay.py --quick            # smoke run, under a minute
    .venv/bin/python bench/relay.py --table-from FILE  # table of a report saved with --json

Progress goes to stderr; bench/README.md explains the figures.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]


def _use_repo_packages() -> None:
    """Put the repository root first on sys.path, and this file's folder off it.

    Run as `python bench/relay.py`, this folder leads sys.path, and bench/signaling.py would
    shadow the `signaling` package; project modules are imported after this has run.
    """
    here = str(Path(__file__).resolve().parent)
    sys.path[:] = [p for p in sys.path if str(Path(p or os.curdir).resolve()) != here]
    if str(REPO) not in sys.path:
        sys.path.insert(0, str(REPO))


_use_repo_packages()


from bench.relay_parts.cluster import Cluster, Layout, log  # noqa: E402
from bench.relay_parts.janus import janus_available, janus_version  # noqa: E402
from bench.relay_parts.node_run import media_node_runs, media_node_table  # noqa: E402
from bench.relay_parts.profile import profile  # noqa: E402
from bench.relay_parts.report import machine_info, summary, table  # noqa: E402
from bench.relay_parts.source import ClipSpec, encoded_clip  # noqa: E402
from media.event_loop import DEFAULT_EVENT_LOOP, EVENT_LOOPS  # noqa: E402

MEDIA = ("video", "video+opus")


async def run_once(
    mode: str,
    media: str,
    streams: int,
    args: argparse.Namespace,
    clip: ClipSpec,
    record_dir: Path,
    variant: tuple[str, dict[str, str]] | None = None,
) -> dict[str, Any]:
    """One fresh set of processes, `streams` streams through the relay in `mode`, measured."""
    started = time.perf_counter()
    name = f"{mode}{'' if variant is None else ' ' + variant[0]} {media} x{streams}"
    layout = Layout(
        streams=streams, topology=args.topology, direct=not args.skip_direct, audio=media != "video"
    )
    options: dict[str, Any] = {"clip": asdict(clip)}
    if mode == "forward":
        options["event_loop"] = args.event_loop
        if variant is not None:
            env = dict(variant[1])
            options["event_loop"] = env.pop("EVENT_LOOP", args.event_loop)
            options["env"] = env
    cluster = Cluster(mode, layout, options)
    result: dict[str, Any] = {
        "mode": mode,
        "media": media,
        "streams": streams,
        "topology": args.topology,
        "event_loop": options.get("event_loop"),
        "variant": None if variant is None else variant[0],
        "variant_env": None if variant is None else variant[1],
        "load_average_before": [round(x, 2) for x in os.getloadavg()],
    }
    try:
        log(f"{name}: starting relay, publisher and subscriber processes")
        await cluster.start(limit_s=60)
        result["pids"] = {r: c.process.pid for r, c in cluster.children.items()}
        result["measured_process"] = cluster.children["relay"].measured
        connect_started = time.perf_counter()
        await asyncio.wait_for(cluster.connect(), 60)
        result["flowing"] = await cluster.wait_flowing(limit_s=30)
        result["connect_s"] = round(time.perf_counter() - connect_started, 2)
        log(f"{name}: media flowing after {result['connect_s']}s; warming up {args.warmup}s")
        await asyncio.sleep(args.warmup)
        log(f"{name}: measuring {args.seconds}s")
        result["plain"] = await cluster.window(args.seconds)
        log(f"{name}: relay CPU {result['plain']['cpu_pct_of_one_core']['relay']}% of a core")
        if args.profile and mode == "forward" and variant is None:
            log(f"{name}: profiling the relay for {args.seconds}s (py-spy)")
            result["profile"] = await profile(result["pids"]["relay"], args.seconds)
        if mode == "forward" and media == "video" and variant is None and not args.skip_recording:
            directory = record_dir / f"{mode}-{streams}"
            directory.mkdir(parents=True)
            result["recording_started"] = await cluster.call(
                "relay", "start_recording", directory=str(directory)
            )
            await asyncio.sleep(args.settle)
            log(f"{name}: measuring {args.seconds}s with the recorder on every stream")
            result["recording"] = await cluster.window(args.seconds)
            finish_started = time.perf_counter()
            result["recording_finished"] = await cluster.call("relay", "stop_recording", limit_s=60)
            result["recording_finished"]["finish_wall_s"] = round(
                time.perf_counter() - finish_started, 3
            )
            log(
                f"{name}: relay CPU with recording "
                f"{result['recording']['cpu_pct_of_one_core']['relay']}% of a core; "
                f"measuring {args.seconds}s without again"
            )
            await asyncio.sleep(args.settle)
            result["after"] = await cluster.window(args.seconds)
        result["final"] = await cluster.stop()
    except asyncio.CancelledError:
        # Ctrl-C or SIGTERM: report what was measured; run_all starts nothing more.
        result["aborted"] = result["interrupted"] = "interrupted"
        log(f"{name}: interrupted")
    except Exception as exc:
        result["aborted"] = f"{type(exc).__name__}: {exc}"[:2000]
        log(f"{name}: aborted: {result['aborted']}")
    finally:
        cluster.kill()
        result["problems"] = cluster.problems
        result["subscribe_negotiations"] = cluster.negotiations
        result["wall_s"] = round(time.perf_counter() - started, 2)
    return result


async def run_all(args: argparse.Namespace, clip: ClipSpec) -> list[dict[str, Any]]:
    task = asyncio.current_task()
    assert task is not None
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, task.cancel)
    record_dir = Path(tempfile.mkdtemp(prefix="teleconsult-bench-relay-"))
    deadline = time.monotonic() + args.timeout
    janus_missing = None if args.skip_janus else janus_available()
    if janus_missing is not None:
        log(f"Janus anchor skipped: {janus_missing}")
    # The relay and Janus alternate at each (media, streams): a change in the machine's load
    # during the run moves both sides of a ratio alike.
    variants = dict(args.variant or [])
    plan: list[tuple[str, str, int]] = []
    for media in args.media:
        for n in args.streams:
            plan.append(("forward", media, n))
            plan += [(f"variant:{v}", media, n) for v in variants]
            if not args.skip_janus:
                plan.append(("janus", media, n))
    if not args.skip_transcode:
        plan += [("transcode", "video", n) for n in args.transcode_streams]
    runs: list[dict[str, Any]] = []
    try:
        for mode, media, streams in plan:
            skip = {"mode": mode, "media": media, "streams": streams}
            if mode == "janus" and janus_missing is not None:
                runs.append({**skip, "skipped": janus_missing})
                continue
            if time.monotonic() > deadline:
                runs.append({**skip, "skipped": "out of time"})
                continue
            if runs and runs[-1].get("interrupted"):
                runs.append({**skip, "skipped": "interrupted"})
                continue
            if mode.startswith("variant:"):
                label = mode.split(":", 1)[1]
                runs.append(
                    await run_once(
                        "forward", media, streams, args, clip, record_dir, (label, variants[label])
                    )
                )
            else:
                runs.append(await run_once(mode, media, streams, args, clip, record_dir))
    finally:
        shutil.rmtree(record_dir, ignore_errors=True)
    return runs


def _variant(text: str) -> tuple[str, dict[str, str]]:
    name, _, settings = text.partition(":")
    env = dict(item.split("=", 1) for item in settings.split(",") if "=" in item)
    if not name or not env:
        raise argparse.ArgumentTypeError(f"expected NAME:KEY=VALUE[,KEY=VALUE], not {text!r}")
    return name, env


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description="Relay benchmark: forwarding vs transcoding 720p video, CPU and latency."
    )
    p.add_argument("--streams", type=int, nargs="+", default=[1, 4, 8], help="forwarded streams")
    p.add_argument(
        "--transcode-streams",
        type=int,
        nargs="+",
        default=[1, 2],
        help="streams through the transcoding relay (each costs about half a core)",
    )
    p.add_argument("--seconds", type=float, default=10.0, help="length of a measured window")
    p.add_argument("--warmup", type=float, default=5.0, help="seconds of media before measuring")
    p.add_argument(
        "--settle",
        type=float,
        default=3.0,
        help="seconds between starting the recorder and measuring",
    )
    p.add_argument("--topology", choices=["pairs", "fanout"], default="pairs")
    p.add_argument(
        "--media",
        choices=MEDIA,
        nargs="+",
        default=list(MEDIA),
        help="what each publisher sends: 720p VP8 video, or the video and a 32 kbit/s Opus track",
    )
    p.add_argument(
        "--event-loop",
        choices=EVENT_LOOPS,
        default=DEFAULT_EVENT_LOOP,
        help="the relay process's event loop (the server's EVENT_LOOP setting)",
    )
    p.add_argument("--skip-janus", action="store_true", help="no Janus VideoRoom runs (the anchor)")
    p.add_argument(
        "--variant",
        type=_variant,
        action="append",
        metavar="NAME:KEY=VALUE[,KEY=VALUE]",
        help="also run the relay with these settings at every (media, streams), right after "
        "the default one, e.g. queue:TELECONSULT_RTP_DIRECT=0 or asyncio:EVENT_LOOP=asyncio",
    )
    p.add_argument(
        "--profile",
        action="store_true",
        help="sample the relay with py-spy for one more window per run; print the top frames",
    )
    p.add_argument("--skip-transcode", action="store_true", help="no transcoding runs")
    p.add_argument(
        "--media-node-streams",
        type=int,
        nargs="+",
        default=[1, 2],
        help="relayed consults through a `teleconsult media-node` process of its own, behind "
        "`teleconsult serve` with MEDIA_NODES=redis (its CPU per stream)",
    )
    p.add_argument(
        "--skip-media-node", action="store_true", help="no run through a media node process"
    )
    p.add_argument(
        "--media-node-only",
        action="store_true",
        help="only the media node runs (no forward, Janus or transcoding runs)",
    )
    p.add_argument("--skip-recording", action="store_true", help="no recording window")
    p.add_argument("--skip-direct", action="store_true", help="no direct leg (no added latency)")
    p.add_argument(
        "--quick",
        action="store_true",
        help="smoke run: --streams 1 2 --transcode-streams 1 --seconds 3 --warmup 2 --settle 1 "
        "--media video",
    )
    p.add_argument("--timeout", type=float, default=1200.0, help="no new run starts after this")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    p.add_argument(
        "--table-from",
        type=Path,
        metavar="FILE",
        help="run nothing; print the table of a report saved earlier with --json",
    )
    args = p.parse_args(argv)
    if args.quick:
        args.streams, args.transcode_streams = [1, 2], [1]
        args.seconds, args.warmup, args.settle = 3.0, 2.0, 1.0
        args.media = ["video"]
    if args.quick:
        args.media_node_streams = [1]
    counts = args.streams + args.transcode_streams + args.media_node_streams
    if min(counts) < 1 or args.seconds <= 0:
        p.error("stream counts and --seconds must be positive")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.table_from is not None:
        saved = json.loads(args.table_from.read_text())
        print(table(saved) + media_node_table(saved.get("media_node_runs", [])))
        return 0
    started = time.perf_counter()
    spec = ClipSpec()
    log("preparing the pre-encoded 720p VP8 clip")
    clip = encoded_clip(spec)
    log(
        f"clip: {len(clip.frames)} frames, {clip.bitrate / 1e6:.2f} Mbit/s, "
        + (f"encoded in {clip.encode_s:.1f}s" if clip.encoded_now else f"cached in {clip.path}")
    )
    runs = [] if args.media_node_only else asyncio.run(run_all(args, spec))
    node_runs = [] if args.skip_media_node else asyncio.run(media_node_runs(args, spec))
    report: dict[str, Any] = {
        "benchmark": "relay",
        **summary(runs),
        "machine": machine_info(),
        "config": {
            "streams": args.streams,
            "transcode_streams": [] if args.skip_transcode else args.transcode_streams,
            "topology": args.topology,
            "media": args.media,
            "event_loop": args.event_loop,
            "janus": None if args.skip_janus else (janus_version() or "not installed"),
            "profile": args.profile,
            "variants": dict(args.variant or []),
            "window_s": args.seconds,
            "warmup_s": args.warmup,
            "recording_settle_s": args.settle,
            "recording": not args.skip_recording,
            "direct_leg": not args.skip_direct,
            "quick": args.quick,
        },
        "clip": clip.summary(),
        "runs": [r for r in runs if "skipped" not in r],
        "skipped": [r for r in runs if "skipped" in r],
        "media_node_runs": node_runs,
        "wall_s": round(time.perf_counter() - started, 2),
    }
    if args.json:
        print(json.dumps(report, ensure_ascii=False))
    else:
        print(table(report) + media_node_table(node_runs))
    aborted = any(r.get("aborted") for r in runs + node_runs)
    return 1 if not (runs or node_runs) or aborted else 0


if __name__ == "__main__":
    sys.exit(main())
