"""One GitHub client and one model client per process, shared by every path that needs them.

Over real HTTP: the model stand-in counts the requests of the daily digest, a /weekly and a
release alert made at once; the GitHub stand-in sees repository checks go through the shared
client and its ETag cache (a repeat is a 304), in `run` as wired for production.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from fake_github import FakeGitHub, commit, issue, release
from fake_llm import API_KEY, FakeLLM
from fake_telegram import FakeTelegram
from pydantic import SecretStr
from synthetic_days import REPOS, archive_day, day_activity, days_ending
from telegram import Bot

from bot.alerts import ReleasePoller
from bot.app import digest_pipeline, run
from bot.clients import open_clients
from bot.commands import ChatContext, CommandService
from bot.platforms.telegram import TelegramSender
from bot.settings import Settings
from bot.store import Store
from bot.tracking import RepoChecker
from collectors.cache import MemoryCache
from collectors.github import ETAG_NAMESPACE

DAY = date(2026, 2, 9)  # a Monday: the archived week is Mon 2026-02-02 … Sun 2026-02-08
NOW = datetime(2026, 2, 10, 2, 0, tzinfo=UTC)  # 10:00 in Shanghai: DAY is yesterday
EXTRA = tuple(f"lab/extra-{n}" for n in range(6))  # collected daily, each with a fresh release
PER_MINUTE = 20
# The limiter's minute, shortened so that a window passes while the test runs.
MINUTE = 2.0


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    opened = await Store.open(f"sqlite+aiosqlite:///{tmp_path / 'digest.sqlite3'}")
    yield opened
    await opened.close()


def github_world(github: FakeGitHub) -> None:
    """Activity on DAY in every repository, and a release an hour ago in each EXTRA one."""
    for number, repo in enumerate((*REPOS, *EXTRA)):
        github.add_repo(
            repo,
            commits=[commit(when="2026-02-09T03:00:00Z", message=f"Speed up {repo} (#{number})")],
            issues=[issue(500 + number, created_at="2026-02-09T04:00:00Z", title="OOM on H100")],
            releases=(
                [release("v1.0.0", published_at=NOW - timedelta(hours=1), body="- Faster MoE")]
                if repo in EXTRA
                else []
            ),
        )


def private_chat() -> ChatContext:
    async def never_asked() -> bool:
        raise AssertionError("a private chat needs no administrator check")

    return ChatContext("telegram", "42", "private", "42", never_asked)


def most_in_any_window(arrivals: Sequence[float], window: float) -> int:
    """The largest number of arrivals within `window` seconds of one another."""
    return max(
        (sum(1 for later in arrivals if start <= later < start + window) for start in arrivals),
        default=0,
    )


async def test_daily_weekly_and_alert_at_once_stay_within_one_minutes_model_budget(
    store: Store,
) -> None:
    for day in days_ending(DAY - timedelta(days=1), 7):
        await archive_day(store, day_activity(day))
    for repo in EXTRA:
        await store.release_first_seen(repo, now=NOW - timedelta(days=1))
    await store.enable_alerts("telegram", "7", None, by="7", now=NOW - timedelta(days=2))
    async with (
        FakeGitHub() as github,
        FakeLLM(latency=0.0) as model,
        FakeTelegram() as telegram,
        Bot(telegram.token, base_url=f"{telegram.url}/bot") as bot,
    ):
        github_world(github)
        settings = Settings(
            github_api_url=github.url,
            openrouter_api_key=SecretStr(API_KEY),
            openrouter_base_url=model.base_url,
            digest_models=["m1"],
            digest_repos=[*REPOS, *EXTRA],
            llm_requests_per_minute=PER_MINUTE,
        )
        async with open_clients(settings, store, llm_minute=MINUTE) as clients:
            pipeline = digest_pipeline(settings, store, clients)
            service = CommandService(
                settings, store, pipeline, clock=lambda: NOW, llm=clients.llm, cache=store
            )

            async def extra() -> Sequence[str]:
                return EXTRA

            poller = ReleasePoller(
                store,
                clients.github,
                {"telegram": TelegramSender(bot)},
                repos=extra,
                llm=clients.llm,
                clock=lambda: NOW,
            )
            (digest, _), weekly, alerts = await asyncio.gather(
                pipeline.day(DAY), service.handle(private_chat(), "weekly", ""), poller.poll_once()
            )

    # Every path asked the model (and got its answer) through the one client.
    assert {section.written_by for section in digest.sections} == {"model"}
    assert "本周" in weekly.text
    assert alerts.created == len(EXTRA) and alerts.sent == len(EXTRA)
    assert len(model.requests) > PER_MINUTE  # together they wanted more than a minute allows
    # A window of half the limiter's minute leaves the other half for network jitter.
    assert most_in_any_window(model.arrivals, MINUTE / 2) <= PER_MINUTE


async def test_a_repository_check_goes_through_the_shared_client_and_its_etag_cache() -> None:
    async with FakeGitHub() as github:
        github.add_repo("InternLM/lmdeploy")
        settings = Settings(github_api_url=github.url)
        async with open_clients(settings, MemoryCache()) as clients:
            checker = RepoChecker(clients.github, cache_seconds=0.0)  # ask GitHub every time
            first = await checker.check("InternLM/lmdeploy")
            again = await checker.check("InternLM/lmdeploy")
            stats = clients.github.stats

    assert first.status == again.status == "public"
    asked = [r for r in github.requests if r.path.lower() == "/repos/internlm/lmdeploy"]
    assert [(r.status, r.conditional) for r in asked] == [(200, False), (304, True)]
    assert (stats.requests, stats.not_modified) == (2, 1)  # counted by the shared client


async def test_run_checks_a_new_repository_with_the_process_github_client(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'digest.sqlite3'}"
    async with FakeGitHub() as github, FakeTelegram() as telegram:
        github.add_repo("InternLM/lmdeploy")
        settings = Settings(
            database_url=url,
            github_api_url=github.url,
            digest_repos=["o/alpha"],
            telegram_bot_token=SecretStr(telegram.token),
            telegram_api_url=telegram.url,
        )
        stop = asyncio.Event()
        task = asyncio.create_task(run(settings, stop, clock=lambda: NOW))
        try:
            telegram.push_command(chat_id=5, user_id=5, text="/subscribe InternLM/lmdeploy")
            await telegram.wait_for_messages(1, chat_id=5, within=30)
        finally:
            stop.set()
            code = await asyncio.wait_for(task, 30)
        store = await Store.open(url)
        try:
            # Only the shared client keeps ETags, in the process's cache (the store).
            etag = await store.get(ETAG_NAMESPACE, f"{github.url}/repos/InternLM/lmdeploy")
        finally:
            await store.close()

    assert code == 0
    assert any(m.plain.startswith("已订阅") for m in telegram.messages_to(5))
    assert etag is not None
