"""The OpenAPI 3.1 document of the REST API, built from the registered endpoints' schemas."""

from __future__ import annotations

import re
from typing import Any

from pydantic import BaseModel

from signaling import errors
from signaling.http.api import Endpoint


class ErrorOut(BaseModel):  # every error answer (`signaling.errors.ApiError.body`)
    code: str
    message: str
    details: list[dict[str, Any]] | None = None


def _ref(model: type[BaseModel], schemas: dict[str, Any]) -> dict[str, str]:
    schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
    for name, sub in schema.pop("$defs", {}).items():
        schemas[name] = sub
    schemas[model.__name__] = schema
    return {"$ref": f"#/components/schemas/{model.__name__}"}


_PARAMETER = re.compile(r"\{([^{}:]+)(?::([^{}]*(?:\{[^{}]*\}[^{}]*)*))?\}")
"""An aiohttp path parameter, `{name}` or `{name:regex}` (whose regex may hold `{m,n}`)."""


def path_template(route_path: str) -> tuple[str, list[str]]:
    """The OpenAPI path template of an aiohttp route path and its parameter names: a regex
    aiohttp matches the parameter with is the server's business, not part of the template."""
    names = [m.group(1) for m in _PARAMETER.finditer(route_path)]
    return _PARAMETER.sub(lambda m: "{" + m.group(1) + "}", route_path), names


def path_schemas(route_path: str) -> dict[str, dict[str, str]]:
    """The schema of each path parameter: a string, matching the route's regex if it has one."""
    return {
        m.group(1): {"type": "string", **({"pattern": f"^(?:{m.group(2)})$"} if m.group(2) else {})}
        for m in _PARAMETER.finditer(route_path)
    }


def _without_null(schema: dict[str, Any]) -> dict[str, Any]:
    """A query parameter is absent rather than null: `X | None` is declared as `X`."""
    options = schema.get("anyOf")
    if options is None:
        return schema
    kept = [o for o in options if o != {"type": "null"}]
    rest = {k: v for k, v in schema.items() if k != "anyOf"}
    return {**kept[0], **rest} if len(kept) == 1 else {**rest, "anyOf": kept}


def query_parameters(model: type[BaseModel], schemas: dict[str, Any]) -> list[dict[str, Any]]:
    """One `in: query` parameter per field of `model` (by alias), typed by its JSON schema; a
    list field is repeated (`?status=a&status=b`)."""
    schema = model.model_json_schema(by_alias=True, ref_template="#/components/schemas/{model}")
    for name, sub in schema.pop("$defs", {}).items():
        schemas[name] = sub
    required = set(schema.get("required", ()))
    parameters = []
    for name, prop in schema.get("properties", {}).items():
        prop = _without_null(prop)
        parameter: dict[str, Any] = {"name": name, "in": "query", "required": name in required}
        description = prop.pop("description", None)
        prop.pop("title", None)
        if "default" in prop and prop["default"] is None:
            del prop["default"]
        if description:
            parameter["description"] = description
        if prop.get("type") == "array":
            parameter["style"] = "form"
            parameter["explode"] = True
        parameter["schema"] = prop
        parameters.append(parameter)
    return parameters


RANGE_HEADER = {
    "name": "Range",
    "in": "header",
    "required": False,
    "description": "One byte range, `bytes=first-[last]` or `bytes=-suffix`; without it the "
    "whole file is sent (200)",
    "schema": {"type": "string", "pattern": "^bytes=\\d*-\\d*$"},
}

CONTENT_RANGE = {
    "description": "`bytes first-last/size` (206) or `bytes */size` (416)",
    "schema": {"type": "string"},
}


STATUS_MEANING = {
    400: "the request cannot be read",
    401: "not authenticated",
    403: "not permitted",
    404: "no such thing",
    409: "conflicts with the current state",
    413: "too large",
    414: "the path is too long",
    415: "not the media type this endpoint reads",
    416: "range not satisfiable",
    422: "a value does not fit",
    429: "too many attempts",
    503: "unavailable",
    507: "the database's disk is full; nothing was saved",
}


