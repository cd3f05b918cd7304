"""The store on SQLite and on PostgreSQL: subscriptions, the archive, deliveries, cache, locks."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.script import ScriptDirectory
from store_backends import BACKENDS, TestDatabase, isolated_database

from bot.store import Chat, DeliveryClaim, Store, upgrade
from bot.store.engine import alembic_config
from collectors.sample import load_sample
from summarizer.digest import Digest, Section, Usage

DAY = date(2026, 2, 4)
T0 = datetime(2026, 2, 5, 1, 0, tzinfo=UTC)
SHANGHAI = "Asia/Shanghai"


@pytest.fixture(params=BACKENDS)
async def db(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[TestDatabase]:
    async with isolated_database(request.param, tmp_path) as database:
        yield database


@pytest.fixture
async def store(db: TestDatabase) -> Store:
    return await db.open()


async def subscribe(
    store: Store, chat_id: str, repos: list[str] | None = None, *, post_time: str = "09:00"
) -> Chat:
    return await store.subscribe(
        "telegram", chat_id, repos, by="user:1", post_time=post_time, timezone=SHANGHAI
    )


async def claim(
    store: Store, worker: str, now: datetime | None = None, *, limit: int = 10, lease: float = 60
) -> list[DeliveryClaim]:
    return await store.claim_deliveries(
        DAY,
        platform=None,
        worker=worker,
        limit=limit,
        lease_seconds=lease,
        due_before=None,
        now=now,
    )


def sample_digest() -> Digest:
    activity = load_sample()
    sections = [
        Section(
            repo=repo.repo,
            markdown=f"- {repo.repo} 的更新",
            written_by="model" if i % 2 else "structured",
            model="deepseek/deepseek-chat-v3-0324:free" if i % 2 else None,
            reason=None if i % 2 else "all models rate-limited",
            activity_hash=repo.content_hash(),
            usage=Usage(prompt_tokens=100 * i, completion_tokens=10 * i, calls=i % 2),
        )
        for i, repo in enumerate(activity.repos)
    ]
    return Digest(
        day=activity.day,
        timezone=activity.timezone,
        sections=sections,
        summary="今日摘要",
        conclusion="总结",
        summary_by="model:deepseek",
        notes=["部分内容由结构化模板生成"],
    )


# -- migrations ------------------------------------------------------------------------------


async def test_opening_creates_the_sqlite_directory_in_wal_mode(tmp_path: Path) -> None:
    path = tmp_path / "nested" / "dir" / "digest.db"
    store = await Store.open(f"sqlite+aiosqlite:///{path}")
    try:
        async with store.engine.connect() as conn:
            mode = (await conn.execute(sa.text("PRAGMA journal_mode"))).scalar()
        assert path.exists()
        assert mode == "wal"
    finally:
        await store.close()


async def test_upgrade_is_idempotent_and_records_the_head_revision(db: TestDatabase) -> None:
    await upgrade(db.url, schema=db.schema)
    await upgrade(db.url, schema=db.schema)
    store = await db.open()
    async with store.engine.connect() as conn:
        version = (await conn.execute(sa.text("SELECT version_num FROM alembic_version"))).scalar()
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None
    assert version == head


async def test_instances_starting_together_both_migrate(db: TestDatabase) -> None:
    first, second = await asyncio.gather(db.open(), db.open())
    await subscribe(first, "1")
    assert await second.get_chat("telegram", "1") is not None


# -- chats -----------------------------------------------------------------------------------


async def test_subscriptions_survive_reopen(db: TestDatabase) -> None:
    store = await db.open()
    await subscribe(store, "100", ["vllm-project/vllm"], post_time="8:30")
    await store.close()
    reopened = await db.open()
    chat = await reopened.get_chat("telegram", "100")
    assert chat is not None
    assert chat.repos == ("vllm-project/vllm",)
    assert chat.post_time == "08:30"
    assert chat.timezone == SHANGHAI
    assert chat.active and chat.subscribed_by == "user:1"
    assert chat.subscribed_at is not None and chat.subscribed_at.tzinfo is not None


async def test_resubscribe_with_repos_merges_into_the_named_set(store: Store) -> None:
    await subscribe(store, "1", ["vllm-project/vllm", "NVIDIA/cutlass"])
    chat = await subscribe(store, "1", ["nvidia/CUTLASS", "sgl-project/sglang"])
    assert chat.repos == ("vllm-project/vllm", "NVIDIA/cutlass", "sgl-project/sglang")


async def test_subscribing_to_all_replaces_a_named_set_and_named_adds_nothing_to_all(
    store: Store,
) -> None:
    await subscribe(store, "1", ["vllm-project/vllm"])
    assert (await subscribe(store, "1", None)).repos is None
    assert (await subscribe(store, "1", ["NVIDIA/cutlass"])).repos is None


async def test_unsubscribe_named_keeps_the_rest_and_the_last_one_stops_the_chat(
    store: Store,
) -> None:
    await subscribe(store, "1", ["vllm-project/vllm", "NVIDIA/cutlass"])
    chat = await store.unsubscribe("telegram", "1", ["VLLM-project/vllm"])
    assert chat is not None and chat.active and chat.repos == ("NVIDIA/cutlass",)
    chat = await store.unsubscribe("telegram", "1", ["NVIDIA/cutlass"])
    assert chat is not None and not chat.active
    assert chat.deactivation_reason == "unsubscribed"
    assert await store.active_chats() == []


async def test_unsubscribe_all_stops_the_chat_and_subscribe_restarts_it(store: Store) -> None:
    await subscribe(store, "1", ["vllm-project/vllm"], post_time="07:00")
    chat = await store.unsubscribe("telegram", "1", None)
    assert chat is not None and not chat.active
    again = await subscribe(store, "1", ["NVIDIA/cutlass"], post_time="10:00")
    assert again.active and again.repos == ("NVIDIA/cutlass",) and again.post_time == "10:00"
    assert again.deactivation_reason is None


async def test_unsubscribe_named_from_all_leaves_the_other_tracked_repos(store: Store) -> None:
    tracked = ["a/one", "b/two", "c/three"]
    await subscribe(store, "1", None)
    unchanged = await store.unsubscribe("telegram", "1", ["b/two"])
    assert unchanged is not None and unchanged.repos is None
    chat = await store.unsubscribe("telegram", "1", ["b/two"], tracked=tracked)
    assert chat is not None and chat.repos == ("a/one", "c/three")


async def test_unsubscribe_of_an_unknown_chat_is_none(store: Store) -> None:
    assert await store.unsubscribe("telegram", "404", None) is None
    assert await store.set_post_time("telegram", "404", "09:00") is None


async def test_post_time_and_timezone_are_validated(store: Store) -> None:
    await subscribe(store, "1")
    chat = await store.set_post_time("telegram", "1", "7:05")
    assert chat is not None and chat.post_time == "07:05"
    with pytest.raises(ValueError, match="HH:MM"):
        await store.set_post_time("telegram", "1", "25:99")
    with pytest.raises(ValueError, match="time zone"):
        await store.set_timezone("telegram", "1", "Mars/Olympus")
    with pytest.raises(ValueError, match="time zone"):
        await store.subscribe("telegram", "2", None, by=None, post_time="09:00", timezone="x")


async def test_deactivated_chats_keep_the_reason_and_leave_active_chats(store: Store) -> None:
    await subscribe(store, "1")
    await subscribe(store, "2")
    await store.subscribe("discord", "9", None, by=None, post_time="09:00", timezone="UTC")
    await store.deactivate("telegram", "1", "Forbidden: bot was blocked by the user")
    gone = await store.get_chat("telegram", "1")
    assert gone is not None and not gone.active and "blocked" in (gone.deactivation_reason or "")
    assert [c.chat_id for c in await store.active_chats()] == ["2", "9"]
    assert [c.chat_id for c in await store.active_chats("discord")] == ["9"]
    assert await store.chat_counts() == {"telegram": 1, "discord": 1}


async def test_concurrent_subscribes_of_one_chat_merge_every_repo(db: TestDatabase) -> None:
    first, second = await db.open(), await db.open()
    await subscribe(first, "1", ["r/0"])
    await asyncio.gather(*(subscribe((first, second)[i % 2], "1", [f"r/{i}"]) for i in range(10)))
    chat = await first.get_chat("telegram", "1")
    assert chat is not None and set(chat.repos or ()) == {f"r/{i}" for i in range(10)}


# -- deliveries ------------------------------------------------------------------------------


async def test_ensure_deliveries_creates_each_row_once(store: Store) -> None:
    chats = [await subscribe(store, str(i)) for i in range(3)]
    assert await store.ensure_deliveries(DAY, chats) == 3
    assert await store.ensure_deliveries(DAY, [*chats, chats[0]]) == 0
    assert await store.delivery_counts(DAY) == {"pending": 3}


async def test_two_concurrent_workers_claim_each_delivery_exactly_once(db: TestDatabase) -> None:
    first, second = await db.open(), await db.open()
    chats = [await subscribe(first, str(i)) for i in range(120)]
    await first.ensure_deliveries(DAY, chats)

    # Both hold a first batch before either marks one, so both take part whatever the timing.
    both_claimed = asyncio.Barrier(2)

    async def work(store: Store, name: str) -> list[str]:
        got: list[str] = []
        first_round = True
        while claims := await store.claim_deliveries(
            DAY, platform="telegram", worker=name, limit=7, lease_seconds=60, due_before=None
        ):
            if first_round:
                await both_claimed.wait()
                first_round = False
            for claim in claims:
                got.append(claim.chat_id)
                assert await store.mark_delivered(claim, [f"m{claim.chat_id}"])
            await asyncio.sleep(0)
        return got

    a, b = await asyncio.gather(work(first, "a"), work(second, "b"))
    assert sorted(a + b, key=int) == [str(i) for i in range(120)]
    assert not set(a) & set(b)
    assert a and b  # both took part
    assert await first.delivery_counts(DAY) == {"sent": 120}


async def test_an_expired_lease_is_claimed_again_and_the_old_holder_cannot_mark(
    store: Store,
) -> None:
    await store.ensure_deliveries(DAY, [await subscribe(store, "1")])
    (crashed,) = await claim(store, "a", T0, lease=0)  # a lease that has run out already
    assert crashed.attempts == 1
    (taken,) = await claim(store, "b", T0)
    assert taken.attempts == 2 and taken.worker == "b"
    assert not await store.mark_delivered(crashed, ["x"])
    assert not await store.mark_failed(crashed, "late", final=True)
    assert await store.mark_delivered(taken, ["y"])
    assert await store.delivery_status("telegram", "1", DAY) == "sent"


async def test_a_failed_delivery_waits_for_its_retry_time_and_a_final_failure_stays(
    store: Store,
) -> None:
    await store.ensure_deliveries(DAY, [await subscribe(store, "1"), await subscribe(store, "2")])
    one, two = await claim(store, "w", T0)
    retry_at = T0 + timedelta(seconds=30)
    assert await store.mark_failed(one, "timeout", final=False, retry_at=retry_at)
    assert await store.mark_failed(two, "400 bad request", final=True)
    assert await store.next_retry_at(DAY) == retry_at
    assert await claim(store, "w", T0 + timedelta(seconds=10)) == []
    assert [c.chat_id for c in await claim(store, "w", retry_at)] == ["1"]
    assert await store.delivery_counts(DAY) == {"sending": 1, "failed": 1}


async def test_due_before_holds_back_deliveries_not_yet_due(store: Store) -> None:
    early, late = await subscribe(store, "1"), await subscribe(store, "2")
    due = {"1": T0, "2": T0 + timedelta(hours=3)}
    await store.ensure_deliveries(DAY, [early, late], due_at=lambda chat: due[chat.chat_id])
    claims = await store.claim_deliveries(
        DAY, platform=None, worker="w", limit=5, lease_seconds=60, due_before=T0, now=T0
    )
    assert [c.chat_id for c in claims] == ["1"]


async def test_a_released_claim_is_pending_again_without_counting_an_attempt(
    store: Store,
) -> None:
    await store.ensure_deliveries(DAY, [await subscribe(store, "1")])
    (first,) = await claim(store, "w")
    assert await store.release_claim(first)
    (again,) = await claim(store, "w")
    assert again.attempts == 1


async def test_a_renewed_claim_outlives_its_first_lease(store: Store) -> None:
    await store.ensure_deliveries(DAY, [await subscribe(store, "1")])
    (first,) = await claim(store, "a", T0)
    renewed = await store.renew_claim(first, 60, now=T0 + timedelta(seconds=50))
    assert renewed is not None and renewed.lease_until == T0 + timedelta(seconds=110)
    assert await claim(store, "b", T0 + timedelta(seconds=80)) == []
    assert await store.mark_delivered(renewed, ["1"])


# -- archive, runs, cache, locks ---------------------------------------------------------------


async def test_archive_round_trip_keeps_digest_and_activity_equal(db: TestDatabase) -> None:
    store = await db.open()
    digest, activity = sample_digest(), load_sample()
    assert await store.load_digest(digest.day) is None
    await store.save_digest(digest, activity)
    await store.close()
    reopened = await db.open()
    assert await reopened.load_digest(digest.day) == digest
    assert await reopened.load_activity(digest.day) == activity
    assert await reopened.latest_day() == digest.day
    written = await reopened.written_by(digest.day)
    assert written is not None
    assert set(written.values()) == {"structured", "model:deepseek/deepseek-chat-v3-0324:free"}


async def test_saving_a_day_again_replaces_it_and_latest_day_is_the_newest(store: Store) -> None:
    digest, activity = sample_digest(), load_sample()
    await store.save_digest(digest, activity)
    newer = digest.model_copy(update={"day": digest.day + timedelta(days=1)})
    await store.save_digest(newer, activity)
    await store.save_digest(digest.model_copy(update={"summary": "改写"}), activity)
    reloaded = await store.load_digest(digest.day)
    assert reloaded is not None and reloaded.summary == "改写"
    assert await store.latest_day() == newer.day
    assert await store.archived_days() == [newer.day, digest.day]


async def test_run_records_keep_errors_for_operators(store: Store) -> None:
    assert await store.last_run() is None
    await store.record_run(DAY, ["collect a/b: HTTP 502"], started_at=T0)
    await store.record_run(DAY + timedelta(days=1), [])
    last = await store.last_run()
    assert last is not None and last.day == DAY + timedelta(days=1) and last.errors == ()
    first = await store.last_run(DAY)
    assert first is not None and first.errors == ("collect a/b: HTTP 502",)
    assert first.started_at == T0


async def test_cache_get_put_replaces_and_separates_namespaces(store: Store) -> None:
    assert await store.get("etag", "https://api.github.com/x") is None
    await store.put("etag", "https://api.github.com/x", '{"etag": "W/1"}')
    await store.put("etag", "https://api.github.com/x", '{"etag": "W/2"}')
    await store.put("section", "https://api.github.com/x", "段落")
    assert await store.get("etag", "https://api.github.com/x") == '{"etag": "W/2"}'
    assert await store.get("section", "https://api.github.com/x") == "段落"


async def test_a_lock_has_one_holder_until_it_expires(store: Store) -> None:
    assert await store.try_lock("generate:2026-02-04", "a", 60)
    assert not await store.try_lock("generate:2026-02-04", "b", 60)
    assert await store.try_lock("generate:2026-02-04", "a", 0)  # renewed, running out at once
    assert await store.try_lock("generate:2026-02-04", "b", 60)
    await store.release_lock("generate:2026-02-04", "a")  # not a's any more: no effect
    assert not await store.try_lock("generate:2026-02-04", "a", 60)
    await store.release_lock("generate:2026-02-04", "b")
    assert await store.try_lock("generate:2026-02-04", "a", 60)


async def test_a_host_whose_clock_runs_ahead_cannot_steal_a_live_lock(store: Store) -> None:
    assert await store.try_lock("generate:2026-02-04", "a", 60, now=T0)  # a's clock is behind
    fast = datetime.now(UTC) + timedelta(hours=2)  # b's clock is two hours ahead
    assert not await store.try_lock("generate:2026-02-04", "b", 60, now=fast)
    assert await store.try_lock("generate:2026-02-04", "a", 60, now=T0)


async def test_a_host_whose_clock_runs_ahead_cannot_take_a_live_delivery_lease(
    store: Store,
) -> None:
    await store.ensure_deliveries(DAY, [await subscribe(store, "1")])
    (live,) = await claim(store, "a", T0)
    assert await claim(store, "b", datetime.now(UTC) + timedelta(hours=2)) == []
    assert await store.mark_delivered(live, ["m1"])
    assert await store.delivery_status("telegram", "1", DAY) == "sent"


async def test_expired_locks_are_pruned_and_stale_heartbeats_kept_a_while(store: Store) -> None:
    assert await store.try_lock("generate:2026-02-03", "a", 0)  # expired
    assert await store.try_lock("generate:2026-02-04", "a", 60)  # live
    await store.beat("heartbeat:host:scheduler", "a", 0)  # stale at once
    assert await store.prune_locks(keep_prefix="heartbeat:", keep_seconds=3600) == 1
    assert await store.lock_names() == ["generate:2026-02-04", "heartbeat:host:scheduler"]
    assert await store.prune_locks(keep_prefix="heartbeat:", keep_seconds=0) == 1
    assert await store.lock_names() == ["generate:2026-02-04"]


async def test_unfinished_deliveries_count_and_say_when_the_last_live_lease_runs_out(
    store: Store,
) -> None:
    await store.ensure_deliveries(DAY, [await subscribe(store, "1"), await subscribe(store, "2")])
    assert await store.unfinished(DAY) == (2, None)  # nothing leased
    (held,) = await claim(store, "a", T0, limit=1)
    pending, leased_for = await store.unfinished(DAY)
    assert pending == 2 and leased_for is not None and 0 < leased_for <= 60
    assert await store.unfinished(DAY, platforms=["discord"]) == (0, None)
    assert await store.mark_delivered(held, ["m1"])
    assert await store.unfinished(DAY) == (1, None)
