"""The parent's side of one run: three child processes, their connections, measured windows.

Processes (spawned, daemonic, each killed by pid when the run ends, whatever happens):

- relay        the relay under test (relay_host.py), alone in its process so that its CPU
               time is exactly the relay's;
- publishers   every publisher peer (peers.py), sending the pre-encoded clip;
- subscribers  every subscriber peer, counting and timing what arrives, decoding nothing.

Streams and legs. A *stream* is one published 720p video track forwarded to one subscriber.
Topology "pairs" (default): N consults, each with publisher pK and subscriber sK, so N
streams cost the relay N incoming and N outgoing tracks. Topology "fanout": one consult, p0
and N subscribers: N streams from one incoming track. On top, a *direct* leg p0/direct →
s0/direct connects the first publisher to the first subscriber peer-to-peer, without the
relay, for the latency comparison; it costs the publishers and subscribers, not the relay.
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing as mp
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from multiprocessing.process import BaseProcess
from typing import Any

import psutil  # type: ignore[import-untyped]  # no stubs in the dev dependencies

from bench.relay_parts.analysis import (
    delta,
    leg_latencies,
    paired_differences,
    pct,
    summarize_ms,
)
from bench.relay_parts.channel import Channel, child_main

ROLES = ("relay", "publishers", "subscribers")


def log(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


@dataclass
class Layout:
    """Who publishes, who subscribes to what, in which consult."""

    streams: int
    topology: str
    direct: bool = True
    audio: bool = False
    """Publishers send Opus audio besides the video (both forwarded to every subscriber)."""

    @property
    def publishers(self) -> list[str]:
        return [f"p{i}" for i in range(self.streams if self.topology == "pairs" else 1)]

    @property
    def subscribers(self) -> list[str]:
        return [f"s{i}" for i in range(self.streams)]

    def source_of(self, subscriber: str) -> str:
        return f"p{subscriber[1:]}" if self.topology == "pairs" else "p0"

    def consult_of(self, participant: str) -> str:
        return f"c{participant[1:]}" if self.topology == "pairs" else "c0"


@dataclass
class Child:
    role: str
    process: BaseProcess
    channel: Channel
    psutil: psutil.Process | None = None
    measured: dict[str, Any] = field(default_factory=dict)
    """The process whose CPU is this role's (pid, name): Janus for the relay role of a Janus run."""


