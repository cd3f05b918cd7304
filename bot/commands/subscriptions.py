"""The daily post of a chat: /subscribe, /unsubscribe, /subscriptions and /settime."""

from __future__ import annotations

from collections.abc import Mapping

from bot.commands.alerts import Alerts, split_channel_word
from bot.commands.core import (
    NOT_SUBSCRIBED,
    USAGE_SUBSCRIBE,
    USAGE_UNSUBSCRIBE,
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
    word,
)
from bot.settings import parse_hhmm

USAGE_SETTIME = "用法：/settime HH:MM（00:00–23:59），例如 /settime 09:00"
# `/subscribe vllm releases`: this word makes a subscription one to release alerts.
RELEASE_WORDS = frozenset({"releases", "release", "发布"})


def split_release_word(args: str) -> tuple[str, bool]:
    """`vllm releases` → (`vllm`, True): the word asks for release alerts instead of daily posts."""
    tokens = args.split()
    kept = [t for t in tokens if t.lower() not in RELEASE_WORDS]
    return " ".join(kept), len(kept) != len(tokens)


class Subscriptions(Group):
    """What a chat receives each day and when; `releases` hands over to the alerts group."""

    menu = (
        ("subscribe", "在本聊天订阅每日推送（全部或指定仓库）"),
        ("unsubscribe", "取消订阅（全部或指定仓库）"),
        ("subscriptions", "本聊天订阅了什么、何时推送"),
        ("settime", "设置每日推送时间：/settime 09:00"),
    )

    def __init__(self, core: Core, alerts: Alerts) -> None:
        self._core = core
        self._alerts = alerts

    def handlers(self) -> Mapping[str, Handler]:
        """/subscribe, /unsubscribe, /subscriptions and /settime."""
        return {
            "subscribe": self._subscribe,
            "unsubscribe": self._unsubscribe,
            "subscriptions": self._subscriptions,
            "settime": self._settime,
        }

    async def _subscribe(self, ctx: ChatContext, args: str, _p: Progress | None) -> Reply:
        core = self._core
        if refusal := await admin_refusal(ctx):
            return refusal
        args, releases = split_release_word(args)
        prereleases = None
        if releases:  # `/subscribe vllm releases all`: pre-releases and nightlies too
            args, prereleases = split_channel_word(args)
        repos, added = await core.resolve_or_add(ctx, args, USAGE_SUBSCRIBE)
        if releases:
            return await self._alerts.on(ctx, repos, added, prereleases=prereleases)
        existing = await core.store.get_chat(ctx.platform, ctx.chat_id)
        chat = await core.store.subscribe(
            ctx.platform,
            ctx.chat_id,
            repos or None,
            by=ctx.user_id,
            post_time=existing.post_time if existing else core.settings.digest_post_time,
            timezone=existing.timezone if existing else core.settings.digest_timezone,
            thread_id=ctx.thread_id,  # sent inside a forum topic: the posts go there
        )
        await core.follow(ctx, repos, kind="daily")
        own = await core.added_by(ctx)
        topic = "日报发在本话题。" if ctx.thread_id is not None else ""
        return Reply(f"已订阅：{core.describe(chat, own)}{topic}{added_note(added)}")

    async def _unsubscribe(self, ctx: ChatContext, args: str, _p: Progress | None) -> Reply:
        core = self._core
        if refusal := await admin_refusal(ctx):
            return refusal
        args, releases = split_release_word(args)
        if releases:
            alerts = await core.store.alert_chat(ctx.platform, ctx.chat_id)
            own = alerts.repos if alerts is not None and alerts.repos else ()
            return await self._alerts.off(ctx, core.resolve_all(args, USAGE_UNSUBSCRIBE, own))
        chat = await core.store.get_chat(ctx.platform, ctx.chat_id)
        # Names resolve against the chat's own list too: one no longer tracked can be dropped.
        own_list = chat.repos if chat is not None and chat.repos else ()
        repos = core.resolve_all(args, USAGE_UNSUBSCRIBE, own_list)
        if chat is None or not chat.active:
            return Reply("本聊天没有订阅。", ephemeral=True)
        await core.store.unfollow_repos(ctx.platform, ctx.chat_id, repos or None, kind="daily")
        if not repos:
            await core.store.unsubscribe(ctx.platform, ctx.chat_id, None)
            return Reply("已取消本聊天的全部订阅。")
        # "All tracked" minus some: the store needs the tracked list to know what remains.
        updated = await core.store.unsubscribe(
            ctx.platform, ctx.chat_id, repos, tracked=core.visible(await core.added_by(ctx))
        )
        if updated is None or not updated.active:
            return Reply("已取消本聊天的全部订阅。")
        return Reply(f"已更新订阅：{core.describe(updated, await core.added_by(ctx))}")

    async def _subscriptions(self, ctx: ChatContext, _a: str, _p: Progress | None) -> Reply:
        chat = await self._core.store.get_chat(ctx.platform, ctx.chat_id)
        extras = await self._extras(ctx)
        if chat is None or not chat.active:
            return Reply(f"本聊天未订阅每日日报，发送 /subscribe 订阅。{extras}")
        own = await self._core.added_by(ctx)
        return Reply(f"本聊天订阅：{self._core.describe(chat, own)}{extras}")

    async def _extras(self, ctx: ChatContext) -> str:
        """Release alerts, watch words and opt-ins of the chat, as sentences for /subscriptions."""
        store = self._core.store
        parts = []
        chat = await store.get_chat(ctx.platform, ctx.chat_id)
        if chat is not None and chat.active and chat.chart:
            parts.append("日报附当日动态图。")
        if chat is not None and chat.active and chat.weekly:
            parts.append("每周一日报之后推送本周回顾。")
        alerts = await store.alert_chat(ctx.platform, ctx.chat_id)
        if alerts is not None:
            parts.append(f"版本发布提醒：{self._core.alert_scope(alerts)}。")
        words = await store.watches_of(ctx.platform, ctx.chat_id)
        if words:
            parts.append(f"关注词：{'、'.join(word(w) for w in words)}。")
        return "".join(parts)

    async def _settime(self, ctx: ChatContext, args: str, _p: Progress | None) -> Reply:
        if refusal := await admin_refusal(ctx):
            return refusal
        try:
            post_time = parse_hhmm(args).strftime("%H:%M")
        except ValueError:
            shown = f"“{echo(args)}”" if args else "时间"
            raise Refused(f"{shown}无效。{USAGE_SETTIME}") from None
        chat = await self._core.store.set_post_time(ctx.platform, ctx.chat_id, post_time)
        if chat is None or not chat.active:
            return Reply(NOT_SUBSCRIBED, ephemeral=True)
        return Reply(f"每日推送时间已设为 {chat.post_time}（{chat.timezone}）。")
