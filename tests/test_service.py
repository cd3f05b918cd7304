"""The command service: what each chat command means, on the real Store (SQLite)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import date
from pathlib import Path

import pytest
from service_support import ARCHIVED_DAY, NOW, ArchivePipeline, archive

from bot.commands import (
    PROGRESS_TEXT,
    TRACKED_TTL,
    ChatContext,
    CommandService,
    Reply,
    echo,
)
from bot.pipeline import Pipeline
from bot.settings import DEFAULT_REPOS, Settings
from bot.store import Store
from collectors.github import GitHubClient
from summarizer.compose import Composer


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    """A fresh SQLite store with yesterday's digest archived."""
    opened = await Store.open(f"sqlite+aiosqlite:///{tmp_path / 'bot.db'}")
    await archive(opened, ARCHIVED_DAY)
    yield opened
    await opened.close()


@pytest.fixture
def pipeline(store: Store) -> ArchivePipeline:
    return ArchivePipeline(store)


@pytest.fixture
def service(store: Store, pipeline: ArchivePipeline) -> CommandService:
    return CommandService(Settings(), store, pipeline, clock=lambda: NOW)


def private(chat_id: str = "42") -> ChatContext:
    async def never_asked() -> bool:
        raise AssertionError("a private chat needs no administrator check")

    return ChatContext("telegram", chat_id, "private", chat_id, never_asked)


def group(user_id: str, *, admin: bool, chat_id: str = "-1001") -> ChatContext:
    async def is_admin() -> bool:
        return admin

    return ChatContext("telegram", chat_id, "group", user_id, is_admin)


async def ask(service: CommandService, text: str, ctx: ChatContext | None = None) -> Reply:
    command, _, args = text.partition(" ")
    return await service.handle(ctx or private(), command, args)


def assert_one_line_usage(reply: Reply) -> None:
    assert "\n" not in reply.text
    assert len(reply.text) < 200
    assert "Traceback" not in reply.text
    assert reply.ephemeral


# -- /digest ---------------------------------------------------------------------------------


async def test_digest_of_a_repository_by_short_name_is_its_section_with_heading_and_date(
    service: CommandService,
) -> None:
    reply = await ask(service, "/digest vllm")
    assert reply.text.startswith("### vllm-project/vllm（2026-02-04）\n")
    assert "https://github.com/vllm-project/vllm/pull/1001" in reply.text
    assert "sglang" not in reply.text


@pytest.mark.parametrize("name", ["VLLM", "vllm-project/vllm", "VLLM-Project/VLLM"])
async def test_repository_names_resolve_case_insensitively_by_full_or_short_name(
    service: CommandService, name: str
) -> None:
    reply = await ask(service, f"/digest {name}")
    assert reply.text.startswith("### vllm-project/vllm（")


async def test_digest_takes_repository_and_day_in_either_order(service: CommandService) -> None:
    first = await ask(service, "/digest FlashInfer 2026-02-04")
    second = await ask(service, "/digest 2026-02-04 flashinfer")
    assert first == second
    assert first.text.startswith("### flashinfer-ai/flashinfer（2026-02-04）")


async def test_plain_digest_is_the_whole_latest_digest(service: CommandService) -> None:
    reply = await ask(service, "/digest")
    assert reply.text.startswith("今日的 AI Infra 的新闻如下。（2026-02-04）")
    assert "### deepseek-ai/DeepGEMM" in reply.text
    assert "### NVIDIA/cutile-python" in reply.text
    assert not reply.ephemeral


async def test_plain_digest_follows_the_chats_subscription(
    service: CommandService, pipeline: ArchivePipeline
) -> None:
    await ask(service, "/subscribe sglang vllm")
    reply = await ask(service, "/digest")
    assert pipeline.calls[-1] == (ARCHIVED_DAY, ("sgl-project/sglang", "vllm-project/vllm"))
    assert "### vllm-project/vllm" in reply.text
    assert "### NVIDIA/cutlass" not in reply.text


