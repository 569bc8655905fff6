"""Web Push from the real server to a push endpoint this test runs on loopback.

The specialist's "browser" is the test: it makes a P-256 key pair and an auth secret, registers
them with a push endpoint URL served by a small aiohttp app, and a booking for the on-duty
specialist makes the server POST there. The test checks the VAPID `Authorization` (an ES256
JWT signed by the server's public key, `aud` = the endpoint's origin), decrypts the
`aes128gcm` body with its private key, and reads the notification. A 410 answer makes the
server forget the subscription.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import stat
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import http_ece
import jwt
import pytest
import pytest_asyncio
from aiohttp import web
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from multidict import CIMultiDict

from teleconsult.config import VAPID_KEY_FILE
from tests.support.inprocess import T0, InProcessServer
from tests.support.server import free_port


def b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass
class PushEndpoint:
    """A push service stand-in: records each POST, answers `status`."""

    port: int = field(default_factory=free_port)
    status: int = 201
    received: list[tuple[CIMultiDict[str], bytes, str]] = field(default_factory=list)
    _runner: web.AppRunner | None = None

    @property
    def origin(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> None:
        async def push(request: web.Request) -> web.Response:
            self.received.append((CIMultiDict(request.headers), await request.read(), request.path))
            return web.Response(status=self.status)

        app = web.Application()
        app.router.add_post("/push/{id}", push)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()


@dataclass
class Browser:
    """The keys a browser's PushManager would make for one subscription."""

    private_key: ec.EllipticCurvePrivateKey = field(
        default_factory=lambda: ec.generate_private_key(ec.SECP256R1())
    )
    auth: bytes = field(default_factory=lambda: os.urandom(16))

    def subscription(self, endpoint: str) -> dict[str, Any]:
        point = self.private_key.public_key().public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
        )
        return {
            "endpoint": endpoint,
            "expirationTime": None,
            "keys": {"p256dh": b64url(point), "auth": b64url(self.auth)},
        }

    def decrypt(self, body: bytes) -> dict[str, Any]:
        plain = http_ece.decrypt(
            body, private_key=self.private_key, auth_secret=self.auth, version="aes128gcm"
        )
        return dict(json.loads(plain))


@pytest.fixture
async def server() -> AsyncIterator[InProcessServer]:
    running = InProcessServer(env={"PUSH_ALLOW_HTTP_LOOPBACK": "1", "DUTY_TICK_SECONDS": "3600"})
    await running.start()
    yield running
    await running.cleanup()


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def shared() -> AsyncIterator[InProcessServer]:
    """One server for the bad-input cases, which change nothing."""
    running = InProcessServer(env={"PUSH_ALLOW_HTTP_LOOPBACK": "1", "DUTY_TICK_SECONDS": "3600"})
    await running.start()
    yield running
    await running.cleanup()


@pytest.fixture
async def endpoint() -> AsyncIterator[PushEndpoint]:
    push = PushEndpoint()
    await push.start()
    yield push
    await push.stop()


async def until(predicate: Any, within: float = 20.0) -> None:
    deadline = asyncio.get_running_loop().time() + within
    while not await predicate():
        assert asyncio.get_running_loop().time() < deadline, "condition not met in time"
        await asyncio.sleep(0.05)


async def test_a_booking_pushes_an_encrypted_signed_notification_to_the_on_duty_specialist(
    server: InProcessServer, endpoint: PushEndpoint
) -> None:
    browser = Browser()
    specialist = await server.token("obstetrician")
    status, key = await server.request("GET", "/api/push/vapid-public-key", token=specialist)
    assert status == 200
    url = f"{endpoint.origin}/push/abc123"
    status, _ = await server.request(
        "POST", "/api/push/subscriptions", browser.subscription(url), token=specialist
    )
    assert status == 201
    await server.add_shift("obstetrician", T0 - timedelta(hours=1), T0 + timedelta(hours=8))

    consult = await server.book()

    async def pushed() -> bool:
        return len(endpoint.received) == 1

    await until(pushed)
    headers, body, path = endpoint.received[0]
    assert path == "/push/abc123"
    assert headers["Content-Encoding"] == "aes128gcm"
    assert int(headers["TTL"]) > 0
    scheme, params = headers["Authorization"].split(" ", 1)
    assert scheme == "vapid"
    parts = dict(p.split("=", 1) for p in params.split(","))
    assert parts["k"] == key["public_key"], "signed with the key the server publishes"
    public = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), unb64url(parts["k"]))
    claims = jwt.decode(parts["t"], public, algorithms=["ES256"], audience=endpoint.origin)
    assert claims["sub"].startswith("mailto:")

    message = browser.decrypt(body)
    assert message["consult_id"] == consult["id"]
    assert message["url"] == f"/specialist.html?consult={consult['id']}"
    assert message["kind"] == "notify"
    assert "产科" in message["title"] and "Obstetrics" in message["title_en"]
    assert "测试患者" not in json.dumps(message, ensure_ascii=False), "no patient on a lock screen"
    assert "Test Patient" not in json.dumps(message)


