"""Discord's Senders: channel posts through the bot, or posts through channel webhooks.

Every message is sent with `AllowedMentions.none()`, so nothing in a digest (`@everyone`, a user
or role mention in model output) can ever ping anyone, and with link previews suppressed.
"""

from __future__ import annotations

import io
import logging
import re
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

import aiohttp
import discord

from bot.platforms.base import ChatGone, RetryLater, Sender
from bot.platforms.discord.render import MESSAGE_LIMIT, render_messages
from bot.platforms.pacing import RateGate
from bot.settings import Settings

if TYPE_CHECKING:
    from bot.store import Chat, Store


log = logging.getLogger(__name__)

PLATFORM = "discord"
WEBHOOK_PLATFORM = "discord-webhook"
NO_MENTIONS = discord.AllowedMentions.none()
# Longer waits than this are handed back to delivery as RetryLater instead of blocking a worker.
MAX_RATELIMIT_WAIT = 60.0
# Discord allows 50 requests/s per bot, and per IP for webhook calls (they carry no token).
# Per-channel and per-webhook buckets are also read from the response headers by discord.py;
# the global one is not, so the gate keeps below it.
GLOBAL_REQUESTS_PER_SECOND = 50.0
BOT_MESSAGES_PER_SECOND = 40.0
# Attachments: 10 MiB per message for bots and webhooks; a chart is far below it.
MAX_ATTACHMENT_BYTES = 10 * 1024 * 1024
CHART_FILENAME = "chart.png"
_WEBHOOK_URL = re.compile(
    r"^https://(?:(?:ptb|canary)\.)?discord(?:app)?\.com/api/(?:v\d+/)?webhooks/"
    r"(?P<id>[0-9]{17,20})/(?P<token>[A-Za-z0-9.\-_]{60,})/?"
    r"(?:\?(?:.*&)?thread_id=(?P<thread>[0-9]{17,20})(?:&.*)?|\?.*)?$"
)


class DiscordChannelSender(Sender):
    """Posts to a channel (or DM) through the bot (`platform = "discord"`)."""

    platform = PLATFORM
    message_limit: ClassVar[int] = MESSAGE_LIMIT
    rate_per_second = BOT_MESSAGES_PER_SECOND
    # Discord's per-channel bucket: 5 messages per 5 s.
    chat_rate: ClassVar[tuple[int, float] | None] = (5, 5.0)
    sends_photos: ClassVar[bool] = True

    def __init__(self, client: discord.Client, *, gate: RateGate | None = None) -> None:
        super().__init__(gate=gate)
        self._client = client

    def render(self, markdown: str) -> Sequence[str]:
        """Discord's Markdown dialect in messages of at most 2,000 characters."""
        return render_messages(markdown, self.message_limit)

    def _channel(self, chat_id: str) -> discord.PartialMessageable:
        if self._client.user is None:
            raise RetryLater(30.0, "the Discord bot is not logged in yet")
        return self._client.get_partial_messageable(int(chat_id))

    async def send_part(self, chat_id: str, part: Any, *, reply_to: str | None = None) -> str:
        """One message, mentions off, previews suppressed; the message id."""
        channel = self._channel(chat_id)
        with _errors(f"Discord channel {chat_id}"):
            message = await channel.send(
                str(part), allowed_mentions=NO_MENTIONS, suppress_embeds=True
            )
        return str(message.id)

    async def send_photo(self, chat_id: str, png: bytes, caption: str) -> str:
        """Post a PNG as a file attachment with a plain caption; return the message id."""
        channel = self._channel(chat_id)
        with _errors(f"Discord channel {chat_id}"):
            message = await channel.send(
                caption_text(caption),
                file=png_file(png),
                allowed_mentions=NO_MENTIONS,
                suppress_embeds=True,
            )
        return str(message.id)


def png_file(png: bytes) -> discord.File:
    """A PNG as a Discord attachment; ValueError beyond the attachment limit."""
    if len(png) > MAX_ATTACHMENT_BYTES:
        raise ValueError(f"attachment of {len(png)} bytes exceeds Discord's {MAX_ATTACHMENT_BYTES}")
    return discord.File(io.BytesIO(png), filename=CHART_FILENAME)


