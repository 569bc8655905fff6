"""Notes taken during consults, append-only like the audit log.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from storage.sql.schema import UTCDateTime

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "notes",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("consult_id", sa.String(32), sa.ForeignKey("consults.id"), nullable=False),
        sa.Column("author_id", sa.Integer, sa.ForeignKey("users.id"), nullable=False),
        sa.Column("text", sa.Text, nullable=False),
        sa.Column("at", UTCDateTime, nullable=False),
        sa.Column("recording_offset_s", sa.Float, nullable=True),
    )
    op.create_index("ix_notes_consult", "notes", ["consult_id", "at"])
    # A note is part of the consult record: corrected by a new note, never edited or deleted.
    dialect = op.get_bind().dialect.name
    if dialect == "sqlite":
        for verb in ("UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER notes_no_{verb.lower()} BEFORE {verb} ON notes "
                "BEGIN SELECT RAISE(ABORT, 'notes are append-only'); END"
            )
    elif dialect == "postgresql":
        op.execute(
            "CREATE FUNCTION notes_append_only() RETURNS trigger LANGUAGE plpgsql AS "
            "$$ BEGIN RAISE EXCEPTION 'notes are append-only'; END $$"
        )
        op.execute(
            "CREATE TRIGGER notes_append_only BEFORE UPDATE OR DELETE ON notes "
            "FOR EACH ROW EXECUTE FUNCTION notes_append_only()"
        )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS notes_append_only ON notes")
        op.execute("DROP FUNCTION IF EXISTS notes_append_only()")
    op.drop_table("notes")
