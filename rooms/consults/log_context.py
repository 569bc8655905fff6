"""Which consult the code running now concerns, for the log (`LOG_FORMAT=json` puts it on
every line as `consult_id`).

A `ContextVar`: set where work on one consult starts (a socket.io event naming a consult, a
REST request on one, a media node call), it follows that work into everything it awaits and
every task it starts (asyncio copies the context into a new task), and nowhere else.
"""

from __future__ import annotations

from contextvars import ContextVar, Token

current_consult: ContextVar[str | None] = ContextVar("consult_id", default=None)


class consult_context:
    """`with consult_context(consult_id):` — the log lines inside name this consult (None:
    leaves the current one)."""

    __slots__ = ("_consult_id", "_token")

    def __init__(self, consult_id: str | None) -> None:
        self._consult_id = consult_id
        self._token: Token[str | None] | None = None

    def __enter__(self) -> None:
        if self._consult_id is not None:
            self._token = current_consult.set(self._consult_id)

    def __exit__(self, *_exc: object) -> None:
        if self._token is not None:
            current_consult.reset(self._token)
            self._token = None
