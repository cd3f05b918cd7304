"""The Discord adapter: rendering and splitting, webhook and channel delivery, slash commands.

Delivery and commands run over real HTTP (TLS) and a real gateway WebSocket against the
in-process stand-in in tests/fake_discord.py, with discord.py itself as the client.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import AsyncIterator, Sequence
from datetime import date, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import discord
import pytest
from fake_discord import (
    MANAGE_CHANNELS,
    SEND_MESSAGES,
    FakeDiscord,
    command_interaction,
    utf16_len,
    would_ping,
)
from fake_github import FakeGitHub

from bot.platforms.base import ChatGone
from bot.platforms.discord import (
    PLATFORM,
    WEBHOOK_PLATFORM,
    DigestBot,
    DiscordWebhookSender,
    discord_channel_sender,
    make_webhook_sender,
    parse_webhook_url,
    register_webhooks,
    repo_choices,
    repo_list_choices,
    run_discord,
)
from bot.platforms.discord.render import render_messages, split_messages, to_discord
from bot.platforms.discord.slash import ALERTS_REPOS_ALONE, WEEKLY_BOTH
from bot.settings import DEFAULT_REPOS, Settings, load_settings
from bot.store import Store
from collectors.activity import DayActivity
from collectors.window import day_window
from summarizer.digest import Digest, Section, render_markdown

DAY = date(2026, 2, 4)
NOW = datetime(2026, 2, 5, 10, 0, tzinfo=ZoneInfo("Asia/Shanghai"))
# A Discord user listed in ADMIN_USER_IDS; the interactions' default user is not.
OPERATOR = 1_230_000_000_000_000_077
ADMINISTRATOR = "8"  # Discord's permission bit for default_member_permissions


# --- helpers -----------------------------------------------------------------------------------


def section_text(repo: str, items: int) -> str:
    """A section like the model writes: bullets with PR links, code spans and Chinese prose."""
    lines = []
    for number in range(items):
        lines.append(
            f"- 合并 [#{4100 + number} 为 `fused_moe` 增加 FP8 路径]"
            f"(https://github.com/{repo}/pull/{4100 + number})：把分组 GEMM 的调度改为按专家"
            "批量提交，减少了内核启动次数，在 H100 上端到端吞吐提升约 7%。"
        )
    return "\n".join(lines)


def long_digest(items: int = 9, extra: str = "") -> Digest:
    """A digest of all default repositories, long enough to need several Discord messages."""
    sections = [
        Section(repo=repo, markdown=section_text(repo, items) + extra, written_by="model")
        for repo in DEFAULT_REPOS
    ]
    return Digest(
        day=DAY,
        sections=sections,
        summary="各仓库持续优化 MoE 与注意力内核。",
        conclusion="整体进展平稳。",
    )


def links(text: str) -> list[str]:
    return re.findall(r"\[[^\]\n]*\]\([^)\s]*\)", text)


def squash(text: str) -> str:
    return re.sub(r"\s+", "", text)


# --- rendering and splitting -------------------------------------------------------------------


def test_long_digest_is_split_at_section_boundaries_into_messages_within_2000_characters() -> None:
    markdown = render_markdown(long_digest())
    messages = render_messages(markdown)
    assert len(messages) > 3
    assert all(utf16_len(message) <= 2000 for message in messages)
    # Every repository section fits one message, so none is split: each starts its message's
    # heading block and ends before the next heading.
    for repo in DEFAULT_REPOS:
        holding = [m for m in messages if f"### {repo}\n" in m]
        assert len(holding) == 1
        assert section_text(repo, 9).split("\n")[-1] in holding[0]
    assert squash("".join(messages)) == squash(to_discord(markdown))


def test_links_and_code_spans_stay_whole_when_a_single_line_is_longer_than_a_message() -> None:
    line = " ".join(
        f"见 [PR #{n} 的说明](https://github.com/sgl-project/sglang/pull/{n}) 与 `flag_{n}`；"
        for n in range(120)
    )
    messages = split_messages(line, 500)
    assert len(messages) > 1
    assert all(utf16_len(m) <= 500 for m in messages)
    assert sum(len(links(m)) for m in messages) == 120
    for message in messages:
        assert message.count("`") % 2 == 0
        assert message.count("[") == message.count("](") == len(links(message))


def test_a_long_code_block_continues_as_its_own_fenced_block() -> None:
    code = "\n".join(f"    kernel_{n}<<<grid, block>>>(ptr_{n});" for n in range(200))
    messages = split_messages(f"### NVIDIA/cutlass\n说明：\n```cpp\n{code}\n```\n结束。", 1000)
    assert len(messages) > 2
    for message in messages:
        assert utf16_len(message) <= 1000
        assert message.count("```") % 2 == 0
    assert sum(m.count("kernel_") for m in messages) == 200


def test_tables_rules_and_deep_headings_become_what_discord_renders() -> None:
    text = to_discord(
        "# 标题\n#### 细节\n| 仓库 | 提交 |\n|---|---:|\n| vllm | 12 |\n\n---\n"
        "![图](https://example.com/a.png)\n```\n# 不是标题\n| 不是 | 表格 |\n```"
    )
    assert text.splitlines()[:4] == ["## 标题", "**细节**", "**仓库 · 提交**", "- vllm · 12"]
    assert "---" not in text
    assert "[图](https://example.com/a.png)" in text
    assert "# 不是标题\n| 不是 | 表格 |" in text


# --- autocomplete ------------------------------------------------------------------------------


def test_autocomplete_offers_tracked_repositories_matching_partial_input() -> None:
    def names(typed: str) -> list[str]:
        return [choice.value for choice in repo_choices(DEFAULT_REPOS, typed)]

    assert names("fla") == [
        "deepseek-ai/FlashMLA",
        "flashinfer-ai/flashinfer",
        "Dao-AILab/flash-attention",
    ]
    assert names("VLL") == ["vllm-project/vllm"]
    assert names("nvidia/") == ["NVIDIA/cutlass", "NVIDIA/cutile-python"]
    assert names("attention") == ["Dao-AILab/flash-attention"]
    assert names("") == list(DEFAULT_REPOS)
    assert names("tensorflow") == []
    assert all(isinstance(c, discord.app_commands.Choice) for c in repo_choices(DEFAULT_REPOS, ""))


def test_list_autocomplete_completes_the_last_name_and_skips_chosen_ones() -> None:
    values = [c.value for c in repo_list_choices(DEFAULT_REPOS, "vllm sgl")]
    assert values == ["vllm sgl-project/sglang"]
    values = [c.value for c in repo_list_choices(DEFAULT_REPOS, "vllm ")]
    assert "vllm vllm-project/vllm" not in values
    assert len(values) == len(DEFAULT_REPOS) - 1


# --- webhook delivery --------------------------------------------------------------------------


@pytest.fixture
async def fake() -> AsyncIterator[FakeDiscord]:
    async with FakeDiscord(window=0.5) as server:
        yield server


@pytest.fixture
async def webhook_sender(fake: FakeDiscord) -> AsyncIterator[tuple[DiscordWebhookSender, str]]:
    url = fake.add_webhook()
    session = fake.session()
    try:
        yield DiscordWebhookSender([url], session=session), url
    finally:
        await session.close()


async def test_long_digest_arrives_through_the_webhook_as_several_valid_messages(
    fake: FakeDiscord, webhook_sender: tuple[DiscordWebhookSender, str]
) -> None:
    sender, url = webhook_sender
    markdown = render_markdown(long_digest())
    ids = await sender.send_markdown(sender.targets[0], markdown)
    posted = fake.webhook_messages(url)
    assert len(posted) == len(ids) > 3
    assert ids == [str(message.id) for message in posted]
    assert all(record.status == 200 for record in fake.records)
    assert [m.content for m in posted] == render_messages(markdown)
    assert fake.rate_limited == 0  # paced by the X-RateLimit headers, never told off


async def test_everyone_in_model_output_never_pings(
    fake: FakeDiscord, webhook_sender: tuple[DiscordWebhookSender, str]
) -> None:
    sender, _url = webhook_sender
    hostile = "\n- 紧急 @everyone @here 请看 <@123456789012345678> 和 <@&234567890123456789>"
    await sender.send_markdown(sender.targets[0], render_markdown(long_digest(3, hostile)))
    payloads = fake.payloads("webhook")
    assert any("@everyone" in payload["content"] for payload in payloads)
    for payload in payloads:
        assert payload["allowed_mentions"] == {"parse": []}
        assert not would_ping(payload)


async def test_a_429_is_waited_out_and_every_message_arrives_once(
    fake: FakeDiscord, webhook_sender: tuple[DiscordWebhookSender, str]
) -> None:
    sender, url = webhook_sender
    fake.answer_429(times=1, retry_after=0.2)
    markdown = render_markdown(long_digest(2))
    ids = await sender.send_markdown(sender.targets[0], markdown)
    assert fake.rate_limited == 1
    assert [m.content for m in fake.webhook_messages(url)] == render_messages(markdown)
    assert len(set(ids)) == len(ids)


async def test_a_deleted_webhook_raises_chat_gone_and_tells_the_operator(
    fake: FakeDiscord,
    webhook_sender: tuple[DiscordWebhookSender, str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    sender, url = webhook_sender
    fake.delete_webhook(url)
    with caplog.at_level(logging.WARNING), pytest.raises(ChatGone, match="Unknown Webhook"):
        await sender.send_markdown(sender.targets[0], "## 摘要\n内容")
    assert "DISCORD_WEBHOOK_URL" in caplog.text
    assert parse_webhook_url(url).token not in caplog.text


async def test_a_webhook_with_a_wrong_token_is_gone(fake: FakeDiscord) -> None:
    url = fake.add_webhook()
    target = parse_webhook_url(url)
    webhook_id, token = target.chat_id, target.token
    async with fake.session() as session:
        sender = DiscordWebhookSender([url.replace(token, token[::-1])], session=session)
        with pytest.raises(ChatGone, match="401"):
            await sender.send_markdown(webhook_id, "内容")


def test_webhook_urls_in_other_forms_name_the_same_webhook() -> None:
    token = "T" * 68
    plain = parse_webhook_url(f"https://discord.com/api/webhooks/123456789012345678/{token}")
    assert plain.chat_id == "123456789012345678" and plain.thread_id is None
    versioned = parse_webhook_url(
        f"https://discordapp.com/api/v10/webhooks/123456789012345678/{token}/"
    )
    assert versioned == plain
    assert versioned.url == f"https://discord.com/api/webhooks/123456789012345678/{token}"
    thread = parse_webhook_url(plain.url + "?wait=true&thread_id=223456789012345678")
    assert thread.chat_id == "123456789012345678/223456789012345678"
    assert token not in repr(thread)


def test_webhook_settings_give_a_sender_per_url_and_refuse_other_urls() -> None:
    url = "https://discord.com/api/webhooks/123456789012345678/" + "a" * 68
    sender = make_webhook_sender(load_settings(discord_webhook_url=url))
    assert sender is not None and sender.targets == ("123456789012345678",)
    assert make_webhook_sender(load_settings()) is None
    with pytest.raises(ValueError, match="DISCORD_WEBHOOK_URL") as refused:
        make_webhook_sender(load_settings(discord_webhook_url="https://example.com/x/" + "b" * 68))
    assert "b" * 68 not in str(refused.value)


class NoCommands:
    """A service that must not be reached."""

    async def handle(self, *_args: Any, **_kwargs: Any) -> Any:
        raise AssertionError("no command expected")

    async def tracked_repos(self) -> Sequence[str]:
        raise AssertionError("no autocomplete expected")


async def test_a_rejected_bot_token_ends_run_discord_with_login_failure(fake: FakeDiscord) -> None:
    settings = load_settings(discord_bot_token="not-the-token")
    bot = DigestBot(NoCommands(), connector=fake.connector())
    with pytest.raises(discord.LoginFailure):
        await run_discord(settings, NoCommands(), asyncio.Event(), bot=bot)


# --- delivery through the store ----------------------------------------------------------------


class OneDigest:
    """The pipeline's part that delivery and commands use, serving one fixed digest."""

    def __init__(self, digest: Digest, *, delay: float = 0.0) -> None:
        self.digest = digest
        self.delay = delay
        self.asked: list[tuple[date, Sequence[str] | None]] = []

    async def day(self, day: date) -> tuple[Digest, DayActivity]:
        window = day_window(day, "Asia/Shanghai")
        activity = DayActivity(
            day=day, timezone="Asia/Shanghai", window_utc=(window.start, window.end), repos=[]
        )
        return self.digest, activity

    async def digest_for(
        self, day: date, repos: Sequence[str] | None, *, added: Sequence[str] = ()
    ) -> Digest:
        self.asked.append((day, repos))
        await asyncio.sleep(self.delay)
        if day != self.digest.day:
            raise RuntimeError("the model endpoint is down")
        return self.digest

    async def ensure_day(
        self,
        day: date,
        repos: Sequence[str] | None = None,
        *,
        now: datetime | None = None,
        wait: bool = True,
        added: Sequence[str] = (),
    ) -> Digest:
        return await self.digest_for(day, repos, added=added)

    async def has_digest(self, day: date) -> bool:
        return day == self.digest.day

    async def latest_day(self) -> date | None:
        return self.digest.day


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    opened = await Store.open(f"sqlite+aiosqlite:///{tmp_path / 'digest.db'}")
    try:
        yield opened
    finally:
        await opened.close()


