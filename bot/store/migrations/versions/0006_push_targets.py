"""Push targets: the Apprise URL of each chat of platform `push`.

The chat itself (repositories, time, opt-ins, deliveries) is an ordinary `chats` row; this
table only holds the URL, which carries the service's credentials.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Create `push_targets`."""
    op.create_table(
        "push_targets",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("url", sa.Text, nullable=False),
        sa.Column("added_by", sa.String(128), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    """Drop `push_targets`."""
    op.drop_table("push_targets")
