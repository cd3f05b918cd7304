"""What the model sees on the recorded day: the day's news, boilerplate, tokens, linked-issue GETs.

Collects ../shared/fixtures/github/2026-02-04 through the collector against the stand-in GitHub
(tests/fake_github.py), builds each active repository's section prompt with the default budget,
and prints four figures:
- the share of changelog/README lines added that day (read from the recording itself, not from
  what the collector kept) whose text reaches the prompt;
- licence and PR-template boilerplate as a share of prompt characters, found by an independent
  line detector (licence words, checklists, HTML comments, thank-you/pre-commit lines, bot
  summaries, sign-off trailers);
- estimated prompt tokens per active repository-day (median, max) against the budget;
- extra GitHub requests for linked issues (`GET /repos/o/r/issues/N`) per repository-day.
Run: python bench/prompt_news.py [--budget 6000] [--timezone UTC]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import re
import statistics
import sys
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from fake_github import FakeGitHub  # noqa: E402

from collectors.activity import DayActivity  # noqa: E402
from collectors.collect import collect_day  # noqa: E402
from collectors.files import added_lines, is_news  # noqa: E402
from collectors.github import GitHubClient  # noqa: E402
from summarizer.budget import estimate_tokens  # noqa: E402
from summarizer.prompts import repo_messages  # noqa: E402

RECORDED = ROOT.parent / "shared" / "fixtures" / "github" / "2026-02-04"
DAY = date(2026, 2, 4)

_BOILERPLATE = re.compile(
    r"spdx-|copyright|licensed under|redistribution and use|permission is hereby granted|"
    r"all rights reserved|warrant|liabilit|^\s*[-*]\s+\[[ xX]\]|<!--|-->|"
    r"thank you for contributing|"
    r"pre-commit|summary by coderabbit|auto-generated comment|signed-off-by|co-authored-by|"
    r"[\w.+-]+@[\w-]+\.[\w.]+",
    re.IGNORECASE,
)


async def collect(timezone: str) -> tuple[DayActivity, dict[str, int]]:
    """The recorded day as the collector sees it, and the linked-issue GETs per repository."""
    async with FakeGitHub() as server:
        repos = server.load_recorded(RECORDED)
        async with GitHubClient(server.url, None, None) as github:
            activity = await collect_day(github, repos, DAY, timezone)
        gets = {repo: server.count(path=f"/repos/{repo}/issues/") for repo in repos}
        return activity, gets


def recorded_news_lines(repo: str, shas: list[str]) -> list[str]:
    """Changelog/README lines the day's commits add, as recorded (not as collected)."""
    folder = RECORDED / repo.replace("/", "__") / "commit_details"
    lines: list[str] = []
    for sha in shas:
        path = folder / f"{sha}.json"
        if not path.exists():
            continue
        for change in json.loads(path.read_text()).get("files") or []:
            if is_news(change["filename"]):
                lines += [line.strip() for line in added_lines(change.get("patch"))]
    return [line for line in lines if len(line) > 3]


def boilerplate_chars(text: str) -> int:
    """Characters of lines an independent detector calls licence or template boilerplate."""
    return sum(len(line) + 1 for line in text.splitlines() if _BOILERPLATE.search(line))


async def main() -> int:
    """Print per-repository figures, then the four day figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget", type=int, default=6000, help="input tokens per repository")
    parser.add_argument("--timezone", default="UTC")
    args = parser.parse_args()
    logging.disable(logging.WARNING)  # "GITHUB_TOKEN is not set" is expected here
    if not RECORDED.is_dir():
        print(f"recorded day not found at {RECORDED}", file=sys.stderr)
        return 1
    activity, gets = await collect(args.timezone)
    print(f"recorded day {DAY} ({args.timezone}), budget {args.budget:,} input tokens per repo")
    print(f"  {'repository':<28}{'news':>10}{'boiler':>8}{'tokens':>8}{'linked GETs':>13}")
    tokens: list[int] = []
    news_total = news_seen = chars = boiler = 0
    for repo in activity.repos:
        if repo.error is not None or repo.is_empty:
            print(f"  {repo.repo:<28}  (no activity: no model call)")
            continue
        messages, _ = repo_messages(repo, args.budget)
        prompt = "\n".join(message["content"] for message in messages)
        user = messages[-1]["content"]
        news = recorded_news_lines(repo.repo, [c.sha for c in repo.commits])
        seen = sum(1 for line in news if line in prompt)
        news_total += len(news)
        news_seen += seen
        chars += len(user)
        boiler += boilerplate_chars(user)
        count = sum(estimate_tokens(message["content"]) for message in messages)
        tokens.append(count)
        print(
            f"  {repo.repo:<28}{f'{seen}/{len(news)}':>10}"
            f"{boilerplate_chars(user) / max(len(user), 1):>8.1%}{count:>8,}{gets[repo.repo]:>13}"
        )
    if not tokens:
        print("no active repository")
        return 0
    share = news_seen / news_total if news_total else 1.0
    print(f"figure: changelog/README lines added that day reaching the prompt: "
          f"{news_seen}/{news_total} = {share:.0%}")  # fmt: skip
    print(f"figure: licence+template boilerplate: {boiler / max(chars, 1):.2%} of prompt chars "
          f"({boiler:,} of {chars:,}, user messages)")  # fmt: skip
    print(
        f"figure: prompt tokens per active repository-day: median {statistics.median(tokens):,.0f},"
        f" max {max(tokens):,} (budget {args.budget:,}: "
        f"{'holds' if max(tokens) <= args.budget else 'EXCEEDED'})"
    )
    per_repo = sum(gets.values()) / len(activity.repos)
    print(f"figure: extra GitHub requests for linked issues: {sum(gets.values())} in "
          f"{len(activity.repos)} repository-days = {per_repo:.1f} per repository-day "
          f"(max {max(gets.values())})")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(asyncio.run(main()))
