"""ROOM_LEASE_SECONDS: how long a signaling process's claim on a consult's room lasts in Redis
(the behaviour: tests/integration/test_room_cluster.py)."""

from __future__ import annotations

import pytest

from teleconsult.config import ConfigError, load_settings


def test_a_room_lease_lasts_two_and_a_half_seconds_unless_told_otherwise() -> None:
    assert load_settings({}).room_lease_seconds == 2.5
    assert load_settings({"ROOM_LEASE_SECONDS": "1.5"}).room_lease_seconds == 1.5


@pytest.mark.parametrize("value", ["0", "0.4", "-1", "61", "soon", "nan"])
def test_an_unusable_room_lease_stops_start_up_naming_it(value: str) -> None:
    with pytest.raises(ConfigError, match="ROOM_LEASE_SECONDS"):
        load_settings({"ROOM_LEASE_SECONDS": value})
