"""Digest wall time with concurrent sections vs one at a time, and model calls per digest.

Serves a stand-in OpenAI-compatible endpoint (tests/fake_llm.py) that takes `--latency` seconds
(default 2 s, as issue 3 asks) per call, and composes a digest of `--repos` active repositories
(synthetic activity, a few PRs and an issue each) with concurrency 1, then with `--concurrency`
(default 4, the LLM_CONCURRENCY default). No cache: every section is written by the model.
Run: python bench/summarize_concurrency.py [--latency 2] [--repos 8] [--concurrency 4]
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
import time
from datetime import UTC, date, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from fake_llm import API_KEY, FakeLLM  # noqa: E402

from collectors.activity import DayActivity, Issue, PullRequest, RepoActivity, Totals  # noqa: E402
from summarizer.compose import Composer  # noqa: E402
from summarizer.llm import LLMClient  # noqa: E402

DAY = date(2026, 2, 4)
WHEN = datetime(2026, 2, 4, 3, 0, tzinfo=UTC)
MODELS = ["bench/model-a:free", "bench/model-b:free"]


def synthetic_day(repos: int) -> DayActivity:
    """`repos` active repositories, each with three merged PRs and one new issue."""
    activities = []
    for index in range(repos):
        name = f"bench-org/repo{index}"
        base = f"https://github.com/{name}"
        pulls = [
            PullRequest(
                number=100 + n,
                title=f"[Kernel] Faster FP8 GEMM path {n}",
                url=f"{base}/pull/{100 + n}",
                merged_at=WHEN,
                additions=120,
                deletions=30,
                body="Speeds up the grouped GEMM by fusing the epilogue. " * 5,
            )
            for n in range(3)
        ]
        issue = Issue(number=200, title="Crash on H100", url=f"{base}/issues/200", created_at=WHEN)
        activities.append(
            RepoActivity(
                repo=name,
                merged_pulls=pulls,
                opened_issues=[issue],
                totals=Totals(commits=3, additions=360, deletions=90, files_changed=12),
            )
        )
    return DayActivity(
        day=DAY,
        timezone="Asia/Shanghai",
        window_utc=(datetime(2026, 2, 3, 16, tzinfo=UTC), datetime(2026, 2, 4, 16, tzinfo=UTC)),
        repos=activities,
    )


async def one_digest(day: DayActivity, latency: float, concurrency: int) -> tuple[float, int, int]:
    """(wall seconds, model calls, sections written by a model) for one digest."""
    async with FakeLLM(latency=latency) as fake:
        llm = LLMClient(
            API_KEY,
            fake.base_url,
            MODELS,
            concurrency=concurrency,
            requests_per_minute=20.0,  # the free-model default: 9 calls fit its burst
            timeout=60.0,
        )
        try:
            started = time.perf_counter()
            digest = await Composer(llm, None, concurrency=concurrency).compose(
                day, [repo.repo for repo in day.repos]
            )
            wall = time.perf_counter() - started
        finally:
            await llm.aclose()
        by_model = sum(1 for s in digest.sections if s.written_by == "model")
        return wall, fake.calls(), by_model


async def main() -> int:
    """Print the wall-time ratio and the calls per digest."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--latency", type=float, default=2.0, help="seconds per model call")
    parser.add_argument("--repos", type=int, default=8, help="active repositories")
    parser.add_argument("--concurrency", type=int, default=4, help="concurrent sections")
    args = parser.parse_args()
    logging.disable(logging.WARNING)
    day = synthetic_day(args.repos)
    print(
        f"{args.repos} active repositories, {args.latency:g} s per model call "
        f"(stand-in OpenAI-compatible server on 127.0.0.1)"
    )
    serial, serial_calls, serial_model = await one_digest(day, args.latency, 1)
    print(
        f"  concurrency 1: {serial:6.2f} s wall, {serial_calls} model calls "
        f"({serial_model} sections by the model + summary)"
    )
    rows = sorted({args.concurrency, 8} - {1})
    ratio_main = 0.0
    for concurrency in rows:
        wall, calls, by_model = await one_digest(day, args.latency, concurrency)
        ratio = wall / serial
        if concurrency == args.concurrency:
            ratio_main = ratio
        print(
            f"  concurrency {concurrency}: {wall:6.2f} s wall, {calls} model calls "
            f"({by_model} sections by the model + summary), ratio to concurrency 1 = {ratio:.3f}"
        )
    print(
        f"figure: wall-time ratio (concurrency {args.concurrency} / 1) = {ratio_main:.3f} "
        f"(expect <= 0.35); calls per digest = {serial_calls} "
        f"(active repositories + 1 = {args.repos + 1})"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(asyncio.run(main()))
