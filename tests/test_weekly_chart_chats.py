"""Issue 8 in the chats, over real HTTP: /weekly, /chart and /weekly on|off, the day's picture
after the daily post (Telegram sendPhoto, Discord attachments) and the Monday roll-up.

The Bot API and Discord stand-ins are local servers; the store is real (SQLite, and PostgreSQL
for the Monday post when TEST_DATABASE_URL is set); the archive holds seven synthetic days.
"""

from __future__ import annotations

import io
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from fake_discord import FakeDiscord
from fake_telegram import FakeTelegram, check_entities, utf16_len
from PIL import Image
from pydantic import SecretStr
from store_backends import BACKENDS, isolated_database
from synthetic_days import REPOS, archive_day, day_activity, days_ending, repo_day
from telegram import Bot
from telegram.error import TelegramError

from bot.commands import NO_WEEKLY, ChatContext, CommandService
from bot.delivery import fan_out
from bot.pipeline import Pipeline
from bot.platforms.base import ChatGone, PhotoSender, Sender, photo_sender
from bot.platforms.discord import DiscordWebhookSender, discord_channel_sender
from bot.platforms.telegram import TelegramAdapter, TelegramSender
from bot.post import post_once
from bot.scheduler import Scheduler
from bot.settings import Settings, load_settings
from bot.store import WEEKLY, Store
from collectors.github import GitHubClient
from summarizer.compose import Composer

END = date(2026, 2, 8)  # a Sunday: the week is Mon 2026-02-02 … Sun 2026-02-08
WEEK = days_ending(END, 7)
# Monday 2026-02-09 10:00 in Shanghai: END is yesterday.
MONDAY_MORNING = datetime(2026, 2, 9, 2, 0, tzinfo=UTC)
# Monday 09:00 in Shanghai, when a default chat gets END's digest (and, opted in, the week).
MONDAY_0900 = datetime(2026, 2, 9, 1, 0, tzinfo=UTC)
VLLM, SGLANG, CUTLASS = "vllm-project/vllm", "sgl-project/sglang", "NVIDIA/cutlass"
RELEASES = {
    (WEEK[0], VLLM): ["v0.9.0rc1"],
    (WEEK[2], VLLM): ["v0.9.0"],
    (WEEK[3], SGLANG): ["v0.5.1", "v0.5.1.post1"],
    (WEEK[5], CUTLASS): ["v4.4.0"],
    (WEEK[6], "deepseek-ai/DeepGEMM"): ["v2.1.0"],
}
TAGS = [tag for tags in RELEASES.values() for tag in tags]
GROUP, ADMIN, MEMBER = -100500, 7, 8
WEEKLY_TITLE = "本周 AI Infra 新闻回顾"
DIGEST_TITLE = "今日的 AI Infra 的新闻如下"


async def archive_week(store: Store) -> None:
    """The seven days of WEEK, with RELEASES spread over them, archived (structured)."""
    for day in WEEK:
        overrides = [
            repo_day(repo, day, merged=2, issues=1, releases=tags)
            for (release_day, repo), tags in RELEASES.items()
            if release_day == day
        ]
        await archive_day(store, day_activity(day, overrides=overrides))


def assert_valid(telegram: FakeTelegram) -> None:
    """Nothing was refused, and every accepted message is within Telegram's rules."""
    assert telegram.rejected == []
    for message in telegram.sent:
        assert utf16_len(message.plain) <= 4096
        check_entities(message.plain, message.entities)


def assert_png_of_sane_size(png: bytes) -> None:
    with Image.open(io.BytesIO(png)) as image:
        assert image.format == "PNG"
        width, height = image.size
    assert 400 <= width <= 4000 and 300 <= height <= 4000
    assert len(png) < 1_000_000


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    opened = await Store.open(f"sqlite+aiosqlite:///{tmp_path / 'bot.db'}")
    await archive_week(opened)
    yield opened
    await opened.close()


