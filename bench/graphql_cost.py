"""REST requests vs GraphQL points per repository-day, and the cost of a 30-day backfill.

1. The recorded day (../shared/fixtures/github/2026-02-04) in each time zone of truth.json, and a
   synthetic 300-commit day (spread over the day, and packed into two hours), collected over REST
   (tokenless) and over GraphQL (tests/fake_graphql.py, GitHub's cost formula), side by side,
   with a check that both give truth's exact totals. The GraphQL path also makes REST requests
   for the prompt's news (commit details for at most Limits.patch_commits commits, linked-issue
   titles): GraphQL points + REST requests per repository-day are printed together.
2. `backfill` of 30 days x 6 repositories (no model) into a SQLite archive over each path: GitHub
   requests or GraphQL queries and points, wall time, and the same backfill run again.
Run: python bench/graphql_cost.py
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from fake_github import FakeGitHub, commit, file, issue, pull  # noqa: E402
from fake_graphql import FakeGraphQL  # noqa: E402

from bot.backfill import days_between, run_backfill  # noqa: E402
from bot.settings import Settings  # noqa: E402
from collectors.activity import DayActivity  # noqa: E402
from collectors.cache import MemoryCache  # noqa: E402
from collectors.collect import collect_day  # noqa: E402
from collectors.github import GitHubClient  # noqa: E402
from collectors.window import day_window  # noqa: E402

RECORDED = ROOT.parent / "shared" / "fixtures" / "github" / "2026-02-04"
DAY = date(2026, 2, 4)
TZ = "Asia/Shanghai"


@dataclass(frozen=True)
class GraphQLCost:
    """What one GraphQL-path collection cost: queries, points, REST details and issue GETs."""

    queries: int
    points: int
    details: int
    issue_gets: int
    rerun_rest: int  # REST requests of an immediate re-run (304s and cache hits are free)

    @property
    def rest(self) -> int:
        """REST requests beside GraphQL (patches and linked issues)."""
        return self.details + self.issue_gets


async def both_paths(
    rest: FakeGitHub, gql: FakeGraphQL, repos: list[str], day: date, timezone: str
) -> tuple[DayActivity, DayActivity, int, GraphQLCost]:
    """The day over REST and over GraphQL: (rest, graphql, REST requests, GraphQL cost)."""
    async with GitHubClient(rest.url, None, MemoryCache()) as github:
        by_rest = await collect_day(github, repos, day, timezone)
        requests = github.stats.rate_limited
    cache = MemoryCache()
    rest.clear_log()
    async with GitHubClient(rest.url, "tok", cache, graphql_url=gql.url) as github:
        by_graphql = await collect_day(github, repos, day, timezone)
        queries, points = github.stats.graphql_requests, github.stats.graphql_points
    paths = [r.path for r in rest.requests]
    details = sum(1 for p in paths if re.fullmatch(r"/repos/[^/]+/[^/]+/commits/[0-9a-f]{40}", p))
    issue_gets = sum(1 for p in paths if re.fullmatch(r"/repos/[^/]+/[^/]+/issues/\d+", p))
    async with GitHubClient(rest.url, "tok", cache, graphql_url=gql.url) as github:
        await collect_day(github, repos, day, timezone)
        rerun = github.stats.rate_limited
    cost = GraphQLCost(queries, points, details, issue_gets, rerun)
    return by_rest, by_graphql, requests, cost


def _same_totals(a: DayActivity, b: DayActivity) -> bool:
    return all(
        (x.totals.commits, x.totals.additions, x.totals.deletions)
        == (y.totals.commits, y.totals.additions, y.totals.deletions)
        and [p.number for p in x.merged_pulls] == [p.number for p in y.merged_pulls]
        for x, y in zip(a.repos, b.repos, strict=True)
    )


def _matches_truth(activity: DayActivity, truth: dict[str, Any]) -> bool:
    for repo, expected in truth.items():
        got = activity.repo(repo)
        if got is None or got.error is not None:
            return False
        if sorted(c.sha for c in got.commits) != sorted(expected["commits"]):
            return False
        if (got.totals.additions, got.totals.deletions) != (
            expected["additions"],
            expected["deletions"],
        ):
            return False
    return True


async def recorded() -> None:
    """Part 1a: the recorded day."""
    if not RECORDED.is_dir():
        print(f"recorded day not found at {RECORDED}: skipped")
        return
    truths = json.loads((RECORDED / "truth.json").read_text())
    for zone, truth in truths.items():
        async with FakeGitHub() as rest, FakeGraphQL(rest) as gql:
            repos = rest.load_recorded(RECORDED)
            by_rest, by_gql, requests, cost = await both_paths(rest, gql, repos, DAY, zone)
        n = len(repos)
        print(
            f"  recorded {DAY} {zone:<14} REST {requests / n:.2f} requests/repo-day | GraphQL "
            f"{cost.queries / n:.2f} queries, {cost.points / n:.2f} points + "
            f"{cost.rest / n:.2f} REST ({cost.details / n:.2f} details, "
            f"{cost.issue_gets / n:.2f} issue GETs)/repo-day, re-run {cost.rerun_rest} REST | "
            f"exact vs truth: REST {_matches_truth(by_rest, truth)}, "
            f"GraphQL {_matches_truth(by_gql, truth)}"
        )


def _busy_day(
    rest: FakeGitHub, repo: str, commits: int, span_hours: float, opened: int, issues: int
) -> None:
    """`commits` squash-merged PRs over `span_hours`, `opened` open PRs and `issues` new issues."""
    start = day_window(DAY, TZ).start
    step = span_hours * 3600 / commits
    built, items = [], []
    for i in range(commits):
        when = start + timedelta(seconds=i * step)
        number = 10_000 + i
        changed = [file(f"src/m{i % 40}.py", 3 + i % 7, i % 3), file(f"tests/t{i}.py", 5, 0)]
        built.append(commit(when=when, message=f"[Kernel] change {i} (#{number})", files=changed))
        items.append(pull(number, created_at=when - timedelta(days=1), merged_at=when))
    for k in range(opened):
        items.append(pull(30_000 + k, created_at=start + timedelta(minutes=20 * k + 7)))
    for k in range(issues):
        items.append(issue(20_000 + k, created_at=start + timedelta(minutes=40 * k + 3)))
    rest.add_repo(repo, commits=built, issues=items)


async def synthetic() -> None:
    """Part 1b: a 300-commit day (spread over 24 hours, packed into 2) and a busy vLLM-like day."""
    cases = [
        ("300 commits/merged PRs over 24 h", 300, 24.0, 30, 20),
        ("300 commits/merged PRs over  2 h", 300, 2.0, 30, 20),
        ("80 merged, 40 opened PRs, 30 issues", 80, 24.0, 40, 30),
    ]
    for label, commits, span, opened, issues in cases:
        async with FakeGitHub() as rest, FakeGraphQL(rest) as gql:
            _busy_day(rest, "acme/busy", commits, span, opened, issues)
            by_rest, by_gql, requests, cost = await both_paths(rest, gql, ["acme/busy"], DAY, TZ)
        got = by_gql.repos[0]
        print(
            f"  synthetic {label}: REST {requests} requests | GraphQL {cost.queries} queries, "
            f"{cost.points} points + {cost.rest} REST ({cost.details} details, "
            f"{cost.issue_gets} issue GETs), re-run {cost.rerun_rest} REST | same totals, "
            f"merged PRs: {_same_totals(by_rest, by_gql)} "
            f"({got.totals.commits} commits, +{got.totals.additions} -{got.totals.deletions}, "
            f"{len(got.opened_pulls)} opened PRs, {len(got.opened_issues)} issues)"
        )


REPOS = [f"acme/repo{i}" for i in range(6)]
FIRST = date(2026, 1, 1)
LAST = FIRST + timedelta(days=29)


def _month(rest: FakeGitHub) -> None:
    """30 days x 6 repositories, 2-12 merged PRs a repository-day."""
    for r, repo in enumerate(REPOS):
        built, items = [], []
        for d, day in enumerate(days_between(FIRST, LAST)):
            start = day_window(day, TZ).start
            for k in range(2 + (d * 7 + r * 3) % 11):
                number = 1000 * (d + 1) + 10 * k + r
                when = start + timedelta(hours=1 + k, minutes=r)
                built.append(commit(when=when, message=f"Change {number} (#{number})"))
                items.append(pull(number, created_at=when - timedelta(hours=5), merged_at=when))
            items.append(issue(1000 * (d + 1) + 999 - r, created_at=start + timedelta(hours=20)))
        rest.add_repo(repo, commits=built, issues=items)


async def backfill_month(path: str) -> None:
    """Part 2: backfill 30 x 6 over `path`, then the same again."""
    with tempfile.TemporaryDirectory() as tmp:
        async with FakeGitHub() as rest, FakeGraphQL(rest) as gql:
            _month(rest)
            settings = Settings(
                database_url=f"sqlite+aiosqlite:///{tmp}/archive.sqlite3",
                github_token="tok" if path == "graphql" else None,  # type: ignore[arg-type]
                github_api_url=rest.url,
                github_graphql_url=gql.url,
                github_collector=path,  # type: ignore[arg-type]
                digest_repos=REPOS,
                cache_dir=f"{tmp}/cache",
            )
            for label in ("first run", "re-run   "):
                rest_before = rest.rate_limited
                started = time.perf_counter()
                result = await run_backfill(settings, FIRST, LAST, None, model=False)
                wall = time.perf_counter() - started
                days = len(result.outcomes)
                print(
                    f"  backfill 30 days x 6 repos over {path:<7} {label}: {days} days "
                    f"({result.count('archived')} archived, {result.count('already archived')} "
                    f"skipped), {rest.rate_limited - rest_before} REST requests, "
                    f"{result.graphql_queries} GraphQL queries ({result.graphql_points} points), "
                    f"{wall:.1f}s wall"
                )


async def main() -> int:
    """Print every figure."""
    logging.disable(logging.WARNING)
    print(
        "per repository-day, REST (tokenless) vs GraphQL (aim: <= 2 points, totals exact; "
        "plus <= 10 REST details and <= 10 issue GETs for the prompt's news)"
    )
    await recorded()
    await synthetic()
    print("backfill (no model; stand-ins on 127.0.0.1; aim: re-run costs 0)")
    await backfill_month("graphql")
    await backfill_month("rest")
    return 0


if __name__ == "__main__":
    raise SystemExit(asyncio.run(main()))
