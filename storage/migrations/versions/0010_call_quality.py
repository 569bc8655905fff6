"""Call quality telemetry: per consult, participant, source and 10 s bucket.

Revision ID: 0010
Revises: 0009
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from storage.sql.schema import UTCDateTime

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "call_quality",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("consult_id", sa.String(32), sa.ForeignKey("consults.id"), nullable=False),
        sa.Column("user_id", sa.Integer, sa.ForeignKey("users.id"), nullable=False),
        sa.Column("source", sa.String(10), nullable=False),
        sa.Column("bucket_start", UTCDateTime, nullable=False),
        sa.Column("path", sa.String(10), nullable=False),
        sa.Column("reports", sa.Integer, nullable=False),
        sa.Column("seconds", sa.Float, nullable=False),
        sa.Column("bitrate_in_kbps", sa.Float, nullable=False),
        sa.Column("bitrate_out_kbps", sa.Float, nullable=False),
        sa.Column("loss_pct", sa.Float, nullable=False),
        sa.Column("loss_max_pct", sa.Float, nullable=False),
        sa.Column("rtt_ms", sa.Float, nullable=True),
        sa.Column("jitter_ms", sa.Float, nullable=True),
        sa.Column("frames_decoded", sa.Integer, nullable=False),
        sa.Column("frames_dropped", sa.Integer, nullable=False),
        sa.Column("freezes", sa.Integer, nullable=False),
        sa.Column("freeze_ms", sa.Float, nullable=False),
        sa.Column("audio_concealed_pct", sa.Float, nullable=False),
        sa.Column("audio_only_s", sa.Float, nullable=False),
        sa.Column("nacks", sa.Integer, nullable=False),
        sa.Column("plis", sa.Integer, nullable=False),
    )
    op.create_index("ix_call_quality_consult", "call_quality", ["consult_id", "bucket_start"])


def downgrade() -> None:
    op.drop_index("ix_call_quality_consult", "call_quality")
    op.drop_table("call_quality")
