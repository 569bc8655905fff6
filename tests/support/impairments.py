"""A hostile network for the tests: loss, outages and a bandwidth cap on a namespace's loopback,
(tests/support/netns.py; the server and Chromium inside: tests/support/netns_server.py).

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

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TypeVar

from tests.support.netns import NetworkNamespace

T = TypeVar("T")

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
