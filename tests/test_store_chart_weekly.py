"""Migration 0003 on SQLite and PostgreSQL: the chart and weekly opt-ins of a chat, and weekly
deliveries beside the daily ones (each once per chat), including an upgrade of a 0002 database."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command
from sqlalchemy.engine import Connection
from store_backends import BACKENDS, TestDatabase, isolated_database

from bot.store import DAILY, WEEKLY, Store, make_engine
from bot.store.engine import alembic_config

T0 = datetime(2026, 2, 9, 1, 0, tzinfo=UTC)
SUNDAY = date(2026, 2, 8)


@pytest.fixture(params=BACKENDS)
async def db(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[TestDatabase]:
    async with isolated_database(request.param, tmp_path) as database:
        yield database


async def subscribe(store: Store, chat: str) -> None:
    await store.subscribe(
        "telegram", chat, None, by=None, post_time="09:00", timezone="Asia/Shanghai", now=T0
    )


async def test_a_new_chat_has_chart_and_weekly_off_and_each_can_be_turned_on_and_off(
    db: TestDatabase,
) -> None:
    store = await db.open()
    await subscribe(store, "1")
    chat = await store.get_chat("telegram", "1")
    assert chat is not None and not chat.chart and not chat.weekly

    charted = await store.set_chart("telegram", "1", True)
    assert charted is not None and charted.chart and not charted.weekly
    weekly = await store.set_weekly("telegram", "1", True)
    assert weekly is not None and weekly.chart and weekly.weekly

    reopened = await db.open()  # another instance sees the same opt-ins
    chat = await reopened.get_chat("telegram", "1")
    assert chat is not None and chat.chart and chat.weekly
    assert [c.chart for c in await reopened.active_chats()] == [True]

    off = await store.set_chart("telegram", "1", False)
    assert off is not None and not off.chart and off.weekly


async def test_opting_in_an_unknown_chat_is_none(db: TestDatabase) -> None:
    store = await db.open()
    assert await store.set_chart("telegram", "404", True) is None
    assert await store.set_weekly("telegram", "404", True) is None


async def test_resubscribing_keeps_the_opt_ins(db: TestDatabase) -> None:
    store = await db.open()
    await subscribe(store, "1")
    await store.set_weekly("telegram", "1", True)
    await store.unsubscribe("telegram", "1", None)
    await subscribe(store, "1")
    chat = await store.get_chat("telegram", "1")
    assert chat is not None and chat.active and chat.weekly


async def test_a_weekly_delivery_sits_beside_the_daily_one_and_each_is_made_once(
    db: TestDatabase,
) -> None:
    store = await db.open()
    await subscribe(store, "1")
    chats = await store.active_chats()
    assert await store.ensure_deliveries(SUNDAY, chats, now=T0) == 1
    assert await store.ensure_deliveries(SUNDAY, chats, now=T0, kind=WEEKLY) == 1
    assert await store.ensure_deliveries(SUNDAY, chats, now=T0, kind=WEEKLY) == 0
    assert await store.ensure_deliveries(SUNDAY, chats, now=T0) == 0

    daily = await store.claim_deliveries(
        SUNDAY, platform=None, worker="w", limit=10, lease_seconds=60, due_before=None, now=T0
    )
    assert [c.kind for c in daily] == [DAILY]
    await store.mark_delivered(daily[0], ["m1"])
    assert await store.delivery_statuses(SUNDAY) == {("telegram", "1"): "sent"}
    assert await store.delivery_statuses(SUNDAY, kind=WEEKLY) == {("telegram", "1"): "pending"}
    assert await store.delivery_counts(SUNDAY) == {"sent": 1}

    weekly = await store.claim_deliveries(
        SUNDAY,
        platform="telegram",
        worker="w",
        limit=10,
        lease_seconds=60,
        due_before=None,
        now=T0,
        kind=WEEKLY,
    )
    assert [c.kind for c in weekly] == [WEEKLY]
    await store.mark_delivered(weekly[0], ["m2"])
    assert await store.delivery_status("telegram", "1", SUNDAY, kind=WEEKLY) == "sent"
    assert await store.delivery_counts(SUNDAY, kind=WEEKLY) == {"sent": 1}
    again = await store.claim_deliveries(
        SUNDAY,
        platform=None,
        worker="w2",
        limit=10,
        lease_seconds=60,
        due_before=None,
        now=T0,
        kind=WEEKLY,
    )
    assert again == []


def _to_0002(connection: Connection) -> None:
    config = alembic_config()
    config.attributes["connection"] = connection
    command.upgrade(config, "0002")


async def test_a_0002_database_upgrades_with_its_chats_and_deliveries_kept(
    db: TestDatabase,
) -> None:
    engine = make_engine(db.url, schema=db.schema)
    try:
        async with engine.begin() as conn:
            await conn.run_sync(_to_0002)
            now = T0.replace(tzinfo=None) if db.backend == "sqlite" else T0
            await conn.execute(
                sa.text(
                    "INSERT INTO chats (platform, chat_id, repos, post_time, timezone, active,"
                    " updated_at) VALUES ('telegram', '7', NULL, '09:00', 'Asia/Shanghai', true,"
                    " :now)"
                ),
                {"now": now},
            )
            await conn.execute(
                sa.text(
                    "INSERT INTO deliveries (platform, chat_id, day, status, attempts, created_at,"
                    " updated_at) VALUES ('telegram', '7', :day, 'sent', 1, :now, :now)"
                ),
                {"day": SUNDAY, "now": now},
            )
    finally:
        await engine.dispose()

    store = await db.open()  # migrates to the head
    chat = await store.get_chat("telegram", "7")
    assert chat is not None and chat.active and not chat.chart and not chat.weekly
    assert await store.delivery_statuses(SUNDAY) == {("telegram", "7"): "sent"}
    assert await store.ensure_deliveries(SUNDAY, [chat], now=T0) == 0
    assert await store.ensure_deliveries(SUNDAY, [chat], now=T0, kind=WEEKLY) == 1
