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
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any, Protocol
from zoneinfo import ZoneInfo

from bot.delivery import DigestSource, FanOutResult, MarkdownFor, fan_out
from bot.health import HEARTBEAT_KEEP_SECONDS, HEARTBEAT_PREFIX, Heartbeat
from bot.platforms.base import Sender
from bot.settings import Settings, parse_hhmm
from bot.store import DAILY, FAILED, PENDING, SENDING, SENT, WEEKLY, Chat, Store, utcnow
from bot.tracking import shared_set
from collectors.cache import KeyValueCache
from collectors.window import day_window, yesterday
from summarizer.digest import Digest
from summarizer.llm import LLMClient

log = logging.getLogger(__name__)

# After downtime, the days before the current one still posted late (补发), oldest first; unsent
# deliveries of older days are marked skipped (shown by `status`).
LATE_DAYS = 3
# A tick still working (a long generation) keeps the heartbeat going this long, no longer: a
# tick hung for hours turns `health` red.
BUSY_LIMIT_SECONDS = 2 * 3600.0
# Expired lock rows (finished generations, instances gone) are deleted this often.
PRUNE_LOCKS_SECONDS = 600.0


def late_preface(day: date) -> str:
    """The first line of a late post: which day it is and why it comes now."""
    return f"**补发**：{day.isoformat()} 的日报（服务中断期间未能按时推送）\n\n"


