"""What every feature of the REST API is built with: its route table, the caller, the helpers.

A feature (`signaling.http.consults`, `.notes`, …) is a function `routes(deps…) -> Feature` that
declares its handlers with `@feature.route(...)`, which also records each one for the OpenAPI
document, so the document cannot drift from the routes that exist. `create_app` mounts the
features a server is built with; a server without one simply has no such routes.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from aiohttp import web
from aiohttp.typedefs import Middleware
from pydantic import BaseModel, ValidationError

from rooms.consults.errors import DomainError
from rooms.consults.log_context import consult_context
from rooms.consults.people import User
from rooms.consults.ports import ConsultStore
from signaling import errors
from signaling.auth import TokenIssuer, active_user, bearer_token
from signaling.errors import ApiError
from signaling.known_users import UserLookup
from signaling.schemas import MAX_ID
from signaling.views import Directory

log = logging.getLogger(__name__)

M = TypeVar("M", bound=BaseModel)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass(frozen=True)
class Endpoint:
    method: str
    path: str
    summary: str
    body: type[BaseModel] | None
    response: type[BaseModel] | None
    status: int
    authenticated: bool
    errors: tuple[str, ...]
    upload_field: str | None = None
    """The body is `multipart/form-data` with one file in this field (instead of JSON)."""
    binary_response: tuple[str, ...] = ()
    """The success response is raw bytes of one of these media types (instead of JSON)."""
    unavailable_response: type[BaseModel] | None = None
    """The body of a 503 when a part the server needs is down, if not `{code, message}`."""
    other_response: tuple[tuple[str, str], ...] = ()
    """The success response is a document of one of these (media type, JSON schema type) pairs
    that no model here describes (a CSV text, a FHIR Bundle)."""
    query: type[BaseModel] | None = None
    """The query parameters the handler reads, one field each (by alias); a `list` field may be
    given more than once (`?status=a&status=b`)."""
    ranges: bool = False
    """The handler honours a single `Range: bytes=…` header: 206 with `Content-Range`, or 416."""
    writes: bool | None = None
    """Whether the handler writes to the database (so a full database disk answers it 507
    `storage_full`); None: every method but GET does. A GET that writes an audit entry says
    True, a POST that only reads (login) False."""

    @property
    def may_write(self) -> bool:
        return self.method != "GET" if self.writes is None else self.writes


class Feature:
    """One feature's routes, each remembered with its schemas for the OpenAPI document."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.routes = web.RouteTableDef()
        self.endpoints: list[Endpoint] = []

    def route(
        self,
        method: str,
        path: str,
        summary: str,
        *,
        body: type[BaseModel] | None = None,
        response: type[BaseModel] | None = None,
        status: int = 200,
        authenticated: bool = True,
        errors: tuple[str, ...] = (),
        upload_field: str | None = None,
        binary_response: tuple[str, ...] = (),
        unavailable_response: type[BaseModel] | None = None,
        query: type[BaseModel] | None = None,
        ranges: bool = False,
        other_response: tuple[tuple[str, str], ...] = (),
        writes: bool | None = None,
    ) -> Callable[[Handler], Handler]:
        def register(handler: Handler) -> Handler:
            self.endpoints.append(
                Endpoint(
                    method,
                    path,
                    summary,
                    body,
                    response,
                    status,
                    authenticated,
                    errors,
                    upload_field,
                    binary_response,
                    unavailable_response,
                    other_response,
                    query,
                    ranges,
                    writes,
                )
            )
            self.routes.route(method, path)(handler)
            return handler

        return register


@dataclass(frozen=True)
class Edge:
    """What the handlers of every feature need: who is calling, and the names of the people and
    institutions their answers show."""

    tokens: TokenIssuer
    store: ConsultStore
    users: UserLookup | None = None
    """Where the user behind a token is looked up (`KnownUsers`); None: the store, every time."""

    async def caller(self, request: web.Request) -> User:
        """The active user the request's bearer token speaks for; `ApiError` (401) otherwise."""
        token = bearer_token(request.headers.get("Authorization"))
        user, _claims = await active_user(self.tokens, self.users or self.store, token)
        return user

    def directory(self) -> Directory:
        """A name lookup for one response."""
        return Directory(self.store)


def json_response(model: BaseModel, status: int = 200) -> web.Response:
    return web.json_response(model.model_dump(mode="json"), status=status)


async def parse_body(request: web.Request, model: type[M]) -> M:
    """The request body as `model`; `ApiError` naming the first problem otherwise."""
    raw = await request.read()
    if not raw:
        raw = b"{}"
    try:
        data = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ApiError(errors.INVALID_PAYLOAD, f"request body is not JSON: {exc}", 400) from None
    except RecursionError:
        raise ApiError(
            errors.INVALID_PAYLOAD, "request body is not usable JSON: nested too deeply", 400
        ) from None
    except ValueError:  # an integer over `sys.get_int_max_str_digits()` digits
        raise ApiError(
            errors.INVALID_PAYLOAD, "request body is not usable JSON: a number is too long", 400
        ) from None
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise errors.from_validation(exc, "request body") from None


