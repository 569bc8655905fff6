"""Every repository on one database: what the composition root hands the use cases."""

from __future__ import annotations

from dataclasses import dataclass

from storage.sql.calls import SqlRecordings
from storage.sql.consults import SqlConsults
from storage.sql.database import Database
from storage.sql.duty import SqlDuty
from storage.sql.engine import STATEMENT_TIMEOUT_SECONDS
from storage.sql.quality import SqlQuality
from storage.sql.records import SqlAttachments, SqlNotes
from storage.sql.reporting import SqlReviewComments
from storage.sql.training import SqlTrainings


@dataclass(frozen=True, slots=True)
class SqlRepositories:
    database: Database
    consults: SqlConsults
    """Institutions, users, consults and their invitations, the audit log (the kernel)."""
    recordings: SqlRecordings
    """Recorded tracks and consent answers (`rooms.calls`)."""
    notes: SqlNotes
    attachments: SqlAttachments
    """Notes and attachments' metadata (`rooms.records`)."""
    duty: SqlDuty
    """The roster, notices claimed, push subscriptions (`rooms.duty`)."""
    comments: SqlReviewComments
    """Review comments (`rooms.reporting`)."""
    quality: SqlQuality
    """Call quality buckets (`rooms.calls.quality`)."""
    trainings: SqlTrainings
    """Trainings (`rooms.training`)."""

    @classmethod
    def on(cls, database: Database) -> SqlRepositories:
        return cls(
            database=database,
            consults=SqlConsults(database),
            recordings=SqlRecordings(database),
            notes=SqlNotes(database),
            attachments=SqlAttachments(database),
            duty=SqlDuty(database),
            comments=SqlReviewComments(database),
            quality=SqlQuality(database),
            trainings=SqlTrainings(database),
        )

    @classmethod
    def open(
        cls,
        database_url: str,
        *,
        statement_timeout: float | None = STATEMENT_TIMEOUT_SECONDS,
        connect_timeout: float | None = None,
    ) -> SqlRepositories:
        """Repositories on a new engine for `database_url` (`sqlite:///…`, `postgresql://…`);
        the schema must be migrated already (`storage.sql.migrate.upgrade`). On PostgreSQL a
        statement may take `statement_timeout` seconds and a connection `connect_timeout`
        seconds to open (None: `storage.sql.engine.CONNECT_TIMEOUT_SECONDS`)."""
        return cls.on(
            Database.open(
                database_url, statement_timeout=statement_timeout, connect_timeout=connect_timeout
            )
        )

    async def close(self) -> None:
        await self.database.close()
