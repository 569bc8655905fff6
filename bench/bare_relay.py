"""The anchor of `bench/signaling.py`: a bare python-socketio server relaying the same events.

No teleconsult code: an `AsyncServer` on aiohttp (the same python-socketio, engine.io, aiohttp
and websocket path as `teleconsult serve`, with the same packet size ceiling) that does only
what relaying needs:

- `connect` accepts any `auth={"token": <string>}` (no JWT check, no user lookup);
- `join {consult_id}` puts the connection in the consult's room, tells the others
  (`peer-joined`) and acknowledges with `peer_id` and `peers`, as the real server's ack names
  them (no database, no status change, no audit);
- `signal {consult_id, to, ...}` forwards the payload to `to` (without `to`, with `from`) when
  both are in that room, and acknowledges `{"ok": true}` (no schema, no SDP check, no limit).

So the same load generator drives it and teleconsult, and the difference is what teleconsult
adds per event. Run by the benchmark in a subprocess of its own:

    python bench/bare_relay.py --port 8765     # serves until SIGTERM
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

import socketio
from aiohttp import web

TRANSPORT_MAX_BYTES = 1024 * 1024
"""As `signaling.limits.Limits.transport_max_bytes`, the real server's engine.io ceiling."""


def build() -> web.Application:
    sio = socketio.AsyncServer(async_mode="aiohttp", max_http_buffer_size=TRANSPORT_MAX_BYTES)
    members: dict[str, set[str]] = {}
    """consult id → the connections in its room."""
    room_of: dict[str, str] = {}

    def refused(code: str, message: str) -> dict[str, Any]:
        return {"ok": False, "error": {"code": code, "message": message}}

    @sio.event
    async def connect(sid: str, _environ: dict[str, Any], auth: Any = None) -> bool:
        return isinstance(auth, dict) and isinstance(auth.get("token"), str)

    @sio.event
    async def disconnect(sid: str, _reason: Any = None) -> None:
        consult_id = room_of.pop(sid, None)
        if consult_id is not None:
            members.get(consult_id, set()).discard(sid)

    @sio.event
    async def join(sid: str, data: Any) -> dict[str, Any]:
        consult_id = data.get("consult_id") if isinstance(data, dict) else None
        if not isinstance(consult_id, str):
            return refused("invalid_payload", "join needs a consult_id")
        others = members.setdefault(consult_id, set())
        peers = [{"peer_id": p, "user": {}} for p in others if p != sid]
        others.add(sid)
        room_of[sid] = consult_id
        await sio.enter_room(sid, consult_id)
        await sio.emit(
            "peer-joined",
            {"consult_id": consult_id, "peer": {"peer_id": sid, "user": {}}},
            room=consult_id,
            skip_sid=sid,
        )
        return {"ok": True, "peer_id": sid, "peers": peers}

    @sio.event
    async def signal(sid: str, data: Any) -> dict[str, Any]:
        if not isinstance(data, dict):
            return refused("invalid_payload", "signal takes an object")
        consult_id, to = data.get("consult_id"), data.get("to")
        room = members.get(consult_id) if isinstance(consult_id, str) else None
        if room is None or sid not in room:
            return refused("not_in_consult", "join the consult before signalling")
        if to not in room or to == sid:
            return refused("unknown_peer", f"no participant {to} in this consult")
        relayed = {k: v for k, v in data.items() if k != "to"}
        relayed["from"] = sid
        await sio.emit("signal", relayed, to=to)
        return {"ok": True}

    app = web.Application()
    sio.attach(app)
    return app


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    args = p.parse_args(argv)

    web.run_app(build(), host=args.host, port=args.port, print=None, access_log=None)


if __name__ == "__main__":
    sys.exit(main())
