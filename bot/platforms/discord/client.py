"""The Discord bot client: the gateway connection that receives slash commands."""

from __future__ import annotations

import asyncio
import logging

import aiohttp
import discord

from bot.platforms.discord.senders import MAX_RATELIMIT_WAIT, NO_MENTIONS, DiscordChannelSender
from bot.platforms.discord.slash import DEFER_AFTER, CommandHandler, build_tree
from bot.settings import Settings

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


# --- delivery ----------------------------------------------------------------------------------
