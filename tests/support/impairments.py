"""A hostile network for the tests: loss, outages and a bandwidth cap on a namespace's loopback,
and the server and Chromium run inside it (tests/support/netns.py).

- **Loss** (`loss(percent)`): nftables drops that share of every packet the namespace sends
  (`numgen random mod 100 < N drop` in an output hook: each packet on `lo` passes it once).
  `outage()` is 100 %. Both directions of every flow are hit alike, TCP (socket.io, HTTP) too.
- **Bandwidth cap** (`cap(kbit)`): a token bucket (`tc qdisc … tbf`) on the namespace's `lo`, with
  its MTU set to 1500 so that no packet is bigger than the bucket. This kernel has no `netem`,
  and needs none for this. A qdisc on `lo` shapes *everything* in the namespace: both pages'
  media in both directions, the relay's legs and the signalling share the one cap. A 150 kbit/s
  cap between two pages is about 75 kbit/s per direction of a p2p call (docs/network.md).

Everything is undone with `clear()` and goes with the namespace anyway.
"""

from __future__ import annotations

import ctypes
import os
import stat
import tempfile
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from tests.support.netns import NetworkNamespace
from tests.support.server import HttpReply, RunningServer

T = TypeVar("T")

CLONE_NEWNET = 0x40000000
CHROMIUM = "/usr/bin/chromium"
TABLE = "teleconsult_impair"
LO_MTU = 1500
QUEUE_LATENCY_MS = 200
"""How long a packet may wait in the cap's bucket before it is dropped: a thin uplink's buffer."""


class Impairments:
    """Loss and a bandwidth cap on one namespace's loopback; at most one of each at a time."""

    def __init__(self, ns: NetworkNamespace) -> None:
        self.ns = ns
        self.loss_percent = 0
        self.cap_kbit: int | None = None

    def loss(self, percent: int) -> None:
        """Drop `percent` % of the packets sent in the namespace, at random (0: none)."""
        if not 0 <= percent <= 100:
            raise ValueError(f"loss is a percentage, not {percent}")
        self.clear_loss()
        if percent:
            rule = "drop" if percent == 100 else f"numgen random mod 100 < {percent} drop"
            self.ns.nft(
                f"table inet {TABLE} {{\n"
                "  chain output {\n"
                "    type filter hook output priority 0; policy accept;\n"
                f"    {rule}\n"
                "  }\n"
                "}\n"
            )
        self.loss_percent = percent

    def outage(self) -> None:
        """Nothing gets through (100 % loss) until `clear_loss()`."""
        self.loss(100)

    def clear_loss(self) -> None:
        if self.loss_percent:
            self.ns.run(["nft", "delete", "table", "inet", TABLE])
            self.loss_percent = 0

    def cap(self, kbit: int) -> None:
        """Shape everything in the namespace to `kbit` kbit/s (token bucket on `lo`)."""
        if kbit <= 0:
            raise ValueError(f"a cap is a positive rate, not {kbit}")
        self.ns.run(["ip", "link", "set", "lo", "mtu", str(LO_MTU)])
        # The bucket holds a few full packets, or 50 ms at the rate, whichever is more.
        burst = max(4 * LO_MTU, kbit * 1000 // 8 // 20)
        self.ns.run(
            [
                "tc", "qdisc", "replace", "dev", "lo", "root", "tbf",
                "rate", f"{kbit}kbit", "burst", str(burst), "latency", f"{QUEUE_LATENCY_MS}ms",
            ]
        )  # fmt: skip
        self.cap_kbit = kbit

    def clear_cap(self) -> None:
        if self.cap_kbit is not None:
            self.ns.run(["tc", "qdisc", "del", "dev", "lo", "root"])
            self.cap_kbit = None

    def clear(self) -> None:
        self.clear_loss()
        self.clear_cap()

    @contextmanager
    def capped(self, kbit: int) -> Iterator[None]:
        self.cap(kbit)
        try:
            yield
        finally:
            self.clear_cap()

    @contextmanager
    def lossy(self, percent: int) -> Iterator[None]:
        self.loss(percent)
        try:
            yield
        finally:
            self.clear_loss()


class Inside:
    """Run functions of this process in a thread that entered the namespace's network: the
    sockets they open are the namespace's (REST calls of a test to a server inside it)."""

    def __init__(self, ns: NetworkNamespace) -> None:
        self.ns = ns
        self.pool = ThreadPoolExecutor(max_workers=1, initializer=self._enter)

    def _enter(self) -> None:
        libc = ctypes.CDLL(None, use_errno=True)
        fd = os.open(f"/run/netns/{self.ns.name}", os.O_RDONLY)
        try:
            if libc.setns(fd, CLONE_NEWNET) != 0:
                errno = ctypes.get_errno()
                raise OSError(errno, f"setns into {self.ns.name}: {os.strerror(errno)}")
        finally:
            os.close(fd)

    def call(self, fn: Callable[..., T], *args: Any, **kw: Any) -> T:
        return self.pool.submit(fn, *args, **kw).result()

    def close(self) -> None:
        self.pool.shutdown(wait=True)


@dataclass
class NamespacedServer(RunningServer):
    """A `RunningServer` whose processes (`teleconsult demo`, `serve`, the CLI) run inside a
    namespace, and whose HTTP helpers reach it from inside too."""

    ns: NetworkNamespace | None = None
    inside: Inside | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        assert self.ns is not None, "NamespacedServer needs its namespace"
        self.command_prefix = self.ns.argv([])
        self.inside = Inside(self.ns)

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        token: str | None = None,
        raw: bytes | None = None,
    ) -> HttpReply:
        assert self.inside is not None
        parent = super().request
        return self.inside.call(parent, method, path, body, token, raw)

    def cleanup(self) -> None:
        super().cleanup()
        if self.inside is not None:
            self.inside.close()


def chromium_inside(ns: NetworkNamespace) -> Path:
    """An executable that starts Chromium inside the namespace, for Playwright's
    `executable_path` (Playwright talks to it over a pipe, which crosses namespaces)."""
    fd, name = tempfile.mkstemp(prefix=f"chromium-{ns.name}-", suffix=".sh")
    path = Path(name)
    with os.fdopen(fd, "w") as script:
        script.write(f'#!/bin/sh\nexec ip netns exec {ns.name} {CHROMIUM} "$@"\n')
    path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return path
