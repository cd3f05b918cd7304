"""Any repository, and release-alert opt-ins, through the command service.

`/subscribe owner/name` asks the GitHub stand-in (real HTTP) whether the repository exists and is
public; the store is real (SQLite).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from fake_github import FakeGitHub
from service_support import NOW, ArchivePipeline

from bot.commands import ChatContext, CommandService, Reply
from bot.pipeline import Pipeline
from bot.settings import DEFAULT_REPOS, Settings
from bot.store import Store
from bot.tracking import RepoChecker, tracked_set
from collectors.github import GitHubClient
from summarizer.compose import Composer

ADMIN = "telegram:777"


@pytest.fixture
async def github() -> AsyncIterator[FakeGitHub]:
    async with FakeGitHub() as fake:
        fake.add_repo("InternLM/lmdeploy")
        fake.add_repo("NVIDIA/TensorRT-LLM")
        fake.add_repo("triton-lang/triton")
        fake.add_repo("acme/secret").info["private"] = True
        yield fake


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    opened = await Store.open(f"sqlite+aiosqlite:///{tmp_path / 'bot.db'}")
    yield opened
    await opened.close()


def make_service(store: Store, github: FakeGitHub, **settings: object) -> CommandService:
    configured = Settings(github_api_url=github.url, admin_user_ids=[ADMIN], **settings)  # type: ignore[arg-type]
    return CommandService(configured, store, ArchivePipeline(store), clock=lambda: NOW)


@pytest.fixture
def service(store: Store, github: FakeGitHub) -> CommandService:
    return make_service(store, github)


def private(chat_id: str = "42", user_id: str | None = None) -> ChatContext:
    async def never_asked() -> bool:
        raise AssertionError("a private chat needs no administrator check")

    return ChatContext("telegram", chat_id, "private", user_id or chat_id, never_asked)


def member(chat_id: str = "-100") -> ChatContext:
    async def not_admin() -> bool:
        return False

    return ChatContext("telegram", chat_id, "group", "5", not_admin)


async def ask(service: CommandService, text: str, ctx: ChatContext | None = None) -> Reply:
    command, _, args = text.partition(" ")
    return await service.handle(ctx or private(), command, args)


def assert_refused_in_one_line(reply: Reply) -> None:
    assert reply.ephemeral
    assert "\n" not in reply.text and len(reply.text) < 200


def repo_requests(github: FakeGitHub) -> list[str]:
    return [r.path for r in github.requests if r.path.startswith("/repos/")]


# -- /subscribe owner/name -----------------------------------------------------------------------


async def test_subscribing_to_a_public_repository_adds_it_to_the_tracked_set(
    service: CommandService, store: Store, github: FakeGitHub
) -> None:
    reply = await ask(service, "/subscribe internlm/LMDeploy vllm")
    assert reply.text.startswith("已订阅：vllm-project/vllm、InternLM/lmdeploy；")
    assert "新加入跟踪：`InternLM/lmdeploy`" in reply.text
    chat = await store.get_chat("telegram", "42")
    assert chat is not None and chat.repos == ("vllm-project/vllm", "InternLM/lmdeploy")
    assert await tracked_set(store, DEFAULT_REPOS) == [*DEFAULT_REPOS, "InternLM/lmdeploy"]
    listing = await ask(service, "/repos")
    assert "`InternLM/lmdeploy`（lmdeploy）" in listing.text
    digest = await ask(service, "/digest lmdeploy 2026-02-04")
    assert "lmdeploy" in digest.text  # the short name resolves now
    assert repo_requests(github) == ["/repos/internlm/LMDeploy"]


async def test_the_pipeline_collects_a_followed_repository_until_nobody_follows_it(
    service: CommandService, store: Store
) -> None:
    settings = Settings()
    async with GitHubClient("http://127.0.0.1:9", None, None) as client:
        pipeline = Pipeline(settings, store, github=client, composer=Composer(None, None))
        await ask(service, "/subscribe InternLM/lmdeploy")
        assert await pipeline.collected_repos() == [*DEFAULT_REPOS, "InternLM/lmdeploy"]
        assert await pipeline.repos() == list(DEFAULT_REPOS)  # the shared set: not in it
        await ask(service, "/unsubscribe lmdeploy")
        assert await pipeline.collected_repos() == list(DEFAULT_REPOS)


async def test_a_chat_on_all_that_adds_a_repository_keeps_it_until_it_drops_it(
    service: CommandService, store: Store
) -> None:
    await ask(service, "/subscribe")
    reply = await ask(service, "/subscribe InternLM/lmdeploy")
    assert reply.text.startswith("已订阅：全部 8 个跟踪的仓库，以及本聊天添加的 InternLM/lmdeploy")
    chat = await store.get_chat("telegram", "42")
    assert chat is not None and chat.repos is None  # still "all", naming nothing
    assert "InternLM/lmdeploy" in await tracked_set(store, DEFAULT_REPOS)
    dropped = await ask(service, "/unsubscribe lmdeploy")
    assert "InternLM/lmdeploy" not in dropped.text
    assert await tracked_set(store, DEFAULT_REPOS) == list(DEFAULT_REPOS)
    await ask(service, "/unsubscribe")
    await ask(service, "/subscribe")  # back on "all": what it dropped stays dropped
    assert await tracked_set(store, DEFAULT_REPOS) == list(DEFAULT_REPOS)


async def test_alerts_on_all_keep_an_added_repository_polled_until_turned_off(
    service: CommandService, store: Store
) -> None:
    await ask(service, "/alerts on")
    await ask(service, "/alerts on NVIDIA/TensorRT-LLM")
    assert "NVIDIA/TensorRT-LLM" in await tracked_set(store, DEFAULT_REPOS)
    await ask(service, "/alerts off")
    assert await tracked_set(store, DEFAULT_REPOS) == list(DEFAULT_REPOS)


async def test_subscribing_to_a_missing_repository_gets_a_clear_answer(
    service: CommandService, store: Store
) -> None:
    reply = await ask(service, "/subscribe nosuch/repo")
    assert_refused_in_one_line(reply)
    assert "`nosuch/repo` 不存在或为私有仓库" in reply.text
    assert await store.get_chat("telegram", "42") is None
    assert await store.tracked_repos() == []


async def test_subscribing_to_a_private_repository_gets_a_clear_answer(
    service: CommandService, store: Store
) -> None:
    reply = await ask(service, "/subscribe acme/secret")
    assert_refused_in_one_line(reply)
    assert "私有仓库" in reply.text and "公开仓库" in reply.text
    assert await store.tracked_repos() == []


async def test_a_renamed_repository_is_answered_with_its_new_name(
    service: CommandService, store: Store, github: FakeGitHub
) -> None:
    github.fail(
        "/repos/oldorg/lmdeploy",
        301,
        body={"message": "Moved Permanently", "url": f"{github.url}/repos/InternLM/lmdeploy"},
        headers={"Location": f"{github.url}/repos/InternLM/lmdeploy"},
    )
    reply = await ask(service, "/subscribe oldorg/lmdeploy")
    assert_refused_in_one_line(reply)
    assert "已更名为 `InternLM/lmdeploy`" in reply.text
    assert await store.tracked_repos() == []


async def test_with_track_any_repo_off_a_new_repository_is_refused_without_asking_github(
    store: Store, github: FakeGitHub
) -> None:
    service = make_service(store, github, track_any_repo=False)
    reply = await ask(service, "/subscribe InternLM/lmdeploy")
    assert_refused_in_one_line(reply)
    assert "只跟踪预设的仓库" in reply.text
    assert repo_requests(github) == []
    assert "已订阅" in (await ask(service, "/subscribe vllm-project/vllm")).text


async def test_max_tracked_repos_bounds_what_chats_can_add(
    store: Store, github: FakeGitHub
) -> None:
    service = make_service(store, github, max_tracked_repos=len(DEFAULT_REPOS) + 1)
    assert "已订阅" in (await ask(service, "/subscribe InternLM/lmdeploy")).text
    reply = await ask(service, "/subscribe NVIDIA/TensorRT-LLM", private("43"))
    assert_refused_in_one_line(reply)
    assert f"上限（{len(DEFAULT_REPOS) + 1} 个）" in reply.text


async def test_a_group_member_cannot_make_the_bot_ask_github(
    service: CommandService, github: FakeGitHub
) -> None:
    reply = await ask(service, "/subscribe InternLM/lmdeploy", member())
    assert reply.ephemeral and "管理员" in reply.text
    assert repo_requests(github) == []


async def test_repeated_checks_of_the_same_name_are_answered_from_memory(
    github: FakeGitHub,
) -> None:
    async with GitHubClient(github.url, None, None) as client:
        checker = RepoChecker(client)
        first = await checker.check("nosuch/repo")
        second = await checker.check("NoSuch/Repo")
    assert first.status == second.status == "missing"
    assert checker.requests == 1


# -- /track and /untrack (operators) --------------------------------------------------------------


async def test_track_is_for_operators_only_and_pins_the_repository(
    service: CommandService, store: Store
) -> None:
    hidden = await ask(service, "/track triton-lang/triton")
    assert hidden.text == "未知命令 /track，发送 /help 查看用法。"
    operator = private("777")
    reply = await ask(service, "/track Triton-Lang/Triton", operator)
    assert "已固定跟踪 `triton-lang/triton`" in reply.text
    # Pinned: collected though no chat names it.
    assert await tracked_set(store, DEFAULT_REPOS) == [*DEFAULT_REPOS, "triton-lang/triton"]
    default = await ask(service, "/untrack vllm", operator)
    assert_refused_in_one_line(default)
    assert "默认仓库" in default.text
    gone = await ask(service, "/untrack triton", operator)
    assert gone.text.startswith("已停止跟踪 `triton-lang/triton`")
    assert await tracked_set(store, DEFAULT_REPOS) == list(DEFAULT_REPOS)


async def test_operators_may_track_even_when_chats_may_not(
    store: Store, github: FakeGitHub
) -> None:
    service = make_service(store, github, track_any_repo=False)
    reply = await ask(service, "/track NVIDIA/TensorRT-LLM", private("777"))
    assert "已固定跟踪" in reply.text


# -- release-alert opt-ins -------------------------------------------------------------------------

# How /alerts describes a chat that gets stable releases only (the default).
STABLE = "（仅正式版本，发送 /alerts on all 可包含预发布与 nightly）"


async def test_alerts_on_and_off(service: CommandService, store: Store) -> None:
    assert "未开启" in (await ask(service, "/alerts")).text
    reply = await ask(service, "/alerts on")
    assert reply.text.startswith(
        f"已开启版本发布提醒：全部 8 个跟踪的仓库{STABLE}；新版本发布后约 5 分"
    )
    status = await ask(service, "/alerts")
    assert status.text == f"本聊天已开启版本发布提醒：全部 8 个跟踪的仓库{STABLE}。"
    assert (await ask(service, "/alerts off")).text == "已关闭本聊天的版本发布提醒。"
    assert await store.alert_chat("telegram", "42") is None
    assert_refused_in_one_line(await ask(service, "/alerts maybe"))


async def test_subscribe_with_releases_opts_into_alerts_for_the_named_repositories(
    service: CommandService, store: Store
) -> None:
    reply = await ask(service, "/subscribe vllm releases")
    assert reply.text.startswith("已开启版本发布提醒：`vllm-project/vllm`")
    assert await store.get_chat("telegram", "42") is None  # no daily posts asked for
    await ask(service, "/subscribe InternLM/lmdeploy releases")
    alerts = await store.alert_chat("telegram", "42")
    assert alerts is not None and alerts.repos == ("vllm-project/vllm", "InternLM/lmdeploy")
    # Followed for alerts only, the added repository is tracked (and polled) all the same.
    assert "InternLM/lmdeploy" in await tracked_set(store, DEFAULT_REPOS)
    reply = await ask(service, "/unsubscribe vllm releases")
    assert reply.text == f"已更新版本发布提醒：`InternLM/lmdeploy`{STABLE}。"


async def test_subscriptions_mention_alerts_and_watches(service: CommandService) -> None:
    await ask(service, "/subscribe")
    await ask(service, "/alerts on sglang")
    await ask(service, "/watch FP8")
    reply = await ask(service, "/subscriptions")
    assert f"版本发布提醒：`sgl-project/sglang`{STABLE}。" in reply.text
    assert "关注词：`FP8`。" in reply.text


async def test_in_a_group_only_administrators_switch_alerts(
    service: CommandService, store: Store
) -> None:
    reply = await ask(service, "/alerts on", member())
    assert reply.ephemeral and "管理员" in reply.text
    assert await store.alert_chat("telegram", "-100") is None
