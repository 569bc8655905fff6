"""Group commit (`storage.sql.group_commit`): writes queued while a batch commits go together
in the next one; nobody is answered before their batch is committed."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest

from storage.sql.group_commit import Done, Failed, GroupCommit, Outcome


async def queued(group: GroupCommit[str], writes: int) -> None:
    """Until `writes` submitted writes wait in the group's queue (their tasks ran up to it)."""
    for _ in range(100):
        if group.queued == writes:
            return
        await asyncio.sleep(0)  # one turn of the loop: the submitting tasks run
    raise AssertionError(f"{group.queued} writes queued, not {writes}")


class Disk:
    """A stand-in for the database: records each batch it is handed and commits it when told
    (`release`), so a test decides when a commit ends."""

    def __init__(self) -> None:
        self.batches: list[list[str]] = []
        self.committed: list[str] = []
        self._gates: list[asyncio.Event] = []
        self.refuse: set[str] = set()
        """Writes refused on their own (as a failed version check)."""
        self.crash_next = False
        """The next batch fails as a whole (as the disk being full)."""
        self._arrived = asyncio.Event()

    async def commit(self, writes: Sequence[str]) -> Sequence[Outcome]:
        self.batches.append(list(writes))
        self._arrived.set()
        gate = asyncio.Event()
        self._gates.append(gate)
        await gate.wait()
        if self.crash_next:
            self.crash_next = False
            raise OSError("disk full")
        outcomes: list[Outcome] = []
        for w in writes:
            if w in self.refuse:
                outcomes.append(Failed(ValueError(f"{w} refused")))
            else:
                self.committed.append(w)
                outcomes.append(Done(w.upper()))
        return outcomes

    async def handed(self, batches: int) -> None:
        """Wait until `batches` batches have been handed over."""
        while len(self.batches) < batches:
            self._arrived.clear()
            await self._arrived.wait()

    def release(self) -> None:
        """Let the oldest batch still waiting commit."""
        next(g for g in self._gates if not g.is_set()).set()


async def test_a_lone_write_is_committed_at_once_and_answered_with_its_value() -> None:
    disk = Disk()
    group = GroupCommit(disk.commit)
    answer = asyncio.ensure_future(group.submit("a"))
    await disk.handed(1)
    assert disk.batches == [["a"]]
    assert not answer.done()  # not answered before the commit
    disk.release()
    assert await answer == "A"
    assert disk.committed == ["a"]


async def test_writes_arriving_during_a_commit_share_the_next_one() -> None:
    disk = Disk()
    group = GroupCommit(disk.commit)
    first = asyncio.ensure_future(group.submit("a"))
    await disk.handed(1)
    later = [asyncio.ensure_future(group.submit(w)) for w in ("b", "c", "d")]
    await queued(group, 3)
    assert [f.done() for f in later] == [False, False, False]
    assert disk.batches == [["a"]]  # the others wait for the commit under way
    disk.release()
    assert await first == "A"
    await disk.handed(2)
    assert disk.batches == [["a"], ["b", "c", "d"]]
    assert not any(f.done() for f in later)  # their batch is not committed yet
    disk.release()
    assert await asyncio.gather(*later) == ["B", "C", "D"]
    assert (group.batches, group.writes, group.largest) == (2, 4, 3)


async def test_a_batch_holds_at_most_max_batch_writes() -> None:
    disk = Disk()
    group = GroupCommit(disk.commit, max_batch=2)
    first = asyncio.ensure_future(group.submit("a"))
    await disk.handed(1)
    rest = [asyncio.ensure_future(group.submit(w)) for w in ("b", "c", "d", "e", "f")]
    await queued(group, 5)
    for n in (2, 3, 4):
        disk.release()
        await disk.handed(n)
    disk.release()
    assert await first == "A"
    assert await asyncio.gather(*rest) == ["B", "C", "D", "E", "F"]
    assert disk.batches == [["a"], ["b", "c"], ["d", "e"], ["f"]]


async def test_a_refused_write_fails_alone_and_its_batch_mates_are_committed() -> None:
    disk = Disk()
    disk.refuse = {"b"}
    group = GroupCommit(disk.commit)
    first = asyncio.ensure_future(group.submit("a"))
    await disk.handed(1)
    b, c = asyncio.ensure_future(group.submit("b")), asyncio.ensure_future(group.submit("c"))
    disk.release()
    await disk.handed(2)
    disk.release()
    assert await first == "A"
    with pytest.raises(ValueError, match="b refused"):
        await b
    assert await c == "C"
    assert disk.committed == ["a", "c"]


async def test_a_batch_that_fails_as_a_whole_fails_every_write_in_it_and_the_next_goes_on() -> None:
    disk = Disk()
    group = GroupCommit(disk.commit)
    first = asyncio.ensure_future(group.submit("a"))
    await disk.handed(1)
    b, c = asyncio.ensure_future(group.submit("b")), asyncio.ensure_future(group.submit("c"))
    disk.crash_next = True
    disk.release()  # "a" fails with the disk
    with pytest.raises(OSError, match="disk full"):
        await first
    await disk.handed(2)
    disk.crash_next = True
    disk.release()
    for answer in (b, c):
        with pytest.raises(OSError, match="disk full"):
            await answer
    assert disk.committed == []
    after = asyncio.ensure_future(group.submit("d"))
    await disk.handed(3)
    disk.release()
    assert await after == "D"  # the group commits again once the disk does


async def test_a_caller_that_gives_up_does_not_take_its_write_back() -> None:
    disk = Disk()
    group = GroupCommit(disk.commit)
    first = asyncio.ensure_future(group.submit("a"))
    await disk.handed(1)
    gives_up = asyncio.ensure_future(group.submit("b"))
    await queued(group, 1)
    gives_up.cancel()
    disk.release()
    assert await first == "A"
    await disk.handed(2)
    disk.release()
    await group.drain()
    assert disk.committed == ["a", "b"]
    assert gives_up.cancelled()


async def test_drain_waits_for_every_write_submitted() -> None:
    disk = Disk()
    group = GroupCommit(disk.commit)
    answers = [asyncio.ensure_future(group.submit(w)) for w in ("a", "b")]
    await disk.handed(1)
    drained = asyncio.ensure_future(group.drain())
    committed_when_drained: list[list[str]] = []
    drained.add_done_callback(lambda _: committed_when_drained.append(list(disk.committed)))
    assert not drained.done()
    disk.release()
    await drained
    assert committed_when_drained == [["a", "b"]]  # drain returned only once they were on disk
    assert all(a.done() for a in answers)
    assert group.queued == 0


def test_a_batch_must_hold_at_least_one_write() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        GroupCommit(Disk().commit, max_batch=0)
