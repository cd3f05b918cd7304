"""Persistence: SQLAlchemy tables, queries and Alembic migrations."""

from bot.store.engine import make_engine, migrate, upgrade
from bot.store.store import (
    DAILY,
    FAILED,
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
    PushTargetRow,
    RunRecord,
    TrackedRepo,
    WatchChange,
    WatchLimitExceeded,
)

__all__ = [
    "DAILY",
    "FAILED",
    "PENDING",
    "SENDING",
    "SENT",
    "SKIPPED",
    "WEEKLY",
    "AlertChat",
    "AlertClaim",
    "Chat",
    "DeliveryClaim",
    "PushTargetRow",
    "RunRecord",
    "Store",
    "TrackedRepo",
    "WatchChange",
    "WatchLimitExceeded",
    "make_engine",
    "migrate",
    "upgrade",
    "utcnow",
    "watch_key",
]
