"""Chat commands, platform-neutral: parse, validate, decide, and return a Reply.

The Telegram and Discord adapters only translate an update into `handle(ctx, command, args)` and
the Reply into platform messages; everything a command means is decided here, once.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Literal, Protocol

from bot.repos import resolve_repo, short_name
from bot.settings import Settings, parse_hhmm
from collectors.window import today as local_today
from summarizer.digest import NO_UPDATES, Digest, render_markdown

log = logging.getLogger(__name__)

ChatKind = Literal["private", "group", "channel"]
Progress = Callable[[str], Awaitable[None]]

# Longer input is never a real command; it is refused before any parsing or store access.
MAX_INPUT_CHARS = 300
# What is echoed back of a user's input: enough to recognise, too little to abuse.
ECHO_CHARS = 32
MAX_DIGEST_TOKENS = 9
# On-demand generation costs GitHub and model quota; archived days of any age are still served.
ON_DEMAND_DAYS = 90
RENDER_CACHE_SIZE = 512

PROGRESS_TEXT = "正在生成…"
USAGE_DIGEST = "用法：/digest [仓库] [YYYY-MM-DD]，例如 /digest vllm 2026-02-04"
USAGE_SETTIME = "用法：/settime HH:MM（00:00–23:59），例如 /settime 09:00"
GENERATION_FAILED = "生成日报失败，请稍后再试。"

# (command, description) for the platforms' command menus, in display order.
COMMAND_MENU: tuple[tuple[str, str], ...] = (
    ("digest", "最新日报；可加仓库和/或日期：/digest vllm 2026-02-04"),
    ("subscribe", "在本聊天订阅每日推送（全部或指定仓库）"),
    ("unsubscribe", "取消订阅（全部或指定仓库）"),
    ("subscriptions", "本聊天订阅了什么、何时推送"),
    ("settime", "设置每日推送时间：/settime 09:00"),
    ("repos", "跟踪的仓库及其简称"),
    ("help", "使用说明"),
)

_DAY_RE = re.compile(r"(\d{4})-(\d{1,2})-(\d{1,2})")
_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}(?:/[A-Za-z0-9._-]{1,100})?")
_MARKDOWN_SPECIAL = re.compile(r"([\\`*_\[\]()~>#+\-=|{}.!<&])")
_CONTROL = re.compile(r"[\x00-\x1f\x7f\u2028\u2029]+")


@dataclass(frozen=True)
class ChatContext:
    """Where a command came from, and how to ask whether its sender administers the chat."""

    platform: str
    chat_id: str
    chat_kind: ChatKind
    user_id: str | None
    is_admin: Callable[[], Awaitable[bool]]


@dataclass(frozen=True)
class Reply:
    """The answer to a command, in the readers' Markdown; `ephemeral` hints "only the asker"."""

    text: str
    ephemeral: bool = False


class ChatRecord(Protocol):
    """What the service reads of a stored chat (`bot.store.types.Chat` satisfies it)."""

    @property
    def repos(self) -> tuple[str, ...] | None: ...
    @property
    def post_time(self) -> str: ...
    @property
    def timezone(self) -> str: ...
    @property
    def active(self) -> bool: ...


class ChatStore(Protocol):
    """The part of `bot.store.Store` the commands use."""

    async def get_chat(self, platform: str, chat_id: str) -> ChatRecord | None: ...

    async def subscribe(
        self,
        platform: str,
        chat_id: str,
        repos: Sequence[str] | None,
        *,
        by: str | None,
        post_time: str,
        timezone: str,
    ) -> ChatRecord: ...

    async def unsubscribe(
        self,
        platform: str,
        chat_id: str,
        repos: Sequence[str] | None,
        *,
        tracked: Sequence[str] = (),
    ) -> ChatRecord | None: ...

    async def set_post_time(
        self, platform: str, chat_id: str, post_time: str
    ) -> ChatRecord | None: ...


class DigestSource(Protocol):
    """The part of `bot.pipeline.Pipeline` the commands use."""

    async def has_digest(self, day: date) -> bool: ...
    async def latest_day(self) -> date | None: ...
    async def digest_for(self, day: date, repos: Sequence[str] | None) -> Digest: ...


class _Refused(Exception):
    """Bad input: the reply says why in one line (never a traceback)."""

    def __init__(self, text: str) -> None:
        super().__init__(text)
        self.text = text


def echo(value: str) -> str:
    """A user's input made safe to show back: one line, truncated, Markdown-escaped, no mentions."""
    flat = _CONTROL.sub(" ", value).strip()
    cut = flat[:ECHO_CHARS]
    escaped = _MARKDOWN_SPECIAL.sub(r"\\\1", cut).replace("@", "@\u200b")
    return escaped + ("…" if len(flat) > ECHO_CHARS else "")


