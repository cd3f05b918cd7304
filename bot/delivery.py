"""The one delivery engine: each chat gets each part of a digest once, within the rate limits.

Delivery rows (platform, chat, day) are unique; workers claim them with a lease, send, and mark
them. A worker that dies leaves claims that expire and are claimed again by another, so nothing
is lost; a claim that was taken over cannot be marked by its old holder.

A digest is several messages. The row records the ids of the parts the chat has accepted, after
each one; any retry (a rate-limit storm, a timeout, a restart, another instance taking over the
claim) resumes at the first part not yet accepted, on every platform alike (`send_parts`, used
by release alerts too). The only window for a repeat is one part: a crash, or a reply lost on
the way back, between the platform accepting it and the row recording it. Pacing is the
sender's gate, and nowhere else.

The same machinery delivers the weekly roll-up (`kind=WEEKLY`, text from `markdown_for`). A chat
that opted into the chart gets the day's picture right after its daily post, best effort: the
row is marked first, so a picture that fails is logged and never makes the digest go out again.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Protocol

from bot import metrics
from bot.logs import redact
from bot.platforms.base import ChatGone, ChatMoved, RetryLater, Sender, photo_sender
from bot.store import DAILY, AlertClaim, Chat, DeliveryClaim, Store
from collectors.activity import DayActivity
from summarizer.digest import Digest, render_markdown
from summarizer.watch import with_watch_section

log = logging.getLogger(__name__)

# A part that failed for no stated reason (a timeout, a lost connection) is tried again at once
# this many times, after these pauses, before the claim is handed back for later.
INLINE_RETRY_PAUSES = (0.5, 2.0)
# RetryLater answers within one attempt before the claim is handed back for later.
MAX_RATE_LIMIT_ROUNDS = 8
# Transient failures wait longer each time: 10 s, 30 s, 90 s, 270 s, ...
RETRY_BASE_SECONDS = 10.0

# A chat's text of a non-daily delivery (the weekly roll-up), in the readers' Markdown.
MarkdownFor = Callable[[Chat], Awaitable[str]]


# (the chat's repositories, what it added, its watch words)
_RenderKey = tuple[tuple[str, ...] | None, tuple[str, ...], tuple[str, ...]]


class DigestSource(Protocol):
    """What fan-out needs of the Pipeline: the day (made once) and a chat's digest of it."""

    async def day(self, day: date) -> tuple[Digest, DayActivity]:
        """The full digest and activity of `day`, archived or generated once."""
        ...

    async def digest_for(
        self, day: date, repos: Sequence[str] | None, *, added: Sequence[str] = ()
    ) -> Digest:
        """The digest of `day` for `repos` (None: the shared set), plus the chat's `added`."""
        ...


@dataclass
class FanOutResult:
    """What one fan-out did: chats sent to, given up on, deactivated, skipped, left to retry."""

    sent: int = 0
    failed: int = 0
    deactivated: int = 0
    skipped: int = 0
    retrying: int = 0
    taken_over: int = 0
    errors: list[str] = field(default_factory=list)
    photos: int = 0  # charts sent after the daily post (best effort, not counted in `sent`)

    def add(self, other: FanOutResult) -> None:
        """Accumulate another result into this one."""
        self.photos += other.photos
        self.sent += other.sent
        self.failed += other.failed
        self.deactivated += other.deactivated
        self.skipped += other.skipped
        self.retrying += other.retrying
        self.taken_over += other.taken_over
        self.errors.extend(other.errors)


def one_line(error: BaseException | str, limit: int = 300) -> str:
    """An error as one short line for logs and the database, with bot tokens cut out."""
    text = error if isinstance(error, str) else (str(error) or type(error).__name__)
    if isinstance(error, BaseException) and str(error):
        text = f"{type(error).__name__}: {error}"
    text = redact(" ".join(text.split()))
    return text if len(text) <= limit else text[: limit - 1] + "…"


def retry_delay(attempts: int) -> float:
    """Seconds before the next try after `attempts` failed attempts."""
    return RETRY_BASE_SECONDS * float(3 ** max(0, attempts - 1))


Claim = DeliveryClaim | AlertClaim


