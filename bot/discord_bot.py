"""The Discord adapter: slash commands → CommandService, Replies and digests → Discord messages.

It translates only; what a command means is decided in `bot/service.py`. Two ways to post:

- **bot mode** (`DISCORD_BOT_TOKEN`): a `discord.Client` with slash commands; daily posts go to
  subscribed channels through `DiscordChannelSender` (platform `discord`);
- **webhook mode** (`DISCORD_WEBHOOK_URL`): no bot and no gateway, the daily post goes through the
  channel's webhook with `DiscordWebhookSender` (platform `discord-webhook`).

Every message is sent with `AllowedMentions.none()`, so nothing in a digest (`@everyone`, a user
or role mention in model output) can ever ping anyone, and with link previews suppressed.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import logging
import re
from collections import OrderedDict
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal, Protocol

import aiohttp
import discord
from aiolimiter import AsyncLimiter
from discord import app_commands

from bot.commands import COMMAND_MENU, ChatContext, Reply
from bot.discord_render import MESSAGE_LIMIT, render_messages
from bot.repos import short_name
from bot.senders import ChatGone, RetryLater
from bot.settings import Settings

if TYPE_CHECKING:
    from bot.senders import Sender
    from bot.store import Chat, Store

log = logging.getLogger(__name__)

PLATFORM = "discord"
WEBHOOK_PLATFORM = "discord-webhook"
NO_MENTIONS = discord.AllowedMentions.none()
COMMAND_FAILED = "出错了，请稍后再试。"
# Discord wants an answer to an interaction within 3 s; a command still busy after this long is
# deferred ("thinking…") and answered with follow-ups.
DEFER_AFTER = 1.0
# Longer waits than this are handed back to delivery as RetryLater instead of blocking a worker.
MAX_RATELIMIT_WAIT = 60.0
# Discord allows 50 requests/s per bot, and per IP for webhook calls (they carry no token).
# Per-channel and per-webhook buckets (5 per 2 s for a webhook) are read from the response
# headers by discord.py; the global one is not, so the senders keep below it themselves.
GLOBAL_REQUESTS_PER_SECOND = 50.0
BOT_MESSAGES_PER_SECOND = 40.0
# Webhook calls: a burst of 5, then 45/s, so no one-second span ever holds more than 50.
WEBHOOK_BURST = 5
WEBHOOK_RATE = GLOBAL_REQUESTS_PER_SECOND - WEBHOOK_BURST
CHOICES = 25
# Attachments: 10 MiB per message for bots and webhooks; a chart is far below it.
MAX_ATTACHMENT_BYTES = 10 * 1024 * 1024
CHART_FILENAME = "chart.png"
_WEBHOOK_URL = re.compile(
    r"^https://(?:(?:ptb|canary)\.)?discord(?:app)?\.com/api/(?:v\d+/)?webhooks/"
    r"(?P<id>[0-9]{17,20})/(?P<token>[A-Za-z0-9.\-_]{60,})/?"
    r"(?:\?(?:.*&)?thread_id=(?P<thread>[0-9]{17,20})(?:&.*)?|\?.*)?$"
)
_ALL_BUT_GROUP_DMS = app_commands.AppCommandContext(guild=True, dm_channel=True)


class CommandHandler(Protocol):
    """The part of `bot.service.CommandService` the adapter calls."""

    async def handle(
        self,
        ctx: ChatContext,
        command: str,
        args: str,
        progress: Callable[[str], Awaitable[None]] | None = None,
    ) -> Reply:
        """Answer one command."""
        ...

    async def tracked_repos(self) -> Sequence[str]:
        """The repositories autocomplete offers (the current tracked set)."""
        ...


# --- commands ----------------------------------------------------------------------------------


def chat_context(interaction: discord.Interaction) -> ChatContext:
    """Where an interaction came from; in a server, admins are members who may manage channels."""
    private = interaction.guild_id is None
    permissions = interaction.permissions

    async def is_admin() -> bool:
        return private or permissions.manage_channels

    return ChatContext(
        platform=PLATFORM,
        chat_id=str(interaction.channel_id),
        chat_kind="private" if private else "group",
        user_id=str(interaction.user.id),
        is_admin=is_admin,
    )


def join_args(*values: str | None) -> str:
    """Slash-command options back into the argument text the service parses."""
    return " ".join(value.strip() for value in values if value and value.strip())


def repo_choices(
    tracked: Sequence[str], current: str, *, limit: int = CHOICES
) -> list[app_commands.Choice[str]]:
    """Tracked repositories matching the typed text (full or short name, any case), best first."""
    typed = current.strip().lower()
    starts, contains = [], []
    for repo in tracked:
        full, short = repo.lower(), short_name(repo).lower()
        if not typed or full.startswith(typed) or short.startswith(typed):
            starts.append(repo)
        elif typed in full:
            contains.append(repo)
    return [app_commands.Choice(name=repo, value=repo) for repo in [*starts, *contains][:limit]]


def repo_list_choices(
    tracked: Sequence[str], current: str, *, limit: int = CHOICES
) -> list[app_commands.Choice[str]]:
    """For a space-separated list of repositories: complete the last one, keep the others."""
    head, _, last = current.replace(",", " ").rpartition(" ")
    chosen = {name.lower() for name in head.split()}
    prefix = " ".join(head.split())
    choices = []
    for choice in repo_choices(tracked, last, limit=len(tracked)):
        if choice.value.lower() in chosen or short_name(choice.value).lower() in chosen:
            continue
        value = f"{prefix} {choice.value}" if prefix else choice.value
        if len(value) <= 100:  # Discord's limit for a choice's name and value
            choices.append(app_commands.Choice(name=value, value=value))
    return choices[:limit]


class _Answer:
    """One interaction's answer: direct when the service is quick, deferred when it is not."""

    def __init__(self, interaction: discord.Interaction) -> None:
        self._interaction = interaction
        self._lock = asyncio.Lock()

    async def defer(self) -> None:
        """Show Discord's "thinking…" (once); the answer then comes as follow-ups."""
        async with self._lock:
            if not self._interaction.response.is_done():
                await self._interaction.response.defer(thinking=True)

    async def progress(self, _text: str) -> None:
        """Defer now: the command is slow (the service says it is generating)."""
        # Discord's own "thinking…" indicator is the progress message here: a text edited into
        # the deferred response would end the deferral, and the answer could no longer fill it.
        try:
            await self.defer()
        except discord.HTTPException as exc:  # progress is a courtesy; the command goes on
            log.warning("Discord interaction could not be deferred: %s", _describe(exc))

    async def send(self, reply: Reply) -> None:
        """Send the Reply as one or more messages (ephemeral stays private, even after a defer)."""
        messages = render_messages(reply.text) or ["…"]
        interaction = self._interaction
        async with self._lock:
            if not interaction.response.is_done():
                await interaction.response.send_message(
                    messages[0],
                    ephemeral=reply.ephemeral,
                    allowed_mentions=NO_MENTIONS,
                    suppress_embeds=True,
                )
                messages = messages[1:]
            elif reply.ephemeral:
                # A deferred response is public, and the first follow-up would fill it: drop it
                # so the follow-ups are new messages that only the asker sees.
                await interaction.delete_original_response()
        for text in messages:
            await interaction.followup.send(
                text,
                ephemeral=reply.ephemeral,
                allowed_mentions=NO_MENTIONS,
                suppress_embeds=True,
                wait=True,
            )


