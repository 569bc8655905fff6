"""Recordings (one row per recorded track) and the consent answers that allowed them.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from storage.sql.schema import UTCDateTime

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "recordings",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("consult_id", sa.String(32), sa.ForeignKey("consults.id"), nullable=False),
        sa.Column("participant_id", sa.Integer, sa.ForeignKey("users.id"), nullable=False),
        sa.Column("source", sa.String(20), nullable=False),
        sa.Column("kind", sa.String(10), nullable=False),
        sa.Column("codec", sa.String(20), nullable=False),
        sa.Column("container", sa.String(20), nullable=False),
        sa.Column("storage_key", sa.String(300), nullable=False),
        sa.Column("started_at", UTCDateTime, nullable=False),
        sa.Column("started_offset_s", sa.Float, nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("duration_s", sa.Float, nullable=False),
        sa.Column("bytes", sa.BigInteger, nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("recovered", sa.Boolean, nullable=False),
        sa.Column("finished_at", UTCDateTime, nullable=True),
    )
    op.create_index("ix_recordings_consult", "recordings", ["consult_id"])
    op.create_index("ix_recordings_status", "recordings", ["status"])
    op.create_table(
        "recording_consents",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("consult_id", sa.String(32), sa.ForeignKey("consults.id"), nullable=False),
        sa.Column("user_id", sa.Integer, sa.ForeignKey("users.id"), nullable=False),
        sa.Column("granted", sa.Boolean, nullable=False),
        sa.Column("at", UTCDateTime, nullable=False),
        sa.Column("session_id", sa.String(32), nullable=False),
    )
    op.create_index("ix_recording_consents_consult", "recording_consents", ["consult_id"])


def downgrade() -> None:
    op.drop_table("recording_consents")
    op.drop_table("recordings")
