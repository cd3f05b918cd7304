"""Several instances on one database: one generation per day, a shared fan-out, one Telegram
poller (elected; taken over when it dies), webhook mode with a secret, a shared send budget.

Instances are separate Stores (own engines and pools) on the same database; Telegram is the Bot
API stand-in over real HTTP, GitHub the REST stand-in.
"""

from __future__ import annotations

import asyncio
import socket
from collections import Counter
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from aiohttp import web
from fake_github import FakeGitHub, commit
from fake_telegram import FakeTelegram
from pydantic import SecretStr
from service_support import ArchivePipeline, archive
from store_backends import BACKENDS, TestDatabase, isolated_database
from telegram import Bot

from bot.app import StartupError, run
from bot.commands import CommandService
from bot.fleet import POLLER_LOCK, Election, Fleet
from bot.pipeline import Pipeline
from bot.platforms.telegram import RateGate, TelegramAdapter, TelegramSender
from bot.scheduler import Scheduler
from bot.settings import Settings
from bot.store import Store
from bot.store.tables import deliveries, runs
from collectors.github import GitHubClient
from summarizer.compose import Composer

DAY = date(2026, 2, 4)
POST = datetime(2026, 2, 5, 1, 0, tzinfo=UTC)  # 09:00 in Shanghai: DAY's posting time
LONG_AGO = datetime(2026, 1, 1, tzinfo=UTC)
REPOS = ["o/alpha", "o/beta"]