async def answer(
    interaction: discord.Interaction,
    service: CommandHandler,
    command: str,
    args: str,
    *,
    defer_after: float = DEFER_AFTER,
) -> None:
    """Run `/command args` through the service and answer the interaction with its Reply."""
    response = _Answer(interaction)
    call = asyncio.ensure_future(
        service.handle(chat_context(interaction), command, args, response.progress)
    )
    try:
        done, _ = await asyncio.wait({call}, timeout=defer_after)
        if not done:
            await response.defer()
    except discord.HTTPException as exc:  # the answer below may still get through
        log.warning("Discord /%s could not be deferred: %s", command, _describe(exc))
    except asyncio.CancelledError:
        call.cancel()
        raise
    try:
        reply = await call
    except Exception:
        log.exception("Discord /%s failed", command)
        reply = Reply(COMMAND_FAILED, ephemeral=True)
    await response.send(reply)


def build_tree(
    client: discord.Client,
    service: CommandHandler,
    *,
    defer_after: float = DEFER_AFTER,
) -> app_commands.CommandTree[discord.Client]:
    """The slash commands, each a thin call into the service."""
    tree: app_commands.CommandTree[discord.Client] = app_commands.CommandTree(
        client, allowed_contexts=_ALL_BUT_GROUP_DMS
    )
    about = dict(COMMAND_MENU)

    async def run(interaction: discord.Interaction, command: str, *values: str | None) -> None:
        await answer(interaction, service, command, join_args(*values), defer_after=defer_after)

    # The tracked set comes from the service: DIGEST_REPOS and the repositories chats added.
    async def complete_repo(
        _interaction: discord.Interaction, current: str
    ) -> list[app_commands.Choice[str]]:
        return repo_choices(await service.tracked_repos(), current)

    async def complete_repos(
        _interaction: discord.Interaction, current: str
    ) -> list[app_commands.Choice[str]]:
        return repo_list_choices(await service.tracked_repos(), current)

    @tree.command(name="digest", description=about["digest"][:100])
    @app_commands.rename(day="date")
    @app_commands.describe(repo="仓库（全名或简称）", day="日期 YYYY-MM-DD，默认最新一天")
    @app_commands.autocomplete(repo=complete_repo)
    async def digest(
        interaction: discord.Interaction, repo: str | None = None, day: str | None = None
    ) -> None:
        await run(interaction, "digest", repo, day)

    @tree.command(name="weekly", description=about["weekly"][:100])
    @app_commands.describe(
        repos="空格分隔的仓库；不填则本频道订阅的仓库", state="on 开启 / off 关闭每周一推送"
    )
    @app_commands.autocomplete(repos=complete_repos)
    async def weekly(
        interaction: discord.Interaction,
        repos: str | None = None,
        state: Literal["on", "off"] | None = None,
    ) -> None:
        await run(interaction, "weekly", state or repos)

    @tree.command(name="subscribe", description=about["subscribe"][:100])
    @app_commands.describe(repos="空格分隔的仓库；不填则订阅全部")
    @app_commands.autocomplete(repos=complete_repos)
    async def subscribe(interaction: discord.Interaction, repos: str | None = None) -> None:
        await run(interaction, "subscribe", repos)

    @tree.command(name="unsubscribe", description=about["unsubscribe"][:100])
    @app_commands.describe(repos="空格分隔的仓库；不填则全部取消")
    @app_commands.autocomplete(repos=complete_repos)
    async def unsubscribe(interaction: discord.Interaction, repos: str | None = None) -> None:
        await run(interaction, "unsubscribe", repos)

    @tree.command(name="subscriptions", description=about["subscriptions"][:100])
    async def subscriptions(interaction: discord.Interaction) -> None:
        await run(interaction, "subscriptions")

    @tree.command(name="settime", description=about["settime"][:100])
    @app_commands.describe(time="本地时间 HH:MM，例如 09:00")
    async def settime(interaction: discord.Interaction, time: str) -> None:
        await run(interaction, "settime", time)

    @tree.command(name="chart", description=about["chart"][:100])
    @app_commands.describe(state="on 开启 / off 关闭；不填则查看")
    async def chart(
        interaction: discord.Interaction, state: Literal["on", "off"] | None = None
    ) -> None:
        await run(interaction, "chart", state)

    @tree.command(name="alerts", description=about["alerts"][:100])
    @app_commands.describe(
        state="on 开启 / off 关闭；不填则查看", repos="空格分隔的仓库；不填则全部"
    )
    @app_commands.autocomplete(repos=complete_repos)
    async def alerts(
        interaction: discord.Interaction,
        state: Literal["on", "off"] | None = None,
        repos: str | None = None,
    ) -> None:
        await run(interaction, "alerts", state, repos if state else None)

    @tree.command(name="watch", description=about["watch"][:100])
    @app_commands.describe(words='空格分隔的关键词，词组用双引号："MoE" Blackwell')
    async def watch(interaction: discord.Interaction, words: str) -> None:
        await run(interaction, "watch", words)

    @tree.command(name="unwatch", description=about["unwatch"][:100])
    @app_commands.describe(words="要取消关注的关键词，空格分隔")
    async def unwatch(interaction: discord.Interaction, words: str) -> None:
        await run(interaction, "unwatch", words)

    @tree.command(name="watches", description=about["watches"][:100])
    async def watches(interaction: discord.Interaction) -> None:
        await run(interaction, "watches")

    @tree.command(name="track", description="运维：固定跟踪一个公开仓库 owner/name")
    @app_commands.describe(repo="owner/name")
    @app_commands.default_permissions(administrator=True)
    async def track(interaction: discord.Interaction, repo: str) -> None:
        await run(interaction, "track", repo)

    @tree.command(name="untrack", description="运维：停止跟踪一个额外添加的仓库")
    @app_commands.describe(repo="owner/name")
    @app_commands.default_permissions(administrator=True)
    async def untrack(interaction: discord.Interaction, repo: str) -> None:
        await run(interaction, "untrack", repo)

    @tree.command(name="status", description="运维：今天的运行状态（仅 ADMIN_USER_IDS）")
    @app_commands.default_permissions(administrator=True)
    async def status(interaction: discord.Interaction) -> None:
        # Hidden from ordinary members; whether the asker is an operator is the service's call.
        await run(interaction, "status")

    @tree.command(name="repos", description=about["repos"][:100])
    async def repos_(interaction: discord.Interaction) -> None:
        await run(interaction, "repos")

    @tree.command(name="help", description=about["help"][:100])
    async def help_(interaction: discord.Interaction) -> None:
        await run(interaction, "help")

    return tree


