"""A day's run: collect → summarize → archive, shared by the CLI, scheduler and chat commands."""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import sqlite3
import uuid
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Protocol
from zoneinfo import ZoneInfo

from bot import metrics
from bot.logs import redact
from bot.settings import Settings
from bot.status import record_github_limit
from bot.tracking import added_set, shared_set
from collectors.activity import DayActivity, RepoActivity
from collectors.cache import FileCache, KeyValueCache
from collectors.collect import collect_day
from collectors.github import ETAG_NAMESPACE, GitHubClient
from collectors.window import day_window
from summarizer.compose import NOT_COLLECTED, SECTION_NAMESPACE, SUMMARY_NAMESPACE, Composer
from summarizer.digest import Digest
from summarizer.llm import LLMClient
from summarizer.release_note import CACHE_NAMESPACE as RELEASE_NOTE_NAMESPACE
from summarizer.weekly import WEEKLY_NAMESPACE, render_weekly_markdown

if TYPE_CHECKING:
    from bot.store import Store

log = logging.getLogger(__name__)

# The activity of repositories chats added (never in the shared archive), per (day, repository).
ADDED_NAMESPACE = "added_activity"
# GitHub's search and lists lag a little behind midnight: a day is collected this long after it.
SETTLE = timedelta(minutes=5)
# How long the day's generation lock lasts unless renewed (a dead holder's simply expires).
LOCK_SECONDS = 600.0

# How long a cache entry no run has written since is kept, by namespace. ETags with their
# bodies (commit details, listings: megabytes a day) serve the next collections only; model
# answers save a model call when an older day, a subset or a week is written again. Not listed,
# so never pruned: "status" (the last GitHub rate limit seen, one row). The archive keeps its own
# copies of digests and activity and reads nothing from the cache.
CACHE_RETENTION: tuple[tuple[timedelta, tuple[str, ...]], ...] = (
    (timedelta(days=14), (ETAG_NAMESPACE,)),
    (
        timedelta(days=90),
        (
            SECTION_NAMESPACE,
            SUMMARY_NAMESPACE,
            WEEKLY_NAMESPACE,
            RELEASE_NOTE_NAMESPACE,
            ADDED_NAMESPACE,
        ),
    ),
)


class CachePruner(Protocol):
    """`Store.prune_cache` or `FileCache.prune`: delete entries older than `older_than`."""

    def __call__(
        self,
        older_than: timedelta,
        *,
        namespaces: Sequence[str] | None = None,
        now: datetime | None = None,
    ) -> Awaitable[int]:
        """How many entries were deleted."""
        ...


async def prune_cache(prune: CachePruner) -> int:
    """Apply CACHE_RETENTION with `prune`; returns how many entries went.

    Ages count on the real clock, the one `put` stamps entries with.
    """
    removed = 0
    for older_than, namespaces in CACHE_RETENTION:
        removed += await prune(older_than, namespaces=namespaces)
    return removed


def file_cache(settings: Settings) -> FileCache:
    """The on-disk cache (ETags, sections) used when no database store is at hand."""
    return FileCache(Path(settings.cache_dir) / "cache.sqlite3")


def make_github(
    settings: Settings, cache: KeyValueCache | None, *, max_rate_limit_wait: float = 900.0
) -> GitHubClient:
    """A GitHub client configured from the settings (waits up to `max_rate_limit_wait` s)."""
    token = settings.github_token.get_secret_value() if settings.github_token else None
    return GitHubClient(
        settings.github_api_url,
        token,
        cache,
        concurrency=settings.github_concurrency,
        timeout=settings.github_timeout,
        max_rate_limit_wait=max_rate_limit_wait,
        graphql_url=settings.github_graphql_url,
        collector=settings.github_collector,
    )


def make_llm(settings: Settings, *, minute: float = 60.0) -> LLMClient | None:
    """The model client, or None without OPENROUTER_API_KEY (structured digests only).

    `minute` is the limiter's window in seconds (shorter only in tests).
    """
    if settings.openrouter_api_key is None:
        return None
    return LLMClient(
        api_key=settings.openrouter_api_key.get_secret_value(),
        base_url=settings.openrouter_base_url,
        models=settings.digest_models,
        concurrency=settings.llm_concurrency,
        requests_per_minute=settings.llm_requests_per_minute,
        minute=minute,
        timeout=settings.llm_timeout,
    )