@pytest.fixture
async def telegram() -> AsyncIterator[FakeTelegram]:
    async with FakeTelegram(admins={str(GROUP): {str(ADMIN)}}) as fake:
        yield fake


@pytest.fixture
async def pipeline(store: Store) -> AsyncIterator[Pipeline]:
    """The real pipeline over the archive; nothing listens at its GitHub address."""
    settings = Settings(digest_repos=list(REPOS))
    github = GitHubClient("http://127.0.0.1:9", None, None)
    try:
        yield Pipeline(settings, store, github=github, composer=Composer(None, None))
    finally:
        await github.aclose()


@pytest.fixture
async def adapter(
    telegram: FakeTelegram, store: Store, pipeline: Pipeline
) -> AsyncIterator[TelegramAdapter]:
    """The bot, polling the stand-in, answering from the store; clock: Monday morning."""
    settings = Settings(
        telegram_bot_token=SecretStr(telegram.token),
        telegram_api_url=telegram.url,
        digest_repos=list(REPOS),
    )
    service = CommandService(settings, store, pipeline, clock=lambda: MONDAY_MORNING)
    running = TelegramAdapter(settings, service)
    await running.start(poll_timeout=1)
    yield running
    await running.stop()


@pytest.fixture
async def sender(telegram: FakeTelegram) -> AsyncIterator[TelegramSender]:
    async with Bot(telegram.token, base_url=f"{telegram.url}/bot") as bot:
        yield TelegramSender(bot)


async def subscribe(store: Store, platform: str, chat_id: str, *, at: datetime) -> None:
    await store.subscribe(
        platform, chat_id, None, by="admin", post_time="09:00", timezone="Asia/Shanghai", now=at
    )


# -- /weekly ---------------------------------------------------------------------------------


async def test_weekly_in_a_chat_lists_every_release_of_the_seven_archived_days(
    adapter: TelegramAdapter, telegram: FakeTelegram
) -> None:
    telegram.push_command(chat_id=42, user_id=42, text="/weekly")

    def all_listed() -> bool:
        text = "\n".join(m.plain for m in telegram.messages_to(42))
        return all(tag in text for tag in TAGS)

    await telegram.wait_until(all_listed)
    messages = telegram.messages_to(42)
    assert messages[0].plain.startswith(f"{WEEKLY_TITLE}（2026-02-02 至 2026-02-08）")
    text = "\n".join(m.plain for m in messages)
    for repo in REPOS:
        assert repo in text
    links = {e.get("url") for m in messages for e in m.entities if e["type"] == "text_link"}
    assert f"https://github.com/{VLLM}/releases/tag/v0.9.0" in links
    assert_valid(telegram)


async def test_weekly_of_a_named_repository_has_only_its_section(
    adapter: TelegramAdapter, telegram: FakeTelegram
) -> None:
    telegram.push_command(chat_id=42, user_id=42, text="/weekly sglang")
    [message] = await telegram.wait_for_messages(1, chat_id=42)
    assert "v0.5.1.post1" in message.plain and SGLANG in message.plain
    assert VLLM not in message.plain and "v0.9.0" not in message.plain


async def test_weekly_follows_the_chats_subscription(
    adapter: TelegramAdapter, telegram: FakeTelegram
) -> None:
    telegram.push_command(chat_id=42, user_id=42, text="/subscribe cutlass")
    await telegram.wait_for_messages(1, chat_id=42)
    telegram.push_command(chat_id=42, user_id=42, text="/weekly")
    messages = await telegram.wait_for_messages(2, chat_id=42)
    assert "v4.4.0" in messages[1].plain and VLLM not in messages[1].plain


async def test_weekly_with_nothing_archived_says_so(tmp_path: Path) -> None:
    empty = await Store.open(f"sqlite+aiosqlite:///{tmp_path / 'empty.db'}")
    try:
        github = GitHubClient("http://127.0.0.1:9", None, None)
        pipeline = Pipeline(Settings(), empty, github=github, composer=Composer(None, None))
        service = CommandService(Settings(), empty, pipeline, clock=lambda: MONDAY_MORNING)

        async def never() -> bool:
            raise AssertionError("no administrator check for reading")

        reply = await service.handle(
            ChatContext("telegram", "42", "private", "42", never), "weekly", ""
        )
        await github.aclose()
    finally:
        await empty.close()
    assert reply.text == NO_WEEKLY


