"""Several instances on one database: who polls Telegram, and how many share the send budget.

Both ride on the store's named leases (`try_lock`, a row per name with a holder and an expiry),
so they work on PostgreSQL and SQLite alike and need no extra service:

- `Election` keeps one named lease while it can and runs a job only while holding it (Telegram
  answers 409 Conflict to a second long-poller of the same token). The holder renews every
  `ttl / 3`; a holder that cannot renew stops its job before its lease can expire, and a holder
  that dies simply stops renewing, so another instance takes over within about `ttl`.
- `Fleet` is a heartbeat lease per instance; the number of live heartbeats is how many
  instances share a platform's rate limit (each paces at limit / N).

Every expiry is compared with the database's clock (see `Store.try_lock`), never a host's.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Protocol

from bot.health import Heartbeat
from bot.store import Store

log = logging.getLogger(__name__)

POLLER_LOCK = "telegram:poller"
INSTANCE_PREFIX = "instance:"

Job = Callable[[], Awaitable[None]]


class Leases(Protocol):
    """The store's named leases."""

    async def try_lock(self, name: str, holder: str, ttl_seconds: float) -> bool: ...
    async def release_lock(self, name: str, holder: str) -> None: ...


async def _sleep_or_stop(stop: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), timeout=seconds)


class Election:
    """Runs a job on exactly one instance at a time: the holder of the named lease."""

    def __init__(
        self,
        store: Leases,
        name: str,
        worker: str,
        *,
        ttl: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
        heartbeat: Heartbeat | None = None,
    ) -> None:
        """`heartbeat` is beaten after every round (the `health` check's view of this loop)."""
        self._store = store
        self._heartbeat = heartbeat
        self._name = name
        self._worker = worker
        self._ttl = ttl
        self._interval = ttl / 3
        self._clock = clock
        self._leading = False
        self._renewed_at = float("-inf")

    @property
    def leading(self) -> bool:
        """True while this instance holds the lease and its job runs."""
        return self._leading

    async def run(self, stop: asyncio.Event, on_elected: Job, on_deposed: Job) -> None:
        """Take the lease when free and start the job; stop it when the lease is lost or on stop."""
        try:
            while not stop.is_set():
                await self.round(on_elected, on_deposed)
                if self._heartbeat is not None:
                    await self._heartbeat.beat()
                await _sleep_or_stop(stop, self._interval)
        finally:
            await self._step_down(on_deposed)
            if self._heartbeat is not None and stop.is_set():
                await self._heartbeat.forget()

    async def round(self, on_elected: Job, on_deposed: Job) -> None:
        """One renewal (or candidacy): start or stop the job as the lease says."""
        try:
            held = await self._store.try_lock(self._name, self._worker, self._ttl)
        except Exception as exc:
            # The database is unreachable: keep the job only while the lease surely still holds,
            # so it has stopped before anyone else can take the lease over.
            log.warning("%s: could not renew the lease: %s", self._name, type(exc).__name__)
            if self._leading and self._clock() - self._renewed_at > self._ttl - self._interval:
                log.warning("%s: lease about to expire; stepping down", self._name)
                await self._stop_job(on_deposed)
            return
        if held:
            self._renewed_at = self._clock()
            if not self._leading:
                await self._start_job(on_elected)
        elif self._leading:
            log.warning("%s: lease was taken over; stepping down", self._name)
            await self._stop_job(on_deposed)

    async def _start_job(self, on_elected: Job) -> None:
        try:
            await on_elected()
        except Exception:
            log.exception("%s: starting the job failed; giving the lease back", self._name)
            await self._release()
            return
        self._leading = True
        log.info("%s: elected (%s)", self._name, self._worker)

    async def _stop_job(self, on_deposed: Job) -> None:
        self._leading = False
        try:
            await on_deposed()
        except Exception:
            log.exception("%s: stopping the job failed", self._name)

    async def _step_down(self, on_deposed: Job) -> None:
        if self._leading:
            await self._stop_job(on_deposed)
            await self._release()  # a clean stop hands over at once, not after `ttl`

    async def _release(self) -> None:
        try:
            await self._store.release_lock(self._name, self._worker)
        except Exception as exc:
            log.warning("%s: could not release the lease: %s", self._name, type(exc).__name__)


async def live_instances(store: Store) -> int:
    """How many instances have a live heartbeat (at least 1: the caller counts itself).

    Live by the database's clock, so hosts whose clocks disagree still count the same.
    """
    return max(1, await store.live_locks(INSTANCE_PREFIX))


class Fleet:
    """This instance's heartbeat; reports the number of live instances when it changes."""

    def __init__(
        self,
        store: Store,
        worker: str,
        *,
        ttl: float = 30.0,
        on_size: Callable[[int], None] | None = None,
    ) -> None:
        self._store = store
        self._worker = worker
        self._ttl = ttl
        self._on_size = on_size
        self.size = 1

    @property
    def lease_name(self) -> str:
        """This instance's heartbeat lease."""
        return f"{INSTANCE_PREFIX}{self._worker}"

    async def beat(self) -> int:
        """Renew the heartbeat and count the live instances (calls `on_size` on a change)."""
        await self._store.try_lock(self.lease_name, self._worker, self._ttl)
        size = await live_instances(self._store)
        if size != self.size:
            log.info("%d instance(s) running; each sends at 1/%d of the platform limit", size, size)
            self.size = size
            if self._on_size is not None:
                self._on_size(size)
        return size

    async def run(self, stop: asyncio.Event) -> None:
        """Beat every `ttl / 3` until `stop`, then leave the fleet (others speed up at once)."""
        try:
            while not stop.is_set():
                try:
                    await self.beat()
                except Exception as exc:
                    log.warning("heartbeat failed: %s", type(exc).__name__)
                await _sleep_or_stop(stop, self._ttl / 3)
        finally:
            with contextlib.suppress(Exception):
                await self._store.release_lock(self.lease_name, self._worker)
