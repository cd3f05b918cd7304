"""Fan-out of one digest to 1,000 private Telegram chats against a stand-in enforcing 30 msg/s.

The sample day's digest (written without a model) is archived in a fresh SQLite store; 1,000
private chats subscribe to everything; `bot.delivery.fan_out` delivers through `TelegramSender`
(python-telegram-bot over real HTTP) to tests/fake_telegram.py, which answers 429 when more than
30 messages arrive within any second. Prints achieved messages/s as a fraction of 30 (expect
≥ 0.9) and the 429s received (expect 0).
Run: python bench/telegram_fanout.py [--chats N]
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from fake_telegram import FakeTelegram  # noqa: E402
from telegram import Bot  # noqa: E402

from bot.delivery import fan_out  # noqa: E402
from bot.pipeline import Pipeline  # noqa: E402
from bot.platforms.telegram import TelegramSender, render_messages  # noqa: E402
from bot.settings import Settings  # noqa: E402
from bot.store import Store  # noqa: E402
from collectors.github import GitHubClient  # noqa: E402
from collectors.sample import load_sample  # noqa: E402
from summarizer.compose import Composer  # noqa: E402
from summarizer.digest import render_markdown  # noqa: E402

LIMIT = 30


async def main(chats: int) -> None:
    """Subscribe `chats` private chats and fan the sample digest out to them."""
    settings = Settings()
    activity = load_sample()
    composer = Composer(None, None)
    digest = await composer.compose(activity, settings.digest_repos)
    per_chat = len(render_messages(render_markdown(digest)))
    with tempfile.TemporaryDirectory() as tmp:
        store = await Store.open(f"sqlite+aiosqlite:///{Path(tmp) / 'bench.db'}")
        await store.save_digest(digest, activity)
        for n in range(chats):
            await store.subscribe(
                "telegram",
                str(100_000 + n),
                None,
                by=None,
                post_time=settings.digest_post_time,
                timezone=settings.digest_timezone,
            )
        github = GitHubClient("http://127.0.0.1:9", None, None)
        pipeline = Pipeline(settings, store, github=github, composer=composer)
        async with (
            FakeTelegram(rate_per_second=LIMIT) as telegram,
            Bot(telegram.token, base_url=f"{telegram.url}/bot") as bot,
        ):
            sender = TelegramSender(bot)
            started = time.perf_counter()
            result = await fan_out(
                store,
                pipeline,
                {"telegram": sender},
                activity.day,
                worker="bench",
                now=datetime.now(UTC),
            )
            wall = time.perf_counter() - started
            sent = telegram.sent
            span = sent[-1].at - sent[0].at if len(sent) > 1 else float("nan")
            rate = (len(sent) - 1) / span
            too_many = telegram.too_many_requests
            rejected = len(telegram.rejected)
        counts = await store.delivery_counts(activity.day)
        await github.aclose()
        await store.close()

    print(
        f"fan-out of the {activity.day} digest ({per_chat} messages per chat) to {chats} "
        f"private chats; stand-in limit {LIMIT} msg/s"
    )
    print(f"  delivered chats: {result.sent} (deliveries {counts}); messages accepted: {len(sent)}")
    print(f"  wall time {wall:.1f} s; first→last message {span:.1f} s")
    print(f"  achieved {rate:.2f} msg/s = {rate / LIMIT:.3f} of {LIMIT} (expect ≥ 0.9)")
    print(f"  429s received: {too_many} (expect 0); messages refused as invalid: {rejected}")


if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chats", type=int, default=1000)
    asyncio.run(main(parser.parse_args().chats))