@pytest.fixture(params=BACKENDS)
async def db(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[TestDatabase]:
    async with isolated_database(request.param, tmp_path) as database:
        yield database


@pytest.fixture
async def pg(tmp_path: Path) -> AsyncIterator[TestDatabase]:
    async with isolated_database("postgresql", tmp_path) as database:
        yield database


async def count_runs(store: Store, day: date) -> int:
    async with store.engine.connect() as conn:
        query = sa.select(sa.func.count()).select_from(runs).where(runs.c.day == day)
        return int((await conn.execute(query)).scalar() or 0)


async def senders_by_worker(store: Store, day: date) -> dict[str, int]:
    async with store.engine.connect() as conn:
        query = (
            sa.select(deliveries.c.claimed_by, sa.func.count())
            .where(deliveries.c.day == day, deliveries.c.status == "sent")
            .group_by(deliveries.c.claimed_by)
        )
        return {str(w): int(n) for w, n in (await conn.execute(query)).all()}


class LaggingPipeline(Pipeline):
    """A pipeline whose first "is it archived?" answer is stale (read just before another
    instance archived the day): the case a generation lock alone does not cover."""

    stale_reads = 1

    async def has_digest(self, day: date) -> bool:
        if self.stale_reads > 0:
            self.stale_reads -= 1
            return False
        return await super().has_digest(day)


def github_day(fake: FakeGitHub) -> None:
    for repo in REPOS:
        fake.add_repo(repo, commits=[commit(when="2026-02-04T03:00:00Z", message=f"{repo} fix")])


# -- generation once, fan-out shared ---------------------------------------------------------


async def test_two_schedulers_generate_the_day_once_and_share_the_fan_out(
    pg: TestDatabase,
) -> None:
    settings = Settings(digest_repos=REPOS)
    first, second = await pg.open(), await pg.open()
    for n in range(30):
        await first.subscribe(
            "telegram", str(1000 + n), None, by=None, post_time="09:00",
            timezone="Asia/Shanghai", now=LONG_AGO,
        )  # fmt: skip
    async with (
        FakeGitHub(delay=0.02) as github,
        FakeTelegram() as telegram,
        Bot(telegram.token, base_url=f"{telegram.url}/bot") as bot_a,
        Bot(telegram.token, base_url=f"{telegram.url}/bot") as bot_b,
        GitHubClient(github.url, None, first, backoff=0.01) as gh_a,
        GitHubClient(github.url, None, second, backoff=0.01) as gh_b,
    ):
        github_day(github)
        schedulers = [
            Scheduler(
                settings,
                store,
                Pipeline(settings, store, github=gh, composer=Composer(None, store)),
                {"telegram": TelegramSender(bot)},
                lambda: POST,
                worker=name,
                fan_out_options={"batch_size": 4, "concurrency": 2},
            )
            for name, store, gh, bot in (("a", first, gh_a, bot_a), ("b", second, gh_b, bot_b))
        ]
        # Just after midnight: both try to generate, one does; no chat is due yet.
        early = POST - timedelta(hours=8)
        ticks = await asyncio.gather(*(s.tick(early) for s in schedulers))
        assert [t.ready for t in ticks].count(True) >= 1
        assert await count_runs(first, DAY) == 1
        for _ in range(20):
            await asyncio.gather(*(s.tick(POST) for s in schedulers))
            if (await first.delivery_counts(DAY)).get("sent") == 30:
                break

        received = Counter(m.chat_id for m in telegram.sent)
        assert received == {str(1000 + n): 1 for n in range(30)}
        assert await count_runs(first, DAY) == 1
        assert github.count(path="/repos/o/alpha/releases") == 1
        by_worker = await senders_by_worker(first, DAY)
        assert sum(by_worker.values()) == 30
        assert set(by_worker) == {"a", "b"}  # both instances took part


async def test_an_instance_that_read_the_archive_just_before_another_wrote_it_does_not_redo_it(
    db: TestDatabase,
) -> None:
    settings = Settings(digest_repos=REPOS)
    first, second = await db.open(), await db.open()
    async with (
        FakeGitHub() as github,
        GitHubClient(github.url, None, first, backoff=0.01) as gh_a,
        GitHubClient(github.url, None, second, backoff=0.01) as gh_b,
    ):
        github_day(github)
        done = Scheduler(
            settings, first, Pipeline(settings, first, github=gh_a, composer=Composer(None, first)),
            {}, lambda: POST, worker="a",
        )  # fmt: skip
        late = Scheduler(
            settings, second,
            LaggingPipeline(settings, second, github=gh_b, composer=Composer(None, second)),
            {}, lambda: POST, worker="b",
        )  # fmt: skip
        assert (await done.tick(POST)).ready
        assert (await late.tick(POST)).ready
        assert await count_runs(first, DAY) == 1
        assert github.count(path="/repos/o/alpha/releases") == 1


# -- the Telegram poller ---------------------------------------------------------------------


class ExclusiveTelegram(FakeTelegram):
    """The stand-in with Telegram's rule for long polling: a getUpdates while another one is
    still open (its client connected) is answered 409 Conflict."""

    def __post_init__(self) -> None:
        super().__post_init__()
        self.open_polls: list[web.Request] = []
        self.conflicts = 0

    async def _dispatch(self, request: web.Request) -> web.Response:
        if request.match_info["method"] != "getUpdates":
            return await super()._dispatch(request)
        # A poll whose client went away (cancelled, process killed) no longer counts.
        self.open_polls = [
            r for r in self.open_polls if r.transport is not None and not r.transport.is_closing()
        ]
        if self.open_polls:
            self.conflicts += 1
            return web.json_response(
                {
                    "ok": False,
                    "error_code": 409,
                    "description": "Conflict: terminated by other getUpdates request; make "
                    "sure that only one bot instance is running",
                },
                status=409,
            )
        self.open_polls.append(request)
        try:
            return await super()._dispatch(request)
        finally:
            if request in self.open_polls:
                self.open_polls.remove(request)


def telegram_settings(telegram: FakeTelegram, **values: object) -> Settings:
    return Settings(
        telegram_bot_token=SecretStr(telegram.token),
        telegram_api_url=telegram.url,
        **values,  # type: ignore[arg-type]
    )


async def open_adapter(settings: Settings, store: Store) -> TelegramAdapter:
    service = CommandService(settings, store, ArchivePipeline(store), clock=lambda: POST)
    adapter = TelegramAdapter(settings, service)
    await adapter.open()
    return adapter


def polling(adapter: TelegramAdapter) -> bool:
    return adapter.application.updater is not None and adapter.application.updater.running


async def test_only_the_elected_instance_polls_and_answers(db: TestDatabase) -> None:
    stores = [await db.open(), await db.open()]
    await archive(stores[0], DAY)
    async with ExclusiveTelegram() as telegram:
        settings = telegram_settings(telegram)
        adapters = [await open_adapter(settings, store) for store in stores]
        stop = asyncio.Event()
        elections = [
            Election(store, POLLER_LOCK, f"i{n}", ttl=3.0) for n, store in enumerate(stores)
        ]
        tasks = [
            asyncio.create_task(
                e.run(stop, partial(a.start_polling, poll_timeout=1), a.stop_polling)
            )
            for e, a in zip(elections, adapters, strict=True)
        ]
        try:
            await telegram.wait_until(lambda: telegram.requests["getUpdates"] >= 3)
            telegram.push_command(chat_id=5, user_id=5, text="/repos")
            replies = await telegram.wait_for_messages(1, chat_id=5)
            assert [e.leading for e in elections].count(True) == 1
            assert [polling(a) for a in adapters].count(True) == 1
        finally:
            stop.set()
            await asyncio.gather(*tasks)
            for adapter in adapters:
                await adapter.stop()
    assert len(replies) == 1
    assert telegram.conflicts == 0


async def test_a_dead_pollers_lease_expires_and_another_instance_takes_over(
    db: TestDatabase,
) -> None:
    store = await db.open()
    await archive(store, DAY)
    # The poller that held the lease died (SIGKILL): its lease is still there, unrenewed.
    assert await store.try_lock(POLLER_LOCK, "dead-instance", 1.0)
    async with ExclusiveTelegram() as telegram:
        adapter = await open_adapter(telegram_settings(telegram), store)
        election = Election(store, POLLER_LOCK, "survivor", ttl=1.5)
        stop = asyncio.Event()
        task = asyncio.create_task(
            election.run(stop, lambda: adapter.start_polling(poll_timeout=1), adapter.stop_polling)
        )
        try:
            await election.round(adapter.start_polling, adapter.stop_polling)
            assert not election.leading  # the dead one's lease has not expired yet
            telegram.push_command(chat_id=6, user_id=6, text="/help")
            await telegram.wait_for_messages(1, chat_id=6, within=10)
            assert election.leading
        finally:
            stop.set()
            await task
            await adapter.stop()
    # A clean stop hands the lease back at once.
    assert await store.try_lock(POLLER_LOCK, "next-instance", 30.0)


class FlakyLeases:
    """Leases whose database goes away after the first renewal."""

    def __init__(self) -> None:
        self.calls = 0

    async def try_lock(self, name: str, holder: str, ttl_seconds: float) -> bool:
        self.calls += 1
        if self.calls > 1:
            raise OSError("connection refused")
        return True

    async def release_lock(self, name: str, holder: str) -> None:
        raise OSError("connection refused")


async def test_a_poller_that_cannot_renew_stops_before_its_lease_can_expire() -> None:
    now = [0.0]
    events: list[str] = []

    async def elected() -> None:
        events.append("start")

    async def deposed() -> None:
        events.append("stop")

    election = Election(FlakyLeases(), POLLER_LOCK, "me", ttl=30.0, clock=lambda: now[0])
    await election.round(elected, deposed)
    for at in (10.0, 19.0):  # renewals fail, but the lease (until 30) surely still holds
        now[0] = at
        await election.round(elected, deposed)
    assert events == ["start"]
    now[0] = 21.0  # less than one renewal interval left: stop polling now
    await election.round(elected, deposed)
    assert events == ["start", "stop"] and not election.leading


# -- webhook mode ----------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def update(chat_id: int, text: str, update_id: int = 1) -> dict[str, Any]:
    return {
        "update_id": update_id,
        "message": {
            "message_id": update_id,
            "date": 1_770_000_000,
            "chat": {"id": chat_id, "type": "private", "first_name": "u"},
            "from": {"id": chat_id, "is_bot": False, "first_name": "u"},
            "text": text,
            "entities": [{"type": "bot_command", "offset": 0, "length": len(text.split()[0])}],
        },
    }


async def test_a_webhook_update_needs_the_secret_token_and_then_reaches_the_service(
    tmp_path: Path,
) -> None:
    store = await Store.open(f"sqlite+aiosqlite:///{tmp_path / 'db.sqlite3'}")
    port = free_port()
    hook = f"http://127.0.0.1:{port}/telegram/updates"
    try:
        async with FakeTelegram() as telegram, httpx.AsyncClient(timeout=10) as http:
            adapter = await open_adapter(telegram_settings(telegram), store)
            try:
                await adapter.start_webhook(
                    url=hook, secret="s3cret_Token-1", listen="127.0.0.1", port=port
                )
                without = await http.post(hook, json=update(11, "/repos", 1))
                wrong = await http.post(
                    hook,
                    json=update(12, "/repos", 2),
                    headers={"X-Telegram-Bot-Api-Secret-Token": "guess"},
                )
                right = await http.post(
                    hook,
                    json=update(13, "/repos", 3),
                    headers={"X-Telegram-Bot-Api-Secret-Token": "s3cret_Token-1"},
                )
                await telegram.wait_for_messages(1, chat_id=13)
            finally:
                await adapter.stop()
    finally:
        await store.close()
    assert (without.status_code, wrong.status_code, right.status_code) == (403, 403, 200)
    assert telegram.messages_to(13)[0].plain.startswith("跟踪的仓库")
    assert telegram.messages_to(11) == [] and telegram.messages_to(12) == []
    assert telegram.requests["setWebhook"] == 1
    assert telegram.requests["getUpdates"] == 0


async def test_webhook_mode_without_a_secret_does_not_start() -> None:
    settings = Settings(
        telegram_bot_token=SecretStr("123456:TEST-TOKEN"),
        telegram_webhook_url="https://bot.example.com/telegram",
    )
    with pytest.raises(StartupError) as raised:
        await run(settings, asyncio.Event())
    assert raised.value.status == 2
    assert "TELEGRAM_WEBHOOK_SECRET" in str(raised.value)


# -- the shared send budget ------------------------------------------------------------------


def test_each_of_n_instances_paces_at_one_nth_of_the_limit() -> None:
    now = [100.0]
    gate = RateGate(30, margin=1.0, clock=lambda: now[0])
    assert [round(gate.reserve("1"), 4) for _ in range(3)] == [0.0, 0.0333, 0.0667]
    gate.share(2)
    now[0] = 200.0
    assert [round(gate.reserve("1"), 4) for _ in range(3)] == [0.0, 0.0667, 0.1333]
    gate.share(1)
    now[0] = 300.0
    assert [round(gate.reserve("1"), 4) for _ in range(2)] == [0.0, 0.0333]


async def test_the_fleet_counts_live_instances_and_forgets_one_that_left(db: TestDatabase) -> None:
    first, second = await db.open(), await db.open()
    sizes: list[int] = []
    a = Fleet(first, "a", ttl=30.0, on_size=sizes.append)
    b = Fleet(second, "b", ttl=30.0)
    assert await a.beat() == 1
    assert await b.beat() == 2
    assert await a.beat() == 2
    stop = asyncio.Event()
    stop.set()
    await b.run(stop)  # a clean stop leaves the fleet at once
    assert await a.beat() == 1
    assert sizes == [2, 1]
    # A crashed instance's heartbeat counts until it expires.
    assert await first.try_lock("instance:ghost", "ghost", 30.0)
    assert await a.beat() == 2
    assert await first.try_lock("instance:ghost2", "ghost2", 0.0)  # one whose heartbeat ran out
    assert await a.beat() == 2