def parse_day(token: str) -> date | None:
    """`YYYY-MM-DD` → date; None when the token is not date-shaped; _Refused when impossible."""
    match = _DAY_RE.fullmatch(token)
    if match is None:
        return None
    try:
        return date(int(match[1]), int(match[2]), int(match[3]))
    except ValueError:
        raise _Refused(f"日期“{echo(token)}”不存在。{USAGE_DIGEST}") from None


@dataclass(frozen=True)
class DigestRequest:
    """A parsed `/digest`: the day (None = latest) and the named repositories (tracked order)."""

    day: date | None
    repos: tuple[str, ...]


class CommandService:
    """Decides what every chat command means and answers it with a Reply."""

    def __init__(
        self,
        settings: Settings,
        store: ChatStore,
        pipeline: DigestSource,
        *,
        clock: Callable[[], datetime],
    ) -> None:
        self._settings = settings
        self._store = store
        self._pipeline = pipeline
        self._clock = clock
        self._tracked: tuple[str, ...] = tuple(settings.digest_repos)
        # Rendered text per (day, view, repos), valid while the pipeline hands back the same Digest.
        self._rendered: OrderedDict[tuple[date, str, tuple[str, ...] | None], tuple[Digest, str]]
        self._rendered = OrderedDict()
        self._inflight: dict[tuple[date, tuple[str, ...] | None], asyncio.Task[Digest]] = {}
        self._handlers: dict[str, Callable[[ChatContext, str, Progress | None], Awaitable[Reply]]]
        self._handlers = {
            "digest": self._digest,
            "subscribe": self._subscribe,
            "unsubscribe": self._unsubscribe,
            "subscriptions": self._subscriptions,
            "settime": self._settime,
            "repos": self._repos,
            "help": self._help,
            "start": self._start,
            "status": self._status,  # operators only; not in COMMAND_MENU
        }

    @property
    def commands(self) -> tuple[tuple[str, str], ...]:
        """(command, description) pairs for the platforms' command menus."""
        return COMMAND_MENU

    async def handle(
        self, ctx: ChatContext, command: str, args: str, progress: Progress | None = None
    ) -> Reply:
        """Answer `/command args` sent in `ctx`; bad input gets a one-line Chinese reason."""
        name = command.strip().lstrip("/").split("@", 1)[0].lower()
        if len(command) > MAX_INPUT_CHARS or len(args) > MAX_INPUT_CHARS:
            shown = echo(f"/{name} {args}")
            return Reply(f"输入过长（{len(command) + len(args)} 个字符）：{shown}", ephemeral=True)
        handler = self._handlers.get(name)
        if handler is None:
            return Reply(f"未知命令 /{echo(name)}，发送 /help 查看用法。", ephemeral=True)
        try:
            return await handler(ctx, args.strip(), progress)
        except _Refused as refused:
            return Reply(refused.text, ephemeral=True)

    # -- /digest -----------------------------------------------------------------------------

    def parse_digest_args(self, args: str) -> DigestRequest:
        """Split `/digest` arguments into at most one day and any tracked repositories."""
        tokens = args.split()
        if len(tokens) > MAX_DIGEST_TOKENS:
            raise _Refused(f"参数太多。{USAGE_DIGEST}")
        day: date | None = None
        repos: list[str] = []
        for token in tokens:
            parsed = parse_day(token)
            if parsed is not None:
                if day is not None and parsed != day:
                    raise _Refused(f"只能指定一个日期。{USAGE_DIGEST}")
                day = parsed
                continue
            repos.append(self._resolve(token))
        return DigestRequest(day, tuple(r for r in self._tracked if r in repos))

    async def _digest(self, ctx: ChatContext, args: str, progress: Progress | None) -> Reply:
        request = self.parse_digest_args(args)
        today = local_today(self._settings.digest_timezone, self._clock())
        day = request.day if request.day is not None else await self._default_day(today)
        if day >= today:
            raise _Refused(f"{day.isoformat()} 还没有结束，日报在次日生成。{USAGE_DIGEST}")
        repos: tuple[str, ...] | None
        if len(request.repos) == 1:
            view, repos = "section", request.repos
        elif request.repos:
            view, repos = "sections", request.repos
        else:
            view, repos = "digest", await self._chat_repos(ctx)
        if not await self._pipeline.has_digest(day):
            if day < today - timedelta(days=ON_DEMAND_DAYS):
                raise _Refused(
                    f"没有 {day.isoformat()} 的存档；只能生成最近 {ON_DEMAND_DAYS} 天的日报。"
                )
            if progress is not None:
                await progress(PROGRESS_TEXT)
        try:
            digest = await self._shared_digest(day, repos if view == "digest" else None)
        except Exception:
            log.exception("digest of %s for %s could not be made", day, repos or "all")
            return Reply(GENERATION_FAILED, ephemeral=True)
        return Reply(self._render(digest, day, view, repos))

    async def _default_day(self, today: date) -> date:
        """The latest digest: the archived day if it is yesterday or the day before, else yesterday.

        Just after midnight yesterday's digest may not be written yet; the one before is the
        latest then. An older archive means the bot was down, and yesterday is generated.
        """
        yesterday = today - timedelta(days=1)
        latest = await self._pipeline.latest_day()
        if latest is not None and yesterday - timedelta(days=1) <= latest <= yesterday:
            return latest
        return yesterday

    async def _chat_repos(self, ctx: ChatContext) -> tuple[str, ...] | None:
        """The chat's subscribed set, or None (all tracked) when it follows all or none."""
        chat = await self._store.get_chat(ctx.platform, ctx.chat_id)
        if chat is None or not chat.active or not chat.repos:
            return None
        wanted = {r.lower() for r in chat.repos}
        chosen = tuple(r for r in self._tracked if r.lower() in wanted)
        return chosen or None

    async def _shared_digest(self, day: date, repos: tuple[str, ...] | None) -> Digest:
        """The pipeline's digest; concurrent askers of the same (day, repos) share one call."""
        key = (day, repos)
        task = self._inflight.get(key)
        if task is None:
            task = asyncio.ensure_future(self._pipeline.digest_for(day, repos))
            self._inflight[key] = task
            task.add_done_callback(lambda _t: self._inflight.pop(key, None))
        return await asyncio.shield(task)

    def _render(self, digest: Digest, day: date, view: str, repos: tuple[str, ...] | None) -> str:
        """Render (cached while the pipeline returns the same Digest object)."""
        key = (day, view, repos)
        cached = self._rendered.get(key)
        if cached is not None and cached[0] is digest:
            self._rendered.move_to_end(key)
            return cached[1]
        text = render_markdown(digest) if view == "digest" else render_sections(digest, repos or ())
        self._rendered[key] = (digest, text)
        while len(self._rendered) > RENDER_CACHE_SIZE:
            self._rendered.popitem(last=False)
        return text

    # -- subscriptions -----------------------------------------------------------------------

    async def _subscribe(self, ctx: ChatContext, args: str, _p: Progress | None) -> Reply:
        if refusal := await self._admin_refusal(ctx):
            return refusal
        repos = self._resolve_all(args)
        existing = await self._store.get_chat(ctx.platform, ctx.chat_id)
        chat = await self._store.subscribe(
            ctx.platform,
            ctx.chat_id,
            repos or None,
            by=ctx.user_id,
            post_time=existing.post_time if existing else self._settings.digest_post_time,
            timezone=existing.timezone if existing else self._settings.digest_timezone,
        )
        return Reply(f"已订阅：{self._describe(chat)}")

    async def _unsubscribe(self, ctx: ChatContext, args: str, _p: Progress | None) -> Reply:
        if refusal := await self._admin_refusal(ctx):
            return refusal
        repos = self._resolve_all(args)
        chat = await self._store.get_chat(ctx.platform, ctx.chat_id)
        if chat is None or not chat.active:
            return Reply("本聊天没有订阅。", ephemeral=True)
        if not repos:
            await self._store.unsubscribe(ctx.platform, ctx.chat_id, None)
            return Reply("已取消本聊天的全部订阅。")
        # "All tracked" minus some: the store needs the tracked list to know what remains.
        updated = await self._store.unsubscribe(
            ctx.platform, ctx.chat_id, repos, tracked=self._tracked
        )
        if updated is None or not updated.active:
            return Reply("已取消本聊天的全部订阅。")
        return Reply(f"已更新订阅：{self._describe(updated)}")

    async def _subscriptions(self, ctx: ChatContext, _a: str, _p: Progress | None) -> Reply:
        chat = await self._store.get_chat(ctx.platform, ctx.chat_id)
        if chat is None or not chat.active:
            return Reply("本聊天未订阅每日日报，发送 /subscribe 订阅。")
        return Reply(f"本聊天订阅：{self._describe(chat)}")

    async def _settime(self, ctx: ChatContext, args: str, _p: Progress | None) -> Reply:
        if refusal := await self._admin_refusal(ctx):
            return refusal
        try:
            post_time = parse_hhmm(args).strftime("%H:%M")
        except ValueError:
            shown = f"“{echo(args)}”" if args else "时间"
            raise _Refused(f"{shown}无效。{USAGE_SETTIME}") from None
        chat = await self._store.set_post_time(ctx.platform, ctx.chat_id, post_time)
        if chat is None or not chat.active:
            return Reply("本聊天尚未订阅，请先发送 /subscribe。", ephemeral=True)
        return Reply(f"每日推送时间已设为 {chat.post_time}（{chat.timezone}）。")

    async def _admin_refusal(self, ctx: ChatContext) -> Reply | None:
        """A polite refusal when a non-administrator tries to change a group's subscription."""
        if ctx.chat_kind == "private" or await ctx.is_admin():
            return None
        return Reply("抱歉，只有本群管理员可以更改订阅。", ephemeral=True)

    def _describe(self, chat: ChatRecord) -> str:
        """`全部 8 个仓库；每天 09:00（Asia/Shanghai）推送。`"""
        every = f"全部 {len(self._tracked)} 个跟踪的仓库"
        what = "、".join(chat.repos) if chat.repos else every
        return f"{what}；每天 {chat.post_time}（{chat.timezone}）推送。"

    # -- repositories and help ---------------------------------------------------------------

    def _resolve(self, token: str) -> str:
        """One user-typed name → a tracked repository, else _Refused with suggestions."""
        if not _NAME_RE.fullmatch(token) or ".." in token:
            raise _Refused(f"无法识别“{echo(token)}”。{USAGE_DIGEST}")
        found = resolve_repo(token, self._tracked)
        if found.repo is not None:
            return found.repo
        if len(found.suggestions) > 1 and found.reason.endswith("ambiguous"):
            options = "、".join(found.suggestions)
            raise _Refused(f"“{echo(token)}”对应多个仓库：{options}，请写全名。")
        hint = f"你是不是想找：{'、'.join(found.suggestions)}？" if found.suggestions else ""
        raise _Refused(f"没有跟踪仓库“{echo(token)}”。{hint}发送 /repos 查看全部。")

    def _resolve_all(self, args: str) -> tuple[str, ...]:
        """Names in `args` → tracked repositories in tracked order (empty: none named)."""
        tokens = args.split()
        if len(tokens) > len(self._tracked) + 4:
            raise _Refused("仓库太多。用法：/subscribe [仓库 …]，发送 /repos 查看全部。")
        chosen = {self._resolve(token) for token in tokens}
        return tuple(r for r in self._tracked if r in chosen)

    async def _repos(self, _c: ChatContext, _a: str, _p: Progress | None) -> Reply:
        shorts = [short_name(r).lower() for r in self._tracked]
        lines = ["跟踪的仓库（命令里可用全名或简称，不区分大小写）："]
        for repo in self._tracked:
            short = short_name(repo)
            unique = shorts.count(short.lower()) == 1
            lines.append(f"- `{repo}`" + (f"（{short}）" if unique else ""))
        return Reply("\n".join(lines))

    async def _help(self, _c: ChatContext, _a: str, _p: Progress | None) -> Reply:
        return Reply(help_text())

    async def _start(self, _c: ChatContext, _a: str, _p: Progress | None) -> Reply:
        return Reply("你好！我每天用中文总结 AI Infra 开源仓库的 GitHub 动态。\n\n" + help_text())

    async def _status(self, ctx: ChatContext, _a: str, _p: Progress | None) -> Reply:
        """Operators (ADMIN_USER_IDS) get today's status; anyone else the unknown-command answer."""
        from bot.status import collect_status, render_status, status_store

        admins = self._settings.admin_user_ids
        store = status_store(self._store)
        if ctx.user_id is None or f"{ctx.platform}:{ctx.user_id}" not in admins or store is None:
            # Exactly what an unknown command gets, so the command's existence is not revealed.
            return Reply("未知命令 /status，发送 /help 查看用法。", ephemeral=True)
        return Reply(render_status(await collect_status(self._settings, store)), ephemeral=True)


