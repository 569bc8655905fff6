"""A network namespace of the tests' own, whose only interface is its own loopback.

Whatever runs inside (`popen`, `run`) sees a network of one machine that no other test shares,
so the tests may impair it (nftables rules, a `tc` qdisc on its `lo`) without touching the
host's loopback, where other tests run. Needs root (`ip netns add`).

    with NetworkNamespace.create("adapt") as ns:
        server = ns.popen(["python", "-m", "teleconsult", "serve"])
        ns.nft("table inet t { chain o { type filter hook output priority 0; drop; } }")

The namespace, and everything in it, is deleted on exit; the processes started with `popen`
are the caller's to stop before that.
"""

from __future__ import annotations

import subprocess
import uuid
from collections.abc import Sequence
from types import TracebackType
from typing import Any


class NetworkNamespace:
    """One `ip netns` namespace with `lo` up."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._deleted = False

    @classmethod
    def create(cls, prefix: str) -> NetworkNamespace:
        """A fresh namespace named `<prefix>-<random>`, its loopback up."""
        name = f"{prefix}-{uuid.uuid4().hex[:8]}"
        subprocess.run(["ip", "netns", "add", name], check=True, capture_output=True)
        ns = cls(name)
        try:
            ns.run(["ip", "link", "set", "lo", "up"])
        except BaseException:
            ns.delete()
            raise
        return ns

    def argv(self, argv: Sequence[str]) -> list[str]:
        """`argv` as a command that runs inside the namespace."""
        return ["ip", "netns", "exec", self.name, *argv]

    def popen(self, argv: Sequence[str], **kw: Any) -> subprocess.Popen[Any]:
        """Start `argv` inside the namespace (`subprocess.Popen`'s keywords apply)."""
        return subprocess.Popen(self.argv(argv), **kw)

    def run(self, argv: Sequence[str]) -> subprocess.CompletedProcess[str]:
        """Run `argv` inside the namespace to its end; CalledProcessError (with its stderr) if
        it fails."""
        done = subprocess.run(self.argv(argv), capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise subprocess.CalledProcessError(
                done.returncode, done.args, output=done.stdout, stderr=done.stderr
            )
        return done

    def nft(self, ruleset: str) -> None:
        """Load an nftables ruleset (`nft -f -` syntax) into the namespace."""
        done = subprocess.run(
            self.argv(["nft", "-f", "-"]), input=ruleset, capture_output=True, text=True
        )
        if done.returncode != 0:
            raise RuntimeError(f"nft refused the ruleset: {done.stderr}\n{ruleset}")

    def delete(self) -> None:
        """Delete the namespace (its rules and qdiscs go with it); idempotent."""
        if self._deleted:
            return
        self._deleted = True
        subprocess.run(["ip", "netns", "delete", self.name], check=False, capture_output=True)

    def __enter__(self) -> NetworkNamespace:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.delete()
