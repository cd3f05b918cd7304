"""The Telegram adapter: updates → CommandService calls, Replies and digests → Telegram messages.

It translates only. Markdown is rendered to plain text plus message entities by
telegramify-markdown (no parse_mode, so nothing can be "unbalanced"), split at section or
paragraph boundaries into messages of at most 4096 UTF-16 code units, and sent within Telegram's
broadcast limits (about 30 messages/s overall, 20 per minute per group).
"""

from __future__ import annotations

import asyncio
import logging
import math
import re
import time
import warnings
from collections import defaultdict, deque
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from telegram import Bot as TelegramBot
from telegram import (
    BotCommand,
    Chat,
    LinkPreviewOptions,
    Message,
    MessageEntity,
    ReplyParameters,
    Update,
)
from telegram.constants import ChatMemberStatus, ChatType
from telegram.error import BadRequest, ChatMigrated, Forbidden, RetryAfter, TelegramError
from telegram.ext import (
    Application,
    ApplicationBuilder,
    CommandHandler,
    ContextTypes,
    MessageHandler,
    filters,
)
from telegram.warnings import PTBDeprecationWarning
from telegramify_markdown import MessageEntity as MdEntity
from telegramify_markdown import RenderConfig, convert, split_entities, utf16_len

from bot.commands import ChatContext, ChatKind, CommandService, Reply
from bot.senders import ChatGone, RetryLater
from bot.settings import Settings

if TYPE_CHECKING:
    from telegram import Bot

    from bot.commands import ChatStore, DigestSource

log = logging.getLogger(__name__)

PLATFORM = "telegram"
UPDATE_TYPES = ["message", "channel_post"]
MAX_MESSAGE = 4096
# sendPhoto: a caption of at most 1024 characters (UTF-16 units, to be safe) and a file of at
# most 10 MB.
MAX_CAPTION = 1024
MAX_PHOTO_BYTES = 10 * 1000 * 1000
ADMIN_CACHE_SECONDS = 60.0
COMMAND_FAILED = "出错了，请稍后再试。"
# Broken chats answer with these; the subscription is dropped instead of retried forever.
_GONE_MARKERS = (
    "chat not found",
    "bot was blocked",
    "bot was kicked",
    "user is deactivated",
    "not a member",
    "can't initiate conversation",
    "group chat was deactivated",
    "chat_write_forbidden",
    "not enough rights to send",
    "have no rights to send",
    "peer_id_invalid",
)
_FENCE = re.compile(r"^\s{0,3}(`{3,}|~{3,})")
_HEADING = re.compile(r"^\s{0,3}#{1,6}\s")
_SYMBOLS = RenderConfig.isolated()
_FORMATTING = frozenset({"bold", "italic", "underline", "strikethrough", "spoiler"})
_CODE = frozenset({"code", "pre"})
_QUOTES = frozenset({"blockquote", "expandable_blockquote"})


# -- rendering and splitting -----------------------------------------------------------------


@dataclass(frozen=True)
class Rendered:
    """One Telegram message: plain text and its entities (offsets in UTF-16 code units)."""

    text: str
    entities: tuple[MdEntity, ...]

    @property
    def size(self) -> int:
        """The length Telegram checks against its 4096 limit."""
        return utf16_len(self.text)

    def api_entities(self) -> list[MessageEntity]:
        """The entities as python-telegram-bot objects."""
        return [
            MessageEntity(
                type=e.type, offset=e.offset, length=e.length, url=e.url, language=e.language
            )
            for e in self.entities
        ]


def render_messages(markdown: str, limit: int = MAX_MESSAGE) -> list[Rendered]:
    """Render Markdown for Telegram and split it into messages of at most `limit` UTF-16 units.

    Splits fall between sections (headings), else between paragraphs, and only for a single
    paragraph longer than a message at a line break, with entities clipped to each part.
    """
    return list(_render_cached(markdown, limit))