async def test_fan_out_delivers_to_webhooks_and_marks_a_deleted_one_inactive(
    fake: FakeDiscord, store: Store
) -> None:
    delivery = pytest.importorskip("bot.delivery")
    alive, deleted = fake.add_webhook(), fake.add_webhook()
    fake.delete_webhook(deleted)
    settings = load_settings()
    async with fake.session() as session:
        sender = DiscordWebhookSender([alive, deleted], session=session)
        chats = await register_webhooks(store, sender, settings)
        assert [c.chat_id for c in chats] == list(sender.targets)
        result = await delivery.fan_out(
            store,
            OneDigest(long_digest(3)),
            {sender.platform: sender},
            DAY,
            worker="test",
            now=NOW,
        )
        assert (result.sent, result.deactivated) == (1, 1)
        gone = await store.get_chat(WEBHOOK_PLATFORM, parse_webhook_url(deleted).chat_id)
        assert gone is not None and not gone.active
        assert len(fake.webhook_messages(alive)) > 1
        # A second run sends nothing again: exactly once per webhook and day, and a deleted
        # webhook is not re-subscribed.
        await register_webhooks(store, sender, settings)
        again = await delivery.fan_out(
            store, OneDigest(long_digest(3)), {sender.platform: sender}, DAY, worker="t", now=NOW
        )
        assert again.sent == 0
        deleted_chat = await store.get_chat(WEBHOOK_PLATFORM, parse_webhook_url(deleted).chat_id)
        assert deleted_chat is not None and not deleted_chat.active


