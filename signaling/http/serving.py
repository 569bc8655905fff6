"""Serving the app: `aiohttp.web.run_app`'s start and stop, with one difference — what aiohttp's
HTTP parser refuses before any route or middleware runs (a bad `Content-Length`, a malformed
request line or header, a line over 8190 bytes) is answered `{code, message}` JSON like every
other refusal, not aiohttp's text/plain.

aiohttp has no public hook for those answers: `RequestHandler.handle_error` builds them, and the
`Server` that makes the handlers is built inside `AppRunner`. `TeleconsultRunner` gives that
server the handler subclass below; `tests/unit/test_serving_pin.py` pins the aiohttp internals
this relies on (`Server._loop`, `Server._kwargs`, `RequestHandler.handle_error`).
"""

from __future__ import annotations

import asyncio
import json
from contextlib import suppress
from http import HTTPStatus
from typing import Any

from aiohttp import web
from aiohttp.web_protocol import RequestHandler
from aiohttp.web_request import BaseRequest

from signaling.errors import INTERNAL, MALFORMED_REQUEST


def refusal_body(status: int, message: str | None) -> dict[str, str]:
    """The `{code, message}` answer to a request refused before the app: `internal_error` for a
    5xx (its detail is logged, not sent), `malformed_request` with the parser's reason otherwise."""
    if status >= 500:
        return {"code": INTERNAL, "message": "the server failed; the error is logged"}
    reason = (message or HTTPStatus(status).phrase).splitlines()[0][:200]
    return {"code": MALFORMED_REQUEST, "message": f"the HTTP request could not be read: {reason}"}


class JsonRefusals(RequestHandler):
    """aiohttp's request handler whose own error answers are `{code, message}` JSON."""

    def handle_error(
        self,
        request: BaseRequest,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        plain = super().handle_error(request, status, exc, message)  # logs, as aiohttp does
        reason = message or (str(exc) if exc is not None else None)
        answer = web.Response(
            status=plain.status,
            text=json.dumps(refusal_body(plain.status, reason), ensure_ascii=False),
            content_type="application/json",
        )
        answer.force_close()
        return answer


class JsonRefusalServer(web.Server):
    """Makes `JsonRefusals` handlers (aiohttp's `Server.__call__` makes plain ones)."""

    def __call__(self) -> RequestHandler:
        return JsonRefusals(self, loop=self._loop, **self._kwargs)


class TeleconsultRunner(web.AppRunner):
    """`AppRunner` whose server answers the parser's refusals as JSON."""

    async def _make_server(self) -> web.Server:
        server = await super()._make_server()
        server.__class__ = JsonRefusalServer  # same object, same state; only __call__ differs
        return server


async def _serve(app: web.Application, host: str, port: int) -> None:
    runner = TeleconsultRunner(app, access_log=None, handle_signals=True)
    await runner.setup()
    try:
        await web.TCPSite(runner, host, port).start()
        await asyncio.Event().wait()  # until SIGINT/SIGTERM (GracefulExit) cancels this task
    finally:
        await runner.cleanup()


def run(app: web.Application, *, host: str, port: int, loop: asyncio.AbstractEventLoop) -> None:
    """Serve `app` on `host:port` on `loop` until SIGINT or SIGTERM, then shut down cleanly:
    the same sequence as `aiohttp.web.run_app` (cleanup contexts run, tasks cancelled, async
    generators closed, the loop closed)."""
    main = loop.create_task(_serve(app, host, port))
    try:
        asyncio.set_event_loop(loop)
        loop.run_until_complete(main)
    except (web.GracefulExit, KeyboardInterrupt):
        pass
    finally:
        try:
            if not main.done():
                main.cancel()
                with suppress(asyncio.CancelledError):
                    loop.run_until_complete(main)
        finally:
            _cancel_all(loop)
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()


def _cancel_all(loop: asyncio.AbstractEventLoop) -> None:
    tasks = asyncio.all_tasks(loop)
    if not tasks:
        return
    for task in tasks:
        task.cancel()
    loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))
    for task in tasks:
        if not task.cancelled() and task.exception() is not None:
            context: dict[str, Any] = {
                "message": "unhandled exception during shutdown",
                "exception": task.exception(),
                "task": task,
            }
            loop.call_exception_handler(context)
