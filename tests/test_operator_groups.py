"""Operator commands in Telegram groups: answered for ADMIN_USER_IDS, refused for anyone else."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from fake_telegram import FakeTelegram
from pydantic import SecretStr
from service_support import ARCHIVED_DAY, NOW, ArchivePipeline, archive

from bot.commands import CommandService
from bot.platforms.telegram import TelegramAdapter
from bot.settings import load_settings
from bot.store import Store

GROUP = -1_001_234_567
OPERATOR, ADMIN, MEMBER = 77, 7, 8


@pytest.fixture
async def telegram() -> AsyncIterator[FakeTelegram]:
    async with FakeTelegram(admins={str(GROUP): {str(ADMIN), str(OPERATOR)}}) as fake:
        yield fake


@pytest.fixture
async def adapter(telegram: FakeTelegram, tmp_path: Path) -> AsyncIterator[TelegramAdapter]:
    store = await Store.open(f"sqlite+aiosqlite:///{tmp_path / 'bot.db'}")
    await archive(store, ARCHIVED_DAY)
    settings = load_settings(
        telegram_bot_token=SecretStr(telegram.token),
        telegram_api_url=telegram.url,
        admin_user_ids=f"telegram:{OPERATOR}",
    )
    service = CommandService(settings, store, ArchivePipeline(store), clock=lambda: NOW)
    running = TelegramAdapter(settings, service)
    await running.start(poll_timeout=1)
    yield running
    await running.stop()
    await store.close()


@pytest.mark.parametrize("command", ["/status", "/status@AIInfraDigestBot"])
async def test_status_in_a_group_answers_an_operator(
    adapter: TelegramAdapter, telegram: FakeTelegram, command: str
) -> None:
    telegram.push_command(chat_id=GROUP, user_id=OPERATOR, chat_type="supergroup", text=command)
    [answer] = await telegram.wait_for_messages(1, chat_id=GROUP)
    assert "aiinfra-digest status" in answer.plain
    assert answer.reply_to is not None


async def test_untrack_in_a_group_reaches_the_operator_command(
    adapter: TelegramAdapter, telegram: FakeTelegram
) -> None:
    telegram.push_command(
        chat_id=GROUP, user_id=OPERATOR, chat_type="supergroup", text="/untrack vllm"
    )
    [answer] = await telegram.wait_for_messages(1, chat_id=GROUP)
    assert "默认仓库" in answer.plain  # the operator command's own answer


async def test_operator_commands_in_a_group_are_unknown_to_a_group_admin_who_is_no_operator(
    adapter: TelegramAdapter, telegram: FakeTelegram
) -> None:
    for user, text in ((ADMIN, "/status"), (MEMBER, "/track o/r"), (MEMBER, "/untrack o/r")):
        telegram.push_command(chat_id=GROUP, user_id=user, chat_type="supergroup", text=text)
    answers = await telegram.wait_for_messages(3, chat_id=GROUP)  # handled concurrently
    assert sorted(answer.plain.split("，")[0] for answer in answers) == [
        "未知命令 /status",
        "未知命令 /track",
        "未知命令 /untrack",
    ]
    # Still not in the menu.
    assert not {"status", "track", "untrack"} & {c["command"] for c in telegram.commands}
