"""JWTs for users: minted at login (or by the CLI), verified on every request and connection."""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt

from rooms.consults.people import Role, User
from signaling import errors
from signaling.errors import ApiError
from signaling.known_users import UserLookup

ALGORITHM = "HS256"
ISSUER = "teleconsult"


@dataclass(frozen=True, slots=True)
class Claims:
    user_id: int
    role: Role
    institution_id: int
    expires_at: datetime


class TokenIssuer:
    def __init__(self, secret: str, audience: str, ttl: timedelta) -> None:
        if len(secret) < 32:
            raise ValueError("JWT_SECRET must be at least 32 characters")
        self._secret = secret
        self.audience = audience
        self.ttl = ttl

    def issue(
        self, user: User, ttl: timedelta | None = None, now: datetime | None = None
    ) -> tuple[str, datetime]:
        issued = now or datetime.now(UTC)
        expires = issued + (ttl or self.ttl)
        payload = {
            "sub": str(user.id),
            "role": user.role.value,
            "inst": user.institution_id,
            "iss": ISSUER,
            "aud": self.audience,
            "iat": int(issued.timestamp()),
            "exp": int(expires.timestamp()),
            "jti": secrets.token_hex(8),
        }
        return jwt.encode(payload, self._secret, algorithm=ALGORITHM), expires

    def verify(self, token: str | None) -> Claims:
        """The token's claims; `ApiError` (401) naming what is wrong otherwise."""
        if not token:
            raise ApiError(errors.TOKEN_MISSING, "no token: log in first", 401)
        with refusals("the token", "log in again", "the token was issued for another service"):
            payload = decode(token, self._secret, self.audience)
            return Claims(
                user_id=int(payload["sub"]),
                role=Role(payload["role"]),
                institution_id=int(payload["inst"]),
                expires_at=datetime.fromtimestamp(payload["exp"], UTC),
            )


def decode(token: str, secret: str, audience: str) -> dict[str, Any]:
    """The verified payload: signature, algorithm, `exp`, `aud` and `iss` all checked."""
    payload: dict[str, Any] = jwt.decode(
        token,
        secret,
        algorithms=[ALGORITHM],
        audience=audience,
        issuer=ISSUER,
        options={"require": ["exp", "iat", "sub", "aud", "iss"]},
    )
    return payload


@contextlib.contextmanager
def refusals(what: str, remedy: str, wrong_audience: str) -> Iterator[None]:
    """PyJWT's errors as 401 `ApiError`s with their stable codes."""
    try:
        yield
    except jwt.ExpiredSignatureError:
        raise ApiError(errors.TOKEN_EXPIRED, f"{what} has expired: {remedy}", 401) from None
    except jwt.InvalidAudienceError:
        raise ApiError(errors.TOKEN_WRONG_AUDIENCE, wrong_audience, 401) from None
    except (jwt.InvalidTokenError, KeyError, ValueError, OverflowError, OSError):
        # OverflowError/OSError: an `exp` no datetime holds (10^30 seconds).
        raise ApiError(errors.TOKEN_INVALID, f"{what} is not valid", 401) from None


def bearer_token(header: str | None) -> str | None:
    if header and header.startswith("Bearer "):
        return header[len("Bearer ") :].strip() or None
    return None


async def active_user(
    tokens: TokenIssuer, users: UserLookup, token: str | None
) -> tuple[User, Claims]:
    """The active user a token speaks for (a disabled user is refused even with a valid token:
    `users` is the store, or `KnownUsers`, which drops a changed user at once), and the
    token's claims; `ApiError` (401) otherwise."""
    claims = tokens.verify(token)
    user = await users.get_user(claims.user_id)
    if user is None or not user.active:
        raise ApiError(
            errors.TOKEN_INVALID, "the token's user no longer exists or is disabled", 401
        )
    return user, claims


PLAYBACK_AUDIENCE_SUFFIX = ":playback"


class PlaybackTokens:
    """Short-lived links to one recording for one user: a `<video>` cannot send a header.

    Signed with the same secret but for another audience, so a playback token is never accepted
    as a login token nor the other way round, and it names the one recording it opens.
    """

    def __init__(self, secret: str, audience: str, ttl: timedelta) -> None:
        self._secret = secret
        self.audience = audience + PLAYBACK_AUDIENCE_SUFFIX
        self.ttl = ttl

    def issue(
        self, user: User, recording_id: str, now: datetime | None = None
    ) -> tuple[str, datetime]:
        issued = now or datetime.now(UTC)
        expires = issued + self.ttl
        payload = {
            "sub": str(user.id),
            "rec": recording_id,
            "iss": ISSUER,
            "aud": self.audience,
            "iat": int(issued.timestamp()),
            "exp": int(expires.timestamp()),
        }
        return jwt.encode(payload, self._secret, algorithm=ALGORITHM), expires

    def verify(self, token: str | None, recording_id: str) -> int:
        """The user id the link was made for; `ApiError` (401) otherwise."""
        if not token:
            raise ApiError(errors.TOKEN_MISSING, "no playback link token (access=…)", 401)
        with refusals(
            "the playback link", "ask for a new one", "this token is not a playback link"
        ):
            payload = decode(token, self._secret, self.audience)
            if payload.get("rec") != recording_id:
                raise ApiError(
                    errors.TOKEN_INVALID, "the playback link is for another recording", 401
                )
            return int(payload["sub"])
