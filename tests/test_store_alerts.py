"""The Store's tables of migration 0002 — tracked repositories, watches, alert opt-ins, release
cursors and alerts — on SQLite and on PostgreSQL (TEST_DATABASE_URL), across reopened instances."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from store_backends import BACKENDS, TestDatabase, isolated_database

from bot.store import Store, WatchLimitExceeded
from bot.tracking import tracked_set

T0 = datetime(2026, 2, 5, 2, 0, tzinfo=UTC)
DEFAULTS = ("deepseek-ai/DeepGEMM", "vllm-project/vllm")


@pytest.fixture(params=BACKENDS)
async def db(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[TestDatabase]:
    async with isolated_database(request.param, tmp_path) as database:
        yield database


async def subscribe(store: Store, chat: str, repos: list[str] | None) -> None:
    await store.subscribe(
        "telegram", chat, repos, by=None, post_time="09:00", timezone="Asia/Shanghai"
    )


async def test_the_schema_is_at_revision_0002(db: TestDatabase) -> None:
    store = await db.open()
    async with store.engine.connect() as conn:
        version = (await conn.execute(sa.text("SELECT version_num FROM alembic_version"))).scalar()
    assert version is not None and version >= "0002"  # later revisions build on it


# -- tracked repositories ------------------------------------------------------------------------


async def test_a_chat_added_repository_is_tracked_while_an_active_chat_names_it(
    db: TestDatabase,
) -> None:
    store = await db.open()
    await store.track_repo("InternLM/lmdeploy", by="telegram:1", pinned=False)
    assert await tracked_set(store, DEFAULTS) == list(DEFAULTS)  # nobody follows it yet
    await subscribe(store, "1", ["InternLM/lmdeploy"])
    await subscribe(store, "2", None)
    assert await tracked_set(store, DEFAULTS) == [*DEFAULTS, "InternLM/lmdeploy"]
    await store.unsubscribe("telegram", "1", ["internlm/LMDeploy"])
    # The "all" chat does not keep it: nobody names it any more, so it is not collected.
    assert await tracked_set(store, DEFAULTS) == list(DEFAULTS)


async def test_release_alerts_for_a_repository_keep_it_tracked(db: TestDatabase) -> None:
    store = await db.open()
    await store.track_repo("NVIDIA/TensorRT-LLM", by=None, pinned=False)
    await store.enable_alerts("discord", "9", ["NVIDIA/TensorRT-LLM"], by=None)
    assert "nvidia/tensorrt-llm" in await store.followed_repos()
    assert await tracked_set(store, DEFAULTS) == [*DEFAULTS, "NVIDIA/TensorRT-LLM"]


async def test_a_pinned_repository_stays_pinned_and_untrack_removes_it(db: TestDatabase) -> None:
    store = await db.open()
    await store.track_repo("triton-lang/triton", by="telegram:1", pinned=True)
    again = await store.track_repo("Triton-Lang/Triton", by="telegram:2", pinned=False)
    assert again.pinned and again.repo == "Triton-Lang/Triton"
    reopened = await db.open()
    assert [t.repo for t in await reopened.tracked_repos()] == ["Triton-Lang/Triton"]
    assert await tracked_set(reopened, DEFAULTS) == [*DEFAULTS, "Triton-Lang/Triton"]
    assert await reopened.untrack_repo("triton-lang/triton")
    assert not await reopened.untrack_repo("triton-lang/triton")
    assert await reopened.tracked_repos() == []


# -- watches ----------------------------------------------------------------------------------


async def test_watches_are_unique_per_chat_in_any_case_and_bounded(db: TestDatabase) -> None:
    store = await db.open()
    change = await store.add_watches("telegram", "1", ["FP8", "MoE"], limit=3)
    assert (change.added, change.existing, change.total) == (("FP8", "MoE"), (), 2)
    change = await store.add_watches("telegram", "1", ["moe", "Blackwell"], limit=3)
    assert (change.added, change.existing, change.total) == (("Blackwell",), ("MoE",), 3)
    with pytest.raises(WatchLimitExceeded) as refused:
        await store.add_watches("telegram", "1", ["Hopper"], limit=3)
    assert (refused.value.current, refused.value.adding) == (3, 1)
    await store.add_watches("telegram", "2", ["FP8"], limit=3)
    assert await store.remove_watches("telegram", "1", ["fp8", "nothing"]) == ("FP8",)
    assert await store.all_watches() == {
        ("telegram", "1"): ("MoE", "Blackwell"),
        ("telegram", "2"): ("FP8",),
    }


async def test_two_instances_adding_watches_at_once_respect_the_limit(db: TestDatabase) -> None:
    first, second = await db.open(), await db.open()
    outcomes = await asyncio.gather(
        first.add_watches("telegram", "1", [f"a{i}" for i in range(3)], limit=4),
        second.add_watches("telegram", "1", [f"b{i}" for i in range(3)], limit=4),
        return_exceptions=True,
    )
    assert sum(isinstance(o, WatchLimitExceeded) for o in outcomes) == 1
    assert len(await first.watches_of("telegram", "1")) == 3


# -- alert opt-ins and cursors ----------------------------------------------------------------


async def test_alert_opt_ins_merge_named_repositories_and_stop_by_name(db: TestDatabase) -> None:
    store = await db.open()
    first = await store.enable_alerts("telegram", "1", ["vllm-project/vllm"], by="1", now=T0)
    assert first.repos == ("vllm-project/vllm",) and first.since == T0
    merged = await store.enable_alerts(
        "telegram", "1", ["NVIDIA/cutlass"], by="1", now=T0 + timedelta(days=1)
    )
    assert merged.repos == ("vllm-project/vllm", "NVIDIA/cutlass") and merged.since == T0
    left = await store.disable_alerts("telegram", "1", ["VLLM-project/vllm"])
    assert left is not None and left.repos == ("NVIDIA/cutlass",)
    assert await store.disable_alerts("telegram", "1", ["NVIDIA/cutlass"]) is None
    assert await store.alert_chat("telegram", "1") is None


async def test_all_minus_one_needs_the_tracked_list(db: TestDatabase) -> None:
    store = await db.open()
    await store.enable_alerts("telegram", "1", None, by=None)
    unchanged = await store.disable_alerts("telegram", "1", ["vllm-project/vllm"])
    assert unchanged is not None and unchanged.repos is None
    left = await store.disable_alerts(
        "telegram", "1", ["vllm-project/vllm"], tracked=list(DEFAULTS)
    )
    assert left is not None and left.repos == ("deepseek-ai/DeepGEMM",)
    assert [c.key for c in await store.alert_chats()] == [("telegram", "1")]


async def test_the_first_sighting_of_a_repository_is_kept_across_instances(
    db: TestDatabase,
) -> None:
    first, second = await db.open(), await db.open()
    seen = await first.release_first_seen("vllm-project/vllm", now=T0)
    later = await second.release_first_seen("VLLM-project/vllm", now=T0 + timedelta(hours=1))
    assert seen == later == T0


# -- alerts -----------------------------------------------------------------------------------


async def test_a_release_is_alerted_once_per_chat_across_instances_and_restarts(
    db: TestDatabase,
) -> None:
    store = await db.open()
    chats = [("telegram", "1"), ("telegram", "2"), ("discord", "3")]
    created = await store.ensure_alerts("o/r", "v1", chats, "**v1**", published_at=T0, now=T0)
    assert created == 3
    claims = await store.claim_alerts(
        platforms=["telegram"], worker="a", limit=10, lease_seconds=60, now=T0
    )
    assert sorted(c.chat_id for c in claims) == ["1", "2"]
    assert all(c.message == "**v1**" and c.attempts == 1 for c in claims)
    for claim in claims:
        assert await store.mark_alert_sent(claim, ["11"])
    await store.close()

    restarted = await db.open()
    assert await restarted.ensure_alerts("o/r", "v1", chats, "again", now=T0) == 0
    rest = await restarted.claim_alerts(
        platforms=None, worker="b", limit=10, lease_seconds=60, now=T0
    )
    assert [(c.platform, c.chat_id) for c in rest] == [("discord", "3")]
    assert await restarted.alert_counts() == {"sent": 2, "sending": 1}
    assert await restarted.alert_status("telegram", "1", "o/r", "v1") == "sent"


async def test_two_instances_claiming_at_once_share_the_alerts_without_overlap(
    db: TestDatabase,
) -> None:
    first, second = await db.open(), await db.open()
    chats = [("telegram", str(i)) for i in range(40)]
    await first.ensure_alerts("o/r", "v2", chats, "m", now=T0)
    a, b = await asyncio.gather(
        first.claim_alerts(platforms=None, worker="a", limit=25, lease_seconds=60, now=T0),
        second.claim_alerts(platforms=None, worker="b", limit=25, lease_seconds=60, now=T0),
    )
    assert not {c.id for c in a} & {c.id for c in b}
    assert len(a) + len(b) == 40


async def test_failed_alerts_retry_later_and_expired_claims_are_taken_over(
    db: TestDatabase,
) -> None:
    store = await db.open()
    await store.ensure_alerts("o/r", "v3", [("telegram", "1"), ("telegram", "2")], "m", now=T0)
    one, two = await store.claim_alerts(  # a worker that dies: its leases run out at once
        platforms=None, worker="a", limit=10, lease_seconds=0, now=T0
    )
    assert await store.mark_alert_failed(
        one, "timeout", final=False, retry_at=T0 + timedelta(seconds=30)
    )
    soon = await store.claim_alerts(
        platforms=None, worker="b", limit=10, lease_seconds=60, now=T0 + timedelta(seconds=10)
    )
    assert [c.chat_id for c in soon] == ["2"]  # the dead worker's claim, not the retry yet
    later = await store.claim_alerts(
        platforms=None, worker="b", limit=10, lease_seconds=60, now=T0 + timedelta(seconds=90)
    )
    assert [c.chat_id for c in later] == ["1"]
    assert not await store.mark_alert_sent(two, ["x"])  # the old claim cannot mark it any more


async def test_a_follow_counts_while_its_chat_is_on_all_of_that_kind(db: TestDatabase) -> None:
    store = await db.open()
    await store.track_repo("InternLM/lmdeploy", by=None, pinned=False)
    await subscribe(store, "1", None)
    await store.follow_repos("telegram", "1", ["InternLM/lmdeploy"], kind="daily")
    await store.follow_repos("telegram", "1", ["InternLM/lmdeploy"], kind="daily")  # idempotent
    assert await store.followed_repos() == {"internlm/lmdeploy"}
    await store.follow_repos("telegram", "1", ["InternLM/lmdeploy"], kind="alerts")
    await store.unfollow_repos("telegram", "1", None, kind="daily")
    assert await store.followed_repos() == set()  # no alert opt-in: the alerts follow is idle
    await store.enable_alerts("telegram", "1", None, by=None)
    assert await store.followed_repos() == {"internlm/lmdeploy"}
    assert await store.untrack_repo("InternLM/lmdeploy")
    assert await store.followed_repos() == set()
