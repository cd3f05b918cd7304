"""Build the archive of past days: oldest first, resumable, a few days at a time.

Each day goes through the pipeline's one door (`Pipeline.day`: collect, write, archive), so a
backfilled day is exactly what a posted day would be, and `/digest`, `/weekly`, the site and the
feed read it from the archive. A day already archived whole is skipped, so a rerun after a kill
only does what is left; a day archived with a failed repository or without one of the
repositories asked for, or not archived because a listing was cut (`RepoActivity.complete`), is
done again. The GitHub client waits out rate
limits; the model client is paced by its own limiter.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import TYPE_CHECKING, Protocol, TextIO

from collectors.activity import DayActivity

if TYPE_CHECKING:
    from bot.pipeline import Pipeline
    from bot.settings import Settings
    from bot.store import Store
    from collectors.github import GitHubClient

log = logging.getLogger(__name__)

DONE, SKIPPED, INCOMPLETE, FAILED = "archived", "already archived", "incomplete", "failed"


@dataclass
class BackfillResult:
    """What a backfill did, day by day, and what it cost."""

    outcomes: dict[date, str] = field(default_factory=dict)
    errors: dict[date, str] = field(default_factory=dict)
    rest_requests: int = 0
    graphql_queries: int = 0
    graphql_points: int = 0
    seconds: float = 0.0

    def count(self, outcome: str) -> int:
        """How many days ended with `outcome`."""
        return sum(1 for value in self.outcomes.values() if value == outcome)

    @property
    def ok(self) -> bool:
        """True when every day is in the archive."""
        return all(value in (DONE, SKIPPED) for value in self.outcomes.values())


class Progress(Protocol):
    """Where a backfill reports: a bar on a terminal, plain lines otherwise."""

    def start(self, total: int) -> None:
        """`total` days to go through."""
        ...

    def day(self, day: date, outcome: str, github: GitHubClient) -> None:
        """One day finished with `outcome`."""
        ...

    def stop(self) -> None:
        """The backfill ended."""
        ...


def days_between(first: date, last: date) -> list[date]:
    """Every day from `first` to `last`, both included, oldest first."""
    return [first + timedelta(days=i) for i in range((last - first).days + 1)]


def is_whole(activity: DayActivity | None, repos: Sequence[str]) -> bool:
    """True when an archived day needs no redoing: it covers `repos`, each collected whole."""
    if activity is None:
        return False
    present = {r.repo.lower() for r in activity.repos}
    return all(repo.lower() in present for repo in repos) and all(
        r.error is None and r.complete for r in activity.repos
    )


async def backfill(
    pipeline: Pipeline,
    store: Store,
    github: GitHubClient,
    days: Sequence[date],
    *,
    concurrency: int = 2,
    progress: Progress | None = None,
) -> BackfillResult:
    """Archive each of `days` not archived whole yet, oldest first, `concurrency` at a time."""
    result = BackfillResult()
    started = time.monotonic()
    before = (github.stats.requests, github.stats.graphql_requests, github.stats.graphql_points)
    queue = sorted(set(days))
    repos = await pipeline.repos()
    if progress is not None:
        progress.start(len(queue))

    async def worker() -> None:
        while queue:
            day = queue.pop(0)  # oldest first: workers take days in order
            outcome = await _one_day(pipeline, store, day, repos, result)
            result.outcomes[day] = outcome
            if progress is not None:
                progress.day(day, outcome, github)

    try:
        await asyncio.gather(*(worker() for _ in range(max(1, concurrency))))
    finally:
        if progress is not None:
            progress.stop()
    result.rest_requests = github.stats.requests - before[0]
    result.graphql_queries = github.stats.graphql_requests - before[1]
    result.graphql_points = github.stats.graphql_points - before[2]
    result.seconds = time.monotonic() - started
    return result


async def _one_day(
    pipeline: Pipeline, store: Store, day: date, repos: Sequence[str], result: BackfillResult
) -> str:
    archived = await store.load_digest(day) is not None
    activity = await store.load_activity(day) if archived else None
    if archived and is_whole(activity, repos):
        return SKIPPED
    try:
        if archived:
            # Archived with a failed repository, or without one asked for now: write it again
            # (repositories already collected come from the cache).
            await pipeline.regenerate(day)
        else:
            await pipeline.day(day)
    except Exception as exc:
        # One bad day must not stop the others; the rerun tries it again.
        log.exception("backfill of %s failed", day)
        result.errors[day] = " ".join(str(exc).split())[:300] or type(exc).__name__
        return FAILED
    if await store.load_digest(day) is None:
        result.errors[day] = "a listing was cut short: not archived (see the run's errors)"
        return INCOMPLETE
    return DONE


class PlainProgress:
    """One line per day, for logs and pipes."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self._stream = stream or sys.stderr
        self._total = 0
        self._seen = 0
        self._started = time.monotonic()

    def start(self, total: int) -> None:
        """Remember the total."""
        self._total = total
        self._started = time.monotonic()

    def day(self, day: date, outcome: str, github: GitHubClient) -> None:
        """Print one line: the day, its outcome, the count and what GitHub has left."""
        self._seen += 1
        left = _left(github)
        eta = _eta(self._started, self._seen, self._total)
        print(
            f"{day}: {outcome} ({self._seen}/{self._total}){left}{eta}",
            file=self._stream,
            flush=True,
        )

    def stop(self) -> None:
        """Nothing to close."""


