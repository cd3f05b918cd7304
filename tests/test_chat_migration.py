"""Chats that move: a Telegram group that becomes a supergroup keeps everything under its new id.

Both ways Telegram tells us are covered, over the Bot API stand-in, on SQLite and PostgreSQL:
a send to the old id refused with `migrate_to_chat_id`, and the `migrate_to_chat_id` /
`migrate_from_chat_id` service messages the adapter receives.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest
from fake_telegram import FakeTelegram
from pydantic import SecretStr
from service_support import ARCHIVED_DAY, NOW, ArchivePipeline, archive
from store_backends import BACKENDS, TestDatabase, isolated_database
from telegram import Bot

from bot.commands import CommandService
from bot.delivery import fan_out
from bot.pipeline import Pipeline
from bot.platforms.telegram import TelegramAdapter, TelegramSender
from bot.settings import Settings
from bot.store import Store
from collectors.github import GitHubClient
from summarizer.compose import Composer

OLD, NEW = -4_012_345, -1_004_012_345
ADMIN = 7
NEXT_DAY = ARCHIVED_DAY + timedelta(days=1)


@pytest.fixture(params=BACKENDS)
async def db(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[TestDatabase]:
    async with isolated_database(request.param, tmp_path) as database:
        yield database


@pytest.fixture
async def store(db: TestDatabase) -> Store:
    opened = await db.open()
    await archive(opened, ARCHIVED_DAY)
    await archive(opened, NEXT_DAY)
    return opened


@pytest.fixture
async def telegram() -> AsyncIterator[FakeTelegram]:
    async with FakeTelegram(admins={str(OLD): {str(ADMIN)}, str(NEW): {str(ADMIN)}}) as fake:
        yield fake


async def subscribe_everything(store: Store, chat_id: str) -> None:
    """A group with a subscription, its own time, watches, alerts and both opt-ins."""
    await store.subscribe(
        "telegram", chat_id, ["vllm-project/vllm"], by="7", post_time="09:00", timezone="UTC"
    )
    await store.add_watches("telegram", chat_id, ["MoE"], limit=20)
    await store.enable_alerts("telegram", chat_id, ["vllm-project/vllm"], by="7")
    await store.set_weekly("telegram", chat_id, True)


async def assert_everything_under(store: Store, chat_id: str) -> None:
    chat = await store.get_chat("telegram", chat_id)
    assert chat is not None and chat.active
    assert list(chat.repos or ()) == ["vllm-project/vllm"]
    assert chat.weekly
    assert await store.watches_of("telegram", chat_id) == ("MoE",)
    assert await store.alert_chat("telegram", chat_id) is not None


async def post(store: Store, telegram: FakeTelegram, day_offset: int) -> int:
    """One fan-out of the archived day `day_offset` days after ARCHIVED_DAY; chats sent."""
    async with (
        GitHubClient("http://127.0.0.1:9", None, None) as github,
        Bot(telegram.token, base_url=f"{telegram.url}/bot") as bot,
    ):
        pipeline = Pipeline(Settings(), store, github=github, composer=Composer(None, None))
        result = await fan_out(
            store,
            pipeline,
            {"telegram": TelegramSender(bot)},
            ARCHIVED_DAY + timedelta(days=day_offset),
            worker="t",
            now=NOW + timedelta(days=day_offset),
        )
    return result.sent


async def test_a_send_refused_with_migrate_to_chat_id_moves_the_chat_for_good(
    store: Store, telegram: FakeTelegram
) -> None:
    await subscribe_everything(store, str(OLD))
    telegram.migrate_group(OLD, NEW, announce=False)

    assert await post(store, telegram, 0) == 1
    assert telegram.messages_to(NEW) and not telegram.messages_to(OLD)
    assert await store.get_chat("telegram", str(OLD)) is None
    await assert_everything_under(store, str(NEW))
    refused_once = len(telegram.rejected)
    assert refused_once == 1

    # The next day goes to the new id only: the old one is never tried again.
    before = len(telegram.messages_to(NEW))
    assert await post(store, telegram, 1) == 1
    assert len(telegram.messages_to(NEW)) > before
    assert len(telegram.rejected) == refused_once
    assert await store.delivery_counts(NEXT_DAY) == {"sent": 1}


async def test_the_migration_service_messages_move_the_chat_before_any_send(
    store: Store, telegram: FakeTelegram
) -> None:
    await subscribe_everything(store, str(OLD))
    settings = Settings(telegram_bot_token=SecretStr(telegram.token), telegram_api_url=telegram.url)
    service = CommandService(settings, store, ArchivePipeline(store), clock=lambda: NOW)
    adapter = TelegramAdapter(settings, service)
    await adapter.start(poll_timeout=1)
    try:
        telegram.migrate_group(OLD, NEW, user_id=ADMIN)

        for _ in range(200):  # the update is handled in the background
            if await store.get_chat("telegram", str(NEW)) is not None:
                break
            await asyncio.sleep(0.05)
        await assert_everything_under(store, str(NEW))
        assert await store.get_chat("telegram", str(OLD)) is None

        # `/subscriptions` in the supergroup shows the subscription.
        telegram.push_command(
            chat_id=NEW, user_id=ADMIN, chat_type="supergroup", text="/subscriptions"
        )
        [answer] = await telegram.wait_for_messages(1, chat_id=NEW)
        assert "vllm" in answer.plain and "未订阅" not in answer.plain
    finally:
        await adapter.stop()

    # The day's post goes straight to the new id: the old one is never tried.
    assert await post(store, telegram, 0) == 1
    assert telegram.rejected == []
    assert not telegram.messages_to(OLD)
    assert len(telegram.messages_to(NEW)) >= 2
