"""Issue 13, days that were missed: after downtime the scheduler posts the pending days of the
last three late (补发 first), oldest first; older unsent deliveries are marked skipped and shown
by `status`. Over the Telegram stand-in, on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from fake_github import FakeGitHub, commit
from fake_telegram import FakeTelegram
from store_backends import BACKENDS, TestDatabase, isolated_database
from telegram import Bot

from bot.pipeline import Pipeline
from bot.platforms.telegram import TelegramSender
from bot.scheduler import Scheduler
from bot.settings import Settings
from bot.status import collect_status, render_status
from bot.store import SKIPPED, Chat, Store
from collectors.github import GitHubClient
from summarizer.compose import Composer

REPOS = ["o/alpha"]
LONG_AGO = datetime(2026, 1, 1, tzinfo=UTC)
FIRST = date(2026, 2, 1)
# 09:00 on 2026-02-02 in Asia/Shanghai: FIRST is posted to the 09:00 chat; the 21:00 chat waits.
BEFORE_DOWNTIME = datetime(2026, 2, 2, 1, 0, tzinfo=UTC)
# 10:00 on 2026-02-04: back after two days down; the current day is 2026-02-03.
BACK = datetime(2026, 2, 4, 2, 0, tzinfo=UTC)
MORNING, EVENING = "1", "2"


@pytest.fixture(params=BACKENDS)
async def db(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[TestDatabase]:
    async with isolated_database(request.param, tmp_path) as database:
        yield database


async def subscribe(store: Store, chat_id: str, post_time: str) -> None:
    await store.subscribe(
        "telegram", chat_id, None, by=None, post_time=post_time,
        timezone="Asia/Shanghai", now=LONG_AGO,
    )  # fmt: skip


def scheduler(
    settings: Settings, store: Store, gh: GitHubClient, bot: Bot, now: datetime
) -> Scheduler:
    pipeline = Pipeline(settings, store, github=gh, composer=Composer(None, store))
    return Scheduler(settings, store, pipeline, {"telegram": TelegramSender(bot)}, lambda: now)


def first_lines(telegram: FakeTelegram, chat_id: str) -> list[str]:
    return [m.text.split("\n", 1)[0] for m in telegram.messages_to(chat_id)]


async def test_two_days_of_downtime_are_posted_late_oldest_first(db: TestDatabase) -> None:
    settings = Settings(digest_repos=REPOS)
    before, after = await db.open(), await db.open()
    await subscribe(before, MORNING, "09:00")
    await subscribe(before, EVENING, "21:00")
    async with (
        FakeGitHub() as github,
        FakeTelegram() as telegram,
        Bot(telegram.token, base_url=f"{telegram.url}/bot") as bot,
        GitHubClient(github.url, None, before, backoff=0.01) as gh,
    ):
        for day in range(1, 4):
            when = f"2026-02-0{day}T03:00:00Z"
            github.add_repo("o/alpha", commits=[commit(when=when, message=f"fix {day}")])
        tick = await scheduler(settings, before, gh, bot, BEFORE_DOWNTIME).tick(BEFORE_DOWNTIME)
        assert tick.delivery is not None and tick.delivery.sent == 1
        assert first_lines(telegram, EVENING) == []  # its 21:00 post was lost to the downtime
        # An unsent delivery of a day long before the downtime: too late to post now.
        chat = await before.get_chat("telegram", MORNING)
        assert isinstance(chat, Chat)
        await before.ensure_deliveries(date(2026, 1, 20), [chat], now=LONG_AGO)

        back = await scheduler(settings, after, gh, bot, BACK).tick(BACK)
        assert back.late is not None and back.late.sent == 3
        assert back.delivery is not None and back.delivery.sent == 1

        morning = first_lines(telegram, MORNING)
        evening = first_lines(telegram, EVENING)
        assert "补发" not in morning[0]  # 2026-02-01, on time before the downtime
        assert len(morning) == 3 and "补发" in morning[1] and "2026-02-02" in morning[1]
        assert "补发" not in morning[2]  # the current day, on time
        assert len(evening) == 2
        assert ["2026-02-01" in evening[0], "2026-02-02" in evening[1]] == [True, True]
        assert all("补发" in line for line in evening)
        assert await after.delivery_status("telegram", MORNING, date(2026, 1, 20)) == SKIPPED
        shown = render_status(await collect_status(settings, after, now=BACK))
        assert "Skipped" in shown and "2026-01-20 1" in shown

        again = await scheduler(settings, after, gh, bot, BACK).tick(BACK + timedelta(minutes=1))
        assert again.late is None  # a second start has nothing left to post late
        assert len(first_lines(telegram, MORNING)) == 3
