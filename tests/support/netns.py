"""A throwaway Linux network namespace for tests: its own loopback, nothing else.

Tests run servers, TURN and browsers inside one to impair or firewall their traffic (nftables)
without touching the host's loopback, which other tests share. Needs root (`ip netns add`).
"""

from __future__ import annotations

import subprocess
import uuid
from collections.abc import Sequence
from types import TracebackType
from typing import Any


class NetworkNamespace:
    """`with NetworkNamespace.create("tc-turn") as ns:` — deleted, rules and all, on exit."""

    def __init__(self, name: str) -> None:
        self.name = name

    @classmethod
    def create(cls, prefix: str) -> NetworkNamespace:
        name = f"{prefix}-{uuid.uuid4().hex[:8]}"
        subprocess.run(["ip", "netns", "add", name], check=True, capture_output=True)
        ns = cls(name)
        try:
            ns.run(["ip", "link", "set", "lo", "up"]).check_returncode()
        except BaseException:
            ns.delete()
            raise
        return ns

    def exec_argv(self, argv: Sequence[str]) -> list[str]:
        """`argv` as run inside the namespace."""
        return ["ip", "netns", "exec", self.name, *argv]

    def popen(self, argv: Sequence[str], **kw: Any) -> subprocess.Popen[Any]:
        """Start `argv` inside the namespace (keyword arguments as for `subprocess.Popen`)."""
        return subprocess.Popen(self.exec_argv(argv), **kw)

    def run(self, argv: Sequence[str]) -> subprocess.CompletedProcess[str]:
        """Run `argv` inside the namespace to its end; output captured as text, never raises."""
        return subprocess.run(
            self.exec_argv(argv), capture_output=True, text=True, timeout=30, check=False
        )

    def nft(self, ruleset: str) -> None:
        """Load an nftables ruleset (`nft -f` syntax) into the namespace; fails loudly."""
        done = subprocess.run(
            self.exec_argv(["nft", "-f", "-"]),
            input=ruleset,
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        if done.returncode != 0:
            raise RuntimeError(f"nft refused the ruleset: {done.stderr}\n{ruleset}")

    def delete(self) -> None:
        subprocess.run(["ip", "netns", "delete", self.name], capture_output=True, check=False)

    def __enter__(self) -> NetworkNamespace:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.delete()