@lru_cache(maxsize=64)
def _render_cached(markdown: str, limit: int) -> tuple[Rendered, ...]:
    # A fan-out sends the same few digests to every chat: render each once, not per chat,
    # so the event loop stays free to send on time.
    return tuple(_render_uncached(markdown, limit))


def _render_uncached(markdown: str, limit: int) -> list[Rendered]:
    pieces: list[Rendered] = []
    for section in _sections(markdown):
        whole = _render(section)
        if whole.size <= limit:
            pieces.append(whole)
            continue
        for paragraph in _paragraphs(section):
            part = _render(paragraph)
            if part.size <= limit:
                pieces.append(part)
            else:
                pieces.extend(
                    _trimmed(text, tuple(ents))
                    for text, ents in split_entities(part.text, list(part.entities), limit)
                )
    return _pack([p for p in pieces if p.text], limit)


def _render(markdown: str) -> Rendered:
    text, entities = convert(markdown, latex_escape=False, config=_SYMBOLS)
    return _trimmed(text, tuple(nestable(entities)))


def nestable(entities: Sequence[MdEntity]) -> list[MdEntity]:
    """Entities Telegram accepts together, per the Bot API's nesting rules.

    Code and pre contain nothing and are inside nothing but quotes: bold/italic/... around them
    are cut around them, and code inside a link loses its code look. Quotes do not nest; other
    entities (links, ...) never contain each other; partial overlaps are dropped.
    """
    others = [e for e in entities if e.type not in _FORMATTING | _CODE | _QUOTES]
    kept_others: list[MdEntity] = []
    for entity in sorted(others, key=_span_order):
        if not any(_overlaps(entity, other) for other in kept_others):
            kept_others.append(entity)
    code = [
        e
        for e in entities
        if e.type in _CODE and not any(_overlaps(e, other) for other in kept_others)
    ]
    kept_code: list[MdEntity] = []
    for entity in sorted(code, key=_span_order):
        if not any(_overlaps(entity, other) for other in kept_code):
            kept_code.append(entity)
    quotes: list[MdEntity] = []
    for entity in sorted((e for e in entities if e.type in _QUOTES), key=_span_order):
        if not any(_overlaps(entity, other) for other in quotes):
            quotes.append(entity)
    formatting: list[MdEntity] = []
    for entity in (e for e in entities if e.type in _FORMATTING):
        formatting.extend(_cut_around(entity, kept_code))
    return sorted(quotes + kept_others + kept_code + formatting, key=_span_order)


def _span_order(entity: MdEntity) -> tuple[int, int]:
    return (entity.offset, -entity.length)


def _overlaps(a: MdEntity, b: MdEntity) -> bool:
    return a.offset < b.offset + b.length and b.offset < a.offset + a.length


def _cut_around(entity: MdEntity, holes: Sequence[MdEntity]) -> list[MdEntity]:
    """`entity` minus the ranges of `holes` (sorted, non-overlapping), as one or more entities."""
    pieces: list[MdEntity] = []
    start, end = entity.offset, entity.offset + entity.length
    for hole in holes:
        hole_start, hole_end = hole.offset, hole.offset + hole.length
        if hole_end <= start or hole_start >= end:
            continue
        if hole_start > start:
            pieces.append(entity.copy_with(offset=start, length=hole_start - start))
        start = max(start, hole_end)
    if end > start:
        pieces.append(entity.copy_with(offset=start, length=end - start))
    return pieces


def _trimmed(text: str, entities: tuple[MdEntity, ...]) -> Rendered:
    """Strip surrounding whitespace (Telegram would) and keep entities aligned to what is left."""
    lead = utf16_len(text) - utf16_len(text.lstrip())
    text = text.strip()
    size = utf16_len(text)
    kept: list[MdEntity] = []
    for entity in entities:
        start = max(entity.offset - lead, 0)
        end = min(entity.offset + entity.length - lead, size)
        if end > start:
            kept.append(entity.copy_with(offset=start, length=end - start))
    return Rendered(text, tuple(kept))


