"""The cache stops growing: entries past their namespace's retention are deleted, in the store
(SQLite and PostgreSQL, daily from the scheduler) and in the CLI's cache file (after a collection),
and databases and files from before keep their entries through the upgrade."""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command
from fake_github import FakeGitHub, commit
from sqlalchemy.engine import Connection
from store_backends import BACKENDS, TestDatabase, isolated_database

from bot.pipeline import CACHE_RETENTION, Pipeline, collect_activity, prune_cache
from bot.scheduler import Scheduler
from bot.settings import Settings
from bot.store import Store, make_engine
from bot.store.engine import alembic_config
from bot.store.tables import cache
from collectors.cache import FileCache
from collectors.github import GitHubClient
from collectors.sample import load_sample
from summarizer.compose import Composer

DAY_AFTER_SAMPLE = datetime(2026, 1, 16, 1, 0, tzinfo=UTC)  # the sample day is ready by then


@pytest.fixture(params=BACKENDS)
async def db(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[TestDatabase]:
    async with isolated_database(request.param, tmp_path) as database:
        yield database


async def backdate(store: Store, namespace: str, key: str, when: datetime) -> None:
    """Pretend the entry was last written at `when`."""
    stmt = (
        sa.update(cache)
        .where(cache.c.namespace == namespace, cache.c.key == key)
        .values(updated_at=when)
    )
    async with store.engine.begin() as conn:
        await conn.execute(stmt)


async def keys(store: Store) -> set[tuple[str, str]]:
    async with store.engine.connect() as conn:
        rows = (await conn.execute(sa.select(cache.c.namespace, cache.c.key))).all()
    return {(str(ns), str(key)) for ns, key in rows}


# -- the store --------------------------------------------------------------------------------


async def test_entries_older_than_the_cut_are_deleted_and_newer_ones_kept(
    db: TestDatabase,
) -> None:
    store = await db.open()
    now = datetime.now(UTC)
    for key, age in (("old", 15), ("edge", 13), ("new", 0)):
        await store.put("etag", key, f"body of {key}")
        await backdate(store, "etag", key, now - timedelta(days=age))
    assert await store.prune_cache(timedelta(days=14), now=now) == 1
    assert await keys(store) == {("etag", "edge"), ("etag", "new")}
    assert await store.get("etag", "new") == "body of new"
    assert await store.prune_cache(timedelta(days=14), now=now) == 0


async def test_only_the_named_namespaces_are_pruned(db: TestDatabase) -> None:
    store = await db.open()
    now = datetime.now(UTC)
    for namespace in ("etag", "section", "status"):
        await store.put(namespace, "k", "v")
        await backdate(store, namespace, "k", now - timedelta(days=400))
    assert await store.prune_cache(timedelta(days=14), namespaces=["etag"], now=now) == 1
    assert await store.prune_cache(timedelta(days=14), namespaces=[], now=now) == 0
    assert await keys(store) == {("section", "k"), ("status", "k")}
    assert await store.prune_cache(timedelta(days=14), now=now) == 2
    assert await keys(store) == set()


async def test_writing_an_entry_again_makes_it_young(db: TestDatabase) -> None:
    store = await db.open()
    await store.put("etag", "k", "first")
    await backdate(store, "etag", "k", datetime.now(UTC) - timedelta(days=30))
    await store.put("etag", "k", "second")
    assert await store.prune_cache(timedelta(days=14)) == 0
    assert await store.get("etag", "k") == "second"


async def test_a_long_grown_cache_is_pruned_in_full_across_batches(db: TestDatabase) -> None:
    store = await db.open()
    now = datetime.now(UTC)
    old, young = now - timedelta(days=20), now - timedelta(days=1)
    rows = [
        {"namespace": "etag", "key": f"k{i}", "value": "x" * 50, "updated_at": old}
        for i in range(2500)
    ] + [{"namespace": "etag", "key": "young", "value": "y", "updated_at": young}]
    async with store.engine.begin() as conn:
        await conn.execute(sa.insert(cache), rows)
    assert await store.prune_cache(timedelta(days=14), namespaces=["etag"], now=now) == 2500
    assert await keys(store) == {("etag", "young")}


def _to_0003(connection: Connection) -> None:
    config = alembic_config()
    config.attributes["connection"] = connection
    command.upgrade(config, "0003")


def _cache_indexes(connection: Connection) -> dict[str, list[str | None]]:
    return {
        str(index["name"]): list(index["column_names"])
        for index in sa.inspect(connection).get_indexes("cache")
    }


async def test_a_0003_database_upgrades_with_its_cache_entries_and_their_ages_kept(
    db: TestDatabase,
) -> None:
    written = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
    engine = make_engine(db.url, schema=db.schema)
    try:
        async with engine.begin() as conn:
            await conn.run_sync(_to_0003)
            stamp = written.replace(tzinfo=None) if db.backend == "sqlite" else written
            for namespace in ("etag", "section"):
                await conn.execute(
                    sa.text(
                        "INSERT INTO cache (namespace, key, value, updated_at)"
                        " VALUES (:ns, 'k', 'v', :at)"
                    ),
                    {"ns": namespace, "at": stamp},
                )
    finally:
        await engine.dispose()

    store = await db.open()  # migrates to the head
    async with store.engine.connect() as conn:
        indexes = await conn.run_sync(_cache_indexes)
        ages = (await conn.execute(sa.select(cache.c.updated_at))).scalars().all()
    assert indexes["ix_cache_namespace_updated_at"] == ["namespace", "updated_at"]
    assert ages == [written, written]
    assert await store.get("section", "k") == "v"
    later = written + timedelta(days=20)
    assert await store.prune_cache(timedelta(days=14), namespaces=["etag"], now=later) == 1
    assert await keys(store) == {("section", "k")}


# -- the retention policy and the scheduler ---------------------------------------------------


def retention(namespace: str) -> timedelta | None:
    for older_than, namespaces in CACHE_RETENTION:
        if namespace in namespaces:
            return older_than
    return None


def test_etags_are_kept_two_weeks_model_answers_three_months_and_status_for_good() -> None:
    assert retention("etag") == timedelta(days=14)
    for namespace in ("section", "summary", "weekly", "release-note"):
        assert retention(namespace) == timedelta(days=90)
    assert retention("status") is None


async def test_the_scheduler_prunes_once_a_day_when_the_day_is_ready(db: TestDatabase) -> None:
    settings = Settings(database_url=db.url)
    store = await db.open()
    activity = load_sample()
    digest = await Composer(None, None).compose(activity, settings.digest_repos)
    await store.save_digest(digest, activity)
    now = datetime.now(UTC)
    aged = {
        ("etag", "listing"): 20,
        ("etag", "fresh"): 2,
        ("section", "last-month"): 30,
        ("section", "last-year"): 200,
        ("status", "github"): 500,
    }
    for (namespace, key), days in aged.items():
        await store.put(namespace, key, "v")
        await backdate(store, namespace, key, now - timedelta(days=days))

    # Port 9 (discard) is never contacted: the day is archived, so nothing is collected.
    async with GitHubClient("http://127.0.0.1:9", None, None) as github:
        pipeline = Pipeline(settings, store, github=github, composer=Composer(None, store))
        scheduler = Scheduler(settings, store, pipeline, {}, lambda: DAY_AFTER_SAMPLE)
        assert (await scheduler.tick()).ready
        assert await keys(store) == {
            ("etag", "fresh"),
            ("section", "last-month"),
            ("status", "github"),
        }
        # The same day again: no second prune.
        await store.put("etag", "stale", "v")
        await backdate(store, "etag", "stale", now - timedelta(days=20))
        await scheduler.tick()
        assert ("etag", "stale") in await keys(store)
        # The next day's digest is ready: pruned again.
        next_day = load_sample().model_copy(update={"day": date(2026, 1, 16)})
        await store.save_digest(digest.model_copy(update={"day": next_day.day}), next_day)
        await scheduler.tick(DAY_AFTER_SAMPLE + timedelta(days=1))
        assert ("etag", "stale") not in await keys(store)


# -- the CLI's cache file ---------------------------------------------------------------------


def backdate_file(path: Path, namespace: str, key: str, when: datetime) -> None:
    with sqlite3.connect(path) as conn:
        conn.execute(
            "UPDATE cache SET updated_at = ? WHERE namespace = ? AND key = ?",
            (when.isoformat(timespec="microseconds"), namespace, key),
        )
    conn.close()


async def test_the_file_cache_prunes_by_age_and_namespace(tmp_path: Path) -> None:
    path = tmp_path / "cache.sqlite3"
    file = FileCache(path)
    now = datetime.now(UTC)
    for namespace, key, days in (
        ("etag", "old", 15),
        ("etag", "new", 1),
        ("section", "old", 15),
    ):
        await file.put(namespace, key, "v")
        backdate_file(path, namespace, key, now - timedelta(days=days))
    assert await file.prune(timedelta(days=14), namespaces=["etag"], now=now) == 1
    assert await file.get("etag", "old") is None
    assert await file.get("etag", "new") == "v"
    assert await file.get("section", "old") == "v"
    assert await file.prune(timedelta(days=14), now=now) == 1
    assert await file.get("section", "old") is None
    file.close()


async def test_a_cache_file_from_before_gets_the_column_and_keeps_its_entries(
    tmp_path: Path,
) -> None:
    path = tmp_path / "cache.sqlite3"
    with sqlite3.connect(path) as conn:
        conn.execute(
            "CREATE TABLE cache (namespace TEXT NOT NULL, key TEXT NOT NULL, "
            "value TEXT NOT NULL, PRIMARY KEY (namespace, key))"
        )
        conn.execute("INSERT INTO cache VALUES ('etag', 'k', 'v')")
    conn.close()
    before = datetime.now(UTC)
    file = FileCache(path)
    assert await file.get("etag", "k") == "v"
    # Their age is unknown: counted from the upgrade, so they are not pruned at once.
    assert await file.prune(timedelta(days=14)) == 0
    assert await file.prune(timedelta(days=14), now=before + timedelta(days=15)) == 1
    await file.put("etag", "k2", "v2")
    file.close()
    again = FileCache(path)  # a second opening finds the column and adds nothing
    assert await again.get("etag", "k2") == "v2"
    again.close()


async def test_a_collection_prunes_the_cache_file_after_it(tmp_path: Path) -> None:
    repo = "octo/engine"
    async with FakeGitHub() as server:
        server.add_repo(repo, commits=[commit(when="2026-02-04T01:00:00Z")])
        settings = Settings(github_api_url=server.url, cache_dir=str(tmp_path), digest_repos=[repo])
        path = tmp_path / "cache.sqlite3"
        file = FileCache(path)
        for namespace in ("etag", "section", "status"):
            await file.put(namespace, "from-long-ago", "v")
            backdate_file(path, namespace, "from-long-ago", datetime.now(UTC) - timedelta(days=30))
        file.close()

        activity = await collect_activity(settings, date(2026, 2, 4), [repo])

    assert [r.repo for r in activity.repos] == [repo]
    with sqlite3.connect(path) as conn:
        left = set(conn.execute("SELECT namespace, key FROM cache").fetchall())
    conn.close()
    assert ("etag", "from-long-ago") not in left
    assert {("section", "from-long-ago"), ("status", "from-long-ago")} <= left
    assert any(namespace == "etag" for namespace, _ in left)  # this run's ETags are kept


async def test_prune_cache_applies_the_retention_to_any_pruner(tmp_path: Path) -> None:
    calls: list[tuple[timedelta, tuple[str, ...]]] = []

    async def record(
        older_than: timedelta,
        *,
        namespaces: object = None,
        now: datetime | None = None,
    ) -> int:
        assert isinstance(namespaces, tuple)
        calls.append((older_than, namespaces))
        return 2

    assert await prune_cache(record) == 2 * len(CACHE_RETENTION)
    assert calls == list(CACHE_RETENTION)
