"""The Discord bot client: the gateway connection that receives slash commands.

Discord delivers every interaction to every gateway session of a bot, so with several instances
only one may be connected: `run_gateway` opens the connection while this instance holds the
`discord:gateway` lease (`bot.fleet.Election`, as for the Telegram poller) and closes it when the
lease is lost. Posting digests needs no gateway: every instance posts through the REST API
(`discord_channel_sender`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

import aiohttp
import discord

from bot.platforms.discord.senders import MAX_RATELIMIT_WAIT, NO_MENTIONS, DiscordChannelSender
from bot.platforms.discord.slash import DEFER_AFTER, CommandHandler, build_tree
from bot.settings import Settings

if TYPE_CHECKING:
    from bot.fleet import Leases

log = logging.getLogger(__name__)


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


# --- one gateway among several instances ---------------------------------------------------------

GATEWAY_LOCK = "discord:gateway"
# How long closing a gateway connection may take before its task is cancelled.
CLOSE_TIMEOUT = 5.0


class Gateway:
    """The gateway connection that answers slash commands, opened and closed on demand.

    Each `open` makes a fresh client (a closed discord.py client cannot start again): it logs in
    (which also registers the slash commands) and then holds the gateway until `close`.
    """

    def __init__(
        self,
        settings: Settings,
        service: CommandHandler,
        *,
        connector: Callable[[], aiohttp.BaseConnector] | None = None,
        defer_after: float = DEFER_AFTER,
    ) -> None:
        if settings.discord_bot_token is None:
            raise ValueError("DISCORD_BOT_TOKEN is not set")
        self._token = settings.discord_bot_token.get_secret_value()
        self._service = service
        self._connector = connector
        self._defer_after = defer_after
        self._bot: DigestBot | None = None
        self._task: asyncio.Task[None] | None = None

    @property
    def connected(self) -> bool:
        """True while this instance's gateway connection is open (or being opened)."""
        return self._task is not None and not self._task.done()

    async def open(self) -> None:
        """Log in and connect; a rejected token or an unreachable API raises (lease given back)."""
        if self.connected:
            return
        connector = self._connector() if self._connector is not None else None
        bot = DigestBot(self._service, connector=connector, defer_after=self._defer_after)
        try:
            await bot.login(self._token)
        except BaseException:
            await bot.close()
            raise
        self._bot = bot
        self._task = asyncio.create_task(self._hold(bot))
        log.info("Discord: gateway connection opened on this instance")

    @staticmethod
    async def _hold(bot: DigestBot) -> None:
        # discord.py reconnects by itself after network errors; what ends here is fatal.
        try:
            await bot.connect(reconnect=True)
        except Exception as exc:
            log.error("Discord gateway stopped: %s", " ".join(str(exc).split())[:200])

    async def close(self) -> None:
        """Close the gateway connection (another instance may open its own afterwards)."""
        bot, task = self._bot, self._task
        self._bot = self._task = None
        if bot is not None:
            await bot.close()
        if task is not None:
            try:
                await asyncio.wait_for(task, CLOSE_TIMEOUT)
            except TimeoutError:
                log.warning("Discord: the gateway did not close in %.0f s", CLOSE_TIMEOUT)
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if bot is not None:
            log.info("Discord: gateway connection closed on this instance")


async def run_gateway(
    settings: Settings,
    service: CommandHandler,
    store: Leases,
    worker: str,
    stop: asyncio.Event,
    *,
    ttl: float = 30.0,
    connector: Callable[[], aiohttp.BaseConnector] | None = None,
    defer_after: float = DEFER_AFTER,
) -> None:
    """Answer slash commands on this instance while it holds the gateway lease, until `stop`.

    Exactly one of any number of instances holds the lease; when it dies, another takes over
    within about `ttl` plus one renewal interval (`ttl / 3`).
    """
    from bot.fleet import Election

    gateway = Gateway(settings, service, connector=connector, defer_after=defer_after)
    election = Election(store, GATEWAY_LOCK, worker, ttl=ttl)
    await election.run(stop, gateway.open, gateway.close)


# --- delivery ----------------------------------------------------------------------------------