# -- /chart and /weekly on|off ------------------------------------------------------------------


async def test_chart_on_by_a_non_admin_in_a_group_is_refused_and_an_admin_turns_it_on(
    adapter: TelegramAdapter, telegram: FakeTelegram, store: Store
) -> None:
    await subscribe(store, "telegram", str(GROUP), at=MONDAY_MORNING - timedelta(days=30))
    telegram.push_command(chat_id=GROUP, user_id=MEMBER, chat_type="supergroup", text="/chart on")
    [refusal] = await telegram.wait_for_messages(1, chat_id=GROUP)
    assert refusal.plain == "抱歉，只有本群管理员可以更改订阅。"
    chat = await store.get_chat("telegram", str(GROUP))
    assert chat is not None and not chat.chart

    telegram.push_command(chat_id=GROUP, user_id=MEMBER, chat_type="supergroup", text="/weekly on")
    await telegram.wait_for_messages(2, chat_id=GROUP)
    chat = await store.get_chat("telegram", str(GROUP))
    assert chat is not None and not chat.weekly

    telegram.push_command(chat_id=GROUP, user_id=ADMIN, chat_type="supergroup", text="/chart on")
    messages = await telegram.wait_for_messages(3, chat_id=GROUP)
    assert messages[2].plain.startswith("已开启日报附图")
    telegram.push_command(chat_id=GROUP, user_id=ADMIN, chat_type="supergroup", text="/weekly on")
    messages = await telegram.wait_for_messages(4, chat_id=GROUP)
    assert messages[3].plain.startswith("已开启每周回顾：每周一 09:00")
    chat = await store.get_chat("telegram", str(GROUP))
    assert chat is not None and chat.chart and chat.weekly

    telegram.push_command(
        chat_id=GROUP, user_id=MEMBER, chat_type="supergroup", text="/subscriptions"
    )
    messages = await telegram.wait_for_messages(5, chat_id=GROUP)
    assert "日报附当日动态图" in messages[4].plain and "每周一" in messages[4].plain


async def test_chart_on_in_a_chat_that_never_subscribed_asks_to_subscribe_first(
    adapter: TelegramAdapter, telegram: FakeTelegram, store: Store
) -> None:
    telegram.push_command(chat_id=42, user_id=42, text="/chart on")
    [reply] = await telegram.wait_for_messages(1, chat_id=42)
    assert reply.plain == "本聊天尚未订阅，请先发送 /subscribe。"
    telegram.push_command(chat_id=42, user_id=42, text="/chart maybe")
    messages = await telegram.wait_for_messages(2, chat_id=42)
    assert messages[1].plain.startswith("无法识别“maybe”")
    assert await store.get_chat("telegram", "42") is None


# -- the picture after the daily post -----------------------------------------------------------


async def test_a_chat_with_chart_on_gets_a_photo_after_its_digest_and_one_with_it_off_does_not(
    telegram: FakeTelegram, store: Store, pipeline: Pipeline, sender: TelegramSender
) -> None:
    long_ago = MONDAY_0900 - timedelta(days=30)
    for chat_id in ("1", "2"):
        await subscribe(store, "telegram", chat_id, at=long_ago)
    await store.set_chart("telegram", "1", True)

    result = await fan_out(store, pipeline, {"telegram": sender}, END, worker="w", now=MONDAY_0900)

    assert (result.sent, result.photos) == (2, 1)
    assert telegram.photos_to("2") == []
    [photo] = telegram.photos_to("1")
    assert_png_of_sane_size(photo.png)
    assert photo.caption.startswith("2026-02-08 动态图")
    digest_ids = [m.message_id for m in telegram.messages_to("1")]
    assert telegram.messages_to("1")[0].plain.startswith(DIGEST_TITLE)
    assert photo.message_id > max(digest_ids)  # after the digest
    assert_valid(telegram)


