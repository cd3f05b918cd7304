"""Telegram updates → CommandService calls, Replies → Telegram messages (python-telegram-bot).

It translates only; what a command means is decided in the command service.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from telegram import (
    BotCommand,
    Chat,
    Message,
    Update,
)
from telegram.constants import ChatMemberStatus, ChatType
from telegram.error import TelegramError
from telegram.ext import (
    Application,
    ApplicationBuilder,
    CommandHandler,
    ContextTypes,
    MessageHandler,
    filters,
)

from bot.commands import ChatContext, ChatKind, CommandService, Reply
from bot.platforms.telegram.sender import PLATFORM, TelegramSender
from bot.settings import Settings
from bot.store.types import chat_address

if TYPE_CHECKING:
    from telegram import Bot

    from bot.commands import ChatStore, DigestSource

log = logging.getLogger(__name__)

UPDATE_TYPES = ["message", "channel_post"]
ADMIN_CACHE_SECONDS = 60.0
COMMAND_FAILED = "出错了，请稍后再试。"


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
        # Every command the service answers, the operator ones too (not in the menu): in a group
        # only handled commands get an answer, and the service decides who may run them.
        names = list(dict.fromkeys([*service.names, "start"]))
        self.application.add_handler(CommandHandler(names, self._on_command, filters=updates))
        # A group that became a supergroup: its subscription and settings follow the new id.
        self.application.add_handler(MessageHandler(filters.StatusUpdate.MIGRATE, self._on_migrate))
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
                await self.sender.send_markdown(reply_address(message, chat), COMMAND_FAILED)
            except Exception:
                log.exception("telegram: could not tell chat %s about the failure", chat.id)

    async def _on_migrate(self, update: Update, _context: ContextTypes.DEFAULT_TYPE) -> None:
        """Move the chat's records when Telegram announces a group → supergroup upgrade.

        Telegram sends two service messages (`migrate_to_chat_id` in the old group,
        `migrate_from_chat_id` in the new supergroup); whichever arrives first moves everything
        in one transaction, the other finds nothing left to move.
        """
        message = update.effective_message
        if message is None:
            return
        if message.migrate_to_chat_id is not None:
            old, new = message.chat.id, message.migrate_to_chat_id
        elif message.migrate_from_chat_id is not None:
            old, new = message.migrate_from_chat_id, message.chat.id
        else:
            return
        try:
            moved = await self.service.move_chat(PLATFORM, str(old), str(new))
        except Exception:
            log.exception("telegram: moving chat %s to %s failed", old, new)
            return
        if moved:
            log.info("telegram: chat %s became %s; its subscription moved", old, new)

    async def _answer(self, update: Update, message: Message, chat: Chat) -> None:
        command, args = split_command(message.text or "")
        _name, at, addressee = command.partition("@")
        if at and addressee.lower() != (self.application.bot.username or "").lower():
            return  # `/cmd@OtherBot` (private chats too): addressed to another bot, not to us
        user = message.from_user
        reply_to = None if chat.type == ChatType.PRIVATE else str(message.message_id)
        ctx = ChatContext(
            platform=PLATFORM,
            chat_id=str(chat.id),
            chat_kind=chat_kind(chat),
            user_id=str(user.id) if user is not None else None,
            is_admin=lambda: self._is_admin(update, message, chat),
            thread_id=topic_of(message),
        )
        where = reply_address(message, chat)

        async def progress(note: str) -> None:
            await self.sender.send_markdown(where, note, reply_to=reply_to)

        try:
            reply = await self.service.handle(ctx, command, args, progress)
        except Exception:
            log.exception("command %r in telegram chat %s failed", command[:40], chat.id)
            reply = Reply(COMMAND_FAILED, ephemeral=True)
        await self.sender.send_markdown(where, reply.text, reply_to=reply_to)

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


def topic_of(message: Message) -> str | None:
    """The forum topic a message was sent in (None: the chat itself or a forum's General)."""
    # A reply in an ordinary group carries a message_thread_id too; only topics count.
    if message.is_topic_message and message.message_thread_id is not None:
        return str(message.message_thread_id)
    return None


def reply_address(message: Message, chat: Chat) -> str:
    """Where answers to `message` go: its chat, inside the topic it came from."""
    return chat_address(str(chat.id), topic_of(message))


def split_command(text: str) -> tuple[str, str]:
    """`/digest@Bot vllm 2026-02-04` → (`digest@Bot`, `vllm 2026-02-04`)."""
    parts = text.strip().split(maxsplit=1)
    if not parts:
        return "", ""
    return parts[0].lstrip("/"), parts[1] if len(parts) > 1 else ""


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
