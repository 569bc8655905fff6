"""The client events the packet guard lets through are exactly the events with a handler."""

from __future__ import annotations

from signaling.events import ConsultEvents


def test_every_client_event_has_its_handler_and_every_handler_its_event() -> None:
    handlers = {
        name.removeprefix("on_").replace("_", "-")
        for name in vars(ConsultEvents)
        if name.startswith("on_") and name not in ("on_connect", "on_disconnect")
    }
    assert handlers == ConsultEvents.CLIENT_EVENTS
