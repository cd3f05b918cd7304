"""Persistence: SQLAlchemy tables, queries and Alembic migrations."""

from bot.store.engine import make_engine, migrate, upgrade
from bot.store.store import (
    DAILY,
    FAILED,
    KEEP,
    PENDING,
    SENDING,
    SENT,
    SKIPPED,
    WEEKLY,
    Store,
    utcnow,
    watch_key,
)
from bot.store.types import (
    AlertChat,
    AlertClaim,
    Chat,
    DeliveryClaim,
    RunRecord,
    TrackedRepo,
    WatchChange,
    WatchLimitExceeded,
    chat_address,
)

__all__ = [
    "DAILY",
    "FAILED",
    "KEEP",
    "PENDING",
    "SENDING",
    "SENT",
    "SKIPPED",
    "WEEKLY",
    "AlertChat",
    "AlertClaim",
    "Chat",
    "DeliveryClaim",
    "RunRecord",
    "Store",
    "TrackedRepo",
    "WatchChange",
    "WatchLimitExceeded",
    "chat_address",
    "make_engine",
    "migrate",
    "upgrade",
    "utcnow",
    "watch_key",
]
