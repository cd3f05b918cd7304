"""Bounds on generating days on demand: per chat a minute and a day, overall an hour."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from service_support import ARCHIVED_DAY, NOW, ArchivePipeline, archive

from bot.commands import ChatContext, CommandService
from bot.ondemand import OnDemandLimiter
from bot.settings import Settings
from bot.store import Store

T0 = datetime(2026, 2, 5, 2, 0, tzinfo=UTC)


class Clock:
    """A clock the test moves by hand."""

    def __init__(self, start: datetime = T0) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now


def test_a_chat_gets_one_generation_a_minute_and_is_told_when_to_retry() -> None:
    clock = Clock()
    limiter = OnDemandLimiter(clock=clock)
    assert limiter.acquire("telegram:1") is None
    refusal = limiter.acquire("telegram:1")
    assert refusal is not None and refusal.scope == "chat-minute"
    assert refusal.retry_at == T0 + timedelta(minutes=1)
    assert limiter.acquire("telegram:2") is None  # another chat is not held back
    clock.now = T0 + timedelta(minutes=1)
    assert limiter.acquire("telegram:1") is None


def test_a_chat_gets_at_most_ten_a_day() -> None:
    clock = Clock()
    limiter = OnDemandLimiter(per_hour=1000, clock=clock)
    for minute in range(10):
        clock.now = T0 + timedelta(minutes=minute)
        assert limiter.acquire("telegram:1") is None
    clock.now = T0 + timedelta(minutes=30)
    refusal = limiter.acquire("telegram:1")
    assert refusal is not None and refusal.scope == "chat-day"
    assert refusal.retry_at == T0 + timedelta(days=1)


def test_the_hourly_cap_holds_across_chats_and_operators_are_exempt() -> None:
    clock = Clock()
    limiter = OnDemandLimiter(per_hour=3, clock=clock)
    assert [limiter.acquire(f"telegram:{i}") for i in range(3)] == [None, None, None]
    refusal = limiter.acquire("telegram:9")
    assert refusal is not None and refusal.scope == "global-hour"
    assert refusal.retry_at == T0 + timedelta(hours=1)
    assert limiter.acquire("telegram:9", operator=True) is None
    assert limiter.acquire("telegram:9", operator=True) is None


# -- through the command service (real Store, the archive-backed pipeline) ---------------------


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    opened = await Store.open(f"sqlite+aiosqlite:///{tmp_path / 'bot.db'}")
    await archive(opened, ARCHIVED_DAY)
    yield opened
    await opened.close()


def _private(chat_id: str) -> ChatContext:
    async def never_asked() -> bool:
        raise AssertionError("a private chat needs no administrator check")

    return ChatContext("telegram", chat_id, "private", chat_id, never_asked)


def _service(store: Store, clock: Clock, **settings: Any) -> tuple[CommandService, ArchivePipeline]:
    pipeline = ArchivePipeline(store)
    configured = Settings(admin_user_ids=["telegram:777"], **settings)
    return CommandService(configured, store, pipeline, clock=clock), pipeline


async def test_a_second_unarchived_day_within_a_minute_is_refused_with_when_to_retry(
    store: Store,
) -> None:
    clock = Clock(NOW)
    service, pipeline = _service(store, clock)
    first = await service.handle(_private("1"), "digest", "2026-02-01")
    assert first.text.startswith("今日的 AI Infra")
    refused = await service.handle(_private("1"), "digest", "2026-02-02")
    # NOW is 10:00 in Shanghai: one minute later.
    assert refused.ephemeral and "10:01" in refused.text and "1 分钟后" in refused.text
    assert pipeline.generated == [date(2026, 2, 1)]
    archived = await service.handle(_private("1"), "digest", ARCHIVED_DAY.isoformat())
    assert archived.text.startswith("今日的 AI Infra")  # archived days are free and instant
    clock.now = NOW + timedelta(minutes=1)
    again = await service.handle(_private("1"), "digest", "2026-02-02")
    assert again.text.startswith("今日的 AI Infra")
    assert pipeline.generated == [date(2026, 2, 1), date(2026, 2, 2)]


async def test_a_chat_generates_at_most_ten_days_a_day_operators_are_exempt(store: Store) -> None:
    clock = Clock(NOW)
    service, pipeline = _service(store, clock, on_demand_per_hour=1000)
    for n in range(10):
        clock.now = NOW + timedelta(minutes=2 * n)
        reply = await service.handle(_private("1"), "digest", f"2026-01-{n + 1:02d}")
        assert not reply.ephemeral
    clock.now = NOW + timedelta(hours=1)
    refused = await service.handle(_private("1"), "digest", "2026-01-20")
    assert refused.ephemeral and "每天最多生成 10 次" in refused.text
    assert len(pipeline.generated) == 10
    operator = _private("777")
    for n in range(3):  # no minute or day bound for an operator
        reply = await service.handle(operator, "digest", f"2026-01-{n + 21:02d}")
        assert not reply.ephemeral


async def test_the_hourly_cap_holds_across_chats(store: Store) -> None:
    clock = Clock(NOW)
    service, pipeline = _service(store, clock, on_demand_per_hour=2)
    assert not (await service.handle(_private("1"), "digest", "2026-02-01")).ephemeral
    assert not (await service.handle(_private("2"), "digest", "2026-02-02")).ephemeral
    refused = await service.handle(_private("3"), "digest", "2026-02-03")
    assert refused.ephemeral and "本小时" in refused.text and "11:00" in refused.text
    assert pipeline.generated == [date(2026, 2, 1), date(2026, 2, 2)]
