"""The daily schedule: generate a day's digest once, then post it to each chat at its own time.

The digest of day D (a calendar day in DIGEST_TIMEZONE) can be written once D has ended; a chat
receives it at the first moment after that when its own clock shows its posting time. Every tick
(about every 30 s, or called directly by tests) generates the day if due and delivers to the chats
whose moment has come; delivery rows make that once per chat, across restarts and instances, and
a start after downtime posts the current day's missed deliveries at once.

On Mondays (the chat's local time) a chat that opted in (`/weekly on`) also receives the week's
roll-up, the seven days ending with the day just posted, once its daily post went out: a
delivery row of kind `weekly` makes that once per chat and week too.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any, Protocol
from zoneinfo import ZoneInfo

from bot.delivery import DigestSource, FanOutResult, MarkdownFor, fan_out
from bot.senders import Sender
from bot.settings import Settings, parse_hhmm
from bot.store import DAILY, FAILED, SENT, WEEKLY, Chat, Store, utcnow
from bot.tracking import tracked_set
from collectors.cache import KeyValueCache
from collectors.window import day_window, yesterday
from summarizer.llm import LLMClient

log = logging.getLogger(__name__)


class SchedulePipeline(DigestSource, Protocol):
    """What the scheduler needs of the Pipeline: fan-out's needs plus "is the day archived"."""

    async def has_digest(self, day: date) -> bool:
        """True when the day's digest is archived."""
        ...


def worker_id(prefix: str = "") -> str:
    """A name for this process's claims and locks: host, pid and a random suffix."""
    return f"{prefix}{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


def due_at(day: date, post_time: str, timezone: str, digest_timezone: str) -> datetime:
    """When a chat posting at `post_time` in `timezone` receives the digest of `day` (UTC).

    That is the first instant at or after the end of `day` in `digest_timezone` at which the
    chat's clock shows `post_time`: 09:00 the next morning in the digest's own zone.
    """
    zone = ZoneInfo(timezone)
    ready = day_window(day, digest_timezone).end.astimezone(zone)
    at = parse_hhmm(post_time)
    local = datetime.combine(ready.date(), at, tzinfo=zone)
    if local < ready:
        local = datetime.combine(ready.date() + timedelta(days=1), at, tzinfo=zone)
    return local.astimezone(ZoneInfo("UTC"))


def chat_due_at(chat: Chat, day: date, digest_timezone: str) -> datetime:
    """`due_at` of one chat; a chat with a broken time zone posts on the digest's clock."""
    try:
        return due_at(day, chat.post_time, chat.timezone, digest_timezone)
    except (ValueError, KeyError):
        return due_at(day, chat.post_time, digest_timezone, digest_timezone)


def is_weekly_post(chat: Chat, day: date, digest_timezone: str) -> bool:
    """True when the chat receives `day`'s digest on a Monday of its own clock."""
    moment = chat_due_at(chat, day, digest_timezone)
    try:
        zone = ZoneInfo(chat.timezone)
    except (ValueError, KeyError):
        zone = ZoneInfo(digest_timezone)
    return moment.astimezone(zone).weekday() == 0


def due_chats(
    chats: Sequence[Chat],
    now: datetime,
    *,
    day: date | None = None,
    digest_timezone: str = "Asia/Shanghai",
) -> list[Chat]:
    """The active chats whose posting moment for `day` (default: yesterday) has come by `now`.

    A chat that subscribed after its moment starts with the next day's digest.
    """
    day = day if day is not None else yesterday(digest_timezone, now)
    due: list[Chat] = []
    for chat in chats:
        if not chat.active:
            continue
        moment = chat_due_at(chat, day, digest_timezone)
        if moment <= now and (chat.subscribed_at is None or chat.subscribed_at <= moment):
            due.append(chat)
    return due


@dataclass(frozen=True)
class TickResult:
    """What one tick did: the day it served, whether its digest is ready, chats due, delivery."""

    day: date
    ready: bool
    due: int
    delivery: FanOutResult | None = None
    weekly: FanOutResult | None = None  # the Monday roll-up, when some chat had it due


