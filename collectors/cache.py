"""A small persistent key-value cache (ETags, written sections) that survives restarts.

The protocol is what collectors and summarizer need; the bot's database store implements it too,
and `FileCache` (one SQLite file, standard library) serves when there is no database.
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
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

    def _connect(self) -> sqlite3.Connection:
        if self._conn is None:
            self._path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(self._path, check_same_thread=False)
            conn.execute(
                "CREATE TABLE IF NOT EXISTS cache ("
                "namespace TEXT NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL, "
                "PRIMARY KEY (namespace, key))"
            )
            conn.commit()
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
                "INSERT OR REPLACE INTO cache (namespace, key, value) VALUES (?, ?, ?)",
                (namespace, key, value),
            )
            conn.commit()

    async def get(self, namespace: str, key: str) -> str | None:
        """The stored value, or None."""
        return await asyncio.to_thread(self._get, namespace, key)

    async def put(self, namespace: str, key: str, value: str) -> None:
        """Store `value`, replacing any earlier one."""
        await asyncio.to_thread(self._put, namespace, key, value)

    def close(self) -> None:
        """Close the file."""
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None