def help_text() -> str:
    """The usage text of /help and /start."""
    return "\n".join(
        [
            "**命令**",
            "- /digest — 最新日报（本聊天订阅的仓库，未订阅则全部）",
            "- /digest vllm — 某个仓库的部分",
            "- /digest 2026-02-04 · /digest vllm 2026-02-04 — 过去某天",
            "- /subscribe [仓库 …] — 在本聊天每日推送（全部或指定仓库）",
            "- /unsubscribe [仓库 …] — 取消全部或指定仓库",
            "- /subscriptions — 本聊天订阅了什么、何时推送",
            "- /settime HH:MM — 每日推送时间",
            "- /repos — 跟踪的仓库及简称",
            "",
            "群组和频道里只有管理员可以更改订阅。",
        ]
    )


def render_sections(digest: Digest, repos: Sequence[str]) -> str:
    """The named repositories' sections with their headings and the digest's date."""
    parts: list[str] = []
    for repo in repos:
        section = digest.section(repo)
        body = section.markdown.strip() if section is not None else ""
        if section is None:
            body = f"{digest.day.isoformat()} 的日报不含这个仓库。"
        parts.append(f"### {repo}（{digest.day.isoformat()}）\n{body or NO_UPDATES}")
    return "\n\n".join(parts) + "\n"
