"""The aiohttp internals `signaling.http.serving` relies on to answer the HTTP parser's refusals
as `{code, message}`: if an aiohttp upgrade moves them, this fails before a server answers
text/plain again (tests/integration/test_hostile_rest.py shows the answers themselves)."""

from __future__ import annotations

import inspect

import aiohttp
from aiohttp import web
from aiohttp.web_protocol import RequestHandler

from signaling.http.serving import JsonRefusalServer, refusal_body


def test_aiohttp_is_the_version_whose_internals_were_read() -> None:
    assert aiohttp.__version__.startswith("3."), aiohttp.__version__


def test_the_server_makes_its_handlers_from_its_loop_and_kwargs() -> None:
    source = inspect.getsource(web.Server.__call__)
    assert "RequestHandler(self, loop=self._loop, **self._kwargs)" in source
    assert "__slots__" not in vars(web.Server)  # the runner swaps the server's class


def test_the_handler_answers_the_parsers_refusals_through_handle_error() -> None:
    params = list(inspect.signature(RequestHandler.handle_error).parameters)
    assert params == ["self", "request", "status", "exc", "message"]
    assert "handle_error" in inspect.getsource(RequestHandler._make_error_handler)


def test_the_json_server_is_a_server_that_adds_no_state() -> None:
    assert issubclass(JsonRefusalServer, web.Server)
    assert set(vars(JsonRefusalServer)) <= {"__module__", "__doc__", "__call__", "__qualname__"}


def test_a_refusal_names_the_parsers_reason_and_hides_a_failures_detail() -> None:
    assert refusal_body(400, "Invalid header value char\nmore") == {
        "code": "malformed_request",
        "message": "the HTTP request could not be read: Invalid header value char",
    }
    assert refusal_body(400, None)["message"].endswith("Bad Request")
    assert refusal_body(500, "Traceback ...")["code"] == "internal_error"
    assert "Traceback" not in refusal_body(500, "Traceback ...")["message"]