async def test_a_failed_photo_never_makes_the_digest_go_out_again(
    telegram: FakeTelegram, store: Store, pipeline: Pipeline, sender: TelegramSender
) -> None:
    await subscribe(store, "telegram", "1", at=MONDAY_0900 - timedelta(days=30))
    await store.set_chart("telegram", "1", True)
    telegram.fail_next(500, "Internal Server Error", method="sendPhoto")

    first = await fan_out(store, pipeline, {"telegram": sender}, END, worker="w", now=MONDAY_0900)
    later = MONDAY_0900 + timedelta(hours=1)
    second = await fan_out(store, pipeline, {"telegram": sender}, END, worker="w", now=later)

    assert (first.sent, first.photos, first.retrying, first.failed) == (1, 0, 0, 0)
    assert (second.sent, second.photos) == (0, 0)
    digests = [m for m in telegram.messages_to("1") if m.plain.startswith(DIGEST_TITLE)]
    assert len(digests) == 1
    assert telegram.photos_to("1") == []
    assert await store.delivery_status("telegram", "1", END) == "sent"


async def test_a_rate_limited_photo_is_skipped_and_the_digest_stays_delivered(
    telegram: FakeTelegram, store: Store, pipeline: Pipeline, sender: TelegramSender
) -> None:
    await subscribe(store, "telegram", "1", at=MONDAY_0900 - timedelta(days=30))
    await store.set_chart("telegram", "1", True)
    telegram.rate_limit_next(1, method="sendPhoto")
    result = await fan_out(store, pipeline, {"telegram": sender}, END, worker="w", now=MONDAY_0900)
    assert (result.sent, result.photos, result.retrying) == (1, 0, 0)
    assert await store.delivery_status("telegram", "1", END) == "sent"


async def test_discord_webhook_and_channel_get_the_chart_as_an_attachment_without_mentions(
    store: Store, pipeline: Pipeline
) -> None:
    async with FakeDiscord(window=0.5) as fake:
        url = fake.add_webhook()
        settings = load_settings(discord_bot_token=fake.bot_token)
        async with (
            fake.session() as session,
            discord_channel_sender(settings, connector=fake.connector()) as channel_sender,
        ):
            webhook = DiscordWebhookSender([url], session=session)
            channel = fake.add_channel()
            chat_ids = {webhook.platform: webhook.targets[0], channel_sender.platform: str(channel)}
            for platform, chat_id in chat_ids.items():
                await subscribe(store, platform, chat_id, at=MONDAY_0900 - timedelta(days=30))
                await store.set_chart(platform, chat_id, True)
            senders: dict[str, Sender] = {
                webhook.platform: webhook,
                channel_sender.platform: channel_sender,
            }
            assert all(photo_sender(s) is not None for s in senders.values())

            result = await fan_out(store, pipeline, senders, END, worker="w", now=MONDAY_0900)

        assert (result.sent, result.photos) == (2, 2)
        for posted in (fake.webhook_messages(url), fake.channel_messages[channel]):
            last = posted[-1]
            assert "今日的 AI Infra" in posted[0].content
            [attachment] = last.attachments
            assert attachment.filename == "chart.png"
            assert_png_of_sane_size(attachment.data)
            assert last.payload["allowed_mentions"] == {"parse": []}
            assert last.content.startswith("2026-02-08 动态图")
            assert all(not m.attachments for m in posted[:-1])


