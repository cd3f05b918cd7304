"""Test databases: a fresh SQLite file, or a fresh schema on the PostgreSQL of TEST_DATABASE_URL.

    @pytest.fixture(params=BACKENDS)
    async def db(request, tmp_path):
        async with isolated_database(request.param, tmp_path) as database:
            yield database

`db.open()` opens another Store on the same database (a second instance, or a restart).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from sqlalchemy import text

from bot.store import Store, make_engine

BACKENDS = [
    pytest.param("sqlite", id="sqlite"),
    pytest.param("postgresql", id="postgresql"),
]


@dataclass
class TestDatabase:
    """One isolated database; `open()` gives Stores on it, all closed at the end."""

    backend: str
    url: str
    schema: str | None = None
    stores: list[Store] = field(default_factory=list)

    __test__ = False  # not a test class, despite the name

    async def open(self) -> Store:
        """A new Store (own engine and pool) on this database; migrations run as on start."""
        store = await Store.open(self.url, schema=self.schema)
        self.stores.append(store)
        return store


def postgres_url() -> str:
    """TEST_DATABASE_URL, or skip the test."""
    url = os.environ.get("TEST_DATABASE_URL")
    if not url:
        pytest.skip("TEST_DATABASE_URL is not set")
    return url


@asynccontextmanager
async def isolated_database(backend: str, tmp_path: Path) -> AsyncIterator[TestDatabase]:
    """A fresh SQLite file under `tmp_path`, or a fresh PostgreSQL schema dropped afterwards."""
    if backend == "sqlite":
        db = TestDatabase(backend, f"sqlite+aiosqlite:///{tmp_path}/db/digest.sqlite3")
        try:
            yield db
        finally:
            for store in db.stores:
                await store.close()
        return
    url = postgres_url()
    schema = f"test_{uuid.uuid4().hex[:12]}"
    admin = make_engine(url)
    try:
        async with admin.begin() as conn:
            await conn.execute(text(f'CREATE SCHEMA "{schema}"'))
        db = TestDatabase(backend, url, schema)
        try:
            yield db
        finally:
            for store in db.stores:
                await store.close()
            async with admin.begin() as conn:
                await conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    finally:
        await admin.dispose()
