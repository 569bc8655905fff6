"""The sliding-window limiter forgets: memory stays bounded under a flood of distinct keys."""

from __future__ import annotations

from pathlib import Path

from signaling.limits import Limits
from signaling.ratelimit import RateLimiter
from teleconsult.config import load_settings


def limiter(per_minute: int = 3, max_keys: int = 100) -> tuple[RateLimiter, list[float]]:
    now = [0.0]
    return RateLimiter(per_minute, clock=lambda: now[0], max_keys=max_keys), now


def test_memory_stays_bounded_after_many_distinct_keys() -> None:
    limits, _now = limiter(max_keys=100)
    for n in range(10_000):  # credential stuffing: every attempt a new username
        limits.hit(f"user{n}")
        assert len(limits) <= 100
    assert len(limits) == 100
    # The most recent keys are the ones kept, and are still counted.
    assert limits.exhausted("user9999") is False
    for _ in range(2):
        limits.hit("user9999")
    assert limits.exhausted("user9999")


def test_each_key_holds_at_most_its_limit_of_timestamps() -> None:
    limits, _now = limiter(per_minute=3)
    for _ in range(1000):
        limits.hit("u")
    assert limits.exhausted("u")
    assert len(limits._hits["u"]) == 3


def test_keys_expire_when_their_window_has_passed() -> None:
    limits, now = limiter(max_keys=10_000)
    for n in range(1000):
        limits.hit(f"user{n}")
    assert len(limits) == 1000
    now[0] = 61.0
    limits.hit("later")
    assert len(limits) == 1


def test_looking_does_not_track_a_key() -> None:
    limits, _now = limiter()
    assert not limits.exhausted("nobody")
    assert len(limits) == 0


def test_a_key_hit_again_is_kept_over_keys_hit_once_long_ago() -> None:
    limits, now = limiter(per_minute=2, max_keys=3)
    limits.hit("attacked")
    now[0] = 1.0
    limits.hit("a")
    limits.hit("b")
    now[0] = 2.0
    limits.hit("attacked")  # now the most recently hit
    limits.hit("c")  # evicts "a", the least recently hit
    assert limits.exhausted("attacked")
    assert len(limits) == 3
    assert not limits.exhausted("a")


def test_the_login_settings_are_read_from_the_environment(tmp_path: Path) -> None:
    env = {
        "DATA_DIR": str(tmp_path),
        "LOGIN_ATTEMPTS_PER_ADDRESS_PER_MINUTE": "5",
        "LOGIN_TRACKED_KEYS": "50",
        "PASSWORD_CHECKS_AT_ONCE": "3",
        "PASSWORD_CHECKS_WAITING": "7",
    }
    limits = load_settings(env).limits
    assert (
        limits.login_attempts_per_address_per_minute,
        limits.login_tracked_keys,
        limits.password_checks_at_once,
        limits.password_checks_waiting,
    ) == (5, 50, 3, 7)
    assert (Limits().password_checks_at_once, Limits().password_checks_waiting) == (1, 128)
