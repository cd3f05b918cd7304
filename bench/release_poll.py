"""Release alerts: GitHub rate limit spent on polling, and the latency of an alert.

1. Rate-limited requests per hour for polling the 8 default repositories, all unchanged, every
   5 minutes: 12 polls on an injected clock, against the stand-in GitHub (tests/fake_github.py),
   with the ETag cache in a SQLite store. Expect 0 beyond the first poll.
2. Alert latency: the poller runs for real with a 1 s interval; a release appears in the stand-in
   and the time until the Bot API stand-in (tests/fake_telegram.py) accepts the alert is measured,
   several times. Expect at most one interval + 5 s.

Run: python bench/release_poll.py
"""

from __future__ import annotations

import asyncio
import logging
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from fake_github import FakeGitHub, iso, release  # noqa: E402
from fake_telegram import FakeTelegram  # noqa: E402
from telegram import Bot  # noqa: E402

from bot.alerts import ReleasePoller  # noqa: E402
from bot.platforms.base import Sender  # noqa: E402
from bot.platforms.telegram import TelegramSender  # noqa: E402
from bot.settings import DEFAULT_REPOS  # noqa: E402
from bot.store import Store  # noqa: E402
from collectors.github import GitHubClient  # noqa: E402

POLL_MINUTES = 5
POLLS = 12  # one hour
LATENCY_INTERVAL = 1.0
LATENCY_RUNS = 5


class NullSender(Sender):
    """Accepts every alert (the rate-limit figure does not depend on the platform)."""

    platform = "telegram"
    message_limit = 1_000_000
    rate_per_second = 1000.0

    def render(self, markdown: str) -> list[str]:
        """The alert as one message."""
        return [markdown]

    async def send_part(self, chat_id: str, part: Any, *, reply_to: str | None = None) -> str:
        """Accept and forget."""
        return "1"


def _repos(repos: Sequence[str]) -> Callable[[], Awaitable[Sequence[str]]]:
    async def tracked() -> Sequence[str]:
        return repos

    return tracked


async def rate_limit_per_hour(folder: Path) -> None:
    """12 polls of 8 unchanged repositories on an injected clock, 5 minutes apart."""
    start = datetime(2026, 2, 5, 2, 0, tzinfo=UTC)
    now = [start]
    async with FakeGitHub() as github:
        for repo in DEFAULT_REPOS:
            github.add_repo(
                repo, releases=[release("v1.0.0", published_at=iso(start - timedelta(days=3)))]
            )
        store = await Store.open(f"sqlite+aiosqlite:///{folder / 'poll.db'}")
        try:
            await store.enable_alerts("telegram", "1", None, by=None, now=start)
            async with GitHubClient(github.url, None, store) as client:
                poller = ReleasePoller(
                    store,
                    client,
                    {"telegram": NullSender()},
                    repos=_repos(DEFAULT_REPOS),
                    clock=lambda: now[0],
                    interval=POLL_MINUTES * 60,
                )
                per_poll: list[tuple[int, int]] = []
                for _ in range(POLLS):
                    before_limited, before_304 = github.rate_limited, github.count(status=304)
                    await poller.poll_once()
                    per_poll.append(
                        (
                            github.rate_limited - before_limited,
                            github.count(status=304) - before_304,
                        )
                    )
                    now[0] += timedelta(minutes=POLL_MINUTES)
        finally:
            await store.close()
    first, rest = per_poll[0], per_poll[1:]
    print(
        f"release polling, {len(DEFAULT_REPOS)} unchanged repositories every {POLL_MINUTES} min "
        f"({POLLS} polls = 1 hour):"
    )
    print(
        f"  first poll: {first[0]} rate-limited requests (primes the ETag cache), {first[1]} × 304"
    )
    print(
        f"  polls 2–{POLLS}: {sum(p[0] for p in rest)} rate-limited requests, "
        f"{sum(p[1] for p in rest)} × 304 (no rate limit)"
    )
    print(
        f"  rate-limited requests per hour: {sum(p[0] for p in per_poll)} in the first hour, "
        f"{sum(p[0] for p in rest) / len(rest) * POLLS:g} per hour once primed"
    )


async def alert_latency(folder: Path) -> None:
    """A release appears; how long until the Bot API stand-in accepted the alert."""
    async with FakeGitHub() as github, FakeTelegram() as telegram:
        for repo in DEFAULT_REPOS:
            github.add_repo(repo)
        store = await Store.open(f"sqlite+aiosqlite:///{folder / 'latency.db'}")
        stop = asyncio.Event()
        try:
            await store.enable_alerts(
                "telegram", "1", None, by=None, now=datetime.now(UTC) - timedelta(minutes=1)
            )
            async with (
                GitHubClient(github.url, None, store) as client,
                Bot(telegram.token, base_url=f"{telegram.url}/bot") as bot,
            ):
                poller = ReleasePoller(
                    store,
                    client,
                    {"telegram": TelegramSender(bot)},
                    repos=_repos(DEFAULT_REPOS),
                    interval=LATENCY_INTERVAL,
                )
                running = asyncio.create_task(poller.run(stop))
                # GitHub's timestamps have whole seconds: publish well after the first sighting.
                await asyncio.sleep(2.0)
                latencies = []
                for run in range(LATENCY_RUNS):
                    repo = DEFAULT_REPOS[run % len(DEFAULT_REPOS)]
                    item = release(f"v9.{run}.0", published_at=iso(datetime.now(UTC)))
                    item["html_url"] = f"https://github.com/{repo}/releases/tag/v9.{run}.0"
                    appeared = time.monotonic()
                    github.repos[repo.lower()].releases.insert(0, item)
                    (message, *_) = (await telegram.wait_for_messages(run + 1, within=30))[run:]
                    latencies.append(message.at - appeared)
                    # The next release starts at a random phase of the polling cycle.
                    await asyncio.sleep(0.37 * (run + 1) % LATENCY_INTERVAL + 1.0)
                stop.set()
                await running
        finally:
            stop.set()
            await store.close()
    print(f"alert latency, release appears → message accepted, interval {LATENCY_INTERVAL:g} s:")
    print(
        f"  {LATENCY_RUNS} releases: min {min(latencies):.2f} s, median "
        f"{statistics.median(latencies):.2f} s, max {max(latencies):.2f} s "
        f"(max = interval + {max(latencies) - LATENCY_INTERVAL:.2f} s; target ≤ interval + 5 s)"
    )


async def main() -> int:
    """Print both figures."""
    logging.disable(logging.WARNING)  # "GITHUB_TOKEN is not set" is expected here
    with tempfile.TemporaryDirectory() as folder:
        await rate_limit_per_hour(Path(folder))
        await alert_latency(Path(folder))
    return 0


if __name__ == "__main__":
    raise SystemExit(asyncio.run(main()))
