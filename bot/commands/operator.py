"""Operators' commands (ADMIN_USER_IDS): /status, /track and /untrack, behind one check.

To anyone else they answer exactly as an unknown command does, so their existence is not revealed.
"""

from __future__ import annotations

from collections.abc import Mapping

from bot.commands.core import (
    NAME_RE,
    ChatContext,
    Core,
    Group,
    Handler,
    Progress,
    Refused,
    Reply,
    echo,
    who,
)
from bot.repos import resolve_repo
from bot.settings import is_repo_name
from bot.tracking import admit_repo


def unknown_command(name: str) -> Reply:
    """What any unknown command gets."""
    return Reply(f"未知命令 /{echo(name)}，发送 /help 查看用法。", ephemeral=True)


class Operator(Group):
    """The instance's status and the pinned tracked set; not in the menu."""

    def __init__(self, core: Core) -> None:
        self._core = core

    def handlers(self) -> Mapping[str, Handler]:
        """/status, /track and /untrack."""
        return {"status": self._status, "track": self._track, "untrack": self._untrack}

    async def check(self, ctx: ChatContext, command: str) -> Reply | None:
        """Only a user listed in ADMIN_USER_IDS gets past; anyone else "unknown command"."""
        if ctx.user_id is None or who(ctx) not in self._core.settings.admin_user_ids:
            return unknown_command(command)
        return None

    async def _status(self, ctx: ChatContext, _a: str, _p: Progress | None) -> Reply:
        """Today's status: runs, deliveries, the GitHub rate limit."""
        from bot.status import collect_status, render_status, status_store

        store = status_store(self._core.store)
        if store is None:  # a store without the status queries (tests' stand-ins)
            return unknown_command("status")
        return Reply(
            render_status(await collect_status(self._core.settings, store)), ephemeral=True
        )

    async def _track(self, ctx: ChatContext, args: str, _p: Progress | None) -> Reply:
        """Pin a repository in the tracked set (collected even if no chat names it)."""
        core = self._core
        name = args.strip()
        if not is_repo_name(name):
            raise Refused("用法：/track owner/name（GitHub 上的公开仓库）")
        if name.lower() in {r.lower() for r in core.settings.digest_repos}:
            return Reply(f"`{name}` 是默认仓库（DIGEST_REPOS），一直在跟踪。", ephemeral=True)
        admission = await admit_repo(
            core.store,
            core.settings,
            core.checker,
            name,
            tracked=core.tracked,
            by=who(ctx),
            pinned=True,
        )
        if admission.repo is None:
            raise Refused(admission.refusal or f"不能添加“{echo(name)}”。")
        return Reply(f"已固定跟踪 `{admission.repo}`：没有聊天订阅时也会收录，直到 /untrack。")

    async def _untrack(self, ctx: ChatContext, args: str, _p: Progress | None) -> Reply:
        """Remove a repository a chat or an operator added (not a DIGEST_REPOS one)."""
        core = self._core
        name = args.strip()
        if not NAME_RE.fullmatch(name):
            raise Refused("用法：/untrack owner/name")
        found = resolve_repo(name, core.tracked).repo or name
        if found.lower() in {r.lower() for r in core.settings.digest_repos}:
            raise Refused(f"`{found}` 是默认仓库；要停止跟踪，请修改 DIGEST_REPOS 设置。")
        if not await core.store.untrack_repo(found):
            raise Refused(f"没有额外跟踪“{echo(name)}”。发送 /repos 查看全部。")
        return Reply(f"已停止跟踪 `{found}`：不再收录，订阅它的聊天也不再收到它。")
