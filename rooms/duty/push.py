"""Web Push subscriptions: a browser's push endpoint and keys, checked before they are kept.

A subscription is what `PushManager.subscribe()` gives a browser: the push service's endpoint
URL, the browser's P-256 public key (`p256dh`, 65 bytes uncompressed) and its auth secret
(16 bytes), both base64url. The server encrypts each notification to those keys (RFC 8291), so
the push service only relays ciphertext.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import urlsplit

from rooms.consults.errors import DomainError

MAX_ENDPOINT_CHARS = 1000
"""Longest endpoint URL kept (real push services use 150-500 characters)."""

MAX_SUBSCRIPTIONS_PER_USER = 10
"""Devices per user that get pushes; registering another drops that user's oldest one."""

KNOWN_PUSH_SERVICES: tuple[str, ...] = (
    "fcm.googleapis.com",  # Chrome, Chromium-based browsers on Android and desktop
    "updates.push.services.mozilla.com",  # Firefox
    "web.push.apple.com",  # Safari (macOS, iOS home-screen apps)
    "notify.windows.com",  # Edge (Windows Push Notification Services, per-region hosts)
)
"""The push services an https endpoint may point at by default (`PUSH_SERVICE_HOSTS`).

The server POSTs to whatever endpoint a signed-in user registers, so an open list would let
any user make the server send requests into the hospital network (server-side request
forgery). A host matches an entry exactly or as a subdomain of it."""


class InvalidSubscription(DomainError):
    """A push subscription that cannot be used; nothing was saved."""

    code = "invalid_subscription"


@dataclass(frozen=True, slots=True)
class PushSubscription:
    user_id: int
    endpoint: str
    p256dh: str
    auth: str
    created_at: datetime


def _b64url(value: str) -> bytes:
    try:
        return base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
    except (binascii.Error, ValueError):
        raise InvalidSubscription("keys must be base64url") from None


def is_loopback_host(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def is_allowed_push_host(host: str, allowed_hosts: tuple[str, ...]) -> bool:
    """True when `host` is one of `allowed_hosts` or a subdomain of one (`*` allows any)."""
    host = host.lower().rstrip(".")
    return any(
        entry == "*" or host == entry or host.endswith("." + entry) for entry in allowed_hosts
    )


def check_endpoint(
    endpoint: str,
    allow_http_loopback: bool,
    allowed_hosts: tuple[str, ...] = KNOWN_PUSH_SERVICES,
) -> str:
    """The endpoint, if the server may post to it: https to an allowed push service, or http
    on loopback when allowed (a local test push service)."""
    if len(endpoint) > MAX_ENDPOINT_CHARS:
        raise InvalidSubscription(f"the endpoint is longer than {MAX_ENDPOINT_CHARS} characters")
    try:
        parts = urlsplit(endpoint)
        host = parts.hostname or ""
        _ = parts.port
    except ValueError:
        raise InvalidSubscription("the endpoint is not a URL") from None
    if not host or parts.username or parts.password:
        raise InvalidSubscription("the endpoint needs a host and no credentials")
    if parts.scheme == "http" and allow_http_loopback and is_loopback_host(host):
        return endpoint
    if parts.scheme != "https":
        raise InvalidSubscription("the endpoint must be an https URL")
    if not is_allowed_push_host(host, allowed_hosts):
        raise InvalidSubscription(
            f"{host} is not a push service this server posts to (PUSH_SERVICE_HOSTS)"
        )
    return endpoint


def check_keys(p256dh: str, auth: str) -> None:
    """`InvalidSubscription` unless p256dh is a 65-byte P-256 point and auth 16 bytes."""
    point = _b64url(p256dh)
    if len(point) != 65 or point[0] != 4:
        raise InvalidSubscription("p256dh must be an uncompressed P-256 public key (65 bytes)")
    if len(_b64url(auth)) != 16:
        raise InvalidSubscription("auth must be 16 bytes")