@dataclass
class PartsOutcome:
    """How sending a claim's parts ended.

    `status`: "sent" (every part accepted; `ids` holds them all), "gone" (the chat is gone),
    "later" (rate limited for longer than we wait; `retry_after`), "error" (a transient failure
    that outlived the inline retries), "lost" (the claim was taken over), "stopped" (shutting
    down). `claim` is the newest version of the claim (progress recorded); `moved_to` is the
    chat's new id when it moved while sending.
    """

    status: str
    claim: Claim
    ids: list[str]
    error: str = ""
    retry_after: float = 0.0
    moved_to: str | None = None


async def send_parts(
    store: Store,
    sender: Sender,
    claim: Claim,
    markdown: str,
    *,
    max_wait: float,
    hold: Callable[[Claim], Awaitable[Claim | None]] | None = None,
    stopping: Callable[[], bool] = lambda: False,
    retry_pauses: Sequence[float] = INLINE_RETRY_PAUSES,
    to: str | None = None,
) -> PartsOutcome:
    """Send `markdown` to the claim's chat from the first part it has not accepted yet.

    Each accepted part is recorded on the claim's row before the next is sent, so whatever
    ends this attempt, the next one (any worker, any instance) continues after it. Every
    message waits at the sender's gate; a 429 pauses the gate for every chat of the platform.
    `hold` renews the lease when it runs short (None: the claim was lost); a part that fails
    for no stated reason is tried again after each of `retry_pauses` (a lost reply may thus
    deliver that one part twice: Telegram has no idempotency key). `to` is the address when
    the chat posts into a forum topic (`chat/topic`, see `bot.store.chat_address`).
    """
    parts = sender.render_for(claim.chat_id, markdown)
    ids = list(claim.sent_ids)[: len(parts)]
    target = to or claim.chat_id
    moved_to: str | None = None
    rounds = 0
    failures = 0
    while len(ids) < len(parts):
        if stopping():
            return PartsOutcome("stopped", claim, ids, moved_to=moved_to)
        if hold is not None:
            held = await hold(claim)
            if held is None:
                return PartsOutcome("lost", claim, ids, moved_to=moved_to)
            claim = held
        try:
            async with sender.gate.slot(target):
                message_id = await sender.send_part(target, parts[len(ids)])
        except ChatGone as exc:
            return PartsOutcome("gone", claim, ids, one_line(exc), moved_to=moved_to)
        except ChatMoved as exc:
            log.info("%s chat %s moved to %s", sender.platform, target, exc.new_chat_id)
            target = moved_to = exc.new_chat_id
            continue
        except RetryLater as exc:
            rounds += 1
            if exc.retry_after > max_wait or rounds >= MAX_RATE_LIMIT_ROUNDS:
                return PartsOutcome(
                    "later", claim, ids, one_line(exc), exc.retry_after, moved_to=moved_to
                )
            # Flood control covers the whole bot: every chat of the platform waits.
            sender.gate.pause(exc.retry_after)
            log.info("%s asks to wait %.1f s", sender.platform, exc.retry_after)
            continue
        except Exception as exc:
            if failures >= len(retry_pauses):
                return PartsOutcome("error", claim, ids, one_line(exc), moved_to=moved_to)
            log.info("%s part to %s failed, trying again: %s", sender.platform, target, exc)
            await asyncio.sleep(retry_pauses[failures])
            failures += 1
            continue
        ids.append(message_id)
        failures = 0
        if len(ids) < len(parts):
            recorded = await store.record_parts(claim, ids)
            if recorded is None:
                return PartsOutcome("lost", claim, ids, moved_to=moved_to)
            claim = recorded
    return PartsOutcome("sent", claim, ids, moved_to=moved_to)


def running_clock(start: datetime) -> Callable[[], datetime]:
    """A clock that starts at `start` and advances with real time (leases stay meaningful)."""
    origin = time.monotonic()
    return lambda: start + timedelta(seconds=time.monotonic() - origin)


def chart_caption(day: date) -> str:
    """The caption of the day's picture (plain text, far below every platform's limit)."""
    return f"{day.isoformat()} 动态图：各仓库合并的 PR、新 issue 与改动行数，以及近 14 天的趋势。"


