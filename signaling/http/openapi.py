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
        failure = {
            "description": "error: `{code, message}`"
            + (f"; codes: {', '.join(ep.errors)}" if ep.errors else ""),
            "content": {"application/json": {"schema": error_ref}},
        }
        op["responses"]["4XX"] = failure
        if ep.unavailable_response is not None:
            unavailable = {
                "description": "a part the server needs does not answer",
                "content": {"application/json": {"schema": _ref(ep.unavailable_response, schemas)}},
            }
        else:
            unavailable = {
                "description": "the database does not answer or is busy; nothing changed, retry "
                f"later: `{{code, message}}`; codes: {errors.DATABASE_UNAVAILABLE}, {errors.BUSY}",
                "content": {"application/json": {"schema": error_ref}},
            }
        op["responses"]["503"] = unavailable
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
