"""Invitations of further specialists into a consult (multi-disciplinary consults).

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from storage.sql.schema import UTCDateTime

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "consult_invitations",
        sa.Column("consult_id", sa.String(32), sa.ForeignKey("consults.id"), primary_key=True),
        sa.Column("specialist_id", sa.Integer, sa.ForeignKey("users.id"), primary_key=True),
        sa.Column("invited_by", sa.Integer, sa.ForeignKey("users.id"), nullable=False),
        sa.Column("invited_at", UTCDateTime, nullable=False),
    )
    op.create_index("ix_consult_invitations_specialist", "consult_invitations", ["specialist_id"])


def downgrade() -> None:
    op.drop_table("consult_invitations")
