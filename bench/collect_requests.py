"""Rate-limited GitHub requests per repository-day on the recorded day: first run and re-run.

Serves ../shared/fixtures/github/2026-02-04 from the stand-in GitHub (tests/fake_github.py) and
collects it for each time zone of truth.json, then again at once with the same ETag file cache.
Run: python bench/collect_requests.py
"""

from __future__ import annotations

import asyncio
import json
import logging
import sys
import tempfile
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from fake_github import FakeGitHub  # noqa: E402

from collectors.cache import FileCache  # noqa: E402
from collectors.collect import collect_day  # noqa: E402
from collectors.github import GitHubClient  # noqa: E402

RECORDED = ROOT.parent / "shared" / "fixtures" / "github" / "2026-02-04"
DAY = date(2026, 2, 4)


async def measure(timezone: str, cache_path: Path) -> str:
    """One time zone: the first run and an immediate re-run sharing the ETag cache."""
    async with FakeGitHub() as server:
        repos = server.load_recorded(RECORDED)
        cache = FileCache(cache_path)
        try:
            async with GitHubClient(server.url, None, cache) as github:
                await collect_day(github, repos, DAY, timezone)
                first = github.stats
            async with GitHubClient(server.url, None, cache) as github:
                await collect_day(github, repos, DAY, timezone)
                again = github.stats
        finally:
            cache.close()
    n = len(repos)
    return (
        f"{timezone:<14} first run: {first.rate_limited} rate-limited requests for {n} "
        f"repositories = {first.rate_limited / n:.2f} per repository-day | re-run: "
        f"{again.rate_limited} rate-limited = {again.rate_limited / n:.2f} per repository-day "
        f"({again.not_modified} answered 304, {again.cache_hits} commit details from the cache)"
    )


async def main() -> int:
    """Print the figures for every time zone of truth.json."""
    logging.disable(logging.WARNING)  # "GITHUB_TOKEN is not set" is expected here
    if not RECORDED.is_dir():
        print(f"recorded day not found at {RECORDED}", file=sys.stderr)
        return 1
    zones = list(json.loads((RECORDED / "truth.json").read_text()))
    print(f"recorded day {DAY} ({RECORDED}), target: <= 6 per repository-day, 0 on a re-run")
    with tempfile.TemporaryDirectory() as tmp:
        for zone in zones:
            print(await measure(zone, Path(tmp) / f"{zone.replace('/', '_')}.sqlite3"))
    return 0


if __name__ == "__main__":
    raise SystemExit(asyncio.run(main()))
