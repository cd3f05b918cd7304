"""/help, /start and /repos: how to use the bot and which repositories it follows."""

from __future__ import annotations

from collections.abc import Mapping

from bot.commands.core import ChatContext, Core, Group, Handler, Progress, Reply
from bot.repos import short_name


def help_text() -> str:
    """The usage text of /help and /start."""
    return "\n".join(
        [
            "**命令**",
            "- /digest — 最新日报（本聊天订阅的仓库，未订阅则全部）",
            "- /digest vllm — 某个仓库的部分",
            "- /digest 2026-02-04 · /digest vllm 2026-02-04 — 过去某天",
            "- /weekly [仓库] — 本周回顾（最近 7 天的存档：发布、重要 PR、待解决问题、统计）",
            "- /weekly on|off — 每周一日报之后推送本周回顾",
            "- /chart on|off — 日报之后附上当日动态图",
            "- /subscribe [仓库 …] — 在本聊天每日推送（全部或指定仓库）",
            "- /unsubscribe [仓库 …] — 取消全部或指定仓库",
            "- /subscriptions — 本聊天订阅了什么、何时推送",
            "- /settime HH:MM — 每日推送时间",
            "- /subscribe owner/name — 跟踪并订阅默认列表以外的公开仓库",
            "- /alerts on|off · /subscribe vllm releases — 新版本发布时立即提醒",
            '- /watch FP8 "MoE" · /unwatch FP8 · /watches — 关注关键词，日报附“关注”一节',
            "- /repos — 跟踪的仓库及简称",
            "",
            "群组和频道里只有管理员可以更改订阅。",
        ]
    )


class Help(Group):
    """Usage and the tracked repositories with their short names."""

    menu = (
        ("repos", "跟踪的仓库及其简称"),
        ("help", "使用说明"),
    )

    def __init__(self, core: Core) -> None:
        self._core = core

    def handlers(self) -> Mapping[str, Handler]:
        """/repos, /help and /start (Telegram's first message; not in the menu)."""
        return {"repos": self._repos, "help": self._help, "start": self._start}

    async def _repos(self, ctx: ChatContext, _a: str, _p: Progress | None) -> Reply:
        # The shared set, then what this chat added: another chat's additions are its own.
        tracked = self._core.visible(await self._core.added_by(ctx))
        shorts = [short_name(r).lower() for r in tracked]
        lines = ["跟踪的仓库（命令里可用全名或简称，不区分大小写）："]
        for repo in tracked:
            short = short_name(repo)
            unique = shorts.count(short.lower()) == 1
            lines.append(f"- `{repo}`" + (f"（{short}）" if unique else ""))
        return Reply("\n".join(lines))

    async def _help(self, _c: ChatContext, _a: str, _p: Progress | None) -> Reply:
        return Reply(help_text())

    async def _start(self, _c: ChatContext, _a: str, _p: Progress | None) -> Reply:
        return Reply("你好！我每天用中文总结 AI Infra 开源仓库的 GitHub 动态。\n\n" + help_text())
