"""Wall time to collect 8 repositories with 150 ms added per request: concurrency 4 vs 1.

The six recorded repositories of ../shared/fixtures/github/2026-02-04 (synthesised when absent)
plus two synthesised ones (vllm, sglang), served by the stand-in GitHub with a 150 ms delay per
request; the same code runs with the default concurrency and with concurrency 1, no cache.
Run: python bench/collect_concurrency.py
"""

from __future__ import annotations

import asyncio
import logging
import sys
import time
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from fake_github import FakeGitHub, commit, file, issue, pull, release  # noqa: E402

from collectors.collect import collect_day  # noqa: E402
from collectors.github import GitHubClient  # noqa: E402

RECORDED = ROOT.parent / "shared" / "fixtures" / "github" / "2026-02-04"
DAY = date(2026, 2, 4)
DELAY = 0.150
DEFAULT_REPOS = [
    "deepseek-ai/DeepGEMM",
    "deepseek-ai/FlashMLA",
    "NVIDIA/cutlass",
    "flashinfer-ai/flashinfer",
    "Dao-AILab/flash-attention",
    "sgl-project/sglang",
    "vllm-project/vllm",
    "NVIDIA/cutile-python",
]


def synthesise(server: FakeGitHub, repo: str, commits: int) -> None:
    """A busy repository-day built with the test helpers (Shanghai day 2026-02-04)."""
    landed = [
        commit(
            when=f"2026-02-04T{n % 15:02d}:{n * 7 % 60:02d}:00Z",
            message=f"[Kernel] change {n} (#{30000 + n})",
            files=[file(f"csrc/k{n}.cu", 40 + n, 5), file("tests/test_k.py", 10, 2)],
        )
        for n in range(commits)
    ]
    items = [
        pull(
            30000 + n, created_at="2026-02-01T00:00:00Z", merged_at=c["commit"]["committer"]["date"]
        )
        for n, c in enumerate(landed)
    ]
    items += [issue(31000 + n, created_at=f"2026-02-04T0{n}:30:00Z") for n in range(5)]
    releases = [release("v0.16.0", published_at="2026-02-04T08:00:00Z")]
    server.add_repo(repo, commits=landed, issues=items, releases=releases)


async def timed(server: FakeGitHub, repos: list[str], concurrency: int) -> tuple[float, int]:
    """Seconds to collect the day, and the requests it took."""
    async with GitHubClient(server.url, "token", None, concurrency=concurrency) as github:
        started = time.perf_counter()
        activity = await collect_day(github, repos, DAY, "Asia/Shanghai")
        elapsed = time.perf_counter() - started
        assert all(r.error is None for r in activity.repos), [r.error for r in activity.repos]
        return elapsed, github.stats.requests


async def main() -> None:
    """Print both wall times and their ratio."""
    logging.disable(logging.WARNING)
    async with FakeGitHub(delay=DELAY) as server:
        recorded = server.load_recorded(RECORDED) if RECORDED.is_dir() else []
        missing = [r for r in DEFAULT_REPOS if r not in recorded]
        for repo in missing:
            synthesise(server, repo, commits=6)
        repos = DEFAULT_REPOS
        parallel, requests = await timed(server, repos, concurrency=4)
        serial, _ = await timed(server, repos, concurrency=1)
    print(
        f"8 repositories ({len(recorded)} recorded, {len(missing)} synthesised), "
        f"{DELAY * 1000:.0f} ms per request, {requests} requests per run"
    )
    print(f"concurrency 4: {parallel:.2f} s   concurrency 1: {serial:.2f} s")
    print(f"ratio: {parallel / serial:.2f} (target <= 0.4)")


if __name__ == "__main__":
    asyncio.run(main())