def make_composer(
    settings: Settings, llm: LLMClient | None, cache: KeyValueCache | None
) -> Composer:
    """A composer configured from the settings."""
    return Composer(
        llm=llm,
        cache=cache,
        token_budget=settings.llm_input_token_budget,
        concurrency=settings.llm_concurrency,
        exclude_authors=settings.digest_exclude_authors,
    )


async def collect_activity(
    settings: Settings,
    day: date,
    repos: Sequence[str],
    *,
    on_repo: Callable[[RepoActivity], None] | None = None,
) -> DayActivity:
    """Collect `day` for `repos` from GitHub with the configured client and the file cache."""
    cache = file_cache(settings)
    try:
        async with make_github(settings, cache) as github:
            activity = await collect_day(
                github, repos, day, settings.digest_timezone, on_repo=on_repo
            )
        try:
            # After each run, so the file stops growing; an indexed DELETE, cheap when idle.
            await prune_cache(cache.prune)
        except sqlite3.Error as exc:  # a cache that cannot shrink must not cost the run
            log.warning("could not prune the cache %s: %s", cache.path, exc)
        return activity
    finally:
        cache.close()


def run_errors(activity: DayActivity, digest: Digest) -> list[str]:
    """Operator-facing errors of a run: failed collections and sections written without a model."""
    errors = [f"collect {repo.repo}: {repo.error}" for repo in activity.repos if repo.error]
    errors += [
        f"section {section.repo}: {section.reason}"
        for section in digest.sections
        if section.reason and section.written_by != "error"
    ]
    if digest.summary_reason:
        errors.append(f"summary: {digest.summary_reason}")
    return errors


async def compose_week(
    store: Store,
    end: date,
    repos: Sequence[str],
    llm: LLMClient | None,
    cache: KeyValueCache | None,
) -> str | None:
    """The readers' roll-up of the week ending `end` for `repos`; None when none is archived."""
    # Imported here: the archive module draws charts (matplotlib), needed for weeks only.
    from bot.archive import week_for

    weekly = await week_for(store, end, repos, llm, cache)
    return None if weekly is None else render_weekly_markdown(weekly)


class NotReady(Exception):
    """A day that cannot be served yet: it ended too recently, or another instance is writing it."""

    def __init__(self, day: date, ready_at: datetime | None, timezone: str) -> None:
        self.day = day
        self.ready_at = ready_at  # None: another instance holds the day's generation lock
        self.timezone = timezone
        super().__init__(
            f"the digest of {day} is not ready yet"
            + (f", try after {self.after}" if self.after else "")
        )

    @property
    def after(self) -> str | None:
        """`HH:MM` in DIGEST_TIMEZONE from which the day can be asked for again (None: soon)."""
        if self.ready_at is None:
            return None
        local = self.ready_at.astimezone(ZoneInfo(self.timezone))
        # Rounded up: "after 00:05" must not be answered "not ready" at 00:05:30.
        if local.second or local.microsecond:
            local += timedelta(minutes=1)
        return local.strftime("%H:%M")


class _Busy(Exception):
    """Another instance holds the day's generation lock."""


def _collected(activity: DayActivity) -> set[str]:
    """The repositories (lower case) whose activity of the day was collected without error."""
    return {repo.repo.lower() for repo in activity.repos if repo.error is None}


