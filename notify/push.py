"""Web Push: sends an encrypted notification to every registered browser of a user.

Uses pywebpush's asyncio API (`webpush_async`, on aiohttp) with the server's VAPID key: each
request carries `Authorization: vapid t=<JWT>,k=<public key>` (RFC 8292, `aud` = the push
service's origin) and an `aes128gcm` body encrypted to the subscription's keys (RFC 8291).
Every send is bounded by `PUSH_TIMEOUT_SECONDS`; a push service that answers 404 or 410 says
the subscription is gone, and it is forgotten.
"""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import asdict, dataclass
from datetime import timedelta
from typing import Any

import aiohttp
from cryptography.hazmat.primitives import serialization
from py_vapid import Vapid02
from py_vapid.utils import b64urlencode
from pywebpush import WebPushException, webpush_async

from rooms.duty.push import PushSubscription
from rooms.duty.services import PushSubscriptions

log = logging.getLogger(__name__)

GONE = frozenset({404, 410})
"""Push service answers that mean the subscription no longer exists."""


@dataclass(frozen=True, slots=True)
class PushMessage:
    """What the service worker shows. No patient data: it may appear on a locked screen."""

    kind: str
    consult_id: str
    url: str
    """Where a tap on the notification leads (a page of this server, path only)."""
    title: str
    body: str
    title_en: str
    body_en: str
    scheduled_at: str | None = None
    """ISO 8601 (UTC) of a reminded consult's time; the service worker shows it in local time."""

    def payload(self) -> bytes:
        return json.dumps(asdict(self), ensure_ascii=False).encode()


def public_key_b64(vapid: Vapid02) -> str:
    """The VAPID public key as the browser's `applicationServerKey` (base64url, no padding)."""
    raw = vapid.public_key.public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )
    return str(b64urlencode(raw))


class WebPushSender:
    def __init__(
        self,
        vapid: Vapid02,
        subject: str,
        subscriptions: PushSubscriptions,
        timeout: timedelta,
        ttl: timedelta,
    ) -> None:
        self.vapid = vapid
        self.subject = subject
        self.subscriptions = subscriptions
        self.timeout = timeout.total_seconds()
        self.ttl = int(ttl.total_seconds())
        self._session: aiohttp.ClientSession | None = None

    @property
    def public_key(self) -> str:
        return public_key_b64(self.vapid)

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession()
        return self._session

    async def send(self, user_ids: list[int], message: PushMessage) -> int:
        """Push `message` to every subscription of these users; how many push services took it."""
        subs = await self.subscriptions.for_users(user_ids)
        results = await asyncio.gather(*(self._send_one(s, message) for s in subs))
        return sum(results)

    async def _send_one(self, sub: PushSubscription, message: PushMessage) -> bool:
        info: dict[str, Any] = {
            "endpoint": sub.endpoint,
            "keys": {"p256dh": sub.p256dh, "auth": sub.auth},
        }
        try:
            await asyncio.wait_for(
                webpush_async(
                    info,
                    data=message.payload().decode(),
                    vapid_private_key=self.vapid,
                    vapid_claims={"sub": self.subject},  # pywebpush adds aud and exp
                    ttl=self.ttl,
                    timeout=aiohttp.ClientTimeout(total=self.timeout),
                    aiohttp_session=self._client(),
                ),
                self.timeout,
            )
        except WebPushException as exc:
            if exc.response is not None and exc.status_code in GONE:
                log.info("push subscription of user %s is gone; forgetting it", sub.user_id)
                await self.subscriptions.gone(sub.endpoint)
            else:
                log.warning("push to user %s failed: %s", sub.user_id, exc.message)
            return False
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            log.warning("push to user %s failed: %r", sub.user_id, exc)
            return False
        return True