async def test_a_sender_without_photos_gets_the_digest_only(
    store: Store, pipeline: Pipeline, sender: TelegramSender, telegram: FakeTelegram
) -> None:
    class TextOnly(TelegramSender):
        sends_photos = False

    assert isinstance(sender, PhotoSender) and photo_sender(TextOnly(sender.bot)) is None
    await subscribe(store, "telegram", "1", at=MONDAY_0900 - timedelta(days=30))
    await store.set_chart("telegram", "1", True)
    result = await fan_out(
        store, pipeline, {"telegram": TextOnly(sender.bot)}, END, worker="w", now=MONDAY_0900
    )
    assert (result.sent, result.photos) == (1, 0)
    assert telegram.photos == []


# -- the Monday post ------------------------------------------------------------------------------


@dataclass
class Week:
    """A store with the week archived, the real pipeline over it and a Telegram sender."""

    store: Store
    pipeline: Pipeline
    sender: TelegramSender
    settings: Settings

    def scheduler(self) -> Scheduler:
        return Scheduler(
            self.settings, self.store, self.pipeline, {"telegram": self.sender}, worker="sched"
        )


@pytest.fixture(params=BACKENDS)
async def week(
    request: pytest.FixtureRequest, tmp_path: Path, telegram: FakeTelegram
) -> AsyncIterator[Week]:
    async with isolated_database(request.param, tmp_path) as db:
        store = await db.open()
        await archive_week(store)
        settings = Settings(digest_repos=list(REPOS))
        github = GitHubClient("http://127.0.0.1:9", None, None)
        pipeline = Pipeline(settings, store, github=github, composer=Composer(None, None))
        try:
            async with Bot(telegram.token, base_url=f"{telegram.url}/bot") as bot:
                yield Week(store, pipeline, TelegramSender(bot), settings)
        finally:
            await github.aclose()


def weekly_posts(telegram: FakeTelegram, chat_id: str) -> list[str]:
    return [m.plain for m in telegram.messages_to(chat_id) if m.plain.startswith(WEEKLY_TITLE)]


async def test_a_monday_weekly_post_goes_out_once_after_the_daily_post(
    week: Week, telegram: FakeTelegram
) -> None:
    long_ago = MONDAY_0900 - timedelta(days=30)
    for chat_id in ("1", "2"):
        await subscribe(week.store, "telegram", chat_id, at=long_ago)
    await week.store.set_weekly("telegram", "1", True)
    scheduler = week.scheduler()

    early = await scheduler.tick(MONDAY_0900 - timedelta(minutes=5))
    assert early.due == 0 and early.weekly is None
    tick = await scheduler.tick(MONDAY_0900 + timedelta(seconds=30))
    assert tick.delivery is not None and tick.delivery.sent == 2
    assert tick.weekly is not None and tick.weekly.sent == 1

    [rollup] = weekly_posts(telegram, "1")
    assert rollup.startswith(f"{WEEKLY_TITLE}（2026-02-02 至 2026-02-08）")
    first = telegram.messages_to("1")[0]
    assert first.plain.startswith(DIGEST_TITLE)  # the daily post came first
    text = "\n".join(m.plain for m in telegram.messages_to("1"))
    assert all(tag in text for tag in TAGS)
    assert weekly_posts(telegram, "2") == []

    # Later ticks, and another instance after a restart, send nothing again.
    count = len(telegram.sent)
    again = await scheduler.tick(MONDAY_0900 + timedelta(minutes=10))
    restarted = await week.scheduler().tick(MONDAY_0900 + timedelta(hours=3))
    assert again.weekly is None and restarted.weekly is None
    assert len(telegram.sent) == count
    assert await week.store.delivery_counts(END, kind=WEEKLY) == {"sent": 1}


async def test_no_weekly_post_on_other_days_of_the_week(week: Week, telegram: FakeTelegram) -> None:
    await subscribe(week.store, "telegram", "1", at=MONDAY_0900 - timedelta(days=30))
    await week.store.set_weekly("telegram", "1", True)
    saturday_0900 = MONDAY_0900 - timedelta(days=2)  # posts Friday's digest (WEEK[4])
    tick = await week.scheduler().tick(saturday_0900 + timedelta(seconds=30))
    assert tick.delivery is not None and tick.delivery.sent == 1
    assert tick.weekly is None
    assert weekly_posts(telegram, "1") == []


