"""`aiinfra-digest health`: does the database answer, and are this host's loops alive?

The Docker HEALTHCHECK runs it inside the container of one `run` instance. Each background loop
of `run` (the scheduler's tick, the Telegram poller's election round) records a heartbeat in the
store's `locks` table, a row named `heartbeat:<host>:<loop>` whose expiry is three of the loop's
intervals after its last beat (on the database's clock). `health` fails when one of this host's
heartbeat rows has expired: the loop died, hung, or keeps failing before it beats.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import sys
import threading
from datetime import UTC, datetime

import sqlalchemy as sa
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, create_async_engine
from sqlalchemy.pool import NullPool

from bot.logs import redact
from bot.settings import Settings
from bot.store import Store
from bot.store.tables import UtcDateTime, locks

log = logging.getLogger(__name__)

DEFAULT_TIMEOUT = 5.0
_MAX_REASON = 300
HEARTBEAT_PREFIX = "heartbeat:"
# A loop is dead once it has missed this many beats.
STALE_INTERVALS = 3
# Expired heartbeats stay this long (so `health` still sees a dead loop), then are pruned.
HEARTBEAT_KEEP_SECONDS = 7 * 86400.0


def host_name() -> str:
    """This instance's name in heartbeat rows: the host (a container's own hostname)."""
    return socket.gethostname()


class Heartbeat:
    """One loop's heartbeat row: `beat()` after each round; stale after three intervals."""

    def __init__(self, store: Store, loop: str, interval: float, *, holder: str = "") -> None:
        self._store = store
        self.name = f"{HEARTBEAT_PREFIX}{host_name()}:{loop}"
        self._holder = holder or host_name()
        self._stale_after = STALE_INTERVALS * interval

    async def beat(self) -> None:
        """Record that the loop is alive; a database error is logged, never raised."""
        try:
            await self._store.beat(self.name, self._holder, self._stale_after)
        except Exception as exc:  # the loop goes on; a heartbeat that cannot be written goes stale
            log.warning("%s: heartbeat not recorded: %s", self.name, type(exc).__name__)

    async def forget(self) -> None:
        """Remove the row on a clean stop (a stopped loop is not a dead one)."""
        try:
            await self._store.release_lock(self.name, self._holder)
        except Exception as exc:
            log.warning("%s: heartbeat not removed: %s", self.name, type(exc).__name__)


def describe_url(url: str) -> str:
    """The database URL with its password hidden, for messages."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return "an unparsable URL"


def _reason(exc: BaseException, url: str) -> str:
    """One short line naming what went wrong, without the password or any token."""
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    reason = f"{type(exc).__name__}: {first}" if first else type(exc).__name__
    try:
        password = make_url(url).password
    except ArgumentError:
        password = None
    if password:
        reason = reason.replace(str(password), "***")
    return redact(reason)[:_MAX_REASON]


def _sqlite_workers() -> set[threading.Thread]:
    """aiosqlite's per-connection worker threads that are still running."""
    return {
        thread
        for thread in threading.enumerate()
        if "_connection_worker_thread" in thread.name and thread.is_alive()
    }


async def _let_sqlite_workers_finish(before: set[threading.Thread], limit: float) -> None:
    """Wait for worker threads started since `before` to stop.

    After a failed connect aiosqlite stops its thread without awaiting it; if the event loop
    closes first, the thread prints a traceback, which would break the one-line answer.
    """
    for thread in _sqlite_workers() - before:
        await asyncio.to_thread(thread.join, limit)


async def stale_loops(connection: AsyncConnection, host: str) -> list[str] | None:
    """This host's loops whose heartbeat expired (database clock); None: no heartbeat table."""
    prefix = f"{HEARTBEAT_PREFIX}{host}:"
    if connection.dialect.name == "postgresql":
        db_now: sa.ColumnElement[datetime] = sa.func.now()
    else:  # SQLite is a file on this host: its clock is the database's
        db_now = sa.literal(datetime.now(UTC), UtcDateTime)
    query = sa.select(locks.c.name, locks.c.expires_at <= db_now).where(
        locks.c.name.startswith(prefix, autoescape=True)
    )
    try:
        rows = (await connection.execute(query)).all()
    except DBAPIError as exc:
        if "locks" in str(exc).lower():  # a database `run` has never migrated: nothing beats
            return None
        raise
    return sorted(str(name)[len(prefix) :] for name, stale in rows if stale)


async def check_database(
    url: str,
    *,
    answer_within: float = DEFAULT_TIMEOUT,
    host: str | None = None,
    schema: str | None = None,
) -> str | None:
    """`SELECT 1` on `url`, then this host's heartbeats; None when healthy, else one line."""
    workers = _sqlite_workers()
    try:
        # NullPool: a probe must not keep a connection open between runs.
        options: dict[str, object] = {"poolclass": NullPool}
        if schema is not None:
            options["connect_args"] = {"server_settings": {"search_path": schema}}
        engine = create_async_engine(url, **options)
    except Exception as exc:  # bad URL, unknown or synchronous driver
        return _reason(exc, url)
    try:
        async with asyncio.timeout(answer_within), engine.connect() as connection:
            await connection.execute(text("SELECT 1"))
            stale = await stale_loops(connection, host or host_name())
        if stale:
            loops = ", ".join(stale)
            return (
                f"loop {loops} of {host or host_name()} missed {STALE_INTERVALS} heartbeats "
                "(dead, hung or failing; see the log)"
            )
    except TimeoutError:
        return f"no answer within {answer_within:g} s"
    except Exception as exc:  # any driver error means "not healthy"; the reason says which
        return _reason(exc, url)
    finally:
        await engine.dispose()
        await _let_sqlite_workers_finish(workers, answer_within)
    return None


async def health(
    settings: Settings,
    *,
    answer_within: float = DEFAULT_TIMEOUT,
    host: str | None = None,
    schema: str | None = None,
) -> int:
    """Exit status of `aiinfra-digest health`: 0 when the database answers and this host's loops
    beat, else 1; one line. `schema`: PostgreSQL search path (tests)."""
    where = describe_url(settings.database_url)
    reason = await check_database(
        settings.database_url, answer_within=answer_within, host=host, schema=schema
    )
    if reason is None:
        print(
            f"healthy: database {where} answers; loops of {host or host_name()} beat",
            file=sys.stdout,
        )
        return 0
    print(f"unhealthy: database {where}: {reason}", file=sys.stderr)
    return 1
