"""Supervisors' review comments on consults, append-only like notes and the audit log.

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from storage.sql.schema import UTCDateTime

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "review_comments",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("consult_id", sa.String(32), sa.ForeignKey("consults.id"), nullable=False),
        sa.Column("author_id", sa.Integer, sa.ForeignKey("users.id"), nullable=False),
        sa.Column("text", sa.Text, nullable=False),
        sa.Column("at", UTCDateTime, nullable=False),
        sa.Column("timeline_s", sa.Float, nullable=True),
    )
    op.create_index("ix_review_comments_consult", "review_comments", ["consult_id", "at"])
    # A review comment is part of the audit of a consult: corrected by a new one, never edited.
    dialect = op.get_bind().dialect.name
    if dialect == "sqlite":
        for verb in ("UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER review_comments_no_{verb.lower()} BEFORE {verb} "
                "ON review_comments "
                "BEGIN SELECT RAISE(ABORT, 'review comments are append-only'); END"
            )
    elif dialect == "postgresql":
        op.execute(
            "CREATE FUNCTION review_comments_append_only() RETURNS trigger LANGUAGE plpgsql AS "
            "$$ BEGIN RAISE EXCEPTION 'review comments are append-only'; END $$"
        )
        op.execute(
            "CREATE TRIGGER review_comments_append_only BEFORE UPDATE OR DELETE "
            "ON review_comments FOR EACH ROW EXECUTE FUNCTION review_comments_append_only()"
        )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS review_comments_append_only ON review_comments")
        op.execute("DROP FUNCTION IF EXISTS review_comments_append_only()")
    op.drop_table("review_comments")