async def test_digest_of_a_day_not_archived_says_generating_then_answers(
    service: CommandService, pipeline: ArchivePipeline
) -> None:
    notes: list[str] = []

    async def progress(text: str) -> None:
        notes.append(text)

    reply = await service.handle(private(), "digest", "vllm 2026-02-01", progress)
    assert notes == [PROGRESS_TEXT]
    assert reply.text.startswith("### vllm-project/vllm（2026-02-01）")
    assert pipeline.generated == [date(2026, 2, 1)]


async def test_an_archived_day_needs_no_progress_note(service: CommandService) -> None:
    notes: list[str] = []

    async def progress(text: str) -> None:
        notes.append(text)

    await service.handle(private(), "digest", "vllm", progress)
    assert notes == []


async def test_concurrent_requests_for_a_missing_day_share_one_generation(
    service: CommandService, pipeline: ArchivePipeline
) -> None:
    pipeline.release.clear()
    asks = [
        asyncio.create_task(service.handle(private(str(chat)), "digest", "2026-02-02"))
        for chat in range(5)
    ]
    await asyncio.sleep(0)
    pipeline.release.set()
    replies = await asyncio.gather(*asks)
    assert pipeline.generated == [date(2026, 2, 2)]
    assert {r.text for r in replies} == {replies[0].text}


async def test_a_failed_generation_is_a_short_chinese_error(
    service: CommandService, pipeline: ArchivePipeline
) -> None:
    pipeline.fail = True
    reply = await ask(service, "/digest 2026-02-03")
    assert reply.text == "生成日报失败，请稍后再试。"


async def test_path_like_junk_gets_a_one_line_usage(service: CommandService) -> None:
    reply = await ask(service, "/digest ../../etc")
    assert_one_line_usage(reply)
    assert "用法：/digest" in reply.text
    assert "“../../etc”" in reply.text  # echoed literally (dots are not Markdown)


async def test_an_impossible_date_gets_a_one_line_usage(service: CommandService) -> None:
    reply = await ask(service, "/digest vllm 2026-13-45")
    assert_one_line_usage(reply)
    assert "不存在" in reply.text


@pytest.mark.parametrize("day", ["2026-02-05", "2026-02-06", "2999-01-01"])
async def test_today_and_future_days_get_a_one_line_usage(
    service: CommandService, pipeline: ArchivePipeline, day: str
) -> None:
    reply = await ask(service, f"/digest {day}")
    assert_one_line_usage(reply)
    assert "还没有结束" in reply.text
    assert pipeline.generated == []


async def test_a_day_before_github_is_not_generated_on_demand(
    service: CommandService, pipeline: ArchivePipeline
) -> None:
    # Any day since a repository's creation may be generated (tests/test_digest_any_day.py).
    reply = await ask(service, "/digest 2001-01-01")
    assert_one_line_usage(reply)
    assert pipeline.generated == []


async def test_a_ten_thousand_character_command_gets_a_short_escaped_answer(
    service: CommandService,
) -> None:
    reply = await ask(service, "/digest " + "*[x](y)" * 1430)
    assert_one_line_usage(reply)
    assert "输入过长" in reply.text
    assert "[x](y)" not in reply.text


async def test_a_ten_thousand_character_command_name_is_refused_too(
    service: CommandService,
) -> None:
    reply = await service.handle(private(), "d" * 10_000, "")
    assert_one_line_usage(reply)


async def test_unknown_repository_gets_did_you_mean(service: CommandService) -> None:
    reply = await ask(service, "/digest vlm")
    assert_one_line_usage(reply)
    assert "你是不是想找" in reply.text
    assert "vllm-project/vllm" in reply.text


async def test_two_days_are_refused(service: CommandService) -> None:
    reply = await ask(service, "/digest 2026-02-03 2026-02-04")
    assert_one_line_usage(reply)


async def test_several_repositories_give_their_sections(service: CommandService) -> None:
    reply = await ask(service, "/digest vllm sglang")
    assert reply.text.index("### sgl-project/sglang") < reply.text.index("### vllm-project/vllm")


