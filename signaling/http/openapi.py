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


_PARAMETER = re.compile(r"\{([^{}:]+)(?::[^{}]*(?:\{[^{}]*\}[^{}]*)*)?\}")
"""An aiohttp path parameter, `{name}` or `{name:regex}` (whose regex may hold `{m,n}`)."""


def path_template(route_path: str) -> tuple[str, list[str]]:
    """The OpenAPI path template of an aiohttp route path and its parameter names: a regex
    aiohttp matches the parameter with is the server's business, not part of the template."""
    names = _PARAMETER.findall(route_path)
    return _PARAMETER.sub(lambda m: "{" + m.group(1) + "}", route_path), names


def build_openapi(endpoints: list[Endpoint], version: str) -> dict[str, Any]:
    schemas: dict[str, Any] = {}
    error_ref = _ref(ErrorOut, schemas)
    paths: dict[str, dict[str, Any]] = {}
    for ep in endpoints:
        op: dict[str, Any] = {"summary": ep.summary, "responses": {}}
        if ep.authenticated:
            op["security"] = [{"bearer": []}]
        template, params = path_template(ep.path)
        if params:
            op["parameters"] = [
                {"name": p, "in": "path", "required": True, "schema": {"type": "string"}}
                for p in params
            ]
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
        op["responses"][str(ep.status)] = ok
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
