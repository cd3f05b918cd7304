"""Initial schema: chats, digests, runs, deliveries, cache, locks.

Revision ID: 0001
Revises:
Create Date: 2026-02-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

# Self-contained on purpose: a migration must keep meaning the same thing after tables.py moves on.
_ts = sa.DateTime(timezone=True)


def upgrade() -> None:
    """Create every table of the first release."""
    op.create_table(
        "chats",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("platform", sa.String(32), nullable=False),
        sa.Column("chat_id", sa.String(128), nullable=False),
        sa.Column("repos", sa.Text, nullable=True),
        sa.Column("post_time", sa.String(5), nullable=False),
        sa.Column("timezone", sa.String(64), nullable=False),
        sa.Column("active", sa.Boolean, nullable=False),
        sa.Column("subscribed_by", sa.String(128), nullable=True),
        sa.Column("subscribed_at", _ts, nullable=True),
        sa.Column("deactivated_at", _ts, nullable=True),
        sa.Column("deactivation_reason", sa.Text, nullable=True),
        sa.Column("updated_at", _ts, nullable=False),
        sa.UniqueConstraint("platform", "chat_id", name="uq_chats_platform_chat"),
    )
    op.create_table(
        "digests",
        sa.Column("day", sa.Date, primary_key=True),
        sa.Column("timezone", sa.String(64), nullable=False),
        sa.Column("digest", sa.Text, nullable=False),
        sa.Column("activity", sa.Text, nullable=False),
        sa.Column("written_by", sa.Text, nullable=False),
        sa.Column("summary_by", sa.String(128), nullable=False),
        sa.Column("prompt_tokens", sa.Integer, nullable=False),
        sa.Column("completion_tokens", sa.Integer, nullable=False),
        sa.Column("model_calls", sa.Integer, nullable=False),
        sa.Column("created_at", _ts, nullable=False),
        sa.Column("updated_at", _ts, nullable=False),
    )
    op.create_table(
        "runs",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("day", sa.Date, nullable=False),
        sa.Column("errors", sa.Text, nullable=False),
        sa.Column("started_at", _ts, nullable=True),
        sa.Column("finished_at", _ts, nullable=False),
    )
    op.create_index("ix_runs_day", "runs", ["day"])
    op.create_table(
        "deliveries",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("platform", sa.String(32), nullable=False),
        sa.Column("chat_id", sa.String(128), nullable=False),
        sa.Column("day", sa.Date, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("claimed_by", sa.String(128), nullable=True),
        sa.Column("lease_until", _ts, nullable=True),
        sa.Column("retry_at", _ts, nullable=True),
        sa.Column("due_at", _ts, nullable=True),
        sa.Column("message_ids", sa.Text, nullable=True),
        sa.Column("last_error", sa.Text, nullable=True),
        sa.Column("sent_at", _ts, nullable=True),
        sa.Column("created_at", _ts, nullable=False),
        sa.Column("updated_at", _ts, nullable=False),
        sa.UniqueConstraint("platform", "chat_id", "day", name="uq_deliveries_platform_chat_day"),
    )
    op.create_index("ix_deliveries_day_status", "deliveries", ["day", "status"])
    op.create_table(
        "cache",
        sa.Column("namespace", sa.String(64), primary_key=True),
        sa.Column("key", sa.Text, primary_key=True),
        sa.Column("value", sa.Text, nullable=False),
        sa.Column("updated_at", _ts, nullable=False),
    )
    op.create_table(
        "locks",
        sa.Column("name", sa.String(128), primary_key=True),
        sa.Column("holder", sa.String(128), nullable=False),
        sa.Column("expires_at", _ts, nullable=False),
    )


def downgrade() -> None:
    """Drop every table (data is lost)."""
    for table in ("locks", "cache", "deliveries", "runs", "digests", "chats"):
        op.drop_table(table)
