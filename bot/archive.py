"""Readers' views of the archive that need several days: the week's roll-up and the day's chart.

Thin glue between the store and the pure functions (`summarizer.weekly`, `bot.chart`), so the
chat service and the CLI ask for a week or a picture in one call.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Sequence
from datetime import date, timedelta
from typing import Protocol

from bot.chart import TREND_DAYS, render_day_chart
from collectors.activity import DayActivity
from collectors.cache import KeyValueCache
from summarizer.digest import Digest
from summarizer.llm import LLMClient
from summarizer.weekly import WeeklyDigest, week_dates, weekly_digest


class ArchiveReader(Protocol):
    """The part of `bot.store.Store` these views read: archived digests and activity by day."""

    async def load_digest(self, day: date) -> Digest | None:
        """The archived digest of `day`, or None."""
        ...

    async def load_activity(self, day: date) -> DayActivity | None:
        """The activity the archived digest of `day` was written from, or None."""
        ...


async def load_days(store: ArchiveReader, days: Iterable[date]) -> list[tuple[Digest, DayActivity]]:
    """The archived (digest, activity) of each of `days` that is in the archive, oldest first."""
    loaded: list[tuple[Digest, DayActivity]] = []
    for day in sorted(set(days)):
        digest = await store.load_digest(day)
        activity = await store.load_activity(day) if digest is not None else None
        if digest is not None and activity is not None:
            loaded.append((digest, activity))
    return loaded


async def load_history(
    store: ArchiveReader, day: date, count: int = TREND_DAYS - 1
) -> list[tuple[date, DayActivity]]:
    """The archived activity of the `count` days before `day` (for the chart's trend)."""
    history: list[tuple[date, DayActivity]] = []
    for offset in range(count, 0, -1):
        earlier = day - timedelta(days=offset)
        activity = await store.load_activity(earlier)
        if activity is not None:
            history.append((earlier, activity))
    return history


async def week_for(
    store: ArchiveReader,
    end: date,
    repos: Sequence[str],
    llm: LLMClient | None,
    cache: KeyValueCache | None,
) -> WeeklyDigest | None:
    """The roll-up of the seven days ending with `end` for `repos`; None when none is archived."""
    days = await load_days(store, week_dates(end))
    if not days:
        return None
    dates = week_dates(end)
    return await weekly_digest(days, repos, llm, cache, start=dates[0], end=dates[-1])


async def chart_for(store: ArchiveReader, day: date) -> bytes | None:
    """The PNG chart of an archived day with its 14-day trend; None when the day is not archived.

    Drawing takes a fraction of a second of CPU, so it runs in a worker thread.
    """
    activity = await store.load_activity(day)
    if activity is None:
        return None
    history = await load_history(store, day)
    return await asyncio.to_thread(render_day_chart, activity, history)
