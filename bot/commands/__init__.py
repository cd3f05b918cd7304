"""Chat commands, platform-neutral: parse, validate, decide, and return a Reply.

The Telegram and Discord adapters only translate an update into `handle(ctx, command, args)` and
the Reply into platform messages; everything a command means is decided here, once. Commands are
grouped by feature (like discord.py's cogs): each group is a small module with its own state,
its menu entries and, for the operator commands, one check in front of all of them.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from bot.commands.alerts import Alerts
from bot.commands.core import (
    TRACKED_TTL,
    ChatContext,
    ChatKind,
    ChatRecord,
    ChatStore,
    Core,
    DigestSource,
    Group,
    Handler,
    Progress,
    Refused,
    Reply,
    echo,
)
from bot.commands.help import Help, help_text
from bot.commands.operator import Operator, unknown_command
from bot.commands.reading import NO_WEEKLY, PROGRESS_TEXT, Reading, render_sections
from bot.commands.subscriptions import Subscriptions, split_release_word
from bot.commands.watches import Watches
from bot.ondemand import OnDemandLimiter, RepoAges
from bot.settings import Settings
from bot.tracking import RepoChecker
from collectors.cache import KeyValueCache
from summarizer.llm import LLMClient

__all__ = [
    "COMMAND_MENU",
    "NO_WEEKLY",
    "PROGRESS_TEXT",
    "TRACKED_TTL",
    "ChatContext",
    "ChatKind",
    "ChatRecord",
    "ChatStore",
    "CommandService",
    "DigestSource",
    "Progress",
    "Reply",
    "echo",
    "help_text",
    "render_sections",
    "split_release_word",
]

# Longer input is never a real command; it is refused before any parsing or store access.
MAX_INPUT_CHARS = 300

# The menu's display order; each group declares its own entries and their descriptions.
MENU_ORDER = (
    "digest",
    "weekly",
    "subscribe",
    "unsubscribe",
    "subscriptions",
    "settime",
    "chart",
    "alerts",
    "watch",
    "unwatch",
    "watches",
    "repos",
    "help",
)

# (command, description) for the platforms' command menus, in display order.
COMMAND_MENU: tuple[tuple[str, str], ...] = tuple(
    sorted(
        (*Reading.menu, *Subscriptions.menu, *Alerts.menu, *Watches.menu, *Help.menu),
        key=lambda entry: MENU_ORDER.index(entry[0]),
    )
)


class CommandService:
    """Decides what every chat command means by handing it to its feature group."""

    def __init__(
        self,
        settings: Settings,
        store: ChatStore,
        pipeline: DigestSource,
        *,
        clock: Callable[[], datetime],
        llm: LLMClient | None = None,
        cache: KeyValueCache | None = None,
        on_demand: OnDemandLimiter | None = None,
        checker: RepoChecker | None = None,
        ages: RepoAges | None = None,
    ) -> None:
        """`llm` and `cache` write (and keep) the weekly roll-up's text; without, structured.

        `on_demand` bounds generating days not archived yet (default: from the settings);
        `checker` asks GitHub about new repositories (`run` hands in one on its GitHub client);
        `ages` tells when repositories were created, so `/digest` answers a day before one
        without generating it (`run` hands in one; without, days are not checked).
        """
        self._core = Core(settings, store, pipeline, clock, checker)
        alerts = Alerts(self._core)
        limiter = on_demand or OnDemandLimiter(
            per_chat_day=settings.on_demand_per_chat_day,
            per_hour=settings.on_demand_per_hour,
            clock=clock,
        )
        self._groups: tuple[Group, ...] = (
            Reading(self._core, llm=llm, cache=cache, on_demand=limiter, ages=ages),
            Subscriptions(self._core, alerts),
            alerts,
            Watches(store),
            Operator(self._core),
            Help(self._core),
        )
        self._handlers: dict[str, tuple[Group, Handler]] = {}
        for group in self._groups:
            for name, handler in group.handlers().items():
                self._handlers[name] = (group, handler)

    @property
    def commands(self) -> tuple[tuple[str, str], ...]:
        """(command, description) pairs for the platforms' command menus."""
        return COMMAND_MENU

    @property
    def names(self) -> tuple[str, ...]:
        """Every command the service answers, in the menu or not (the operator commands)."""
        return tuple(self._handlers)

    async def move_chat(self, platform: str, old_chat_id: str, new_chat_id: str) -> bool:
        """A chat got a new id (a Telegram group became a supergroup): move all of it there."""
        return await self._core.store.move_chat(platform, old_chat_id, new_chat_id)

    async def handle(
        self, ctx: ChatContext, command: str, args: str, progress: Progress | None = None
    ) -> Reply:
        """Answer `/command args` sent in `ctx`; bad input gets a one-line Chinese reason."""
        name = command.strip().lstrip("/").split("@", 1)[0].lower()
        if len(command) > MAX_INPUT_CHARS or len(args) > MAX_INPUT_CHARS:
            shown = echo(f"/{name} {args}")
            return Reply(f"输入过长（{len(command) + len(args)} 个字符）：{shown}", ephemeral=True)
        found = self._handlers.get(name)
        if found is None:
            return unknown_command(name)
        group, handler = found
        try:
            # DIGEST_REPOS plus the repositories chats added: names resolve against all of them.
            await self._core.read_tracked()
            if refusal := await group.check(ctx, name):
                return refusal
            return await handler(ctx, args.strip(), progress)
        except Refused as refused:
            return Reply(refused.text, ephemeral=True)

    async def tracked_repos(self) -> tuple[str, ...]:
        """The tracked set (DIGEST_REPOS, then added repositories), e.g. for autocomplete.

        Re-read from the store at most every TRACKED_TTL; when the store fails, the last known set.
        """
        return await self._core.tracked_repos()
