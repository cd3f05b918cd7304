"""`aiinfra-digest backfill`: past days archived oldest first, resumable after a kill."""

from __future__ import annotations

import asyncio
import os
import sqlite3
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import pytest
from fake_github import FakeGitHub, commit, issue, pull
from fake_graphql import FakeGraphQL

from bot.archive import week_for
from bot.backfill import DONE, SKIPPED, days_between, run_backfill
from bot.cli import main
from bot.settings import Settings
from bot.store import Store
from collectors.window import day_window

FIRST, LAST = date(2026, 1, 5), date(2026, 1, 11)
REPOS = ["acme/kernels", "acme/serving"]
ROOT = Path(__file__).resolve().parents[1]


def _fill(github: FakeGitHub) -> None:
    """Every day of FIRST..LAST: two merged PRs with their commits and an issue per repository."""
    for r, repo in enumerate(REPOS):
        commits, items = [], []
        for d, day in enumerate(days_between(FIRST, LAST)):
            start = day_window(day, "Asia/Shanghai").start
            for k in range(2):
                number = 100 * (d + 1) + 10 * r + k
                when = start + timedelta(hours=3 + k)
                commits.append(commit(when=when, message=f"Change {number} (#{number})"))
                items.append(pull(number, created_at=when - timedelta(days=2), merged_at=when))
            items.append(issue(100 * (d + 1) + 50 + r, created_at=start + timedelta(hours=6)))
        github.add_repo(repo, commits=commits, issues=items)


@dataclass
class World:
    """The stand-ins and the settings that point at them."""

    rest: FakeGitHub
    gql: FakeGraphQL
    settings: Settings
    env: dict[str, str]


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[World]:
    """Fake GitHub (REST and GraphQL) with a week of activity; a SQLite archive."""
    async with FakeGitHub() as rest, FakeGraphQL(rest) as gql:
        _fill(rest)
        env = {
            "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'archive.sqlite3'}",
            "GITHUB_TOKEN": "tok",
            "GITHUB_API_URL": rest.url,
            "GITHUB_GRAPHQL_URL": gql.url,
            "DIGEST_REPOS": ",".join(REPOS),
            "CACHE_DIR": str(tmp_path / "cache"),
        }
        settings = Settings(
            database_url=env["DATABASE_URL"],
            github_token="tok",  # type: ignore[arg-type]
            github_api_url=rest.url,
            github_graphql_url=gql.url,
            digest_repos=REPOS,
        )
        yield World(rest, gql, settings, env)


async def test_backfill_archives_every_day_and_a_rerun_asks_github_nothing(world: World) -> None:
    result = await run_backfill(world.settings, FIRST, LAST, None, model=False, concurrency=3)
    days = days_between(FIRST, LAST)
    assert result.outcomes == dict.fromkeys(days, DONE)
    assert result.graphql_queries == len(days) * len(REPOS)
    # Beside GraphQL only commit details, for the prompt's patches: at most 10 a repository-day.
    assert 0 < result.rest_requests <= 10 * len(days) * len(REPOS)
    assert all("/commits/" in r.path for r in world.rest.requests)
    world.rest.clear_log()
    world.gql.queries.clear()
    again = await run_backfill(world.settings, FIRST, LAST, None, model=False)
    assert again.outcomes == dict.fromkeys(days, SKIPPED)
    assert (again.graphql_queries, again.rest_requests) == (0, 0)
    assert world.gql.queries == [] and world.rest.requests == []

    # The archived days are what /digest, /weekly, the site and the feed read.
    store = await Store.open(world.settings.database_url)
    try:
        activity = await store.load_activity(date(2026, 1, 7))
        assert activity is not None
        kernels = activity.repo("acme/kernels")
        assert kernels is not None
        assert [p.number for p in kernels.merged_pulls] == [300, 301]
        assert [i.number for i in kernels.opened_issues] == [350]
        week = await week_for(store, LAST, REPOS, None, None)
        assert week is not None
    finally:
        await store.close()


async def test_backfill_of_chosen_repositories_covers_only_them(world: World) -> None:
    result = await run_backfill(
        world.settings, FIRST, FIRST, ["acme/serving"], model=False, concurrency=1
    )
    assert result.outcomes == {FIRST: DONE}
    store = await Store.open(world.settings.database_url)
    try:
        activity = await store.load_activity(FIRST)
        assert activity is not None and [r.repo for r in activity.repos] == ["acme/serving"]
    finally:
        await store.close()

    # A later backfill of every repository redoes that day; the one collected is not asked again.
    full = await run_backfill(world.settings, FIRST, FIRST, None, model=False)
    assert full.outcomes == {FIRST: DONE}
    assert full.graphql_queries == 1
    store = await Store.open(world.settings.database_url)
    try:
        activity = await store.load_activity(FIRST)
        assert activity is not None and [r.repo for r in activity.repos] == REPOS
    finally:
        await store.close()


def _runs_per_day(db: str) -> dict[str, int]:
    with sqlite3.connect(db) as conn:
        rows = conn.execute("SELECT day, COUNT(*) FROM runs GROUP BY day").fetchall()
    return {str(day): int(count) for day, count in rows}


async def _backfill_process(env: dict[str, str], cwd: Path) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        "backfill",
        "--from",
        str(FIRST),
        "--to",
        str(LAST),
        "--no-model",
        "--concurrency",
        "1",
        cwd=cwd,
        env={**os.environ, "PYTHONPATH": str(ROOT), **env},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )


async def test_backfill_killed_midway_resumes_and_no_day_is_done_twice(
    world: World, tmp_path: Path
) -> None:
    world.gql.delay = 0.2  # slow enough to kill it between days
    first = await _backfill_process(world.env, tmp_path)
    assert first.stderr is not None
    archived_before_kill = 0
    while archived_before_kill < 3:
        line = (await asyncio.wait_for(first.stderr.readline(), 60)).decode()
        assert line, "the backfill ended before it could be killed"
        archived_before_kill += ": archived (" in line
    first.kill()
    await first.wait()
    db = world.settings.database_url.removeprefix("sqlite+aiosqlite:///")
    done_before = _runs_per_day(db)
    assert 3 <= len(done_before) < 7
    # Oldest first: what was done before the kill is the start of the range.
    assert sorted(done_before) == [str(d) for d in days_between(FIRST, LAST)][: len(done_before)]

    world.gql.delay = 0.0
    second = await _backfill_process(world.env, tmp_path)
    out, err = await asyncio.wait_for(second.communicate(), 120)
    assert second.returncode == 0, err.decode()[-2000:]
    summary = out.decode()
    assert f"{len(done_before)} already archived" in summary
    assert f"{7 - len(done_before)} archived" in summary
    runs = _runs_per_day(db)
    assert runs == {str(day): 1 for day in days_between(FIRST, LAST)}


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["--from", "2026-01-10", "--to", "2026-01-01"], "is after --to"),
        (["--from", "2026-01-01", "--to", "2999-01-01"], "has not ended"),
        (["--from", "January", "--to", "2026-01-01"], "--from"),
        (["--from", "2026-01-01", "--to", "2026-01-02", "--repo", "nosuch"], "unknown repository"),
        (["--from", "2026-01-01", "--to", "2026-01-02", "--concurrency", "0"], "--concurrency"),
    ],
)
def test_backfill_bad_input_exits_2_with_one_line(
    capsys: pytest.CaptureFixture[str], argv: list[str], needle: str
) -> None:
    code = main(["backfill", *argv])
    out, err = capsys.readouterr()
    assert code == 2 and out == ""
    assert needle in err and len(err.strip().splitlines()) == 1
