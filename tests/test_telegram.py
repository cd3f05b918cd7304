"""The Telegram adapter: the real python-telegram-bot Application against the Bot API stand-in."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import date
from pathlib import Path

import pytest
from fake_telegram import FakeTelegram, check_entities, utf16_len
from pydantic import SecretStr
from service_support import ARCHIVED_DAY, NOW, ArchivePipeline, archive, make_activity, make_digest
from telegram import Bot

from bot.commands import CommandService
from bot.delivery import fan_out
from bot.pipeline import Pipeline
from bot.platforms.base import ChatGone, RetryLater
from bot.platforms.telegram import RateGate, TelegramAdapter, TelegramSender, render_messages
from bot.settings import Settings
from bot.store import Store
from collectors.github import GitHubClient
from collectors.sample import load_sample
from summarizer.compose import Composer
from summarizer.digest import render_markdown

GROUP = -100500
ADMIN, MEMBER = 7, 8
CHANNEL = -100900


@pytest.fixture
async def telegram() -> AsyncIterator[FakeTelegram]:
    async with FakeTelegram(admins={str(GROUP): {str(ADMIN)}}) as fake:
        yield fake


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    opened = await Store.open(f"sqlite+aiosqlite:///{tmp_path / 'bot.db'}")
    await archive(opened, ARCHIVED_DAY)
    yield opened
    await opened.close()


@pytest.fixture
async def adapter(telegram: FakeTelegram, store: Store) -> AsyncIterator[TelegramAdapter]:
    """The bot, polling the stand-in, answering from the real store."""
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


def assert_valid(telegram: FakeTelegram) -> None:
    """Nothing was refused, and every accepted message is within Telegram's rules."""
    assert telegram.rejected == []
    for message in telegram.sent:
        assert utf16_len(message.plain) <= 4096
        check_entities(message.plain, message.entities)
        assert message.link_preview_disabled


# -- commands over the wire ------------------------------------------------------------------


async def test_the_command_menu_is_registered(
    adapter: TelegramAdapter, telegram: FakeTelegram
) -> None:
    names = [c["command"] for c in telegram.commands]
    assert names == [
        "digest",
        "weekly",
        "subscribe",
        "unsubscribe",
        "subscriptions",
        "settime",
        "chart",
        "alerts",
        "watch",
        "unwatch",
        "watches",
        "repos",
        "help",
    ]


async def test_digest_in_a_private_chat_answers_with_the_section_in_bold_heading(
    adapter: TelegramAdapter, telegram: FakeTelegram
) -> None:
    telegram.push_command(chat_id=42, user_id=42, text="/digest vllm")
    [message] = await telegram.wait_for_messages(1, chat_id=42)
    assert "vllm-project/vllm（2026-02-04）" in message.plain.split("\n", 1)[0]
    heading = utf16_len(message.plain[: message.plain.index("vllm-project/vllm")])
    assert {"type": "bold", "offset": heading} in [
        {"type": e["type"], "offset": e["offset"]} for e in message.entities
    ]
    links = [e["url"] for e in message.entities if e["type"] == "text_link"]
    assert "https://github.com/vllm-project/vllm/pull/1001" in links
    assert message.reply_to is None
    assert_valid(telegram)


async def test_a_non_admin_in_a_group_is_refused_and_an_admin_subscribes(
    adapter: TelegramAdapter, telegram: FakeTelegram, store: Store
) -> None:
    telegram.push_command(
        chat_id=GROUP, user_id=MEMBER, chat_type="supergroup", text="/subscribe vllm"
    )
    [refusal] = await telegram.wait_for_messages(1, chat_id=GROUP)
    assert refusal.plain == "抱歉，只有本群管理员可以更改订阅。"
    assert refusal.reply_to is not None
    assert await store.get_chat("telegram", str(GROUP)) is None

    telegram.push_command(
        chat_id=GROUP,
        user_id=ADMIN,
        chat_type="supergroup",
        text="/subscribe@AIInfraDigestBot vllm",
    )
    messages = await telegram.wait_for_messages(2, chat_id=GROUP)
    assert messages[1].plain.startswith("已订阅：vllm-project/vllm")
    chat = await store.get_chat("telegram", str(GROUP))
    assert chat is not None and chat.active and chat.repos == ("vllm-project/vllm",)
    assert_valid(telegram)


async def test_administrator_answers_are_cached(
    adapter: TelegramAdapter, telegram: FakeTelegram
) -> None:
    for n in (1, 2):
        telegram.push_command(
            chat_id=GROUP, user_id=MEMBER, chat_type="group", text="/settime 08:00"
        )
        await telegram.wait_for_messages(n, chat_id=GROUP)
    assert telegram.member_lookups == 1


async def test_a_command_posted_in_a_channel_subscribes_the_channel(
    adapter: TelegramAdapter, telegram: FakeTelegram, store: Store
) -> None:
    telegram.push_command(chat_id=CHANNEL, chat_type="channel", text="/subscribe")
    [message] = await telegram.wait_for_messages(1, chat_id=CHANNEL)
    assert message.plain.startswith("已订阅：全部 8 个")
    chat = await store.get_chat("telegram", str(CHANNEL))
    assert chat is not None and chat.active


