"""Expiry: a request nobody accepted, or an accepted consult nobody opened, ends by itself."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest

from rooms.consults.expiry import ExpiryRules
from rooms.consults.lifecycle import ConsultStatus
from teleconsult.config import ConfigError, load_settings
from tests.unit.fakes import NOON, consult_in

RULES = ExpiryRules(request_grace=timedelta(hours=2), accepted_grace=timedelta(hours=24))


def test_an_unaccepted_request_expires_exactly_at_its_grace_after_the_scheduled_time() -> None:
    request = consult_in(ConsultStatus.REQUESTED, specialist_id=None)
    assert RULES.expires_at(request) == NOON + timedelta(hours=2)
    assert not RULES.is_due(request, NOON + timedelta(hours=2) - timedelta(microseconds=1))
    assert RULES.is_due(request, NOON + timedelta(hours=2))


def test_an_accepted_consult_nobody_opened_expires_a_day_after_its_time() -> None:
    accepted = consult_in(ConsultStatus.ACCEPTED)
    assert not RULES.is_due(accepted, NOON + timedelta(hours=23, minutes=59))
    assert RULES.is_due(accepted, NOON + timedelta(hours=24))


@pytest.mark.parametrize(
    "status",
    [
        ConsultStatus.WAITING,
        ConsultStatus.LIVE,
        ConsultStatus.ENDED,
        ConsultStatus.DECLINED,
        ConsultStatus.CANCELLED,
        ConsultStatus.EXPIRED,
    ],
)
def test_an_opened_or_finished_consult_never_expires(status: ConsultStatus) -> None:
    consult = consult_in(status)
    assert RULES.expires_at(consult) is None
    assert not RULES.is_due(consult, NOON + timedelta(days=365))


def test_a_consult_scheduled_later_is_not_due_before_its_own_time() -> None:
    later = replace(consult_in(ConsultStatus.REQUESTED), scheduled_at=NOON + timedelta(days=3))
    assert not RULES.is_due(later, NOON + timedelta(days=3, hours=1))


def test_the_store_query_bound_is_each_status_own_due_time() -> None:
    bound = RULES.due_if_scheduled_by
    assert bound(ConsultStatus.REQUESTED, NOON) == NOON - timedelta(hours=2)
    assert bound(ConsultStatus.ACCEPTED, NOON) == NOON - timedelta(hours=24)
    for status in (ConsultStatus.REQUESTED, ConsultStatus.ACCEPTED):
        at_bound = replace(consult_in(status), scheduled_at=bound(status, NOON))
        assert RULES.is_due(at_bound, NOON)
        just_after = replace(at_bound, scheduled_at=at_bound.scheduled_at + timedelta(seconds=1))
        assert not RULES.is_due(just_after, NOON)


def test_a_negative_grace_is_refused() -> None:
    with pytest.raises(ValueError, match="negative"):
        ExpiryRules(request_grace=timedelta(minutes=-1))


@pytest.mark.parametrize(
    ("env", "field", "default"),
    [
        ("REQUEST_EXPIRES_AFTER_SECONDS", "request_grace", timedelta(hours=2)),
        ("ACCEPTED_EXPIRES_AFTER_SECONDS", "accepted_grace", timedelta(hours=24)),
    ],
)
def test_each_expiry_setting_has_a_default_an_override_and_refuses_nonsense(
    env: str, field: str, default: timedelta
) -> None:
    assert getattr(load_settings({}).expiry, field) == default
    assert getattr(load_settings({env: "600"}).expiry, field) == timedelta(minutes=10)
    for bad in ("0", "-1", "soon"):
        with pytest.raises(ConfigError, match=env):
            load_settings({env: bad})
