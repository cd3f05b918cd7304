"""GitHub and model calls one chat can cause in an hour through `/digest <day>` for unarchived days.

A private chat (not an operator) asks for the digest of an older day every 10 seconds of a
simulated hour, walking back through the last 90 days (none archived). The command service, the
real pipeline, a real store (SQLite) and the composer run against the stand-in GitHub
(tests/fake_github.py: every repository has a commit and a merged PR each day) and the stand-in
model (tests/fake_llm.py). Printed before (no bound) and after (the default bounds: 1 a minute,
10 a day per chat, ON_DEMAND_PER_HOUR overall).
Run: python bench/on_demand_cost.py [--repos 8]
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
import tempfile
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from fake_github import FakeGitHub, commit, pull  # noqa: E402
from fake_llm import API_KEY, FakeLLM  # noqa: E402

from bot.commands import ChatContext, CommandService  # noqa: E402
from bot.ondemand import OnDemandLimiter  # noqa: E402
from bot.pipeline import Pipeline  # noqa: E402
from bot.settings import Settings  # noqa: E402
from bot.store import Store  # noqa: E402
from collectors.github import GitHubClient  # noqa: E402
from summarizer.compose import Composer  # noqa: E402
from summarizer.llm import LLMClient  # noqa: E402

NOW = datetime(2026, 5, 1, 2, 0, tzinfo=UTC)  # 10:00 in Shanghai
YESTERDAY = date(2026, 4, 30)
DAYS = 90
EVERY = timedelta(seconds=10)


def _serve(github: FakeGitHub, repos: list[str]) -> None:
    for index, repo in enumerate(repos):
        commits, issues = [], []
        for back in range(DAYS + 1):
            day = YESTERDAY - timedelta(days=back)
            when = datetime(day.year, day.month, day.day, 3, index, tzinfo=UTC)
            number = 1000 + back
            commits.append(commit(when=when, message=f"Kernel change {back} (#{number})"))
            issues.append(pull(number, created_at=when, merged_at=when, title=f"Kernel {back}"))
        github.add_repo(repo, commits=commits, issues=issues)


async def one_hour(bounded: bool, repo_count: int) -> tuple[int, int, int, int]:
    """(requests, days generated, GitHub requests, model calls) of one chat's hour."""
    repos = [f"acme/repo{i}" for i in range(repo_count)]
    clock_now = [NOW]

    def clock() -> datetime:
        return clock_now[0]

    async with FakeGitHub() as github, FakeLLM() as model:
        _serve(github, repos)
        with tempfile.TemporaryDirectory() as folder:
            settings = Settings(
                database_url=f"sqlite+aiosqlite:///{folder}/bench.sqlite3",
                github_api_url=github.url,
                digest_repos=repos,
            )
            store = await Store.open(settings.database_url)
            llm = LLMClient(API_KEY, model.base_url, ["m1"], requests_per_minute=600000.0)
            try:
                async with GitHubClient(github.url, None, store) as client:
                    composer = Composer(llm, store)
                    pipeline = Pipeline(settings, store, github=client, composer=composer)
                    limiter = (
                        OnDemandLimiter(per_hour=settings.on_demand_per_hour, clock=clock)
                        if bounded
                        else OnDemandLimiter.unbounded(clock)
                    )
                    service = CommandService(
                        settings, store, pipeline, clock=clock, on_demand=limiter
                    )

                    async def not_asked() -> bool:
                        return False

                    ctx = ChatContext("telegram", "42", "private", "42", not_asked)
                    github.clear_log()
                    before_calls = model.calls()
                    asked = 0
                    generated: set[date] = set()
                    for step in range(int(timedelta(hours=1) / EVERY)):
                        clock_now[0] = NOW + step * EVERY
                        day = YESTERDAY - timedelta(days=step % DAYS)
                        reply = await service.handle(ctx, "digest", day.isoformat())
                        asked += 1
                        if not reply.ephemeral:
                            generated.add(day)
                    calls = model.calls() - before_calls
                    return asked, len(generated), github.count(), calls
            finally:
                await llm.aclose()
                await store.close()


async def main() -> int:
    """Print the hour's figures without and with the bounds."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repos", type=int, default=8, help="repositories in DIGEST_REPOS")
    args = parser.parse_args()
    logging.disable(logging.WARNING)  # "GITHUB_TOKEN is not set" is expected here
    print(
        f"one chat, a /digest <older day> every {EVERY.seconds} s for an hour, {args.repos} repos"
    )
    results = {}
    for label, bounded in (("before (no bound)", False), ("after (bounded)", True)):
        asked, days, github, model = await one_hour(bounded, args.repos)
        results[label] = github + model
        print(
            f"  {label:<18} requests {asked:>4}  days generated {days:>3}  "
            f"GitHub requests {github:>6,}  model calls {model:>5,}"
        )
    before, after = results.values()
    print(
        f"figure: GitHub + model calls one chat can cause per hour on demand: "
        f"{before:,} before, {after:,} after"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(asyncio.run(main()))
