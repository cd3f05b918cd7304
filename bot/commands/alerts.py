"""Release alerts: /alerts on|off [all|stable] [仓库 …] (also `/subscribe vllm releases [all]`).

Stable releases only by default: `all` adds pre-releases and nightly/rc/dev/alpha/beta tags
(flashinfer publishes a nightly every day), `stable` goes back. Turned on inside a Telegram forum
topic, alerts are posted in that topic.
"""

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
    here,
)

USAGE_ALERTS = (
    "用法：/alerts on [all|stable] [仓库 …] 或 /alerts off [仓库 …]；"
    "也可以 /subscribe vllm releases [all]（all：含预发布与 nightly）"
)
# The word choosing which releases alert: True adds pre-releases, False is stable only.
CHANNEL_WORDS = {"all": True, "全部": True, "stable": False, "正式版": False}


def split_channel_word(args: str) -> tuple[str, bool | None]:
    """`all vllm` → (`vllm`, True): pre-releases too; `stable` → False; neither → None (keep)."""
    tokens = args.split()
    kept = [t for t in tokens if t.lower() not in CHANNEL_WORDS]
    chosen = [CHANNEL_WORDS[t.lower()] for t in tokens if t.lower() in CHANNEL_WORDS]
    return " ".join(kept), (chosen[-1] if chosen else None)


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
        rest, prereleases = split_channel_word(rest)
        repos, added = await core.resolve_or_add(ctx, rest, USAGE_ALERTS)
        return await self.on(ctx, repos, added, prereleases=prereleases)

    async def on(
        self,
        ctx: ChatContext,
        repos: tuple[str, ...],
        added: tuple[str, ...],
        *,
        prereleases: bool | None = None,
    ) -> Reply:
        """Turn alerts on for `repos` (empty: all tracked); `added` were just tracked for it.

        `prereleases` True/False chooses all releases or stable ones (None: as before; stable
        for a new opt-in). Alerts go to the forum topic the command came from.
        """
        core = self._core
        current = await core.store.enable_alerts(
            ctx.platform,
            ctx.chat_id,
            repos or None,
            by=ctx.user_id,
            prereleases=prereleases,
            thread_id=ctx.thread_id,
        )
        await core.follow(ctx, repos, kind="alerts")
        minutes = f"{core.settings.release_poll_minutes:g}"
        return Reply(
            f"已开启版本发布提醒：{core.alert_scope(current)}；"
            f"新版本发布后约 {minutes} 分钟内推送到{here(ctx)}。{added_note(added)}"
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
