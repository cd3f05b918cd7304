"""Persistence: SQLAlchemy tables, queries and Alembic migrations."""

from bot.store.engine import make_engine, migrate, upgrade
from bot.store.store import FAILED, PENDING, SENDING, SENT, Store, utcnow
from bot.store.types import Chat, DeliveryClaim, RunRecord

__all__ = [
    "FAILED",
    "PENDING",
    "SENDING",
    "SENT",
    "Chat",
    "DeliveryClaim",
    "RunRecord",
    "Store",
    "make_engine",
    "migrate",
    "upgrade",
    "utcnow",
]
