"""What happened today, for operators: `/status` (admins only) and `aiinfra-digest status`.

`collect_status` reads the store only (archive, run record, deliveries, chats, and the GitHub
rate limit the pipeline left in the cache), so any instance, or the command line beside them,
answers the same; `render_status` writes it as short Markdown that reads well in a terminal too.
Every reason shown is redacted and cut to one line.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Protocol, runtime_checkable
from zoneinfo import ZoneInfo

from bot.logs import redact
from bot.settings import Settings
from bot.store.types import RunRecord
from collectors.cache import KeyValueCache
from collectors.window import yesterday
from summarizer.digest import Digest

log = logging.getLogger(__name__)

# Where the pipeline leaves the GitHub rate limit it saw last (the store's key-value cache).
STATUS_NAMESPACE = "status"
GITHUB_KEY = "github"
REASON_CHARS = 240


@runtime_checkable
class StatusStore(Protocol):
    """The read-only part of `bot.store.Store` that a status needs."""

    async def latest_day(self) -> date | None: ...
    async def load_digest(self, day: date) -> Digest | None: ...
    async def last_run(self, day: date | None = None) -> RunRecord | None: ...
    async def delivery_counts(self, day: date) -> dict[str, int]: ...
    async def chat_counts(self) -> dict[str, int]: ...
    async def skipped_counts(self, limit: int = 7) -> dict[date, int]: ...
    async def get(self, namespace: str, key: str) -> str | None: ...


@dataclass(frozen=True)
class RepoStatus:
    """How one repository's section was written (`model`, `structured`, `empty`, `error`)."""

    repo: str
    written_by: str
    model: str | None = None
    reason: str | None = None


@dataclass(frozen=True)
class GitHubLimit:
    """The GitHub rate limit as last seen by a collection: requests left, reset, when seen."""

    remaining: int | None
    reset_at: datetime | None
    seen_at: datetime | None


@dataclass(frozen=True)
class Status:
    """A snapshot for operators; `day` is the newest archived day (None: nothing generated)."""

    checked_at: datetime
    timezone: str
    expected_day: date
    day: date | None
    generated_at: datetime | None = None
    repos: tuple[RepoStatus, ...] = ()
    summary_by: str | None = None
    summary_reason: str | None = None
    run_errors: tuple[str, ...] = ()
    github: GitHubLimit | None = None
    deliveries: Mapping[str, int] = field(default_factory=dict)
    chats: Mapping[str, int] = field(default_factory=dict)
    # Deliveries never sent because the bot came back too late (per day, newest first).
    skipped: Mapping[date, int] = field(default_factory=dict)


def one_line(text: str | None, limit: int = REASON_CHARS) -> str | None:
    """A reason as one redacted line of at most `limit` characters (None stays None)."""
    if text is None:
        return None
    flat = redact(" ".join(str(text).split()))
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


async def record_github_limit(
    cache: KeyValueCache,
    remaining: int | None,
    reset: float | None,
    *,
    now: datetime | None = None,
) -> None:
    """Keep the rate limit a GitHub client saw last, for `/status` (never raises)."""
    if remaining is None and reset is None:
        return  # no response carried the headers (nothing was fetched): keep the last one
    value = {
        "remaining": remaining,
        "reset": reset,
        "seen_at": (now or datetime.now(UTC)).isoformat(),
    }
    try:
        await cache.put(STATUS_NAMESPACE, GITHUB_KEY, json.dumps(value))
    except Exception:  # status is a convenience; a run must not fail over it
        log.warning("could not record the GitHub rate limit", exc_info=True)


async def load_github_limit(cache: StatusStore) -> GitHubLimit | None:
    """The rate limit recorded by `record_github_limit`, or None."""
    raw = await cache.get(STATUS_NAMESPACE, GITHUB_KEY)
    if raw is None:
        return None
    try:
        data = json.loads(raw)
        remaining = data.get("remaining")
        reset = data.get("reset")
        seen = data.get("seen_at")
        return GitHubLimit(
            remaining=int(remaining) if remaining is not None else None,
            reset_at=datetime.fromtimestamp(float(reset), UTC) if reset is not None else None,
            seen_at=datetime.fromisoformat(seen) if seen else None,
        )
    except (ValueError, TypeError, AttributeError):
        return None


def _repo_status(digest: Digest) -> tuple[RepoStatus, ...]:
    return tuple(
        RepoStatus(
            repo=section.repo,
            written_by=section.written_by,
            model=section.model if section.written_by == "model" else None,
            reason=one_line(section.reason),
        )
        for section in digest.sections
    )