def _pack(pieces: Sequence[Rendered], limit: int) -> list[Rendered]:
    """Join consecutive pieces with a blank line while they fit in one message."""
    messages: list[Rendered] = []
    for piece in pieces:
        if messages and messages[-1].size + 2 + piece.size <= limit:
            head = messages[-1]
            shift = head.size + 2
            moved = tuple(e.copy_with(offset=e.offset + shift) for e in piece.entities)
            messages[-1] = Rendered(f"{head.text}\n\n{piece.text}", head.entities + moved)
        else:
            messages.append(piece)
    return messages


def _blocks(markdown: str, starts_block: Callable[[str, str | None], bool]) -> list[str]:
    """Cut Markdown into blocks where `starts_block(line, previous)` holds, never inside fences."""
    blocks: list[list[str]] = [[]]
    fence: str | None = None
    previous: str | None = None
    for line in markdown.splitlines():
        marker = _FENCE.match(line)
        if fence is None and starts_block(line, previous) and blocks[-1]:
            blocks.append([])
        if marker and fence is None:
            fence = marker[1][0]
        elif marker and fence is not None and marker[1][0] == fence:
            fence = None
        blocks[-1].append(line)
        previous = line if fence is None else None
    return [text for text in ("\n".join(b).strip() for b in blocks) if text]


def _sections(markdown: str) -> list[str]:
    """Blocks starting at each heading; a heading with nothing under it joins the next block."""
    raw = _blocks(markdown, lambda line, _prev: bool(_HEADING.match(line)))
    merged: list[str] = []
    carry = ""
    for block in raw:
        block = f"{carry}\n{block}" if carry else block
        carry = ""
        if all(_HEADING.match(line) or not line.strip() for line in block.splitlines()):
            carry = block
        else:
            merged.append(block)
    if carry:
        merged.append(carry)
    return merged


def _paragraphs(section: str) -> list[str]:
    """Blocks separated by blank lines (outside code fences)."""
    return _blocks(
        section, lambda line, prev: bool(line.strip()) and prev is not None and not prev.strip()
    )


# -- pacing ----------------------------------------------------------------------------------


