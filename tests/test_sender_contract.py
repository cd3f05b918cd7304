"""One contract for every sender, run over the real clients against the local stand-ins.

Telegram (python-telegram-bot → the Bot API stand-in), Discord channels (discord.py → the Discord
stand-in over TLS) and Discord webhooks go through the one delivery engine (`send_parts`), and
each must behave the same: a gone chat is deactivated, a rate limit is waited out or handed back
with its time, every message fits the platform, and a retry after a failure at part k sends
parts k.. only.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fake_discord import FakeDiscord
from fake_telegram import FakeTelegram
from pydantic import SecretStr
from store_backends import BACKENDS, isolated_database
from telegram import Bot

from bot.delivery import PartsOutcome, send_parts
from bot.platforms.base import Sender
from bot.platforms.discord import DiscordWebhookSender, discord_channel_sender
from bot.platforms.telegram import TelegramSender
from bot.settings import Settings
from bot.store import DeliveryClaim, Store
from summarizer.digest import Digest, Section, render_markdown

DAY = date(2026, 2, 4)
NOW = datetime(2026, 2, 5, 1, 0, tzinfo=UTC)
PLATFORMS = ["telegram", "discord", "discord-webhook"]


def long_markdown(items: int = 120) -> str:
    """A digest long enough for several messages on every platform (links, code, CJK)."""
    lines = [
        f"- 合并 [#{4000 + n} 为 `fused_moe` 增加 FP8 路径](https://github.com/o/r/pull/{4000 + n})"
        f"：把分组 GEMM 的调度改为按专家批量提交，减少了内核启动次数，吞吐提升约 {n}% 🚀。"
        for n in range(items)
    ]
    sections = [
        Section(repo=f"o/r{k}", markdown="\n".join(lines[k::3]), written_by="model")
        for k in range(3)
    ]
    digest = Digest(day=DAY, sections=sections, summary="摘要。", conclusion="总结。")
    return render_markdown(digest)


@dataclass
class Harness:
    """One platform: its sender, a chat on it, and how to script its stand-in."""

    sender: Sender
    chat_id: str
    received: Callable[[], list[str]]
    make_gone: Callable[[], None]
    rate_limit: Callable[[float], None]
    fail_after: Callable[[int], None]


@pytest.fixture(params=BACKENDS)
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Store]:
    async with isolated_database(request.param, tmp_path) as database:
        yield await database.open()


@pytest.fixture(params=PLATFORMS)
async def harness(request: pytest.FixtureRequest) -> AsyncIterator[Harness]:
    platform: str = request.param
    if platform == "telegram":
        async with FakeTelegram() as telegram:
            bot = Bot(telegram.token, base_url=f"{telegram.url}/bot")
            async with bot:
                chat = "-1001"

                def gone() -> None:
                    telegram.blocked.add(chat)

                def limited(seconds: float) -> None:
                    telegram.rate_limit_next(int(seconds))

                def failing(after: int) -> None:
                    telegram.fail_next(502, "Bad Gateway", skip=after)

                def texts() -> list[str]:
                    return [m.text for m in telegram.messages_to(int(chat))]

                yield Harness(TelegramSender(bot), chat, texts, gone, limited, failing)
        return
    async with FakeDiscord(window=0.5) as fake:
        if platform == "discord":
            channel = fake.add_channel()
            settings = Settings(discord_bot_token=SecretStr(fake.bot_token))
            async with discord_channel_sender(settings, connector=fake.connector()) as sender:

                def channel_gone() -> None:
                    fake._channels[channel] = "deleted"

                def channel_texts() -> list[str]:
                    return [m.content for m in fake.channel_messages[channel]]

                yield Harness(
                    sender,
                    str(channel),
                    channel_texts,
                    channel_gone,
                    lambda seconds: fake.answer_429(1, seconds),
                    lambda after: fake.drop_connection(after),
                )
            return
        url = fake.add_webhook()
        session = fake.session()
        try:
            webhook = DiscordWebhookSender([url], session=session)

            def webhook_texts() -> list[str]:
                return [m.content for m in fake.webhook_messages(url)]

            yield Harness(
                webhook,
                webhook.targets[0],
                webhook_texts,
                lambda: fake.delete_webhook(url),
                lambda seconds: fake.answer_429(1, seconds),
                lambda after: fake.drop_connection(after),
            )
        finally:
            await session.close()


async def claim_for(store: Store, sender: Sender, chat_id: str) -> DeliveryClaim:
    """A delivery row for the chat, claimed by worker "w" (as a fan-out would)."""
    chat = await store.subscribe(
        sender.platform, chat_id, None, by="test", post_time="09:00", timezone="Asia/Shanghai"
    )
    await store.ensure_deliveries(DAY, [chat], now=NOW)
    (claim,) = await store.claim_deliveries(
        DAY,
        platform=sender.platform,
        worker="w",
        limit=1,
        lease_seconds=600,
        due_before=None,
        now=NOW,
    )
    return claim


async def reclaim(store: Store, sender: Sender, later: timedelta) -> DeliveryClaim:
    """The same row claimed again after its retry time, as the next round would."""
    (claim,) = await store.claim_deliveries(
        DAY,
        platform=sender.platform,
        worker="w2",
        limit=1,
        lease_seconds=600,
        due_before=None,
        now=NOW + later,
    )
    return claim


Send = Callable[..., Awaitable[PartsOutcome]]


def engine(store: Store, sender: Sender) -> Send:
    async def send(claim: DeliveryClaim, markdown: str, **options: Any) -> PartsOutcome:
        options.setdefault("max_wait", 30.0)
        options.setdefault("retry_pauses", ())
        return await send_parts(store, sender, claim, markdown, **options)

    return send


async def test_every_message_fits_and_arrives_once_in_order(store: Store, harness: Harness) -> None:
    markdown = long_markdown()
    parts = harness.sender.render(markdown)
    assert len(parts) > 1
    claim = await claim_for(store, harness.sender, harness.chat_id)
    outcome = await engine(store, harness.sender)(claim, markdown)
    assert outcome.status == "sent" and len(outcome.ids) == len(parts)
    received = harness.received()
    assert len(received) == len(parts)
    limit = harness.sender.message_limit
    assert all(len(text.encode("utf-16-le")) // 2 <= limit for text in received)


async def test_a_gone_chat_ends_the_delivery_as_gone(store: Store, harness: Harness) -> None:
    harness.make_gone()
    claim = await claim_for(store, harness.sender, harness.chat_id)
    outcome = await engine(store, harness.sender)(claim, "## 摘要\n内容")
    assert outcome.status == "gone"
    assert harness.received() == []


async def test_a_short_rate_limit_is_waited_out_without_repeating_a_part(
    store: Store, harness: Harness
) -> None:
    markdown = long_markdown()
    claim = await claim_for(store, harness.sender, harness.chat_id)
    harness.rate_limit(1)
    outcome = await engine(store, harness.sender)(claim, markdown)
    assert outcome.status == "sent"
    received = harness.received()
    assert len(received) == len(harness.sender.render(markdown)) == len(set(received))


async def test_after_a_failure_at_part_k_the_retry_sends_parts_k_onwards_only(
    store: Store, harness: Harness
) -> None:
    markdown = long_markdown()
    parts = harness.sender.render(markdown)
    send = engine(store, harness.sender)
    claim = await claim_for(store, harness.sender, harness.chat_id)
    harness.fail_after(1)  # part 1 goes out, the call carrying part 2 fails (no quick retry)
    broken = await send(claim, markdown)
    assert broken.status == "error"
    assert isinstance(broken.claim, DeliveryClaim) and len(broken.claim.sent_ids) == 1
    await store.mark_failed(broken.claim, broken.error, final=False)
    retry_claim = await reclaim(store, harness.sender, timedelta(minutes=1))
    assert retry_claim.sent_ids == broken.claim.sent_ids  # the row kept the progress
    retry = await send(retry_claim, markdown)
    assert retry.status == "sent" and len(retry.ids) == len(parts)
    assert retry.ids[0] == broken.ids[0]  # part 1 was not sent again
    received = harness.received()
    assert len(received) == len(parts) == len(set(received))  # each part once, none missing
