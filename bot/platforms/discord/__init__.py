"""Discord: rendering (render), slash commands (slash), the bot client (client), senders."""

from bot.platforms.discord.client import (
    GATEWAY_LOCK,
    DigestBot,
    Gateway,
    make_bot,
    run_discord,
    run_gateway,
)
from bot.platforms.discord.senders import (
    PLATFORM,
    WEBHOOK_PLATFORM,
    DiscordChannelSender,
    DiscordWebhookSender,
    WebhookTarget,
    discord_channel_sender,
    discord_webhook_sender,
    make_webhook_sender,
    parse_webhook_url,
    register_webhooks,
)
from bot.platforms.discord.slash import (
    build_tree,
    chat_context,
    repo_choices,
    repo_list_choices,
)

__all__ = [
    "GATEWAY_LOCK",
    "PLATFORM",
    "WEBHOOK_PLATFORM",
    "DigestBot",
    "DiscordChannelSender",
    "DiscordWebhookSender",
    "Gateway",
    "WebhookTarget",
    "build_tree",
    "chat_context",
    "discord_channel_sender",
    "discord_webhook_sender",
    "make_bot",
    "make_webhook_sender",
    "parse_webhook_url",
    "register_webhooks",
    "repo_choices",
    "repo_list_choices",
    "run_discord",
    "run_gateway",
]