def query_of(request: web.Request, model: type[M]) -> M:
    """The query parameters `model` names (by alias), as `model`: a list field from every value
    given, any other field from the first; an empty value counts as absent, and parameters the
    model does not name are ignored. `invalid_payload` (422) naming the first problem."""
    raw: dict[str, object] = {}
    for name, field in model.model_fields.items():
        key = field.alias or name
        values = [v for v in request.query.getall(key, []) if v]
        if not values:
            continue
        raw[key] = values if _is_list(field.annotation) else values[0]
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        raise errors.from_validation(exc, "query") from None


def _is_list(annotation: object) -> bool:
    return getattr(annotation, "__origin__", None) is list


def consult_id_of(request: web.Request) -> str:
    return request.match_info["consult_id"]


def int_id_of(request: web.Request, name: str) -> int:
    """The id in the path parameter `name`: ASCII digits, 1 … `MAX_ID`; `not_found` for anything
    else (`int()` alone would also read Arabic-Indic digits, and any length)."""
    found = request.match_info[name]
    if not found.isascii() or not found.isdigit() or len(found) > len(str(MAX_ID)):
        raise ApiError("not_found", f"no such id {found[:40]}", 404)
    value = int(found)
    if not 1 <= value <= MAX_ID:
        raise ApiError("not_found", f"no such id {found[:40]}", 404)
    return value


def hex_id_of(request: web.Request, kind: str) -> str:
    """The 32-hex-digit id in the path parameter `<kind>_id`; `not_found` for anything else."""
    found = request.match_info[f"{kind}_id"]
    if len(found) != 32 or any(c not in "0123456789abcdef" for c in found):
        raise ApiError("not_found", f"no {kind} {found[:40]}", 404)
    return found


MAX_PATH_CHARS = 2048
"""The longest URL path (without the query) answered: no route or file of this server comes
near it; a longer one is `uri_too_long` (414) before any route or the file system sees it."""

URI_TOO_LONG = errors.URI_TOO_LONG


def error_middleware(
    max_request_bytes: int, on_error: Callable[[str], None] | None = None
) -> Middleware:
    """Every failure leaves as `{code, message}` with the status that fits it; a body over
    `max_request_bytes` (the app's `client_max_size`) as `payload_too_large`. `on_error` is
    told the code of every error answered (`/metrics`). A request on one consult (a
    `{consult_id}` in its path) names it in the log (`rooms.consults.log_context`)."""

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        with consult_context(request.match_info.get("consult_id")):
            response = await answer(request, handler)
        if on_error is not None and response.status >= 400 and isinstance(response, web.Response):
            on_error(error_code(response))
        return response

    async def answer(request: web.Request, handler: Handler) -> web.StreamResponse:
        if len(request.rel_url.raw_path) > MAX_PATH_CHARS:
            return web.json_response(
                {"code": URI_TOO_LONG, "message": f"path longer than {MAX_PATH_CHARS} characters"},
                status=414,
            )
        try:
            return await handler(request)
        except ApiError as exc:
            return web.json_response(exc.body(), status=exc.status)
        except DomainError as exc:
            mapped = errors.from_domain(exc)
            return web.json_response(mapped.body(), status=mapped.status)
        except web.HTTPRequestEntityTooLarge:
            return web.json_response(
                {
                    "code": errors.PAYLOAD_TOO_LARGE,
                    "message": f"request body is larger than {max_request_bytes} bytes",
                },
                status=413,
            )
        except web.HTTPException as exc:
            if exc.status < 400 or not request.path.startswith("/api"):
                raise
            code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status, "http_error")
            return web.json_response({"code": code, "message": exc.reason}, status=exc.status)
        except ConnectionResetError:
            raise  # the client went away (e.g. a socket.io long-poll); nothing to answer
        except OSError as exc:
            if request.path.startswith(("/api", "/healthz")):
                return internal_error(request)
            if request.path.startswith("/socket.io"):
                raise
            # A page path the file system cannot even look up (a name over NAME_MAX): no such
            # file, rather than the 500 aiohttp's static handler would answer.
            return web.json_response(
                {"code": "not_found", "message": f"no such file ({exc.strerror})"}, status=404
            )
        except Exception:
            if not request.path.startswith(("/api", "/healthz")):
                raise
            return internal_error(request)

    return middleware


def error_code(response: web.Response) -> str:
    """The `code` of an error answer (`http_<status>` if it has none)."""
    try:
        body = json.loads(response.body) if isinstance(response.body, bytes) else None
    except ValueError:
        body = None
    code = body.get("code") if isinstance(body, dict) else None
    return code if isinstance(code, str) and len(code) <= 64 else f"http_{response.status}"


def internal_error(request: web.Request) -> web.Response:
    """The answer to a bug (called while its exception is handled, which is logged)."""
    log.exception("unhandled error on %s %s", request.method, request.path)
    return web.json_response(
        {"code": errors.INTERNAL, "message": "internal error; it has been logged"},
        status=500,
    )
