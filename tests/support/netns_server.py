"""A `teleconsult serve` inside a `NetworkNamespace`, the test's own HTTP to it, and Chromium
inside it.

The server's processes (`teleconsult demo`, `serve`, the CLI) run under `ip netns exec`; the
test process stays on the host, so its HTTP requests (login, booking) are made from a thread
that has entered the namespace (`setns(2)` changes the network namespace of the calling thread
only). Chromium runs inside through a wrapper executable (Playwright talks to it over a pipe,
which crosses namespaces).
"""

from __future__ import annotations

import ctypes
import os
import stat
import tempfile
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from tests.support.netns import NetworkNamespace
from tests.support.server import HttpReply, RunningServer

CLONE_NEWNET = 0x40000000
CHROMIUM = "/usr/bin/chromium"
T = TypeVar("T")


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
