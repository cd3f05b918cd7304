"""A second instance for the SIGKILL drill: fans a day out from PostgreSQL to a Telegram stand-in.

Run as its own OS process by tests/test_drills.py (which kills it with SIGKILL mid-fan-out):

    python tests/drill_worker.py --url URL --schema S --telegram URL --token T --day D \\
        --worker NAME --lease SECONDS

It uses the real path: `bot.delivery.fan_out` with `TelegramSender` (python-telegram-bot over
HTTP) and a Pipeline reading the archived day; it prints one JSON line with what it sent.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from datetime import UTC, date, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from telegram import Bot  # noqa: E402

from bot.delivery import fan_out  # noqa: E402
from bot.pipeline import Pipeline  # noqa: E402
from bot.platforms.telegram import TelegramSender  # noqa: E402
from bot.settings import Settings  # noqa: E402
from bot.store import Store  # noqa: E402
from collectors.github import GitHubClient  # noqa: E402
from summarizer.compose import Composer  # noqa: E402


async def main(args: argparse.Namespace) -> None:
    """Open the shared store and deliver the day once, as one instance of several would."""
    store = await Store.open(args.url, schema=args.schema)
    settings = Settings()
    # Port 9 (discard) is never contacted: the day is archived, so nothing is collected.
    async with (
        GitHubClient("http://127.0.0.1:9", None, None) as github,
        Bot(args.token, base_url=f"{args.telegram}/bot") as bot,
    ):
        pipeline = Pipeline(settings, store, github=github, composer=Composer(None, None))
        result = await fan_out(
            store,
            pipeline,
            {"telegram": TelegramSender(bot)},
            date.fromisoformat(args.day),
            worker=args.worker,
            now=datetime.now(UTC),
            ensure=False,
            batch_size=args.batch,
            concurrency=args.concurrency,
            lease_seconds=args.lease,
        )
    await store.close()
    print(json.dumps({"sent": result.sent, "failed": result.failed}), flush=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", required=True)
    parser.add_argument("--schema", default=None)
    parser.add_argument("--telegram", required=True)
    parser.add_argument("--token", required=True)
    parser.add_argument("--day", required=True)
    parser.add_argument("--worker", required=True)
    parser.add_argument("--lease", type=float, default=2.0)
    parser.add_argument("--batch", type=int, default=5)
    parser.add_argument("--concurrency", type=int, default=4)
    asyncio.run(main(parser.parse_args()))
