"""Which local addresses aiortc peers announce as ICE host candidates.

aioice gathers host candidates from every interface but leaves out 127.0.0.1
(`aioice.ice.get_host_addresses`), and offers no setting for either. A media server behind a
hospital firewall must announce exactly its configured address, and tests on loopback must
announce 127.0.0.1, so this module replaces that one function for the whole process.
"""

from __future__ import annotations

from collections.abc import Sequence

import aioice.ice


def announce_only(addresses: Sequence[str]) -> None:
    """Make every aiortc peer in this process gather host candidates on `addresses` only."""
    chosen = list(addresses)
    if not chosen:
        raise ValueError("give at least one address to announce")

    def configured(use_ipv4: bool, use_ipv6: bool) -> list[str]:
        return [a for a in chosen if (":" in a and use_ipv6) or (":" not in a and use_ipv4)]

    aioice.ice.get_host_addresses = configured
