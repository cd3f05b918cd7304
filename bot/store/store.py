"""The Store: chats and subscriptions, the digest archive, run records, deliveries and the cache.

One class over SQLAlchemy Core; every method is one short transaction. Writers that read first
take SQLite's write lock up front; on PostgreSQL, rows are locked (`FOR UPDATE`), and delivery
claims skip rows other workers hold (`SKIP LOCKED`), so any number of instances can share it.
"""

from __future__ import annotations

import enum
import json
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from bot.settings import parse_hhmm
from bot.store.engine import make_engine, migrate
from bot.store.tables import (
    UtcDateTime,
    alert_chats,
    alerts,
    cache,
    chats,
    deliveries,
    digests,
    locks,
    push_targets,
    release_cursors,
    repo_follows,
    runs,
    tracked_repos,
    watches,
)
from bot.store.types import (
    AlertChat,
    AlertClaim,
    Chat,
    DeliveryClaim,
    PushTargetRow,
    RunRecord,
    TrackedRepo,
    WatchChange,
    WatchLimitExceeded,
)
from collectors.activity import DayActivity
from summarizer.digest import Digest, Usage

PENDING, SENDING, SENT, FAILED = "pending", "sending", "sent", "failed"
# Too old to be posted late when the bot came back (see Scheduler): never sent, shown by `status`.
SKIPPED = "skipped"


class Keep(enum.Enum):
    """A setting left as it is (the default of optional updates)."""

    KEEP = "keep"


KEEP = Keep.KEEP
# Kinds of delivery: the daily post of a day, the weekly roll-up of the week ending with it.
DAILY, WEEKLY = "daily", "weekly"
_ERROR_LIMIT = 1000
# Cache entries deleted per transaction by `prune_cache` (bodies can be tens of kB each).
_PRUNE_BATCH = 1000
_DELIVERY_KEY = [
    deliveries.c.platform,
    deliveries.c.chat_id,
    deliveries.c.day,
    deliveries.c.kind,
]


def utcnow() -> datetime:
    """The current instant, timezone-aware UTC."""
    return datetime.now(UTC)


def _repos_json(repos: Sequence[str] | None) -> str | None:
    return None if repos is None else json.dumps(list(repos))


def _dedupe(repos: Sequence[str]) -> list[str]:
    """Keep the first spelling of each repository, comparing case-insensitively."""
    seen: dict[str, str] = {}
    for repo in repos:
        name = repo.strip()
        if name:
            seen.setdefault(name.lower(), name)
    return list(seen.values())


def _check_post_time(post_time: str) -> str:
    return parse_hhmm(post_time).strftime("%H:%M")


def _check_timezone(timezone: str) -> str:
    try:
        ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {timezone!r}") from None
    return timezone


def _chat(row: RowMapping) -> Chat:
    repos = row["repos"]
    return Chat(
        platform=row["platform"],
        chat_id=row["chat_id"],
        repos=None if repos is None else tuple(json.loads(repos)),
        post_time=row["post_time"],
        timezone=row["timezone"],
        active=bool(row["active"]),
        subscribed_by=row["subscribed_by"],
        subscribed_at=row["subscribed_at"],
        deactivated_at=row["deactivated_at"],
        deactivation_reason=row["deactivation_reason"],
        chart=bool(row["chart"]),
        weekly=bool(row["weekly"]),
        thread_id=row["thread_id"],
    )


def _claim(row: Mapping[str, Any]) -> DeliveryClaim:
    return DeliveryClaim(
        id=row["id"],
        platform=row["platform"],
        chat_id=row["chat_id"],
        day=row["day"],
        worker=row["claimed_by"],
        attempts=row["attempts"],
        lease_until=row["lease_until"],
        kind=row["kind"],
        sent_ids=_ids(row["message_ids"]),
    )


def _ids(raw: str | None) -> tuple[str, ...]:
    """The JSON list of message ids of a delivery or alert row (empty when none yet)."""
    return tuple(str(m) for m in json.loads(raw)) if raw else ()


def _sent(message_ids: list[str], now: datetime | None) -> dict[str, Any]:
    """What a finished claim (delivery or alert) records once its message went out."""
    return {
        "status": SENT,
        "message_ids": json.dumps([str(m) for m in message_ids]),
        "sent_at": now or utcnow(),
        "lease_until": None,
        "retry_at": None,
        "last_error": None,
    }


def _failed(error: str, *, final: bool, retry_at: datetime | None) -> dict[str, Any]:
    """What a failed attempt records: given up (`final`), or pending again from `retry_at`."""
    return {
        "status": FAILED if final else PENDING,
        "last_error": error[:_ERROR_LIMIT],
        "lease_until": None,
        "retry_at": None if final else retry_at,
    }


def _written_by(digest: Digest) -> dict[str, str]:
    return {
        s.repo: f"model:{s.model}" if s.written_by == "model" and s.model else s.written_by
        for s in digest.sections
    }


