"""`aiinfra-digest post`: one fan-out of a day, for cron, with the scheduler's Monday roll-up."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import date, timedelta

from bot.delivery import FanOutResult, fan_out
from bot.platforms.base import Sender
from bot.scheduler import Scheduler, worker_id
from bot.settings import Settings
from bot.store import DAILY, WEEKLY, Store, utcnow

log = logging.getLogger(__name__)


def posted_on_monday(day: date) -> bool:
    """True when `day`'s digest is posted on a Monday: `day` is a Sunday (in DIGEST_TIMEZONE)."""
    return (day + timedelta(days=1)).weekday() == 0


# A rerun waits for a dead worker's leases at most their length plus this margin.
LEASE_MARGIN = 5.0


@dataclass
class PostResult(FanOutResult):
    """What `post_once` did: the daily fan-out's counts, and the Monday roll-up's if it ran.

    `pending`: deliveries still neither sent nor given up when `post` ended (waiting for a
    retry, or held by a worker that did not let go in time); `weekly_pending` likewise.
    """

    weekly: FanOutResult | None = None
    pending: int = 0
    weekly_pending: int = 0

    @property
    def complete(self) -> bool:
        """True when every chat got what it was due (none pending, none given up)."""
        weekly_failed = self.weekly.failed if self.weekly is not None else 0
        return not (self.pending or self.weekly_pending or self.failed or weekly_failed)


async def post_once(
    settings: Settings,
    day: date,
    senders: Mapping[str, Sender],
    *,
    store: Store | None = None,
    rounds: int = 4,
    max_wait: float = 300.0,
    lease_seconds: float | None = None,
) -> PostResult:
    """One fan-out of `day` for `aiinfra-digest post`: generate or reuse, deliver, retry a little.

    Opens the store at DATABASE_URL (migrating it; or uses `store`, left open) and the
    GitHub/model clients; chats that fail transiently are retried within this run up to `rounds`
    times. Deliveries another worker holds (a killed `post`) are waited for until their lease
    runs out (at most DELIVERY_LEASE_SECONDS plus a margin) and then sent; what is still
    unfinished at the end is counted in `pending`. When `day`'s post falls on a Monday, chats
    with weekly on then get the week's roll-up, once each, as the scheduler sends it.
    """
    # Imported here: the pipeline pulls in the collector and model clients, which the
    # scheduler's callers already hold.
    from bot.clients import open_clients
    from bot.pipeline import Pipeline, make_composer

    own_store = store is None
    if store is None:
        store = await Store.open(settings.database_url)
    worker = worker_id("post:")
    lease = lease_seconds if lease_seconds is not None else settings.delivery_lease_seconds
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
                return await fan_out(
                    store,
                    pipeline,
                    senders,
                    day,
                    worker=worker,
                    now=utcnow(),
                    lease_seconds=lease,
                )

            finish = _Finish(store, day, list(senders), rounds, max_wait, lease + LEASE_MARGIN)
            delivered, total.pending = await finish.run(daily, DAILY)
            if delivered is not None:
                total.add(delivered)
            if posted_on_monday(day):
                # The scheduler's roll-up with this run's clients, sent at once like the post.
                scheduler = Scheduler(
                    settings,
                    store,
                    pipeline,
                    senders,
                    worker=worker,
                    llm=llm,
                    cache=store,
                    fan_out_options={"lease_seconds": lease},
                )
                chats = [
                    c for c in await store.active_chats() if c.platform in senders and c.weekly
                ]

                async def weekly() -> FanOutResult | None:
                    return await scheduler.roll_up(day, chats, utcnow())

                total.weekly, total.weekly_pending = await finish.run(weekly, WEEKLY)
    finally:
        if own_store:
            await store.close()
    return total


@dataclass
class _Finish:
    """Deliver until nothing of `day` is left or waiting stops making sense; the sum.

    Between rounds it waits for the earlier of: the next retry time (at most `rounds` rounds,
    `max_wait` each), and the end of the leases other workers hold (a killed `post`), the latter
    at most `lease_wait` in all.
    """

    store: Store
    day: date
    platforms: list[str]
    rounds: int
    max_wait: float
    lease_wait: float

    async def run(
        self, deliver: Callable[[], Awaitable[FanOutResult | None]], kind: str
    ) -> tuple[FanOutResult | None, int]:
        """The summed result (`skipped` the first round's, `retrying` the last's) and how many
        deliveries are still unfinished."""
        total: FanOutResult | None = None
        retries = 0
        lease_deadline = time.monotonic() + self.lease_wait
        while True:
            result = await deliver()
            if result is None:
                break
            if total is None:
                total = result
            else:
                skipped = total.skipped
                total.add(result)
                total.skipped, total.retrying = skipped, result.retrying
            pending, leased_for = await self.store.unfinished(
                self.day, kind=kind, platforms=self.platforms
            )
            if not pending:
                return total, 0
            waits: list[tuple[float, str]] = []
            lease_left = lease_deadline - time.monotonic()
            if leased_for is not None and lease_left > 0:
                # Held by another worker (a dead one's claims expire; a live one finishes).
                waits.append((min(lease_left, leased_for + 0.5), "lease"))
            retry_at = await self.store.next_retry_at(self.day, kind=kind)
            if retry_at is not None and retries < self.rounds - 1:
                due = max(0.0, (retry_at - utcnow()).total_seconds())
                waits.append((min(self.max_wait, due), "retry"))
            if not waits:
                break
            wait, why = min(waits)
            if why == "retry":
                retries += 1
            else:
                log.info(
                    "%s: %d deliveries held by another worker; waiting %.0f s for its lease",
                    self.day,
                    pending,
                    wait,
                )
            await asyncio.sleep(wait)
        if total is None:
            return None, 0
        pending, _ = await self.store.unfinished(self.day, kind=kind, platforms=self.platforms)
        return total, pending
