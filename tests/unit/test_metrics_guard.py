"""Who `/metrics` answers without `METRICS_TOKEN`: loopback clients only. (A scrape through a
real server, and the token: tests/integration/test_metrics_and_logs.py. A client from another
address cannot be made on loopback-only test traffic, so the peer address is given here.)"""

from __future__ import annotations

import json
from unittest.mock import Mock

import pytest
from aiohttp import web
from aiohttp.test_utils import make_mocked_request
from prometheus_client import CollectorRegistry, Counter

from teleconsult.metrics import metrics_handler


def request_from(address: str) -> web.Request:
    transport = Mock()
    transport.get_extra_info.side_effect = lambda name, default=None: (
        (address, 40000) if name == "peername" else default
    )
    return make_mocked_request("GET", "/metrics", transport=transport)


def registry() -> CollectorRegistry:
    found = CollectorRegistry()
    Counter("teleconsult_test_things", "things", registry=found).inc()
    return found


@pytest.mark.parametrize("address", ["127.0.0.1", "127.8.9.10", "::1"])
async def test_loopback_clients_are_answered(address: str) -> None:
    route = metrics_handler(registry(), token="")
    response = await route.handler(request_from(address))
    assert isinstance(response, web.Response) and response.status == 200
    assert b"teleconsult_test_things_total 1.0" in (response.body or b"")


@pytest.mark.parametrize("address", ["10.1.2.3", "192.168.0.7", "2001:db8::1"])
async def test_other_clients_get_403_with_a_reason_and_no_figures(address: str) -> None:
    route = metrics_handler(registry(), token="")
    response = await route.handler(request_from(address))
    assert isinstance(response, web.Response) and response.status == 403
    body = json.loads(response.body or b"{}")
    assert body["code"] == "forbidden" and "METRICS_TOKEN" in body["message"]
    assert b"teleconsult_test_things" not in (response.body or b"")
