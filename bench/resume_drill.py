"""The half-sent-digest drill at scale: a digest of 8 Telegram messages to 200 chats.

The Bot API stand-in answers 429 to every third sendMessage and loses the reply of every
seventh message it accepted; `post`-style rounds run until every delivery is settled (the same
drill as tests/test_delivery_drill.py, from tests/delivery_drill.py). Prints, per scenario,
acknowledged parts sent again (expect 0), chats missing a part (expect 0), repeats caused by lost
replies (at most one per lost reply) and the wall time against the same drill without faults.
Telegram's retry_after is whole seconds; `--retry-after` scales it (default 0.1: ten times
faster than real time, so the 429 rounds take about a tenth of what they would).
Run: python bench/resume_drill.py [--chats N] [--retry-after S]
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from delivery_drill import DrillResult, run_drill  # noqa: E402

from bot.store import Store  # noqa: E402

PARAGRAPHS = 20  # eight Telegram messages


async def scenario(name: str, chats: int, **chaos: float | int | None) -> DrillResult:
    with tempfile.TemporaryDirectory() as tmp:
        store = await Store.open(f"sqlite+aiosqlite:///{tmp}/drill.sqlite3")
        try:
            result = await run_drill(store, chats, paragraphs=PARAGRAPHS, **chaos)  # type: ignore[arg-type]
        finally:
            await store.close()
    print(
        f"{name:<28} chats={result.chats} parts={result.parts} "
        f"acknowledged_resent={result.acknowledged_resent} "
        f"chats_incomplete={result.chats_incomplete} repeats={result.repeats} "
        f"lost_replies={result.lost_replies} 429s={result.too_many_requests} "
        f"rounds={result.rounds} wall={result.seconds:.1f}s statuses={result.statuses}"
    )
    return result


async def main(chats: int, retry_after: float) -> None:
    logging.basicConfig(level=logging.ERROR)
    calm = await scenario("no faults", chats, rate_limit_every=None, lose_reply_every=None)
    both = await scenario(
        "429 every 3rd + lost 7th",
        chats,
        rate_limit_every=3,
        lose_reply_every=7,
        retry_after=retry_after,
    )
    print(f"wall time with faults / without: {both.seconds / calm.seconds:.2f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chats", type=int, default=200)
    parser.add_argument("--retry-after", type=float, default=0.1)
    args = parser.parse_args()
    asyncio.run(main(args.chats, args.retry_after))
