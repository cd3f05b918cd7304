"""`aiinfra-digest health`: does the configured database answer? (Docker HEALTHCHECK, probes.)"""

from __future__ import annotations

import asyncio
import sys
import threading

from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from bot.logs import redact
from bot.settings import Settings

DEFAULT_TIMEOUT = 5.0
_MAX_REASON = 300


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


async def check_database(url: str, *, answer_within: float = DEFAULT_TIMEOUT) -> str | None:
    """Run `SELECT 1` on `url`; None when it answered within the limit, else a one-line reason."""
    workers = _sqlite_workers()
    try:
        # NullPool: a probe must not keep a connection open between runs.
        engine = create_async_engine(url, poolclass=NullPool)
    except Exception as exc:  # bad URL, unknown or synchronous driver
        return _reason(exc, url)
    try:
        async with asyncio.timeout(answer_within), engine.connect() as connection:
            await connection.execute(text("SELECT 1"))
    except TimeoutError:
        return f"no answer within {answer_within:g} s"
    except Exception as exc:  # any driver error means "not healthy"; the reason says which
        return _reason(exc, url)
    finally:
        await engine.dispose()
        await _let_sqlite_workers_finish(workers, answer_within)
    return None


async def health(settings: Settings, *, answer_within: float = DEFAULT_TIMEOUT) -> int:
    """Exit status of `aiinfra-digest health`: 0 when the database answers, else 1; one line."""
    where = describe_url(settings.database_url)
    reason = await check_database(settings.database_url, answer_within=answer_within)
    if reason is None:
        print(f"healthy: database {where} answers", file=sys.stdout)
        return 0
    print(f"unhealthy: database {where}: {reason}", file=sys.stderr)
    return 1
