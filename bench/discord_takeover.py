"""Discord gateway takeover: time from SIGKILL of the gateway holder to the survivor answering.

Two instances (OS processes running tests/discord_worker.py: the REST sender plus the elected
gateway of `aiinfra-digest run`) share one database (a SQLite file, or PostgreSQL with
BENCH_DATABASE_URL) and the Discord stand-in (tests/fake_discord.py) in this process. Each round
kills the instance holding the `discord:gateway` lease with SIGKILL at a random moment of its
renewal cycle, then measures how long until the survivor's gateway session is identified and
until a slash command sent after that is answered (exactly once). A fresh instance replaces the
dead one before the next round. The lease is `run`'s default (30 s, renewed every 10 s), so the
expected takeover is between 20 and 40 s.
Run: python bench/discord_takeover.py [--rounds N] [--lease SECONDS]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import signal
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

import sqlalchemy as sa  # noqa: E402
from fake_discord import FakeDiscord, command_interaction  # noqa: E402

from bot.platforms.discord import GATEWAY_LOCK  # noqa: E402
from bot.store import Store, make_engine  # noqa: E402
from bot.store.tables import locks  # noqa: E402


async def start(
    fake: FakeDiscord, url: str, schema: str | None, ca: str, name: str, lease: float, logs: Path
) -> asyncio.subprocess.Process:
    """One instance, returned once it has posted through REST."""
    args = ["--url", url, "--port", str(fake.port), "--ca", ca, "--token", fake.bot_token]
    args += ["--worker", name, "--lease", str(lease), "--channel", str(fake.add_channel())]
    if schema is not None:
        args += ["--schema", schema]
    child = await asyncio.create_subprocess_exec(
        sys.executable,
        str(ROOT / "tests" / "discord_worker.py"),
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=(logs / f"{name}.log").open("wb"),
    )
    assert child.stdout is not None
    if not await child.stdout.readline():
        raise SystemExit(f"{name} did not start: see {logs / f'{name}.log'}")
    return child


async def holder(store: Store) -> str | None:
    """The worker holding the gateway lease."""
    async with store.engine.connect() as conn:
        query = sa.select(locks.c.holder).where(locks.c.name == GATEWAY_LOCK)
        return (await conn.execute(query)).scalar()


async def answered_once(fake: FakeDiscord, within: float) -> bool:
    """Send one /help to every connected session; True when exactly one answer was accepted."""
    payload = command_interaction("help", guild_id=None)
    await fake.dispatch_interaction(payload)
    token = payload["token"]
    await fake.wait_until(lambda: bool(fake.conversation(token)), seconds=within)
    await asyncio.sleep(0.5)
    return [r.status for r in fake.callbacks(token)] == [200]


async def main(rounds: int, lease: float) -> None:
    """Run the rounds and print one line per round and a summary."""
    pg_url = os.environ.get("BENCH_DATABASE_URL")
    with tempfile.TemporaryDirectory() as tmp:
        logs = Path(tmp)
        schema: str | None = None
        if pg_url:
            schema = f"bench_{uuid.uuid4().hex[:10]}"
            admin = make_engine(pg_url)
            async with admin.begin() as conn:
                await conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
            url = pg_url
        else:
            url = f"sqlite+aiosqlite:///{tmp}/bench.sqlite3"
        store = await Store.open(url, schema=schema)
        print(f"database: {'PostgreSQL' if pg_url else 'SQLite'}; lease {lease:g} s")
        async with FakeDiscord() as fake:
            ca = fake.write_ca(str(logs / "ca.pem"))
            workers: dict[str, asyncio.subprocess.Process] = {}
            try:
                for name in ("w0", "w1"):
                    workers[name] = await start(fake, url, schema, ca, name, lease, logs)
                await fake.wait_until(lambda: fake.connected == 1, seconds=lease * 2 + 10)
                assert await answered_once(fake, 30)
                takeovers: list[float] = []
                for n in range(rounds):
                    await asyncio.sleep(random.uniform(0, lease / 3))  # any point of the cycle
                    dead = await holder(store)
                    assert dead is not None and dead in workers
                    sessions = fake.sessions
                    killed_at = time.monotonic()
                    workers[dead].kill()
                    await workers.pop(dead).wait()
                    await fake.wait_until(
                        lambda s=sessions: fake.sessions > s and fake.connected == 1,
                        seconds=lease * 3 + 30,
                    )
                    connected = time.monotonic() - killed_at
                    once = await answered_once(fake, 30)
                    takeovers.append(connected)
                    print(
                        f"round {n + 1}: gateway back {connected:.1f} s after SIGKILL; "
                        f"next command answered {'exactly once' if once else 'NOT once'}"
                    )
                    name = f"w{n + 2}"
                    workers[name] = await start(fake, url, schema, ca, name, lease, logs)
                print(
                    f"takeover after SIGKILL of the holder: min {min(takeovers):.1f} s, "
                    f"max {max(takeovers):.1f} s over {rounds} round(s) "
                    f"(bound: lease + lease/3 = {lease * 4 / 3:.0f} s)"
                )
            finally:
                for child in workers.values():
                    if child.returncode is None:
                        child.send_signal(signal.SIGTERM)
                        await child.wait()
        await store.close()
        if pg_url and schema is not None:
            async with admin.begin() as conn:
                await conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
            await admin.dispose()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--lease", type=float, default=30.0)
    arguments = parser.parse_args()
    asyncio.run(main(arguments.rounds, arguments.lease))
