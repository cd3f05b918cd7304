"""Discord slash commands → CommandService calls, Replies → interaction responses.

It translates only; what a command means is decided in the command service.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Literal, Protocol

import discord
from discord import app_commands

from bot.commands import COMMAND_MENU, ChatContext, Reply
from bot.platforms.discord.render import render_messages
from bot.platforms.discord.senders import NO_MENTIONS, PLATFORM, describe
from bot.repos import short_name

log = logging.getLogger(__name__)

COMMAND_FAILED = "出错了，请稍后再试。"
# Option combinations the service has no meaning for: said so, never silently dropped.
WEEKLY_BOTH = "state 与 repos 不能同时使用：state 开关每周一的推送，repos 查看这些仓库的本周回顾。"
ALERTS_REPOS_ALONE = "repos 需要与 state 一起使用：state 选 on 或 off，再填仓库。"
# Discord wants an answer to an interaction within 3 s; a command still busy after this long is
# deferred ("thinking…") and answered with follow-ups.
DEFER_AFTER = 1.0
CHOICES = 25
_ALL_BUT_GROUP_DMS = app_commands.AppCommandContext(guild=True, dm_channel=True)


class CommandHandler(Protocol):
    """The part of `bot.commands.CommandService` the adapter calls."""

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
            log.warning("Discord interaction could not be deferred: %s", describe(exc))

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


async def refuse(interaction: discord.Interaction, text: str) -> None:
    """Answer privately with one line, without calling the service."""
    await _Answer(interaction).send(Reply(text, ephemeral=True))


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
        log.warning("Discord /%s could not be deferred: %s", command, describe(exc))
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
        if state and repos and repos.strip():
            await refuse(interaction, WEEKLY_BOTH)
            return
        await run(interaction, "weekly", state, repos)

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
        if repos and repos.strip() and not state:
            await refuse(interaction, ALERTS_REPOS_ALONE)
            return
        await run(interaction, "alerts", state, repos)

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
