"""An index on the cache's age, so old entries can be pruned without reading the table.

`cache.updated_at` itself exists since 0001 (NOT NULL, written by every `put`), so existing
rows already carry when they were last written and keep it: nothing to add or fill in. Only
the index is new: pruning deletes by (namespace, updated_at) every day.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-25
"""

from __future__ import annotations

from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Index the cache by namespace and age (what `Store.prune_cache` deletes by)."""
    op.create_index("ix_cache_namespace_updated_at", "cache", ["namespace", "updated_at"])


def downgrade() -> None:
    """Drop the index (the column stays: 0001 created it)."""
    op.drop_index("ix_cache_namespace_updated_at", table_name="cache")
