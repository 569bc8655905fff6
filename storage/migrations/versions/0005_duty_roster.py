"""The on-duty roster, Web Push subscriptions and the notices sent about consults.

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from storage.sql.schema import UTCDateTime

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "duty_shifts",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("specialist_id", sa.Integer, sa.ForeignKey("users.id"), nullable=False),
        sa.Column("specialty", sa.String(40), nullable=False),
        sa.Column("start_at", UTCDateTime, nullable=False),
        sa.Column("end_at", UTCDateTime, nullable=False),
        sa.Column("tier", sa.Integer, nullable=False, server_default="0"),
    )
    op.create_index(
        "ix_duty_shifts_specialty_time", "duty_shifts", ["specialty", "start_at", "end_at"]
    )
    op.create_table(
        "push_subscriptions",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("user_id", sa.Integer, sa.ForeignKey("users.id"), nullable=False),
        sa.Column("endpoint", sa.String(1000), nullable=False, unique=True),
        sa.Column("p256dh", sa.String(100), nullable=False),
        sa.Column("auth", sa.String(50), nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
    )
    op.create_index("ix_push_subscriptions_user", "push_subscriptions", ["user_id"])
    op.create_table(
        "consult_notices",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("consult_id", sa.String(32), sa.ForeignKey("consults.id"), nullable=False),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("at", UTCDateTime, nullable=False),
        sa.Column("recipients", sa.JSON, nullable=False),
        sa.Column("fallback", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.UniqueConstraint("consult_id", "kind", name="uq_consult_notices_kind"),
    )


def downgrade() -> None:
    op.drop_table("consult_notices")
    op.drop_index("ix_push_subscriptions_user", "push_subscriptions")
    op.drop_table("push_subscriptions")
    op.drop_index("ix_duty_shifts_specialty_time", "duty_shifts")
    op.drop_table("duty_shifts")
