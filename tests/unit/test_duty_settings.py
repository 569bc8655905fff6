"""The duty and Web Push settings: defaults, overrides, refusals, and the VAPID key file."""

from __future__ import annotations

import stat
from datetime import timedelta
from pathlib import Path

import pytest

from teleconsult.config import VAPID_KEY_FILE, ConfigError, load_settings, vapid_key_in

NAMES = {
    "ESCALATE_AFTER_SECONDS": ("escalate_after", timedelta(minutes=10)),
    "REMINDER_BEFORE_SECONDS": ("reminder_before", timedelta(minutes=15)),
    "DUTY_TICK_SECONDS": ("duty_tick", timedelta(seconds=15)),
    "PUSH_TIMEOUT_SECONDS": ("push_timeout", timedelta(seconds=10)),
    "PUSH_TTL_SECONDS": ("push_ttl", timedelta(hours=1)),
}


@pytest.mark.parametrize(("env", "field_default"), NAMES.items())
def test_each_duty_setting_has_a_default_and_an_override(
    env: str, field_default: tuple[str, timedelta]
) -> None:
    field, default = field_default
    assert getattr(load_settings({}), field) == default
    assert getattr(load_settings({env: "42"}), field) == timedelta(seconds=42)


@pytest.mark.parametrize("env", NAMES)
@pytest.mark.parametrize("value", ["0", "-5", "ten"])
def test_a_duty_setting_that_is_not_a_positive_number_is_refused(env: str, value: str) -> None:
    with pytest.raises(ConfigError, match=env):
        load_settings({env: value})


def test_the_vapid_subject_must_be_mailto_or_https() -> None:
    assert load_settings({}).vapid_subject == "mailto:teleconsult@localhost"
    assert load_settings({"VAPID_SUBJECT": "https://hospital.example"}).vapid_subject == (
        "https://hospital.example"
    )
    with pytest.raises(ConfigError, match="VAPID_SUBJECT"):
        load_settings({"VAPID_SUBJECT": "admin@hospital.example"})


def test_http_push_endpoints_on_loopback_are_off_unless_asked_for() -> None:
    assert load_settings({}).push_allow_http_loopback is False
    assert load_settings({"PUSH_ALLOW_HTTP_LOOPBACK": "1"}).push_allow_http_loopback is True


def test_the_vapid_key_is_made_once_with_mode_0600_and_reused(tmp_path: Path) -> None:
    first = vapid_key_in(tmp_path)
    assert stat.S_IMODE((tmp_path / VAPID_KEY_FILE).stat().st_mode) == 0o600
    again = vapid_key_in(tmp_path)
    assert again.public_key.public_numbers() == first.public_key.public_numbers()