async def test_a_long_digest_arrives_as_several_valid_messages(
    adapter: TelegramAdapter, telegram: FakeTelegram, store: Store
) -> None:
    day = date(2026, 2, 3)
    digest = make_digest(day, paragraphs=20)
    await store.save_digest(digest, make_activity(day))
    expected = render_messages(render_markdown(digest))
    assert len(expected) > 1

    telegram.push_command(chat_id=42, user_id=42, text="/digest 2026-02-03")
    messages = await telegram.wait_for_messages(len(expected), chat_id=42)
    assert [m.plain for m in messages] == [e.text for e in expected]
    assert_valid(telegram)
    whole = "\n".join(m.plain for m in messages)
    positions = [whole.index(s.repo) for s in digest.sections]
    assert positions == sorted(positions)
    for message in messages[1:]:
        assert message.plain.startswith("📚 ")  # each part starts at a section


async def test_a_day_not_archived_gets_a_progress_note_first(
    adapter: TelegramAdapter, telegram: FakeTelegram
) -> None:
    telegram.push_command(chat_id=42, user_id=42, text="/digest vllm 2026-02-01")
    progress, answer = await telegram.wait_for_messages(2, chat_id=42)
    assert progress.plain == "正在生成…"
    assert "vllm-project/vllm（2026-02-01）" in answer.plain


async def test_bad_input_over_telegram_gets_one_short_line(
    adapter: TelegramAdapter, telegram: FakeTelegram
) -> None:
    telegram.push_command(chat_id=42, user_id=42, text="/digest ../../etc " + "x" * 10_000)
    [message] = await telegram.wait_for_messages(1, chat_id=42)
    assert "\n" not in message.plain and len(message.plain) < 200
    assert_valid(telegram)


async def test_an_unknown_command_in_a_private_chat_points_to_help(
    adapter: TelegramAdapter, telegram: FakeTelegram
) -> None:
    telegram.push_command(chat_id=42, user_id=42, text="/frobnicate")
    [message] = await telegram.wait_for_messages(1, chat_id=42)
    assert "/help" in message.plain


async def test_a_command_addressed_to_another_bot_is_ignored_even_in_a_private_chat(
    adapter: TelegramAdapter, telegram: FakeTelegram
) -> None:
    telegram.push_command(chat_id=42, user_id=42, text="/digest@OtherBot vllm")
    telegram.push_command(chat_id=42, user_id=42, text="/frobnicate@OtherBot")
    telegram.push_command(chat_id=42, user_id=42, text=f"/help@{telegram.username}")
    [message] = await telegram.wait_for_messages(1, chat_id=42)
    assert "/subscribe" in message.plain  # the help text: the first two got no answer
    assert len(telegram.messages_to(42)) == 1


# -- the sender ------------------------------------------------------------------------------


async def test_sender_returns_one_id_per_message(
    sender: TelegramSender, telegram: FakeTelegram
) -> None:
    markdown = render_markdown(make_digest(ARCHIVED_DAY, paragraphs=20))
    ids = await sender.send_markdown("1001", markdown)
    assert ids == [str(m.message_id) for m in telegram.messages_to(1001)]
    assert len(ids) == len(render_messages(markdown)) > 1
    assert_valid(telegram)


async def test_a_blocked_chat_is_chat_gone(sender: TelegramSender, telegram: FakeTelegram) -> None:
    telegram.blocked.add("1002")
    with pytest.raises(ChatGone):
        await sender.send_markdown("1002", "**hello**")


async def test_a_chat_that_no_longer_exists_is_chat_gone(
    sender: TelegramSender, telegram: FakeTelegram
) -> None:
    telegram.missing.add("-1003")
    with pytest.raises(ChatGone):
        await sender.send_markdown("-1003", "hello")


async def test_a_429_with_retry_after_is_waited_out(
    sender: TelegramSender, telegram: FakeTelegram
) -> None:
    telegram.rate_limit_next(1)
    ids = await sender.send_markdown("1004", "**hello** world")
    assert len(ids) == 1
    assert telegram.too_many_requests == 1
    assert [m.plain for m in telegram.messages_to(1004)] == ["hello world"]


async def test_a_429_in_the_middle_of_a_digest_sends_nothing_twice(
    sender: TelegramSender, telegram: FakeTelegram
) -> None:
    markdown = render_markdown(make_digest(ARCHIVED_DAY, paragraphs=20))
    telegram.rate_limit_next(1, skip=1)
    ids = await sender.send_markdown("1005", markdown)
    plains = [m.plain for m in telegram.messages_to(1005)]
    assert len(plains) == len(ids) == len(set(plains))
    assert telegram.too_many_requests == 1


async def test_a_long_retry_after_before_anything_was_sent_is_retry_later(
    sender: TelegramSender, telegram: FakeTelegram
) -> None:
    telegram.rate_limit_next(30)
    with pytest.raises(RetryLater) as caught:
        await sender.send_markdown("1006", "hello", max_wait=5)
    assert caught.value.retry_after == 30
    assert telegram.messages_to(1006) == []


