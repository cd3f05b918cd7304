"""Issue 13, repositories that go: `/untrack` takes the repository out of every chat's list and
alert opt-ins; `/unsubscribe owner/name` resolves against the chat's own list. SQLite and
PostgreSQL."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from fake_github import FakeGitHub
from service_support import NOW, ArchivePipeline
from store_backends import BACKENDS, isolated_database

from bot.commands import ChatContext, CommandService, Reply
from bot.settings import Settings
from bot.store import Store

OPERATOR = "777"
TRITON = "triton-lang/triton"
VLLM = "vllm-project/vllm"


@pytest.fixture(params=BACKENDS)
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Store]:
    async with isolated_database(request.param, tmp_path) as database:
        yield await database.open()


@pytest.fixture
async def github() -> AsyncIterator[FakeGitHub]:
    async with FakeGitHub() as fake:
        fake.add_repo(TRITON)
        yield fake


def service_on(store: Store, github: FakeGitHub) -> CommandService:
    settings = Settings(github_api_url=github.url, admin_user_ids=[f"telegram:{OPERATOR}"])
    return CommandService(settings, store, ArchivePipeline(store), clock=lambda: NOW)


def private(chat_id: str) -> ChatContext:
    async def never() -> bool:
        raise AssertionError("a private chat needs no administrator check")

    return ChatContext("telegram", chat_id, "private", chat_id, never)


async def ask(service: CommandService, ctx: ChatContext, text: str) -> Reply:
    command, _, args = text.partition(" ")
    return await service.handle(ctx, command, args)


async def test_untrack_removes_the_repository_from_every_chat_and_alert_opt_in(
    store: Store, github: FakeGitHub
) -> None:
    service = service_on(store, github)
    both, only = private("42"), private("43")
    assert not (await ask(service, both, f"/subscribe vllm {TRITON}")).ephemeral
    assert not (await ask(service, both, f"/alerts on {TRITON} vllm")).ephemeral
    assert not (await ask(service, only, f"/subscribe {TRITON}")).ephemeral

    gone = await ask(service, private(OPERATOR), f"/untrack {TRITON}")
    assert not gone.ephemeral, gone.text

    chat = await store.get_chat("telegram", "42")
    assert chat is not None and chat.active and chat.repos == (VLLM,)
    alerts = await store.alert_chat("telegram", "42")
    assert alerts is not None and alerts.repos == (VLLM,)
    left = await store.get_chat("telegram", "43")
    assert left is not None and not left.active  # it followed only the untracked repository
    assert TRITON.lower() not in await store.followed_repos()
    listed = (await ask(service, both, "/subscriptions")).text
    assert "triton" not in listed


async def test_unsubscribe_resolves_a_name_no_longer_tracked_against_the_chats_list(
    store: Store, github: FakeGitHub
) -> None:
    # Subscribed while o/gone was tracked (e.g. in DIGEST_REPOS), which it no longer is.
    await store.subscribe(
        "telegram", "42", ["o/gone", VLLM], by=None, post_time="09:00", timezone="Asia/Shanghai"
    )
    service = service_on(store, github)
    reply = await ask(service, private("42"), "/unsubscribe o/gone")
    assert not reply.ephemeral, reply.text
    chat = await store.get_chat("telegram", "42")
    assert chat is not None and chat.active and chat.repos == (VLLM,)