# --- channel delivery through the bot ----------------------------------------------------------


async def test_channel_sender_posts_and_a_channel_without_access_is_gone(
    fake: FakeDiscord,
) -> None:
    settings = load_settings(discord_bot_token=fake.bot_token)
    async with discord_channel_sender(settings, connector=fake.connector()) as sender:
        channel = fake.add_channel()
        ids = await sender.send_markdown(
            str(channel), render_markdown(long_digest(4, " @everyone"))
        )
        posted = fake.channel_messages[channel]
        assert ids == [str(m.id) for m in posted] and len(ids) > 1
        assert all(m.payload["allowed_mentions"] == {"parse": []} for m in posted)
        for access in ("forbidden", "deleted"):
            with pytest.raises(ChatGone):
                await sender.send_markdown(str(fake.add_channel(access)), "## 摘要\n内容")


# --- slash commands through the gateway --------------------------------------------------------


@pytest.fixture
async def github() -> AsyncIterator[FakeGitHub]:
    """GitHub, for `/subscribe owner/name` to check a repository beyond DIGEST_REPOS."""
    async with FakeGitHub() as server:
        server.add_repo("triton-lang/triton")
        yield server


@pytest.fixture
async def running_bot(
    fake: FakeDiscord, store: Store, github: FakeGitHub
) -> AsyncIterator[tuple[FakeDiscord, Store, OneDigest]]:
    service_module = pytest.importorskip("bot.commands")
    settings: Settings = load_settings(
        discord_bot_token=fake.bot_token,
        github_api_url=github.url,
        admin_user_ids=f"discord:{OPERATOR}",
    )
    pipeline = OneDigest(long_digest(), delay=0.3)
    service = service_module.CommandService(settings, store, pipeline, clock=lambda: NOW)
    bot = DigestBot(service, connector=fake.connector(), defer_after=0.1)
    stop = asyncio.Event()
    task = asyncio.create_task(run_discord(settings, service, stop, bot=bot))
    async with asyncio.timeout(5):
        await fake.identified.wait()
    try:
        yield fake, store, pipeline
    finally:
        stop.set()
        await task