async def collect_status(
    settings: Settings, store: StatusStore, *, now: datetime | None = None
) -> Status:
    """Read today's picture from the store: last digest, how it was written, deliveries, chats."""
    now = now or datetime.now(UTC)
    expected = yesterday(settings.digest_timezone, now)
    day = await store.latest_day()
    github = await load_github_limit(store)
    chats = await store.chat_counts()
    skipped = await store.skipped_counts()
    base = Status(
        checked_at=now,
        timezone=settings.digest_timezone,
        expected_day=expected,
        day=day,
        github=github,
        chats=chats,
        skipped=skipped,
    )
    if day is None:
        return base
    digest = await store.load_digest(day)
    run = await store.last_run(day)
    deliveries = await store.delivery_counts(day)
    return Status(
        checked_at=now,
        timezone=settings.digest_timezone,
        expected_day=expected,
        day=day,
        generated_at=run.finished_at if run is not None else None,
        repos=_repo_status(digest) if digest is not None else (),
        summary_by=digest.summary_by if digest is not None else None,
        summary_reason=one_line(digest.summary_reason) if digest is not None else None,
        run_errors=tuple(e for e in (one_line(x) for x in run.errors) if e) if run else (),
        github=github,
        deliveries=deliveries,
        chats=chats,
        skipped=skipped,
    )


def _when(value: datetime | None, zone: str) -> str:
    if value is None:
        return "unknown"
    if value.tzinfo is None:  # SQLite hands back naive UTC
        value = value.replace(tzinfo=UTC)
    return value.astimezone(ZoneInfo(zone)).strftime("%Y-%m-%d %H:%M")


def _code(text: str) -> str:
    """Text shown literally (a code span: no Markdown inside it takes effect)."""
    return "`" + text.replace("`", "'") + "`"


def _how(repo: RepoStatus) -> str:
    how = f"model {_code(repo.model or '?')}" if repo.written_by == "model" else repo.written_by
    if repo.reason:
        how += f" — {_code(repo.reason)}"
    return how


def _deliveries(counts: Mapping[str, int]) -> str:
    sent = counts.get("sent", 0)
    sending = counts.get("sending", 0)
    pending = counts.get("pending", 0) + sending
    failed = counts.get("failed", 0)
    flight = f" ({sending} in flight)" if sending else ""
    return f"{sent} done, {pending} pending{flight}, {failed} failed"


def render_status(status: Status) -> str:
    """The status as Markdown (the readers' format; plain enough for a terminal)."""
    zone = status.timezone
    lines = [f"**aiinfra-digest status** — {_when(status.checked_at, zone)} ({zone})"]
    if status.day is None:
        lines.append("No digest has been generated yet.")
    else:
        lines.append(
            f"Last digest: {status.day.isoformat()}, generated {_when(status.generated_at, zone)}"
        )
    if status.day != status.expected_day:
        lines.append(f"Not generated yet: {status.expected_day.isoformat()}.")
    if status.repos:
        lines.append("Sections:")
        lines += [f"- {_code(repo.repo)}: {_how(repo)}" for repo in status.repos]
    if status.summary_by is not None:
        by = status.summary_by
        summary = "Summary: " + (by if by in ("structured", "empty") else f"model {_code(by)}")
        if status.summary_reason:
            summary += f" — {_code(status.summary_reason)}"
        lines.append(summary)
    if status.day is not None:
        lines.append(f"Run errors: {len(status.run_errors)}")
    github = status.github
    if github is None or github.remaining is None:
        lines.append("GitHub rate limit: not seen yet")
    else:
        lines.append(
            f"GitHub rate limit: {github.remaining} left, resets {_when(github.reset_at, zone)} "
            f"(seen {_when(github.seen_at, zone)})"
        )
    if status.day is not None:
        lines.append(f"Deliveries of {status.day.isoformat()}: {_deliveries(status.deliveries)}")
    if status.skipped:
        days = ", ".join(f"{d.isoformat()} {n}" for d, n in status.skipped.items())
        lines.append(f"Skipped (too late to post after downtime): {days}")
    chats = ", ".join(f"{p} {n}" for p, n in sorted(status.chats.items())) or "none"
    lines.append(f"Active chats: {chats}")
    return "\n".join(lines) + "\n"


def status_store(store: object) -> StatusStore | None:
    """`store` as a StatusStore when it offers every read a status needs, else None."""
    return store if isinstance(store, StatusStore) else None
