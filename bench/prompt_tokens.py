"""Input tokens per repository-day on the recorded day, and what the prompt budget cut.

Collects ../shared/fixtures/github/2026-02-04 through the collector (collectors/collect.py)
against the stand-in GitHub (tests/fake_github.py), builds each active repository's section
prompt with the default budget (6,000 tokens, LLM_INPUT_TOKEN_BUDGET) and prints the estimated
input tokens (CJK ≈ 1 token a character, other text ≈ 4 characters a token, as summarizer/budget.py
estimates), the size the prompt would have had without a budget, and the items cut.
Run: python bench/prompt_tokens.py [--budget 6000] [--timezone Asia/Shanghai]
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import statistics
import sys
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from fake_github import FakeGitHub  # noqa: E402

from collectors.activity import DayActivity  # noqa: E402
from collectors.collect import collect_day  # noqa: E402
from collectors.github import GitHubClient  # noqa: E402
from summarizer.budget import estimate_tokens  # noqa: E402
from summarizer.prompts import repo_messages  # noqa: E402

RECORDED = ROOT.parent / "shared" / "fixtures" / "github" / "2026-02-04"
DAY = date(2026, 2, 4)
UNLIMITED = 10**9


async def collect(timezone: str) -> DayActivity:
    """The recorded day as the collector sees it."""
    async with FakeGitHub() as server:
        repos = server.load_recorded(RECORDED)
        async with GitHubClient(server.url, None, None) as github:
            return await collect_day(github, repos, DAY, timezone)


def _tokens(messages: list[dict[str, str]]) -> int:
    return sum(estimate_tokens(message["content"]) for message in messages)


async def main() -> int:
    """Print per-repository figures, then median and max."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget", type=int, default=6000, help="input tokens per repository")
    parser.add_argument("--timezone", default="Asia/Shanghai")
    args = parser.parse_args()
    logging.disable(logging.WARNING)  # "GITHUB_TOKEN is not set" is expected here
    if not RECORDED.is_dir():
        print(f"recorded day not found at {RECORDED}", file=sys.stderr)
        return 1
    activity = await collect(args.timezone)
    print(f"recorded day {DAY} ({args.timezone}), budget {args.budget:,} input tokens per repo")
    header = f"  {'repository':<28}{'items':>6}{'tokens':>8}{'unbudgeted':>12}  cut"
    print(header)
    sizes: list[int] = []
    cut_items = 0
    for repo in activity.repos:
        if repo.error is not None or repo.is_empty:
            print(f"  {repo.repo:<28}{'-':>6}{'0':>8}{'0':>12}  (no activity: no model call)")
            continue
        messages, report = repo_messages(repo, args.budget)
        unbudgeted, _ = repo_messages(repo, UNLIMITED)
        tokens = _tokens(messages)
        sizes.append(tokens)
        cut_items += report.items_cut
        items = len(repo.releases) + len(repo.merged_pulls) + len(repo.commits)
        items += len(repo.opened_pulls) + len(repo.opened_issues)
        cut = (
            f"{report.items_cut} items ({report.patches_cut} patches, {report.bodies_cut} bodies, "
            f"{report.items_dropped} covered commits dropped; {report.chars_cut:,} chars)"
            if report.cut_anything
            else "nothing"
        )
        print(f"  {repo.repo:<28}{items:>6}{tokens:>8,}{_tokens(unbudgeted):>12,}  {cut}")
    if not sizes:
        print("no active repository")
        return 0
    print(
        f"figure: input tokens per active repository-day: median {statistics.median(sizes):,.0f}, "
        f"max {max(sizes):,} ({len(sizes)} active of {len(activity.repos)}); "
        f"items cut by the budget: {cut_items}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(asyncio.run(main()))
