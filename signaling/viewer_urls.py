"""Signed viewer URLs of a training's broadcast: checked on every request without the database.

A trainee admitted to a training (`POST /api/trainings/{id}/admission`, checked against the
audience and audited once) gets the URL prefix `/hls/{training}/{expires}/{signature}/`; the
playlists name their segments relative to it, so every file the player fetches carries the
same proof. The signature is an HMAC-SHA256 (a key derived from the JWT secret for this use
alone) of the training id and the expiry, checked in constant time.

The expiry is rounded up to a whole `bucket`: everybody admitted within one bucket gets the
same URL, so a cache or CDN in front stores each segment once per bucket, not once per viewer.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from signaling.errors import VIEWER_URL_EXPIRED, VIEWER_URL_INVALID, ApiError

KEY_LABEL = b"teleconsult training viewer url v1"
MAX_EXPIRES_DIGITS = 11
"""A Unix time in seconds (until the year 5138); longer is not an expiry we issued."""


@dataclass(frozen=True, slots=True)
class ViewerUrl:
    prefix: str
    """`/hls/{training}/{expires}/{signature}/`: append `live.m3u8`, `vod.m3u8`, …"""
    expires_at: datetime


class ViewerUrls:
    def __init__(
        self,
        secret: str,
        ttl: timedelta,
        bucket: timedelta,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.clock = clock
        self._key = hmac.new(secret.encode(), KEY_LABEL, hashlib.sha256).digest()
        self.ttl = ttl
        self.bucket = bucket

    def _sign(self, training_id: str, expires: int) -> str:
        mac = hmac.new(self._key, f"{training_id}:{expires}".encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(mac[:18]).decode()

    def issue(self, training_id: str, now: datetime | None = None) -> ViewerUrl:
        issued = (now or self.clock()).timestamp() + self.ttl.total_seconds()
        step = self.bucket.total_seconds()
        expires = int(math.ceil(issued / step) * step)
        signature = self._sign(training_id, expires)
        return ViewerUrl(
            f"/hls/{training_id}/{expires}/{signature}/", datetime.fromtimestamp(expires, UTC)
        )

    def check(
        self, training_id: str, expires: str, signature: str, now: datetime | None = None
    ) -> None:
        """`ApiError` 403 unless the URL was issued by this server for this training and has
        not expired."""
        if not expires.isascii() or not expires.isdigit() or len(expires) > MAX_EXPIRES_DIGITS:
            raise ApiError(VIEWER_URL_INVALID, "this viewer URL was not issued here", 403)
        wanted = self._sign(training_id, int(expires))
        if not hmac.compare_digest(wanted.encode(), signature.encode("utf-8", "replace")):
            raise ApiError(VIEWER_URL_INVALID, "this viewer URL was not issued here", 403)
        if int(expires) <= (now or self.clock()).timestamp():
            raise ApiError(
                VIEWER_URL_EXPIRED, "this viewer URL has expired: open the training again", 403
            )
