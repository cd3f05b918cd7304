"""`aiinfra-digest post`: one fan-out of a day, for cron, with the scheduler's Monday roll-up."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import date, timedelta

from bot.delivery import FanOutResult, fan_out
from bot.platforms.base import Sender
from bot.scheduler import Scheduler, worker_id
from bot.settings import Settings
from bot.store import DAILY, WEEKLY, Store, utcnow


def posted_on_monday(day: date) -> bool:
    """True when `day`'s digest is posted on a Monday: `day` is a Sunday (in DIGEST_TIMEZONE)."""
    return (day + timedelta(days=1)).weekday() == 0


@dataclass
class PostResult(FanOutResult):
    """What `post_once` did: the daily fan-out's counts, and the Monday roll-up's if it ran."""

    weekly: FanOutResult | None = None


async def post_once(
    settings: Settings,
    day: date,
    senders: Mapping[str, Sender],
    *,
    store: Store | None = None,
    rounds: int = 4,
    max_wait: float = 300.0,
) -> PostResult:
    """One fan-out of `day` for `aiinfra-digest post`: generate or reuse, deliver, retry a little.

    Opens the store at DATABASE_URL (migrating it; or uses `store`, left open) and the
    GitHub/model clients; chats that fail transiently are retried within this run up to `rounds`
    times, then left to the next run. When `day`'s post falls on a Monday, chats with weekly on
    then get the week's roll-up, once each, as the scheduler sends it.
    """
    # Imported here: the pipeline pulls in the collector and model clients, which the
    # scheduler's callers already hold.
    from bot.clients import open_clients
    from bot.pipeline import Pipeline, make_composer

    own_store = store is None
    if store is None:
        store = await Store.open(settings.database_url)
    worker = worker_id("post:")
    total = PostResult()
    try:
        # One GitHub and one model client for the daily post and the Monday roll-up alike.
        async with open_clients(settings, store) as clients:
            llm = clients.llm
            composer = make_composer(settings, llm, store)
            pipeline = Pipeline(settings, store, github=clients.github, composer=composer)

            # The one door: NotReady before the settle window ends, one writer across instances.
            await pipeline.ensure_day(day)

            async def daily() -> FanOutResult:
                return await fan_out(store, pipeline, senders, day, worker=worker, now=utcnow())

            delivered = await _in_rounds(daily, store, day, DAILY, rounds, max_wait)
            if delivered is not None:
                total.add(delivered)
            if posted_on_monday(day):
                # The scheduler's roll-up with this run's clients, sent at once like the post.
                scheduler = Scheduler(
                    settings, store, pipeline, senders, worker=worker, llm=llm, cache=store
                )
                chats = [
                    c for c in await store.active_chats() if c.platform in senders and c.weekly
                ]

                async def weekly() -> FanOutResult | None:
                    return await scheduler.roll_up(day, chats, utcnow())

                total.weekly = await _in_rounds(weekly, store, day, WEEKLY, rounds, max_wait)
    finally:
        if own_store:
            await store.close()
    return total


async def _in_rounds(
    deliver: Callable[[], Awaitable[FanOutResult | None]],
    store: Store,
    day: date,
    kind: str,
    rounds: int,
    max_wait: float,
) -> FanOutResult | None:
    """Deliver, then again once the earliest retry is due, up to `rounds` times; the sum.

    `skipped` is the first round's, `retrying` the last round's. None when nothing was to send.
    """
    total: FanOutResult | None = None
    for round_ in range(max(1, rounds)):
        result = await deliver()
        if result is None:
            break
        if total is None:
            total = result
        else:
            skipped = total.skipped
            total.add(result)
            total.skipped, total.retrying = skipped, result.retrying
        retry_at = await store.next_retry_at(day, kind=kind)
        if not result.retrying or retry_at is None or round_ == rounds - 1:
            break
        await asyncio.sleep(min(max_wait, max(0.0, (retry_at - utcnow()).total_seconds())))
    return total