def caption_text(caption: str) -> str:
    """A caption as message content: one message at most (Discord counts characters)."""
    text = caption.strip()
    return text if len(text) <= MESSAGE_LIMIT else text[: MESSAGE_LIMIT - 1] + "…"


@dataclass(frozen=True)
class WebhookTarget:
    """One webhook from DISCORD_WEBHOOK_URL; `thread_id` when the URL posts into a thread."""

    id: str
    token: str = field(repr=False)
    thread_id: str | None = None

    @property
    def chat_id(self) -> str:
        """The delivery record's chat id: `<webhook id>` or `<webhook id>/<thread id>`."""
        return self.id if self.thread_id is None else f"{self.id}/{self.thread_id}"

    @property
    def url(self) -> str:
        """The canonical URL, the form discord.py's `Webhook.from_url` parses."""
        return f"https://discord.com/api/webhooks/{self.id}/{self.token}"


def parse_webhook_url(url: str) -> WebhookTarget:
    """The webhook behind a Discord webhook URL; ValueError (without the secret) otherwise."""
    match = _WEBHOOK_URL.match(url.strip())
    if match is None:
        raise ValueError(
            "DISCORD_WEBHOOK_URL is not a Discord webhook URL "
            "(https://discord.com/api/webhooks/<id>/<token>)"
        )
    return WebhookTarget(match["id"], match["token"], match["thread"])


class DiscordWebhookSender(Sender):
    """Posts through webhooks (platform `discord-webhook`, chat id: `WebhookTarget.chat_id`).

    discord.py also waits out the per-webhook buckets it reads from the headers; a webhook that
    was deleted (404) or whose token is wrong (401, 403) is gone. Webhook calls carry no token,
    so Discord's global limit (50 requests/s) counts them per IP: the gate keeps all webhooks
    of this sender together below it.
    """

    platform = WEBHOOK_PLATFORM
    message_limit: ClassVar[int] = MESSAGE_LIMIT
    rate_per_second = GLOBAL_REQUESTS_PER_SECOND
    # Discord's per-webhook bucket: 5 requests per 2 s.
    chat_rate: ClassVar[tuple[int, float] | None] = (5, 2.0)
    sends_photos: ClassVar[bool] = True

    def __init__(
        self,
        urls: Sequence[str],
        *,
        session: aiohttp.ClientSession | None = None,
        gate: RateGate | None = None,
    ) -> None:
        super().__init__(gate=gate)
        self._targets = {target.chat_id: target for target in map(parse_webhook_url, urls)}
        self._session = session
        self._owns_session = session is None

    @property
    def targets(self) -> tuple[str, ...]:
        """The configured webhooks' ids, the chat ids of their delivery records."""
        return tuple(self._targets)

    def render(self, markdown: str) -> Sequence[str]:
        """Discord's Markdown dialect in messages of at most 2,000 characters."""
        return render_messages(markdown, self.message_limit)

    def _webhook(self, chat_id: str) -> tuple[discord.Webhook, discord.Object | None]:
        target = self._targets.get(chat_id)
        if target is None:
            raise ChatGone(f"Discord webhook {chat_id} is no longer configured")
        if self._session is None:
            self._session = aiohttp.ClientSession()
        webhook = discord.Webhook.from_url(target.url, session=self._session)
        return webhook, None if target.thread_id is None else discord.Object(target.thread_id)

    async def send_part(self, chat_id: str, part: Any, *, reply_to: str | None = None) -> str:
        """One message through the webhook, mentions off; the message id."""
        webhook, thread = self._webhook(chat_id)
        with _errors(f"Discord webhook {chat_id}", webhook=True):
            message = await webhook.send(
                str(part),
                wait=True,
                allowed_mentions=NO_MENTIONS,
                suppress_embeds=True,
                thread=thread or discord.utils.MISSING,
            )
        return str(message.id)

    async def send_photo(self, chat_id: str, png: bytes, caption: str) -> str:
        """Post a PNG through the webhook as a file attachment with a plain caption."""
        webhook, thread = self._webhook(chat_id)
        with _errors(f"Discord webhook {chat_id}", webhook=True):
            message = await webhook.send(
                caption_text(caption),
                file=png_file(png),
                wait=True,
                allowed_mentions=NO_MENTIONS,
                suppress_embeds=True,
                thread=thread or discord.utils.MISSING,
            )
        return str(message.id)

    async def aclose(self) -> None:
        """Close the HTTP session if this sender opened it."""
        if self._owns_session and self._session is not None:
            await self._session.close()
            self._session = None