# -- rendering and pacing (pure) -------------------------------------------------------------


def test_a_section_longer_than_a_message_splits_between_paragraphs() -> None:
    digest = make_digest(ARCHIVED_DAY, ["vllm-project/vllm"], paragraphs=60)
    parts = render_messages(render_markdown(digest))
    assert len(parts) > 1
    for part in parts:
        assert part.size <= 4096
        check_entities(part.text, [e.to_dict() for e in part.entities])
        assert part.text.startswith(("⦁", "📚", "今日", "✏"))  # a paragraph's first line


def test_one_enormous_paragraph_is_cut_at_line_breaks_with_entities_kept_valid() -> None:
    lines = [f"- **第 {i} 条** 😀 [链接](https://example.com/{i}) `code`" for i in range(600)]
    parts = render_messages("\n".join(lines), limit=1000)
    assert len(parts) > 10
    for part in parts:
        assert part.size <= 1000
        check_entities(part.text, [e.to_dict() for e in part.entities])
    joined = "\n".join(p.text for p in parts)
    assert "第 0 条" in joined and "第 599 条" in joined


def test_a_fenced_block_with_blank_lines_is_not_cut_as_paragraphs() -> None:
    code = "\n\n".join(f"line_{i} = {i}" for i in range(300))
    markdown = f"### repo\n说明\n\n```python\n{code}\n```\n\n结尾"
    parts = render_messages(markdown, limit=2000)
    for part in parts:
        check_entities(part.text, [e.to_dict() for e in part.entities])
    assert any(e.type == "pre" for part in parts for e in part.entities)


def test_the_gate_spaces_sends_under_the_overall_and_group_limits() -> None:
    now = [0.0]
    gate = RateGate(30, (20, 60.0), margin=1.0, clock=lambda: now[0])
    delays = [gate.reserve(str(chat)) for chat in range(60)]
    assert delays[0] == 0
    assert delays[-1] == pytest.approx(59 / 30)
    now[0] = 100.0
    group = [gate.reserve("-42") for _ in range(21)]
    assert group[19] < 1.0  # twenty go out at the overall pace
    assert group[20] >= 59.0  # the twenty-first waits for the minute to pass


def test_after_a_stall_the_gate_lets_no_more_than_the_limit_into_a_window() -> None:
    now = [0.0]
    gate = RateGate(30, (20, 60.0), clock=lambda: now[0])
    verdicts = [gate.admit() for _ in range(30)]  # 30 sends released at once
    assert verdicts[:28] == [0.0] * 28  # 95 % of 30 per second
    assert verdicts[28] == pytest.approx(1.0)


def test_the_gate_holds_everything_after_a_pause() -> None:
    now = [5.0]
    gate = RateGate(30, (20, 60.0), clock=lambda: now[0])
    gate.pause(3)
    assert gate.reserve("1") == pytest.approx(3)


def test_formatting_around_code_is_cut_around_it_and_code_in_a_link_is_plain() -> None:
    [part] = render_messages(
        "- **`deep_gemm/include`**\n- **修复 `foo` 的问题**\n- [`bar`](https://example.com/x)"
    )
    check_entities(part.text, [e.to_dict() for e in part.entities])
    kinds = [e.type for e in part.entities]
    assert kinds.count("code") == 2 and "text_link" in kinds
    assert kinds.count("bold") == 2  # "修复 " and " 的问题"; the bold-only code keeps its code


async def test_the_sample_digest_renders_into_messages_telegram_accepts() -> None:
    activity = load_sample()
    digest = await Composer(None, None).compose(activity, Settings().digest_repos)
    for part in render_messages(render_markdown(digest)):
        assert part.size <= 4096
        check_entities(part.text, [e.to_dict() for e in part.entities])


async def test_a_fan_out_delivers_once_and_deactivates_a_blocked_chat(
    sender: TelegramSender, telegram: FakeTelegram, store: Store
) -> None:
    settings = Settings()
    for chat in ("2001", "2002", "2003"):
        await store.subscribe(
            "telegram", chat, ["vllm"], by=None, post_time="09:00", timezone="Asia/Shanghai"
        )
    telegram.blocked.add("2002")
    github = GitHubClient("http://127.0.0.1:9", None, None)  # nothing listens: no collection
    try:
        pipeline = Pipeline(settings, store, github=github, composer=Composer(None, None))
        first = await fan_out(
            store, pipeline, {"telegram": sender}, ARCHIVED_DAY, worker="t", now=NOW
        )
        again = await fan_out(
            store, pipeline, {"telegram": sender}, ARCHIVED_DAY, worker="t", now=NOW
        )
    finally:
        await github.aclose()
    assert (first.sent, first.deactivated) == (2, 1)
    assert again.sent == 0
    gone = await store.get_chat("telegram", "2002")
    assert gone is not None and not gone.active
    assert len(telegram.messages_to(2001)) == len(telegram.messages_to(2003)) >= 1
    assert_valid(telegram)
