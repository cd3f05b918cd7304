"""Issue 13, one door to a day: the scheduler, `post` and `/digest` all go through
`Pipeline.ensure_day` (settle window, the day's generation lock, one task per normalised set),
and an archived complete day is never replaced by a partial one. SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from fake_github import FakeGitHub, commit
from fake_telegram import FakeTelegram
from store_backends import BACKENDS, TestDatabase, isolated_database

from bot.cli import main
from bot.commands import ChatContext, CommandService
from bot.pipeline import NotReady, Pipeline
from bot.scheduler import Scheduler
from bot.settings import Settings
from bot.store import Store
from bot.store.tables import runs
from collectors.github import GitHubClient
from collectors.window import today
from summarizer.compose import Composer

DAY = date(2026, 2, 4)
MIDNIGHT = datetime(2026, 2, 4, 16, 0, tzinfo=UTC)  # 2026-02-05 00:00 in Asia/Shanghai
REPOS = ["o/alpha", "o/beta", "o/gamma"]


@pytest.fixture(params=BACKENDS)
async def db(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[TestDatabase]:
    async with isolated_database(request.param, tmp_path) as database:
        yield database


def github_day(fake: FakeGitHub) -> None:
    for repo in REPOS:
        fake.add_repo(repo, commits=[commit(when="2026-02-04T03:00:00Z", message=f"{repo} fix")])


async def count_runs(store: Store, day: date) -> int:
    async with store.engine.connect() as conn:
        query = sa.select(sa.func.count()).select_from(runs).where(runs.c.day == day)
        return int((await conn.execute(query)).scalar() or 0)


async def never() -> bool:
    raise AssertionError("reading needs no administrator")


def ctx() -> ChatContext:
    return ChatContext("telegram", "42", "private", "42", never)


def pipeline(settings: Settings, store: Store, github: GitHubClient) -> Pipeline:
    return Pipeline(
        settings, store, github=github, composer=Composer(None, store), poll_seconds=0.05
    )


async def test_digest_of_yesterday_racing_the_scheduler_is_generated_once(
    db: TestDatabase,
) -> None:
    settings = Settings(digest_repos=REPOS)
    first, second = await db.open(), await db.open()
    now = MIDNIGHT + timedelta(minutes=6)
    async with (
        FakeGitHub(delay=0.05) as github,
        GitHubClient(github.url, None, first, backoff=0.01) as gh_a,
        GitHubClient(github.url, None, second, backoff=0.01) as gh_b,
    ):
        github_day(github)
        scheduler = Scheduler(settings, first, pipeline(settings, first, gh_a), {}, lambda: now)
        service = CommandService(
            settings, second, pipeline(settings, second, gh_b), clock=lambda: now
        )
        tick = asyncio.create_task(scheduler.tick(now))
        for _ in range(1000):  # until the scheduler holds the day's lock and is collecting
            if github.requests:
                break
            await asyncio.sleep(0.01)
        reply = await service.handle(ctx(), "digest", DAY.isoformat())
        assert (await tick).ready

        assert await count_runs(first, DAY) == 1
        for repo in REPOS:
            assert github.count(path=f"/repos/{repo}/releases") == 1
        archived = await first.load_activity(DAY)
        assert archived is not None and all(r.error is None for r in archived.repos)
        assert [r.repo for r in archived.repos] == REPOS
        assert not reply.ephemeral and all(repo in reply.text for repo in REPOS)


async def test_digest_of_yesterday_before_the_settle_window_says_when(db: TestDatabase) -> None:
    settings = Settings(digest_repos=REPOS)
    store = await db.open()
    async with FakeGitHub() as github, GitHubClient(github.url, None, store) as gh:
        github_day(github)
        early = MIDNIGHT + timedelta(minutes=1)
        service = CommandService(
            settings, store, pipeline(settings, store, gh), clock=lambda: early
        )
        reply = await service.handle(ctx(), "digest", DAY.isoformat())
        assert reply.ephemeral and "00:05" in reply.text
        assert github.requests == []
        assert await store.load_digest(DAY) is None


async def test_a_partial_collection_never_replaces_the_archived_complete_day(
    db: TestDatabase,
) -> None:
    settings = Settings(digest_repos=REPOS)
    store = await db.open()
    async with FakeGitHub() as github, GitHubClient(github.url, None, store, backoff=0.01) as gh:
        github_day(github)
        door = pipeline(settings, store, gh)
        await door.ensure_day(DAY)
        github.server_error("/repos/o/beta/", times=100)  # GitHub now fails for one repository
        again = pipeline(settings, store, gh)
        await again.regenerate(DAY)
        archived = await store.load_activity(DAY)
        assert archived is not None and all(r.error is None for r in archived.repos)


async def test_one_subset_digest_per_normalised_repository_set(db: TestDatabase) -> None:
    settings = Settings(digest_repos=REPOS)
    store = await db.open()
    async with FakeGitHub() as github, GitHubClient(github.url, None, store) as gh:
        github_day(github)
        door = pipeline(settings, store, gh)
        first, second = await asyncio.gather(
            door.ensure_day(DAY, ["o/gamma", "O/Alpha"]),
            door.ensure_day(DAY, ["o/alpha", "o/gamma"]),
        )
        assert first is second
        assert [s.repo for s in first.sections] == ["o/alpha", "o/gamma"]


async def test_ensure_day_not_waiting_answers_not_ready_while_another_holds_the_lock(
    db: TestDatabase,
) -> None:
    settings = Settings(digest_repos=REPOS)
    store = await db.open()
    async with FakeGitHub() as github, GitHubClient(github.url, None, store) as gh:
        github_day(github)
        assert await store.try_lock(f"generate:{DAY.isoformat()}", "elsewhere", 60)
        with pytest.raises(NotReady) as raised:
            await pipeline(settings, store, gh).ensure_day(DAY, wait=False)
        assert raised.value.after is None and github.requests == []


async def test_post_of_a_day_not_yet_settled_exits_1_in_one_line_without_posting(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    async with FakeGitHub() as github, FakeTelegram() as telegram:
        github_day(github)
        monkeypatch.setenv("TELEGRAM_BOT_TOKEN", telegram.token)
        monkeypatch.setenv("TELEGRAM_API_URL", telegram.url)
        monkeypatch.setenv("GITHUB_API_URL", github.url)
        monkeypatch.setenv("DIGEST_REPOS", ",".join(REPOS))
        monkeypatch.setenv("DATABASE_URL", f"sqlite+aiosqlite:///{tmp_path}/bot.db")
        day = today("Asia/Shanghai")  # not over yet: a post of it would be a partial day
        code = await asyncio.to_thread(main, ["post", "--date", day.isoformat()])
        err = capsys.readouterr().err
        assert code == 1
        assert f"{day}: the digest of {day} is not ready yet, try after 00:05" in err
        assert "Traceback" not in err
        assert github.requests == [] and telegram.sent == []
