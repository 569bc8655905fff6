"""The specialist's conclusion draft, kept while the consult runs, and who ended a consult.

Revision ID: 0009
Revises: 0008
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from storage.sql.schema import UTCDateTime

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("consults", sa.Column("ended_by_id", sa.Integer, nullable=True))
    op.create_table(
        "conclusion_drafts",
        sa.Column("consult_id", sa.String(32), sa.ForeignKey("consults.id"), primary_key=True),
        sa.Column("text", sa.Text, nullable=False),
        sa.Column("author_id", sa.Integer, sa.ForeignKey("users.id"), nullable=False),
        sa.Column("saved_at", UTCDateTime, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("conclusion_drafts")
    with op.batch_alter_table("consults") as batch:
        batch.drop_column("ended_by_id")
