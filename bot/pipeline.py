"""A day's run: collect → summarize → archive, shared by the CLI, scheduler and chat commands."""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from bot import metrics
from bot.logs import redact
from bot.settings import Settings
from bot.status import record_github_limit
from bot.tracking import tracked_set
from collectors.activity import DayActivity
from collectors.cache import FileCache, KeyValueCache
from collectors.collect import collect_day
from collectors.github import ETAG_NAMESPACE, GitHubClient
from summarizer.compose import SECTION_NAMESPACE, SUMMARY_NAMESPACE, Composer
from summarizer.digest import Digest
from summarizer.llm import LLMClient
from summarizer.release_note import CACHE_NAMESPACE as RELEASE_NOTE_NAMESPACE
from summarizer.weekly import WEEKLY_NAMESPACE

if TYPE_CHECKING:
    from bot.store import Store

log = logging.getLogger(__name__)

# How long a cache entry no run has written since is kept, by namespace. ETags with their
# bodies (commit details, listings: megabytes a day) serve the next collections only; model
# answers save a model call when an older day, a subset or a week is written again. Not listed,
# so never pruned: "status" (the last GitHub rate limit seen, one row). The archive keeps its own
# copies of digests and activity and reads nothing from the cache.
CACHE_RETENTION: tuple[tuple[timedelta, tuple[str, ...]], ...] = (
    (timedelta(days=14), (ETAG_NAMESPACE,)),
    (
        timedelta(days=90),
        (SECTION_NAMESPACE, SUMMARY_NAMESPACE, WEEKLY_NAMESPACE, RELEASE_NOTE_NAMESPACE),
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


def make_github(settings: Settings, cache: KeyValueCache | None) -> GitHubClient:
    """A GitHub client configured from the settings."""
    token = settings.github_token.get_secret_value() if settings.github_token else None
    return GitHubClient(
        settings.github_api_url,
        token,
        cache,
        concurrency=settings.github_concurrency,
        timeout=settings.github_timeout,
    )


def make_llm(settings: Settings) -> LLMClient | None:
    """The model client, or None without OPENROUTER_API_KEY (structured digests only)."""
    if settings.openrouter_api_key is None:
        return None
    return LLMClient(
        api_key=settings.openrouter_api_key.get_secret_value(),
        base_url=settings.openrouter_base_url,
        models=settings.digest_models,
        concurrency=settings.llm_concurrency,
        requests_per_minute=settings.llm_requests_per_minute,
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
    )


async def collect_activity(settings: Settings, day: date, repos: Sequence[str]) -> DayActivity:
    """Collect `day` for `repos` from GitHub with the configured client and the file cache."""
    cache = file_cache(settings)
    try:
        async with make_github(settings, cache) as github:
            activity = await collect_day(github, repos, day, settings.digest_timezone)
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


class Pipeline:
    """Digests by day: from the archive, else collected and written once (shared by callers)."""

    def __init__(
        self,
        settings: Settings,
        store: Store,
        *,
        github: GitHubClient,
        composer: Composer,
        memory: int = 8,
        repos: Callable[[], Awaitable[Sequence[str]]] | None = None,
    ) -> None:
        self._settings = settings
        # The repositories a day covers: DIGEST_REPOS plus those chats added and still follow.
        self._repos = repos or (lambda: tracked_set(store, settings.digest_repos))
        self._store = store
        self._github = github
        self._composer = composer
        self._memory = memory
        self._days: OrderedDict[date, tuple[Digest, DayActivity]] = OrderedDict()
        self._inflight: dict[date, asyncio.Task[tuple[Digest, DayActivity]]] = {}
        self._subsets: dict[tuple[date, tuple[str, ...]], Digest] = {}

    async def repos(self) -> list[str]:
        """The repositories a newly generated day covers, in digest order."""
        return list(await self._repos())

    async def has_digest(self, day: date) -> bool:
        """True when the day's digest is archived."""
        return day in self._days or await self._store.load_digest(day) is not None

    async def latest_day(self) -> date | None:
        """The newest archived day."""
        return await self._store.latest_day()

    async def day(self, day: date) -> tuple[Digest, DayActivity]:
        """The full digest of `day` and its activity; generated once however many ask at once."""
        if day in self._days:
            self._days.move_to_end(day)
            return self._days[day]
        task = self._inflight.get(day)
        if task is None:
            task = asyncio.create_task(self._load_or_generate(day))
            self._inflight[day] = task
            task.add_done_callback(lambda _t: self._inflight.pop(day, None))
        result = await asyncio.shield(task)
        self._remember(day, result)
        return result

    async def digest_for(self, day: date, repos: Sequence[str] | None) -> Digest:
        """The digest of `day` for `repos` (None: all tracked), its summary written for that set."""
        digest, activity = await self.day(day)
        # A followed repository missing from the day (added after it was collected) keeps its
        # place as a short "no data" section rather than being dropped or widening the digest.
        wanted = tuple(dict.fromkeys(repos or ()))
        if repos is None or {r.lower() for r in wanted} == {
            s.repo.lower() for s in digest.sections
        }:
            return digest
        key = (day, wanted)
        if key not in self._subsets:
            if len(self._subsets) > 256:
                self._subsets.clear()
            self._subsets[key] = await self._composer.compose(activity, wanted)
        return self._subsets[key]

    async def regenerate(self, day: date) -> Digest:
        """Collect and write `day` again (cached sections make unchanged repositories free)."""
        self._days.pop(day, None)
        self._subsets = {k: v for k, v in self._subsets.items() if k[0] != day}
        digest, activity = await self._generate(day)
        self._remember(day, (digest, activity))
        return digest

    def _remember(self, day: date, value: tuple[Digest, DayActivity]) -> None:
        self._days[day] = value
        self._days.move_to_end(day)
        while len(self._days) > self._memory:
            self._days.popitem(last=False)

    async def _load_or_generate(self, day: date) -> tuple[Digest, DayActivity]:
        digest = await self._store.load_digest(day)
        activity = await self._store.load_activity(day)
        if digest is not None and activity is not None:
            return digest, activity
        return await self._generate(day)

    async def _generate(self, day: date) -> tuple[Digest, DayActivity]:
        log.info("generating the digest of %s", day)
        started = datetime.now(UTC)
        repos = await self.repos()
        try:
            activity = await collect_day(self._github, repos, day, self._settings.digest_timezone)
        finally:
            # For `/status`: what the GitHub rate limit looked like after this collection.
            await record_github_limit(
                self._store, self._github.rate_limit_remaining, self._github.rate_limit_reset
            )
        digest = await self._composer.compose(activity, repos)
        await self._store.save_digest(digest, activity)
        # Run records are shown to operators (`/status`): no token or account id may reach them.
        errors = [redact(error) for error in run_errors(activity, digest)]
        await self._store.record_run(day, errors, started_at=started)
        metrics.generated((datetime.now(UTC) - started).total_seconds())
        for error in errors:
            log.warning("%s: %s", day, error)
        return digest, activity
