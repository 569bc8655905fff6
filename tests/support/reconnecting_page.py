"""A participant as the web page behaves through a load balancer: it reconnects when its
socket drops and joins again (on `connect` or when told `rejoin`), calling who is there."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

import socketio

from tests.support.peer import Participant, eventually


@dataclass
class Page:
    """A participant as the web page behaves: connected through the load balancer, it
    reconnects when its socket drops and joins again on `connect` or on `rejoin`; after each
    join it offers to the people already there (the newcomer calls)."""

    name: str
    url: str
    token: str
    consult_id: str
    me: Participant = field(init=False)
    joins: int = 0
    rejoin_events: list[dict[str, Any]] = field(default_factory=list)
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)

    def __post_init__(self) -> None:
        self.me = Participant(
            self.name,
            sio=socketio.AsyncClient(
                reconnection=True,
                reconnection_delay=0.3,
                reconnection_delay_max=5,
                randomization_factor=0.5,
            ),
        )
        self.me.sio.on("connect", self._on_connect)
        self.me.sio.on("rejoin", self._on_rejoin)

    async def start(self) -> None:
        await self.me.connect(self.url, self.token)

    async def _on_connect(self) -> None:
        if self.joins:
            self._spawn(self.join())  # a reconnect: join afresh under the new peer id

    async def _on_rejoin(self, data: dict[str, Any]) -> None:
        self.rejoin_events.append(data)
        self._spawn(self.join())

    def _spawn(self, work: Any) -> None:
        task = asyncio.create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def join(self) -> dict[str, Any]:
        for pc in self.me.pcs.values():
            await pc.close()
        self.me.pcs.clear()
        for _attempt in range(20):
            ack = await self.me.join(self.consult_id)
            if ack.get("ok"):
                break
            await asyncio.sleep(0.3)  # as the page's backoff on `busy`
        assert ack.get("ok"), ack
        self.joins += 1
        for peer in ack["peers"]:
            await self.me.offer_to(peer["peer_id"])
        return ack

    def receives_from(self, other: Page, frames: int) -> bool:
        return self.me.video_frames.get(other.me.peer_id, 0) >= frames

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await self.me.close()


async def meet_with_video(exam_room: Page, specialist: Page, within: float) -> dict[str, Any]:
    """Both pages connect and join (the exam room first), then video flows both ways; the
    specialist's join ack."""
    await exam_room.start()
    await specialist.start()
    await exam_room.join()
    ack = await specialist.join()
    await eventually(
        lambda: exam_room.receives_from(specialist, 10) and specialist.receives_from(exam_room, 10),
        within=within,
    )
    return ack


def back_in_the_consult(exam_room: Page, specialist: Page) -> bool:
    """Each page joined a second time (reconnected, or told to rejoin) and video flows both ways
    between the new peers."""
    return (
        exam_room.joins == 2
        and specialist.joins == 2
        and exam_room.receives_from(specialist, 5)
        and specialist.receives_from(exam_room, 5)
    )