class SchedulePipeline(DigestSource, Protocol):
    """What the scheduler needs of the Pipeline: fan-out's needs plus "is the day archived"."""

    async def ensure_day(
        self,
        day: date,
        repos: Sequence[str] | None = None,
        *,
        now: datetime | None = None,
        wait: bool = True,
    ) -> Digest:
        """The day's digest through the one door (settle window, lock); raises NotReady."""
        ...

    async def week_text(
        self,
        end: date,
        repos: Sequence[str],
        *,
        llm: LLMClient | None,
        cache: KeyValueCache | None,
    ) -> str | None:
        """The rendered roll-up of the week ending `end` for `repos`; None: nothing archived."""
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
    late: FanOutResult | None = None  # late posts of missed days (first ticks after a start)


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
        generation_retry: timedelta = timedelta(minutes=10),
        stop_grace: float = 3.0,
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
        self._generation_retry = generation_retry
        self._stop_grace = stop_grace
        self._fan_out_options: dict[str, Any] = dict(fan_out_options or {})
        self._ready: set[date] = set()
        self._retry_generation_at: dict[date, datetime] = {}
        self._ensured: dict[date, set[tuple[str, str]]] = {}
        self._ensured_weekly: dict[date, set[tuple[str, str]]] = {}
        self._llm = llm
        self._cache: KeyValueCache = cache if cache is not None else store
        self._pruned_for: date | None = None
        self._late: list[date] | None = None  # missed days still to post late (None: not read)

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
        late = await self._catch_up(day, now, stop)
        if not await self._digest_ready(day, now):
            return TickResult(day=day, ready=False, due=0, late=late)
        await self._prune_cache(day)
        chats = [c for c in await self._store.active_chats() if c.platform in self._senders]
        due = due_chats(chats, now, day=day, digest_timezone=zone)
        if not due:
            return TickResult(day=day, ready=True, due=0, late=late)
        await self._ensure(day, due, now)
        result = await self._fan_out(day, due, now, stop=stop, due_before=now)
        weekly = await self._weekly(day, due, now, stop)
        return TickResult(
            day=day, ready=True, due=len(due), delivery=result, weekly=weekly, late=late
        )

    async def _catch_up(
        self, day: date, now: datetime, stop: asyncio.Event | None
    ) -> FanOutResult | None:
        """Post the missed days before `day` late, oldest first (read once, at the first tick)."""
        if self._late is None:
            self._late = await self._missed_days(day, now)
        total: FanOutResult | None = None
        for late in list(self._late):
            if stop is not None and stop.is_set():
                break
            result = await self._post_late(late, now, stop)
            if result is not None:
                total = result if total is None else _added(total, result)
        return total

    async def _missed_days(self, day: date, now: datetime) -> list[date]:
        """The days before `day` (at most LATE_DAYS) since the last one the bot served.

        Unsent deliveries of older days are marked skipped. A fresh database has served no day,
        so nothing is posted late on a first start.
        """
        oldest = day - timedelta(days=LATE_DAYS)
        skipped = await self._store.skip_deliveries(
            oldest, f"more than {LATE_DAYS} days late", now=now
        )
        if skipped:
            log.warning("%d deliveries of days before %s were skipped (too late)", skipped, oldest)
        served = await self._store.latest_delivery_day(day)
        if served is None:
            return []
        first = max(served, oldest)
        return [first + timedelta(days=n) for n in range((day - first).days)]

    async def _post_late(
        self, day: date, now: datetime, stop: asyncio.Event | None
    ) -> FanOutResult | None:
        """One missed day to the chats it was due to and that have not had it, 补发 first."""
        assert self._late is not None
        zone = self._settings.digest_timezone
        chats = [c for c in await self._store.active_chats() if c.platform in self._senders]
        statuses = await self._store.delivery_statuses(day)
        missing = [
            c
            for c in due_chats(chats, now, day=day, digest_timezone=zone)
            if statuses.get(c.key) in (None, PENDING, SENDING)
        ]
        if not missing:
            self._late.remove(day)
            return None
        if not await self._digest_ready(day, now):
            return None  # generated on a later tick (or by another instance)
        await self._store.ensure_deliveries(day, missing, now=now)
        return await self._fan_out(day, missing, now, stop=stop, preface=late_preface(day))

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
        """Each chat's roll-up of the week ending with `end`, from the pipeline (one per set)."""
        # The shared set only: what a chat added never reaches the roll-up.
        tracked = await shared_set(self._store, self._settings.digest_repos)
        made: dict[tuple[str, ...], asyncio.Task[str]] = {}

        async def write(repos: tuple[str, ...]) -> str:
            text = await self._pipeline.week_text(end, repos, llm=self._llm, cache=self._cache)
            if text is None:
                raise LookupError(f"no archived day in the week ending {end}")
            return text

        async def for_chat(chat: Chat) -> str:
            wanted = {r.lower() for r in chat.repos or ()}
            repos = tuple(r for r in tracked if r.lower() in wanted) or tuple(tracked)
            if repos not in made:
                made[repos] = asyncio.ensure_future(write(repos))
            return await asyncio.shield(made[repos])

        return for_chat

    async def _digest_ready(self, day: date, now: datetime) -> bool:
        """True once `day` is archived; generated through the pipeline's door when it can be."""
        if day in self._ready:
            return True
        retry_at = self._retry_generation_at.get(day)
        if retry_at is not None and now < retry_at:
            return False
        # Imported here, as in bot.post: the pipeline module pulls in the clients.
        from bot.pipeline import NotReady

        try:
            # Not waiting: while another instance writes the day, this tick has nothing to do.
            await self._pipeline.ensure_day(day, now=now, wait=False)
        except NotReady:
            return False
        except Exception:
            log.exception("generating the digest of %s failed; retrying later", day)
            self._retry_generation_at[day] = now + self._generation_retry
            return False
        self._ready = {d for d in self._ready if d >= day} | {day}
        return True

    async def _prune_cache(self, day: date) -> None:
        """Once a day, when its digest is ready: drop the store's cache entries past retention."""
        if self._pruned_for is not None and self._pruned_for >= day:
            return
        self._pruned_for = day  # also after a failure: tomorrow's attempt is soon enough
        # Imported here, as in bot.post: the pipeline module pulls in the clients.
        from bot.pipeline import prune_cache

        try:
            removed = await prune_cache(self._store.prune_cache)
        except Exception:  # the posts matter more than the cache's size
            log.warning("pruning the cache failed; trying again tomorrow", exc_info=True)
            return
        if removed:
            log.info("pruned %d old cache entries", removed)

    async def run(self, stop_event: asyncio.Event) -> None:
        """Tick until `stop_event` is set; a fan-out in progress finishes its sends first.

        Each round beats the `scheduler` heartbeat (see bot.health), also while a long tick is
        still working, up to BUSY_LIMIT_SECONDS; expired lock rows are pruned every ten minutes.
        """
        log.info("scheduler %s started", self._worker)
        heartbeat = Heartbeat(self._store, "scheduler", self._interval, holder=self._worker)
        pruned_at = float("-inf")
        try:
            while not stop_event.is_set():
                await heartbeat.beat()
                if time.monotonic() - pruned_at >= PRUNE_LOCKS_SECONDS:
                    pruned_at = time.monotonic()
                    await self._prune_locks()
                tick = asyncio.create_task(self.tick(self._clock(), stop=stop_event))
                await self._await_tick(tick, stop_event, heartbeat)
                if tick.done() and not tick.cancelled() and tick.exception() is not None:
                    log.error("scheduler tick failed", exc_info=tick.exception())
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop_event.wait(), timeout=self._interval)
        finally:
            if stop_event.is_set():
                await heartbeat.forget()  # stopped, not dead
        log.info("scheduler %s stopped", self._worker)

    async def _await_tick(
        self, tick: asyncio.Task[TickResult], stop_event: asyncio.Event, heartbeat: Heartbeat
    ) -> None:
        """Wait for `tick`, beating while it works; on stop, a short grace, then cancel it."""
        started = time.monotonic()
        stopping = asyncio.create_task(stop_event.wait())
        try:
            while not tick.done() and not stop_event.is_set():
                await asyncio.wait(
                    {tick, stopping}, timeout=self._interval, return_when=asyncio.FIRST_COMPLETED
                )
                if not tick.done() and time.monotonic() - started < BUSY_LIMIT_SECONDS:
                    await heartbeat.beat()
            if not tick.done():
                # Fan-out stops claiming once `stop_event` is set; generation may take minutes,
                # so it gets a short grace and then cancels (its lock expires for others), so
                # `run` ends within seconds of SIGTERM.
                done, _ = await asyncio.wait({tick}, timeout=self._stop_grace)
                if not done:
                    tick.cancel()
                    await asyncio.gather(tick, return_exceptions=True)
        finally:
            stopping.cancel()
            if not tick.done():  # we were cancelled ourselves: take the tick down with us
                tick.cancel()
                await asyncio.gather(tick, return_exceptions=True)

    async def _prune_locks(self) -> None:
        """Delete expired lock rows (heartbeats only long after they went stale)."""
        try:
            removed = await self._store.prune_locks(
                keep_prefix=HEARTBEAT_PREFIX, keep_seconds=HEARTBEAT_KEEP_SECONDS
            )
        except Exception as exc:  # housekeeping; the next round tries again
            log.warning("pruning expired locks failed: %s", type(exc).__name__)
            return
        if removed:
            log.info("pruned %d expired lock rows", removed)


def _added(total: FanOutResult, more: FanOutResult) -> FanOutResult:
    total.add(more)
    return total
