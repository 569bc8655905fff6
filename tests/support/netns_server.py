"""A `teleconsult serve` inside a `NetworkNamespace`, and the test's own HTTP to it.

The server process runs under `ip netns exec`; the test process stays on the host, so its HTTP
requests (login, booking) are made from a short-lived thread that has entered the namespace
(`setns(2)` changes the network namespace of the calling thread only).
"""

from __future__ import annotations

import ctypes
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, TypeVar

from tests.support.netns import NetworkNamespace
from tests.support.server import HttpReply, RunningServer

CLONE_NEWNET = 0x40000000
T = TypeVar("T")


def inside(namespace: NetworkNamespace, fn: Callable[[], T]) -> T:
    """`fn()` run on a thread that has joined the namespace's network; its result."""

    def entered() -> T:
        libc = ctypes.CDLL(None, use_errno=True)
        fd = os.open(f"/run/netns/{namespace.name}", os.O_RDONLY)
        try:
            if libc.setns(fd, CLONE_NEWNET) != 0:
                errno = ctypes.get_errno()
                raise OSError(errno, f"setns into {namespace.name}: {os.strerror(errno)}")
        finally:
            os.close(fd)
        return fn()

    with ThreadPoolExecutor(max_workers=1) as pool:  # the thread ends with the pool
        return pool.submit(entered).result()


@dataclass
class NamespacedServer(RunningServer):
    """`RunningServer` whose process and HTTP live in `namespace`."""

    namespace: NetworkNamespace | None = field(default=None)

    def __post_init__(self) -> None:
        assert self.namespace is not None, "NamespacedServer needs its namespace"
        self.argv_prefix = self.namespace.exec_argv([])

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        token: str | None = None,
        raw: bytes | None = None,
    ) -> HttpReply:
        assert self.namespace is not None
        parent = super().request
        return inside(self.namespace, lambda: parent(method, path, body, token, raw))