async def test_an_archived_answer_is_served_from_the_rendered_cache(
    service: CommandService,
) -> None:
    first = await ask(service, "/digest vllm")
    second = await ask(service, "/digest vllm")
    assert first.text is second.text


# -- subscriptions ---------------------------------------------------------------------------


async def test_subscribe_without_names_follows_everything(
    service: CommandService, store: Store
) -> None:
    reply = await ask(service, "/subscribe")
    assert "全部 8 个" in reply.text and "09:00" in reply.text
    chat = await store.get_chat("telegram", "42")
    assert chat is not None and chat.active and chat.repos is None


async def test_subscribe_nosuch_repo_is_refused_and_changes_nothing(
    service: CommandService, store: Store
) -> None:
    reply = await ask(service, "/subscribe vllm nosuch/repo")
    assert_one_line_usage(reply)
    assert "nosuch/repo" in reply.text
    assert await store.get_chat("telegram", "42") is None


async def test_named_subscriptions_add_up(service: CommandService, store: Store) -> None:
    await ask(service, "/subscribe vllm")
    reply = await ask(service, "/subscribe FlashMLA")
    chat = await store.get_chat("telegram", "42")
    assert chat is not None
    assert chat.repos == ("vllm-project/vllm", "deepseek-ai/FlashMLA")
    assert "deepseek-ai/FlashMLA" in reply.text


async def test_unsubscribing_one_repository_from_all_keeps_the_rest(
    service: CommandService, store: Store
) -> None:
    await ask(service, "/subscribe")
    reply = await ask(service, "/unsubscribe cutlass")
    chat = await store.get_chat("telegram", "42")
    assert chat is not None and chat.active and chat.repos is not None
    assert "NVIDIA/cutlass" not in chat.repos and len(chat.repos) == 7
    assert "已更新订阅" in reply.text


async def test_unsubscribe_without_names_stops_everything(
    service: CommandService, store: Store
) -> None:
    await ask(service, "/subscribe vllm")
    reply = await ask(service, "/unsubscribe")
    chat = await store.get_chat("telegram", "42")
    assert chat is not None and not chat.active
    assert reply.text == "已取消本聊天的全部订阅。"
    assert (await ask(service, "/subscriptions")).text.startswith("本聊天未订阅")


async def test_unsubscribing_the_last_named_repository_stops_the_chat(
    service: CommandService, store: Store
) -> None:
    await ask(service, "/subscribe vllm")
    await ask(service, "/unsubscribe vllm")
    chat = await store.get_chat("telegram", "42")
    assert chat is not None and not chat.active


async def test_subscriptions_says_what_and_when(service: CommandService) -> None:
    await ask(service, "/subscribe sglang")
    await ask(service, "/settime 7:30")
    reply = await ask(service, "/subscriptions")
    assert reply.text == "本聊天订阅：sgl-project/sglang；每天 07:30（Asia/Shanghai）推送。"


async def test_settime_out_of_range_is_refused(service: CommandService, store: Store) -> None:
    await ask(service, "/subscribe")
    reply = await ask(service, "/settime 25:99")
    assert_one_line_usage(reply)
    assert "/settime HH:MM" in reply.text
    chat = await store.get_chat("telegram", "42")
    assert chat is not None and chat.post_time == "09:00"


async def test_settime_before_subscribing_asks_to_subscribe(service: CommandService) -> None:
    reply = await ask(service, "/settime 08:00")
    assert "/subscribe" in reply.text


async def test_resubscribing_keeps_the_chosen_time(service: CommandService, store: Store) -> None:
    await ask(service, "/subscribe")
    await ask(service, "/settime 21:15")
    await ask(service, "/unsubscribe")
    await ask(service, "/subscribe")
    chat = await store.get_chat("telegram", "42")
    assert chat is not None and chat.active and chat.post_time == "21:15"


# -- groups ----------------------------------------------------------------------------------