class Scheduler:
    """Generates each day's digest once and delivers it at every chat's local posting time."""

    def __init__(
        self,
        settings: Settings,
        store: Store,
        pipeline: SchedulePipeline,
        senders: Mapping[str, Sender],
        clock: Callable[[], datetime] = utcnow,
        *,
        worker: str | None = None,
        interval: float = 30.0,
        settle: timedelta = timedelta(minutes=5),
        generation_retry: timedelta = timedelta(minutes=10),
        lock_seconds: float = 600.0,
        stop_grace: float = 20.0,
        fan_out_options: Mapping[str, object] | None = None,
        llm: LLMClient | None = None,
        cache: KeyValueCache | None = None,
    ) -> None:
        """`llm` writes the Monday roll-up (structured without), cached in `cache` (the store)."""
        self._settings = settings
        self._store = store
        self._pipeline = pipeline
        self._senders = dict(senders)
        self._clock = clock
        self._worker = worker or worker_id("sched:")
        self._interval = interval
        # GitHub's search and lists lag a little behind midnight; give them a few minutes.
        self._settle = settle
        self._generation_retry = generation_retry
        self._lock_seconds = lock_seconds
        self._stop_grace = stop_grace
        self._fan_out_options: dict[str, Any] = dict(fan_out_options or {})
        self._ready: set[date] = set()
        self._retry_generation_at: dict[date, datetime] = {}
        self._ensured: dict[date, set[tuple[str, str]]] = {}
        self._ensured_weekly: dict[date, set[tuple[str, str]]] = {}
        self._llm = llm
        self._cache: KeyValueCache = cache if cache is not None else store
        self._pruned_for: date | None = None

    @property
    def worker(self) -> str:
        """This scheduler's worker name (claims and locks carry it)."""
        return self._worker

    async def tick(
        self, now: datetime | None = None, *, stop: asyncio.Event | None = None
    ) -> TickResult:
        """Do what is due at `now`: generate the current day if needed, deliver to due chats."""
        now = now or self._clock()
        zone = self._settings.digest_timezone
        day = yesterday(zone, now)
        if not await self._digest_ready(day, now):
            return TickResult(day=day, ready=False, due=0)
        await self._prune_cache(day)
        chats = [c for c in await self._store.active_chats() if c.platform in self._senders]
        due = due_chats(chats, now, day=day, digest_timezone=zone)
        if not due:
            return TickResult(day=day, ready=True, due=0)
        await self._ensure(day, due, now)
        result = await self._fan_out(day, due, now, stop=stop, due_before=now)
        weekly = await self._weekly(day, due, now, stop)
        return TickResult(day=day, ready=True, due=len(due), delivery=result, weekly=weekly)

    async def _ensure(
        self, day: date, due: Sequence[Chat], now: datetime, *, kind: str = DAILY
    ) -> None:
        """Create delivery rows for newly due chats (once per process and day; rows are unique)."""
        ensured = self._ensured if kind == DAILY else self._ensured_weekly
        for old in [d for d in ensured if d < day]:
            del ensured[old]
        seen = ensured.setdefault(day, set())
        fresh = [c for c in due if c.key not in seen]
        if not fresh:
            return
        zone = self._settings.digest_timezone
        await self._store.ensure_deliveries(
            day, fresh, due_at=lambda chat: chat_due_at(chat, day, zone), now=now, kind=kind
        )
        seen.update(c.key for c in fresh)

    async def _weekly(
        self, day: date, due: Sequence[Chat], now: datetime, stop: asyncio.Event | None
    ) -> FanOutResult | None:
        """The week's roll-up to the opted-in chats whose Monday post of `day` went out."""
        zone = self._settings.digest_timezone
        wanted = [c for c in due if c.weekly and is_weekly_post(c, day, zone)]
        return await self.roll_up(day, wanted, now, stop=stop, due_before=now)

    async def roll_up(
        self,
        day: date,
        chats: Sequence[Chat],
        now: datetime,
        *,
        stop: asyncio.Event | None = None,
        due_before: datetime | None = None,
    ) -> FanOutResult | None:
        """The roll-up of the week ending `day` to `chats` whose post of `day` went out, once each.

        Rows due after `due_before` wait (None: all go now). None when no chat was ready.
        """
        wanted = list(chats)
        if not wanted:
            return None
        posted = await self._store.delivery_statuses(day)
        rolled = await self._store.delivery_statuses(day, kind=WEEKLY)
        ready = [
            c
            for c in wanted
            if posted.get(c.key) == SENT and rolled.get(c.key) not in (SENT, FAILED)
        ]
        if not ready:
            return None
        await self._ensure(day, ready, now, kind=WEEKLY)
        return await self._fan_out(
            day,
            ready,
            now,
            stop=stop,
            due_before=due_before,
            kind=WEEKLY,
            markdown_for=await self._week_texts(day),
        )

    async def _fan_out(
        self, day: date, chats: Sequence[Chat], now: datetime, **options: Any
    ) -> FanOutResult:
        """One fan-out of `day` to `chats` (rows already ensured) with this scheduler's options."""
        return await fan_out(
            self._store,
            self._pipeline,
            self._senders,
            day,
            worker=self._worker,
            now=now,
            chats=chats,
            ensure=False,
            **options,
            **self._fan_out_options,
        )

    async def _week_texts(self, end: date) -> MarkdownFor:
        """Each chat's roll-up of the week ending with `end`, made once per repository set."""
        # Imported here: the archive module draws charts (Pillow, fonts), needed on Mondays only.
        from bot.archive import week_for
        from summarizer.weekly import render_weekly_markdown

        tracked = await tracked_set(self._store, self._settings.digest_repos)
        made: dict[tuple[str, ...], asyncio.Task[str]] = {}

        async def write(repos: tuple[str, ...]) -> str:
            weekly = await week_for(self._store, end, repos, self._llm, self._cache)
            if weekly is None:
                raise LookupError(f"no archived day in the week ending {end}")
            return render_weekly_markdown(weekly)

        async def for_chat(chat: Chat) -> str:
            wanted = {r.lower() for r in chat.repos or ()}
            repos = tuple(r for r in tracked if r.lower() in wanted) or tuple(chat.repos or tracked)
            if repos not in made:
                made[repos] = asyncio.ensure_future(write(repos))
            return await asyncio.shield(made[repos])

        return for_chat

    async def _digest_ready(self, day: date, now: datetime) -> bool:
        """True once `day` is archived; generates it (one instance at a time) when it can."""
        if day in self._ready:
            return True
        if await self._pipeline.has_digest(day):
            self._ready = {d for d in self._ready if d >= day} | {day}
            return True
        end = day_window(day, self._settings.digest_timezone).end
        retry_at = self._retry_generation_at.get(day)
        if now < end + self._settle or (retry_at is not None and now < retry_at):
            return False
        lock = f"generate:{day.isoformat()}"
        if not await self._store.try_lock(lock, self._worker, self._lock_seconds):
            return False  # another instance is writing it; the archive will have it soon
        renewal = asyncio.create_task(self._renew(lock))
        try:
            await self._pipeline.day(day)
        except Exception:
            log.exception("generating the digest of %s failed; retrying later", day)
            self._retry_generation_at[day] = now + self._generation_retry
            return False
        finally:
            renewal.cancel()
            await self._store.release_lock(lock, self._worker)
        self._ready.add(day)
        return True

    async def _prune_cache(self, day: date) -> None:
        """Once a day, when its digest is ready: drop the store's cache entries past retention."""
        if self._pruned_for is not None and self._pruned_for >= day:
            return
        self._pruned_for = day  # also after a failure: tomorrow's attempt is soon enough
        # Imported here, as in post_once: the pipeline module pulls in the clients.
        from bot.pipeline import prune_cache

        try:
            removed = await prune_cache(self._store.prune_cache)
        except Exception:  # the posts matter more than the cache's size
            log.warning("pruning the cache failed; trying again tomorrow", exc_info=True)
            return
        if removed:
            log.info("pruned %d old cache entries", removed)

    async def _renew(self, lock: str) -> None:
        """Keep the generation lock while generating (a dead holder's lock simply expires)."""
        while True:
            await asyncio.sleep(self._lock_seconds / 3)
            try:
                await self._store.try_lock(lock, self._worker, self._lock_seconds)
            except Exception:
                log.warning("could not renew the lock %s", lock, exc_info=True)

    async def run(self, stop_event: asyncio.Event) -> None:
        """Tick until `stop_event` is set; a fan-out in progress finishes its sends first."""
        log.info("scheduler %s started", self._worker)
        while not stop_event.is_set():
            tick = asyncio.create_task(self.tick(self._clock(), stop=stop_event))
            stopping = asyncio.create_task(stop_event.wait())
            await asyncio.wait({tick, stopping}, return_when=asyncio.FIRST_COMPLETED)
            if not tick.done():
                # Fan-out stops claiming once `stop_event` is set; generation may take minutes,
                # so it gets a grace period and then cancels (its lock expires for others).
                done, _ = await asyncio.wait({tick}, timeout=self._stop_grace)
                if not done:
                    tick.cancel()
                    await asyncio.gather(tick, return_exceptions=True)
            stopping.cancel()
            if tick.done() and not tick.cancelled() and tick.exception() is not None:
                log.error("scheduler tick failed", exc_info=tick.exception())
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop_event.wait(), timeout=self._interval)
        log.info("scheduler %s stopped", self._worker)


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
    from bot.pipeline import Pipeline, make_composer, make_github, make_llm

    own_store = store is None
    if store is None:
        store = await Store.open(settings.database_url)
    llm = make_llm(settings)
    worker = worker_id("post:")
    total = PostResult()
    try:
        async with make_github(settings, store) as github:
            composer = make_composer(settings, llm, store)
            pipeline = Pipeline(settings, store, github=github, composer=composer)

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
        if llm is not None:
            await llm.aclose()
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