class _DayChart:
    """The day's chart: drawn at most once per fan-out, and only when a chat wants it."""

    def __init__(self, store: Store, day: date) -> None:
        self._store = store
        self._day = day
        self._task: asyncio.Task[bytes | None] | None = None
        self.caption = chart_caption(day)

    async def png(self) -> bytes | None:
        """The PNG, or None when the day is not archived or the drawing failed (logged once)."""
        if self._task is None:
            self._task = asyncio.ensure_future(self._draw())
        return await asyncio.shield(self._task)

    async def _draw(self) -> bytes | None:
        # Imported here: Pillow and the font scan load only in processes that draw a chart.
        from bot.archive import chart_for

        try:
            return await chart_for(self._store, self._day)
        except Exception:
            log.exception(
                "the chart of %s could not be drawn; chats get the digest only", self._day
            )
            return None


@dataclass
class _Options:
    worker: str
    clock: Callable[[], datetime]
    batch_size: int
    concurrency: int
    lease_seconds: float
    max_attempts: int
    max_wait: float
    due_before: datetime | None
    stop: asyncio.Event | None
    kind: str = DAILY
    markdown_for: MarkdownFor | None = None
    retry_pauses: Sequence[float] = INLINE_RETRY_PAUSES
    preface: str = ""


class _Broadcast:
    """One platform's share of a fan-out: claim in batches, send with bounded concurrency."""

    def __init__(
        self,
        store: Store,
        pipeline: DigestSource,
        sender: Sender,
        day: date,
        chats: Mapping[tuple[str, str], Chat],
        options: _Options,
        watches: Mapping[tuple[str, str], tuple[str, ...]] | None = None,
        chart: _DayChart | None = None,
    ) -> None:
        self.store = store
        self.chart = chart
        self.watches = dict(watches or {})
        # Each (repos, watch words) is rendered once per fan-out, not once per chat.
        self.rendered: dict[_RenderKey, tuple[Digest, str]] = {}
        self.pipeline = pipeline
        self.sender = sender
        self.platform = sender.platform
        self.day = day
        self.chats = dict(chats)
        self.o = options
        self.result = FanOutResult()

    def _stopping(self) -> bool:
        return self.o.stop is not None and self.o.stop.is_set()

    async def run(self) -> FanOutResult:
        queue: asyncio.Queue[DeliveryClaim | None] = asyncio.Queue(maxsize=self.o.batch_size)
        workers = [asyncio.create_task(self._work(queue)) for _ in range(self.o.concurrency)]
        try:
            while not self._stopping():
                claims = await self.store.claim_deliveries(
                    self.day,
                    platform=self.platform,
                    worker=self.o.worker,
                    limit=self.o.batch_size,
                    lease_seconds=self.o.lease_seconds,
                    due_before=self.o.due_before,
                    now=self.o.clock(),
                    kind=self.o.kind,
                )
                if not claims:
                    break
                for claim in claims:
                    await queue.put(claim)
            for _ in workers:
                await queue.put(None)
            await asyncio.gather(*workers)
        finally:
            # Cancelled (the process is going down) or failed: stop the senders; their claims
            # stay leased and another worker takes them once the lease runs out.
            for task in workers:
                task.cancel()
            await asyncio.gather(*workers, return_exceptions=True)
        return self.result

    async def _work(self, queue: asyncio.Queue[DeliveryClaim | None]) -> None:
        while (claim := await queue.get()) is not None:
            if self._stopping():
                # Shutting down: hand untried claims back instead of leaving them leased.
                await self.store.release_claim(claim)
                continue
            try:
                await self._deliver(claim)
            except Exception as exc:  # the store failed; the lease will expire and retry it
                log.exception("delivery %s:%s failed unexpectedly", claim.platform, claim.chat_id)
                self.result.errors.append(one_line(exc))

    async def _chat(self, claim: DeliveryClaim) -> Chat | None:
        chat = self.chats.get((claim.platform, claim.chat_id))
        if chat is None:
            chat = await self.store.get_chat(claim.platform, claim.chat_id)
        return chat

    async def _deliver(self, claim: DeliveryClaim) -> None:
        chat = await self._chat(claim)
        if chat is None or not chat.active:
            await self.store.mark_failed(claim, "chat is no longer subscribed", final=True)
            metrics.delivery(claim.platform, "skipped")
            self.result.skipped += 1
            metrics.delivery(claim.platform, "skipped")
            return
        if claim.attempts > self.o.max_attempts:
            await self._give_up(claim, "too many attempts (worker crashes?)")
            return
        try:
            markdown = self.o.preface + await self._markdown(chat)
        except Exception as exc:
            await self._failed(claim, f"digest: {one_line(exc)}")
            return
        await self._send(claim, chat, markdown)

    async def _markdown(self, chat: Chat) -> str:
        """The chat's digest in Markdown, with its `### 关注` section when it watches words."""
        if self.o.markdown_for is not None:
            return await self.o.markdown_for(chat)
        # What this chat added itself (its own sections, after the shared ones): only its posts.
        follows = await self.store.follows_of(chat.platform, chat.chat_id, kind="daily")
        added = tuple(sorted(follows))
        digest = await self.pipeline.digest_for(self.day, chat.repos, added=added)
        words = self.watches.get(chat.key, ())
        key = (chat.repos, added, words)
        cached = self.rendered.get(key)
        if cached is not None and cached[0] is digest:
            return cached[1]
        shown = digest
        if words:
            _full, activity = await self.pipeline.day(self.day)
            shown = with_watch_section(digest, activity, words)
        text = render_markdown(shown)
        self.rendered[key] = (digest, text)
        return text

    async def _send(self, claim: DeliveryClaim, chat: Chat, markdown: str) -> None:
        outcome = await send_parts(
            self.store,
            self.sender,
            claim,
            markdown,
            max_wait=self.o.max_wait,
            hold=self._hold,
            stopping=self._stopping,
            retry_pauses=self.o.retry_pauses,
            to=chat.address,
        )
        assert isinstance(outcome.claim, DeliveryClaim)
        claim = outcome.claim
        if outcome.moved_to is not None:
            await self.store.move_chat(chat.platform, chat.chat_id, outcome.moved_to)
        if outcome.status == "sent":
            # Recorded first: the window in which a crash repeats a post stays as short as it can.
            if await self.store.mark_delivered(claim, outcome.ids):
                metrics.delivery(chat.platform, "sent")
                metrics.posted(self.day)
                self.result.sent += 1
                if chat.chart and self.chart is not None:
                    await self._send_chart(outcome.moved_to or chat.address, self.chart)
            else:
                metrics.delivery(chat.platform, "taken_over")
                self.result.taken_over += 1
                log.warning("delivery %s:%s was taken over while sending", *chat.key)
        elif outcome.status == "gone":
            where = outcome.moved_to or chat.chat_id
            await self.store.deactivate(chat.platform, where, outcome.error)
            await self.store.mark_failed(claim, f"chat gone: {outcome.error}", final=True)
            metrics.delivery(chat.platform, "chat_gone")
            self.result.deactivated += 1
            log.info("chat %s:%s is gone, deactivated: %s", *chat.key, outcome.error)
        elif outcome.status == "later":
            await self._later(claim, outcome.error, max(outcome.retry_after, 1.0))
        elif outcome.status == "error":
            await self._failed(claim, outcome.error)
        elif outcome.status == "stopped":
            await self.store.release_claim(claim)
        else:  # lost: another worker holds the claim now and continues after our parts
            self.result.taken_over += 1

    async def _send_chart(self, chat_id: str, chart: _DayChart) -> None:
        """The day's picture after the chat's digest; best effort: failures are only logged."""
        sender = photo_sender(self.sender)
        if sender is None:
            return
        try:
            png = await chart.png()
            if png is None:
                return
            async with self.sender.gate.slot(chat_id):
                await sender.send_photo(chat_id, png, chart.caption)
            self.result.photos += 1
        except RetryLater as exc:
            # Flood control covers the whole bot: later digests wait; this picture is skipped.
            if exc.retry_after <= self.o.max_wait:
                self.sender.gate.pause(exc.retry_after)
            log.warning("chart for %s:%s skipped: %s", self.platform, chat_id, one_line(exc))
        except Exception as exc:
            log.warning(
                "chart for %s:%s could not be sent: %s", self.platform, chat_id, one_line(exc)
            )

    async def _hold(self, claim: Claim) -> Claim | None:
        """The claim with enough lease left to send, renewed when short; None when lost."""
        assert isinstance(claim, DeliveryClaim)
        left = (claim.lease_until - self.o.clock()).total_seconds()
        if left > self.o.lease_seconds / 2:
            return claim
        return await self.store.renew_claim(claim, self.o.lease_seconds, now=self.o.clock())

    async def _failed(self, claim: DeliveryClaim, error: str) -> None:
        if claim.attempts >= self.o.max_attempts:
            await self._give_up(claim, error)
        else:
            await self._later(claim, error, retry_delay(claim.attempts))

    async def _later(self, claim: DeliveryClaim, error: str, delay: float) -> None:
        retry_at = self.o.clock() + timedelta(seconds=delay)
        await self.store.mark_failed(claim, error, final=False, retry_at=retry_at)
        self.result.retrying += 1
        metrics.delivery(claim.platform, "retrying")
        log.warning("delivery %s:%s will be retried: %s", claim.platform, claim.chat_id, error)

    async def _give_up(self, claim: DeliveryClaim, error: str) -> None:
        await self.store.mark_failed(claim, error, final=True)
        self.result.failed += 1
        metrics.delivery(claim.platform, "failed")
        self.result.errors.append(f"{claim.platform}:{claim.chat_id}: {error}")
        log.error("delivery %s:%s failed for good: %s", claim.platform, claim.chat_id, error)


