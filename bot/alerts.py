"""Release alerts: poll the tracked repositories' releases and post new ones to chats that opted in.

Every RELEASE_POLL_MINUTES the poller asks each repository some opted-in chat wants for its newest
releases with a conditional request (the GitHub client's ETag cache): an unchanged repository is a
304 and costs no rate limit. A release counts as new when it was published after the poller first
saw the repository (recorded in the database, so a restart neither forgets nor re-alerts the back
catalogue) and after the chat opted in. Each (platform, chat, repo, tag) is one alert row: created
once, claimed with a lease, sent, marked — so every chat gets each release once, across restarts
and instances, as with daily deliveries.

Chats get stable releases unless they asked for all (`/alerts on all`): a release GitHub marks
as a pre-release, or whose tag says nightly, rc, dev, alpha, beta or preview, is skipped for the
others (flashinfer publishes a `nightly-…` release every day).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from pydantic import ValidationError

from bot.delivery import one_line, retry_delay, send_parts
from bot.platforms.base import Sender
from bot.scheduler import worker_id
from bot.settings import Settings
from bot.store import AlertChat, AlertClaim, Store, utcnow
from bot.tracking import shared_set, tracked_set
from collectors.activity import Release
from collectors.github import GitHubClient, GitHubError
from collectors.wire import GhRelease
from summarizer.llm import LLMClient
from summarizer.release_note import alert_markdown, summarize_release

if TYPE_CHECKING:
    from bot.clients import Clients

log = logging.getLogger(__name__)

# Newest releases read per poll: more than any repository publishes between two polls.
PER_PAGE = 10
# After a long downtime, releases older than this are not alerted any more (no longer news).
MAX_AGE = timedelta(days=3)

RepoSource = Callable[[], Awaitable[Sequence[str]]]

# Pre-release words in a tag, as a word of their own (`nightly-2026-11-29`, `v1.0.0-rc.1`,
# `v0.6.4.dev3`, `v0.5.0rc1`), never inside another word (`v1-devices`, `arch`).
_UNSTABLE_TAG = re.compile(
    r"(?:^|[^a-z])(?:nightly|alpha|beta|dev|rc|pre|preview)(?=$|[^a-z])"
    r"|\d(?:a|b)\d+$",  # PEP 440 short forms: v2.0.0a1, v2.0.0b2
    re.IGNORECASE,
)


@dataclass
class PollResult:
    """What one poll did."""

    repos: int = 0
    new_releases: int = 0
    created: int = 0
    sent: int = 0
    failed: int = 0
    retrying: int = 0
    deactivated: int = 0
    errors: list[str] = field(default_factory=list)


def to_release(raw: object) -> Release | None:
    """A published release from GitHub's JSON; None for drafts and malformed items."""
    try:
        wire = GhRelease.model_validate(raw)
    except ValidationError:
        return None
    if wire.draft or wire.published_at is None:
        return None
    return Release(
        tag_name=wire.tag_name,
        name=wire.name or wire.tag_name,
        published_at=wire.published_at,
        url=wire.html_url,
        author=wire.author.login if wire.author else None,
        prerelease=wire.prerelease,
        body=wire.body or "",
    )


def is_prerelease(release: Release) -> bool:
    """True for a GitHub pre-release or a nightly/rc/dev/alpha/beta/preview tag."""
    return release.prerelease or _UNSTABLE_TAG.search(release.tag_name) is not None


