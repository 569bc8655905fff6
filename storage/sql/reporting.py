"""The reporting package's repository: supervisors' review comments.

Implements `rooms.reporting.ports.CommentStore`; comments are append-only in the database too
(triggers, migration 0006). The statistics query runs over consults and lives with them
(`storage.sql.consults.SqlConsults.consults_for_statistics`).
"""

from __future__ import annotations

from dataclasses import asdict

from rooms.consults.audit import AuditEntry
from rooms.reporting.review import Comment
from storage.sql.database import Database
from storage.sql.schema import review_comments


class SqlReviewComments:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def add_comment(self, comment: Comment, audit: AuditEntry) -> None:
        await self.db.append(review_comments, asdict(comment), audit)

    async def list_comments(self, consult_id: str) -> list[Comment]:
        table = review_comments
        rows = await self.db.rows_of_consult(table, consult_id, table.c.at, table.c.id)
        return [Comment(**r._mapping) for r in rows]
