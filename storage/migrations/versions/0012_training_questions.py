"""Trainees' questions during a training (`rooms.training.questions`).

Revision ID: 0012
Revises: 0011
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from storage.sql.schema import UTCDateTime

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "training_questions",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("training_id", sa.String(32), sa.ForeignKey("trainings.id"), nullable=False),
        sa.Column("asker_id", sa.Integer, sa.ForeignKey("users.id"), nullable=False),
        sa.Column("institution_id", sa.Integer, sa.ForeignKey("institutions.id"), nullable=False),
        sa.Column("text", sa.String(500), nullable=False),
        sa.Column("asked_at", UTCDateTime, nullable=False),
        sa.Column("status", sa.String(10), nullable=False),
        sa.Column("moderated_by", sa.Integer, sa.ForeignKey("users.id"), nullable=True),
        sa.Column("moderated_at", UTCDateTime, nullable=True),
    )
    op.create_index(
        "ix_training_questions_training", "training_questions", ["training_id", "asked_at"]
    )


def downgrade() -> None:
    op.drop_index("ix_training_questions_training", "training_questions")
    op.drop_table("training_questions")
