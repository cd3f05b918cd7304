"""Fan-out of one digest to 10,000 Telegram chats by two instances (OS processes) on PostgreSQL.

Setup (this process): a fresh schema on PostgreSQL (BENCH_DATABASE_URL, else TEST_DATABASE_URL),
a one-message digest archived, 10,000 private chats subscribed with their delivery rows, and the
Telegram stand-in (tests/fake_telegram.py) answering 429 to more than LIMIT messages in any
second. Each instance is a separate `python` process running the real `bot.delivery.fan_out`
with `TelegramSender` (python-telegram-bot over HTTP) and the `bot.fleet.Fleet` heartbeat: with
N live instances each paces at LIMIT / N, so together they stay within the bot's one budget.

Scenario 1: both instances run to the end. Scenario 2: one is killed with SIGKILL when half the
chats have their message; the other speeds up once the dead heartbeat expires and delivers the
dead one's claims once their lease runs out. Prints duplicates, losses, achieved rate as a
fraction of LIMIT, 429s, and completion times.

Telegram allows about 30 msg/s; the limit is scaled to 150 msg/s by default (`--limit`) so a
scenario takes about 75 s: the pacing is the same code at any rate. (On a 2-core machine the
stand-in, two instances and PostgreSQL run out of CPU near 220 msg/s, so 300 would measure the
machine, not the pacing.) The stand-in's process runs without the cyclic garbage collector
during a fan-out: a collection over its 10,000 recorded messages stalls it long enough to
bunch the arrivals it counts, which real Telegram would not see.
Run: python bench/multi_instance_fanout.py [--chats N] [--limit L]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import signal
import sys
import time
import uuid
from collections import Counter
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

import sqlalchemy as sa  # noqa: E402
from telegram import Bot  # noqa: E402
from telegram.request import HTTPXRequest  # noqa: E402

from bot.delivery import fan_out  # noqa: E402
from bot.fleet import Fleet  # noqa: E402
from bot.pipeline import Pipeline  # noqa: E402
from bot.platforms.telegram import RateGate, TelegramSender  # noqa: E402
from bot.settings import Settings  # noqa: E402
from bot.store import Store, make_engine  # noqa: E402
from bot.store.tables import chats as chats_table  # noqa: E402
from collectors.activity import DayActivity, RepoActivity  # noqa: E402
from collectors.github import GitHubClient  # noqa: E402
from summarizer.compose import Composer  # noqa: E402
from summarizer.digest import Digest, Section  # noqa: E402

DAY = date(2026, 2, 4)
FLEET_TTL = 3.0  # heartbeat lease: a dead instance stops taking a share after this long
LEASE = 5.0  # delivery claim lease: a dead instance's claims are taken over after this long


def database_url() -> str:
    """BENCH_DATABASE_URL or TEST_DATABASE_URL (a PostgreSQL URL)."""
    url = os.environ.get("BENCH_DATABASE_URL") or os.environ.get("TEST_DATABASE_URL")
    if not url or not url.startswith("postgresql"):
        raise SystemExit("set BENCH_DATABASE_URL or TEST_DATABASE_URL to a PostgreSQL URL")
    return url


# -- one instance (a child process) ----------------------------------------------------------


async def instance(args: argparse.Namespace) -> None:
    """Join the fleet, wait for the others, and deliver until no delivery is left."""
    store = await Store.open(args.url, schema=args.schema)
    gate = RateGate(args.limit)
    fleet = Fleet(store, args.worker, ttl=FLEET_TTL, on_size=gate.share)
    deadline = time.monotonic() + 60
    # Start together, each already pacing at its share.
    while await fleet.beat() < args.expect and time.monotonic() < deadline:  # noqa: ASYNC110
        await asyncio.sleep(0.05)
    stop = asyncio.Event()
    heartbeat = asyncio.create_task(fleet.run(stop))
    request = HTTPXRequest(connection_pool_size=32)
    sent = 0
    async with (
        GitHubClient("http://127.0.0.1:9", None, None) as github,
        Bot(args.token, base_url=f"{args.telegram}/bot", request=request) as bot,
    ):
        sender = TelegramSender(bot, gate=gate)
        # The gate paces this instance's share; fan-out's own limiter stays at the full rate.
        sender.rate_per_second = args.limit
        pipeline = Pipeline(Settings(), store, github=github, composer=Composer(None, None))
        while time.monotonic() < deadline + 240:
            result = await fan_out(
                store,
                pipeline,
                {"telegram": sender},
                DAY,
                worker=args.worker,
                now=datetime.now(UTC),
                ensure=False,
                lease_seconds=LEASE,
            )
            sent += result.sent
            counts = await store.delivery_counts(DAY)
            if not counts.get("pending") and not counts.get("sending"):
                break
            await asyncio.sleep(0.2)  # claims of a dead instance: wait for their lease to end
    stop.set()
    await heartbeat
    await store.close()
    print(json.dumps({"worker": args.worker, "sent": sent}), flush=True)


# -- the coordinator (this process) ----------------------------------------------------------


async def prepare(url: str, schema: str, chats: int) -> None:
    """A fresh schema with the digest archived, `chats` subscribed and their deliveries made."""
    admin = make_engine(url)
    async with admin.begin() as conn:
        await conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    await admin.dispose()
    store = await Store.open(url, schema=schema)
    digest = Digest(
        day=DAY,
        sections=[Section(repo="o/alpha", markdown="- 修复了一个问题", written_by="structured")],
        summary="一个仓库有动态。",
        conclusion="平稳。",
    )
    start = datetime(2026, 2, 3, 16, tzinfo=UTC)
    activity = DayActivity(
        day=DAY,
        timezone="Asia/Shanghai",
        window_utc=(start, start.replace(day=4)),
        repos=[RepoActivity(repo="o/alpha")],
    )
    await store.save_digest(digest, activity)
    now = datetime(2026, 1, 1, tzinfo=UTC)
    rows = [
        {
            "platform": "telegram",
            "chat_id": str(1_000_000 + n),
            "repos": None,
            "post_time": "09:00",
            "timezone": "Asia/Shanghai",
            "active": True,
            "subscribed_at": now,
            "updated_at": now,
        }
        for n in range(chats)
    ]
    async with store.engine.begin() as conn:
        for first in range(0, len(rows), 1000):
            await conn.execute(sa.insert(chats_table), rows[first : first + 1000])
    await store.ensure_deliveries(DAY, await store.active_chats())
    await store.close()


async def drop(url: str, schema: str) -> None:
    """Remove the bench schema."""
    admin = make_engine(url)
    async with admin.begin() as conn:
        await conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
    await admin.dispose()


async def spawn(url: str, schema: str, telegram: Any, worker: str, args: argparse.Namespace) -> Any:
    """Start one instance as its own OS process."""
    return await asyncio.create_subprocess_exec(
        sys.executable, __file__, "--instance",
        "--url", url, "--schema", schema, "--telegram", telegram.url, "--token", telegram.token,
        "--worker", worker, "--limit", str(args.limit), "--expect", str(args.instances),
        stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip


async def kill_at(url: str, schema: str, sent: int, pid: int) -> None:
    """SIGKILL `pid` once `sent` deliveries are recorded as sent."""
    store = await Store.open(url, schema=schema)
    try:
        while (await store.delivery_counts(DAY)).get("sent", 0) < sent:  # noqa: ASYNC110
            await asyncio.sleep(0.05)
        os.kill(pid, signal.SIGKILL)
    finally:
        await store.close()


async def scenario(args: argparse.Namespace, *, kill_at_half: bool) -> dict[str, Any]:
    """One fan-out by `args.instances` processes; optionally SIGKILL one at 50 %."""
    from fake_telegram import FakeTelegram

    url = database_url()
    schema = f"bench_{uuid.uuid4().hex[:10]}"
    await prepare(url, schema, args.chats)
    killed_at: float | None = None
    gc.collect()
    gc.disable()
    try:
        async with FakeTelegram(rate_per_second=args.limit) as telegram:
            started = time.monotonic()
            children = [
                await spawn(url, schema, telegram, f"instance-{n}", args)
                for n in range(args.instances)
            ]
            if kill_at_half:
                # "Half the chats got their message" as the database says, polled: the kill
                # lands at a moment unrelated to any one send, as a real crash would.
                await kill_at(url, schema, args.chats // 2, children[0].pid)
                killed_at = time.monotonic()
            outputs = [await child.communicate() for child in children]
            finished = time.monotonic()
            sent = list(telegram.sent)
            too_many = telegram.too_many_requests
    finally:
        gc.enable()
        await drop(url, schema)
    received = Counter(m.chat_id for m in sent)
    first_at, last_at = sent[0].at, sent[-1].at
    per_instance = [json.loads(out.decode() or "{}") for out, _ in outputs if out.strip()]
    return {
        "duplicates": sum(n - 1 for n in received.values()),
        "losses": args.chats - len(received),
        "rate": (len(sent) - 1) / (last_at - first_at),
        "too_many": too_many,
        "completion": last_at - first_at,
        "wall": finished - started,
        "after_kill": (last_at - killed_at) if killed_at is not None else None,
        "per_instance": per_instance,
        "exit_codes": [child.returncode for child in children],
    }


def report(title: str, result: dict[str, Any], limit: float) -> None:
    """Print one scenario's figures."""
    print(title)
    print(
        f"  duplicates: {result['duplicates']} (expect 0)   losses: {result['losses']} (expect 0)"
    )
    print(
        f"  achieved {result['rate']:.1f} msg/s = {result['rate'] / limit:.3f} of the "
        f"{limit:g} msg/s limit; 429s received: {result['too_many']}"
    )
    print(
        f"  first→last message {result['completion']:.1f} s (wall {result['wall']:.1f} s incl. "
        f"process start); instance exit codes {result['exit_codes']}"
    )
    if result["after_kill"] is not None:
        print(f"  from the SIGKILL to the last message: {result['after_kill']:.1f} s")
    for entry in result["per_instance"]:
        print(f"  {entry['worker']}: sent {entry['sent']}")