async def test_a_group_member_who_is_not_admin_is_politely_refused(
    service: CommandService, store: Store
) -> None:
    for command in ("/subscribe", "/unsubscribe", "/settime 08:00"):
        reply = await ask(service, command, group("7", admin=False))
        assert reply.text == "抱歉，只有本群管理员可以更改订阅。"
    assert await store.get_chat("telegram", "-1001") is None


async def test_a_group_admin_changes_the_subscription(
    service: CommandService, store: Store
) -> None:
    reply = await ask(service, "/subscribe vllm", group("8", admin=True))
    assert reply.text.startswith("已订阅：vllm-project/vllm")
    chat = await store.get_chat("telegram", "-1001")
    assert chat is not None and chat.subscribed_by == "8"


async def test_anyone_in_a_group_may_read(service: CommandService) -> None:
    reply = await ask(service, "/digest vllm", group("7", admin=False))
    assert reply.text.startswith("### vllm-project/vllm")
    reply = await ask(service, "/subscriptions", group("7", admin=False))
    assert reply.text.startswith("本聊天未订阅")


# -- the rest --------------------------------------------------------------------------------


async def test_repos_lists_full_and_short_names(service: CommandService) -> None:
    reply = await ask(service, "/repos")
    assert "- `vllm-project/vllm`（vllm）" in reply.text
    assert reply.text.count("\n- ") == 8


@pytest.mark.parametrize("command", ["/help", "/start", "/HELP@AIInfraDigestBot"])
async def test_help_and_start_explain_every_command(service: CommandService, command: str) -> None:
    reply = await ask(service, command)
    for name in ("/digest", "/subscribe", "/unsubscribe", "/subscriptions", "/settime", "/repos"):
        assert name in reply.text


async def test_an_unknown_command_points_to_help(service: CommandService) -> None:
    reply = await ask(service, "/frobnicate")
    assert_one_line_usage(reply)
    assert "/help" in reply.text


async def test_the_command_menu_lists_the_public_commands(service: CommandService) -> None:
    names = [name for name, _ in service.commands]
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


def test_echo_truncates_escapes_markdown_and_neutralises_mentions() -> None:
    shown = echo("@everyone **bold** [x](javascript:alert(1))\n" + "z" * 100)
    assert shown.startswith("@\u200beveryone \\*\\*bold\\*\\* \\[x\\]")
    assert shown.endswith("…")
    assert "\n" not in shown


async def test_with_the_real_pipeline_an_archived_day_is_answered_without_collecting(
    store: Store,
) -> None:
    settings = Settings()
    github = GitHubClient("http://127.0.0.1:9", None, None)  # nothing listens there
    try:
        pipeline = Pipeline(settings, store, github=github, composer=Composer(None, None))
        service = CommandService(settings, store, pipeline, clock=lambda: NOW)
        first = await ask(service, "/digest vllm")
        second = await ask(service, "/digest vllm")
        whole = await ask(service, "/digest 2026-02-04")
    finally:
        await github.aclose()
    assert first.text.startswith("### vllm-project/vllm（2026-02-04）")
    assert second.text is first.text  # rendered once, then served from the cache
    assert whole.text.startswith("今日的 AI Infra 的新闻如下。（2026-02-04）")
    assert github.stats.requests == 0


# -- the tracked set, for autocomplete ---------------------------------------------------------


async def test_tracked_repos_include_added_ones_and_are_read_again_after_a_while(
    store: Store, pipeline: ArchivePipeline
) -> None:
    now = [NOW]
    service = CommandService(Settings(), store, pipeline, clock=lambda: now[0])
    assert await service.tracked_repos() == tuple(DEFAULT_REPOS)
    # Another instance pins a repository: this one sees it once its brief cache runs out.
    await store.track_repo("triton-lang/triton", by="telegram:1", pinned=True)
    assert "triton-lang/triton" not in await service.tracked_repos()
    now[0] += TRACKED_TTL
    assert await service.tracked_repos() == (*DEFAULT_REPOS, "triton-lang/triton")