class Store:
    """Persistence of the bot; also a KeyValueCache (`get`/`put`) for ETags and sections."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._dialect = engine.dialect.name

    @classmethod
    async def open(cls, url: str, *, schema: str | None = None, echo: bool = False) -> Store:
        """Connect to `url` and apply pending migrations (SQLite: creates the file's directory)."""
        engine = make_engine(url, schema=schema, echo=echo)
        try:
            await migrate(engine)
        except BaseException:
            await engine.dispose()
            raise
        return cls(engine)

    @property
    def engine(self) -> AsyncEngine:
        """The underlying engine (for operators' queries and tests)."""
        return self._engine

    @property
    def dialect(self) -> str:
        """`sqlite` or `postgresql`."""
        return self._dialect

    async def close(self) -> None:
        """Close every pooled connection."""
        await self._engine.dispose()

    async def __aenter__(self) -> Store:
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.close()

    @asynccontextmanager
    async def _write(self) -> AsyncIterator[AsyncConnection]:
        """A transaction that will write: SQLite takes its write lock at BEGIN."""
        async with self._engine.connect() as conn:
            if self._dialect == "sqlite":
                conn = await conn.execution_options(sqlite_immediate=True)
            async with conn.begin():
                yield conn

    @asynccontextmanager
    async def _read(self) -> AsyncIterator[AsyncConnection]:
        async with self._engine.connect() as conn, conn.begin():
            yield conn

    def _insert(self, table: sa.Table) -> Any:
        """INSERT with ON CONFLICT support for the current backend."""
        return (postgresql.insert if self._dialect == "postgresql" else sqlite.insert)(table)

    def _db_now(self, seconds: float = 0.0) -> sa.ColumnElement[datetime]:
        """The database's clock plus `seconds`: what every lease and lock expiry is compared with.

        PostgreSQL's `now()`; SQLite lives in a file on this host, so the host clock is the
        database's clock there. A caller's own `now` never decides whether a lease has expired,
        so an instance whose clock runs ahead cannot take a live lease from another.
        """
        if self._dialect == "postgresql":
            return sa.func.now() + sa.literal(timedelta(seconds=seconds), sa.Interval)
        return sa.literal(utcnow() + timedelta(seconds=seconds), UtcDateTime)

    # -- key-value cache -------------------------------------------------------------------

    async def get(self, namespace: str, key: str) -> str | None:
        """The cached value, or None."""
        query = sa.select(cache.c.value).where(cache.c.namespace == namespace, cache.c.key == key)
        async with self._read() as conn:
            value = (await conn.execute(query)).scalar_one_or_none()
        return None if value is None else str(value)

    async def put(self, namespace: str, key: str, value: str) -> None:
        """Store `value`, replacing an earlier one."""
        stmt = self._insert(cache).values(
            namespace=namespace, key=key, value=value, updated_at=utcnow()
        )
        stmt = stmt.on_conflict_do_update(
            index_elements=[cache.c.namespace, cache.c.key],
            set_={"value": stmt.excluded.value, "updated_at": stmt.excluded.updated_at},
        )
        async with self._write() as conn:
            await conn.execute(stmt)

    async def prune_cache(
        self,
        older_than: timedelta,
        *,
        namespaces: Sequence[str] | None = None,
        now: datetime | None = None,
    ) -> int:
        """Delete cache entries last written more than `older_than` ago; returns how many.

        Only in `namespaces` (None: every namespace). Deletes in batches, each its own short
        transaction, so a first prune of a long-grown cache never holds the write lock for long.
        """
        if namespaces is not None and not namespaces:
            return 0
        cut = (now or utcnow()) - older_than
        old = sa.select(cache.c.namespace, cache.c.key).where(cache.c.updated_at < cut)
        if namespaces is not None:
            old = old.where(cache.c.namespace.in_(list(namespaces)))
        batch = old.limit(_PRUNE_BATCH)
        stmt = sa.delete(cache).where(sa.tuple_(cache.c.namespace, cache.c.key).in_(batch))
        removed = 0
        while True:
            async with self._write() as conn:
                count = (await conn.execute(stmt)).rowcount
            removed += count
            if count < _PRUNE_BATCH:
                return removed

    # -- digest archive and runs -----------------------------------------------------------

    async def save_digest(self, digest: Digest, activity: DayActivity) -> None:
        """Archive the day's digest with the activity it was written from (replaces the day)."""
        now = utcnow()
        usage = sum((s.usage for s in digest.sections), start=Usage())
        values = {
            "day": digest.day,
            "timezone": digest.timezone,
            "digest": digest.model_dump_json(),
            "activity": activity.model_dump_json(),
            "written_by": json.dumps(_written_by(digest), ensure_ascii=False),
            "summary_by": digest.summary_by[:128],
            "prompt_tokens": usage.prompt_tokens,
            "completion_tokens": usage.completion_tokens,
            "model_calls": usage.calls,
            "created_at": now,
            "updated_at": now,
        }
        stmt = self._insert(digests).values(**values)
        stmt = stmt.on_conflict_do_update(
            index_elements=[digests.c.day],
            set_={k: stmt.excluded[k] for k in values if k not in ("day", "created_at")},
        )
        async with self._write() as conn:
            await conn.execute(stmt)

    async def load_digest(self, day: date) -> Digest | None:
        """The archived digest of `day`, or None."""
        query = sa.select(digests.c.digest).where(digests.c.day == day)
        async with self._read() as conn:
            text = (await conn.execute(query)).scalar_one_or_none()
        return None if text is None else Digest.model_validate_json(text)

    async def load_activity(self, day: date) -> DayActivity | None:
        """The activity the archived digest of `day` was written from, or None."""
        query = sa.select(digests.c.activity).where(digests.c.day == day)
        async with self._read() as conn:
            text = (await conn.execute(query)).scalar_one_or_none()
        return None if text is None else DayActivity.from_json(text)

    async def latest_day(self) -> date | None:
        """The newest archived day."""
        async with self._read() as conn:
            value = (await conn.execute(sa.select(sa.func.max(digests.c.day)))).scalar()
        if value is None or isinstance(value, date):
            return value
        return date.fromisoformat(str(value))  # SQLite's max() returns the stored text

    async def archived_days(self, limit: int = 30) -> list[date]:
        """The newest archived days, newest first."""
        query = sa.select(digests.c.day).order_by(digests.c.day.desc()).limit(limit)
        async with self._read() as conn:
            return list((await conn.execute(query)).scalars())

    async def written_by(self, day: date) -> dict[str, str] | None:
        """How each repository's section of `day` was written (`model:<name>`, `structured`, …)."""
        query = sa.select(digests.c.written_by).where(digests.c.day == day)
        async with self._read() as conn:
            text = (await conn.execute(query)).scalar_one_or_none()
        return None if text is None else dict(json.loads(text))

    async def record_run(
        self,
        day: date,
        errors: list[str],
        *,
        started_at: datetime | None = None,
        finished_at: datetime | None = None,
    ) -> None:
        """Record one generation of `day` and its operator-facing errors."""
        values = {
            "day": day,
            "errors": json.dumps(list(errors), ensure_ascii=False),
            "started_at": started_at,
            "finished_at": finished_at or utcnow(),
        }
        async with self._write() as conn:
            await conn.execute(sa.insert(runs).values(**values))

    async def last_run(self, day: date | None = None) -> RunRecord | None:
        """The most recent run record (of `day`, when given)."""
        query = sa.select(runs).order_by(runs.c.id.desc()).limit(1)
        if day is not None:
            query = query.where(runs.c.day == day)
        async with self._read() as conn:
            row = (await conn.execute(query)).mappings().first()
        if row is None:
            return None
        return RunRecord(
            day=row["day"],
            errors=tuple(json.loads(row["errors"])),
            started_at=row["started_at"],
            finished_at=row["finished_at"],
        )

    # -- chats -----------------------------------------------------------------------------

    async def get_chat(self, platform: str, chat_id: str) -> Chat | None:
        """The chat, active or not, or None when it never subscribed."""
        query = sa.select(chats).where(chats.c.platform == platform, chats.c.chat_id == chat_id)
        async with self._read() as conn:
            row = (await conn.execute(query)).mappings().first()
        return None if row is None else _chat(row)

    async def _locked_chat(
        self, conn: AsyncConnection, platform: str, chat_id: str
    ) -> RowMapping | None:
        query = sa.select(chats).where(chats.c.platform == platform, chats.c.chat_id == chat_id)
        if self._dialect == "postgresql":
            query = query.with_for_update()
        return (await conn.execute(query)).mappings().first()

    async def _update_chat(
        self, conn: AsyncConnection, platform: str, chat_id: str, values: Mapping[str, Any]
    ) -> Chat:
        stmt = (
            sa.update(chats)
            .where(chats.c.platform == platform, chats.c.chat_id == chat_id)
            .values(**values, updated_at=utcnow())
            .returning(*chats.c)
        )
        return _chat((await conn.execute(stmt)).mappings().one())

    async def subscribe(
        self,
        platform: str,
        chat_id: str,
        repos: Sequence[str] | None,
        *,
        by: str | None,
        post_time: str,
        timezone: str,
        now: datetime | None = None,
        thread_id: str | Keep | None = KEEP,
    ) -> Chat:
        """Subscribe a chat to all repositories (None) or add the named ones; re-activates it.

        A new or inactive chat starts afresh with `post_time`/`timezone`; an active chat keeps
        its own. Named repositories add to an active named set; an active "all" stays "all".
        `thread_id` moves its posts to that forum topic (None: the chat itself).
        """
        topic = {} if isinstance(thread_id, Keep) else {"thread_id": thread_id}
        now = now or utcnow()
        post_time = _check_post_time(post_time)
        timezone = _check_timezone(timezone)
        wanted = None if repos is None else _dedupe(repos)
        if wanted == []:
            wanted = None
        async with self._write() as conn:
            row = await self._locked_chat(conn, platform, chat_id)
            if row is None:
                stmt = (
                    self._insert(chats)
                    .values(
                        platform=platform,
                        chat_id=chat_id,
                        repos=_repos_json(wanted),
                        post_time=post_time,
                        timezone=timezone,
                        active=True,
                        subscribed_by=by,
                        subscribed_at=now,
                        updated_at=now,
                        **topic,
                    )
                    .on_conflict_do_nothing(index_elements=[chats.c.platform, chats.c.chat_id])
                    .returning(*chats.c)
                )
                inserted = (await conn.execute(stmt)).mappings().first()
                if inserted is not None:
                    return _chat(inserted)
                # Another instance created it between our read and insert: amend theirs.
                row = await self._locked_chat(conn, platform, chat_id)
                assert row is not None
            current = _chat(row)
            if not current.active:
                values: dict[str, Any] = {
                    "repos": _repos_json(wanted),
                    "post_time": post_time,
                    "timezone": timezone,
                    "active": True,
                    "subscribed_by": by,
                    "subscribed_at": now,
                    "deactivated_at": None,
                    "deactivation_reason": None,
                }
            elif wanted is None or current.repos is None:
                values = {"repos": None}
            else:
                values = {"repos": _repos_json(_dedupe([*current.repos, *wanted]))}
            return await self._update_chat(conn, platform, chat_id, {**values, **topic})

    async def unsubscribe(
        self,
        platform: str,
        chat_id: str,
        repos: Sequence[str] | None,
        *,
        tracked: Sequence[str] = (),
        now: datetime | None = None,
    ) -> Chat | None:
        """Stop all (None) or only the named repositories; None when the chat is unknown.

        Removing named repositories from an "all" subscription needs `tracked` (the tracked
        list) to know what remains; without it the subscription stays "all". A chat left with
        nothing is deactivated.
        """
        now = now or utcnow()
        async with self._write() as conn:
            row = await self._locked_chat(conn, platform, chat_id)
            if row is None:
                return None
            current = _chat(row)
            stop: dict[str, Any] = {
                "active": False,
                "deactivated_at": now,
                "deactivation_reason": "unsubscribed",
            }
            if repos is None:
                return await self._update_chat(conn, platform, chat_id, stop)
            unwanted = {r.strip().lower() for r in repos}
            base = current.repos if current.repos is not None else tuple(tracked)
            if current.repos is None and not tracked:
                return current
            remaining = [r for r in base if r.lower() not in unwanted]
            if not remaining:
                return await self._update_chat(conn, platform, chat_id, {**stop, "repos": None})
            return await self._update_chat(
                conn, platform, chat_id, {"repos": _repos_json(remaining)}
            )

    async def set_post_time(self, platform: str, chat_id: str, post_time: str) -> Chat | None:
        """Set the chat's local posting time ("HH:MM"); None when the chat is unknown."""
        return await self._set(platform, chat_id, {"post_time": _check_post_time(post_time)})

    async def set_timezone(self, platform: str, chat_id: str, timezone: str) -> Chat | None:
        """Set the chat's time zone (IANA name); None when the chat is unknown."""
        return await self._set(platform, chat_id, {"timezone": _check_timezone(timezone)})

    async def set_chart(self, platform: str, chat_id: str, on: bool) -> Chat | None:
        """Turn the picture of the day after the daily post on or off; None for an unknown chat."""
        return await self._set(platform, chat_id, {"chart": bool(on)})

    async def set_weekly(
        self, platform: str, chat_id: str, on: bool, *, thread_id: str | Keep | None = KEEP
    ) -> Chat | None:
        """Turn the Monday roll-up of the week on or off; None for an unknown chat.

        `thread_id` moves the chat's posts to that forum topic (None: the chat itself).
        """
        topic = {} if isinstance(thread_id, Keep) else {"thread_id": thread_id}
        return await self._set(platform, chat_id, {"weekly": bool(on), **topic})

    async def _set(self, platform: str, chat_id: str, values: Mapping[str, Any]) -> Chat | None:
        stmt = (
            sa.update(chats)
            .where(chats.c.platform == platform, chats.c.chat_id == chat_id)
            .values(**values, updated_at=utcnow())
            .returning(*chats.c)
        )
        async with self._write() as conn:
            row = (await conn.execute(stmt)).mappings().first()
        return None if row is None else _chat(row)

    async def move_chat(self, platform: str, old_chat_id: str, new_chat_id: str) -> bool:
        """Move everything of a chat to its new id (a group became a supergroup), at once.

        Subscription, repositories, time, opt-ins, watches, alert settings, follows and delivery
        and alert records move in one transaction; where the new id already has a row of its
        own (it subscribed again), that row wins and the old one is dropped, so nothing is
        posted twice. The old id is never tried again. False when there was nothing to move.
        """
        if old_chat_id == new_chat_id:
            return False
        keyed: list[tuple[sa.Table, tuple[str, ...]]] = [
            (chats, ()),
            (deliveries, ("day", "kind")),
            (watches, ("word_key",)),
            (alert_chats, ()),
            (repo_follows, ("repo_key", "kind")),
            (alerts, ("repo", "tag")),
        ]
        moved = False
        async with self._write() as conn:
            for table, rest in keyed:
                c = table.c
                old = sa.and_(c.platform == platform, c.chat_id == old_chat_id)
                taken = table.alias("taken")
                same_key = [taken.c[name] == c[name] for name in rest]
                clash = (
                    sa.select(sa.literal(1))
                    .select_from(taken)
                    .where(taken.c.platform == platform, taken.c.chat_id == new_chat_id, *same_key)
                    .exists()
                )
                await conn.execute(sa.delete(table).where(old, clash))
                result = await conn.execute(sa.update(table).where(old).values(chat_id=new_chat_id))
                moved = moved or bool(result.rowcount)
        return moved

    async def deactivate(
        self, platform: str, chat_id: str, reason: str, *, now: datetime | None = None
    ) -> None:
        """Stop posting to a chat (blocked, removed, deleted), keeping why and when."""
        now = now or utcnow()
        stmt = (
            sa.update(chats)
            .where(chats.c.platform == platform, chats.c.chat_id == chat_id)
            .values(
                active=False,
                deactivated_at=now,
                deactivation_reason=reason[:_ERROR_LIMIT],
                updated_at=now,
            )
        )
        async with self._write() as conn:
            await conn.execute(stmt)

    async def active_chats(self, platform: str | None = None) -> list[Chat]:
        """Every active chat (of `platform`), oldest subscription first."""
        query = sa.select(chats).where(chats.c.active.is_(True)).order_by(chats.c.id)
        if platform is not None:
            query = query.where(chats.c.platform == platform)
        async with self._read() as conn:
            return [_chat(row) for row in (await conn.execute(query)).mappings()]

    async def chat_counts(self) -> dict[str, int]:
        """Active chats per platform."""
        query = (
            sa.select(chats.c.platform, sa.func.count())
            .where(chats.c.active.is_(True))
            .group_by(chats.c.platform)
        )
        async with self._read() as conn:
            return {str(p): int(n) for p, n in (await conn.execute(query)).all()}

    # -- push targets (Apprise URLs of the `push` chats) -------------------------------------

    async def add_push_target(self, target_id: str, url: str, *, by: str | None) -> bool:
        """Store a target's URL; False when it was already stored (nothing changes)."""
        stmt = (
            self._insert(push_targets)
            .values(id=target_id, url=url, added_by=by, created_at=utcnow())
            .on_conflict_do_nothing(index_elements=[push_targets.c.id])
        )
        async with self._write() as conn:
            return bool((await conn.execute(stmt)).rowcount)

    async def push_targets(self) -> list[PushTargetRow]:
        """Every stored push target, oldest first."""
        query = sa.select(push_targets).order_by(push_targets.c.created_at, push_targets.c.id)
        async with self._read() as conn:
            return [_push_target(row) for row in (await conn.execute(query)).mappings()]

    async def get_push_target(self, target_id: str) -> PushTargetRow | None:
        """The stored target, or None."""
        query = sa.select(push_targets).where(push_targets.c.id == target_id)
        async with self._read() as conn:
            row = (await conn.execute(query)).mappings().first()
        return None if row is None else _push_target(row)

    async def remove_push_target(self, target_id: str) -> bool:
        """Forget a target's URL and stop posting to it; False when it was not stored."""
        async with self._write() as conn:
            result = await conn.execute(
                sa.delete(push_targets).where(push_targets.c.id == target_id)
            )
            await conn.execute(
                sa.update(chats)
                .where(chats.c.platform == "push", chats.c.chat_id == target_id)
                .values(
                    active=False,
                    deactivated_at=utcnow(),
                    deactivation_reason="removed by the operator",
                    updated_at=utcnow(),
                )
            )
        return bool(result.rowcount)

    # -- leased claims: one protocol for deliveries and release alerts ---------------------

    async def _claim_rows(
        self,
        table: sa.Table,
        where: Sequence[sa.ColumnElement[bool]],
        *,
        worker: str,
        limit: int,
        lease_seconds: float,
        now: datetime,
    ) -> list[dict[str, Any]]:
        """Claim up to `limit` claimable rows of `table` matching `where` for `worker`.

        Claimable: pending ones whose retry time (`now`, the caller's clock) has come, and ones
        whose lease expired by the database's clock (a crashed worker's). Each claim counts as
        an attempt. The rows, in id order, with `lease_until` on the caller's clock.
        """
        c = table.c
        claimable = sa.or_(
            sa.and_(c.status == PENDING, sa.or_(c.retry_at.is_(None), c.retry_at <= now)),
            sa.and_(c.status == SENDING, c.lease_until <= self._db_now()),
        )
        query = sa.select(c.id).where(claimable, *where).order_by(c.id).limit(limit)
        if self._dialect == "postgresql":
            # Concurrent workers each take rows the others have not locked, never the same.
            query = query.with_for_update(skip_locked=True)
        async with self._write() as conn:
            ids = list((await conn.execute(query)).scalars())
            if not ids:
                return []
            stmt = (
                sa.update(table)
                .where(c.id.in_(ids))
                .values(
                    status=SENDING,
                    claimed_by=worker,
                    lease_until=self._db_now(lease_seconds),
                    attempts=c.attempts + 1,
                    updated_at=now,
                )
                .returning(*table.c)
            )
            rows = list((await conn.execute(stmt)).mappings())
        # The holder times its renewals on its own clock; the row keeps the database's expiry.
        until = now + timedelta(seconds=lease_seconds)
        return sorted(
            ({**row, "lease_until": until} for row in rows), key=lambda row: int(row["id"])
        )

    async def _finish_claim(
        self, table: sa.Table, claim: DeliveryClaim | AlertClaim, values: Mapping[str, Any]
    ) -> RowMapping | None:
        """Update the claimed row with `values` if the claim is still this worker's.

        None when it is not: another worker took over the expired lease (the attempt count
        moved on) or the row was finished already.
        """
        c = table.c
        owned = sa.and_(
            c.id == claim.id,
            c.status == SENDING,
            c.claimed_by == claim.worker,
            c.attempts == claim.attempts,
        )
        stmt = (
            sa.update(table).where(owned).values(**values, updated_at=utcnow()).returning(*table.c)
        )
        async with self._write() as conn:
            return (await conn.execute(stmt)).mappings().first()

    # -- deliveries ------------------------------------------------------------------------

    async def ensure_deliveries(
        self,
        day: date,
        chats: Sequence[Chat],
        *,
        due_at: Callable[[Chat], datetime | None] | None = None,
        now: datetime | None = None,
        kind: str = DAILY,
    ) -> int:
        """Create the missing pending deliveries of `day` for `chats`; returns how many were new.

        `due_at` gives each new row its posting instant (None: due at once), which
        `claim_deliveries(due_before=…)` honours. `kind` WEEKLY: the roll-up of the week ending
        with `day`, once per chat beside that day's daily post.
        """
        if not chats:
            return 0
        now = now or utcnow()
        rows = [
            {
                "platform": chat.platform,
                "chat_id": chat.chat_id,
                "day": day,
                "kind": kind,
                "status": PENDING,
                "attempts": 0,
                "due_at": due_at(chat) if due_at else None,
                "created_at": now,
                "updated_at": now,
            }
            for chat in {c.key: c for c in chats}.values()
        ]
        created = 0
        async with self._write() as conn:
            # Chunks keep each statement under SQLite's bound-parameter limit.
            for start in range(0, len(rows), 500):
                stmt = (
                    self._insert(deliveries)
                    .values(rows[start : start + 500])
                    .on_conflict_do_nothing(index_elements=_DELIVERY_KEY)
                    .returning(deliveries.c.id)
                )
                created += len((await conn.execute(stmt)).all())
        return created

    async def claim_deliveries(
        self,
        day: date,
        *,
        platform: str | None,
        worker: str,
        limit: int,
        lease_seconds: float,
        due_before: datetime | None,
        now: datetime | None = None,
        kind: str = DAILY,
    ) -> list[DeliveryClaim]:
        """Claim up to `limit` deliveries of `day` (of `kind`) for `worker` for `lease_seconds`.

        Claimable: pending ones (whose retry time has come, and due by `due_before` if given)
        and ones whose claim expired (a crashed worker's). Each claim counts as an attempt.
        """
        now = now or utcnow()
        c = deliveries.c
        where = [c.day == day, c.kind == kind]
        if platform is not None:
            where.append(c.platform == platform)
        if due_before is not None:
            where.append(sa.or_(c.due_at.is_(None), c.due_at <= due_before))
        rows = await self._claim_rows(
            deliveries, where, worker=worker, limit=limit, lease_seconds=lease_seconds, now=now
        )
        return [_claim(row) for row in rows]

    async def mark_delivered(
        self, claim: DeliveryClaim, message_ids: list[str], *, now: datetime | None = None
    ) -> bool:
        """Record the delivery as sent; False when the claim was no longer this worker's."""
        sent = _sent(message_ids, now)
        return await self._finish_claim(deliveries, claim, sent) is not None

    async def record_parts(
        self, claim: DeliveryClaim | AlertClaim, message_ids: Sequence[str]
    ) -> DeliveryClaim | AlertClaim | None:
        """Record the parts the chat accepted so far (still sending); None when the claim is lost.

        A later attempt (a retry, a restart, another instance taking over the lease) starts after
        these parts, so nobody receives an acknowledged part twice.
        """
        table = alerts if isinstance(claim, AlertClaim) else deliveries
        values = {"message_ids": json.dumps([str(m) for m in message_ids])}
        row = await self._finish_claim(table, claim, values)
        if row is None:
            return None
        # The lease is unchanged: keep it on the holder's clock (see `_claim_rows`).
        held = {**row, "lease_until": claim.lease_until}
        if isinstance(claim, AlertClaim):
            return _alert_claim(held, claim.thread_id)
        return _claim(held)

    async def mark_failed(
        self,
        claim: DeliveryClaim,
        error: str,
        *,
        final: bool,
        retry_at: datetime | None = None,
    ) -> bool:
        """Record a failed attempt: `final` gives up; otherwise pending again from `retry_at`.

        False when the claim was no longer this worker's.
        """
        failed = _failed(error, final=final, retry_at=retry_at)
        return await self._finish_claim(deliveries, claim, failed) is not None

    async def release_claim(self, claim: DeliveryClaim) -> bool:
        """Hand back an untried claim (shutting down): pending again, the attempt not counted."""
        values = {
            "status": PENDING,
            "claimed_by": None,
            "lease_until": None,
            "attempts": deliveries.c.attempts - 1,
        }
        return await self._finish_claim(deliveries, claim, values) is not None

    async def renew_claim(
        self, claim: DeliveryClaim, lease_seconds: float, *, now: datetime | None = None
    ) -> DeliveryClaim | None:
        """Extend this worker's lease; None when the claim was lost (taken over or finished).

        The row's lease runs on the database's clock; the claim returned holds `now` (the
        caller's clock) plus `lease_seconds`, so the caller times its next renewal on its own.
        """
        lease_until = (now or utcnow()) + timedelta(seconds=lease_seconds)
        values = {"lease_until": self._db_now(lease_seconds)}
        row = await self._finish_claim(deliveries, claim, values)
        return None if row is None else _claim({**row, "lease_until": lease_until})

    async def delivery_counts(self, day: date, *, kind: str = DAILY) -> dict[str, int]:
        """How many deliveries (of `kind`) of `day` are in each status."""
        query = (
            sa.select(deliveries.c.status, sa.func.count())
            .where(deliveries.c.day == day, deliveries.c.kind == kind)
            .group_by(deliveries.c.status)
        )
        async with self._read() as conn:
            return {str(s): int(n) for s, n in (await conn.execute(query)).all()}

    async def delivery_status(
        self, platform: str, chat_id: str, day: date, *, kind: str = DAILY
    ) -> str | None:
        """The status of one delivery, or None when there is none."""
        c = deliveries.c
        query = sa.select(c.status).where(
            c.platform == platform, c.chat_id == chat_id, c.day == day, c.kind == kind
        )
        async with self._read() as conn:
            value = (await conn.execute(query)).scalar_one_or_none()
        return None if value is None else str(value)

    async def delivery_statuses(
        self, day: date, *, kind: str = DAILY
    ) -> dict[tuple[str, str], str]:
        """The status of every delivery (of `kind`) of `day`: {(platform, chat_id): status}."""
        c = deliveries.c
        query = sa.select(c.platform, c.chat_id, c.status).where(c.day == day, c.kind == kind)
        async with self._read() as conn:
            rows = (await conn.execute(query)).all()
        return {(str(platform), str(chat)): str(status) for platform, chat, status in rows}

    async def latest_delivery_day(self, before: date, *, kind: str = DAILY) -> date | None:
        """The newest day before `before` with any delivery row: the bot was in service then."""
        c = deliveries.c
        query = sa.select(sa.func.max(c.day)).where(c.day < before, c.kind == kind)
        async with self._read() as conn:
            value = (await conn.execute(query)).scalar()
        if value is None or isinstance(value, date):
            return value
        return date.fromisoformat(str(value))  # SQLite's max() returns the stored text

    async def skip_deliveries(
        self, before: date, reason: str, *, now: datetime | None = None
    ) -> int:
        """Mark every unsent delivery of days before `before` SKIPPED; returns how many."""
        now = now or utcnow()
        c = deliveries.c
        stmt = (
            sa.update(deliveries)
            .where(c.day < before, c.status.in_((PENDING, SENDING)))
            .values(status=SKIPPED, last_error=reason, claimed_by=None, updated_at=now)
        )
        async with self._write() as conn:
            return int((await conn.execute(stmt)).rowcount or 0)

    async def skipped_counts(self, limit: int = 7) -> dict[date, int]:
        """Skipped deliveries per day, for the newest `limit` days that have any."""
        c = deliveries.c
        query = (
            sa.select(c.day, sa.func.count())
            .where(c.status == SKIPPED)
            .group_by(c.day)
            .order_by(c.day.desc())
            .limit(limit)
        )
        async with self._read() as conn:
            rows = (await conn.execute(query)).all()
        return {d if isinstance(d, date) else date.fromisoformat(str(d)): int(n) for d, n in rows}

    async def next_retry_at(self, day: date, *, kind: str = DAILY) -> datetime | None:
        """The earliest retry time among the pending deliveries of `day` (None: none waiting)."""
        c = deliveries.c
        query = sa.select(sa.func.min(c.retry_at)).where(
            c.day == day, c.kind == kind, c.status == PENDING
        )
        async with self._read() as conn:
            value = (await conn.execute(query)).scalar()
        if isinstance(value, str):  # in case a backend hands back the stored text
            value = datetime.fromisoformat(value)
        if not isinstance(value, datetime):
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value

    async def unfinished(
        self, day: date, *, kind: str = DAILY, platforms: Sequence[str] | None = None
    ) -> tuple[int, float | None]:
        """Deliveries of `day` not yet sent nor given up, and seconds until the last live lease
        among them runs out (database clock; None when none is leased, 0 when all expired)."""
        c = deliveries.c
        where = [c.day == day, c.kind == kind, c.status.in_((PENDING, SENDING))]
        if platforms is not None:
            where.append(c.platform.in_(list(platforms)))
        leased = sa.func.max(sa.case((c.status == SENDING, c.lease_until)))
        query = sa.select(sa.func.count(), leased, self._db_now()).where(*where)
        async with self._read() as conn:
            count, until, db_now = (await conn.execute(query)).one()
        until, db_now = _aware(until), _aware(db_now)
        if until is None or db_now is None:
            return int(count or 0), None
        return int(count or 0), max(0.0, (until - db_now).total_seconds())

    # -- leases on named jobs (one instance generates a day) --------------------------------

    async def try_lock(
        self, name: str, holder: str, ttl_seconds: float, *, now: datetime | None = None
    ) -> bool:
        """Take (or renew) the named lock for `ttl_seconds`; False while another holds it.

        Expiry is the database's clock (`now`, the caller's, is not consulted): a host whose
        clock runs fast cannot take a lock that is still live.
        """
        stmt = self._insert(locks).values(
            name=name, holder=holder, expires_at=self._db_now(ttl_seconds)
        )
        stmt = stmt.on_conflict_do_update(
            index_elements=[locks.c.name],
            set_={"holder": holder, "expires_at": self._db_now(ttl_seconds)},
            where=sa.or_(locks.c.expires_at <= self._db_now(), locks.c.holder == holder),
        ).returning(locks.c.holder)
        async with self._write() as conn:
            return (await conn.execute(stmt)).first() is not None

    async def release_lock(self, name: str, holder: str) -> None:
        """Give up the named lock if `holder` has it."""
        stmt = sa.delete(locks).where(locks.c.name == name, locks.c.holder == holder)
        async with self._write() as conn:
            await conn.execute(stmt)

    async def live_locks(self, prefix: str) -> int:
        """How many locks whose name starts with `prefix` have not expired (database clock)."""
        query = (
            sa.select(sa.func.count())
            .select_from(locks)
            .where(locks.c.name.startswith(prefix, autoescape=True))
            .where(locks.c.expires_at > self._db_now())
        )
        async with self._read() as conn:
            return int((await conn.execute(query)).scalar() or 0)

    async def beat(self, name: str, holder: str, stale_after: float) -> None:
        """Record a loop's heartbeat: the row `name` is stale `stale_after` seconds from now."""
        stmt = self._insert(locks).values(
            name=name, holder=holder, expires_at=self._db_now(stale_after)
        )
        stmt = stmt.on_conflict_do_update(
            index_elements=[locks.c.name],
            set_={"holder": holder, "expires_at": self._db_now(stale_after)},
        )
        async with self._write() as conn:
            await conn.execute(stmt)

    async def prune_locks(self, *, keep_prefix: str = "", keep_seconds: float = 0.0) -> int:
        """Delete expired locks; those named `keep_prefix…` only `keep_seconds` after expiry.

        Heartbeats are kept a while after they go stale, so `health` can still see a loop that
        died; returns how many rows went.
        """
        expired = locks.c.expires_at <= self._db_now()
        if keep_prefix:
            kept = locks.c.name.startswith(keep_prefix, autoescape=True)
            long_expired = locks.c.expires_at <= self._db_now(-keep_seconds)
            expired = sa.and_(expired, sa.or_(sa.not_(kept), long_expired))
        async with self._write() as conn:
            return int((await conn.execute(sa.delete(locks).where(expired))).rowcount or 0)

    async def lock_names(self) -> list[str]:
        """Every lock row's name, live or expired (operators' queries and tests)."""
        async with self._read() as conn:
            return sorted(str(n) for n in (await conn.execute(sa.select(locks.c.name))).scalars())

    # -- repositories tracked beyond DIGEST_REPOS -------------------------------------------

    async def tracked_repos(self) -> list[TrackedRepo]:
        """Every repository tracked beyond DIGEST_REPOS (followed or not), oldest first."""
        query = sa.select(tracked_repos).order_by(tracked_repos.c.added_at, tracked_repos.c.repo)
        async with self._read() as conn:
            return [_tracked(row) for row in (await conn.execute(query)).mappings()]

    async def track_repo(
        self, repo: str, *, by: str | None, pinned: bool, now: datetime | None = None
    ) -> TrackedRepo:
        """Add `repo` (GitHub's spelling) to the tracked set; once pinned (/track), it stays so."""
        now = now or utcnow()
        t = tracked_repos.c
        stmt = self._insert(tracked_repos).values(
            repo_key=repo.lower(), repo=repo, pinned=pinned, added_by=by, added_at=now
        )
        stmt = stmt.on_conflict_do_update(
            index_elements=[t.repo_key],
            set_={"repo": stmt.excluded.repo, "pinned": sa.or_(t.pinned, stmt.excluded.pinned)},
        ).returning(*tracked_repos.c)
        async with self._write() as conn:
            return _tracked((await conn.execute(stmt)).mappings().one())

    async def untrack_repo(self, repo: str, *, now: datetime | None = None) -> bool:
        """Remove `repo` from the tracked set, every chat's list and alert opt-ins.

        False when it was not tracked. A chat whose list named only `repo` is deactivated
        (reason `untracked`); an alert opt-in left with nothing is removed. One transaction.
        """
        now = now or utcnow()
        key = repo.lower()
        stmt = (
            sa.delete(tracked_repos)
            .where(tracked_repos.c.repo_key == key)
            .returning(tracked_repos.c.repo_key)
        )
        async with self._write() as conn:
            removed = (await conn.execute(stmt)).first() is not None
            await conn.execute(sa.delete(repo_follows).where(repo_follows.c.repo_key == key))
            for table in (chats, alert_chats):
                # Lists are JSON text; the LIKE only narrows, the JSON decides.
                query = sa.select(table.c.platform, table.c.chat_id, table.c.repos).where(
                    sa.func.lower(table.c.repos).contains(key, autoescape=True)
                )
                for platform, chat_id, text in (await conn.execute(query)).all():
                    listed = [str(r) for r in json.loads(text)]
                    kept = [r for r in listed if r.lower() != key]
                    if len(kept) == len(listed):
                        continue
                    mine = sa.and_(table.c.platform == platform, table.c.chat_id == chat_id)
                    if kept:
                        values = {"repos": _repos_json(kept), "updated_at": now}
                        await conn.execute(sa.update(table).where(mine).values(**values))
                    elif table is alert_chats:
                        await conn.execute(sa.delete(table).where(mine))
                    else:
                        await conn.execute(
                            sa.update(table)
                            .where(mine)
                            .values(
                                active=False,
                                repos=None,
                                deactivated_at=now,
                                deactivation_reason="untracked",
                                updated_at=now,
                            )
                        )
            return removed

    async def followed_repos(self) -> set[str]:
        """Lower-case names of the repositories active chats follow (daily posts or alerts).

        A chat follows what it names; a chat on "all" also follows what it asked for (follows).
        """
        names: set[str] = set()
        on_all: set[tuple[str, str, str]] = set()
        daily = sa.select(chats.c.platform, chats.c.chat_id, chats.c.repos).where(
            chats.c.active.is_(True)
        )
        alerting = sa.select(alert_chats.c.platform, alert_chats.c.chat_id, alert_chats.c.repos)
        async with self._read() as conn:
            for kind, query in (("daily", daily), ("alerts", alerting)):
                for platform, chat_id, text in (await conn.execute(query)).all():
                    if text is None:
                        on_all.add((str(platform), str(chat_id), kind))
                    else:
                        names.update(str(repo).lower() for repo in json.loads(text))
            f = repo_follows.c
            rows = await conn.execute(sa.select(f.platform, f.chat_id, f.kind, f.repo_key))
            for platform, chat_id, kind, key in rows.all():
                if (str(platform), str(chat_id), str(kind)) in on_all:
                    names.add(str(key))
        return names

    async def follow_repos(
        self,
        platform: str,
        chat_id: str,
        repos: Sequence[str],
        *,
        kind: str,
        now: datetime | None = None,
    ) -> None:
        """Record that a chat asked for these repositories (`kind`: daily | alerts)."""
        keys = {repo.lower() for repo in repos}
        if not keys:
            return
        now = now or utcnow()
        f = repo_follows.c
        stmt = (
            self._insert(repo_follows)
            .values(
                [
                    {
                        "platform": platform,
                        "chat_id": chat_id,
                        "repo_key": key,
                        "kind": kind,
                        "created_at": now,
                    }
                    for key in sorted(keys)
                ]
            )
            .on_conflict_do_nothing(index_elements=[f.platform, f.chat_id, f.repo_key, f.kind])
        )
        async with self._write() as conn:
            await conn.execute(stmt)

    async def follows_of(self, platform: str, chat_id: str, *, kind: str) -> set[str]:
        """Lower-case names of the repositories a chat asked for (`kind`: daily | alerts)."""
        f = repo_follows.c
        query = sa.select(f.repo_key).where(
            f.platform == platform, f.chat_id == chat_id, f.kind == kind
        )
        async with self._read() as conn:
            return {str(key) for key in (await conn.execute(query)).scalars()}

    async def unfollow_repos(
        self, platform: str, chat_id: str, repos: Sequence[str] | None, *, kind: str
    ) -> None:
        """Forget what a chat asked for: these repositories, or all of `kind` (None)."""
        f = repo_follows.c
        stmt = sa.delete(repo_follows).where(
            f.platform == platform, f.chat_id == chat_id, f.kind == kind
        )
        if repos is not None:
            stmt = stmt.where(f.repo_key.in_({repo.lower() for repo in repos}))
        async with self._write() as conn:
            await conn.execute(stmt)

    # -- keyword watches ---------------------------------------------------------------------

    async def add_watches(
        self,
        platform: str,
        chat_id: str,
        words: Sequence[str],
        *,
        limit: int,
        now: datetime | None = None,
    ) -> WatchChange:
        """Add watch words to a chat (case-insensitively unique); all or nothing.

        Raises WatchLimitExceeded when the chat would have more than `limit` words.
        """
        now = now or utcnow()
        wanted: dict[str, str] = {}
        for word in words:
            wanted.setdefault(watch_key(word), word)
        w = watches.c
        mine = sa.and_(w.platform == platform, w.chat_id == chat_id)
        async with self._write() as conn:
            if self._dialect == "postgresql":
                # Row locks cannot stop two concurrent inserts from passing the limit together.
                await conn.execute(
                    sa.select(
                        sa.func.pg_advisory_xact_lock(sa.func.hashtext(f"{platform}:{chat_id}"))
                    )
                )
            rows = (await conn.execute(sa.select(w.word, w.word_key).where(mine))).all()
            have = {str(key): str(word) for word, key in rows}
            new = [word for key, word in wanted.items() if key not in have]
            existing = tuple(have[key] for key in wanted if key in have)
            if len(have) + len(new) > limit:
                raise WatchLimitExceeded(len(have), len(new), limit)
            if new:
                stmt = (
                    self._insert(watches)
                    .values(
                        [
                            {
                                "platform": platform,
                                "chat_id": chat_id,
                                "word": word,
                                "word_key": watch_key(word),
                                "created_at": now,
                            }
                            for word in new
                        ]
                    )
                    .on_conflict_do_nothing(index_elements=[w.platform, w.chat_id, w.word_key])
                )
                await conn.execute(stmt)
        return WatchChange(tuple(new), existing, len(have) + len(new))

    async def remove_watches(
        self, platform: str, chat_id: str, words: Sequence[str]
    ) -> tuple[str, ...]:
        """Remove watch words (any case); returns the stored spellings that were removed."""
        w = watches.c
        stmt = (
            sa.delete(watches)
            .where(
                w.platform == platform,
                w.chat_id == chat_id,
                w.word_key.in_({watch_key(word) for word in words}),
            )
            .returning(w.word)
        )
        async with self._write() as conn:
            return tuple(str(word) for word in (await conn.execute(stmt)).scalars())

    async def watches_of(self, platform: str, chat_id: str) -> tuple[str, ...]:
        """The chat's watch words, oldest first."""
        w = watches.c
        query = sa.select(w.word).where(w.platform == platform, w.chat_id == chat_id).order_by(w.id)
        async with self._read() as conn:
            return tuple(str(word) for word in (await conn.execute(query)).scalars())

    async def all_watches(self) -> dict[tuple[str, str], tuple[str, ...]]:
        """Every chat's watch words, oldest first: {(platform, chat_id): words}."""
        w = watches.c
        found: dict[tuple[str, str], list[str]] = {}
        query = sa.select(w.platform, w.chat_id, w.word).order_by(w.id)
        async with self._read() as conn:
            for platform, chat_id, word in (await conn.execute(query)).all():
                found.setdefault((str(platform), str(chat_id)), []).append(str(word))
        return {key: tuple(words) for key, words in found.items()}

    # -- release alerts: who opted in, what the poller has seen, what was sent ---------------

    async def alert_chat(self, platform: str, chat_id: str) -> AlertChat | None:
        """The chat's release-alert opt-in, or None when it has none."""
        a = alert_chats.c
        query = sa.select(alert_chats).where(a.platform == platform, a.chat_id == chat_id)
        async with self._read() as conn:
            row = (await conn.execute(query)).mappings().first()
        return None if row is None else _alert_chat(row)

    async def alert_chats(self) -> list[AlertChat]:
        """Every chat that opted into release alerts."""
        query = sa.select(alert_chats).order_by(alert_chats.c.since)
        async with self._read() as conn:
            return [_alert_chat(row) for row in (await conn.execute(query)).mappings()]

    async def enable_alerts(
        self,
        platform: str,
        chat_id: str,
        repos: Sequence[str] | None,
        *,
        by: str | None,
        now: datetime | None = None,
        prereleases: bool | None = None,
        thread_id: str | Keep | None = KEEP,
    ) -> AlertChat:
        """Opt a chat into release alerts of all tracked repositories (None) or the named ones.

        Named repositories add to a named set; "all" stays all. A new opt-in alerts releases
        published from now on only. `prereleases` True/False switches pre-release alerts on or
        off (None: as before; a new opt-in is stable only); `thread_id` moves alerts to that
        forum topic (None: the chat itself).
        """
        now = now or utcnow()
        extra: dict[str, Any] = {} if prereleases is None else {"prereleases": prereleases}
        if not isinstance(thread_id, Keep):
            extra["thread_id"] = thread_id
        wanted = None if repos is None else (_dedupe(repos) or None)
        a = alert_chats.c
        async with self._write() as conn:
            query = sa.select(alert_chats).where(a.platform == platform, a.chat_id == chat_id)
            if self._dialect == "postgresql":
                query = query.with_for_update()
            row = (await conn.execute(query)).mappings().first()
            if row is None:
                stmt = (
                    self._insert(alert_chats)
                    .values(
                        platform=platform,
                        chat_id=chat_id,
                        repos=_repos_json(wanted),
                        since=now,
                        enabled_by=by,
                        updated_at=now,
                        **extra,
                    )
                    .on_conflict_do_nothing(index_elements=[a.platform, a.chat_id])
                    .returning(*alert_chats.c)
                )
                inserted = (await conn.execute(stmt)).mappings().first()
                if inserted is not None:
                    return _alert_chat(inserted)
                row = (await conn.execute(query)).mappings().one()
            current = _alert_chat(row)
            if wanted is None or current.repos is None:
                merged = None
            else:
                merged = _dedupe([*current.repos, *wanted])
            stmt2 = (
                sa.update(alert_chats)
                .where(a.platform == platform, a.chat_id == chat_id)
                .values(repos=_repos_json(merged), updated_at=now, **extra)
                .returning(*alert_chats.c)
            )
            return _alert_chat((await conn.execute(stmt2)).mappings().one())

    async def disable_alerts(
        self,
        platform: str,
        chat_id: str,
        repos: Sequence[str] | None,
        *,
        tracked: Sequence[str] = (),
    ) -> AlertChat | None:
        """Stop all release alerts (None) or those of the named repositories.

        Returns what remains (None: no alerts left). Removing named repositories from "all"
        needs `tracked`, as for `unsubscribe`.
        """
        a = alert_chats.c
        mine = sa.and_(a.platform == platform, a.chat_id == chat_id)
        async with self._write() as conn:
            query = sa.select(alert_chats).where(mine)
            if self._dialect == "postgresql":
                query = query.with_for_update()
            row = (await conn.execute(query)).mappings().first()
            if row is None:
                return None
            current = _alert_chat(row)
            if repos is not None:
                if current.repos is None and not tracked:
                    return current
                unwanted = {r.strip().lower() for r in repos}
                base = current.repos if current.repos is not None else tuple(tracked)
                remaining = [r for r in base if r.lower() not in unwanted]
                if remaining:
                    stmt = (
                        sa.update(alert_chats)
                        .where(mine)
                        .values(repos=_repos_json(remaining), updated_at=utcnow())
                        .returning(*alert_chats.c)
                    )
                    return _alert_chat((await conn.execute(stmt)).mappings().one())
            await conn.execute(sa.delete(alert_chats).where(mine))
            return None

    async def release_first_seen(self, repo: str, *, now: datetime | None = None) -> datetime:
        """When the poller first saw `repo`'s releases (recorded now on the first call)."""
        now = now or utcnow()
        r = release_cursors.c
        stmt = (
            self._insert(release_cursors)
            .values(repo_key=repo.lower(), first_seen_at=now)
            .on_conflict_do_nothing(index_elements=[r.repo_key])
        )
        async with self._write() as conn:
            await conn.execute(stmt)
            query = sa.select(r.first_seen_at).where(r.repo_key == repo.lower())
            value = (await conn.execute(query)).scalar_one()
        assert isinstance(value, datetime)
        return value

    async def ensure_alerts(
        self,
        repo: str,
        tag: str,
        chats: Sequence[tuple[str, str]],
        message: str,
        *,
        published_at: datetime | None = None,
        now: datetime | None = None,
    ) -> int:
        """Create the missing pending alerts of one release for `chats`; returns how many were new.

        (platform, chat, repo, tag) is unique: a release is alerted once per chat, however many
        instances or restarts see it.
        """
        if not chats:
            return 0
        now = now or utcnow()
        rows = [
            {
                "platform": platform,
                "chat_id": chat_id,
                "repo": repo,
                "tag": tag,
                "published_at": published_at,
                "message": message,
                "status": PENDING,
                "attempts": 0,
                "created_at": now,
                "updated_at": now,
            }
            for platform, chat_id in dict.fromkeys(chats)
        ]
        c = alerts.c
        created = 0
        async with self._write() as conn:
            for start in range(0, len(rows), 300):
                stmt = (
                    self._insert(alerts)
                    .values(rows[start : start + 300])
                    .on_conflict_do_nothing(index_elements=[c.platform, c.chat_id, c.repo, c.tag])
                    .returning(c.id)
                )
                created += len((await conn.execute(stmt)).all())
        return created

    async def claim_alerts(
        self,
        *,
        platforms: Sequence[str] | None,
        worker: str,
        limit: int,
        lease_seconds: float,
        now: datetime | None = None,
    ) -> list[AlertClaim]:
        """Claim up to `limit` due alerts (pending, or their claim expired) for `worker`."""
        now = now or utcnow()
        where = [] if platforms is None else [alerts.c.platform.in_(list(platforms))]
        rows = await self._claim_rows(
            alerts, where, worker=worker, limit=limit, lease_seconds=lease_seconds, now=now
        )
        if not rows:
            return []
        # Alerts go to the topic the chat chose when sent (it may have moved since created).
        a = alert_chats.c
        chat_ids = sorted({str(row["chat_id"]) for row in rows})
        query = sa.select(a.platform, a.chat_id, a.thread_id).where(
            a.chat_id.in_(chat_ids), a.thread_id.is_not(None)
        )
        async with self._read() as conn:
            topics = {(p, c): t for p, c, t in (await conn.execute(query)).all()}
        return [_alert_claim(row, topics.get((row["platform"], row["chat_id"]))) for row in rows]

    async def mark_alert_sent(
        self, claim: AlertClaim, message_ids: list[str], *, now: datetime | None = None
    ) -> bool:
        """Record the alert as sent; False when the claim was no longer this worker's."""
        sent = _sent(message_ids, now)
        return await self._finish_claim(alerts, claim, sent) is not None

    async def mark_alert_failed(
        self,
        claim: AlertClaim,
        error: str,
        *,
        final: bool,
        retry_at: datetime | None = None,
    ) -> bool:
        """Record a failed attempt: `final` gives up; otherwise pending again from `retry_at`."""
        failed = _failed(error, final=final, retry_at=retry_at)
        return await self._finish_claim(alerts, claim, failed) is not None

    async def alert_status(self, platform: str, chat_id: str, repo: str, tag: str) -> str | None:
        """The status of one chat's alert of one release, or None when there is none."""
        c = alerts.c
        query = sa.select(c.status).where(
            c.platform == platform, c.chat_id == chat_id, c.repo == repo, c.tag == tag
        )
        async with self._read() as conn:
            value = (await conn.execute(query)).scalar_one_or_none()
        return None if value is None else str(value)

    async def alert_counts(self) -> dict[str, int]:
        """How many release alerts are in each status."""
        query = sa.select(alerts.c.status, sa.func.count()).group_by(alerts.c.status)
        async with self._read() as conn:
            return {str(s): int(n) for s, n in (await conn.execute(query)).all()}


def _aware(value: object) -> datetime | None:
    """A datetime from a query, aware UTC (SQLite may hand back naive values or stored text)."""
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    if not isinstance(value, datetime):
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def watch_key(word: str) -> str:
    """The case-insensitive identity of a watch word."""
    return " ".join(word.split()).casefold()


def _tracked(row: RowMapping) -> TrackedRepo:
    return TrackedRepo(
        repo=row["repo"],
        pinned=bool(row["pinned"]),
        added_by=row["added_by"],
        added_at=row["added_at"],
    )


def _alert_chat(row: RowMapping) -> AlertChat:
    repos = row["repos"]
    return AlertChat(
        platform=row["platform"],
        chat_id=row["chat_id"],
        repos=None if repos is None else tuple(json.loads(repos)),
        since=row["since"],
        enabled_by=row["enabled_by"],
        prereleases=bool(row["prereleases"]),
        thread_id=row["thread_id"],
    )


def _alert_claim(row: Mapping[str, Any], thread_id: str | None = None) -> AlertClaim:
    return AlertClaim(
        id=row["id"],
        platform=row["platform"],
        chat_id=row["chat_id"],
        repo=row["repo"],
        tag=row["tag"],
        message=row["message"],
        worker=row["claimed_by"],
        attempts=row["attempts"],
        lease_until=row["lease_until"],
        sent_ids=_ids(row["message_ids"]),
        thread_id=thread_id,
    )


def _push_target(row: RowMapping) -> PushTargetRow:
    return PushTargetRow(
        id=str(row["id"]),
        url=str(row["url"]),
        added_by=row["added_by"],
        created_at=row["created_at"],
    )
