"""Fan-out and scheduling: each chat gets each day's post once, on time, despite crashes and limits.

The platform here is a recording Sender (a stand-in for Telegram/Discord: the adapters test their
real HTTP paths); the store is real (SQLite, and PostgreSQL when TEST_DATABASE_URL is set); the
pipeline is the real one, reading a digest archived beforehand so nothing is collected.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import pytest
from fake_github import FakeGitHub, commit
from store_backends import BACKENDS, TestDatabase, isolated_database

from bot.delivery import FanOutResult, fan_out, one_line
from bot.pipeline import Pipeline
from bot.platforms.base import ChatGone, RetryLater, Sender
from bot.post import post_once
from bot.scheduler import Scheduler, due_at, due_chats
from bot.settings import Settings
from bot.store import Chat, Store
from collectors.github import GitHubClient
from collectors.sample import load_sample
from summarizer.compose import Composer

DAY = date(2026, 1, 15)  # the bundled sample day (Asia/Shanghai)
# 09:00 in Shanghai on the morning after DAY, when a default chat receives DAY's digest.
POST_0900 = datetime(2026, 1, 16, 1, 0, tzinfo=UTC)
SHANGHAI = "Asia/Shanghai"
LONG_AGO = datetime(2026, 1, 1, tzinfo=UTC)
T = TypeVar("T")


class RecordingSender(Sender):
    """A platform that records what it was asked to send and fails when told to.

    A digest is one message here (`render` keeps it whole); `sent` lists (chat, markdown).
    """

    message_limit = 1_000_000

    def __init__(self, platform: str = "telegram", *, rate_per_second: float = 1000.0) -> None:
        self.platform = platform
        self.rate_per_second = rate_per_second
        super().__init__()
        self.sent: list[tuple[str, str]] = []
        self.gone: set[str] = set()
        self.retry_after: dict[str, list[float]] = {}
        self.broken: dict[str, int] = {}
        self.hang_after: int | None = None
        self.hanging = asyncio.Event()
        self.delivered = asyncio.Event()
        self.calls = 0

    def render(self, markdown: str) -> list[str]:
        """The digest as one message."""
        return [markdown]

    async def send_part(self, chat_id: str, part: Any, *, reply_to: str | None = None) -> str:
        """Send (record) `part` to `chat_id`, or fail the way the test asked."""
        markdown = str(part)
        self.calls += 1
        if self.hang_after is not None and len(self.sent) >= self.hang_after:
            self.hanging.set()
            await asyncio.Event().wait()  # a send that never completes: the worker "dies" here
        if chat_id in self.gone:
            raise ChatGone("Forbidden: bot was blocked by the user")
        if self.retry_after.get(chat_id):
            raise RetryLater(self.retry_after[chat_id].pop(0))
        if self.broken.get(chat_id, 0) > 0:
            self.broken[chat_id] -= 1
            raise ConnectionResetError("connection reset by peer")
        self.sent.append((chat_id, markdown))
        self.delivered.set()
        return f"{chat_id}-{len(self.sent)}"

    def receivers(self) -> Counter[str]:
        """How many posts each chat received."""
        return Counter(chat_id for chat_id, _ in self.sent)


@dataclass
class World:
    """A store holding DAY's archived digest, a pipeline over it, and a recording sender."""

    db: TestDatabase
    store: Store
    settings: Settings
    pipeline: Pipeline
    github: GitHubClient
    sender: RecordingSender

    @property
    def senders(self) -> dict[str, RecordingSender]:
        return {self.sender.platform: self.sender}

    async def subscribe(
        self,
        chat_ids: Iterable[str | int],
        repos: list[str] | None = None,
        *,
        post_time: str = "09:00",
        timezone: str = SHANGHAI,
        at: datetime = LONG_AGO,
    ) -> list[Chat]:
        return [
            await self.store.subscribe(
                self.sender.platform,
                str(chat_id),
                repos,
                by="admin",
                post_time=post_time,
                timezone=timezone,
                now=at,
            )
            for chat_id in chat_ids
        ]

    async def fan_out(self, now: datetime = POST_0900, **options: object) -> FanOutResult:
        return await fan_out(
            self.store,
            self.pipeline,
            self.senders,
            DAY,
            worker=str(options.pop("worker", "w1")),
            now=now,
            **options,  # type: ignore[arg-type]
        )

    def scheduler(self, clock_now: datetime = POST_0900, **options: object) -> Scheduler:
        return Scheduler(
            self.settings,
            self.store,
            self.pipeline,
            self.senders,
            lambda: clock_now,
            worker="sched",
            **options,  # type: ignore[arg-type]
        )


