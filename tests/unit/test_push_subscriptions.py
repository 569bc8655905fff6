"""Web Push subscriptions: which endpoints the server may post to, and which keys it can use."""

from __future__ import annotations

import base64

import pytest

from rooms.duty.push import (
    KNOWN_PUSH_SERVICES,
    MAX_ENDPOINT_CHARS,
    InvalidSubscription,
    check_endpoint,
    check_keys,
)
from teleconsult.config import ConfigError, load_settings


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


@pytest.mark.parametrize(
    "url",
    [
        "https://fcm.googleapis.com/fcm/send/abc",
        "https://updates.push.services.mozilla.com/wpush/v2/abc",
        "https://web.push.apple.com/QGx",
        "https://wns2-par02p.notify.windows.com/w/?token=abc",  # a regional subdomain
    ],
)
def test_the_known_push_services_are_accepted_by_default(url: str) -> None:
    assert check_endpoint(url, allow_http_loopback=False) == url


@pytest.mark.parametrize(
    "url",
    [
        "https://10.0.0.5/push",  # an address inside the hospital network
        "https://his.hospital.example/api/orders",
        "https://fcm.googleapis.com.evil.example/x",  # a look-alike suffix
        "https://evilfcm.googleapis.com/x",  # not a subdomain
        "https://127.0.0.1/x",
    ],
)
def test_https_endpoints_outside_the_push_services_are_refused(url: str) -> None:
    with pytest.raises(InvalidSubscription, match="PUSH_SERVICE_HOSTS"):
        check_endpoint(url, allow_http_loopback=True)


def test_the_push_service_list_is_a_setting_and_star_allows_any_https_host() -> None:
    assert load_settings({}).push_service_hosts == KNOWN_PUSH_SERVICES
    hosts = load_settings({"PUSH_SERVICE_HOSTS": "push.hospital.example, FCM.googleapis.com."})
    assert hosts.push_service_hosts == ("push.hospital.example", "fcm.googleapis.com")
    own = "https://a.push.hospital.example/p/1"
    assert check_endpoint(own, False, hosts.push_service_hosts) == own
    with pytest.raises(InvalidSubscription):
        check_endpoint("https://web.push.apple.com/x", False, hosts.push_service_hosts)
    anyone = load_settings({"PUSH_SERVICE_HOSTS": "*"}).push_service_hosts
    assert check_endpoint("https://10.0.0.5/p", False, anyone) == "https://10.0.0.5/p"


@pytest.mark.parametrize(
    "value", ["https://fcm.googleapis.com", "fcm", "a b.example", "-x.example"]
)
def test_a_push_service_entry_that_is_not_a_host_name_is_refused(value: str) -> None:
    with pytest.raises(ConfigError, match="PUSH_SERVICE_HOSTS"):
        load_settings({"PUSH_SERVICE_HOSTS": value})
