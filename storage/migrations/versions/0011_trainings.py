"""Trainings (`rooms.training`): one lecturer, many trainees; their attendance.

Revision ID: 0011
Revises: 0010
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from storage.sql.schema import UTCDateTime

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "trainings",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("title", sa.String(200), nullable=False),
        sa.Column(
            "organiser_institution_id",
            sa.Integer,
            sa.ForeignKey("institutions.id"),
            nullable=False,
        ),
        sa.Column("lecturer_ids", sa.JSON, nullable=False),
        sa.Column("starts_at", UTCDateTime, nullable=False),
        sa.Column("ends_at", UTCDateTime, nullable=False),
        sa.Column("audience_kind", sa.String(10), nullable=False),
        sa.Column("audience_institution_ids", sa.JSON, nullable=False),
        sa.Column("specialties", sa.JSON, nullable=False),
        sa.Column("status", sa.String(12), nullable=False),
        sa.Column("created_by", sa.Integer, sa.ForeignKey("users.id"), nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
    )
    op.create_index("ix_trainings_starts_at", "trainings", ["starts_at"])
    op.create_table(
        "training_attendance",
        sa.Column("training_id", sa.String(32), sa.ForeignKey("trainings.id"), primary_key=True),
        sa.Column("user_id", sa.Integer, sa.ForeignKey("users.id"), primary_key=True),
        sa.Column("institution_id", sa.Integer, sa.ForeignKey("institutions.id"), nullable=False),
        sa.Column("first_seen", UTCDateTime, nullable=False),
        sa.Column("last_seen", UTCDateTime, nullable=False),
        sa.Column("seconds", sa.Float, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("training_attendance")
    op.drop_index("ix_trainings_starts_at", "trainings")
    op.drop_table("trainings")
