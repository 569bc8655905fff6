"""The records package's repositories: notes, and attachments' metadata.

Implement `rooms.records.ports.NoteStore` and `AttachmentStore`. Notes are append-only in the
database too (triggers refuse UPDATE and DELETE, migration 0003).
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from sqlalchemy import Row, func, insert, select

from rooms.consults.audit import AuditEntry
from rooms.consults.errors import IllegalTransition
from rooms.consults.lifecycle import FINISHED, ConsultStatus
from rooms.records.attachments import Attachment, TooManyAttachments
from rooms.records.notes import Note
from storage.sql.database import Database
from storage.sql.schema import attachments, consults, notes


def _attachment(row: Row[Any]) -> Attachment:
    return Attachment(
        id=row.id,
        consult_id=row.consult_id,
        uploader_id=row.uploader_id,
        file_name=row.file_name,
        media_type=row.media_type,
        bytes=row.bytes,
        sha256=row.sha256,
        storage_key=row.storage_key,
        uploaded_at=row.uploaded_at,
    )


class SqlNotes:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def add_note(self, note: Note, audit: AuditEntry) -> None:
        await self.db.append(notes, asdict(note), audit)

    async def list_notes(self, consult_id: str) -> list[Note]:
        stmt = (
            select(notes).where(notes.c.consult_id == consult_id).order_by(notes.c.at, notes.c.id)
        )
        rows = await self.db.read_at_once(lambda conn: conn.execute(stmt).all())
        return [Note(**r._mapping) for r in rows]


class SqlAttachments:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def add_attachment(
        self, attachment: Attachment, audit: AuditEntry, max_per_consult: int
    ) -> None:
        async with self.db.audited(audit) as conn:
            # Two uploads at once must not both pass the count. PostgreSQL: lock the consult's
            # row first. SQLite: the insert comes before the count, because it is the insert
            # that takes the database's single write lock (a plain SELECT starts no
            # transaction in Python's sqlite3), so the count then sees every committed row.
            await conn.execute(
                select(consults.c.id)
                .where(consults.c.id == attachment.consult_id)
                .with_for_update()
            )
            await conn.execute(insert(attachments).values(**asdict(attachment)))
            held = (
                await conn.execute(
                    select(func.count())
                    .select_from(attachments)
                    .where(attachments.c.consult_id == attachment.consult_id)
                )
            ).scalar_one()
            if held > max_per_consult:
                # Leaving the block with an error rolls the insert back (and writes no audit).
                raise TooManyAttachments(f"a consult holds at most {max_per_consult} attachments")
            # A consult that ended meanwhile takes no file. Read now, under the same locks (the
            # consult's row on PostgreSQL, the write lock on SQLite), so ending the consult is
            # either seen here or waits for this transaction.
            status = ConsultStatus(
                (
                    await conn.execute(
                        select(consults.c.status).where(consults.c.id == attachment.consult_id)
                    )
                ).scalar_one()
            )
            if status in FINISHED:
                raise IllegalTransition(status.value, "take attachments")

    async def count_attachments(self, consult_id: str) -> int:
        stmt = select(func.count()).select_from(attachments)
        async with self.db.reading() as conn:
            return int(
                (
                    await conn.execute(stmt.where(attachments.c.consult_id == consult_id))
                ).scalar_one()
            )

    async def get_attachment(self, attachment_id: str) -> Attachment | None:
        async with self.db.reading() as conn:
            row = (
                await conn.execute(select(attachments).where(attachments.c.id == attachment_id))
            ).first()
        return _attachment(row) if row else None

    async def list_attachments(self, consult_id: str) -> list[Attachment]:
        table = attachments
        rows = await self.db.rows_of_consult(table, consult_id, table.c.uploaded_at, table.c.id)
        return [_attachment(r) for r in rows]
