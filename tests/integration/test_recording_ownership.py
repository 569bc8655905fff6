"""A starting process never finalizes the partial recordings of another live process.

Issue 10: two processes on one data directory, and restarting one made its start-up recovery
finalize the other's open `.part` files while they were still being written. Each recording
process now writes in a folder of its own, held by an OS file lock (`media.writer_folders`);
recovery only takes folders whose lock it can get, i.e. whose writer is dead.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from media import writer_folders
from tests.support.relay_peer import RelayParticipant
from tests.support.relayed_consult import joined, ready_recordings, recording_consult
from tests.support.server import REPO, RunningServer, free_port
from tests.support.waiting import until

pytestmark = pytest.mark.slow


def part_sizes(data_dir: Path) -> dict[Path, int]:
    return {p: p.stat().st_size for p in (data_dir / "media" / "partial").rglob("*.part")}


async def test_a_second_process_starting_on_the_data_directory_leaves_a_live_recording_alone(
    people: list[RelayParticipant],
) -> None:
    with RunningServer(env_overrides={"JOINS_PER_MINUTE": "10000"}) as first:
        consult = first.book()
        exam_room, specialist, _ = await recording_consult(first, people, consult["id"])
        await asyncio.sleep(1)
        before = part_sizes(first.data_dir)
        assert len(before) == 4
        assert {p.parent.name for p in before} and all(
            writer_folders.is_alive(first.data_dir / "media" / "partial", p.parent.name)
            for p in before
        )

        second = RunningServer(data_dir=first.data_dir, port=free_port())
        try:
            second.launch()  # its start-up recovery runs before it answers /healthz
            assert "recovered" not in second.log_path.read_text().split("listening")[0]
            after = part_sizes(first.data_dir)
            assert set(after) == set(before), "the live writer's files are all still there"
            await asyncio.sleep(1)
            assert all(p.stat().st_size > before[p] for p in before), "and still growing"
            # The second process works too, on its own folder.
            elsewhere = second.book(username="doctor.b", specialist="obstetrician2")
            visitor = await joined(second, people, elsewhere["id"], "doctor.b")
            assert visitor.join_ack["ok"]
        finally:
            second.stop()

        stopped = await specialist.call("recording-stop", {"consult_id": consult["id"]})
        assert stopped["ok"], stopped
        deadline = time.monotonic() + 30
        while len(ready_recordings(first, consult["id"])) < 4:
            assert time.monotonic() < deadline, "the recording was not finalized"
            await asyncio.sleep(0.2)
        assert not any(r["recovered"] for r in ready_recordings(first, consult["id"]))
        assert exam_room.join_ack["ok"]


HOLDER = """
import sys, time
from pathlib import Path
from media.writer_folders import claim
folder = claim(Path(sys.argv[1]), sys.argv[2])
(folder.path / "r1.json").write_text("{}")
print("held", flush=True)
time.sleep(60)
"""


def test_a_folder_is_recovered_only_once_its_writer_process_is_dead(tmp_path: Path) -> None:
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(tmp_path), "writer-1"],
        cwd=REPO,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        assert writer_folders.is_alive(tmp_path, "writer-1")
        with writer_folders.dead_folder(tmp_path, "writer-1") as folder:
            assert folder is None
        with pytest.raises(writer_folders.FolderInUse):
            writer_folders.claim(tmp_path, "writer-1", wait=0.3)
    finally:
        os.kill(holder.pid, signal.SIGKILL)
        holder.wait(timeout=10)
        assert holder.stdout is not None
        holder.stdout.close()

    until(lambda: not writer_folders.is_alive(tmp_path, "writer-1"), within=5)
    with writer_folders.dead_folder(tmp_path, "writer-1") as folder:
        assert folder == tmp_path / "writer-1"
        assert (folder / "r1.json").exists()
        # While it is being recovered, a writer restarting under the same id waits.
        with pytest.raises(writer_folders.FolderInUse):
            writer_folders.claim(tmp_path, "writer-1", wait=0.3)
    claimed = writer_folders.claim(tmp_path, "writer-1", wait=0.3)
    claimed.release()
