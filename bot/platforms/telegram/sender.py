"""Telegram's Sender: one message at a time, Bot API errors mapped for the delivery engine.

Rendering and splitting are `render.py`; pacing is the sender's gate (30 messages/s overall,
20 per minute per group); resuming a half-sent digest is the engine's. A 429 becomes RetryLater
(the engine pauses the gate for everyone); a group that became a supergroup becomes ChatMoved.

A chat id may name a forum topic: `-100123/45` posts into topic 45 of chat -100123
(`message_thread_id`), the `chat/thread` form `bot.store.chat_address` builds for chats that
subscribed inside a topic. A topic that was deleted answers "message thread not found": the
place the chat chose is gone, so the subscription is dropped like a chat that is gone.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager
from datetime import timedelta
from typing import Any, ClassVar

from telegram import Bot as TelegramBot
from telegram import LinkPreviewOptions, ReplyParameters
from telegram.error import BadRequest, ChatMigrated, Forbidden, RetryAfter, TelegramError
from telegram.warnings import PTBDeprecationWarning

from bot.platforms.base import ChatGone, ChatMoved, RetryLater, Sender
from bot.platforms.pacing import RateGate
from bot.platforms.telegram.render import MAX_MESSAGE, Rendered, clip_utf16, render_messages
from bot.settings import Settings

log = logging.getLogger(__name__)

PLATFORM = "telegram"
# sendPhoto: a caption of at most 1024 characters (UTF-16 units, to be safe) and a file of at
# most 10 MB.
MAX_CAPTION = 1024
MAX_PHOTO_BYTES = 10 * 1000 * 1000
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
    "message thread not found",
)


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


def _chat(chat_id: str) -> int | str:
    return int(chat_id) if chat_id.lstrip("-").isdigit() else chat_id


def parse_address(address: str) -> tuple[int | str, int | None]:
    """`-100123/45` → (-100123, 45): the chat and the forum topic (None: the chat itself)."""
    chat, slash, thread = address.partition("/")
    if slash and thread.isdigit():
        return _chat(chat), int(thread)
    if slash:
        raise ValueError(f"not a Telegram chat or chat/topic id: {address!r}")
    return _chat(chat), None


class TelegramSender(Sender):
    """Sends rendered messages and pictures to Telegram chats through one `telegram.Bot`."""

    platform = PLATFORM
    message_limit: ClassVar[int] = MAX_MESSAGE
    rate_per_second = 30.0
    # Groups (negative ids) take at most 20 messages a minute from one bot.
    chat_rate: ClassVar[tuple[int, float] | None] = (20, 60.0)
    sends_photos: ClassVar[bool] = True

    def __init__(self, bot: TelegramBot, *, gate: RateGate | None = None) -> None:
        super().__init__(gate=gate)
        self.bot = bot

    def paced_per_chat(self, chat_id: str) -> bool:
        """Only groups and channels (negative ids) have a per-chat limit."""
        return chat_id.startswith("-")

    def render(self, markdown: str) -> Sequence[Rendered]:
        """Text plus entities, split at section, block and line boundaries (4096 UTF-16 units)."""
        return render_messages(markdown, self.message_limit)

    async def send_part(self, chat_id: str, part: Any, *, reply_to: str | None = None) -> str:
        """sendMessage with entities and no link preview; the message id."""
        assert isinstance(part, Rendered)
        chat, thread = parse_address(chat_id)
        with self._errors(chat_id):
            message = await self.bot.send_message(
                chat_id=chat,
                message_thread_id=thread,
                text=part.text,
                entities=part.api_entities(),
                link_preview_options=LinkPreviewOptions(is_disabled=True),
                reply_parameters=(
                    ReplyParameters(message_id=int(reply_to), allow_sending_without_reply=True)
                    if reply_to is not None
                    else None
                ),
            )
        return str(message.message_id)

    async def send_photo(self, chat_id: str, png: bytes, caption: str) -> str:
        """sendPhoto (multipart) with a plain caption; the message id."""
        if len(png) > MAX_PHOTO_BYTES:
            raise ValueError(f"photo of {len(png)} bytes exceeds Telegram's {MAX_PHOTO_BYTES}")
        chat, thread = parse_address(chat_id)
        with self._errors(chat_id):
            message = await self.bot.send_photo(
                chat_id=chat,
                message_thread_id=thread,
                photo=png,
                caption=clip_utf16(caption, MAX_CAPTION) or None,
            )
        return str(message.message_id)

    @contextmanager
    def _errors(self, chat_id: str) -> Iterator[None]:
        """Bot API errors → RetryLater / ChatMoved / ChatGone; the rest pass (transient)."""
        try:
            yield
        except RetryAfter as exc:
            wait = retry_seconds(exc)
            log.warning("telegram asked to wait %.0f s (chat %s)", wait, chat_id)
            raise RetryLater(wait, "telegram rate limit") from exc
        except ChatMigrated as exc:
            raise ChatMoved(chat_id, str(exc.new_chat_id)) from exc
        except TelegramError as exc:
            if is_gone(exc):
                raise ChatGone(f"telegram chat {chat_id}: {exc.message}") from exc
            raise


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