async def ask(fake: FakeDiscord, payload: dict[str, Any], count: int = 1) -> list[Any]:
    """Dispatch an interaction and wait until the user sees `count` finished messages."""
    await fake.dispatch_interaction(payload)
    token = payload["token"]

    def answered() -> bool:
        shown = fake.conversation(token)
        return len(shown) >= count and not any(m.loading for m in shown)

    await fake.wait_until(answered)
    return fake.conversation(token)


async def test_bot_registers_every_slash_command_with_repository_autocomplete(
    running_bot: tuple[FakeDiscord, Store, OneDigest],
) -> None:
    fake, _store, _pipeline = running_bot
    commands = {command["name"]: command for command in fake.commands}
    assert set(commands) == {
        "digest",
        "weekly",
        "chart",
        "subscribe",
        "unsubscribe",
        "subscriptions",
        "settime",
        "alerts",
        "watch",
        "unwatch",
        "watches",
        "track",
        "untrack",
        "status",
        "repos",
        "help",
    }
    options = {option["name"]: option for option in commands["digest"]["options"]}
    assert options["repo"]["autocomplete"] and not options["repo"]["required"]
    # Operator commands are hidden from ordinary members (server administrators see them).
    hidden = {name for name, c in commands.items() if c["default_member_permissions"]}
    assert hidden == {"track", "untrack", "status"}
    # discord.py sends the bit set as a number; Discord documents a string: compare as text.
    assert str(commands["status"]["default_member_permissions"]) == ADMINISTRATOR
    assert "date" in options
    assert fake.identify is not None and fake.identify["intents"] == 0