class RateGate:
    """Keeps sends under `per_second` overall and `per_group_minute` per group chat.

    Sends are spaced evenly (no bursts) at `margin` of the limit, and a log of the sends that
    actually went out caps any second at `margin` of the limit too: after an event-loop stall
    the delayed sends cannot bunch up into a second Telegram would count as too many.
    `pause()` holds every send after a 429.
    """

    def __init__(
        self,
        per_second: float = 30.0,
        per_group_minute: int = 20,
        *,
        margin: float = 0.95,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._per_second = per_second
        self._margin = margin
        self._interval = 1.0
        self._cap = 1
        self.share(1)
        self._span = 1.0
        self._group_limit = per_group_minute
        self._group_span = 60.0 / margin
        self._clock = clock
        self._next = 0.0
        self._sent: deque[float] = deque()
        self._admission = asyncio.Lock()
        self._groups: dict[str, deque[float]] = defaultdict(deque)

    def share(self, instances: int) -> None:
        """Pace at 1/`instances` of the limit: running instances split one bot's budget.

        Per-group limits stay whole: a chat's delivery is held by one instance at a time.
        """
        rate = self._per_second * self._margin / max(1, instances)
        self._interval = 1.0 / rate
        # Any one second holds at most this many sends, whatever stalls delayed them; the gap
        # to `per_second` absorbs jitter between our clock and the server's (about 70 ms).
        self._cap = max(1, math.floor(rate))

    def reserve(self, chat_id: str) -> float:
        """Book the next send slot for `chat_id`; returns how long to wait for it."""
        now = self._clock()
        earliest = now
        window = self._groups[chat_id] if chat_id.startswith("-") else None
        if window is not None:
            while window and window[0] <= now - self._group_span:
                window.popleft()
            if len(window) >= self._group_limit:
                earliest = max(earliest, window[-self._group_limit] + self._group_span)
        slot = max(earliest, self._next)
        self._next = slot + self._interval
        if window is not None:
            window.append(slot)
        return slot - now

    def admit(self) -> float:
        """Log a send going out now and return 0, or return how long until one may."""
        now = self._clock()
        while self._sent and self._sent[0] <= now - self._span:
            self._sent.popleft()
        if len(self._sent) >= self._cap:
            return self._sent[0] + self._span - now
        self._sent.append(now)
        return 0.0

    async def wait(self, chat_id: str) -> None:
        """Sleep until this send may go out."""
        delay = self.reserve(chat_id)
        if delay > 0:
            await asyncio.sleep(delay)
        # One waiter at a time (FIFO), so the slot a wait frees up is the waiter's own.
        async with self._admission:
            while (delay := self.admit()) > 0:  # noqa: ASYNC110 - waiting on the clock
                await asyncio.sleep(delay)

    def pause(self, seconds: float) -> None:
        """Hold all sends for `seconds` (Telegram said so with a 429)."""
        self._next = max(self._next, self._clock() + seconds)


def retry_seconds(error: RetryAfter) -> float:
    """`retry_after` in seconds, whether python-telegram-bot gives an int or a timedelta."""
    # Reading it warns on PTB 22 (int now, timedelta later); both are handled here.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PTBDeprecationWarning)
        value: Any = error.retry_after
    return value.total_seconds() if isinstance(value, timedelta) else float(value)


def is_gone(error: TelegramError) -> bool:
    """True for errors meaning the bot can no longer post in the chat."""
    if isinstance(error, Forbidden):
        return True
    text = error.message.lower()
    return isinstance(error, BadRequest) and any(marker in text for marker in _GONE_MARKERS)


# -- sending ---------------------------------------------------------------------------------


class TelegramSender:
    """Sends Markdown to Telegram chats: rendered, split, paced; the `Sender` of bot.senders.

    A 429 with a short `retry_after` is waited out in place; a long one before anything was
    sent becomes RetryLater (the caller retries the whole digest); after part of a digest went
    out it is waited out (up to `max_wait`) so nobody receives the first part twice.
    """

    platform = PLATFORM
    rate_per_second = 30
    group_per_minute = 20

    def __init__(
        self,
        bot: Bot,
        *,
        gate: RateGate | None = None,
        inline_wait: float = 5.0,
        max_wait: float = 120.0,
        attempts: int = 3,
    ) -> None:
        self.bot = bot
        self.gate = gate or RateGate(self.rate_per_second, self.group_per_minute)
        self._inline_wait = inline_wait
        self._max_wait = max_wait
        self._attempts = attempts

    async def send_digest(self, chat_id: str, markdown: str) -> list[str]:
        """Send `markdown`; return the message ids. ChatGone / RetryLater as the protocol says."""
        sent = await self.send_markdown(chat_id, markdown)
        return [str(message.message_id) for message in sent]

    async def send_markdown(
        self, chat_id: str | int, markdown: str, *, reply_to: int | None = None
    ) -> list[Message]:
        """Render and send `markdown` as one or more messages; the first replies to `reply_to`."""
        target = str(chat_id)
        sent: list[Message] = []
        for index, part in enumerate(render_messages(markdown)):
            message, target = await self._send_part(
                target, part, reply_to if index == 0 else None, first=not sent
            )
            sent.append(message)
        return sent

    async def _send_part(
        self, chat_id: str, part: Rendered, reply_to: int | None, *, first: bool
    ) -> tuple[Message, str]:
        for attempt in range(1, self._attempts + 1):
            await self.gate.wait(chat_id)
            try:
                message = await self.bot.send_message(
                    chat_id=int(chat_id) if chat_id.lstrip("-").isdigit() else chat_id,
                    text=part.text,
                    entities=part.api_entities(),
                    link_preview_options=LinkPreviewOptions(is_disabled=True),
                    reply_parameters=(
                        ReplyParameters(message_id=reply_to, allow_sending_without_reply=True)
                        if reply_to is not None
                        else None
                    ),
                )
                return message, chat_id
            except RetryAfter as exc:
                wait = retry_seconds(exc)
                self.gate.pause(wait)
                log.warning("telegram asked to wait %.0f s (chat %s)", wait, chat_id)
                too_long = wait > (self._inline_wait if first else self._max_wait)
                if too_long or attempt == self._attempts:
                    raise RetryLater(wait, "telegram rate limit") from exc
            except ChatMigrated as exc:
                log.warning("chat %s became supergroup %s", chat_id, exc.new_chat_id)
                chat_id = str(exc.new_chat_id)
            except TelegramError as exc:
                if is_gone(exc):
                    raise ChatGone(f"telegram chat {chat_id}: {exc.message}") from exc
                raise
        raise RetryLater(1.0, f"telegram chat {chat_id}: no attempt left")

    async def send_photo(self, chat_id: str, png: bytes, caption: str) -> str:
        """Post a PNG with a plain caption (sendPhoto, multipart); return the message id.

        Paced like every message; ChatGone when the chat is gone, RetryLater on a 429 (a
        picture is an extra: the caller decides whether it is worth waiting for).
        """
        if len(png) > MAX_PHOTO_BYTES:
            raise ValueError(f"photo of {len(png)} bytes exceeds Telegram's {MAX_PHOTO_BYTES}")
        target = chat_id
        for _ in range(2):  # a second round only after the group became a supergroup
            await self.gate.wait(target)
            try:
                message = await self.bot.send_photo(
                    chat_id=int(target) if target.lstrip("-").isdigit() else target,
                    photo=png,
                    caption=clip_utf16(caption, MAX_CAPTION) or None,
                )
                return str(message.message_id)
            except RetryAfter as exc:
                wait = retry_seconds(exc)
                self.gate.pause(wait)
                raise RetryLater(wait, "telegram rate limit") from exc
            except ChatMigrated as exc:
                log.warning("chat %s became supergroup %s", target, exc.new_chat_id)
                target = str(exc.new_chat_id)
            except TelegramError as exc:
                if is_gone(exc):
                    raise ChatGone(f"telegram chat {target}: {exc.message}") from exc
                raise
        raise RetryLater(1.0, f"telegram chat {chat_id}: no attempt left")


def clip_utf16(text: str, limit: int) -> str:
    """`text` cut (with an ellipsis) to at most `limit` UTF-16 code units, as Telegram counts."""
    if utf16_len(text) <= limit:
        return text
    cut = text[: limit - 1]
    while utf16_len(cut) > limit - 1:  # characters outside the BMP count twice
        cut = cut[:-1]
    return cut + "…"


# -- the adapter -----------------------------------------------------------------------------


def chat_kind(chat: Chat) -> ChatKind:
    """Telegram's chat type → the service's kind."""
    if chat.type == ChatType.PRIVATE:
        return "private"
    if chat.type == ChatType.CHANNEL:
        return "channel"
    return "group"


class AdminCheck:
    """Asks Telegram whether a user administers a chat; answers are cached briefly."""

    def __init__(
        self,
        bot: Bot,
        *,
        ttl: float = ADMIN_CACHE_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._bot = bot
        self._ttl = ttl
        self._clock = clock
        self._cache: dict[tuple[int, int], tuple[float, bool]] = {}

    async def __call__(self, chat_id: int, user_id: int) -> bool:
        """True for the chat's creator and administrators."""
        key = (chat_id, user_id)
        cached = self._cache.get(key)
        now = self._clock()
        if cached is not None and now - cached[0] < self._ttl:
            return cached[1]
        member = await self._bot.get_chat_member(chat_id, user_id)
        allowed = member.status in (ChatMemberStatus.ADMINISTRATOR, ChatMemberStatus.OWNER)
        if len(self._cache) > 10_000:
            self._cache.clear()
        self._cache[key] = (now, allowed)
        return allowed


class TelegramAdapter:
    """Wires python-telegram-bot's Application to the CommandService and the TelegramSender."""

    def __init__(self, settings: Settings, service: CommandService) -> None:
        if settings.telegram_bot_token is None:
            raise ValueError("TELEGRAM_BOT_TOKEN is not set")
        self.service = service
        self.application: Application[Any, Any, Any, Any, Any, Any] = build_application(settings)
        self.sender = TelegramSender(self.application.bot)
        self.admins = AdminCheck(self.application.bot)
        updates = filters.UpdateType.MESSAGE | filters.UpdateType.CHANNEL_POST
        names = [name for name, _ in service.commands] + ["start"]
        self.application.add_handler(CommandHandler(names, self._on_command, filters=updates))
        # An unknown command in a private chat still gets an answer; groups stay quiet.
        self.application.add_handler(
            MessageHandler(
                filters.COMMAND & filters.UpdateType.MESSAGE & filters.ChatType.PRIVATE,
                self._on_command,
            )
        )

    async def register_commands(self) -> None:
        """Publish the command menu (set_my_commands)."""
        menu = [BotCommand(name, description) for name, description in self.service.commands]
        await self.application.bot.set_my_commands(menu)

    async def start(self, *, poll_timeout: int = 10) -> None:
        """Initialise (getMe), publish the menu and start long polling."""
        await self.open()
        await self.start_polling(poll_timeout=poll_timeout)

    async def open(self) -> None:
        """Initialise (getMe), publish the menu and start handling updates; no receiving yet.

        Sending works from here on; updates arrive once `start_polling` (on one instance) or
        `start_webhook` (on any number behind a load balancer) runs.
        """
        await self.application.initialize()
        await self.register_commands()
        await self.application.start()

    async def start_polling(self, *, poll_timeout: int = 10) -> None:
        """Long-poll getUpdates (only one process per token may: Telegram answers 409 to more)."""
        updater = self.application.updater
        assert updater is not None
        if updater.running:
            return
        await updater.start_polling(
            poll_interval=0.0,
            timeout=poll_timeout,
            allowed_updates=UPDATE_TYPES,
        )
        log.info("telegram: polling as @%s", self.application.bot.username)

    async def stop_polling(self) -> None:
        """Stop long polling (the updates fetched so far are confirmed to Telegram)."""
        updater = self.application.updater
        if updater is not None and updater.running:
            await updater.stop()
            log.info("telegram: stopped polling")

    async def start_webhook(
        self, *, url: str, secret: str, listen: str = "0.0.0.0", port: int = 8443
    ) -> None:
        """Receive updates on `listen:port` at `url`'s path; only requests with `secret` count.

        Telegram sends the secret in X-Telegram-Bot-Api-Secret-Token; python-telegram-bot
        answers 403 to a request without it, so only Telegram can inject commands.
        """
        updater = self.application.updater
        assert updater is not None
        await updater.start_webhook(
            listen=listen,
            port=port,
            url_path=urlsplit(url).path.strip("/"),
            webhook_url=url,
            secret_token=secret,
            allowed_updates=UPDATE_TYPES,
        )
        log.info("telegram: webhook on %s:%d for %s", listen, port, urlsplit(url).netloc)

    async def stop(self) -> None:
        """Stop receiving, let running handlers finish, close the HTTP clients."""
        if self.application.updater is not None and self.application.updater.running:
            await self.application.updater.stop()
        if self.application.running:
            await self.application.stop()
        await self.application.shutdown()

    async def _on_command(self, update: Update, _context: ContextTypes.DEFAULT_TYPE) -> None:
        message = update.effective_message
        chat = update.effective_chat
        if message is None or chat is None or not message.text:
            return
        try:
            await self._answer(update, message, chat)
        except Exception:
            log.exception("telegram command in chat %s failed", chat.id)
            try:
                await self.sender.send_markdown(chat.id, COMMAND_FAILED)
            except Exception:
                log.exception("telegram: could not tell chat %s about the failure", chat.id)

    async def _answer(self, update: Update, message: Message, chat: Chat) -> None:
        command, args = split_command(message.text or "")
        _name, at, addressee = command.partition("@")
        if at and addressee.lower() != (self.application.bot.username or "").lower():
            return  # `/cmd@OtherBot` (private chats too): addressed to another bot, not to us
        user = message.from_user
        reply_to = None if chat.type == ChatType.PRIVATE else message.message_id
        ctx = ChatContext(
            platform=PLATFORM,
            chat_id=str(chat.id),
            chat_kind=chat_kind(chat),
            user_id=str(user.id) if user is not None else None,
            is_admin=lambda: self._is_admin(update, message, chat),
        )

        async def progress(note: str) -> None:
            await self.sender.send_markdown(chat.id, note, reply_to=reply_to)

        try:
            reply = await self.service.handle(ctx, command, args, progress)
        except Exception:
            log.exception("command %r in telegram chat %s failed", command[:40], chat.id)
            reply = Reply(COMMAND_FAILED, ephemeral=True)
        await self.sender.send_markdown(chat.id, reply.text, reply_to=reply_to)

    async def _is_admin(self, update: Update, message: Message, chat: Chat) -> bool:
        if update.channel_post is not None:
            return True  # only a channel's administrators can post in it
        if message.sender_chat is not None:
            return message.sender_chat.id == chat.id  # an anonymous administrator
        if message.from_user is None:
            return False
        try:
            return await self.admins(chat.id, message.from_user.id)
        except TelegramError as exc:
            log.warning("getChatMember %s/%s failed: %s", chat.id, message.from_user.id, exc)
            return False


def split_command(text: str) -> tuple[str, str]:
    """`/digest@Bot vllm 2026-02-04` → (`digest@Bot`, `vllm 2026-02-04`)."""
    parts = text.strip().split(maxsplit=1)
    if not parts:
        return "", ""
    return parts[0].lstrip("/"), parts[1] if len(parts) > 1 else ""


@asynccontextmanager
async def telegram_sender(settings: Settings) -> AsyncIterator[TelegramSender]:
    """A TelegramSender on its own Bot (for `aiinfra-digest post`, where nothing polls)."""
    if settings.telegram_bot_token is None:
        raise ValueError("TELEGRAM_BOT_TOKEN is not set")
    base = settings.telegram_api_url.rstrip("/")
    bot = TelegramBot(
        settings.telegram_bot_token.get_secret_value(),
        base_url=f"{base}/bot",
        base_file_url=f"{base}/file/bot",
    )
    async with bot:
        yield TelegramSender(bot)


def build_application(settings: Settings) -> Application[Any, Any, Any, Any, Any, Any]:
    """A python-telegram-bot Application talking to TELEGRAM_API_URL (Telegram or a local one)."""
    if settings.telegram_bot_token is None:
        raise ValueError("TELEGRAM_BOT_TOKEN is not set")
    base = settings.telegram_api_url.rstrip("/")
    return (
        ApplicationBuilder()
        .token(settings.telegram_bot_token.get_secret_value())
        .base_url(f"{base}/bot")
        .base_file_url(f"{base}/file/bot")
        .concurrent_updates(True)
        .build()
    )


async def run_telegram(
    settings: Settings,
    store: ChatStore,
    pipeline: DigestSource,
    stop_event: asyncio.Event,
    *,
    clock: Callable[[], datetime] | None = None,
) -> None:
    """Run the bot (long polling) until `stop_event` is set, then stop cleanly."""
    service = CommandService(settings, store, pipeline, clock=clock or (lambda: datetime.now(UTC)))
    adapter = TelegramAdapter(settings, service)
    await adapter.start()
    try:
        await stop_event.wait()
    finally:
        await adapter.stop()