async def test_post_of_a_mondays_digest_day_also_sends_the_roll_up_once(
    week: Week, telegram: FakeTelegram
) -> None:
    for chat_id in ("1", "2"):
        await subscribe(week.store, "telegram", chat_id, at=MONDAY_0900 - timedelta(days=30))
    await week.store.set_weekly("telegram", "1", True)
    senders = {"telegram": week.sender}

    posted = await post_once(week.settings, END, senders, store=week.store)  # END is a Sunday
    assert posted.sent == 2
    assert posted.weekly is not None and posted.weekly.sent == 1
    [rollup] = weekly_posts(telegram, "1")
    assert rollup.startswith(f"{WEEKLY_TITLE}（2026-02-02 至 2026-02-08）")
    assert telegram.messages_to("1")[0].plain.startswith(DIGEST_TITLE)  # the daily post first
    assert weekly_posts(telegram, "2") == []

    # Posting again, or the scheduler on that Monday, sends nothing twice: the same records.
    count = len(telegram.sent)
    again = await post_once(week.settings, END, senders, store=week.store)
    tick = await week.scheduler().tick(MONDAY_0900 + timedelta(minutes=1))
    assert again.sent == 0 and again.weekly is None and tick.weekly is None
    assert len(telegram.sent) == count
    assert await week.store.delivery_counts(END, kind=WEEKLY) == {"sent": 1}


async def test_post_of_another_day_sends_no_roll_up(week: Week, telegram: FakeTelegram) -> None:
    await subscribe(week.store, "telegram", "1", at=MONDAY_0900 - timedelta(days=30))
    await week.store.set_weekly("telegram", "1", True)
    friday = WEEK[4]  # posted on Saturday
    posted = await post_once(week.settings, friday, {"telegram": week.sender}, store=week.store)
    assert posted.sent == 1 and posted.weekly is None
    assert weekly_posts(telegram, "1") == []
    assert await week.store.delivery_counts(friday, kind=WEEKLY) == {}


# -- edges ----------------------------------------------------------------------------------------


async def test_weekly_of_a_stale_archive_is_not_shown_as_this_week(
    store: Store, pipeline: Pipeline
) -> None:
    three_weeks_later = MONDAY_MORNING + timedelta(days=21)
    service = CommandService(
        Settings(digest_repos=list(REPOS)), store, pipeline, clock=lambda: three_weeks_later
    )

    async def never() -> bool:
        raise AssertionError("no administrator check for reading")

    ctx = ChatContext("telegram", "42", "private", "42", never)
    assert (await service.handle(ctx, "weekly", "")).text == NO_WEEKLY
    refused = await service.handle(ctx, "weekly", "on vllm")
    assert refused.ephemeral and refused.text.startswith("用法：/weekly")


async def test_a_photo_caption_is_cut_to_telegrams_limit_and_only_pngs_are_accepted(
    telegram: FakeTelegram, sender: TelegramSender
) -> None:
    png = render_png()
    await sender.send_photo("5", png, "图" * 1500 + "😀")
    [photo] = telegram.photos_to("5")
    assert utf16_len(photo.caption) <= 1024 and photo.caption.endswith("…")
    assert photo.png == png
    with pytest.raises(ValueError):
        await sender.send_photo("5", b"\x89PNG" + bytes(11_000_000), "")
    with pytest.raises(TelegramError):
        await sender.send_photo("5", b"GIF89a not a png", "")
    assert len(telegram.photos) == 1


async def test_a_blocked_chat_refuses_the_photo_as_gone(
    telegram: FakeTelegram, sender: TelegramSender
) -> None:
    telegram.blocked.add("9")
    with pytest.raises(ChatGone):
        await sender.send_photo("9", render_png(), "x")


def render_png() -> bytes:
    """A small real PNG."""
    buffer = io.BytesIO()
    Image.new("RGB", (64, 48), "white").save(buffer, format="PNG")
    return buffer.getvalue()
