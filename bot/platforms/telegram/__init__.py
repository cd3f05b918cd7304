"""Telegram: rendering (render), the Sender (sender) and the command adapter (adapter)."""

from bot.platforms.pacing import RateGate
from bot.platforms.telegram.adapter import (
    AdminCheck,
    TelegramAdapter,
    build_application,
    chat_kind,
    run_telegram,
    split_command,
)
from bot.platforms.telegram.render import Rendered, clip_utf16, render_messages
from bot.platforms.telegram.sender import (
    PLATFORM,
    TelegramSender,
    is_gone,
    retry_seconds,
    telegram_sender,
)

__all__ = [
    "PLATFORM",
    "AdminCheck",
    "RateGate",
    "Rendered",
    "TelegramAdapter",
    "TelegramSender",
    "build_application",
    "chat_kind",
    "clip_utf16",
    "is_gone",
    "render_messages",
    "retry_seconds",
    "run_telegram",
    "split_command",
    "telegram_sender",
]
