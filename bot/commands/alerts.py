"""Release alerts: /alerts on|off [仓库 …] (also reached by `/subscribe vllm releases`)."""

from __future__ import annotations

from collections.abc import Mapping

from bot.commands.core import (
    ChatContext,
    Core,
    Group,
    Handler,
    Progress,
    Refused,
    Reply,
    added_note,
    admin_refusal,
    echo,
)

USAGE_ALERTS = "用法：/alerts on [仓库 …] 或 /alerts off [仓库 …]；也可以 /subscribe vllm releases"


class Alerts(Group):
    """Release alerts per chat: all tracked repositories or the named ones."""

    menu = (("alerts", "版本发布提醒：/alerts on 或 /alerts off"),)

    def __init__(self, core: Core) -> None:
        self._core = core

    def handlers(self) -> Mapping[str, Handler]:
        """/alerts."""
        return {"alerts": self._alerts}

    async def _alerts(self, ctx: ChatContext, args: str, _p: Progress | None) -> Reply:
        core = self._core
        mode, _, rest = args.partition(" ")
        mode = mode.lower()
        if not mode:
            current = await core.store.alert_chat(ctx.platform, ctx.chat_id)
            if current is None:
                return Reply("本聊天未开启版本发布提醒；发送 /alerts on 开启。")
            return Reply(f"本聊天已开启版本发布提醒：{core.alert_scope(current)}。")
        if mode not in ("on", "off"):
            raise Refused(f"无法识别“{echo(mode)}”。{USAGE_ALERTS}")
        if refusal := await admin_refusal(ctx):
            return refusal
        if mode == "off":
            return await self.off(ctx, core.resolve_all(rest, USAGE_ALERTS))
        repos, added = await core.resolve_or_add(ctx, rest, USAGE_ALERTS)
        return await self.on(ctx, repos, added)

    async def on(self, ctx: ChatContext, repos: tuple[str, ...], added: tuple[str, ...]) -> Reply:
        """Turn alerts on for `repos` (empty: all tracked); `added` were just tracked for it."""
        core = self._core
        current = await core.store.enable_alerts(
            ctx.platform, ctx.chat_id, repos or None, by=ctx.user_id
        )
        await core.follow(ctx, repos, kind="alerts")
        minutes = f"{core.settings.release_poll_minutes:g}"
        return Reply(
            f"已开启版本发布提醒：{core.alert_scope(current)}；"
            f"新版本发布后约 {minutes} 分钟内推送到本聊天。{added_note(added)}"
        )

    async def off(self, ctx: ChatContext, repos: tuple[str, ...]) -> Reply:
        """Turn alerts off for `repos` (empty: all of them)."""
        core = self._core
        if await core.store.alert_chat(ctx.platform, ctx.chat_id) is None:
            return Reply("本聊天没有开启版本发布提醒。", ephemeral=True)
        await core.store.unfollow_repos(ctx.platform, ctx.chat_id, repos or None, kind="alerts")
        left = await core.store.disable_alerts(
            ctx.platform, ctx.chat_id, repos or None, tracked=core.shared
        )
        if left is None:
            return Reply("已关闭本聊天的版本发布提醒。")
        return Reply(f"已更新版本发布提醒：{core.alert_scope(left)}。")
