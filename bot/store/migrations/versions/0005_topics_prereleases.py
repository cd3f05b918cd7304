"""Where a chat's posts go inside it (a Telegram forum topic), and pre-release alerts opt-in.

`chats.thread_id` and `alert_chats.thread_id`: the forum topic the daily post, the weekly roll-up
and the release alerts go to (NULL: the chat itself, or a forum's General topic). The sender
gets it as part of the address, `<chat id>/<thread id>`. `alert_chats.prereleases`: false
(every existing opt-in) alerts stable releases only; true also pre-releases and nightly, rc,
dev, alpha and beta tags (`/alerts on all`).

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Add chats.thread_id, alert_chats.thread_id and alert_chats.prereleases."""
    with op.batch_alter_table("chats") as batch:
        batch.add_column(sa.Column("thread_id", sa.String(32), nullable=True))
    with op.batch_alter_table("alert_chats") as batch:
        batch.add_column(sa.Column("thread_id", sa.String(32), nullable=True))
        batch.add_column(
            sa.Column("prereleases", sa.Boolean, nullable=False, server_default=sa.false())
        )


def downgrade() -> None:
    """Drop the three columns (posts go to the chat itself again, alerts stay on)."""
    with op.batch_alter_table("alert_chats") as batch:
        batch.drop_column("prereleases")
        batch.drop_column("thread_id")
    with op.batch_alter_table("chats") as batch:
        batch.drop_column("thread_id")