async def test_subscribe_by_a_member_without_manage_channels_is_refused_privately(
    running_bot: tuple[FakeDiscord, Store, OneDigest],
) -> None:
    fake, store, _pipeline = running_bot
    payload = command_interaction("subscribe", {"repos": "vllm"}, permissions=SEND_MESSAGES)
    (shown,) = await ask(fake, payload)
    assert shown.ephemeral and "管理员" in shown.content
    assert await store.get_chat(PLATFORM, payload["channel_id"]) is None


async def test_subscribe_by_a_channel_manager_subscribes_the_channel_through_the_service(
    running_bot: tuple[FakeDiscord, Store, OneDigest],
) -> None:
    fake, store, _pipeline = running_bot
    payload = command_interaction(
        "subscribe", {"repos": "vllm sglang"}, permissions=SEND_MESSAGES | MANAGE_CHANNELS
    )
    (shown,) = await ask(fake, payload)
    assert not shown.ephemeral and "已订阅" in shown.content
    chat = await store.get_chat(PLATFORM, payload["channel_id"])
    assert chat is not None and chat.repos == ("sgl-project/sglang", "vllm-project/vllm")


async def test_a_slow_digest_is_deferred_then_followed_up_in_valid_messages(
    running_bot: tuple[FakeDiscord, Store, OneDigest],
) -> None:
    fake, _store, pipeline = running_bot
    expected = render_messages(render_markdown(pipeline.digest))
    payload = command_interaction("digest", {"date": "2026-02-04"}, guild_id=None)
    shown = await ask(fake, payload, count=len(expected))
    callbacks = fake.payloads("callback")
    assert [c["type"] for c in callbacks] == [5]  # deferred ("thinking…") first
    assert [m.content for m in shown] == expected
    assert not any(m.ephemeral for m in shown)
    for message in fake.payloads("followup"):
        assert message["allowed_mentions"] == {"parse": []}
    assert pipeline.asked == [(DAY, None)]


async def test_a_private_answer_after_a_deferral_replaces_the_public_thinking_message(
    running_bot: tuple[FakeDiscord, Store, OneDigest],
) -> None:
    fake, _store, _pipeline = running_bot
    payload = command_interaction("digest", {"date": "2026-02-03"})  # not archived: generated
    (shown,) = await ask(fake, payload)
    assert [c["type"] for c in fake.payloads("callback")] == [5]
    assert fake.payloads("delete_original") == [{}]
    assert shown.ephemeral and "生成日报失败" in shown.content


async def test_a_bad_date_is_answered_privately_without_deferring(
    running_bot: tuple[FakeDiscord, Store, OneDigest],
) -> None:
    fake, _store, _pipeline = running_bot
    (shown,) = await ask(fake, command_interaction("digest", {"date": "2026-02-30"}))
    assert shown.ephemeral and "不存在" in shown.content
    assert [c["type"] for c in fake.payloads("callback")] == [4]