class ReleasePoller:
    """Polls releases and sends alerts to chats through the delivery engine."""

    def __init__(
        self,
        store: Store,
        github: GitHubClient,
        senders: Mapping[str, Sender],
        *,
        repos: RepoSource,
        shared: RepoSource | None = None,
        llm: LLMClient | None = None,
        interval: float = 300.0,
        clock: Callable[[], datetime] = utcnow,
        worker: str | None = None,
        lease_seconds: float = 120.0,
        max_attempts: int = 5,
        batch_size: int = 100,
    ) -> None:
        self._store = store
        self._github = github
        self._senders = dict(senders)
        self._repos = repos
        # The shared set: a repository outside it (a chat's addition) alerts only the chats that
        # named or added it. None: every polled repository is shared.
        self._shared = shared
        self._llm = llm
        self.interval = interval
        self._clock = clock
        self._worker = worker or worker_id("alerts:")
        self._lease = lease_seconds
        self._max_attempts = max(1, max_attempts)
        self._batch = max(1, batch_size)
        # Releases whose alert rows exist (repo key, tag) → published_at; pruned after MAX_AGE.
        self._settled: dict[tuple[str, str], datetime] = {}
        # First sightings never change once recorded: read each from the database once.
        self._first_seen: dict[str, datetime] = {}

    async def run(self, stop: asyncio.Event) -> None:
        """Poll every `interval` seconds until `stop`; a failed poll is logged and retried."""
        log.info("release alerts: polling every %.0f s", self.interval)
        while not stop.is_set():
            try:
                result = await self.poll_once()
                if result.new_releases or result.sent or result.errors:
                    log.info(
                        "release alerts: %d new releases, %d alerts sent, %d failed, %d errors",
                        result.new_releases,
                        result.sent,
                        result.failed,
                        len(result.errors),
                    )
            except Exception:
                log.exception("release alerts: the poll failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self.interval)

    async def poll_once(self) -> PollResult:
        """Check the wanted repositories once, create the new alerts, send every due alert."""
        now = self._clock()
        result = PollResult()
        chats = [c for c in await self._store.alert_chats() if c.platform in self._senders]
        if chats:
            tracked = list(await self._repos())
            wanted = [repo for repo in tracked if any(chat.wants(repo) for chat in chats)]
            result.repos = len(wanted)
            found = await asyncio.gather(
                *(self._new_releases(repo, now) for repo in wanted), return_exceptions=True
            )
            for repo, outcome in zip(wanted, found, strict=True):
                if isinstance(outcome, BaseException):
                    if not isinstance(outcome, Exception):
                        raise outcome
                    result.errors.append(f"{repo}: {one_line(outcome)}")
                    log.warning("release alerts: %s could not be polled: %s", repo, outcome)
                    continue
                for release in outcome:
                    await self._create_alerts(repo, release, chats, now, result)
        self._prune(now)
        await self._send_due(result)
        return result

    async def _new_releases(self, repo: str, now: datetime) -> list[Release]:
        first_seen = self._first_seen.get(repo.lower())
        if first_seen is None:
            first_seen = await self._store.release_first_seen(repo, now=now)
            self._first_seen[repo.lower()] = first_seen
        data = await self._github.get(f"repos/{repo}/releases", {"per_page": PER_PAGE})
        if not isinstance(data, list):
            raise GitHubError(f"GitHub sent a {type(data).__name__}, not a list, for {repo}")
        fresh = []
        for raw in data:
            release = to_release(raw)
            if (
                release is None
                or release.published_at <= first_seen
                or now - release.published_at > MAX_AGE
                or (repo.lower(), release.tag_name) in self._settled
            ):
                continue
            fresh.append(release)
        return sorted(fresh, key=lambda r: r.published_at)

    async def _reaches(self, chat: AlertChat, repo: str) -> bool:
        """True when `repo` is shared, or `chat` named or added it itself."""
        if self._shared is None or chat.repos is not None:
            return True  # a chat naming repositories wants exactly those (`wants`)
        if repo.lower() in {r.lower() for r in await self._shared()}:
            return True
        follows = await self._store.follows_of(chat.platform, chat.chat_id, kind="alerts")
        return repo.lower() in follows

    async def _create_alerts(
        self,
        repo: str,
        release: Release,
        chats: Sequence[AlertChat],
        now: datetime,
        result: PollResult,
    ) -> None:
        result.new_releases += 1
        stable = not is_prerelease(release)
        targets = [
            c.key
            for c in chats
            if c.wants(repo)
            and (stable or c.prereleases)
            and c.since < release.published_at
            and await self._reaches(c, repo)
        ]
        if targets:
            note = await summarize_release(repo, release, self._llm, self._store)
            created = await self._store.ensure_alerts(
                repo,
                release.tag_name,
                targets,
                alert_markdown(repo, release, note),
                published_at=release.published_at,
                now=now,
            )
            result.created += created
            if created:
                log.info("release alerts: %s %s for %d chats", repo, release.tag_name, created)
        self._settled[(repo.lower(), release.tag_name)] = release.published_at

    def _prune(self, now: datetime) -> None:
        old = [key for key, when in self._settled.items() if now - when > MAX_AGE]
        for key in old:
            del self._settled[key]

    async def _send_due(self, result: PollResult) -> None:
        while True:
            claims = await self._store.claim_alerts(
                platforms=list(self._senders),
                worker=self._worker,
                limit=self._batch,
                lease_seconds=self._lease,
                now=self._clock(),
            )
            if not claims:
                return
            await asyncio.gather(*(self._send(claim, result) for claim in claims))

    async def _send(self, claim: AlertClaim, result: PollResult) -> None:
        """One alert through the delivery engine: paced at the gate, resumed part by part."""
        sender = self._senders[claim.platform]
        outcome = await send_parts(
            self._store, sender, claim, claim.message, max_wait=60.0, to=claim.address
        )
        assert isinstance(outcome.claim, AlertClaim)
        claim = outcome.claim
        if outcome.moved_to is not None:
            await self._store.move_chat(claim.platform, claim.chat_id, outcome.moved_to)
        if outcome.status == "sent":
            if await self._store.mark_alert_sent(claim, outcome.ids):
                result.sent += 1
        elif outcome.status == "gone":
            chat_id = outcome.moved_to or claim.chat_id
            await self._store.disable_alerts(claim.platform, chat_id, None)
            await self._store.deactivate(claim.platform, chat_id, outcome.error)
            await self._store.mark_alert_failed(claim, f"chat gone: {outcome.error}", final=True)
            result.deactivated += 1
            log.info("release alerts: chat %s:%s is gone: %s", *_key(claim), outcome.error)
        elif outcome.status == "later":
            retry_at = self._clock() + timedelta(seconds=max(outcome.retry_after, 1.0))
            await self._store.mark_alert_failed(
                claim, outcome.error, final=False, retry_at=retry_at
            )
            result.retrying += 1
        elif outcome.status == "error":
            final = claim.attempts >= self._max_attempts
            retry_at = self._clock() + timedelta(seconds=retry_delay(claim.attempts))
            await self._store.mark_alert_failed(
                claim, outcome.error, final=final, retry_at=retry_at
            )
            if final:
                result.failed += 1
                result.errors.append(f"{claim.platform}:{claim.chat_id}: {outcome.error}")
            else:
                result.retrying += 1
            log.warning(
                "release alert %s %s to %s:%s failed: %s",
                claim.repo,
                claim.tag,
                *_key(claim),
                outcome.error,
            )


def _key(claim: AlertClaim) -> tuple[str, str]:
    return claim.platform, claim.chat_id


async def run_release_alerts(
    settings: Settings,
    store: Store,
    senders: Mapping[str, Sender],
    stop: asyncio.Event,
    clients: Clients,
    *,
    repos: RepoSource | None = None,
    clock: Callable[[], datetime] = utcnow,
    worker: str | None = None,
) -> None:
    """The poller of `aiinfra-digest run`, on the process's GitHub and model clients."""
    if not senders:
        await stop.wait()  # returning early would end `run` (a finished task stops the rest)
        return
    poller = ReleasePoller(
        store,
        clients.github,
        senders,
        repos=repos or (lambda: tracked_set(store, settings.digest_repos)),
        shared=lambda: shared_set(store, settings.digest_repos),
        llm=clients.llm,
        interval=settings.release_poll_minutes * 60.0,
        clock=clock,
        worker=f"alerts:{worker}" if worker else None,
    )
    await poller.run(stop)
