"""Small input faults found by hostile commands: each is refused in one line with its own usage."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from service_support import ARCHIVED_DAY, NOW, ArchivePipeline, archive

from bot.commands import ChatContext, CommandService, Reply
from bot.settings import Settings, parse_hhmm
from bot.store import Store


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    opened = await Store.open(f"sqlite+aiosqlite:///{tmp_path / 'bot.db'}")
    await archive(opened, ARCHIVED_DAY)
    yield opened
    await opened.close()


@pytest.fixture
def service(store: Store) -> CommandService:
    return CommandService(Settings(), store, ArchivePipeline(store), clock=lambda: NOW)


def _private() -> ChatContext:
    async def never_asked() -> bool:
        raise AssertionError("a private chat needs no administrator check")

    return ChatContext("telegram", "42", "private", "42", never_asked)


async def ask(service: CommandService, text: str) -> Reply:
    command, _, args = text.partition(" ")
    return await service.handle(_private(), command, args)


def assert_refused(reply: Reply) -> None:
    assert reply.ephemeral and "\n" not in reply.text and len(reply.text) < 200


@pytest.mark.parametrize("value", ["٠٩:٠٠", "０９:００", "۰۹:۳۰", "9:٣٠"])
async def test_times_accept_ascii_digits_only(
    service: CommandService, store: Store, value: str
) -> None:
    with pytest.raises(ValueError):
        parse_hhmm(value)
    await ask(service, "/subscribe")
    reply = await ask(service, f"/settime {value}")
    assert_refused(reply)
    assert "用法：/settime" in reply.text
    chat = await store.get_chat("telegram", "42")
    assert chat is not None and chat.post_time == "09:00"
    assert (await ask(service, "/settime 07:30")).text.startswith("每日推送时间已设为 07:30")


@pytest.mark.parametrize(
    "words",
    ["\u200b", "\u200b\u200c\u2060", '"unclosed', "FP8 “MoE", "「MoE", '""', "-- ...", "”x"],
)
async def test_watch_words_need_a_visible_letter_or_digit_and_balanced_quotes(
    service: CommandService, store: Store, words: str
) -> None:
    reply = await ask(service, f"/watch {words}")
    assert_refused(reply)
    assert "用法：/watch" in reply.text
    assert await store.watches_of("telegram", "42") == ()


async def test_a_quoted_phrase_and_cjk_words_are_still_accepted(
    service: CommandService, store: Store
) -> None:
    reply = await ask(service, '/watch "MoE kernel" 「量化」 FP8')
    assert not reply.ephemeral
    assert await store.watches_of("telegram", "42") == ("MoE kernel", "量化", "FP8")


@pytest.mark.parametrize(
    ("text", "usage"),
    [
        ("/subscribe ../x", "用法：/subscribe"),
        ("/unsubscribe ../x", "用法：/unsubscribe"),
        ("/alerts on ../x", "用法：/alerts"),
        ("/alerts off ../x", "用法：/alerts"),
        ("/weekly ../x", "用法：/weekly"),
        ("/digest ../x", "用法：/digest"),
    ],
)
async def test_each_commands_refusal_shows_its_own_usage(
    service: CommandService, text: str, usage: str
) -> None:
    reply = await ask(service, text)
    assert_refused(reply)
    assert usage in reply.text
    if not text.startswith("/digest"):
        assert "/digest" not in reply.text