class RichProgress:
    """A progress bar on a terminal: days done, GitHub budget left, ETA."""

    def __init__(self) -> None:
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeRemainingColumn,
        )

        self._bar = Progress(
            TextColumn("backfill"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("days"),
            TextColumn("{task.fields[left]}"),
            TimeRemainingColumn(),
            console=Console(stderr=True),
            transient=False,
        )
        self._task = self._bar.add_task("days", total=0, left="")

    def start(self, total: int) -> None:
        """Show the bar."""
        self._bar.update(self._task, total=total)
        self._bar.start()

    def day(self, day: date, outcome: str, github: GitHubClient) -> None:
        """Advance the bar; say what went wrong above it."""
        if outcome in (FAILED, INCOMPLETE):
            self._bar.console.print(f"{day}: {outcome}")
        self._bar.update(self._task, advance=1, left=_left(github).strip(" ·"))

    def stop(self) -> None:
        """Leave the finished bar on screen."""
        self._bar.stop()


def progress_for(stream: TextIO | None = None) -> Progress:
    """A bar when stderr is a terminal, plain lines otherwise."""
    target = stream or sys.stderr
    if target.isatty():
        return RichProgress()
    return PlainProgress(target)


def _left(github: GitHubClient) -> str:
    parts = []
    if github.graphql_remaining is not None:
        parts.append(f"{github.graphql_remaining:,} GraphQL points left")
    if github.rate_limit_remaining is not None:
        parts.append(f"{github.rate_limit_remaining:,} requests left")
    return (" · " + ", ".join(parts)) if parts else ""


def _eta(started: float, seen: int, total: int) -> str:
    if seen == 0 or seen >= total:
        return ""
    remaining = (time.monotonic() - started) / seen * (total - seen)
    return f" · ETA {remaining:.0f}s"


def summary(first: date, last: date, result: BackfillResult) -> str:
    """The closing line of a backfill."""
    return (
        f"backfill {first}..{last}: {result.count(DONE)} archived, {result.count(SKIPPED)} "
        f"already archived, {result.count(INCOMPLETE)} incomplete, {result.count(FAILED)} failed; "
        f"{result.rest_requests} GitHub requests, {result.graphql_queries} GraphQL queries "
        f"({result.graphql_points} points), {result.seconds:.1f}s"
    )


async def run_backfill(
    settings: Settings,
    first: date,
    last: date,
    repos: Sequence[str] | None,
    *,
    model: bool = True,
    concurrency: int = 2,
    progress: Progress | None = None,
) -> BackfillResult:
    """Open the store (DATABASE_URL) and the clients, then backfill `first`..`last`."""
    # Imported here: the pipeline pulls in every client, the CLI checks its input before.
    from bot.app import open_store
    from bot.pipeline import Pipeline, make_composer, make_github, make_llm

    llm = make_llm(settings) if model else None
    store = await open_store(settings)
    try:
        # A backfill has nothing better to do than wait for GitHub's hourly reset.
        async with make_github(settings, store, max_rate_limit_wait=3700.0) as github:
            chosen = list(repos) if repos else None

            async def fixed_repos() -> Sequence[str]:
                return chosen or []

            pipeline = Pipeline(
                settings,
                store,
                github=github,
                composer=make_composer(settings, llm, store),
                repos=fixed_repos if chosen else None,
            )
            return await backfill(
                pipeline,
                store,
                github,
                days_between(first, last),
                concurrency=concurrency,
                progress=progress,
            )
    finally:
        if llm is not None:
            await llm.aclose()
        await store.close()