async def main(args: argparse.Namespace) -> None:
    """Both scenarios, one after the other."""
    print(
        f"fan-out of one one-message digest to {args.chats} chats by {args.instances} instances "
        f"(processes) on PostgreSQL; Telegram stand-in limit {args.limit:g} msg/s (Telegram's "
        f"is 30, scaled up to keep the run short); each instance paces at limit / live instances"
    )
    both = await scenario(args, kill_at_half=False)
    report(f"1. {args.instances} instances to the end", both, args.limit)
    killed = await scenario(args, kill_at_half=True)
    report(
        f"2. one of {args.instances} killed (SIGKILL) at 50 % (heartbeat lease {FLEET_TTL:g} s, "
        f"claim lease {LEASE:g} s)",
        killed,
        args.limit,
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chats", type=int, default=10_000)
    parser.add_argument("--limit", type=float, default=150.0)
    parser.add_argument("--instances", type=int, default=2)
    parser.add_argument("--instance", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--url")
    parser.add_argument("--schema")
    parser.add_argument("--telegram")
    parser.add_argument("--token")
    parser.add_argument("--worker")
    parser.add_argument("--expect", type=int, default=2)
    parsed = parser.parse_args()
    if parsed.instance:
        asyncio.run(instance(parsed))
    else:
        asyncio.run(main(parsed))