class DigestBot(discord.Client):
    """The Discord bot: slash commands only (no privileged intents, no message content)."""

    def __init__(
        self,
        service: CommandHandler,
        *,
        connector: aiohttp.BaseConnector | None = None,
        defer_after: float = DEFER_AFTER,
    ) -> None:
        super().__init__(
            intents=discord.Intents.none(),
            allowed_mentions=NO_MENTIONS,
            connector=connector,
            max_ratelimit_timeout=MAX_RATELIMIT_WAIT,
        )
        self.tree = build_tree(self, service, defer_after=defer_after)
        self.sender = DiscordChannelSender(self)

    async def setup_hook(self) -> None:
        """Register the slash commands with Discord (global commands, idempotent)."""
        synced = await self.tree.sync()
        log.info("Discord: %d slash commands registered", len(synced))


def make_bot(
    settings: Settings, service: CommandHandler, *, connector: aiohttp.BaseConnector | None = None
) -> DigestBot:
    """The bot for `run_discord`; its `sender` posts the daily digest to subscribed channels."""
    return DigestBot(service, connector=connector)


async def run_discord(
    settings: Settings,
    service: CommandHandler,
    stop_event: asyncio.Event,
    *,
    bot: DigestBot | None = None,
) -> None:
    """Run the Discord bot until `stop_event` is set; a rejected token raises LoginFailure."""
    if settings.discord_bot_token is None:
        raise ValueError("DISCORD_BOT_TOKEN is not set")
    client = bot or make_bot(settings, service)
    token = settings.discord_bot_token.get_secret_value()
    async with client:
        running = asyncio.create_task(client.start(token))
        stopping = asyncio.create_task(stop_event.wait())
        try:
            await asyncio.wait({running, stopping}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stopping.cancel()
            if not running.done():
                await client.close()
            await asyncio.wait({running})
        error = None if running.cancelled() else running.exception()
        if error is not None:
            log.error("Discord bot stopped: %s", error)
            raise error


# --- delivery ----------------------------------------------------------------------------------


class _Resume:
    """Message ids already sent per (chat, digest), so a retry continues where a send stopped."""

    def __init__(self, size: int = 1024) -> None:
        self._sent: OrderedDict[tuple[str, str], list[str]] = OrderedDict()
        self._size = size

    async def send(
        self, chat_id: str, messages: list[str], send_one: Callable[[str], Awaitable[str]]
    ) -> list[str]:
        key = (chat_id, hashlib.sha256("\0".join(messages).encode()).hexdigest())
        sent = self._sent.setdefault(key, [])
        while len(self._sent) > self._size:
            self._sent.popitem(last=False)
        try:
            for text in messages[len(sent) :]:
                sent.append(await send_one(text))
        except ChatGone:
            self._sent.pop(key, None)
            raise
        self._sent.pop(key, None)
        return list(sent)


class DiscordChannelSender:
    """Posts a digest to a channel (or DM) through the bot (`platform = "discord"`)."""

    platform = PLATFORM
    rate_per_second = BOT_MESSAGES_PER_SECOND
    # Each message is paced here (and by discord.py's buckets); the fan-out need not count them.
    paces_messages = True

    def __init__(self, client: discord.Client) -> None:
        self._client = client
        self._resume = _Resume()

    async def send_digest(self, chat_id: str, markdown: str) -> list[str]:
        """Send the digest in ≤ 2000-character messages; ChatGone when the channel is lost."""
        if self._client.user is None:
            raise RetryLater(30.0, "the Discord bot is not logged in yet")
        channel = self._client.get_partial_messageable(int(chat_id))

        async def send_one(text: str) -> str:
            try:
                message = await channel.send(
                    text, allowed_mentions=NO_MENTIONS, suppress_embeds=True
                )
            except discord.RateLimited as exc:
                raise RetryLater(exc.retry_after, "Discord rate limit") from exc
            except (discord.Forbidden, discord.NotFound) as exc:
                log.warning("Discord channel %s cannot be posted to: %s", chat_id, _describe(exc))
                raise ChatGone(f"Discord channel {chat_id}: {_describe(exc)}") from exc
            except discord.HTTPException as exc:
                if exc.status == 429:
                    raise RetryLater(_retry_after(exc), "Discord rate limit") from exc
                raise
            return str(message.id)

        return await self._resume.send(chat_id, render_messages(markdown, MESSAGE_LIMIT), send_one)

    async def send_photo(self, chat_id: str, png: bytes, caption: str) -> str:
        """Post a PNG as a file attachment with a plain caption; return the message id."""
        if self._client.user is None:
            raise RetryLater(30.0, "the Discord bot is not logged in yet")
        channel = self._client.get_partial_messageable(int(chat_id))
        try:
            message = await channel.send(
                caption_text(caption),
                file=png_file(png),
                allowed_mentions=NO_MENTIONS,
                suppress_embeds=True,
            )
        except discord.RateLimited as exc:
            raise RetryLater(exc.retry_after, "Discord rate limit") from exc
        except (discord.Forbidden, discord.NotFound) as exc:
            raise ChatGone(f"Discord channel {chat_id}: {_describe(exc)}") from exc
        except discord.HTTPException as exc:
            if exc.status == 429:
                raise RetryLater(_retry_after(exc), "Discord rate limit") from exc
            raise
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


class DiscordWebhookSender:
    """Posts a digest through webhooks (platform `discord-webhook`, chat id: `WebhookTarget`).

    discord.py paces each webhook by its rate-limit headers (5 requests / 2 s) and waits out a
    429 it is told about; a webhook that was deleted (404) or whose token is wrong (401) is gone.
    Webhook calls carry no token, so Discord's global limit (50 requests/s) counts them per IP:
    all webhooks of this sender together never make more than 50 in any second.
    """

    platform = WEBHOOK_PLATFORM
    rate_per_second = GLOBAL_REQUESTS_PER_SECOND
    # Each message is paced here (per webhook and globally); the fan-out need not count them.
    paces_messages = True

    def __init__(
        self,
        urls: Sequence[str],
        *,
        session: aiohttp.ClientSession | None = None,
    ) -> None:
        self._targets = {target.chat_id: target for target in map(parse_webhook_url, urls)}
        self._session = session
        self._owns_session = session is None
        self._resume = _Resume()
        self._per_ip = AsyncLimiter(WEBHOOK_BURST, WEBHOOK_BURST / WEBHOOK_RATE)

    @property
    def targets(self) -> tuple[str, ...]:
        """The configured webhooks' ids, the chat ids of their delivery records."""
        return tuple(self._targets)

    def _webhook(self, chat_id: str) -> tuple[discord.Webhook, discord.Object | None]:
        target = self._targets.get(chat_id)
        if target is None:
            raise ChatGone(f"Discord webhook {chat_id} is no longer configured")
        if self._session is None:
            self._session = aiohttp.ClientSession()
        webhook = discord.Webhook.from_url(target.url, session=self._session)
        return webhook, None if target.thread_id is None else discord.Object(target.thread_id)

    async def send_digest(self, chat_id: str, markdown: str) -> list[str]:
        """Send the digest in ≤ 2000-character messages; ChatGone when the webhook is gone."""
        webhook, thread = self._webhook(chat_id)

        async def send_one(text: str) -> str:
            await self._per_ip.acquire()
            with self._errors(chat_id):
                message = await webhook.send(
                    text,
                    wait=True,
                    allowed_mentions=NO_MENTIONS,
                    suppress_embeds=True,
                    thread=thread or discord.utils.MISSING,
                )
            return str(message.id)

        return await self._resume.send(chat_id, render_messages(markdown, MESSAGE_LIMIT), send_one)

    async def send_photo(self, chat_id: str, png: bytes, caption: str) -> str:
        """Post a PNG through the webhook as a file attachment with a plain caption."""
        webhook, thread = self._webhook(chat_id)
        await self._per_ip.acquire()
        with self._errors(chat_id):
            message = await webhook.send(
                caption_text(caption),
                file=png_file(png),
                wait=True,
                allowed_mentions=NO_MENTIONS,
                suppress_embeds=True,
                thread=thread or discord.utils.MISSING,
            )
        return str(message.id)

    @contextmanager
    def _errors(self, chat_id: str) -> Iterator[None]:
        """Discord's answers as the delivery layer's: gone webhooks, rate limits, the rest."""
        try:
            yield
        except (discord.NotFound, discord.Forbidden) as exc:
            raise self._gone(chat_id, exc) from exc
        except discord.HTTPException as exc:
            if exc.status == 401:
                raise self._gone(chat_id, exc) from exc
            if exc.status == 429:
                raise RetryLater(_retry_after(exc), "Discord webhook rate limit") from exc
            raise

    @staticmethod
    def _gone(chat_id: str, exc: discord.HTTPException) -> ChatGone:
        log.warning(
            "Discord webhook %s answered %s; it receives no more posts. "
            "Create a new webhook and set DISCORD_WEBHOOK_URL to it.",
            chat_id,
            _describe(exc),
        )
        return ChatGone(f"Discord webhook {chat_id}: {_describe(exc)}")

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


def _describe(exc: discord.HTTPException) -> str:
    return f"{exc.status} {exc.text or exc.response.reason}".strip()


def _retry_after(exc: discord.HTTPException) -> float:
    try:
        return max(float(exc.response.headers.get("Retry-After", "1")), 0.0)
    except ValueError:
        return 1.0


if TYPE_CHECKING:

    def _both_are_senders(webhook: DiscordWebhookSender, bot: DiscordChannelSender) -> list[Sender]:
        return [webhook, bot]