async def test_a_subscription_the_push_service_says_is_gone_is_forgotten(
    server: InProcessServer, endpoint: PushEndpoint
) -> None:
    browser = Browser()
    specialist = await server.token("obstetrician")
    url = f"{endpoint.origin}/push/gone"
    await server.request(
        "POST", "/api/push/subscriptions", browser.subscription(url), token=specialist
    )
    endpoint.status = 410
    await server.book()  # nobody on duty: the whole specialty, this specialist too

    async def forgotten() -> bool:
        if not endpoint.received:
            return False
        status, _ = await server.request(
            "DELETE", "/api/push/subscriptions", {"endpoint": url}, token=specialist
        )
        return status == 404

    await until(forgotten)
    await server.book()
    await asyncio.sleep(0.3)  # a push to a forgotten subscription would arrive by now
    assert len(endpoint.received) == 1


async def test_the_vapid_key_is_made_once_kept_private_and_survives_a_restart(
    server: InProcessServer,
) -> None:
    token = await server.token("obstetrician")
    _, first = await server.request("GET", "/api/push/vapid-public-key", token=token)
    path = server.data_dir / VAPID_KEY_FILE
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    await server.stop()
    await server.launch()
    _, second = await server.request("GET", "/api/push/vapid-public-key", token=token)
    assert first == second
    assert len(unb64url(first["public_key"])) == 65


def _sub(**change: Any) -> dict[str, Any]:
    sub = Browser().subscription("https://fcm.googleapis.com/fcm/send/test-1")
    for name, value in change.items():
        if name in ("p256dh", "auth"):
            sub["keys"][name] = value
        else:
            sub[name] = value
    return sub


@pytest.mark.parametrize(
    ("body", "code"),
    [
        (_sub(endpoint="http://push.example.test/push/1"), "invalid_subscription"),
        (_sub(endpoint="ftp://127.0.0.1/push/1"), "invalid_subscription"),
        # Not a known push service: the server would post into the hospital network (SSRF).
        (_sub(endpoint="https://10.0.0.5/push/1"), "invalid_subscription"),
        (_sub(endpoint="https://his.hospital.example/api/orders"), "invalid_subscription"),
        (_sub(endpoint="https://fcm.googleapis.com.evil.example/x"), "invalid_subscription"),
        (_sub(p256dh=b64url(b"\x04" + bytes(10))), "invalid_subscription"),
        (_sub(auth=b64url(bytes(8))), "invalid_subscription"),
        (_sub(auth="not base64!"), "invalid_payload"),
        ({"endpoint": "https://push.example.test/push/1"}, "invalid_payload"),
        ({**_sub(), "extra": 1}, "invalid_payload"),
        (_sub(endpoint="https://push.example.test/" + "x" * 1000), "invalid_payload"),
    ],
)
@pytest.mark.asyncio(loop_scope="module")
async def test_bad_subscriptions_are_refused_with_their_code(
    shared: InProcessServer, body: dict[str, Any], code: str
) -> None:
    token = await shared.token("obstetrician")
    status, reply = await shared.request("POST", "/api/push/subscriptions", body, token=token)
    assert (status, reply["code"]) == (422, code)


@pytest.mark.asyncio(loop_scope="module")
async def test_an_http_endpoint_off_loopback_is_refused_even_when_loopback_http_is_allowed(
    shared: InProcessServer,
) -> None:
    token = await shared.token("obstetrician")
    status, reply = await shared.request(
        "POST", "/api/push/subscriptions", _sub(endpoint="http://10.1.2.3/push/1"), token=token
    )
    assert (status, reply["code"]) == (422, "invalid_subscription")


async def test_only_the_owner_of_a_subscription_removes_it(server: InProcessServer) -> None:
    sub = _sub()
    owner, other = await server.token("obstetrician"), await server.token("paediatrician")
    status, _ = await server.request("POST", "/api/push/subscriptions", sub, token=owner)
    assert status == 201
    gone = {"endpoint": sub["endpoint"]}
    status, reply = await server.request("DELETE", "/api/push/subscriptions", gone, token=other)
    assert (status, reply["code"]) == (404, "not_found")
    status, _ = await server.request("DELETE", "/api/push/subscriptions", gone, token=owner)
    assert status == 200
