"""The database tables (SQLAlchemy Core), mirroring the Alembic migrations in `migrations/`.

JSON lives in Text columns (portable between SQLite and PostgreSQL, read back by pydantic);
instants are UTC, stored naive on SQLite and as timestamptz on PostgreSQL.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator


class UtcDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every backend (SQLite keeps no offset, so we add it)."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        """Normalise to UTC; SQLite compares the stored text, so it must be one fixed form."""
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the store; pass an aware one")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        """Aware UTC datetimes out, whatever the backend returned."""
        if value is None:
            return None
        assert isinstance(value, datetime)
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


metadata = sa.MetaData()

chats = sa.Table(
    "chats",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("platform", sa.String(32), nullable=False),
    sa.Column("chat_id", sa.String(128), nullable=False),
    sa.Column("repos", sa.Text, nullable=True),  # JSON list; NULL = all tracked repositories
    sa.Column("post_time", sa.String(5), nullable=False),
    sa.Column("timezone", sa.String(64), nullable=False),
    sa.Column("active", sa.Boolean, nullable=False),
    sa.Column("subscribed_by", sa.String(128), nullable=True),
    sa.Column("subscribed_at", UtcDateTime, nullable=True),
    sa.Column("deactivated_at", UtcDateTime, nullable=True),
    sa.Column("deactivation_reason", sa.Text, nullable=True),
    sa.Column("updated_at", UtcDateTime, nullable=False),
    # Opt-ins (migration 0003): the picture of the day with the daily post, the Monday roll-up.
    sa.Column("chart", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("weekly", sa.Boolean, nullable=False, server_default=sa.false()),
    # Migration 0005: the forum topic the chat's posts go to (NULL: the chat itself).
    sa.Column("thread_id", sa.String(32), nullable=True),
    sa.UniqueConstraint("platform", "chat_id", name="uq_chats_platform_chat"),
)

digests = sa.Table(
    "digests",
    metadata,
    sa.Column("day", sa.Date, primary_key=True),
    sa.Column("timezone", sa.String(64), nullable=False),
    sa.Column("digest", sa.Text, nullable=False),  # Digest JSON (sections, summary, notes)
    sa.Column("activity", sa.Text, nullable=False),  # the activity JSON it was written from
    sa.Column("written_by", sa.Text, nullable=False),  # JSON {repo: "model:<name>" | how}
    sa.Column("summary_by", sa.String(128), nullable=False),
    sa.Column("prompt_tokens", sa.Integer, nullable=False),
    sa.Column("completion_tokens", sa.Integer, nullable=False),
    sa.Column("model_calls", sa.Integer, nullable=False),
    sa.Column("created_at", UtcDateTime, nullable=False),
    sa.Column("updated_at", UtcDateTime, nullable=False),
)

runs = sa.Table(
    "runs",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("day", sa.Date, nullable=False, index=True),
    sa.Column("errors", sa.Text, nullable=False),  # JSON list of one-line errors
    sa.Column("started_at", UtcDateTime, nullable=True),
    sa.Column("finished_at", UtcDateTime, nullable=False),
)

deliveries = sa.Table(
    "deliveries",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("platform", sa.String(32), nullable=False),
    sa.Column("chat_id", sa.String(128), nullable=False),
    sa.Column("day", sa.Date, nullable=False),
    sa.Column("status", sa.String(16), nullable=False),  # pending | sending | sent | failed
    sa.Column("attempts", sa.Integer, nullable=False),
    sa.Column("claimed_by", sa.String(128), nullable=True),
    sa.Column("lease_until", UtcDateTime, nullable=True),
    sa.Column("retry_at", UtcDateTime, nullable=True),
    sa.Column("due_at", UtcDateTime, nullable=True),
    sa.Column("message_ids", sa.Text, nullable=True),  # JSON list
    sa.Column("last_error", sa.Text, nullable=True),
    sa.Column("sent_at", UtcDateTime, nullable=True),
    sa.Column("created_at", UtcDateTime, nullable=False),
    sa.Column("updated_at", UtcDateTime, nullable=False),
    # daily | weekly (migration 0003): the weekly roll-up of the week ending with `day`.
    sa.Column("kind", sa.String(16), nullable=False, server_default="daily"),
    sa.UniqueConstraint(
        "platform", "chat_id", "day", "kind", name="uq_deliveries_platform_chat_day_kind"
    ),
    sa.Index("ix_deliveries_day_status", "day", "status"),
)

cache = sa.Table(
    "cache",
    metadata,
    sa.Column("namespace", sa.String(64), primary_key=True),
    sa.Column("key", sa.Text, primary_key=True),
    sa.Column("value", sa.Text, nullable=False),
    sa.Column("updated_at", UtcDateTime, nullable=False),  # set by every put
    # Migration 0004: pruning deletes by namespace and age.
    sa.Index("ix_cache_namespace_updated_at", "namespace", "updated_at"),
)

locks = sa.Table(
    "locks",
    metadata,
    sa.Column("name", sa.String(128), primary_key=True),
    sa.Column("holder", sa.String(128), nullable=False),
    sa.Column("expires_at", UtcDateTime, nullable=False),
)

# -- release alerts, keyword watches and tracked repositories (migration 0002) -----------------

tracked_repos = sa.Table(
    "tracked_repos",
    metadata,
    sa.Column("repo_key", sa.String(160), primary_key=True),  # lower-case owner/name
    sa.Column("repo", sa.String(160), nullable=False),  # GitHub's spelling
    sa.Column("pinned", sa.Boolean, nullable=False),  # added by an operator (/track)
    sa.Column("added_by", sa.String(160), nullable=True),
    sa.Column("added_at", UtcDateTime, nullable=False),
)

repo_follows = sa.Table(
    "repo_follows",
    metadata,
    # A chat that asked for a repository beyond DIGEST_REPOS while following "all": it keeps
    # the repository tracked as long as it follows "all" of that kind (daily | alerts).
    sa.Column("platform", sa.String(32), primary_key=True),
    sa.Column("chat_id", sa.String(128), primary_key=True),
    sa.Column("repo_key", sa.String(160), primary_key=True),
    sa.Column("kind", sa.String(16), primary_key=True),
    sa.Column("created_at", UtcDateTime, nullable=False),
)

watches = sa.Table(
    "watches",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("platform", sa.String(32), nullable=False),
    sa.Column("chat_id", sa.String(128), nullable=False),
    sa.Column("word", sa.String(64), nullable=False),
    sa.Column("word_key", sa.String(256), nullable=False),  # casefolded, for uniqueness
    sa.Column("created_at", UtcDateTime, nullable=False),
    sa.UniqueConstraint("platform", "chat_id", "word_key", name="uq_watches_chat_word"),
)

alert_chats = sa.Table(
    "alert_chats",
    metadata,
    sa.Column("platform", sa.String(32), primary_key=True),
    sa.Column("chat_id", sa.String(128), primary_key=True),
    sa.Column("repos", sa.Text, nullable=True),  # JSON list; NULL = all tracked repositories
    sa.Column("since", UtcDateTime, nullable=False),  # releases published before are not alerted
    sa.Column("enabled_by", sa.String(128), nullable=True),
    sa.Column("updated_at", UtcDateTime, nullable=False),
    # Migration 0005: the forum topic alerts go to; whether pre-releases are alerted too.
    sa.Column("thread_id", sa.String(32), nullable=True),
    sa.Column("prereleases", sa.Boolean, nullable=False, server_default=sa.false()),
)

release_cursors = sa.Table(
    "release_cursors",
    metadata,
    sa.Column("repo_key", sa.String(160), primary_key=True),
    sa.Column("first_seen_at", UtcDateTime, nullable=False),
)

alerts = sa.Table(
    "alerts",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("platform", sa.String(32), nullable=False),
    sa.Column("chat_id", sa.String(128), nullable=False),
    sa.Column("repo", sa.String(160), nullable=False),
    sa.Column("tag", sa.String(255), nullable=False),
    sa.Column("published_at", UtcDateTime, nullable=True),
    sa.Column("message", sa.Text, nullable=False),  # the alert's Markdown, as sent
    sa.Column("status", sa.String(16), nullable=False),  # pending | sending | sent | failed
    sa.Column("attempts", sa.Integer, nullable=False),
    sa.Column("claimed_by", sa.String(128), nullable=True),
    sa.Column("lease_until", UtcDateTime, nullable=True),
    sa.Column("retry_at", UtcDateTime, nullable=True),
    sa.Column("message_ids", sa.Text, nullable=True),  # JSON list
    sa.Column("last_error", sa.Text, nullable=True),
    sa.Column("sent_at", UtcDateTime, nullable=True),
    sa.Column("created_at", UtcDateTime, nullable=False),
    sa.Column("updated_at", UtcDateTime, nullable=False),
    sa.UniqueConstraint("platform", "chat_id", "repo", "tag", name="uq_alerts_chat_release"),
    sa.Index("ix_alerts_status", "status"),
)

# Push targets (migration 0006): an Apprise URL per chat of platform `push` (chat_id = id).
# The URL holds the service's credentials: it is shown only as scheme, host and a short hash.
push_targets = sa.Table(
    "push_targets",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("url", sa.Text, nullable=False),
    sa.Column("added_by", sa.String(128), nullable=True),
    sa.Column("created_at", UtcDateTime, nullable=False),
)
