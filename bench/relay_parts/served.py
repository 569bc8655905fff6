"""A relayed consult on a running `teleconsult serve`, its forwarding latency measured.

`bench/relay.py` measures the relay alone in a process of its own; this measures the relay
inside the real server, on the event loop that also answers REST and socket.io (used by
`bench/login.py` to show what a login flood does to a call in progress).

The consult's two people connect with socket.io from the parent (the benchmark's process) and
speak the relay protocol of docs/protocol.md: the exam room reports its direct link to the
specialist failed (`p2p-failed`, confirmed by `p2p-check`), which moves the consult to the
relay; the exam room publishes one video track (`relay-publish`, candidates trickled with
`relay-candidate`); the specialist answers every `relay-offer` (`relay-answer`). The aiortc
peers themselves run in two child processes (`PeerHost` of peers.py: the publisher sends the
pre-encoded 720p VP8 clip of source.py, the subscriber times and counts what arrives and decodes
nothing), so neither the parent's work nor each other's disturbs their clocks.

Forwarding latency of a frame: from the publisher handing the frame's first RTP packet to SRTP
until that packet reaches the subscriber's receiver (wall clock of one machine), matched by RTP
timestamp (analysis.py); it includes two loopback hops and the server's forwarding.
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing as mp
import time
from dataclasses import asdict
from multiprocessing.process import BaseProcess
from typing import Any

import socketio

from bench.relay_parts.analysis import leg_latencies, summarize_ms
from bench.relay_parts.channel import Channel, child_main
from bench.relay_parts.source import ClipSpec

PUBLISH_LEG = "exam-room/camera"
SUBSCRIBE_LEG = "specialist/subscribe"


def _split_candidates(sdp: str) -> tuple[str, list[tuple[str, int, str]], str]:
    """The SDP without its candidate lines; the candidates as (mid, m-line index, line); the
    mid of the first m-section."""
    kept: list[str] = []
    found: list[tuple[str, int, str]] = []
    mline, mid, first_mid = -1, "", ""
    for line in sdp.splitlines():
        if line.startswith("m="):
            mline += 1
        elif line.startswith("a=mid:"):
            mid = line[len("a=mid:") :]
            first_mid = first_mid or mid
        if line.startswith("a=candidate:"):
            found.append((mid, mline, line[len("a=") :]))
            continue
        if line.startswith("a=end-of-candidates"):
            continue
        kept.append(line)
    return "\r\n".join(kept) + "\r\n", found, first_mid


class ServedRelay:
    """One relayed consult between two people on the server at `base`, carrying one 720p video
    track from the exam room to the specialist."""

    def __init__(self, base: str, consult_id: str, tokens: tuple[str, str], clip: ClipSpec) -> None:
        self.base = base
        self.consult_id = consult_id
        self.tokens = tokens
        self.clip = clip
        self.exam_room = socketio.AsyncClient(reconnection=False, handle_sigint=False)
        self.specialist = socketio.AsyncClient(reconnection=False, handle_sigint=False)
        self.specialist.on("relay-offer", self._on_offer)
        for client in (self.exam_room, self.specialist):
            client.on("p2p-check", self._on_p2p_check)  # "is the direct link still down?"
        self.processes: list[BaseProcess] = []
        self.channels: dict[str, Channel] = {}
        self.problems: list[str] = []
        self._answering = asyncio.Lock()

    async def _on_p2p_check(self, _data: dict[str, Any]) -> dict[str, Any]:
        return {"state": "failed", "generation": 0}

    async def _on_offer(self, data: dict[str, Any]) -> None:
        asyncio.get_running_loop().create_task(self._answer(data))

    async def _answer(self, data: dict[str, Any]) -> None:
        async with self._answering:  # one negotiation at a time, in order
            try:
                answer = await self.channels["subscribers"].call(
                    "subscribe_offer", leg=SUBSCRIBE_LEG, sdp=data["description"]["sdp"]
                )
                reply = await self.specialist.call(
                    "relay-answer",
                    {
                        "consult_id": self.consult_id,
                        "description": {"type": "answer", "sdp": answer},
                    },
                    timeout=30,
                )
                if not reply.get("ok"):
                    self.problems.append(f"relay-answer refused: {reply}")
            except Exception as exc:  # reported with the results, not lost in a task
                self.problems.append(f"answering relay-offer: {type(exc).__name__}: {exc}")

    async def _start_children(self, limit_s: float) -> None:
        loop = asyncio.get_running_loop()
        ctx = mp.get_context("spawn")
        ready: dict[str, asyncio.Future[None]] = {}
        for role in ("publishers", "subscribers"):
            ready[role] = loop.create_future()
            parent_end, child_end = ctx.Pipe()
            process = ctx.Process(
                target=child_main,
                args=(role, child_end, {"role": role, "clip": asdict(self.clip)}),
                name=f"bench-served-relay-{role}",
                daemon=True,
            )
            process.start()
            child_end.close()
            self.processes.append(process)

            def on_event(name: str, data: dict[str, Any], role: str = role) -> None:
                if name == "ready" and not ready[role].done():
                    ready[role].set_result(None)
                elif name == "fatal":
                    self.problems.append(f"{role} crashed: {data.get('traceback')}"[:2000])
                    if not ready[role].done():
                        ready[role].set_exception(RuntimeError(f"the {role} process crashed"))

            self.channels[role] = Channel(parent_end, role, on_event=on_event)
        for role, future in ready.items():
            try:
                await asyncio.wait_for(future, limit_s)
            except TimeoutError:
                raise TimeoutError(f"the {role} process did not start in {limit_s:.0f}s") from None

    async def start(self, limit_s: float = 60.0) -> float:
        """Connect both people, move the consult to the relay, publish and subscribe; return
        the seconds until frames reach the specialist."""
        started = time.perf_counter()
        await self._start_children(limit_s)
        for client, token in zip((self.exam_room, self.specialist), self.tokens, strict=True):
            await client.connect(self.base, auth={"token": token}, transports=["websocket"])
        acks = []
        for client in (self.exam_room, self.specialist):
            ack = await client.call("join", {"consult_id": self.consult_id}, timeout=30)
            if not ack.get("ok"):
                raise RuntimeError(f"join refused: {ack}")
            acks.append(ack)
        moved = await self.exam_room.call(
            "p2p-failed",
            {"consult_id": self.consult_id, "peer_id": acks[1]["peer_id"], "generation": 0},
            timeout=30,
        )
        if moved.get("media_path") != "relay":
            raise RuntimeError(f"the consult did not move to the relay: {moved}")
        offer = await self.channels["publishers"].call(
            "publish_offer", leg=PUBLISH_LEG, clock_group="served"
        )
        sdp, candidates, mid = _split_candidates(offer)
        reply = await self.exam_room.call(
            "relay-publish",
            {
                "consult_id": self.consult_id,
                "description": {"type": "offer", "sdp": sdp},
                "sources": {mid: "camera"},
            },
            timeout=30,
        )
        if not reply.get("ok"):
            raise RuntimeError(f"relay-publish refused: {reply}")
        await self.channels["publishers"].call(
            "publish_answer", leg=PUBLISH_LEG, sdp=reply["description"]["sdp"]
        )
        for cand_mid, mline, line in candidates:
            sent = await self.exam_room.call(
                "relay-candidate",
                {
                    "consult_id": self.consult_id,
                    "leg": "publish",
                    "candidate": {"candidate": line, "sdpMid": cand_mid, "sdpMLineIndex": mline},
                },
                timeout=30,
            )
            if not sent.get("ok"):
                raise RuntimeError(f"relay-candidate refused: {sent}")
        deadline = time.perf_counter() + limit_s
        while time.perf_counter() < deadline:
            counters = await self.channels["subscribers"].call("counters")
            if counters["legs"].get(SUBSCRIBE_LEG, {}).get("frames_complete", 0) >= 30:
                return time.perf_counter() - started
            if self.problems:
                raise RuntimeError("; ".join(self.problems))
            await asyncio.sleep(0.2)
        raise TimeoutError(f"no video reached the specialist within {limit_s:.0f}s")

    async def counters(self) -> dict[str, Any]:
        sent = await self.channels["publishers"].call("counters")
        received = await self.channels["subscribers"].call("counters")
        return {"sent": sent["legs"][PUBLISH_LEG], "received": received["legs"][SUBSCRIBE_LEG]}

    async def window(self, since: float, until: float) -> dict[str, Any]:
        """Forwarding latency of the frames sent in [since, until] (wall clock, time.time())."""
        sent = (await self.channels["publishers"].call("frame_times", since=since, until=until))[
            PUBLISH_LEG
        ]
        received = (
            await self.channels["subscribers"].call("frame_times", since=since, until=until + 1.0)
        )[SUBSCRIBE_LEG]
        values, _by_frame, info = leg_latencies(sent, received)
        return {**summarize_ms(values), "frames_sent": len(sent), **info}

    async def close(self) -> None:
        for client in (self.exam_room, self.specialist):
            with contextlib.suppress(Exception):
                await client.disconnect()
        for channel in self.channels.values():
            with contextlib.suppress(Exception):
                await channel.call("stop", limit_s=20)
        for process in self.processes:
            process.join(timeout=5)
            if process.is_alive() and process.pid is not None:
                process.kill()