async def test_autocomplete_interaction_is_answered_with_matching_repositories(
    running_bot: tuple[FakeDiscord, Store, OneDigest],
) -> None:
    fake, _store, _pipeline = running_bot
    payload = command_interaction("digest", {"repo": "flash"}, focused="repo")
    await fake.dispatch_interaction(payload)
    await fake.wait_until(lambda: payload["token"] in fake.autocomplete)
    assert [c["value"] for c in fake.autocomplete[payload["token"]]] == [
        "deepseek-ai/FlashMLA",
        "flashinfer-ai/flashinfer",
        "Dao-AILab/flash-attention",
    ]


async def test_status_answers_an_operator_privately_and_anyone_else_as_an_unknown_command(
    running_bot: tuple[FakeDiscord, Store, OneDigest],
) -> None:
    fake, _store, _pipeline = running_bot
    everyone = SEND_MESSAGES | MANAGE_CHANNELS | int(ADMINISTRATOR)
    payload = command_interaction("status", permissions=everyone, user_id=OPERATOR)
    (shown,) = await ask(fake, payload)
    assert shown.ephemeral and "aiinfra-digest status" in shown.content
    # A server administrator who is not in ADMIN_USER_IDS gets the service's answer to strangers.
    (refused,) = await ask(fake, command_interaction("status", permissions=everyone))
    assert refused.ephemeral and refused.content.startswith("未知命令 /status")
    (in_dm,) = await ask(fake, command_interaction("status", guild_id=None))
    assert in_dm.ephemeral and in_dm.content.startswith("未知命令 /status")


async def test_autocomplete_offers_a_repository_a_channel_added_with_subscribe(
    running_bot: tuple[FakeDiscord, Store, OneDigest],
) -> None:
    fake, store, _pipeline = running_bot

    async def offered(command: str, option: str, typed: str) -> list[str]:
        payload = command_interaction(command, {option: typed}, focused=option)
        await fake.dispatch_interaction(payload)
        await fake.wait_until(lambda: payload["token"] in fake.autocomplete)
        return [choice["value"] for choice in fake.autocomplete[payload["token"]]]

    assert await offered("digest", "repo", "trit") == []
    manager = SEND_MESSAGES | MANAGE_CHANNELS
    payload = command_interaction("subscribe", {"repos": "triton-lang/triton"}, permissions=manager)
    (shown,) = await ask(fake, payload)
    assert "已订阅" in shown.content and "triton-lang/triton" in shown.content
    assert await offered("digest", "repo", "trit") == ["triton-lang/triton"]
    assert await offered("unsubscribe", "repos", "vllm TRI") == ["vllm triton-lang/triton"]
    chat = await store.get_chat(PLATFORM, payload["channel_id"])
    assert chat is not None and chat.repos == ("triton-lang/triton",)


async def test_weekly_with_both_state_and_repos_is_refused_in_one_line_not_half_done(
    running_bot: tuple[FakeDiscord, Store, OneDigest],
) -> None:
    fake, store, _pipeline = running_bot
    manager = SEND_MESSAGES | MANAGE_CHANNELS
    payload = command_interaction("weekly", {"repos": "vllm", "state": "on"}, permissions=manager)
    (shown,) = await ask(fake, payload)
    assert shown.ephemeral and shown.content == WEEKLY_BOTH
    assert await store.get_chat(PLATFORM, payload["channel_id"]) is None


async def test_alerts_repos_reach_the_service_or_are_refused_when_they_cannot(
    running_bot: tuple[FakeDiscord, Store, OneDigest],
) -> None:
    fake, store, _pipeline = running_bot
    manager = SEND_MESSAGES | MANAGE_CHANNELS
    alone = command_interaction("alerts", {"repos": "vllm"}, permissions=manager)
    (shown,) = await ask(fake, alone)
    assert shown.ephemeral and shown.content == ALERTS_REPOS_ALONE
    assert await store.alert_chat(PLATFORM, alone["channel_id"]) is None

    both = command_interaction("alerts", {"state": "on", "repos": "vllm"}, permissions=manager)
    (shown,) = await ask(fake, both)
    assert "vllm-project/vllm" in shown.content
    current = await store.alert_chat(PLATFORM, both["channel_id"])
    assert current is not None and current.repos == ("vllm-project/vllm",)
