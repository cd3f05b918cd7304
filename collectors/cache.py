"""A small persistent key-value cache (ETags, written sections) that survives restarts.

The protocol is what collectors and summarizer need; the bot's database store implements it too,
and `FileCache` (one SQLite file, standard library) serves when there is no database.
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Protocol


class KeyValueCache(Protocol):
    """Text values under text keys, in a namespace chosen by the caller."""

    async def get(self, namespace: str, key: str) -> str | None:
        """The stored value, or None."""
        ...

    async def put(self, namespace: str, key: str, value: str) -> None:
        """Store `value`, replacing any earlier one."""
        ...


class MemoryCache:
    """A process-local cache, for tests and one-shot runs."""

    def __init__(self) -> None:
        self._data: dict[tuple[str, str], str] = {}

    async def get(self, namespace: str, key: str) -> str | None:
        """The stored value, or None."""
        return self._data.get((namespace, key))

    async def put(self, namespace: str, key: str, value: str) -> None:
        """Store `value`."""
        self._data[(namespace, key)] = value


class FileCache:
    """A cache in one SQLite file; safe for several tasks of one process."""

    def __init__(self, path: str | Path) -> None:
        self._path = Path(path)
        self._lock = threading.Lock()
        self._conn: sqlite3.Connection | None = None

    @property
    def path(self) -> Path:
        """The SQLite file."""
        return self._path

    def _connect(self) -> sqlite3.Connection:
        if self._conn is None:
            self._path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(self._path, check_same_thread=False)
            try:
                _prepare(conn)
            except BaseException:
                conn.close()
                raise
            self._conn = conn
        return self._conn

    def _get(self, namespace: str, key: str) -> str | None:
        with self._lock:
            row = (
                self._connect()
                .execute(
                    "SELECT value FROM cache WHERE namespace = ? AND key = ?", (namespace, key)
                )
                .fetchone()
            )
        return None if row is None else str(row[0])

    def _put(self, namespace: str, key: str, value: str) -> None:
        with self._lock:
            conn = self._connect()
            conn.execute(
                "INSERT OR REPLACE INTO cache (namespace, key, value, updated_at)"
                " VALUES (?, ?, ?, ?)",
                (namespace, key, value, _stamp(datetime.now(UTC))),
            )
            conn.commit()

    def _prune(
        self, older_than: timedelta, namespaces: Sequence[str] | None, now: datetime | None
    ) -> int:
        if namespaces is not None and not namespaces:
            return 0
        query = "DELETE FROM cache WHERE updated_at < ?"
        params: list[str] = [_stamp((now or datetime.now(UTC)) - older_than)]
        if namespaces is not None:
            query += f" AND namespace IN ({', '.join('?' * len(namespaces))})"
            params += namespaces
        with self._lock:
            conn = self._connect()
            removed = conn.execute(query, params).rowcount
            conn.commit()
        return removed

    async def get(self, namespace: str, key: str) -> str | None:
        """The stored value, or None."""
        return await asyncio.to_thread(self._get, namespace, key)

    async def put(self, namespace: str, key: str, value: str) -> None:
        """Store `value`, replacing any earlier one."""
        await asyncio.to_thread(self._put, namespace, key, value)

    async def prune(
        self,
        older_than: timedelta,
        *,
        namespaces: Sequence[str] | None = None,
        now: datetime | None = None,
    ) -> int:
        """Delete entries last written more than `older_than` ago (in `namespaces`, None: all).

        Returns how many went. One indexed DELETE: cheap enough to run after every run.
        """
        return await asyncio.to_thread(self._prune, older_than, namespaces, now)

    def close(self) -> None:
        """Close the file."""
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None


def _stamp(moment: datetime) -> str:
    """One fixed-width UTC text form, so that SQLite's text comparison orders instants."""
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


def _prepare(conn: sqlite3.Connection) -> None:
    """Create the table, or bring a file written before `updated_at` existed up to date.

    Entries of such a file get the current time: their real age is unknown, and now only
    postpones their pruning. One IMMEDIATE transaction, so two processes opening the same old
    file cannot both add the column.
    """
    conn.execute("BEGIN IMMEDIATE")
    try:
        conn.execute(
            "CREATE TABLE IF NOT EXISTS cache ("
            "namespace TEXT NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL, "
            "updated_at TEXT, PRIMARY KEY (namespace, key))"
        )
        columns = {str(row[1]) for row in conn.execute("PRAGMA table_info(cache)")}
        if "updated_at" not in columns:
            conn.execute("ALTER TABLE cache ADD COLUMN updated_at TEXT")
            conn.execute("UPDATE cache SET updated_at = ?", (_stamp(datetime.now(UTC)),))
        conn.execute(
            "CREATE INDEX IF NOT EXISTS cache_namespace_updated_at ON cache (namespace, updated_at)"
        )
        conn.commit()
    except BaseException:
        conn.rollback()
        raise
