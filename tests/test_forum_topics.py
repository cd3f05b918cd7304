"""Telegram forum topics: commands sent in a topic answer there, and what they turn on posts there.

The real python-telegram-bot Application and TelegramSender against the Bot API stand-in, which
records `message_thread_id` per message and refuses a topic in a chat without it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from fake_telegram import FakeTelegram
from pydantic import SecretStr
from service_support import ARCHIVED_DAY, NOW, ArchivePipeline, archive
from telegram import Bot

from bot.commands import CommandService
from bot.delivery import fan_out
from bot.pipeline import Pipeline
from bot.platforms.base import ChatGone
from bot.platforms.telegram import TelegramAdapter, TelegramSender, render_messages
from bot.settings import Settings
from bot.store import Store
from collectors.github import GitHubClient
from summarizer.compose import Composer

FORUM = -100500
PLAIN_GROUP = -100600
TOPIC, OTHER_TOPIC = 45, 46
ADMIN = 7


@pytest.fixture
async def telegram() -> AsyncIterator[FakeTelegram]:
    admins = {str(FORUM): {str(ADMIN)}, str(PLAIN_GROUP): {str(ADMIN)}}
    async with FakeTelegram(admins=admins, forums={str(FORUM): {TOPIC, OTHER_TOPIC}}) as fake:
        yield fake


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    opened = await Store.open(f"sqlite+aiosqlite:///{tmp_path / 'bot.db'}")
    await archive(opened, ARCHIVED_DAY)
    yield opened
    await opened.close()


@pytest.fixture
async def adapter(telegram: FakeTelegram, store: Store) -> AsyncIterator[TelegramAdapter]:
    settings = Settings(telegram_bot_token=SecretStr(telegram.token), telegram_api_url=telegram.url)
    service = CommandService(settings, store, ArchivePipeline(store), clock=lambda: NOW)
    running = TelegramAdapter(settings, service)
    await running.start(poll_timeout=1)
    yield running
    await running.stop()


@pytest.fixture
async def sender(telegram: FakeTelegram) -> AsyncIterator[TelegramSender]:
    async with Bot(telegram.token, base_url=f"{telegram.url}/bot") as bot:
        yield TelegramSender(bot)


def command(telegram: FakeTelegram, text: str, thread: int | None = TOPIC) -> None:
    telegram.push_command(
        chat_id=FORUM, user_id=ADMIN, chat_type="supergroup", text=text, thread_id=thread
    )


async def daily_post(store: Store, sender: TelegramSender) -> int:
    github = GitHubClient("http://127.0.0.1:9", None, None)  # nothing listens: no collection
    try:
        pipeline = Pipeline(Settings(), store, github=github, composer=Composer(None, None))
        result = await fan_out(
            store, pipeline, {"telegram": sender}, ARCHIVED_DAY, worker="t", now=NOW
        )
    finally:
        await github.aclose()
    return result.sent


async def test_subscribing_in_a_topic_answers_there_and_the_daily_post_goes_there(
    adapter: TelegramAdapter, telegram: FakeTelegram, store: Store, sender: TelegramSender
) -> None:
    command(telegram, "/subscribe vllm")
    [reply] = await telegram.wait_for_messages(1, chat_id=FORUM)
    assert reply.thread_id == TOPIC
    assert reply.plain.startswith("已订阅：vllm-project/vllm") and "本话题" in reply.plain
    chat = await store.get_chat("telegram", str(FORUM))
    assert chat is not None and chat.thread_id == str(TOPIC)

    assert await daily_post(store, sender) == 1
    posted = telegram.messages_in(FORUM, TOPIC)[1:]
    assert posted and "vllm" in posted[0].plain
    assert telegram.messages_in(FORUM, None) == []
    assert telegram.rejected == []


async def test_weekly_on_in_another_topic_moves_the_chats_posts_there(
    adapter: TelegramAdapter, telegram: FakeTelegram, store: Store
) -> None:
    command(telegram, "/subscribe")
    await telegram.wait_for_messages(1, chat_id=FORUM)
    command(telegram, "/weekly on", thread=OTHER_TOPIC)
    messages = await telegram.wait_for_messages(2, chat_id=FORUM)
    assert messages[1].thread_id == OTHER_TOPIC
    chat = await store.get_chat("telegram", str(FORUM))
    assert chat is not None and chat.weekly and chat.thread_id == str(OTHER_TOPIC)


async def test_alerts_on_all_in_a_topic_is_stored_with_the_topic_and_shown_by_alerts(
    adapter: TelegramAdapter, telegram: FakeTelegram, store: Store
) -> None:
    command(telegram, "/alerts on all")
    [reply] = await telegram.wait_for_messages(1, chat_id=FORUM)
    assert reply.thread_id == TOPIC
    assert "含预发布" in reply.plain and "本话题" in reply.plain
    alerts = await store.alert_chat("telegram", str(FORUM))
    assert alerts is not None and alerts.prereleases and alerts.thread_id == str(TOPIC)

    command(telegram, "/alerts", thread=None)  # asked in General: answered in General
    messages = await telegram.wait_for_messages(2, chat_id=FORUM)
    assert messages[1].thread_id is None
    assert "含预发布与 nightly" in messages[1].plain


async def test_subscribe_releases_all_asks_for_nightlies_and_plain_alerts_on_for_stable(
    adapter: TelegramAdapter, telegram: FakeTelegram, store: Store
) -> None:
    command(telegram, "/subscribe vllm releases all")
    [reply] = await telegram.wait_for_messages(1, chat_id=FORUM)
    assert "含预发布" in reply.plain
    alerts = await store.alert_chat("telegram", str(FORUM))
    assert alerts is not None and alerts.prereleases and alerts.repos == ("vllm-project/vllm",)

    command(telegram, "/alerts on stable")
    messages = await telegram.wait_for_messages(2, chat_id=FORUM)
    assert "仅正式版本" in messages[1].plain
    alerts = await store.alert_chat("telegram", str(FORUM))
    assert alerts is not None and not alerts.prereleases


async def test_a_topic_in_a_chat_without_topics_is_refused_as_telegram_does(
    sender: TelegramSender, telegram: FakeTelegram
) -> None:
    [part] = render_messages("hello")
    assert await sender.send_part(f"{FORUM}/{TOPIC}", part)
    with pytest.raises(ChatGone, match=r"(?i)message thread not found"):
        await sender.send_part(f"{PLAIN_GROUP}/{TOPIC}", part)
    assert telegram.rejected == [("sendMessage", "Bad Request: message thread not found")]
    assert [m.thread_id for m in telegram.sent] == [TOPIC]
