"""Group commit: writes that arrive while a batch is being committed are committed together in
the next batch, each of its callers answered only once that batch is committed.

With one writer at a time (SQLite) and a commit that waits for the disk (`synchronous=FULL`),
a hundred joins at once would otherwise queue for a hundred commits one after the other; here
they share a few. Nothing waits on purpose: a write that finds no batch being committed is
committed at once, alone, so a quiet server answers as fast as before.

`GroupCommit` knows nothing of databases: it is handed a `commit` function that takes a batch
of writes and says what became of each (`Done` or `Failed`: one write refused, by its version
check say, does not spoil the others), or raises when the batch as a whole was not committed,
and then every write of the batch gets that error. Callers are answered in the order they
submitted.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

W = TypeVar("W")


@dataclass(frozen=True, slots=True)
class Done:
    """The write was committed; `value` is what it returned."""

    value: Any


@dataclass(frozen=True, slots=True)
class Failed:
    """The write was refused and rolled back on its own; the others of its batch were not."""

    error: BaseException


Outcome = Done | Failed

BatchCommit = Callable[[Sequence[W]], Awaitable[Sequence[Outcome]]]
"""Commit these writes together: one outcome per write, in order; raises if nothing was
committed."""


@dataclass(slots=True)
class _Waiting(Generic[W]):
    write: W
    answer: asyncio.Future[Any]


class GroupCommit(Generic[W]):
    def __init__(self, commit: BatchCommit[W], *, max_batch: int = 128) -> None:
        if max_batch < 1:
            raise ValueError("max_batch must be at least 1")
        self._commit = commit
        self.max_batch = max_batch
        self._queue: list[_Waiting[W]] = []
        self._flusher: asyncio.Task[None] | None = None
        self.batches = 0
        """Batches committed (or tried) so far."""
        self.writes = 0
        """Writes handed to `commit` so far."""
        self.largest = 0
        """The most writes one batch held."""

    @property
    def queued(self) -> int:
        """Writes waiting for the next batch."""
        return len(self._queue)

    async def submit(self, write: W) -> Any:
        """Commit `write` with whatever else is queued; its value once committed, or the error
        that refused it. A caller cancelled while waiting does not take its write back: once
        submitted it is committed (or refused) with its batch."""
        loop = asyncio.get_running_loop()
        waiting = _Waiting(write, loop.create_future())
        self._queue.append(waiting)
        if self._flusher is None or self._flusher.done():
            self._flusher = loop.create_task(self._flush())
        return await waiting.answer

    async def drain(self) -> None:
        """Wait until every write submitted so far is committed (or refused)."""
        while self._flusher is not None and not self._flusher.done():
            await asyncio.shield(self._flusher)

    async def _flush(self) -> None:
        while self._queue:
            batch = self._queue[: self.max_batch]
            del self._queue[: self.max_batch]
            self.batches += 1
            self.writes += len(batch)
            self.largest = max(self.largest, len(batch))
            try:
                outcomes = await self._commit([w.write for w in batch])
                if len(outcomes) != len(batch):
                    raise RuntimeError(
                        f"a batch of {len(batch)} writes came back with {len(outcomes)} outcomes"
                    )
            except BaseException as exc:  # every caller must hear of it
                for waiting in batch:
                    if not waiting.answer.done():
                        waiting.answer.set_exception(exc)
                if isinstance(exc, asyncio.CancelledError):
                    for waiting in self._queue:
                        if not waiting.answer.done():
                            waiting.answer.set_exception(exc)
                    self._queue.clear()
                    raise
                continue
            for waiting, outcome in zip(batch, outcomes, strict=True):
                if waiting.answer.done():
                    continue  # its caller was cancelled; the write stands (or fell) anyway
                if isinstance(outcome, Done):
                    waiting.answer.set_result(outcome.value)
                else:
                    waiting.answer.set_exception(outcome.error)
