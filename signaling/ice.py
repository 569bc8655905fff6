"""ICE servers handed to each joining participant, with TURN REST credentials when configured.

The TURN credentials follow coturn's `use-auth-secret` scheme: username `<expiry>:<user id>`,
password base64(HMAC-SHA1(secret, username)); coturn checks both without a database.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from dataclasses import dataclass, field
from typing import Any, Literal

TransportPolicy = Literal["all", "relay"]
TRANSPORT_POLICIES: tuple[TransportPolicy, ...] = ("all", "relay")


@dataclass(frozen=True, slots=True)
class IceConfig:
    servers: list[dict[str, Any]] = field(default_factory=list)
    """RTCIceServer dicts given to every participant as they are (none by default: loopback)."""
    turn_urls: list[str] = field(default_factory=list)
    turn_secret: str | None = None
    turn_ttl_seconds: int = 3600
    turn_renew_percent: int = 80
    """TURN_RENEW_PERCENT: a page asks for fresh credentials (`ice-servers`) when this share of
    their lifetime has passed, and renews its connections with them; 0: it never asks (it
    rejoins once a TURN server refuses them)."""
    transport_policy: TransportPolicy = "all"
    """ICE_TRANSPORT_POLICY: the browsers' `RTCConfiguration.iceTransportPolicy`; `relay` makes
    every page send and receive media only through TURN (hospital firewalls that allow nothing
    but the TURN server)."""

    @property
    def has_turn(self) -> bool:
        """Whether any TURN server is handed out: minted credentials, or a `turn:`/`turns:` URL
        in ICE_SERVERS."""
        if self.turn_secret and self.turn_urls:
            return True
        for server in self.servers:
            urls = server.get("urls")
            for url in [urls] if isinstance(urls, str) else urls or []:
                if isinstance(url, str) and url.startswith(("turn:", "turns:")):
                    return True
        return False


def turn_credentials(
    secret: str, user_id: int, ttl_seconds: int, now: float | None = None
) -> tuple[str, str]:
    expiry = int((now if now is not None else time.time()) + ttl_seconds)
    username = f"{expiry}:{user_id}"
    digest = hmac.new(secret.encode(), username.encode(), hashlib.sha1).digest()
    return username, base64.b64encode(digest).decode()


def ice_servers_for(config: IceConfig, user_id: int) -> list[dict[str, Any]]:
    servers = [dict(s) for s in config.servers]
    if config.turn_secret and config.turn_urls:
        username, credential = turn_credentials(
            config.turn_secret, user_id, config.turn_ttl_seconds
        )
        servers.append(
            {"urls": list(config.turn_urls), "username": username, "credential": credential}
        )
    return servers


def renew_after_seconds(config: IceConfig) -> float | None:
    """When a page should ask for fresh TURN credentials, in seconds from minting them; None:
    no minted credentials, or renewal turned off (TURN_RENEW_PERCENT=0)."""
    if not (config.turn_secret and config.turn_urls) or config.turn_renew_percent == 0:
        return None
    return config.turn_ttl_seconds * config.turn_renew_percent / 100
