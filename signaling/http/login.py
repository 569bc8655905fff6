"""Logging in, the logged-in user, and the liveness check: the endpoints every server has."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from aiohttp import web
from pydantic import BaseModel, StringConstraints

from rooms.consults.errors import DatabaseUnavailable
from signaling import errors
from signaling.errors import ApiError
from signaling.http.api import Edge, Feature, json_response, parse_body
from signaling.passwords import verify_password
from signaling.ratelimit import RateLimiter
from signaling.schemas import Strict, UserOut

# ---- wire schemas --------------------------------------------------------------------------


class LoginRequest(Strict):
    username: Annotated[str, StringConstraints(min_length=1, max_length=64)]
    password: Annotated[str, StringConstraints(min_length=1, max_length=256)]


class LoginOut(BaseModel):
    token: str
    expires_at: datetime
    user: UserOut


class HealthOut(BaseModel):
    """`ok` when every part answers; otherwise 503 with `unavailable` and the failing part
    named `unavailable` (the process itself stays up and recovers on its own)."""

    status: Literal["ok", "unavailable"]
    database: Literal["ok", "unavailable"]


# ---- routes --------------------------------------------------------------------------------


def routes(edge: Edge, *, failed_logins: RateLimiter) -> Feature:
    """`failed_logins` counts wrong passwords per username (`LOGIN_ATTEMPTS_PER_MINUTE`)."""
    feature = Feature("login")

    @feature.route(
        "GET",
        "/healthz",
        "Liveness and database check",
        response=HealthOut,
        authenticated=False,
        unavailable_response=HealthOut,
    )
    async def healthz(_request: web.Request) -> web.Response:
        try:
            await edge.store.ping()
        except DatabaseUnavailable:
            return json_response(HealthOut(status="unavailable", database="unavailable"), 503)
        return json_response(HealthOut(status="ok", database="ok"))

    @feature.route(
        "POST",
        "/api/auth/login",
        "Exchange username and password for a JWT",
        body=LoginRequest,
        response=LoginOut,
        authenticated=False,
        errors=(errors.BAD_CREDENTIALS, errors.RATE_LIMITED, errors.INVALID_PAYLOAD),
    )
    async def login(request: web.Request) -> web.Response:
        body = await parse_body(request, LoginRequest)
        if failed_logins.exhausted(body.username):
            raise ApiError(errors.RATE_LIMITED, "too many failed logins; wait a minute", 429)
        found = await edge.store.credentials(body.username)
        user, password_hash = found if found else (None, None)
        if user is None or not verify_password(password_hash, body.password) or not user.active:
            failed_logins.hit(body.username)
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
