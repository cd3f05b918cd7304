"""Release alerts, keyword watches and repositories tracked beyond DIGEST_REPOS.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

# Self-contained on purpose: a migration must keep meaning the same thing after tables.py moves on.
_ts = sa.DateTime(timezone=True)


def upgrade() -> None:
    """Create tracked_repos, repo_follows, watches, alert_chats, release_cursors and alerts."""
    op.create_table(
        "tracked_repos",
        sa.Column("repo_key", sa.String(160), primary_key=True),
        sa.Column("repo", sa.String(160), nullable=False),
        sa.Column("pinned", sa.Boolean, nullable=False),
        sa.Column("added_by", sa.String(160), nullable=True),
        sa.Column("added_at", _ts, nullable=False),
    )
    op.create_table(
        "repo_follows",
        sa.Column("platform", sa.String(32), primary_key=True),
        sa.Column("chat_id", sa.String(128), primary_key=True),
        sa.Column("repo_key", sa.String(160), primary_key=True),
        sa.Column("kind", sa.String(16), primary_key=True),
        sa.Column("created_at", _ts, nullable=False),
    )
    op.create_table(
        "watches",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("platform", sa.String(32), nullable=False),
        sa.Column("chat_id", sa.String(128), nullable=False),
        sa.Column("word", sa.String(64), nullable=False),
        sa.Column("word_key", sa.String(256), nullable=False),
        sa.Column("created_at", _ts, nullable=False),
        sa.UniqueConstraint("platform", "chat_id", "word_key", name="uq_watches_chat_word"),
    )
    op.create_table(
        "alert_chats",
        sa.Column("platform", sa.String(32), primary_key=True),
        sa.Column("chat_id", sa.String(128), primary_key=True),
        sa.Column("repos", sa.Text, nullable=True),
        sa.Column("since", _ts, nullable=False),
        sa.Column("enabled_by", sa.String(128), nullable=True),
        sa.Column("updated_at", _ts, nullable=False),
    )
    op.create_table(
        "release_cursors",
        sa.Column("repo_key", sa.String(160), primary_key=True),
        sa.Column("first_seen_at", _ts, nullable=False),
    )
    op.create_table(
        "alerts",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("platform", sa.String(32), nullable=False),
        sa.Column("chat_id", sa.String(128), nullable=False),
        sa.Column("repo", sa.String(160), nullable=False),
        sa.Column("tag", sa.String(255), nullable=False),
        sa.Column("published_at", _ts, nullable=True),
        sa.Column("message", sa.Text, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("claimed_by", sa.String(128), nullable=True),
        sa.Column("lease_until", _ts, nullable=True),
        sa.Column("retry_at", _ts, nullable=True),
        sa.Column("message_ids", sa.Text, nullable=True),
        sa.Column("last_error", sa.Text, nullable=True),
        sa.Column("sent_at", _ts, nullable=True),
        sa.Column("created_at", _ts, nullable=False),
        sa.Column("updated_at", _ts, nullable=False),
        sa.UniqueConstraint("platform", "chat_id", "repo", "tag", name="uq_alerts_chat_release"),
    )
    op.create_index("ix_alerts_status", "alerts", ["status"])


def downgrade() -> None:
    """Drop the tables of this revision (their data is lost)."""
    op.drop_index("ix_alerts_status", table_name="alerts")
    for table in (
        "alerts",
        "release_cursors",
        "alert_chats",
        "watches",
        "repo_follows",
        "tracked_repos",
    ):
        op.drop_table(table)
