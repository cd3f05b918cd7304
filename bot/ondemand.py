"""Bounds on generating a day on demand (`/digest 2026-01-02` for a day not archived yet).

Any day since a repository's creation may be asked for. Generating one costs GitHub requests (on
the GraphQL path about the same for any age; on the REST path an old day lists everything updated
since then, up to the page cap) and model calls, so per chat at most one such request a minute
and ON_DEMAND_PER_CHAT_DAY a day (operators exempt), and at most ON_DEMAND_PER_HOUR across all
chats. Archived days are never counted. The counts live in this process: each instance bounds
what it generates. `RepoAges` knows when each repository was created, so a day before it is
answered without generating anything.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

from collectors.github import GitHubClient, GitHubError

log = logging.getLogger(__name__)

MINUTE = timedelta(minutes=1)
HOUR = timedelta(hours=1)
DAY = timedelta(days=1)
# GitHub opened in 2008: no repository has a day before this.
GITHUB_OPENED = date(2008, 1, 1)
_AGES_KEPT = 4096


@dataclass(frozen=True)
class Refusal:
    """Why a request is refused now, and when to try again."""

    retry_at: datetime
    scope: str  # "chat-minute" | "chat-day" | "global-hour"


@dataclass
class _Window:
    """Times of the requests within the last `span`, at most `limit` of them."""

    span: timedelta
    limit: int
    times: deque[datetime] = field(default_factory=deque)

    def free_at(self, now: datetime) -> datetime | None:
        """None when one more fits now, else the moment one will."""
        while self.times and self.times[0] <= now - self.span:
            self.times.popleft()
        if len(self.times) < self.limit:
            return None
        return self.times[0] + self.span


class OnDemandLimiter:
    """Counts on-demand generations per chat and overall; `None` limits mean unbounded."""

    def __init__(
        self,
        *,
        per_chat_minute: int | None = 1,
        per_chat_day: int | None = 10,
        per_hour: int | None = 30,
        clock: Callable[[], datetime],
    ) -> None:
        self._per_chat_minute = per_chat_minute
        self._per_chat_day = per_chat_day
        self._clock = clock
        self._global = _Window(HOUR, per_hour) if per_hour is not None else None
        self._chats: dict[str, tuple[_Window | None, _Window | None]] = {}

    @classmethod
    def unbounded(cls, clock: Callable[[], datetime]) -> OnDemandLimiter:
        """A limiter that never refuses (benches measure what it would have bounded)."""
        return cls(per_chat_minute=None, per_chat_day=None, per_hour=None, clock=clock)

    def _windows(self, chat: str) -> tuple[_Window | None, _Window | None]:
        if chat not in self._chats:
            if len(self._chats) > 10_000:  # forget chats idle for a day, not the busy ones
                now = self._clock()
                self._chats = {
                    key: value
                    for key, value in self._chats.items()
                    if any(w is not None and w.free_at(now) is not None for w in value)
                }
            minute = _Window(MINUTE, self._per_chat_minute) if self._per_chat_minute else None
            day = _Window(DAY, self._per_chat_day) if self._per_chat_day else None
            self._chats[chat] = (minute, day)
        return self._chats[chat]

    def acquire(self, chat: str, *, operator: bool = False) -> Refusal | None:
        """Count one generation for `chat` (`platform:chat_id`), or say why not and until when.

        Operators are exempt from every bound, but count towards the hourly total.
        """
        now = self._clock()
        checks: list[tuple[str, _Window | None]] = []
        if not operator:
            minute, day = self._windows(chat)
            checks = [("chat-minute", minute), ("chat-day", day), ("global-hour", self._global)]
        refusals = [
            Refusal(free, scope)
            for scope, window in checks
            if window is not None and (free := window.free_at(now)) is not None
        ]
        if refusals:
            return max(refusals, key=lambda refusal: refusal.retry_at)
        for window in (*(self._windows(chat) if not operator else ()), self._global):
            if window is not None:
                window.times.append(now)
        return None


class RepoAges:
    """When each repository was created: GET /repos/{owner}/{name} on the process's one GitHub
    client, asked once per repository (a creation date never changes).

    `created` answers None when GitHub cannot say now (unknown, unavailable, timed out): the
    caller then generates as before rather than refusing a day that may exist.
    """

    def __init__(self, github: GitHubClient, *, timeout: float = 15.0) -> None:
        self._github = github
        self._timeout = timeout
        self._known: dict[str, datetime] = {}
        self.requests = 0

    async def created(self, repo: str) -> datetime | None:
        """The instant `repo` (`owner/name`) was created, or None when not known."""
        key = repo.lower()
        if key in self._known:
            return self._known[key]
        self.requests += 1
        try:
            # A chat is waiting: the client's own waits (rate limit, backoff) are cut short.
            async with asyncio.timeout(self._timeout):
                data = await self._github.get(f"repos/{repo}", follow_redirects=True)
            stamp = str(data["created_at"])
            when = datetime.fromisoformat(stamp.replace("Z", "+00:00"))
        except (GitHubError, TimeoutError) as exc:
            log.warning("creation date of %s not known: %s", repo, exc or type(exc).__name__)
            return None
        except (KeyError, TypeError, ValueError):
            log.warning("creation date of %s not known: malformed answer", repo)
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        if len(self._known) >= _AGES_KEPT:
            self._known.clear()
        self._known[key] = when
        return when