def make_webhook_sender(settings: Settings) -> DiscordWebhookSender | None:
    """The webhook sender for DISCORD_WEBHOOK_URL (several may be comma-separated), or None."""
    if settings.discord_webhook_url is None:
        return None
    raw = settings.discord_webhook_url.get_secret_value()
    urls = [url.strip() for url in raw.split(",") if url.strip()]
    if not urls:
        return None
    return DiscordWebhookSender(urls)


@asynccontextmanager
async def discord_webhook_sender(settings: Settings) -> AsyncIterator[DiscordWebhookSender | None]:
    """The webhook sender for DISCORD_WEBHOOK_URL (None when unset), closed on exit."""
    sender = make_webhook_sender(settings)
    try:
        yield sender
    finally:
        if sender is not None:
            await sender.aclose()


@asynccontextmanager
async def discord_channel_sender(
    settings: Settings, *, connector: aiohttp.BaseConnector | None = None
) -> AsyncIterator[DiscordChannelSender]:
    """A channel sender on a logged-in client without a gateway (for `aiinfra-digest post`)."""
    if settings.discord_bot_token is None:
        raise ValueError("DISCORD_BOT_TOKEN is not set")
    client = discord.Client(
        intents=discord.Intents.none(),
        allowed_mentions=NO_MENTIONS,
        connector=connector,
        max_ratelimit_timeout=MAX_RATELIMIT_WAIT,
    )
    async with client:
        await client.login(settings.discord_bot_token.get_secret_value())
        yield DiscordChannelSender(client)


async def register_webhooks(
    store: Store, sender: DiscordWebhookSender, settings: Settings
) -> list[Chat]:
    """Subscribe each configured webhook (all repositories) unless it already has a record.

    A webhook that was deactivated (deleted on Discord) stays inactive: a new webhook has a new id.
    """
    chats = []
    for webhook_id in sender.targets:
        chat = await store.get_chat(WEBHOOK_PLATFORM, webhook_id)
        if chat is None:
            chat = await store.subscribe(
                WEBHOOK_PLATFORM,
                webhook_id,
                None,
                by="DISCORD_WEBHOOK_URL",
                post_time=settings.digest_post_time,
                timezone=settings.digest_timezone,
            )
        chats.append(chat)
    return chats


def describe(exc: discord.HTTPException) -> str:
    """An HTTP error as `status text`, for logs and replies."""
    return f"{exc.status} {exc.text or exc.response.reason}".strip()


def _retry_after(exc: discord.HTTPException) -> float:
    try:
        return max(float(exc.response.headers.get("Retry-After", "1")), 0.0)
    except ValueError:
        return 1.0


@contextmanager
def _errors(what: str, *, webhook: bool = False) -> Iterator[None]:
    """Discord's answers as the engine's: gone channels or webhooks, rate limits, the rest."""
    try:
        yield
    except discord.RateLimited as exc:
        raise RetryLater(exc.retry_after, "Discord rate limit") from exc
    except (discord.NotFound, discord.Forbidden) as exc:
        raise _gone(what, exc, webhook=webhook) from exc
    except discord.HTTPException as exc:
        if exc.status == 401 and webhook:
            raise _gone(what, exc, webhook=webhook) from exc
        if exc.status == 429:
            raise RetryLater(_retry_after(exc), "Discord rate limit") from exc
        raise


def _gone(what: str, exc: discord.HTTPException, *, webhook: bool) -> ChatGone:
    advice = " Create a new webhook and set DISCORD_WEBHOOK_URL to it." if webhook else ""
    log.warning("%s answered %s; it receives no more posts.%s", what, describe(exc), advice)
    return ChatGone(f"{what}: {describe(exc)}")
