"""The time limits that turn a slow part into an outage: the database's (read from the
environment, refused when unusable, handed to every PostgreSQL connection; the behaviour itself:
tests/integration/test_postgres_timeouts.py) and Redis's
(tests/integration/test_redis_outage.py)."""

from __future__ import annotations

import pytest

from storage.sql.engine import postgres_connect_args
from teleconsult.config import ConfigError, load_settings


def test_the_database_time_limits_default_to_ten_and_five_seconds() -> None:
    settings = load_settings({})
    assert (settings.database_statement_timeout, settings.database_connect_timeout) == (10, 5)
    settings = load_settings(
        {"DATABASE_STATEMENT_TIMEOUT_SECONDS": "3", "DATABASE_CONNECT_TIMEOUT_SECONDS": "2"}
    )
    assert (settings.database_statement_timeout, settings.database_connect_timeout) == (3, 2)


def test_redis_commands_get_two_seconds_unless_told_otherwise() -> None:
    assert load_settings({}).redis_timeout == 2
    assert load_settings({"REDIS_TIMEOUT_SECONDS": "5"}).redis_timeout == 5


@pytest.mark.parametrize(
    "name",
    [
        "DATABASE_STATEMENT_TIMEOUT_SECONDS",
        "DATABASE_CONNECT_TIMEOUT_SECONDS",
        "REDIS_TIMEOUT_SECONDS",
    ],
)
@pytest.mark.parametrize("value", ["0", "-1", "soon"])
def test_an_unusable_database_time_limit_stops_start_up_naming_it(name: str, value: str) -> None:
    with pytest.raises(ConfigError, match=name):
        load_settings({name: value})


def test_every_postgresql_connection_gets_the_server_and_the_client_side_limits() -> None:
    assert postgres_connect_args(2.5, 4) == {
        "timeout": 4,
        "server_settings": {"statement_timeout": "2500"},
        "command_timeout": 3.5,
    }


def test_migrations_run_without_a_statement_limit() -> None:
    assert postgres_connect_args(None, 4) == {"timeout": 4}