async def fan_out(
    store: Store,
    pipeline: DigestSource,
    senders: Mapping[str, Sender],
    day: date,
    *,
    worker: str,
    now: datetime,
    chats: Sequence[Chat] | None = None,
    due_at: Callable[[Chat], datetime | None] | None = None,
    ensure: bool = True,
    due_before: datetime | None = None,
    batch_size: int = 50,
    concurrency: int = 8,
    lease_seconds: float = 120.0,
    max_attempts: int = 5,
    max_wait: float = 600.0,
    stop: asyncio.Event | None = None,
    clock: Callable[[], datetime] | None = None,
    kind: str = DAILY,
    markdown_for: MarkdownFor | None = None,
    retry_pauses: Sequence[float] = INLINE_RETRY_PAUSES,
    preface: str = "",
) -> FanOutResult:
    """Deliver `day`'s digest to `chats` (default: every active chat) that have not had it.

    Makes sure the digest exists first (generated once), creates missing delivery rows, then
    claims and sends per platform at the platform's rate (`ensure=False`: the caller made the
    rows; `chats` then only saves looking chats up). `now` starts the clock used for leases
    (`clock` overrides it); `due_before` only claims rows due by then. `stop` ends claiming: sends
    in flight finish, untried claims are handed back. Chats with `chart` on get the day's
    picture after their digest where the platform can post one.

    Another `kind` (the weekly roll-up) delivers the text of `markdown_for(chat)` instead, on
    rows of that kind, with no picture. `preface` (Markdown) goes before every chat's text: the
    line saying a post is late (补发).
    """
    daily = kind == DAILY
    if not daily and markdown_for is None:
        raise ValueError(f"a {kind} delivery needs markdown_for")
    if daily:
        await pipeline.day(day)
    targets = list(chats) if chats is not None else await store.active_chats()
    result = FanOutResult()
    served = [c for c in targets if c.platform in senders and c.active]
    result.skipped = len(targets) - len(served)
    if ensure:
        await store.ensure_deliveries(day, served, due_at=due_at, now=now, kind=kind)
    options = _Options(
        worker=worker,
        clock=clock or running_clock(now),
        batch_size=max(1, batch_size),
        concurrency=max(1, concurrency),
        lease_seconds=lease_seconds,
        max_attempts=max(1, max_attempts),
        max_wait=max_wait,
        due_before=due_before,
        stop=stop,
        kind=kind,
        markdown_for=markdown_for,
        retry_pauses=tuple(retry_pauses),
        preface=preface,
    )
    by_key = {c.key: c for c in served}
    watches = await store.all_watches() if daily else {}
    chart = _DayChart(store, day) if daily else None
    broadcasts = [
        _Broadcast(store, pipeline, sender, day, by_key, options, watches, chart)
        for sender in senders.values()
    ]
    for part in await asyncio.gather(*(b.run() for b in broadcasts)):
        result.add(part)
    log.info(
        "%s fan-out of %s: %d sent, %d failed, %d deactivated, %d skipped, %d to retry",
        kind,
        day,
        result.sent,
        result.failed,
        result.deactivated,
        result.skipped,
        result.retrying,
    )
    return result
