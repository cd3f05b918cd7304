"""Engines for SQLite (aiosqlite) and PostgreSQL (asyncpg), and the Alembic upgrade on start."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import event, text
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import StaticPool

log = logging.getLogger(__name__)

_HERE = Path(__file__).resolve().parent
# Any fixed number: instances starting together on one PostgreSQL migrate one after the other.
_MIGRATION_LOCK = 0x61696466


def make_engine(url: str, *, schema: str | None = None, echo: bool = False) -> AsyncEngine:
    """An async engine for `url`; SQLite gets its directory, WAL and explicit transactions.

    `schema` (PostgreSQL only) puts every table in that schema via `search_path`; tests use it
    to isolate themselves, operators may use it to share one database between deployments.
    """
    parsed = make_url(url)
    options: dict[str, Any] = {"echo": echo}
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database or ""
        in_memory = database in ("", ":memory:") or "mode=memory" in str(parsed.query)
        if in_memory:
            # One shared connection, or each pooled connection would see its own empty database.
            options["poolclass"] = StaticPool
        else:
            Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
        engine = create_async_engine(parsed, **options)
        _sqlite_events(engine, wal=not in_memory)
        return engine
    if schema is not None:
        if parsed.get_backend_name() != "postgresql":
            raise ValueError("a schema is supported on PostgreSQL only")
        options["connect_args"] = {"server_settings": {"search_path": schema}}
    options.setdefault("pool_pre_ping", True)
    return create_async_engine(parsed, **options)


def _sqlite_events(engine: AsyncEngine, *, wal: bool) -> None:
    @event.listens_for(engine.sync_engine, "connect")
    def _connect(dbapi_connection: Any, _record: Any) -> None:
        # The driver's implicit transactions start late and cannot be made IMMEDIATE; we emit
        # BEGIN ourselves (see `_begin`), so turn its own handling off.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        # First: switching to WAL needs the database to itself, so it must wait, not fail, while
        # another instance starting at the same moment holds it.
        cursor.execute("PRAGMA busy_timeout=30000")
        if wal:
            cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _begin(conn: Connection) -> None:
        # Writers that read first must hold the write lock from the start, or two of them
        # deadlock on the upgrade from a read to a write lock (SQLITE_BUSY, no waiting).
        immediate = conn.get_execution_options().get("sqlite_immediate", False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


def alembic_config() -> Config:
    """The Alembic configuration of the packaged migrations."""
    config = Config(str(_HERE / "alembic.ini"))
    config.set_main_option("script_location", str(_HERE / "migrations"))
    return config


def _upgrade_sync(connection: Connection) -> None:
    if connection.dialect.name == "postgresql":
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _MIGRATION_LOCK})
    config = alembic_config()
    config.attributes["connection"] = connection
    command.upgrade(config, "head")


async def migrate(engine: AsyncEngine) -> None:
    """Bring the database of `engine` to the newest schema (idempotent, safe to race)."""
    async with engine.connect() as conn:
        conn = await conn.execution_options(sqlite_immediate=True)
        async with conn.begin():
            await conn.run_sync(_upgrade_sync)


async def upgrade(url: str, *, schema: str | None = None) -> None:
    """Apply the migrations to the database at `url` (`aiinfra-digest db upgrade`)."""
    engine = make_engine(url, schema=schema)
    try:
        await migrate(engine)
    finally:
        await engine.dispose()
