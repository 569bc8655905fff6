"""Indexes for the statistics and the expiry/reminder scans over consults.

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Statistics: the consults of some institutions requested in a time range.
    op.create_index(
        "ix_consults_institution_requested",
        "consults",
        ["requesting_institution_id", "requested_at"],
    )
    # The expiry and reminder scans: consults in some statuses scheduled before/around a time.
    op.create_index("ix_consults_status_scheduled", "consults", ["status", "scheduled_at"])


def downgrade() -> None:
    op.drop_index("ix_consults_status_scheduled", table_name="consults")
    op.drop_index("ix_consults_institution_requested", table_name="consults")
