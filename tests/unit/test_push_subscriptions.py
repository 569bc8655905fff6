"""Web Push subscriptions: which endpoints the server may post to, and which keys it can use."""

from __future__ import annotations

import base64

import pytest

from rooms.push import MAX_ENDPOINT_CHARS, InvalidSubscription, check_endpoint, check_keys


def b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


POINT = b64(b"\x04" + bytes(64))
AUTH = b64(bytes(16))


def test_https_endpoints_are_accepted() -> None:
    url = "https://fcm.googleapis.com/fcm/send/abc"
    assert check_endpoint(url, allow_http_loopback=False) == url


@pytest.mark.parametrize(
    "url", ["http://127.0.0.1:9000/push/1", "http://localhost:9000/p", "http://[::1]:9/p"]
)
def test_http_loopback_endpoints_only_when_allowed(url: str) -> None:
    assert check_endpoint(url, allow_http_loopback=True) == url
    with pytest.raises(InvalidSubscription):
        check_endpoint(url, allow_http_loopback=False)


@pytest.mark.parametrize(
    "url",
    [
        "http://push.example.com/x",
        "http://10.0.0.5/x",
        "ftp://127.0.0.1/x",
        "https://user:pw@push.example/x",
        "https:///nohost",
        "https://push.example:99999/x",
        "not a url",
        "https://push.example/" + "x" * MAX_ENDPOINT_CHARS,
    ],
)
def test_other_endpoints_are_refused(url: str) -> None:
    with pytest.raises(InvalidSubscription):
        check_endpoint(url, allow_http_loopback=True)


def test_keys_of_the_right_shape_are_accepted() -> None:
    check_keys(POINT, AUTH)
    check_keys(POINT + "=", AUTH + "==")


@pytest.mark.parametrize(
    ("p256dh", "auth"),
    [
        (b64(b"\x04" + bytes(63)), AUTH),  # short point
        (b64(b"\x02" + bytes(64)), AUTH),  # not uncompressed
        (POINT, b64(bytes(15))),  # short auth
        (POINT, "!!!"),
        ("@@@", AUTH),
    ],
)
def test_keys_of_the_wrong_shape_are_refused(p256dh: str, auth: str) -> None:
    with pytest.raises(InvalidSubscription):
        check_keys(p256dh, auth)
