"""The relay as a media node of its own: `teleconsult media-node`, reached through Redis.

One run per `--media-node-streams N`: a redis-server, a `teleconsult serve` with
`MEDIA_NODES=redis` and one `teleconsult media-node` on a shared temporary data directory
(tests/support: `RedisServer`, `RunningServer`, `RunningMediaNode`), then N relayed consults
through the server (`served.ServedRelay`: an exam room publishing the 720p VP8 clip, a
specialist receiving it; the peers in child processes). After `--warmup` seconds, one window of
`--seconds`: user + system CPU time of the media node process and of the signaling process
(psutil, every thread), in % of one core and per stream, and the first consult's forwarding
latency. The signaling process carries no media, so its CPU is what the Redis hop costs it.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import time
from typing import Any

import psutil  # type: ignore[import-untyped]  # no stubs in the dev dependencies

from bench.relay_parts.cluster import log
from bench.relay_parts.served import ServedRelay
from bench.relay_parts.source import ClipSpec
from tests.support.media_node import RunningMediaNode
from tests.support.redis import RedisServer
from tests.support.server import RunningServer

PAIRS = (("doctor.a", "obstetrician"), ("doctor.b", "obstetrician2"))
"""Who books the consults (in turn); one person may be in several consults at once."""


def _cpu(process: psutil.Process) -> float:
    times = process.cpu_times()
    return float(times.user + times.system)


async def run_node(streams: int, args: argparse.Namespace, clip: ClipSpec) -> dict[str, Any]:
    started = time.perf_counter()
    result: dict[str, Any] = {"streams": streams}
    relays: list[ServedRelay] = []
    with RedisServer() as redis:
        server = RunningServer(
            env_overrides={
                "MEDIA_NODES": "redis",
                "REDIS_URL": redis.url,
                "EVENT_LOOP": args.event_loop,
                "JOINS_PER_MINUTE": "10000",
                "LOGIN_ATTEMPTS_PER_MINUTE": "10000",
            }
        )
        base = random.randrange(30000, 59000, 200)
        node = RunningMediaNode("bench-node", server.data_dir, redis.url, base, base + 199)
        try:
            server.start()
            node.start()
            assert node.process is not None and server.process is not None
            result["pids"] = {"media_node": node.process.pid, "signaling": server.process.pid}
            for i in range(streams):
                exam_room, specialist = PAIRS[i % len(PAIRS)]
                consult = server.book(username=exam_room, specialist=specialist)
                relay = ServedRelay(
                    server.url,
                    consult["id"],
                    (server.token(exam_room), server.token(specialist)),
                    clip,
                )
                relays.append(relay)
                await relay.start()
            log(f"media node x{streams}: video flowing in every consult; warming up")
            await asyncio.sleep(args.warmup)
            node_ps = psutil.Process(node.process.pid)
            server_ps = psutil.Process(server.process.pid)
            before = (_cpu(node_ps), _cpu(server_ps), time.perf_counter())
            window_start = time.time()
            counters_before = [await r.counters() for r in relays]
            await asyncio.sleep(args.seconds)
            after = (_cpu(node_ps), _cpu(server_ps), time.perf_counter())
            counters_after = [await r.counters() for r in relays]
            wall = after[2] - before[2]
            node_pct = 100 * (after[0] - before[0]) / wall
            server_pct = 100 * (after[1] - before[1]) / wall
            result["cpu_pct_of_one_core"] = {
                "media_node": round(node_pct, 1),
                "signaling": round(server_pct, 1),
            }
            result["cpu_pct_per_stream"] = {
                "media_node": round(node_pct / streams, 2),
                "signaling": round(server_pct / streams, 2),
            }
            result["latency_ms_first_consult"] = await relays[0].window(
                window_start, window_start + args.seconds
            )
            result["frames_received"] = sum(
                a["received"]["frames_complete"] - b["received"]["frames_complete"]
                for a, b in zip(counters_after, counters_before, strict=True)
                if "frames_complete" in a["received"]
            )
            result["rss_mb"] = {
                "media_node": round(node_ps.memory_info().rss / 2**20, 1),
                "signaling": round(server_ps.memory_info().rss / 2**20, 1),
            }
            log(
                f"media node x{streams}: media node {node_pct:.1f}% of a core "
                f"({node_pct / streams:.1f}% per stream), signaling {server_pct:.1f}%"
            )
        except Exception as exc:
            result["aborted"] = f"{type(exc).__name__}: {exc}"[:2000]
            log(f"media node x{streams}: aborted: {result['aborted']}")
        finally:
            for relay in relays:
                await relay.close()
            result["problems"] = [p for r in relays for p in r.problems]
            node.stop()
            server.cleanup()
    result["wall_s"] = round(time.perf_counter() - started, 2)
    return result


async def media_node_runs(args: argparse.Namespace, clip: ClipSpec) -> list[dict[str, Any]]:
    return [await run_node(n, args, clip) for n in args.media_node_streams]


def media_node_table(runs: list[dict[str, Any]]) -> str:
    if not runs:
        return ""
    lines = [
        "",
        "Relay as its own process: `teleconsult media-node` behind `teleconsult serve` "
        "(MEDIA_NODES=redis)",
        f"{'streams':>8} {'node %core':>11} {'node %/stream':>14} {'signaling %core':>16} "
        f"{'latency p50/p99 ms':>19} {'node RSS MB':>12}",
    ]
    for run in runs:
        if "aborted" in run:
            lines.append(f"{run['streams']:>8} aborted: {run['aborted'][:80]}")
            continue
        cpu, per = run["cpu_pct_of_one_core"], run["cpu_pct_per_stream"]
        lat = run["latency_ms_first_consult"]
        latency = f"{lat.get('p50_ms')}/{lat.get('p99_ms')}"
        lines.append(
            f"{run['streams']:>8} {cpu['media_node']:>11} {per['media_node']:>14} "
            f"{cpu['signaling']:>16} {latency:>19} {run['rss_mb']['media_node']:>12}"
        )
    return "\n".join(lines)
