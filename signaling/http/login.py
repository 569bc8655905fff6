"""Logging in, the logged-in user, and the liveness check: the endpoints every server has."""

from __future__ import annotations

import asyncio
import logging
import shutil
from datetime import datetime
from pathlib import Path
from typing import Annotated, Literal

from aiohttp import web
from pydantic import BaseModel, StringConstraints

from rooms.consults.errors import DatabaseUnavailable
from signaling import errors
from signaling.errors import ApiError
from signaling.fanout import RedisLink
from signaling.http.api import Edge, Feature, json_response, parse_body
from signaling.passwords import PasswordChecks, PasswordChecksBusy
from signaling.ratelimit import RateLimiter
from signaling.schemas import Strict, UserOut

log = logging.getLogger(__name__)

# ---- wire schemas --------------------------------------------------------------------------


class LoginRequest(Strict):
    username: Annotated[str, StringConstraints(min_length=1, max_length=64)]
    password: Annotated[str, StringConstraints(min_length=1, max_length=256)]


class LoginOut(BaseModel):
    token: str
    expires_at: datetime
    user: UserOut


StorageState = Literal["ok", "low", "unavailable"]


class HealthOut(BaseModel):
    """`ok` when every part answers; otherwise 503 with `unavailable` and the failing part
    named: `database` `unavailable`; `database_storage` `low` (the file system holding the
    SQLite database has less free space than `MIN_FREE_DISK_MB`) or `unavailable` (its free
    space cannot be read) — `not_watched` on PostgreSQL, whose disk is its server's; `storage`
    `low` or `unavailable`, the same for the recordings directory; `redis` `unreachable` while
    the fan-out to other signaling processes (`REDIS_URL`) cannot reach Redis — `not_configured`
    without `REDIS_URL`. The process itself stays up and recovers on its own."""

    status: Literal["ok", "unavailable"]
    database: Literal["ok", "unavailable"]
    database_storage: Literal["ok", "low", "unavailable", "not_watched"]
    storage: StorageState
    redis: Literal["ok", "unreachable", "not_configured"]


def storage_state(directory: Path | None, min_free_mb: int) -> StorageState:
    """Whether `directory`'s file system has at least `min_free_mb` MiB free (blocking)."""
    if directory is None or min_free_mb <= 0:
        return "ok"
    try:
        free = shutil.disk_usage(directory).free
    except OSError as exc:
        log.warning("cannot read the free space of %s: %s", directory, exc)
        return "unavailable"
    return "ok" if free >= min_free_mb * 1024 * 1024 else "low"


def _disks(
    recordings_dir: Path | None, database_dir: Path | None, min_free_mb: int
) -> tuple[StorageState, StorageState | Literal["not_watched"]]:
    """The recordings directory's and the SQLite database's free space (blocking)."""
    database = "not_watched" if database_dir is None else storage_state(database_dir, min_free_mb)
    return storage_state(recordings_dir, min_free_mb), database


def _busy() -> ApiError:
    return ApiError(
        errors.RATE_LIMITED, "server busy checking passwords; retry in a few seconds", 429
    )


# ---- routes --------------------------------------------------------------------------------


def routes(
    edge: Edge,
    *,
    failed_logins: RateLimiter,
    failed_logins_by_address: RateLimiter | None = None,
    passwords: PasswordChecks | None = None,
    storage_dir: Path | None = None,
    database_dir: Path | None = None,
    min_free_disk_mb: int = 0,
    redis: RedisLink | None = None,
) -> Feature:
    """`failed_logins` counts wrong passwords per username (`LOGIN_ATTEMPTS_PER_MINUTE`),
    `failed_logins_by_address` per client address (`LOGIN_ATTEMPTS_PER_ADDRESS_PER_MINUTE`;
    None: not limited); `passwords` verifies off the event loop, bounded
    (`PASSWORD_CHECKS_AT_ONCE`, `PASSWORD_CHECKS_WAITING`). `/healthz` reports `storage_dir`
    (the recordings directory) and `database_dir` (the SQLite database's directory; None: the
    database is PostgreSQL, not watched) `low` below `min_free_disk_mb` MiB free
    (`MIN_FREE_DISK_MB`; 0: not checked), and `redis`'s state (None: no `REDIS_URL`)."""
    feature = Feature("login")
    checks = passwords if passwords is not None else PasswordChecks()
    by_address = failed_logins_by_address

    @feature.route(
        "GET",
        "/healthz",
        "Liveness: the database, its disk, recording storage and Redis",
        response=HealthOut,
        authenticated=False,
        unavailable_response=HealthOut,
    )
    async def healthz(_request: web.Request) -> web.Response:
        # statvfs is quick on a local disk, but not on a hung network mount: off the loop.
        storage, database_storage = await asyncio.to_thread(
            _disks, storage_dir, database_dir, min_free_disk_mb
        )
        database: Literal["ok", "unavailable"] = "ok"
        try:
            await edge.store.ping()
        except DatabaseUnavailable:
            database = "unavailable"
        fan_out = "not_configured" if redis is None else redis.state
        healthy = (
            database == "ok"
            and database_storage in ("ok", "not_watched")
            and storage == "ok"
            and fan_out in ("ok", "not_configured")
        )
        health = HealthOut(
            status="ok" if healthy else "unavailable",
            database=database,
            database_storage=database_storage,
            storage=storage,
            redis=fan_out,
        )
        return json_response(health, 200 if healthy else 503)

    @feature.route(
        "POST",
        "/api/auth/login",
        "Exchange username and password for a JWT",
        body=LoginRequest,
        response=LoginOut,
        authenticated=False,
        errors=(errors.BAD_CREDENTIALS, errors.RATE_LIMITED, errors.INVALID_PAYLOAD),
        writes=False,
    )
    async def login(request: web.Request) -> web.Response:
        body = await parse_body(request, LoginRequest)
        # Behind a reverse proxy this is the proxy's address (no forwarded header is trusted).
        address = request.remote or "unknown"
        if failed_logins.exhausted(body.username) or (
            by_address is not None and by_address.exhausted(address)
        ):
            raise ApiError(errors.RATE_LIMITED, "too many failed logins; wait a minute", 429)
        if checks.full:  # refused before the database is asked: a flood costs little
            raise _busy()
        found = await edge.store.credentials(body.username)
        user, password_hash = found if found else (None, None)
        try:
            # Always exactly one verify, an unknown user's against the dummy hash: the answer
            # takes as long whether the username exists or not.
            matches = await checks.verify(password_hash, body.password)
        except PasswordChecksBusy:
            raise _busy() from None
        if user is None or not matches or not user.active:
            failed_logins.hit(body.username)
            if by_address is not None:
                by_address.hit(address)
            raise ApiError(errors.BAD_CREDENTIALS, "wrong username or password", 401)
        token, expires = edge.tokens.issue(user)
        return json_response(
            LoginOut(token=token, expires_at=expires, user=await edge.directory().user_out(user))
        )

    @feature.route("GET", "/api/me", "The logged-in user", response=UserOut)
    async def me(request: web.Request) -> web.Response:
        user = await edge.caller(request)
        return json_response(await edge.directory().user_out(user))

    return feature
