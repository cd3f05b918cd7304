"""Service time of `/digest vllm` for an archived day: p50/p95 over 1,000 requests.

The bundled sample day is written without a model (structured), archived in a fresh SQLite
store, and asked for through the real CommandService and Pipeline, as the chat adapters do.
GitHub is never reached (the client points at a closed port). Expect p95 ≤ 20 ms.
Run: python bench/digest_latency.py [--requests N]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT)]

from bot.commands import ChatContext, CommandService  # noqa: E402
from bot.pipeline import Pipeline  # noqa: E402
from bot.platforms.telegram import render_messages  # noqa: E402
from bot.settings import Settings  # noqa: E402
from bot.store import Store  # noqa: E402
from collectors.github import GitHubClient  # noqa: E402
from collectors.sample import load_sample  # noqa: E402
from summarizer.compose import Composer  # noqa: E402


async def _private() -> bool:
    return True


def percentile(values: list[float], q: float) -> float:
    """The q-quantile (0..1) by nearest rank."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * len(ordered)) - 1))]


async def main(requests: int) -> None:
    """Archive the sample day, then time `/digest vllm` `requests` times."""
    settings = Settings()
    activity = load_sample()
    composer = Composer(None, None)
    digest = await composer.compose(activity, settings.digest_repos)
    with tempfile.TemporaryDirectory() as tmp:
        store = await Store.open(f"sqlite+aiosqlite:///{Path(tmp) / 'bench.db'}")
        await store.save_digest(digest, activity)
        github = GitHubClient("http://127.0.0.1:9", None, None)
        pipeline = Pipeline(settings, store, github=github, composer=composer)
        # The morning after the sample day, in the digest's time zone.
        now = datetime.combine(activity.day + timedelta(days=1), datetime.min.time(), UTC)
        service = CommandService(settings, store, pipeline, clock=lambda: now)
        ctx = ChatContext("telegram", "42", "private", "42", _private)

        started = time.perf_counter()
        first = await service.handle(ctx, "digest", "vllm")
        cold = time.perf_counter() - started
        assert first.text.startswith("### vllm-project/vllm（"), first.text[:80]

        times: list[float] = []
        for _ in range(requests):
            started = time.perf_counter()
            reply = await service.handle(ctx, "digest", "vllm")
            times.append(time.perf_counter() - started)
        assert reply.text == first.text

        started = time.perf_counter()
        parts = render_messages(reply.text)
        render = time.perf_counter() - started
        await github.aclose()
        await store.close()

    ms = [t * 1000 for t in times]
    print(f"/digest vllm on an archived day ({activity.day}), {requests} requests, SQLite store")
    print(f"  first request (loads the archive): {cold * 1000:.2f} ms")
    print(
        f"  p50 {percentile(ms, 0.50):.3f} ms   p95 {percentile(ms, 0.95):.3f} ms   "
        f"max {max(ms):.3f} ms   mean {statistics.fmean(ms):.3f} ms"
    )
    print(f"  p95 ≤ 20 ms: {'yes' if percentile(ms, 0.95) <= 20 else 'NO'}")
    print(
        f"  Telegram rendering of the reply (adapter side): {render * 1000:.2f} ms, "
        f"{len(parts)} message(s)"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=1000)
    asyncio.run(main(parser.parse_args().requests))