class Pipeline:
    """Digests by day: from the archive, else collected and written once (shared by callers).

    `ensure_day` is the one door to a day for the scheduler, `post` and chat commands: before
    the settle window it answers NotReady; across instances the day's generation lock makes one
    of them write it; in this process concurrent askers share one task; an archived day is
    never replaced by one with fewer repositories collected.
    """

    def __init__(
        self,
        settings: Settings,
        store: Store,
        *,
        github: GitHubClient,
        composer: Composer,
        memory: int = 8,
        repos: Callable[[], Awaitable[Sequence[str]]] | None = None,
        added: Callable[[], Awaitable[Sequence[str]]] | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        settle: timedelta = SETTLE,
        worker: str | None = None,
        lock_seconds: float = LOCK_SECONDS,
        poll_seconds: float = 1.0,
    ) -> None:
        """`clock` is the default "now" of the settle window; `worker` names the lock holder."""
        self._settings = settings
        # The repositories a day's shared digest covers: DIGEST_REPOS plus pinned ones.
        self._repos = repos or (lambda: shared_set(store, settings.digest_repos))
        # Collected with the day but kept apart: repositories chats added, for those chats only.
        self._added = added or (lambda: added_set(store, settings.digest_repos))
        self._clock = clock
        self._settle = settle
        self._worker = (
            worker or f"pipeline:{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        )
        self._lock_seconds = lock_seconds
        self._poll_seconds = poll_seconds
        self._store = store
        self._github = github
        self._composer = composer
        self._memory = memory
        self._days: OrderedDict[date, tuple[Digest, DayActivity]] = OrderedDict()
        self._inflight: dict[date, asyncio.Task[tuple[Digest, DayActivity]]] = {}
        self._subsets: dict[tuple[date, tuple[str, ...]], asyncio.Task[Digest]] = {}
        self._added_days: OrderedDict[date, dict[str, RepoActivity]] = OrderedDict()
        # (day, added repositories) → (the digest extended, the extended digest)
        self._extended: dict[tuple[date, tuple[str, ...]], tuple[Digest, Digest]] = {}
        self._weeks: dict[tuple[date, tuple[str, ...]], asyncio.Task[str | None]] = {}

    async def repos(self) -> list[str]:
        """The repositories a newly generated day covers, in digest order."""
        return list(await self._repos())

    async def collected_repos(self) -> list[str]:
        """What a newly generated day collects: the shared set, then chat-added repositories."""
        shared = await self.repos()
        keys = {repo.lower() for repo in shared}
        return [*shared, *(repo for repo in await self._added() if repo.lower() not in keys)]

    async def has_digest(self, day: date) -> bool:
        """True when the day's digest is archived."""
        return day in self._days or await self._store.load_digest(day) is not None

    async def latest_day(self) -> date | None:
        """The newest archived day."""
        return await self._store.latest_day()

    def ready_at(self, day: date) -> datetime:
        """When `day` may be collected: its end in DIGEST_TIMEZONE plus the settle window."""
        return day_window(day, self._settings.digest_timezone).end + self._settle

    async def ensure_day(
        self,
        day: date,
        repos: Sequence[str] | None = None,
        *,
        now: datetime | None = None,
        wait: bool = True,
        added: Sequence[str] = (),
    ) -> Digest:
        """The digest of `day` for `repos` (None: the shared set), archived or generated through
        the door, its summary written for that set.

        Raises NotReady before the settle window, or, with `wait=False`, while another instance
        holds the day's generation lock (with `wait`, the archive is polled until the holder
        finishes or its lock expires). `added` are repositories the asking chat added: their
        sections follow the shared ones and never enter the summary; a name in `repos` outside
        the shared set counts as added too.
        """
        await self._door(day, now=now, wait=wait)
        shared = {repo.lower() for repo in await self.repos()}
        asked = [r for r in (*(repos or ()), *added) if r.lower() not in shared]
        extra: list[str] = []
        if asked:
            # In the tracked order and spelling; one no longer collected keeps a no-data section.
            spelled = {repo.lower(): repo for repo in await self._added()}
            extra = list({r.lower(): spelled.get(r.lower(), r) for r in asked}.values())
        if repos is not None:  # a chat naming only added ones gets no shared section
            repos = [r for r in repos if r.lower() in shared]
        digest = await self._subset(day, repos)
        if not extra:
            return digest
        return await self._with_added(day, digest, extra)

    async def day(self, day: date) -> tuple[Digest, DayActivity]:
        """The full digest of `day` and its activity, through the door (waiting for a holder)."""
        return await self._door(day, now=None, wait=True)

    async def digest_for(
        self, day: date, repos: Sequence[str] | None, *, added: Sequence[str] = ()
    ) -> Digest:
        """`ensure_day`, waiting for another instance's generation (the delivery engine's call)."""
        return await self.ensure_day(day, repos, added=added)

    async def _with_added(self, day: date, digest: Digest, repos: Sequence[str]) -> Digest:
        """`digest` with the sections of chat-added `repos` after the shared ones."""
        key = (day, tuple(repos))
        cached = self._extended.get(key)
        if cached is not None and cached[0] is digest:
            return cached[1]
        activities = await self._added_activity(day)
        sections = [
            await self._composer.section(
                activities.get(repo.lower()) or RepoActivity.failed(repo, NOT_COLLECTED), day
            )
            for repo in repos
        ]
        extended = self._composer.with_sections(digest, sections)
        if len(self._extended) > 256:
            self._extended.clear()
        self._extended[key] = (digest, extended)
        return extended

    async def _added_activity(self, day: date) -> dict[str, RepoActivity]:
        """The day's activity of chat-added repositories, from memory or the store's cache."""
        if day not in self._added_days:
            await self.day(day)  # a day generated now remembers its added activity
        if day not in self._added_days:
            found: dict[str, RepoActivity] = {}
            for repo in await self._added():
                raw = await self._store.get(ADDED_NAMESPACE, f"{day.isoformat()}|{repo.lower()}")
                if raw is not None:
                    found[repo.lower()] = RepoActivity.model_validate_json(raw)
            self._remember_added(day, found)
        return self._added_days[day]

    def _remember_added(self, day: date, found: dict[str, RepoActivity]) -> None:
        self._added_days[day] = found
        self._added_days.move_to_end(day)
        while len(self._added_days) > self._memory:
            self._added_days.popitem(last=False)

    async def _door(
        self, day: date, *, now: datetime | None, wait: bool
    ) -> tuple[Digest, DayActivity]:
        deadline: float | None = None
        while True:
            if day in self._days:
                self._days.move_to_end(day)
                return self._days[day]
            task = self._inflight.get(day)
            if task is None:
                task = asyncio.create_task(self._open(day, now or self._clock()))
                self._inflight[day] = task
                task.add_done_callback(lambda _t: self._inflight.pop(day, None))
            try:
                result = await asyncio.shield(task)
            except _Busy:
                loop = asyncio.get_running_loop()
                # A live holder renews its lock; a dead one's expires within lock_seconds.
                deadline = deadline or loop.time() + self._lock_seconds + self._poll_seconds
                if not wait or loop.time() > deadline:
                    raise NotReady(day, None, self._settings.digest_timezone) from None
                await asyncio.sleep(self._poll_seconds)
                continue
            self._remember(day, result)
            return result

    async def _open(self, day: date, now: datetime) -> tuple[Digest, DayActivity]:
        """The archived day, else (after the settle window, holding the lock) a generated one."""
        archived = await self._archived(day)
        if archived is not None:
            return archived
        if now < self.ready_at(day):
            raise NotReady(day, self.ready_at(day), self._settings.digest_timezone)
        lock = f"generate:{day.isoformat()}"
        if not await self._store.try_lock(lock, self._worker, self._lock_seconds):
            raise _Busy(lock)
        renewal = asyncio.create_task(self._renew(lock))
        try:
            # Another instance may have archived it between the read above and the lock.
            archived = await self._archived(day)
            return archived if archived is not None else await self._generate(day)
        finally:
            renewal.cancel()
            await self._store.release_lock(lock, self._worker)

    async def _renew(self, lock: str) -> None:
        """Keep the generation lock while generating (a dead holder's lock simply expires)."""
        while True:
            await asyncio.sleep(self._lock_seconds / 3)
            try:
                await self._store.try_lock(lock, self._worker, self._lock_seconds)
            except Exception:
                log.warning("could not renew the lock %s", lock, exc_info=True)

    async def _subset(self, day: date, repos: Sequence[str] | None) -> Digest:
        """The day's digest cut to `repos`; one composition per (day, normalised set)."""
        digest, activity = self._days.get(day) or await self._door(day, now=None, wait=True)
        if repos is None:
            return digest
        # Normalised: the day's (tracked) order, then repositories the day lacks; lower case.
        order = {s.repo.lower(): n for n, s in enumerate(digest.sections)}
        unique = {r.lower(): r for r in reversed(list(repos))}
        given = [r.lower() for r in dict.fromkeys(r.lower() for r in repos)]
        keys = sorted(given, key=lambda r: (order.get(r, len(order)), given.index(r)))
        if set(keys) == set(order):
            return digest
        key = (day, tuple(keys))
        task = self._subsets.get(key)
        if task is None:
            if len(self._subsets) > 256:
                self._subsets = {k: t for k, t in self._subsets.items() if not t.done()}
            # A followed repository missing from the day (added after it was collected) keeps
            # its place as a short "no data" section rather than being dropped.
            wanted = tuple(unique[r] for r in keys)
            task = asyncio.ensure_future(self._composer.compose(activity, wanted))
            self._subsets[key] = task
            task.add_done_callback(
                lambda t: self._subsets.pop(key, None) if t.cancelled() or t.exception() else None
            )
        return await asyncio.shield(task)

    async def _archived(self, day: date) -> tuple[Digest, DayActivity] | None:
        digest = await self._store.load_digest(day)
        activity = await self._store.load_activity(day) if digest is not None else None
        if digest is None or activity is None:
            return None
        return digest, activity

    async def week_text(
        self,
        end: date,
        repos: Sequence[str],
        *,
        llm: LLMClient | None,
        cache: KeyValueCache | None,
    ) -> str | None:
        """The rendered roll-up of the seven days ending `end` for `repos` (None: none archived).

        The one place a week's text is made, for `/weekly` and the Monday post alike; concurrent
        askers of the same (end, repos) share one call. `llm` writes it (structured without),
        `cache` keeps the model's answer.
        """
        key = (end, tuple(repos))
        task = self._weeks.get(key)
        if task is None:
            task = asyncio.ensure_future(compose_week(self._store, end, key[1], llm, cache))
            self._weeks[key] = task
            task.add_done_callback(lambda _t: self._weeks.pop(key, None))
        return await asyncio.shield(task)

    async def regenerate(self, day: date) -> Digest:
        """Collect and write `day` again (cached sections make unchanged repositories free).

        The archive keeps the old version when the new one collected fewer repositories.
        """
        self._days.pop(day, None)
        self._subsets = {k: v for k, v in self._subsets.items() if k[0] != day}
        self._extended = {k: v for k, v in self._extended.items() if k[0] != day}
        self._added_days.pop(day, None)
        digest, activity = await self._generate(day)
        self._remember(day, (digest, activity))
        return digest

    def _remember(self, day: date, value: tuple[Digest, DayActivity]) -> None:
        self._days[day] = value
        self._days.move_to_end(day)
        while len(self._days) > self._memory:
            self._days.popitem(last=False)

    async def _generate(self, day: date) -> tuple[Digest, DayActivity]:
        log.info("generating the digest of %s", day)
        started = datetime.now(UTC)
        repos = await self.repos()
        shared = {repo.lower() for repo in repos}
        try:
            collected = await collect_day(
                self._github, await self.collected_repos(), day, self._settings.digest_timezone
            )
        finally:
            # For `/status`: what the GitHub rate limit looked like after this collection.
            await record_github_limit(
                self._store, self._github.rate_limit_remaining, self._github.rate_limit_reset
            )
        # Chat-added repositories stay out of the archive (site, weekly, other chats' posts).
        activity = collected.model_copy(
            update={"repos": [r for r in collected.repos if r.repo.lower() in shared]}
        )
        kept: dict[str, RepoActivity] = {}
        for repo_activity in collected.repos:
            if repo_activity.repo.lower() not in shared:
                kept[repo_activity.repo.lower()] = repo_activity
                if repo_activity.error is None:
                    key = f"{day.isoformat()}|{repo_activity.repo.lower()}"
                    await self._store.put(ADDED_NAMESPACE, key, repo_activity.model_dump_json())
        self._remember_added(day, kept)
        digest = await self._composer.compose(activity, repos)
        incomplete = [repo.repo for repo in activity.repos if not repo.complete]
        archived = await self._archived(day)
        if incomplete:
            # A listing stopped at its cap: the day is served now but never archived as
            # complete, so the next request (or a backfill) collects it again.
            log.warning("%s: not archived, incomplete for %s", day, ", ".join(incomplete))
        elif archived is not None and not _collected(archived[1]) <= _collected(activity):
            # A retry that reached GitHub less well must not cost readers what was archived.
            log.warning("%s: keeping the archived digest; the new one collected less", day)
            return archived
        else:
            await self._store.save_digest(digest, activity)
        # Run records are shown to operators (`/status`): no token or account id may reach them.
        errors = [redact(error) for error in run_errors(activity, digest)]
        errors += [f"collect {repo}: incomplete, not archived" for repo in incomplete]
        await self._store.record_run(day, errors, started_at=started)
        metrics.generated((datetime.now(UTC) - started).total_seconds())
        for error in errors:
            log.warning("%s: %s", day, error)
        return digest, activity
