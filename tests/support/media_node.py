"""A `teleconsult media-node` process on a data directory shared with a signaling server."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from tests.support.processes import stop_process
from tests.support.server import REPO, START_DEADLINE_S


@dataclass
class RunningMediaNode:
    node_id: str
    data_dir: Path
    redis_url: str
    port_min: int
    port_max: int
    process: subprocess.Popen[bytes] | None = None

    @property
    def log_path(self) -> Path:
        return self.data_dir / f"media-node-{self.node_id}.log"

    def env(self) -> dict[str, str]:
        return {
            **os.environ,
            "DATA_DIR": str(self.data_dir),
            "REDIS_URL": self.redis_url,
            "MEDIA_NODE_ID": self.node_id,
            "MEDIA_ADDRESS": "127.0.0.1",
            "MEDIA_PORT_MIN": str(self.port_min),
            "MEDIA_PORT_MAX": str(self.port_max),
            "ICE_SERVERS": "[]",
        }

    def start(self) -> RunningMediaNode:
        """Start it and wait until it says it is ready (listening, lease written)."""
        offset = self.log_path.stat().st_size if self.log_path.exists() else 0
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "teleconsult", "media-node"],
            env=self.env(),
            cwd=REPO,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + START_DEADLINE_S  # generous: an exit is seen at once
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"media node exited early:\n{self.log_path.read_text()}")
            if f"media node {self.node_id} ready" in self.log_path.read_text()[offset:]:
                return self
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"media node did not come up:\n{self.log_path.read_text()}")

    def owns_port(self, port: int) -> bool:
        return self.port_min <= port <= self.port_max

    def kill(self) -> None:
        """SIGKILL, as the OOM killer or a power cut would."""
        if self.process is not None:
            self.process.kill()
            self.process.wait(timeout=10)
        self.process = None

    def stop(self) -> None:
        stop_process(self.process, grace=15)
        self.process = None


def start_all(nodes: list[RunningMediaNode]) -> None:
    """Start the nodes at the same time and wait until every one is ready."""
    with ThreadPoolExecutor(len(nodes)) as pool:
        for started in [pool.submit(node.start) for node in nodes]:
            started.result()


MIN_PART_BYTES = 4 * 1024
"""A part file holding a few frames of its track (past the writer's first buffer flush)."""


def partial_files(data_dir: Path, node_id: str) -> list[Path]:
    """The `.part` files in the node's writer folder under `data_dir`."""
    return sorted((data_dir / "media" / "partial" / node_id).glob("*.part"))


def recording_written(data_dir: Path, node_id: str, tracks: int = 4) -> bool:
    """The node has written a few frames of every track: what follows (a stop, a kill, a
    failover) has something to finalize or recover."""
    files = partial_files(data_dir, node_id)
    return len(files) == tracks and all(f.stat().st_size >= MIN_PART_BYTES for f in files)
