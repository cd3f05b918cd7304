"""Keyword watches: matching a day's items, the `/watch` commands, and the digest's 关注 section.

Matching is pure (summarizer/watch.py); the commands run on the real Store (SQLite); the section
is delivered through the real TelegramSender to the Bot API stand-in, which checks the entities.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fake_telegram import FakeTelegram
from service_support import NOW, ArchivePipeline
from telegram import Bot

from bot.commands import ChatContext, CommandService, Reply
from bot.delivery import fan_out
from bot.pipeline import Pipeline
from bot.platforms.base import Sender
from bot.platforms.telegram import TelegramSender
from bot.settings import Settings
from bot.store import Store
from collectors.activity import Commit, DayActivity, Issue, PullRequest, Release, RepoActivity
from collectors.github import GitHubClient
from collectors.sample import load_sample
from summarizer.compose import Composer
from summarizer.digest import Digest, Section, render_markdown
from summarizer.watch import (
    WatchWordError,
    match_watches,
    mentions,
    parse_words,
    watch_section,
    with_watch_section,
)

DAY = date(2026, 2, 4)
START = datetime(2026, 2, 3, 16, 0, tzinfo=UTC)
VLLM = "vllm-project/vllm"
CUTLASS = "NVIDIA/cutlass"
GH = "https://github.com"


def at(hours: float) -> datetime:
    return START + timedelta(hours=hours)


def pull(
    repo: str, number: int, title: str, *, labels: tuple[str, ...] = (), body: str = ""
) -> PullRequest:
    return PullRequest(
        number=number,
        title=title,
        url=f"{GH}/{repo}/pull/{number}",
        labels=list(labels),
        body=body,
        created_at=at(1),
        merged_at=at(2),
    )


def issue(
    repo: str, number: int, title: str, *, body: str = "", labels: tuple[str, ...] = ()
) -> Issue:
    return Issue(
        number=number,
        title=title,
        url=f"{GH}/{repo}/issues/{number}",
        created_at=at(3),
        labels=list(labels),
        body=body,
    )


def loose_commit(repo: str, sha: str, title: str, *, pull_number: int | None = None) -> Commit:
    return Commit(
        sha=sha * 40,
        title=title,
        url=f"{GH}/{repo}/commit/{sha * 40}",
        committed_at=at(4),
        pull_number=pull_number,
        message=title,
    )


def fp8_day() -> DayActivity:
    """A day where exactly five items mention FP8 — one of them only in a label."""
    vllm = RepoActivity(
        repo=VLLM,
        releases=[
            Release(
                tag_name="v0.11.0",
                name="v0.11.0",
                published_at=at(5),
                url=f"{GH}/{VLLM}/releases/tag/v0.11.0",
                body="Highlights: FP8 KV cache on Blackwell.",
            )
        ],
        merged_pulls=[
            pull(VLLM, 101, "[Kernel] Add FP8 MoE kernel"),
            pull(VLLM, 102, "Refactor the scheduler", labels=("fp8", "ready")),
            pull(VLLM, 103, "Fix URL parsing", body="Nothing about formats."),
        ],
        opened_issues=[
            issue(VLLM, 201, "Crash on H100", body="Only when loading fp8_e4m3 weights."),
            issue(VLLM, 202, "FP80 is not a real format"),
        ],
        commits=[
            loose_commit(VLLM, "a", "[Kernel] Add FP8 MoE kernel (#101)", pull_number=101),
            loose_commit(VLLM, "b", "Bump W8A8-FP8 test tolerances"),
            loose_commit(VLLM, "c", "Docs: typo"),
        ],
    )
    cutlass = RepoActivity(
        repo=CUTLASS,
        merged_pulls=[pull(CUTLASS, 301, "Blackwell grouped GEMM", body="Uses TMA multicast.")],
    )
    return DayActivity(
        day=DAY, timezone="Asia/Shanghai", window_utc=(START, at(24)), repos=[vllm, cutlass]
    )


# -- matching ----------------------------------------------------------------------------------


def test_a_watch_on_fp8_lists_exactly_the_matching_items_including_a_label_only_match() -> None:
    hits = match_watches(fp8_day(), ["FP8"])
    assert [(h.repo, h.kind, h.ref) for h in hits] == [
        (VLLM, "release", "v0.11.0"),
        (VLLM, "pr", "#101"),
        (VLLM, "pr", "#102"),
        (VLLM, "issue", "#201"),
        (VLLM, "commit", "b" * 7),
    ]
    by_ref = {h.ref: h for h in hits}
    assert by_ref["#102"].fields == ("label",)
    assert by_ref["#101"].fields == ("title",)
    assert by_ref["#201"].fields == ("body",)
    assert all(h.words == ("FP8",) for h in hits)


def test_several_words_are_shown_per_item_in_the_chats_order() -> None:
    hits = match_watches(fp8_day(), ["Blackwell", "fp8"])
    release = next(h for h in hits if h.kind == "release")
    assert release.words == ("Blackwell", "fp8")
    assert [h.ref for h in hits if h.repo == CUTLASS] == ["#301"]


@pytest.mark.parametrize(
    ("word", "text", "expected"),
    [
        ("FP8", "fp8_gemm kernels", True),
        ("FP8", "W8A8-FP8 path", True),
        ("MoE", "FusedMoE layer", True),
        ("fp8", "FP80 format", False),
        ("RL", "Fix the URL", False),
        ("moe", "remove dead code", False),
        ("Blackwell", "blackwell-only path", True),
        ("KV cache", "the kv\n cache grows", True),
        ("注意力", "优化注意力内核", True),
    ],
)
def test_short_words_match_as_tokens_and_longer_words_anywhere(
    word: str, text: str, expected: bool
) -> None:
    assert mentions(word, text) is expected


def test_watch_words_parse_quotes_and_drop_repeats() -> None:
    assert parse_words('FP8 "MoE" Blackwell “flash  attention” fp8 ""') == [
        "FP8",
        "MoE",
        "Blackwell",
        "flash attention",
    ]
    with pytest.raises(WatchWordError, match="64"):
        parse_words("x" * 65)


def test_the_section_links_each_item_and_makes_titles_harmless() -> None:
    activity = fp8_day()
    evil = RepoActivity(
        repo="o/r",
        opened_issues=[
            issue("o/r", 9, "FP8 @everyone <b>now</b> [click](https://evil.example)"),
        ],
    )
    day = activity.model_copy(update={"repos": [*activity.repos, evil]})
    text = watch_section(match_watches(day, ["FP8"]), ["FP8"])
    assert text.startswith("关注词 `FP8`：今天有 6 条匹配。")
    assert f"[{VLLM} PR #102]({GH}/{VLLM}/pull/102)" in text
    assert "匹配 `FP8`（标签）" in text
    assert "@\u200beveryone" in text and "<b>" not in text and "evil.example" not in text


def test_no_match_still_says_what_is_watched() -> None:
    text = watch_section(match_watches(fp8_day(), ["Hopper"]), ["Hopper"])
    assert text == "关注词 `Hopper` 今天没有匹配的动态。"


# -- commands ----------------------------------------------------------------------------------


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    opened = await Store.open(f"sqlite+aiosqlite:///{tmp_path / 'bot.db'}")
    yield opened
    await opened.close()


@pytest.fixture
def service(store: Store) -> CommandService:
    return CommandService(Settings(), store, ArchivePipeline(store), clock=lambda: NOW)


def private(chat_id: str = "42") -> ChatContext:
    async def never_asked() -> bool:
        raise AssertionError("a private chat needs no administrator check")

    return ChatContext("telegram", chat_id, "private", chat_id, never_asked)


def member(chat_id: str = "-100") -> ChatContext:
    async def not_admin() -> bool:
        return False

    return ChatContext("telegram", chat_id, "group", "7", not_admin)


async def ask(service: CommandService, text: str, ctx: ChatContext | None = None) -> Reply:
    command, _, args = text.partition(" ")
    return await service.handle(ctx or private(), command, args)


def assert_refused_in_one_line(reply: Reply) -> None:
    assert reply.ephemeral
    assert "\n" not in reply.text and len(reply.text) < 200


async def test_watch_adds_words_and_watches_lists_them(
    service: CommandService, store: Store
) -> None:
    reply = await ask(service, '/watch FP8 "MoE" Blackwell')
    assert "`FP8`、`MoE`、`Blackwell`" in reply.text and "共关注 3 个词" in reply.text
    assert await store.watches_of("telegram", "42") == ("FP8", "MoE", "Blackwell")
    again = await ask(service, "/watch moe Hopper")
    assert "`Hopper`" in again.text and "已在关注：`MoE`" in again.text
    listed = await ask(service, "/watches")
    assert listed.text == "本聊天关注的词（4/20）：`FP8`、`MoE`、`Blackwell`、`Hopper`"


async def test_watch_with_21_words_is_refused_clearly(
    service: CommandService, store: Store
) -> None:
    reply = await ask(service, "/watch " + " ".join(f"w{i}" for i in range(21)))
    assert_refused_in_one_line(reply)
    assert "最多关注 20 个词" in reply.text and "21" in reply.text
    assert await store.watches_of("telegram", "42") == ()


async def test_watch_with_a_500_character_word_is_refused_clearly(
    service: CommandService, store: Store
) -> None:
    reply = await ask(service, "/watch " + "x" * 500)
    assert_refused_in_one_line(reply)
    assert "过长" in reply.text
    word_too_long = await ask(service, "/watch FP8 " + "y" * 65)
    assert_refused_in_one_line(word_too_long)
    assert "最多 64 个字符" in word_too_long.text
    assert await store.watches_of("telegram", "42") == ()


async def test_a_chat_cannot_go_beyond_20_watches_over_several_commands(
    service: CommandService, store: Store
) -> None:
    await ask(service, "/watch " + " ".join(f"w{i}" for i in range(18)))
    reply = await ask(service, "/watch a b c")
    assert_refused_in_one_line(reply)
    assert "18" in reply.text and "20" in reply.text
    assert len(await store.watches_of("telegram", "42")) == 18
    assert "共关注 20 个词" in (await ask(service, "/watch a b")).text


async def test_unwatch_removes_words_in_any_case(service: CommandService, store: Store) -> None:
    await ask(service, "/watch FP8 MoE")
    reply = await ask(service, "/unwatch fp8")
    assert reply.text == "已取消关注：`FP8`；还剩 1 个。"
    assert await store.watches_of("telegram", "42") == ("MoE",)
    assert_refused_in_one_line(await ask(service, "/unwatch Hopper"))


async def test_in_a_group_only_administrators_change_watches(
    service: CommandService, store: Store
) -> None:
    reply = await ask(service, "/watch FP8", member())
    assert reply.ephemeral and "管理员" in reply.text
    assert await store.watches_of("telegram", "-100") == ()
    assert "没有关注" in (await ask(service, "/watches", member())).text


# -- the daily digest's 关注 section -------------------------------------------------------------


def test_the_section_comes_after_the_repositories_and_before_the_conclusion() -> None:
    activity = fp8_day()
    sections = [
        Section(repo=r.repo, markdown="……", written_by="structured") for r in activity.repos
    ]
    digest = Digest(day=DAY, sections=sections, summary="摘要。", conclusion="总结。")
    text = render_markdown(with_watch_section(digest, activity, ["FP8"]))
    assert text.index(f"### {CUTLASS}") < text.index("### 关注") < text.index("## 总结")
    assert with_watch_section(digest, activity, []) is digest


async def test_the_daily_post_of_a_watching_chat_has_a_section_listing_the_matches(
    store: Store,
) -> None:
    activity = fp8_day()
    settings = Settings(digest_repos=[VLLM, CUTLASS])
    await store.save_digest(await Composer(None, None).compose(activity, [VLLM, CUTLASS]), activity)
    for chat in ("1", "2"):
        await store.subscribe(
            "telegram", chat, None, by=None, post_time="09:00", timezone="Asia/Shanghai"
        )
    await store.add_watches("telegram", "1", ["FP8", "Hopper"], limit=20)
    async with FakeTelegram() as telegram, GitHubClient("http://127.0.0.1:9", None, None) as github:
        pipeline = Pipeline(settings, store, github=github, composer=Composer(None, None))
        async with Bot(telegram.token, base_url=f"{telegram.url}/bot") as bot:
            sender = TelegramSender(bot)
            result = await fan_out(
                store, pipeline, {"telegram": sender}, DAY, worker="w", now=datetime.now(UTC)
            )
    assert result.sent == 2 and telegram.rejected == []
    watching = "\n".join(m.plain for m in telegram.messages_to("1"))
    other = "\n".join(m.plain for m in telegram.messages_to("2"))
    assert "关注" in watching and "今天有 5 条匹配" in watching
    assert f"{VLLM} PR #102" in watching and "匹配 FP8（标签）" in watching
    assert watching.index("关注词") < watching.index("总结")
    assert "关注词" not in other


# -- /digest shows the chat's watches -----------------------------------------------------------

SAMPLE_DAY = date(2026, 1, 15)  # the bundled sample day
SAMPLE_NEXT_MORNING = datetime(2026, 1, 16, 2, 0, tzinfo=UTC)  # 10:00 in Shanghai


class MarkdownRecorder(Sender):
    """A platform that keeps the Markdown of each daily post it is handed (one message)."""

    platform = "telegram"
    message_limit = 1_000_000
    rate_per_second = 1000.0

    def __init__(self) -> None:
        super().__init__()
        self.posts: dict[str, str] = {}

    def render(self, markdown: str) -> list[str]:
        """The post as one message."""
        return [markdown]

    async def send_part(self, chat_id: str, part: Any, *, reply_to: str | None = None) -> str:
        """Record the post; one message id per chat."""
        self.posts[chat_id] = str(part)
        return chat_id


async def test_digest_of_a_watching_chat_has_the_same_section_as_its_daily_post(
    store: Store,
) -> None:
    activity = load_sample()
    settings = Settings()
    repos = [r.repo for r in activity.repos]
    await store.save_digest(await Composer(None, None).compose(activity, repos), activity)
    async with GitHubClient("http://127.0.0.1:9", None, None) as github:
        pipeline = Pipeline(settings, store, github=github, composer=Composer(None, None))
        service = CommandService(settings, store, pipeline, clock=lambda: SAMPLE_NEXT_MORNING)
        await ask(service, "/subscribe")
        await ask(service, '/watch Blackwell "no such word"')
        latest = await ask(service, "/digest")
        of_the_day = await ask(service, "/digest 2026-01-15")
        one_repo = await ask(service, "/digest vllm")
        elsewhere = await ask(service, "/digest", private("43"))
        recorder = MarkdownRecorder()
        await fan_out(
            store, pipeline, {"telegram": recorder}, SAMPLE_DAY, worker="w", now=SAMPLE_NEXT_MORNING
        )
    text = latest.text
    assert "### 关注" in text and "今天有 3 条匹配" in text
    assert f"({GH}/{VLLM}/pull/30412)" in text and "匹配 `Blackwell`" in text
    assert text.index("### NVIDIA/cutile-python") < text.index("### 关注") < text.index("## 总结")
    assert text == recorder.posts["42"]  # exactly what the chat's daily post says
    assert of_the_day.text == text
    assert "关注" not in one_repo.text  # a single repository's section stays as it is
    assert "### 关注" not in elsewhere.text  # a chat without watches
