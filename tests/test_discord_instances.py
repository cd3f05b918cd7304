"""Discord across instances: two OS processes, one gateway, each slash command answered once.

Both processes run tests/discord_worker.py (the `run` path for Discord: a REST sender plus the
elected gateway) against the Discord stand-in, on one SQLite file or PostgreSQL schema.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from fake_discord import MANAGE_CHANNELS, FakeDiscord, command_interaction
from store_backends import BACKENDS, TestDatabase, isolated_database

from bot.platforms.discord import GATEWAY_LOCK
from bot.store import Store
from bot.store.tables import locks

ROOT = Path(__file__).resolve().parents[1]
LEASE = 2.0


@pytest.fixture(params=BACKENDS)
async def db(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[TestDatabase]:
    async with isolated_database(request.param, tmp_path) as database:
        yield database


async def start_worker(
    fake: FakeDiscord, db: TestDatabase, ca: str, name: str, channel: int, logs: Path
) -> asyncio.subprocess.Process:
    """One instance; returns once it has posted through REST (before any election)."""
    args = ["--url", db.url, "--port", str(fake.port), "--ca", ca, "--token", fake.bot_token]
    args += ["--worker", name, "--lease", str(LEASE), "--channel", str(channel)]
    if db.schema is not None:
        args += ["--schema", db.schema]
    child = await asyncio.create_subprocess_exec(
        sys.executable,
        str(ROOT / "tests" / "discord_worker.py"),
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=(logs / f"{name}.log").open("wb"),
    )
    assert child.stdout is not None
    async with asyncio.timeout(60):
        line = await child.stdout.readline()
    if not line:
        await child.wait()
        raise AssertionError((logs / f"{name}.log").read_text()[-2000:])
    assert json.loads(line)["worker"] == name
    return child


async def holder(store: Store) -> str | None:
    """Which worker holds the gateway lease."""
    async with store.engine.connect() as conn:
        query = sa.select(locks.c.holder).where(locks.c.name == GATEWAY_LOCK)
        return (await conn.execute(query)).scalar()


async def ask_once(fake: FakeDiscord, payload: dict[str, object]) -> None:
    """Dispatch to every connected session; wait for an answer, then a little for a second."""
    await fake.dispatch_interaction(payload)
    token = str(payload["token"])

    def answered() -> bool:
        shown = fake.conversation(token)
        return bool(shown) and not any(m.loading for m in shown)

    await fake.wait_until(answered, seconds=30)


async def test_two_instances_answer_each_command_once_and_the_survivor_takes_over(
    db: TestDatabase, tmp_path: Path
) -> None:
    store = await db.open()  # migrated before the workers start
    async with FakeDiscord() as fake:
        ca = fake.write_ca(str(tmp_path / "ca.pem"))
        channel = fake.add_channel()
        workers = {
            name: await start_worker(fake, db, ca, name, channel, tmp_path)
            for name in ("one", "two")
        }
        try:
            # Both post through REST, with or without the gateway.
            posted = {m.content for m in fake.channel_messages[channel]}
            assert posted == {"posted by one", "posted by two"}
            await fake.wait_until(lambda: fake.connected == 1, seconds=30)

            asked = []
            for n in range(4):
                payload = command_interaction(
                    "subscribe", channel_id=2_000 + n, permissions=MANAGE_CHANNELS
                )
                await ask_once(fake, payload)
                asked.append(payload)
            await asyncio.sleep(1.0)  # room for a second instance's (wrong) answer
            assert fake.connected == 1
            for payload in asked:
                calls = fake.callbacks(str(payload["token"]))
                assert [c.status for c in calls] == [200]
            for n in range(4):
                chat = await store.get_chat("discord", str(2_000 + n))
                assert chat is not None and chat.active

            first = await holder(store)
            assert first in workers
            workers[first].kill()  # SIGKILL: no clean hand-over
            await workers[first].wait()
            assert workers[first].returncode == -signal.SIGKILL

            # The survivor's election round finds the lease expired and connects.
            await fake.wait_until(lambda: fake.sessions == 2 and fake.connected == 1, seconds=60)
            assert await holder(store) == next(name for name in workers if name != first)
            late = command_interaction("subscriptions", channel_id=2_000, guild_id=None)
            await ask_once(fake, late)
            assert [c.status for c in fake.callbacks(str(late["token"]))] == [200]
            assert "订阅" in fake.conversation(str(late["token"]))[0].content
        finally:
            for child in workers.values():
                if child.returncode is None:
                    os.kill(child.pid, signal.SIGTERM)
                    try:
                        async with asyncio.timeout(20):
                            await child.wait()
                    except TimeoutError:
                        child.kill()
                        await child.wait()
    # A clean stop hands the lease back at once.
    assert await holder(store) is None
