"""/digest for any day since a repository's creation: archived at once, others generated within
the on-demand bounds, days before creation answered without generating, incomplete days said."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fake_github import FakeGitHub, commit, issue, pull
from service_support import NOW, ArchivePipeline, archive

from bot.commands import ChatContext, CommandService
from bot.commands.reading import PROGRESS_TEXT
from bot.ondemand import RepoAges
from bot.pipeline import Pipeline, make_composer
from bot.settings import DEFAULT_REPOS, Settings
from bot.store import Store
from collectors.github import GitHubClient
from collectors.window import day_window

OLD_DAY = date(2024, 3, 1)  # far beyond the former 90-day limit
VLLM = "vllm-project/vllm"


class Clock:
    """A clock the test moves by hand."""

    def __init__(self, start: datetime = NOW) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    opened = await Store.open(f"sqlite+aiosqlite:///{tmp_path / 'bot.db'}")
    yield opened
    await opened.close()


def _private(chat_id: str = "1") -> ChatContext:
    async def never_asked() -> bool:
        raise AssertionError("a private chat needs no administrator check")

    return ChatContext("telegram", chat_id, "private", chat_id, never_asked)


class Progress:
    """Collects the progress replies a command sends."""

    def __init__(self) -> None:
        self.sent: list[str] = []

    async def __call__(self, text: str) -> None:
        self.sent.append(text)


def _service(
    store: Store, pipeline: Any, clock: Clock, ages: RepoAges | None = None, **settings: Any
) -> CommandService:
    return CommandService(Settings(**settings), store, pipeline, clock=clock, ages=ages)


async def test_an_unarchived_day_two_years_back_is_generated_with_a_progress_reply(
    store: Store,
) -> None:
    pipeline = ArchivePipeline(store)
    service = _service(store, pipeline, Clock())
    progress = Progress()
    reply = await service.handle(_private(), "digest", OLD_DAY.isoformat(), progress)
    assert not reply.ephemeral and reply.text.startswith("今日的 AI Infra")
    assert progress.sent == [PROGRESS_TEXT]
    assert pipeline.generated == [OLD_DAY]


async def test_an_archived_old_day_is_served_at_once_and_not_counted(store: Store) -> None:
    await archive(store, OLD_DAY)
    pipeline = ArchivePipeline(store)
    service = _service(store, pipeline, Clock())
    progress = Progress()
    first = await service.handle(_private(), "digest", OLD_DAY.isoformat(), progress)
    # Not counted: an unarchived day in the same minute is still allowed.
    second = await service.handle(_private(), "digest", "2024-03-02", progress)
    assert not first.ephemeral and not second.ephemeral
    assert progress.sent == [PROGRESS_TEXT]  # only for the generated one
    assert pipeline.generated == [date(2024, 3, 2)]


async def test_a_day_before_github_is_refused_without_generating(store: Store) -> None:
    pipeline = ArchivePipeline(store)
    reply = await _service(store, pipeline, Clock()).handle(_private(), "digest", "2001-05-01")
    assert reply.ephemeral and "早于 GitHub" in reply.text
    assert pipeline.generated == []


@pytest.fixture
async def github() -> AsyncIterator[FakeGitHub]:
    """A GitHub stand-in knowing when each default repository was created."""
    async with FakeGitHub() as server:
        for n, repo in enumerate(DEFAULT_REPOS):
            server.add_repo(repo).info["created_at"] = f"20{18 + n:02d}-06-01T00:00:00Z"
        server.add_repo(VLLM).info["created_at"] = "2023-02-09T11:23:20Z"
        yield server


async def test_a_day_before_the_repository_existed_is_answered_clearly(
    store: Store, github: FakeGitHub
) -> None:
    pipeline = ArchivePipeline(store)
    async with GitHubClient(github.url, None, None) as client:
        ages = RepoAges(client)
        service = _service(store, pipeline, Clock(), ages, digest_repos=[*DEFAULT_REPOS, VLLM])
        progress = Progress()
        # 2023-02-09 19:23 in Shanghai: the day before has no vLLM, the day itself has.
        before = await service.handle(_private(), "digest", "vllm 2023-02-08", progress)
        on_the_day = await service.handle(_private("2"), "digest", "vllm 2023-02-09", progress)
        again = await service.handle(_private("3"), "digest", "vllm 2023-01-01", progress)
    assert before.ephemeral
    assert "2023-02-08 时仓库还不存在" in before.text and "创建于 2023-02-09" in before.text
    assert not on_the_day.ephemeral
    assert again.ephemeral and "创建于 2023-02-09" in again.text
    assert pipeline.generated == [date(2023, 2, 9)]  # refused days cost nothing
    assert progress.sent == [PROGRESS_TEXT]
    assert github.count(path=f"/repos/{VLLM}") == 1  # a creation date is asked once


async def test_a_whole_digest_notes_the_repositories_that_did_not_exist_yet(
    store: Store, github: FakeGitHub
) -> None:
    pipeline = ArchivePipeline(store)
    async with GitHubClient(github.url, None, None) as client:
        service = _service(store, pipeline, Clock(), RepoAges(client))
        reply = await service.handle(_private(), "digest", "2020-03-01")
    assert not reply.ephemeral
    young = [r for n, r in enumerate(DEFAULT_REPOS) if 2018 + n >= 2020]
    assert young  # the fixture's later repositories
    for repo in young:
        assert f"{repo} 创建于" in reply.text.replace("\\", "")
    assert f"{DEFAULT_REPOS[0]} 创建于" not in reply.text.replace("\\", "")
    assert pipeline.generated == [date(2020, 3, 1)]


async def test_unknown_creation_dates_do_not_block_a_day(store: Store) -> None:
    async with FakeGitHub() as server, GitHubClient(server.url, None, None, backoff=0.0) as client:
        # No repository is known to the stand-in: 404s, so nothing is refused.
        pipeline = ArchivePipeline(store)
        reply = await _service(store, pipeline, Clock(), RepoAges(client)).handle(
            _private(), "digest", OLD_DAY.isoformat()
        )
    assert not reply.ephemeral and pipeline.generated == [OLD_DAY]


# -- a day the REST path cannot make complete ---------------------------------------------------

BUSY = "acme/busy"
BUSY_DAY = date(2025, 9, 10)


async def test_a_day_cut_by_the_page_cap_is_served_with_a_note_and_not_archived(
    tmp_path: Path,
) -> None:
    start = day_window(BUSY_DAY, "Asia/Shanghai").start
    async with FakeGitHub() as github:
        github.add_repo(
            BUSY,
            commits=[commit(when=start + timedelta(hours=2), message="Fix (#10)")],
            issues=[
                pull(
                    10, created_at=start - timedelta(days=3), merged_at=start + timedelta(hours=2)
                ),
                # Touched since: past the REST listing's cap of 30 pages of 100.
                *(
                    issue(
                        5000 + i,
                        created_at=start - timedelta(days=400),
                        updated_at=start + timedelta(days=30, minutes=i),
                    )
                    for i in range(3001)
                ),
            ],
        )
        github.repos[BUSY].info["created_at"] = "2024-01-01T00:00:00Z"
        settings = Settings(
            database_url=f"sqlite+aiosqlite:///{tmp_path / 'd.sqlite3'}",
            github_api_url=github.url,
            digest_repos=[BUSY],
        )
        store = await Store.open(settings.database_url)
        try:
            async with GitHubClient(github.url, None, store) as client:
                pipeline = Pipeline(
                    settings, store, github=client, composer=make_composer(settings, None, store)
                )
                clock = Clock(datetime(2026, 2, 5, 2, tzinfo=UTC))
                service = CommandService(
                    settings, store, pipeline, clock=clock, ages=RepoAges(client)
                )
                reply = await service.handle(_private(), "digest", BUSY_DAY.isoformat())
                again = await service.handle(_private(), "digest", BUSY_DAY.isoformat())
            assert not reply.ephemeral
            assert "可能不完整" in reply.text and "没有存档" in reply.text
            assert "#10" in reply.text  # the day's merged PR is still shown
            assert "可能不完整" in again.text  # served again from memory: still said
            assert await store.load_digest(BUSY_DAY) is None
        finally:
            await store.close()