def error_statuses(ep: Endpoint, has_path_parameters: bool) -> dict[int, list[str]]:
    """Every error status the endpoint answers, with the codes each may carry: the codes the
    endpoint declares (`errors=`), and those implied by what it reads — any path answers
    `uri_too_long`; a bearer token the `token_*` codes; an id in the path `not_found`; a body,
    query or upload `invalid_payload` (400 for a body that is not JSON, 415 for an upload that
    is not multipart/form-data, 422 for a value that does not fit); a JSON body
    `payload_too_large`; a handler that writes `storage_full` (507). Each code's statuses come
    from `signaling.errors.statuses_of`. 503 (`database_unavailable`, `busy`) is added by the
    caller, since every endpoint may answer it."""
    codes: list[tuple[str, tuple[int, ...]]] = [
        (code, errors.statuses_of(code)) for code in ep.errors
    ]
    codes.append((errors.URI_TOO_LONG, errors.statuses_of(errors.URI_TOO_LONG)))
    if ep.authenticated:
        for code in (
            errors.TOKEN_MISSING,
            errors.TOKEN_INVALID,
            errors.TOKEN_EXPIRED,
            errors.TOKEN_WRONG_AUDIENCE,
        ):
            codes.append((code, errors.statuses_of(code)))
    if has_path_parameters:
        codes.append((errors.NOT_FOUND, errors.statuses_of(errors.NOT_FOUND)))
    if ep.query is not None:
        codes.append((errors.INVALID_PAYLOAD, (422,)))
    if ep.body is not None:
        codes.append((errors.INVALID_PAYLOAD, (400, 422)))
        codes.append((errors.PAYLOAD_TOO_LARGE, errors.statuses_of(errors.PAYLOAD_TOO_LARGE)))
    if ep.upload_field is not None:
        codes.append((errors.INVALID_PAYLOAD, (400, 415, 422)))
    if ep.may_write:
        codes.append((errors.STORAGE_FULL, errors.statuses_of(errors.STORAGE_FULL)))
    by_status: dict[int, list[str]] = {}
    for code, statuses in codes:
        for status in statuses:
            if status == 503:
                continue  # described once, with the database's codes (below)
            listed = by_status.setdefault(status, [])
            if code not in listed:
                listed.append(code)
    return by_status


def build_openapi(endpoints: list[Endpoint], version: str) -> dict[str, Any]:
    schemas: dict[str, Any] = {}
    error_ref = _ref(ErrorOut, schemas)
    paths: dict[str, dict[str, Any]] = {}
    for ep in endpoints:
        op: dict[str, Any] = {"summary": ep.summary, "responses": {}}
        if ep.authenticated:
            op["security"] = [{"bearer": []}]
        template, params = path_template(ep.path)
        schemas_of = path_schemas(ep.path)
        parameters: list[dict[str, Any]] = [
            {"name": p, "in": "path", "required": True, "schema": schemas_of[p]} for p in params
        ]
        if ep.query is not None:
            parameters += query_parameters(ep.query, schemas)
        if ep.ranges:
            parameters.append(RANGE_HEADER)
        if parameters:
            op["parameters"] = parameters
        if ep.body is not None:
            op["requestBody"] = {
                "required": True,
                "content": {"application/json": {"schema": _ref(ep.body, schemas)}},
            }
        if ep.upload_field is not None:
            op["requestBody"] = {
                "required": True,
                "content": {
                    "multipart/form-data": {
                        "schema": {
                            "type": "object",
                            "required": [ep.upload_field],
                            "properties": {ep.upload_field: {"type": "string", "format": "binary"}},
                        }
                    }
                },
            }
        ok: dict[str, Any] = {"description": "success"}
        if ep.response is not None:
            ok["content"] = {"application/json": {"schema": _ref(ep.response, schemas)}}
        elif ep.binary_response:
            ok["content"] = {
                media_type: {"schema": {"type": "string", "format": "binary"}}
                for media_type in ep.binary_response
            }
        elif ep.other_response:
            ok["content"] = {
                media_type: {"schema": {"type": schema_type}}
                for media_type, schema_type in ep.other_response
            }
        op["responses"][str(ep.status)] = ok
        if ep.ranges:
            ok["headers"] = {
                "Accept-Ranges": {"schema": {"type": "string", "const": "bytes"}},
            }
            op["responses"]["206"] = {
                "description": "the byte range asked for (`Range`)",
                "headers": {"Content-Range": CONTENT_RANGE, **ok["headers"]},
                "content": ok.get("content", {}),
            }
            op["responses"]["416"] = {
                "description": "the range lies outside the file, or is more than one range: "
                f"`{{code, message}}`; code: {errors.RANGE_NOT_SATISFIABLE}",
                "headers": {"Content-Range": CONTENT_RANGE},
                "content": {"application/json": {"schema": error_ref}},
            }
        declared = error_statuses(ep, bool(params))
        also_unavailable = [c for c in ep.errors if 503 in errors.statuses_of(c)]
        for status, codes in sorted(declared.items()):
            if str(status) in op["responses"]:
                continue  # 416 of a ranged read, described above with its header
            op["responses"][str(status)] = {
                "description": f"{STATUS_MEANING.get(status, 'error')}: `{{code, message}}`; "
                f"codes: {', '.join(codes)}",
                "content": {"application/json": {"schema": error_ref}},
            }
        if ep.unavailable_response is not None:
            unavailable = {
                "description": "a part the server needs does not answer",
                "content": {"application/json": {"schema": _ref(ep.unavailable_response, schemas)}},
            }
        else:
            unavailable = {
                "description": "the database does not answer or is busy, or a part the "
                "endpoint needs is missing; nothing changed, retry later: `{code, message}`; "
                "codes: "
                + ", ".join([errors.DATABASE_UNAVAILABLE, errors.BUSY, *also_unavailable]),
                "content": {"application/json": {"schema": error_ref}},
            }
        op["responses"]["503"] = unavailable
        op["responses"] = dict(sorted(op["responses"].items()))
        paths.setdefault(template, {})[ep.method.lower()] = op
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "teleconsult",
            "version": version,
            "description": "REST API of teleconsult. Real-time signaling is socket.io; "
            "see docs/protocol.md.",
        },
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
            },
        },
    }
