"""Bring a database's schema up to date with the Alembic migrations in `storage/migrations`."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config

MIGRATIONS = Path(__file__).resolve().parent.parent / "migrations"


def alembic_config(database_url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", database_url)
    return config


def upgrade(database_url: str) -> None:
    """Apply every pending migration. Runs its own event loop: call it outside one."""
    command.upgrade(alembic_config(database_url), "head")