async def eventually(
    read: Callable[[], Awaitable[T]], check: Callable[[T], bool], *, tries: int = 500
) -> T:
    """Poll `read` until `check` holds (the state comes from other tasks)."""
    for _ in range(tries):
        value = await read()
        if check(value):
            return value
        await asyncio.sleep(0.01)
    raise AssertionError(f"never reached; last {value!r}")


async def archive_sample(store: Store, settings: Settings) -> None:
    activity = load_sample()
    digest = await Composer(None, None).compose(activity, settings.digest_repos)
    await store.save_digest(digest, activity)


@pytest.fixture(params=BACKENDS)
async def db(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[TestDatabase]:
    async with isolated_database(request.param, tmp_path) as database:
        yield database


def pipeline_for(settings: Settings, store: Store, github: GitHubClient) -> Pipeline:
    return Pipeline(settings, store, github=github, composer=Composer(None, store))


@pytest.fixture
async def world(db: TestDatabase) -> AsyncIterator[World]:
    settings = Settings(database_url=db.url)
    store = await db.open()
    await archive_sample(store, settings)
    # Port 9 (discard) is never contacted: the day is archived, so nothing is collected.
    async with GitHubClient("http://127.0.0.1:9", None, None) as github:
        yield World(
            db, store, settings, pipeline_for(settings, store, github), github, RecordingSender()
        )


# -- fan-out ---------------------------------------------------------------------------------


async def test_fan_out_sends_each_active_chat_the_digest_once(world: World) -> None:
    await world.subscribe(range(5))
    result = await world.fan_out()
    assert (result.sent, result.failed, result.deactivated) == (5, 0, 0)
    assert world.sender.receivers() == {str(i): 1 for i in range(5)}
    assert all(text.startswith("今日的 AI Infra 的新闻如下。") for _, text in world.sender.sent)
    again = await world.fan_out(now=POST_0900 + timedelta(hours=1))
    assert again.sent == 0 and len(world.sender.sent) == 5
    assert await world.store.delivery_counts(DAY) == {"sent": 5}


async def test_a_chat_following_named_repositories_gets_only_their_sections(world: World) -> None:
    await world.subscribe(["all"])
    await world.subscribe(["vllm"], ["vllm-project/vllm"])
    await world.fan_out()
    texts = dict(world.sender.sent)
    assert "### vllm-project/vllm" in texts["vllm"]
    assert "### NVIDIA/cutlass" not in texts["vllm"]
    assert "### NVIDIA/cutlass" in texts["all"]


async def test_a_restart_during_fan_out_neither_loses_nor_repeats_a_post(world: World) -> None:
    chats = [str(i) for i in range(40)]
    await world.subscribe(chats)
    world.sender.hang_after = 15
    crashed = asyncio.create_task(world.fan_out(worker="crashed", lease_seconds=2, batch_size=10))
    await world.sender.hanging.wait()
    # The process dies while its next sends are in flight (not yet accepted by the platform);
    # what was accepted is marked. Its claims stay leased.
    await eventually(lambda: world.store.delivery_counts(DAY), lambda c: c.get("sent") == 15)
    crashed.cancel()
    await asyncio.gather(crashed, return_exceptions=True)
    assert len(world.sender.sent) == 15
    world.sender.hang_after = None

    # Restarted before the dead worker's leases run out (the database's clock decides, whatever
    # the restarted worker's clock says): its claims are left alone.
    early = await world.fan_out(now=POST_0900 + timedelta(seconds=120), worker="restarted")
    assert max(world.sender.receivers().values()) == 1
    # After they expire, the rest is delivered, and nobody twice.
    await asyncio.sleep(2.5)
    late = await world.fan_out(now=POST_0900 + timedelta(seconds=120), worker="restarted")
    assert world.sender.receivers() == {chat: 1 for chat in chats}
    assert 15 + early.sent + late.sent == 40
    assert await world.store.delivery_counts(DAY) == {"sent": 40}


async def test_two_workers_fanning_out_at_once_deliver_each_chat_exactly_once(
    world: World,
) -> None:
    chats = [str(i) for i in range(60)]
    await world.subscribe(chats)
    other_store = await world.db.open()
    other = pipeline_for(world.settings, other_store, world.github)
    results = await asyncio.gather(
        world.fan_out(worker="a", batch_size=5, concurrency=3),
        fan_out(other_store, other, world.senders, DAY, worker="b", now=POST_0900, batch_size=5),
    )
    assert world.sender.receivers() == {chat: 1 for chat in chats}
    assert sum(r.sent for r in results) == 60


async def test_a_chat_that_blocked_the_bot_is_deactivated_and_not_retried(world: World) -> None:
    await world.subscribe(["1", "2", "3"])
    world.sender.gone.add("2")
    result = await world.fan_out()
    assert (result.sent, result.deactivated) == (2, 1)
    gone = await world.store.get_chat("telegram", "2")
    assert gone is not None and not gone.active
    assert "blocked" in (gone.deactivation_reason or "")
    assert await world.store.delivery_status("telegram", "2", DAY) == "failed"
    calls = world.sender.calls
    await world.fan_out(now=POST_0900 + timedelta(hours=2))
    assert world.sender.calls == calls


async def test_retry_later_is_waited_out_and_the_post_arrives_once(world: World) -> None:
    await world.subscribe(["1", "2"])
    world.sender.retry_after["1"] = [0.05, 0.05]
    result = await world.fan_out()
    assert result.sent == 2 and result.retrying == 0
    assert world.sender.receivers() == {"1": 1, "2": 1}
    assert world.sender.calls == 4


async def test_a_very_long_retry_later_leaves_the_post_for_a_later_round(world: World) -> None:
    await world.subscribe(["1"])
    world.sender.retry_after["1"] = [3600.0]
    result = await world.fan_out(max_wait=60.0)
    assert result.retrying == 1 and world.sender.sent == []
    retry_at = await world.store.next_retry_at(DAY)
    assert retry_at is not None and retry_at >= POST_0900 + timedelta(seconds=3600)
    await world.fan_out(now=retry_at + timedelta(seconds=1))
    assert world.sender.receivers() == {"1": 1}


async def test_transient_errors_are_retried_later_then_given_up_after_the_last_attempt(
    world: World,
) -> None:
    await world.subscribe(["flaky", "dead"])
    # flaky fails once, then again after the one quick retry; dead never gets through.
    world.sender.broken = {"flaky": 2, "dead": 99}
    first = await world.fan_out(max_attempts=3, retry_pauses=(0.01,))
    assert (first.sent, first.retrying) == (0, 2)
    now = POST_0900
    for _ in range(4):  # later rounds, each after the retry time has come
        retry_at = await world.store.next_retry_at(DAY)
        if retry_at is None:
            break
        now = max(now, retry_at) + timedelta(seconds=1)
        await world.fan_out(now=now, max_attempts=3, retry_pauses=(0.01,))
    assert world.sender.receivers() == {"flaky": 1}
    assert await world.store.delivery_status("telegram", "dead", DAY) == "failed"
    # flaky: 2 failed tries, then sent in the second attempt; dead: 3 attempts of 2 tries each.
    assert world.sender.calls == 3 + 3 * 2


async def test_chats_of_platforms_without_a_sender_are_skipped_not_claimed(world: World) -> None:
    await world.subscribe(["1"])
    await world.store.subscribe("discord", "9", None, by=None, post_time="09:00", timezone="UTC")
    result = await world.fan_out()
    assert (result.sent, result.skipped) == (1, 1)
    assert await world.store.delivery_status("discord", "9", DAY) is None


async def test_stopping_hands_untried_claims_back_for_others(world: World) -> None:
    await world.subscribe(range(10))
    stop = asyncio.Event()
    stop.set()
    result = await world.fan_out(stop=stop)
    assert result.sent == 0
    assert await world.store.delivery_counts(DAY) == {"pending": 10}


def test_errors_are_one_line_without_bot_tokens() -> None:
    error = RuntimeError(
        "POST https://api.telegram.org/bot123456:AAH-abcdefghijklmnopqrstuvwxyz/x\n 500"
    )
    line = one_line(error)
    assert "AAH-abc" not in line and "\n" not in line and "500" in line


# -- when chats are due ----------------------------------------------------------------------


def chat(post_time: str = "09:00", timezone: str = SHANGHAI, **fields: object) -> Chat:
    values: dict[str, object] = {
        "platform": "telegram",
        "chat_id": "1",
        "repos": None,
        "post_time": post_time,
        "timezone": timezone,
        "active": True,
        "subscribed_by": None,
        "subscribed_at": LONG_AGO,
    }
    values.update(fields)
    return Chat(**values)  # type: ignore[arg-type]


def test_a_shanghai_chat_gets_the_day_at_its_time_the_next_morning() -> None:
    assert due_at(DAY, "09:00", SHANGHAI, SHANGHAI) == POST_0900
    assert due_chats([chat()], POST_0900 - timedelta(minutes=1), day=DAY) == []
    assert due_chats([chat()], POST_0900, day=DAY) == [chat()]


def test_a_chat_behind_the_digest_zone_gets_the_day_at_its_first_posting_time_after_it_ends() -> (
    None
):
    # DAY ends at 2026-01-15 08:00 in Los Angeles: a 09:00 chat gets it an hour later,
    # a 07:00 chat the next morning.
    la = "America/Los_Angeles"
    assert due_at(DAY, "09:00", la, SHANGHAI) == datetime(2026, 1, 15, 17, 0, tzinfo=UTC)
    assert due_at(DAY, "07:00", la, SHANGHAI) == datetime(2026, 1, 16, 15, 0, tzinfo=UTC)


def test_default_day_is_yesterday_in_the_digest_zone() -> None:
    assert due_chats([chat()], POST_0900) == [chat()]
    assert due_chats([chat(post_time="10:00")], POST_0900) == []


def test_a_chat_subscribed_after_its_posting_time_starts_with_the_next_day() -> None:
    late = chat(subscribed_at=POST_0900 + timedelta(hours=2))
    assert due_chats([late], POST_0900 + timedelta(hours=3), day=DAY) == []
    assert due_chats([chat(active=False)], POST_0900, day=DAY) == []


# -- the scheduler ---------------------------------------------------------------------------


async def test_a_tick_before_the_posting_time_sends_nothing_after_it_once_then_nothing(
    world: World,
) -> None:
    await world.subscribe(["1", "2"])
    scheduler = world.scheduler()
    before = await scheduler.tick(POST_0900 - timedelta(minutes=1))
    assert before.ready and before.due == 0 and world.sender.sent == []
    at = await scheduler.tick(POST_0900)
    assert at.delivery is not None and at.delivery.sent == 2
    again = await scheduler.tick(POST_0900 + timedelta(seconds=30))
    assert again.delivery is not None and again.delivery.sent == 0
    assert world.sender.receivers() == {"1": 1, "2": 1}


async def test_each_chat_is_posted_at_its_own_local_time(world: World) -> None:
    await world.subscribe(["early"], post_time="08:00")
    await world.subscribe(["late"], post_time="18:30")
    await world.subscribe(["berlin"], post_time="08:00", timezone="Europe/Berlin")
    scheduler = world.scheduler()
    await scheduler.tick(POST_0900)
    assert list(world.sender.receivers()) == ["early"]
    await scheduler.tick(datetime(2026, 1, 16, 7, 0, tzinfo=UTC))  # 08:00 in Berlin
    assert list(world.sender.receivers()) == ["early", "berlin"]
    await scheduler.tick(datetime(2026, 1, 16, 10, 30, tzinfo=UTC))  # 18:30 in Shanghai
    assert world.sender.receivers() == {"early": 1, "berlin": 1, "late": 1}


async def test_catch_up_after_downtime_posts_the_missed_day_once(world: World) -> None:
    await world.subscribe(["1", "2"], post_time="08:00")
    await world.subscribe(["3"], post_time="20:00")
    back = POST_0900 + timedelta(hours=5)  # 14:00 in Shanghai: 08:00 was missed, 20:00 not yet
    first = world.scheduler()
    await first.tick(back)
    assert world.sender.receivers() == {"1": 1, "2": 1}
    restarted = world.scheduler()  # a second start (or instance): nothing twice
    await restarted.tick(back + timedelta(minutes=1))
    assert world.sender.receivers() == {"1": 1, "2": 1}


async def test_the_scheduler_run_loop_posts_and_stops_when_asked(world: World) -> None:
    await world.subscribe(["1"])
    stop = asyncio.Event()
    scheduler = world.scheduler(interval=0.01)
    task = asyncio.create_task(scheduler.run(stop))
    await world.sender.delivered.wait()
    stop.set()
    await asyncio.wait_for(task, timeout=10)
    assert world.sender.receivers() == {"1": 1}


async def test_post_once_delivers_the_archived_day_to_every_chat(world: World) -> None:
    await world.subscribe(["1", "2"])
    result = await post_once(world.settings, DAY, world.senders, store=world.store)
    assert result.sent == 2
    again = await post_once(world.settings, DAY, world.senders, store=world.store)
    assert again.sent == 0 and world.sender.receivers() == {"1": 1, "2": 1}


async def test_post_once_opens_the_database_of_the_settings(tmp_path: Path) -> None:
    settings = Settings(database_url=f"sqlite+aiosqlite:///{tmp_path}/data/bot.db")
    store = await Store.open(settings.database_url)
    await archive_sample(store, settings)
    await store.subscribe("telegram", "1", None, by=None, post_time="09:00", timezone=SHANGHAI)
    await store.close()
    sender = RecordingSender()
    result = await post_once(settings, DAY, {"telegram": sender})
    assert result.sent == 1 and sender.receivers() == {"1": 1}


async def test_the_day_is_generated_once_after_it_ends_and_before_the_first_post(
    tmp_path: Path,
) -> None:
    async with FakeGitHub() as server:
        server.add_repo("o/r", commits=[commit(when="2026-01-15T03:00:00Z", message="Fix (#1)")])
        settings = Settings(
            digest_repos=["o/r"],
            github_api_url=server.url,
            database_url=f"sqlite+aiosqlite:///{tmp_path}/bot.db",
        )
        store = await Store.open(settings.database_url)
        other_store = await Store.open(settings.database_url)
        await store.subscribe(
            "telegram", "1", None, by=None, post_time="09:00", timezone=SHANGHAI, now=LONG_AGO
        )
        sender = RecordingSender()
        async with GitHubClient(server.url, None, store) as github:

            def instance(on: Store) -> Scheduler:
                return Scheduler(
                    settings, on, pipeline_for(settings, on, github), {"telegram": sender}
                )

            first, second = instance(store), instance(other_store)
            midnight = datetime(2026, 1, 15, 16, 0, tzinfo=UTC)  # 00:00 in Shanghai
            settling = await first.tick(midnight + timedelta(minutes=2))
            assert not settling.ready and server.requests == []

            assert await other_store.try_lock("generate:2026-01-15", "third", 60)
            locked_out = await first.tick(midnight + timedelta(minutes=6))
            assert not locked_out.ready and server.requests == []
            await other_store.release_lock("generate:2026-01-15", "third")

            generated = await first.tick(midnight + timedelta(minutes=7))
            assert generated.ready and generated.due == 0 and server.requests
            digest = await store.load_digest(DAY)
            assert digest is not None and [s.repo for s in digest.sections] == ["o/r"]

            asked = len(server.requests)
            assert (await second.tick(midnight + timedelta(minutes=8))).ready
            assert (await second.tick(POST_0900)).delivery is not None
            assert (await first.tick(POST_0900 + timedelta(seconds=30))).ready
            assert len(server.requests) == asked
            assert sender.receivers() == {"1": 1}
        await other_store.close()
        await store.close()
