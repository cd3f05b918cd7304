"""Keyword watches: /watch, /unwatch and /watches (the daily post's `### 关注` section)."""

from __future__ import annotations

from collections.abc import Mapping

from bot.commands.core import (
    ChatContext,
    ChatStore,
    Group,
    Handler,
    Progress,
    Refused,
    Reply,
    admin_refusal,
    word,
)
from bot.store.types import WatchLimitExceeded
from summarizer.watch import MAX_WATCHES, MAX_WORD_CHARS, WatchWordError, parse_words

USAGE_WATCH = (
    f'用法：/watch 词 [词 …]，例如 /watch FP8 "MoE" Blackwell'
    f"（每个聊天最多 {MAX_WATCHES} 个，每个词最多 {MAX_WORD_CHARS} 个字符）"
)


class Watches(Group):
    """A chat's watch words, at most MAX_WATCHES."""

    menu = (
        ("watch", "关注关键词，日报附“关注”一节：/watch FP8 MoE"),
        ("unwatch", "取消关注关键词：/unwatch FP8"),
        ("watches", "本聊天关注的关键词"),
    )

    def __init__(self, store: ChatStore) -> None:
        self._store = store

    def handlers(self) -> Mapping[str, Handler]:
        """/watch, /unwatch and /watches."""
        return {"watch": self._watch, "unwatch": self._unwatch, "watches": self._watches}

    async def _watch(self, ctx: ChatContext, args: str, _p: Progress | None) -> Reply:
        try:
            words = parse_words(args)
        except WatchWordError as exc:
            raise Refused(f"{exc} {USAGE_WATCH}") from None
        if not words:
            raise Refused(USAGE_WATCH)
        if len(words) > MAX_WATCHES:
            raise Refused(f"一次最多关注 {MAX_WATCHES} 个词（收到 {len(words)} 个）。{USAGE_WATCH}")
        if refusal := await admin_refusal(ctx):
            return refusal
        try:
            change = await self._store.add_watches(
                ctx.platform, ctx.chat_id, words, limit=MAX_WATCHES
            )
        except WatchLimitExceeded as exc:
            raise Refused(
                f"本聊天已关注 {exc.current} 个词，再加 {exc.adding} 个会超过上限 {exc.limit} 个；"
                "请先用 /unwatch 删除一些。"
            ) from None
        shown = "、".join(word(w) for w in change.added) or "（没有新词）"
        text = f"已关注：{shown}；本聊天共关注 {change.total} 个词。"
        if change.existing:
            text += f"已在关注：{'、'.join(word(w) for w in change.existing)}。"
        chat = await self._store.get_chat(ctx.platform, ctx.chat_id)
        if chat is None or not chat.active:
            text += "本聊天尚未订阅每日日报，发送 /subscribe 后日报会附上“关注”一节。"
        else:
            text += "每日日报会附上“关注”一节。"
        return Reply(text)

    async def _unwatch(self, ctx: ChatContext, args: str, _p: Progress | None) -> Reply:
        try:
            words = parse_words(args)
        except WatchWordError as exc:
            raise Refused(str(exc)) from None
        if not words:
            raise Refused("用法：/unwatch 词 [词 …]；发送 /watches 查看本聊天关注的词。")
        if refusal := await admin_refusal(ctx):
            return refusal
        removed = await self._store.remove_watches(ctx.platform, ctx.chat_id, words)
        if not removed:
            return Reply("本聊天没有关注这些词；发送 /watches 查看。", ephemeral=True)
        left = await self._store.watches_of(ctx.platform, ctx.chat_id)
        return Reply(f"已取消关注：{'、'.join(word(w) for w in removed)}；还剩 {len(left)} 个。")

    async def _watches(self, ctx: ChatContext, _a: str, _p: Progress | None) -> Reply:
        words = await self._store.watches_of(ctx.platform, ctx.chat_id)
        if not words:
            return Reply("本聊天没有关注的词；发送 /watch FP8 MoE 添加。")
        listed = "、".join(word(w) for w in words)
        return Reply(f"本聊天关注的词（{len(words)}/{MAX_WATCHES}）：{listed}")
