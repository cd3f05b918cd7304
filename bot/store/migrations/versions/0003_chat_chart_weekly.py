"""Per-chat opt-ins for the picture of the day and the Monday roll-up; deliveries get a kind.

`chats.chart` and `chats.weekly` (both off by default). `deliveries.kind` tells the daily post
(`daily`, every existing row) from the weekly roll-up (`weekly`), so one table and one claim
protocol keep both exactly once per chat: the unique key becomes (platform, chat, day, kind).

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Add chats.chart, chats.weekly and deliveries.kind (part of the deliveries' unique key)."""
    with op.batch_alter_table("chats") as batch:
        batch.add_column(sa.Column("chart", sa.Boolean, nullable=False, server_default=sa.false()))
        batch.add_column(sa.Column("weekly", sa.Boolean, nullable=False, server_default=sa.false()))
    # SQLite cannot change a constraint in place: batch mode rebuilds the table there.
    with op.batch_alter_table("deliveries") as batch:
        batch.add_column(sa.Column("kind", sa.String(16), nullable=False, server_default="daily"))
        batch.drop_constraint("uq_deliveries_platform_chat_day", type_="unique")
        batch.create_unique_constraint(
            "uq_deliveries_platform_chat_day_kind", ["platform", "chat_id", "day", "kind"]
        )


def downgrade() -> None:
    """Drop the weekly deliveries and the three columns."""
    op.execute(sa.text("DELETE FROM deliveries WHERE kind <> 'daily'"))
    with op.batch_alter_table("deliveries") as batch:
        batch.drop_constraint("uq_deliveries_platform_chat_day_kind", type_="unique")
        batch.create_unique_constraint(
            "uq_deliveries_platform_chat_day", ["platform", "chat_id", "day"]
        )
        batch.drop_column("kind")
    with op.batch_alter_table("chats") as batch:
        batch.drop_column("weekly")
        batch.drop_column("chart")