@dataclass
class Cluster:
    """The three processes of one run and what the parent knows about them."""

    mode: str
    layout: Layout
    options: dict[str, Any]
    children: dict[str, Child] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    ready: dict[str, asyncio.Future[dict[str, Any]]] = field(default_factory=dict)
    offer_tasks: set[asyncio.Task[None]] = field(default_factory=set)
    offer_locks: dict[str, asyncio.Lock] = field(default_factory=dict)
    negotiations: int = 0
    on_fatal: Callable[[str], None] | None = None

    # -- processes --

    async def start(self, limit_s: float) -> None:
        loop = asyncio.get_running_loop()
        ctx = mp.get_context("spawn")
        for role in ROLES:
            self.ready[role] = loop.create_future()
            parent_end, child_end = ctx.Pipe()
            options = {**self.options, "role": role, "mode": self.mode}
            process = ctx.Process(
                target=child_main,
                args=(role, child_end, options),
                name=f"bench-relay-{role}",
                daemon=True,
            )
            process.start()
            child_end.close()
            channel = Channel(parent_end, role, on_event=self._event_handler(role))
            self.children[role] = Child(role, process, channel)
        for role, future in self.ready.items():
            try:
                await asyncio.wait_for(future, limit_s)
            except TimeoutError:
                raise TimeoutError(f"the {role} process did not start in {limit_s:.0f}s") from None
        for role, child in self.children.items():
            child.measured = await self.call(role, "measured_process", limit_s=limit_s)
            child.psutil = psutil.Process(int(child.measured["pid"]))

    def _event_handler(self, role: str) -> Callable[[str, dict[str, Any]], None]:
        def handle(name: str, data: dict[str, Any]) -> None:
            if name == "ready" and not self.ready[role].done():
                self.ready[role].set_result(data)
            elif name == "fatal":
                message = f"the {role} process crashed:\n{data.get('traceback')}"
                self.problems.append(message[:2000])
                log(message)
                if not self.ready[role].done():
                    self.ready[role].set_exception(RuntimeError(message))
            elif name == "offer" and role == "relay":
                task = asyncio.create_task(self._answer_offer(data))
                self.offer_tasks.add(task)
                task.add_done_callback(self.offer_tasks.discard)

        return handle

    def call(self, role: str, method: str, limit_s: float = 60.0, **kwargs: Any) -> Any:
        return self.children[role].channel.call(method, limit_s=limit_s, **kwargs)

    async def stop(self) -> dict[str, Any]:
        """Ask every child to close its peers and report; then make sure each process is gone."""
        finals: dict[str, Any] = {}
        for role in reversed(ROLES):
            child = self.children.get(role)
            if child is None or not child.process.is_alive():
                continue
            try:
                finals[role] = await self.call(role, "stop", limit_s=25)
            except Exception as exc:
                finals[role] = {"error": repr(exc)[:300]}
        self.kill(grace_s=2)
        return finals

    def kill(self, grace_s: float = 0) -> None:
        """Kill every child process still alive after `grace_s`, by its pid (any time, twice)."""
        deadline = time.monotonic() + grace_s
        for child in self.children.values():
            process = child.process
            if process.is_alive():
                process.join(timeout=max(0.0, deadline - time.monotonic()))
            if process.is_alive():
                with contextlib.suppress(Exception):
                    process.kill()
                process.join(timeout=5)

    # -- connecting the legs --

    async def _answer_offer(self, data: dict[str, Any]) -> None:
        """The relay offers to a subscriber: have it answer, bring the answer back."""
        participant = str(data["participant"])
        lock = self.offer_locks.setdefault(participant, asyncio.Lock())
        async with lock:  # one negotiation at a time per subscriber, in order
            try:
                answer = await self.call(
                    "subscribers", "subscribe_offer", leg=f"{participant}/relay", sdp=data["sdp"]
                )
                await self.call(
                    "relay",
                    "subscriber_answer",
                    consult=data["consult"],
                    participant=participant,
                    sdp=answer,
                )
                self.negotiations += 1
            except Exception as exc:
                self.problems.append(f"answering the relay's offer to {participant}: {exc!r}"[:600])

    async def connect(self) -> None:
        layout = self.layout

        async def publish(publisher: str) -> None:
            leg = f"{publisher}/relay"
            group = "probe" if publisher == "p0" else None
            offer = await self.call(
                "publishers", "publish_offer", leg=leg, clock_group=group, audio=layout.audio
            )
            answer = await self.call(
                "relay",
                "publish",
                consult=layout.consult_of(publisher),
                participant=publisher,
                sdp=offer,
            )
            await self.call("publishers", "publish_answer", leg=leg, sdp=answer)

        await asyncio.gather(*(publish(p) for p in layout.publishers))
        for subscriber in layout.subscribers:
            await self.call(
                "relay",
                "subscribe",
                consult=layout.consult_of(subscriber),
                participant=subscriber,
                source=layout.source_of(subscriber),
            )
        if layout.direct:
            offer = await self.call(
                "publishers",
                "publish_offer",
                leg="p0/direct",
                clock_group="probe",
                offset_s=0.5 / int(self.options["clip"]["fps"]),
                audio=layout.audio,
            )
            answer = await self.call("subscribers", "subscribe_offer", leg="s0/direct", sdp=offer)
            await self.call("publishers", "publish_answer", leg="p0/direct", sdp=answer)

    def subscriber_legs(self) -> list[str]:
        legs = [f"{s}/relay" for s in self.layout.subscribers]
        return [*legs, "s0/direct"] if self.layout.direct else legs

    async def wait_flowing(self, limit_s: float, frames: int = 30) -> dict[str, Any]:
        """Until every subscriber leg has `frames` complete frames (or `limit_s` have passed)."""
        started = time.monotonic()
        legs = self.subscriber_legs()
        counts: dict[str, Any] = {}
        while time.monotonic() - started < limit_s:
            counts = (await self.call("subscribers", "counters"))["legs"]
            if all(counts.get(leg, {}).get("frames_complete", 0) >= frames for leg in legs):
                break
            await asyncio.sleep(0.25)
        waiting = [leg for leg in legs if counts.get(leg, {}).get("frames_complete", 0) < frames]
        if waiting:
            self.problems.append(
                f"after {limit_s:.0f}s, fewer than {frames} frames on: {', '.join(waiting)}"
            )
        return {"s": round(time.monotonic() - started, 2), "legs_without_media": waiting}

    # -- measuring --

    def _psutil_cpu(self, role: str) -> float:
        process = self.children[role].psutil
        assert process is not None
        times = process.cpu_times()
        return float(times.user + times.system)

    async def _clocks(self) -> dict[str, tuple[float, float]]:
        """Each child's (time.process_time(), time.monotonic()), read inside the child."""
        replies = await asyncio.gather(*(self.call(role, "cpu_clock") for role in ROLES))
        return {
            role: (r["process_s"], r["monotonic"]) for role, r in zip(ROLES, replies, strict=True)
        }

    async def window(self, seconds: float) -> dict[str, Any]:
        """Measure `seconds` of steady state: CPU of each process, traffic, loss, latency.

        CPU is each child's own `time.process_time()` (every thread, nanosecond clock) read
        over the pipe at both ends of the window, against the child's own monotonic clock;
        psutil's tick-based figure for the relay is kept as a cross-check.
        """
        pubs0, subs0, relay0 = await asyncio.gather(
            self.call("publishers", "counters"),
            self.call("subscribers", "counters"),
            self.call("relay", "stats"),
        )
        psutil.cpu_percent(None)  # starts the machine-wide measurement
        psutil0 = self._psutil_cpu("relay")
        clocks0 = await self._clocks()
        wall0, t0 = time.monotonic(), time.time()
        samples: list[float] = []
        last = clocks0["relay"]
        while (remaining := seconds - (time.monotonic() - wall0)) > 0:
            await asyncio.sleep(min(1.0, remaining))
            reply = await self.call("relay", "cpu_clock")
            now = (reply["process_s"], reply["monotonic"])
            samples.append(round(100 * (now[0] - last[0]) / (now[1] - last[1]), 1))
            last = now
        clocks1 = await self._clocks()
        psutil1 = self._psutil_cpu("relay")
        wall1, t1 = time.monotonic(), time.time()
        machine_busy = psutil.cpu_percent(None)
        pubs1, subs1, relay1 = await asyncio.gather(
            self.call("publishers", "counters"),
            self.call("subscribers", "counters"),
            self.call("relay", "stats"),
        )
        sent, received = await asyncio.gather(
            self.call("publishers", "frame_times", since=t0 - 3, until=t1),
            self.call("subscribers", "frame_times", since=t0, until=t1),
        )
        wall = wall1 - wall0
        counters = delta(relay1["counters"], relay0["counters"])
        cpu = {
            role: round(
                100 * (clocks1[role][0] - clocks0[role][0]) / (clocks1[role][1] - clocks0[role][1]),
                2,
            )
            for role in ROLES
        }
        return {
            "seconds": round(wall, 3),
            "cpu_pct_of_one_core": cpu,
            "relay_cpu_pct_per_stream": round(cpu["relay"] / self.layout.streams, 2),
            "relay_cpu_pct_each_second": samples,
            "relay_cpu_pct_psutil": round(100 * (psutil1 - psutil0) / wall, 2),
            "machine_busy_pct_of_all_cores": machine_busy,
            "relay_rss_mib": round(self._rss("relay") / 2**20, 1),
            "publishers": self._traffic(pubs0, pubs1, wall, "p"),
            "subscribers": self._traffic(subs0, subs1, wall, "s"),
            "relay_counters": counters,
            "recorder_loop_cpu_pct_per_stream": round(
                100 * counters.get("recorder_loop_cpu_s", 0) / wall / self.layout.streams, 3
            ),
            "relay_info": relay1["info"],
            "latency": self._latency(sent, received),
        }

    def _rss(self, role: str) -> int:
        process = self.children[role].psutil
        return 0 if process is None else int(process.memory_info().rss)

    def _traffic(
        self, before: dict[str, Any], after: dict[str, Any], wall: float, side: str
    ) -> dict[str, Any]:
        groups: dict[str, dict[str, float]] = {"relay": {}, "direct": {}}
        for leg, now in after["legs"].items():
            group = groups[leg.split("/")[1]]
            then = before["legs"].get(leg, {})
            for key, value in now.items():
                if isinstance(value, int | float) and not isinstance(value, bool):
                    group[key] = group.get(key, 0) + value - then.get(key, 0)
        out: dict[str, Any] = {}
        legs_per_group = {
            "relay": len(self.layout.publishers if side == "p" else self.layout.subscribers),
            "direct": 1,
        }
        for name, group in groups.items():
            if not group:
                continue
            legs = legs_per_group[name]
            summary: dict[str, Any] = {k: round(v) for k, v in group.items()}
            summary["mbit_per_s_per_leg"] = round(group.get("bytes", 0) * 8 / wall / 1e6 / legs, 3)
            summary["frames_per_s_per_leg"] = round(
                group.get("frames_complete", group.get("frames", 0)) / wall / legs, 2
            )
            if "expected" in group:
                lost = group["expected"] - group["unique"]
                summary["lost"] = round(lost)
                summary["loss_pct"] = pct(lost, group["expected"])
            out[name] = summary
        states = {leg: v.get("state") for leg, v in after["legs"].items()}
        out["not_connected"] = [leg for leg, s in states.items() if s != "connected"]
        return out

    def _latency(
        self, sent: dict[str, list[list[float]]], received: dict[str, list[list[float]]]
    ) -> dict[str, Any]:
        """Latency of every relayed stream, of the direct leg, and what the relay adds.

        Added latency is per frame: p0 sends frame n on its relayed leg and (half a frame
        later) on its direct leg from one clock, so for every frame n that s0 received on both
        legs, (relay latency of n) - (direct latency of n). Stalls that hit both legs (a busy
        machine, the publisher or subscriber process) cancel out; the relay's own do not. The
        difference of the two legs' percentiles (all relayed streams) is reported too.
        """
        relay: list[float] = []
        legs: dict[str, Any] = {}
        probe: dict[int, float] = {}
        for subscriber in self.layout.subscribers:
            values, by_frame, info = leg_latencies(
                sent.get(f"{self.layout.source_of(subscriber)}/relay", []),
                received.get(f"{subscriber}/relay", []),
            )
            relay += values
            legs[f"{subscriber}/relay"] = info
            if subscriber == "s0":
                probe = by_frame
        out: dict[str, Any] = {"relay": summarize_ms(relay)}
        if self.layout.direct:
            direct, direct_by_frame, info = leg_latencies(
                sent.get("p0/direct", []), received.get("s0/direct", [])
            )
            legs["s0/direct"] = info
            out["direct"] = summarize_ms(direct)
            paired = summarize_ms(paired_differences(probe, direct_by_frame))
            out["added_per_frame"] = paired
            out["added_p50_ms"] = paired["p50_ms"]
            out["added_p99_ms"] = paired["p99_ms"]
            for p in ("p50", "p99"):
                r, d = out["relay"][f"{p}_ms"], out["direct"][f"{p}_ms"]
                out[f"percentile_difference_{p}_ms"] = (
                    None if r is None or d is None else round(r - d, 2)
                )
        out["matching"] = legs
        return out
