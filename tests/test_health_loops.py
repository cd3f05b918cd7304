"""`health` tells the truth about this host's loops, and `run`'s loops come back on their own.

The scheduler beats a heartbeat row (`heartbeat:<host>:scheduler` in the store's `locks`) each
round; `health` fails once one of this host's heartbeats missed three beats. On SQLite and
PostgreSQL alike.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from datetime import date, datetime
from pathlib import Path

import pytest
from store_backends import BACKENDS, TestDatabase, isolated_database

from bot.app import supervise
from bot.health import Heartbeat, health, host_name
from bot.pipeline import NotReady
from bot.scheduler import Scheduler
from bot.settings import Settings, load_settings
from bot.store import Store
from collectors.activity import DayActivity
from collectors.cache import KeyValueCache
from summarizer.digest import Digest
from summarizer.llm import LLMClient

INTERVAL = 0.05  # three missed beats: 0.15 s


@pytest.fixture(params=BACKENDS)
async def db(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[TestDatabase]:
    async with isolated_database(request.param, tmp_path) as database:
        yield database


async def heartbeat_rows(store: Store) -> list[str]:
    return [n for n in await store.lock_names() if n.startswith(f"heartbeat:{host_name()}:")]


async def wait_for_beat(store: Store) -> None:
    for _ in range(500):
        if await heartbeat_rows(store):
            return
        await asyncio.sleep(0.01)
    raise AssertionError("the scheduler never beat")


class NeverReady:
    """A pipeline whose day is never ready: each tick has nothing to do but beat."""

    async def ensure_day(
        self,
        day: date,
        repos: Sequence[str] | None = None,
        *,
        now: datetime | None = None,
        wait: bool = True,
    ) -> Digest:
        raise NotReady(day, None, "Asia/Shanghai")

    async def day(self, day: date) -> tuple[Digest, DayActivity]:
        raise NotReady(day, None, "Asia/Shanghai")

    async def digest_for(
        self, day: date, repos: Sequence[str] | None, *, added: Sequence[str] = ()
    ) -> Digest:
        raise NotReady(day, None, "Asia/Shanghai")

    async def week_text(
        self, end: date, repos: Sequence[str], *, llm: LLMClient | None, cache: KeyValueCache | None
    ) -> str | None:
        return None


def scheduler_on(store: Store) -> Scheduler:
    return Scheduler(Settings(), store, NeverReady(), {}, interval=INTERVAL)


async def test_a_dead_scheduler_loop_turns_health_red(
    db: TestDatabase, capsys: pytest.CaptureFixture[str]
) -> None:
    store = await db.open()
    settings = load_settings(database_url=db.url)
    stop = asyncio.Event()
    loop = asyncio.create_task(scheduler_on(store).run(stop))
    await wait_for_beat(store)
    assert await health(settings, schema=db.schema) == 0
    assert "loops of" in capsys.readouterr().out

    loop.cancel()  # the loop dies without a clean stop: no more beats
    await asyncio.gather(loop, return_exceptions=True)
    await asyncio.sleep(6 * INTERVAL)

    assert await health(settings, schema=db.schema) == 1
    err = capsys.readouterr().err
    assert err.startswith("unhealthy: database ")
    assert f"loop scheduler of {host_name()} missed 3 heartbeats" in err
    assert err.count("\n") == 1


async def test_a_cleanly_stopped_scheduler_leaves_no_heartbeat_behind(db: TestDatabase) -> None:
    store = await db.open()
    stop = asyncio.Event()
    loop = asyncio.create_task(scheduler_on(store).run(stop))
    await wait_for_beat(store)
    stop.set()
    await loop
    await asyncio.sleep(6 * INTERVAL)
    assert await heartbeat_rows(store) == []
    settings = load_settings(database_url=db.url)
    assert await health(settings, schema=db.schema) == 0


async def test_another_hosts_dead_loop_does_not_make_this_one_unhealthy(
    db: TestDatabase,
) -> None:
    store = await db.open()
    await store.beat("heartbeat:some-other-host:scheduler", "x", 0)  # stale at once
    await Heartbeat(store, "scheduler", 60).beat()
    assert await health(load_settings(database_url=db.url), schema=db.schema) == 0


async def test_a_loop_that_keeps_failing_is_restarted_and_the_others_go_on() -> None:
    stop = asyncio.Event()
    starts: list[int] = []
    beats: list[int] = []

    async def flaky() -> None:
        starts.append(1)
        if len(starts) < 3:
            raise ConnectionError("Discord is down")
        await stop.wait()

    async def steady() -> None:
        while not stop.is_set():
            beats.append(1)
            await asyncio.sleep(0.01)

    tasks = [
        asyncio.create_task(supervise("discord", flaky, stop, first=0.01)),
        asyncio.create_task(supervise("scheduler", steady, stop, first=0.01)),
    ]
    for _ in range(500):
        if len(starts) >= 3:
            break
        await asyncio.sleep(0.01)
    stop.set()
    await asyncio.gather(*tasks)
    assert len(starts) == 3  # failed twice, started again each time, then ran until stop
    assert beats  # the other loop never stopped


async def test_a_fatal_error_ends_supervision_and_propagates() -> None:
    class Rejected(Exception):
        pass

    async def rejected() -> None:
        raise Rejected("token rejected")

    with pytest.raises(Rejected):
        await supervise(
            "discord", rejected, asyncio.Event(), fatal=lambda e: isinstance(e, Rejected)
        )


# -- stopping `run` while a digest is being written ------------------------------------------


async def test_run_stops_soon_after_stop_while_a_generation_is_in_flight(tmp_path: Path) -> None:
    from datetime import UTC

    from fake_github import FakeGitHub, commit
    from fake_llm import API_KEY, FakeLLM
    from fake_telegram import FakeTelegram
    from pydantic import SecretStr

    from bot.app import run

    now = datetime(2026, 2, 5, 1, 0, tzinfo=UTC)  # 09:00 in Shanghai: 2026-02-04 is due
    async with (
        FakeGitHub() as github,
        FakeTelegram() as telegram,
        FakeLLM(latency=600.0) as llm,  # a model that takes ten minutes to answer
    ):
        github.add_repo(
            "o/alpha", commits=[commit(when="2026-02-04T03:00:00Z", message="Fix a kernel (#7)")]
        )
        settings = Settings(
            database_url=f"sqlite+aiosqlite:///{tmp_path / 'digest.sqlite3'}",
            github_api_url=github.url,
            openrouter_api_key=SecretStr(API_KEY),
            openrouter_base_url=llm.base_url,
            digest_models=["m/one:free"],
            digest_repos=["o/alpha"],
            telegram_bot_token=SecretStr(telegram.token),
            telegram_api_url=telegram.url,
        )
        stop = asyncio.Event()
        task = asyncio.create_task(run(settings, stop, clock=lambda: now))
        for _ in range(3000):
            if llm.in_flight or task.done():
                break
            await asyncio.sleep(0.01)
        assert llm.in_flight  # the digest is being written
        stop.set()
        # Generous: the loops get 5 s and closing 2 s each; the old code waited 20 s for it.
        code = await asyncio.wait_for(task, 15)
    assert code == 0
