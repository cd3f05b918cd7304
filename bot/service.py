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
from bot.settings import Settings, is_repo_name, parse_hhmm
from bot.store.types import AlertChat, TrackedRepo, WatchChange, WatchLimitExceeded
from bot.tracking import RepoChecker, admit_repo, tracked_set
from collectors.activity import DayActivity
from collectors.cache import KeyValueCache
from collectors.window import today as local_today
from summarizer.digest import NO_UPDATES, Digest, render_markdown
from summarizer.guard import escape_markdown_text
from summarizer.llm import LLMClient
from summarizer.watch import (
    MAX_WATCHES,
    MAX_WORD_CHARS,
    WatchWordError,
    parse_words,
    with_watch_section,
)
from summarizer.weekly import WEEK_DAYS, render_weekly_markdown

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
# Autocomplete asks on every keystroke; the tracked set changes rarely (and this instance's own
# additions are seen at once), so it is re-read from the store at most this often.
TRACKED_TTL = timedelta(seconds=30)

PROGRESS_TEXT = "正在生成…"
USAGE_DIGEST = "用法：/digest [仓库] [YYYY-MM-DD]，例如 /digest vllm 2026-02-04"
USAGE_SETTIME = "用法：/settime HH:MM（00:00–23:59），例如 /settime 09:00"
GENERATION_FAILED = "生成日报失败，请稍后再试。"
USAGE_WATCH = (
    f'用法：/watch 词 [词 …]，例如 /watch FP8 "MoE" Blackwell'
    f"（每个聊天最多 {MAX_WATCHES} 个，每个词最多 {MAX_WORD_CHARS} 个字符）"
)
USAGE_ALERTS = "用法：/alerts on [仓库 …] 或 /alerts off [仓库 …]；也可以 /subscribe vllm releases"
USAGE_WEEKLY = "用法：/weekly [仓库 …] 查看本周回顾；/weekly on 或 /weekly off 开关每周一的推送"
USAGE_CHART = "用法：/chart on 或 /chart off（日报之后附上当日动态图）"
NO_WEEKLY = "本周还没有存档的简报。"
WEEKLY_FAILED = "生成本周回顾失败，请稍后再试。"
NOT_SUBSCRIBED = "本聊天尚未订阅，请先发送 /subscribe。"
# `/subscribe vllm releases`: this word makes a subscription one to release alerts.
RELEASE_WORDS = frozenset({"releases", "release", "发布"})

# (command, description) for the platforms' command menus, in display order.
COMMAND_MENU: tuple[tuple[str, str], ...] = (
    ("digest", "最新日报；可加仓库和/或日期：/digest vllm 2026-02-04"),
    ("weekly", "本周回顾（最近 7 天）；/weekly on 每周一推送"),
    ("subscribe", "在本聊天订阅每日推送（全部或指定仓库）"),
    ("unsubscribe", "取消订阅（全部或指定仓库）"),
    ("subscriptions", "本聊天订阅了什么、何时推送"),
    ("settime", "设置每日推送时间：/settime 09:00"),
    ("chart", "日报附上当日动态图：/chart on 或 /chart off"),
    ("alerts", "版本发布提醒：/alerts on 或 /alerts off"),
    ("watch", "关注关键词，日报附“关注”一节：/watch FP8 MoE"),
    ("unwatch", "取消关注关键词：/unwatch FP8"),
    ("watches", "本聊天关注的关键词"),
    ("repos", "跟踪的仓库及其简称"),
    ("help", "使用说明"),
)

_DAY_RE = re.compile(r"(\d{4})-(\d{1,2})-(\d{1,2})")
_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}(?:/[A-Za-z0-9._-]{1,100})?")
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
    @property
    def chart(self) -> bool: ...
    @property
    def weekly(self) -> bool: ...


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
    async def set_chart(self, platform: str, chat_id: str, on: bool) -> ChatRecord | None: ...
    async def set_weekly(self, platform: str, chat_id: str, on: bool) -> ChatRecord | None: ...

    # The archive, for the weekly roll-up.
    async def load_digest(self, day: date) -> Digest | None: ...
    async def load_activity(self, day: date) -> DayActivity | None: ...

    # Repositories beyond DIGEST_REPOS, keyword watches and release alerts (bot.store.Store).
    async def tracked_repos(self) -> list[TrackedRepo]: ...
    async def followed_repos(self) -> set[str]: ...
    async def track_repo(self, repo: str, *, by: str | None, pinned: bool) -> TrackedRepo: ...
    async def untrack_repo(self, repo: str) -> bool: ...
    async def follow_repos(
        self, platform: str, chat_id: str, repos: Sequence[str], *, kind: str
    ) -> None: ...
    async def unfollow_repos(
        self, platform: str, chat_id: str, repos: Sequence[str] | None, *, kind: str
    ) -> None: ...
    async def add_watches(
        self, platform: str, chat_id: str, words: Sequence[str], *, limit: int
    ) -> WatchChange: ...
    async def remove_watches(
        self, platform: str, chat_id: str, words: Sequence[str]
    ) -> tuple[str, ...]: ...
    async def watches_of(self, platform: str, chat_id: str) -> tuple[str, ...]: ...
    async def alert_chat(self, platform: str, chat_id: str) -> AlertChat | None: ...
    async def enable_alerts(
        self, platform: str, chat_id: str, repos: Sequence[str] | None, *, by: str | None
    ) -> AlertChat: ...
    async def disable_alerts(
        self,
        platform: str,
        chat_id: str,
        repos: Sequence[str] | None,
        *,
        tracked: Sequence[str] = (),
    ) -> AlertChat | None: ...


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
    escaped = escape_markdown_text(cut).replace("@", "@\u200b")
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


# (day, view, repos, watch words) of a rendered /digest answer.
_RenderKey = tuple[date, str, tuple[str, ...] | None, tuple[str, ...]]


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
        llm: LLMClient | None = None,
        cache: KeyValueCache | None = None,
    ) -> None:
        """`llm` and `cache` write (and keep) the weekly roll-up's text; without, structured."""
        self._settings = settings
        self._store = store
        self._pipeline = pipeline
        self._clock = clock
        self._llm = llm
        self._cache = cache
        self._weeks: dict[tuple[date, tuple[str, ...]], asyncio.Task[str | None]] = {}
        self._tracked: tuple[str, ...] = tuple(settings.digest_repos)
        self._tracked_until: datetime | None = None  # when `_tracked` should be read again
        self._tracked_read: asyncio.Task[tuple[str, ...]] | None = None
        self._checker = RepoChecker.from_settings(settings)  # asks GitHub about new repositories
        # Rendered text per (day, view, repos, watch words), valid while the pipeline hands back
        # the same Digest.
        self._rendered: OrderedDict[_RenderKey, tuple[Digest, str]]
        self._rendered = OrderedDict()
        self._inflight: dict[tuple[date, tuple[str, ...] | None], asyncio.Task[Digest]] = {}
        self._handlers: dict[str, Callable[[ChatContext, str, Progress | None], Awaitable[Reply]]]
        self._handlers = {
            "digest": self._digest,
            "weekly": self._weekly,
            "chart": self._chart,
            "subscribe": self._subscribe,
            "unsubscribe": self._unsubscribe,
            "subscriptions": self._subscriptions,
            "settime": self._settime,
            "repos": self._repos,
            "help": self._help,
            "start": self._start,
            "status": self._status,  # operators only; not in COMMAND_MENU
            "alerts": self._alerts,
            "watch": self._watch,
            "unwatch": self._unwatch,
            "watches": self._watches,
            "track": self._track,  # operators only; not in COMMAND_MENU
            "untrack": self._untrack,  # operators only; not in COMMAND_MENU
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
            # DIGEST_REPOS plus the repositories chats added: names resolve against all of them.
            await self._read_tracked()
            return await handler(ctx, args.strip(), progress)
        except _Refused as refused:
            return Reply(refused.text, ephemeral=True)

    async def tracked_repos(self) -> tuple[str, ...]:
        """The tracked set (DIGEST_REPOS, then added repositories), e.g. for autocomplete.

        Re-read from the store at most every TRACKED_TTL; when the store fails, the last known set.
        """
        until = self._tracked_until
        if until is not None and self._clock() < until:
            return self._tracked
        if self._tracked_read is None:
            # Keystrokes arrive together: concurrent askers share one read.
            read = asyncio.ensure_future(self._read_tracked())
            read.add_done_callback(lambda _t: setattr(self, "_tracked_read", None))
            self._tracked_read = read
        try:
            return await asyncio.shield(self._tracked_read)
        except Exception:
            log.warning("the tracked repositories could not be read", exc_info=True)
            return self._tracked

    async def _read_tracked(self) -> tuple[str, ...]:
        """Read the tracked set from the store into `_tracked` (fresh for TRACKED_TTL)."""
        self._tracked = tuple(await tracked_set(self._store, self._settings.digest_repos))
        self._tracked_until = self._clock() + TRACKED_TTL
        return self._tracked

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
        # The whole-subscription view is the chat's daily post: with its `### 关注` section.
        words = await self._store.watches_of(ctx.platform, ctx.chat_id) if view == "digest" else ()
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
        return Reply(await self._render(digest, day, view, repos, words))

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

    async def _render(
        self,
        digest: Digest,
        day: date,
        view: str,
        repos: tuple[str, ...] | None,
        words: tuple[str, ...] = (),
    ) -> str:
        """Render (cached while the pipeline returns the same Digest object)."""
        key = (day, view, repos, words)
        cached = self._rendered.get(key)
        if cached is not None and cached[0] is digest:
            self._rendered.move_to_end(key)
            return cached[1]
        if view == "digest":
            text = render_markdown(await self._with_watches(digest, day, words))
        else:
            text = render_sections(digest, repos or ())
        self._rendered[key] = (digest, text)
        while len(self._rendered) > RENDER_CACHE_SIZE:
            self._rendered.popitem(last=False)
        return text

    async def _with_watches(self, digest: Digest, day: date, words: tuple[str, ...]) -> Digest:
        """The digest with the chat's `### 关注` section, as in its daily post (if it watches)."""
        if not words:
            return digest
        # Matched over the day's whole activity, as the daily post does: every repository.
        activity = await self._store.load_activity(day)
        if activity is None:
            log.warning("no archived activity of %s: /digest is shown without 关注", day)
            return digest
        return with_watch_section(digest, activity, words)

    # -- the week and the picture of the day ----------------------------------------------------

    async def _weekly(self, ctx: ChatContext, args: str, progress: Progress | None) -> Reply:
        mode = args.lower()
        if mode in ("on", "off"):
            return await self._opt_in(ctx, "weekly", mode == "on")
        if mode.split(" ", 1)[0] in ("on", "off"):
            raise _Refused(USAGE_WEEKLY)
        named = self._resolve_all(args)
        repos = named or await self._chat_repos(ctx) or self._tracked
        end = await self._week_end()
        if self._llm is not None and progress is not None:
            await progress(PROGRESS_TEXT)
        try:
            text = await self._shared_week(end, tuple(repos))
        except Exception:
            log.exception("the weekly roll-up to %s for %s could not be made", end, repos)
            return Reply(WEEKLY_FAILED, ephemeral=True)
        return Reply(text if text is not None else NO_WEEKLY)

    async def _week_end(self) -> date:
        """The last day of the week to show: the newest archived day within the last week.

        Without one, yesterday: its week then holds no archived day, and the reply says so.
        """
        today = local_today(self._settings.digest_timezone, self._clock())
        yesterday = today - timedelta(days=1)
        latest = await self._pipeline.latest_day()
        if latest is not None and yesterday - timedelta(days=WEEK_DAYS - 1) <= latest <= yesterday:
            return latest
        return yesterday

    async def _shared_week(self, end: date, repos: tuple[str, ...]) -> str | None:
        """The rendered roll-up (None: nothing archived); concurrent askers share one call."""
        key = (end, repos)
        task = self._weeks.get(key)
        if task is None:
            task = asyncio.ensure_future(self._render_week(end, repos))
            self._weeks[key] = task
            task.add_done_callback(lambda _t: self._weeks.pop(key, None))
        return await asyncio.shield(task)

    async def _render_week(self, end: date, repos: tuple[str, ...]) -> str | None:
        # Imported here: the archive module draws charts (Pillow, fonts), which most commands and
        # the service's importers never need.
        from bot.archive import week_for

        weekly = await week_for(self._store, end, repos, self._llm, self._cache)
        return None if weekly is None else render_weekly_markdown(weekly)

    async def _chart(self, ctx: ChatContext, args: str, _p: Progress | None) -> Reply:
        mode = args.lower()
        if mode in ("on", "off"):
            return await self._opt_in(ctx, "chart", mode == "on")
        if mode:
            raise _Refused(f"无法识别“{echo(args)}”。{USAGE_CHART}")
        chat = await self._store.get_chat(ctx.platform, ctx.chat_id)
        state = "开启" if chat is not None and chat.active and chat.chart else "关闭"
        return Reply(f"日报附图：{state}。{USAGE_CHART}")

    async def _opt_in(self, ctx: ChatContext, what: Literal["chart", "weekly"], on: bool) -> Reply:
        """`/chart on|off` and `/weekly on|off`: administrators of a group only, as subscribing."""
        if refusal := await self._admin_refusal(ctx):
            return refusal
        current = await self._store.get_chat(ctx.platform, ctx.chat_id)
        if current is None or not current.active:
            return Reply(NOT_SUBSCRIBED, ephemeral=True)
        setter = self._store.set_chart if what == "chart" else self._store.set_weekly
        chat = await setter(ctx.platform, ctx.chat_id, on)
        if chat is None:
            return Reply(NOT_SUBSCRIBED, ephemeral=True)
        when = f"{chat.post_time}（{chat.timezone}）"
        if what == "chart":
            if on:
                return Reply(f"已开启日报附图：每天 {when} 的日报之后附上当日动态图。")
            return Reply("已关闭日报附图。")
        if on:
            return Reply(f"已开启每周回顾：每周一 {when} 的日报之后推送本周回顾。")
        return Reply("已关闭每周回顾的推送；仍可随时发送 /weekly 查看。")

    # -- subscriptions -----------------------------------------------------------------------

    async def _subscribe(self, ctx: ChatContext, args: str, _p: Progress | None) -> Reply:
        if refusal := await self._admin_refusal(ctx):
            return refusal
        args, releases = split_release_word(args)
        repos, added = await self._resolve_or_add(ctx, args)
        if releases:
            return await self._alerts_on(ctx, repos, added)
        existing = await self._store.get_chat(ctx.platform, ctx.chat_id)
        chat = await self._store.subscribe(
            ctx.platform,
            ctx.chat_id,
            repos or None,
            by=ctx.user_id,
            post_time=existing.post_time if existing else self._settings.digest_post_time,
            timezone=existing.timezone if existing else self._settings.digest_timezone,
        )
        await self._follow(ctx, repos, kind="daily")
        return Reply(f"已订阅：{self._describe(chat)}{_added_note(added)}")

    async def _unsubscribe(self, ctx: ChatContext, args: str, _p: Progress | None) -> Reply:
        if refusal := await self._admin_refusal(ctx):
            return refusal
        args, releases = split_release_word(args)
        repos = self._resolve_all(args)
        if releases:
            return await self._alerts_off(ctx, repos)
        chat = await self._store.get_chat(ctx.platform, ctx.chat_id)
        if chat is None or not chat.active:
            return Reply("本聊天没有订阅。", ephemeral=True)
        await self._store.unfollow_repos(ctx.platform, ctx.chat_id, repos or None, kind="daily")
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
        extras = await self._extras(ctx)
        if chat is None or not chat.active:
            return Reply(f"本聊天未订阅每日日报，发送 /subscribe 订阅。{extras}")
        return Reply(f"本聊天订阅：{self._describe(chat)}{extras}")

    async def _extras(self, ctx: ChatContext) -> str:
        """Release alerts, watch words and opt-ins of the chat, as sentences for /subscriptions."""
        parts = []
        chat = await self._store.get_chat(ctx.platform, ctx.chat_id)
        if chat is not None and chat.active and chat.chart:
            parts.append("日报附当日动态图。")
        if chat is not None and chat.active and chat.weekly:
            parts.append("每周一日报之后推送本周回顾。")
        alerts = await self._store.alert_chat(ctx.platform, ctx.chat_id)
        if alerts is not None:
            parts.append(f"版本发布提醒：{self._alert_scope(alerts)}。")
        words = await self._store.watches_of(ctx.platform, ctx.chat_id)
        if words:
            parts.append(f"关注词：{'、'.join(_word(w) for w in words)}。")
        return "".join(parts)

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
            return Reply(NOT_SUBSCRIBED, ephemeral=True)
        return Reply(f"每日推送时间已设为 {chat.post_time}（{chat.timezone}）。")

    async def _admin_refusal(self, ctx: ChatContext) -> Reply | None:
        """A polite refusal when a non-administrator tries to change a group's subscription."""
        if ctx.chat_kind == "private" or await ctx.is_admin():
            return None
        return Reply("抱歉，只有本群管理员可以更改订阅。", ephemeral=True)

    def _describe(self, chat: ChatRecord) -> str:
        """`全部 8 个仓库；每天 09:00（Asia/Shanghai）推送。`"""
        every = f"全部 {len(self._tracked)} 个跟踪的仓库"
        what = _repo_list(chat.repos) if chat.repos else every
        return f"{what}；每天 {chat.post_time}（{chat.timezone}）推送。"

    # -- repositories beyond DIGEST_REPOS ------------------------------------------------------

    async def _resolve_or_add(
        self, ctx: ChatContext, args: str
    ) -> tuple[tuple[str, ...], tuple[str, ...]]:
        """Names → tracked repositories; an unknown `owner/name` is checked on GitHub and added.

        Returns (the repositories in tracked order, those newly added to the tracked set).
        """
        tokens = args.split()
        if len(tokens) > len(self._tracked) + 4:
            raise _Refused("仓库太多。用法：/subscribe [仓库 …]，发送 /repos 查看全部。")
        chosen: set[str] = set()
        added: list[str] = []
        for token in tokens:
            try:
                chosen.add(self._resolve(token))
                continue
            except _Refused:
                if not is_repo_name(token):
                    raise
            admission = await admit_repo(
                self._store,
                self._settings,
                self._checker,
                token,
                tracked=self._tracked,
                by=_who(ctx),
                pinned=False,
            )
            if admission.repo is None:
                raise _Refused(admission.refusal or f"不能添加“{echo(token)}”。")
            if admission.repo not in self._tracked:
                self._tracked = (*self._tracked, admission.repo)
            if admission.added:
                added.append(admission.repo)
            chosen.add(admission.repo)
        return tuple(r for r in self._tracked if r in chosen), tuple(added)

    async def _follow(self, ctx: ChatContext, repos: Sequence[str], *, kind: str) -> None:
        """Record the repositories beyond DIGEST_REPOS the chat asked for.

        A chat on "all" names none, yet keeps these tracked until it drops them or stops.
        """
        defaults = {r.lower() for r in self._settings.digest_repos}
        extras = [r for r in repos if r.lower() not in defaults]
        if extras:
            await self._store.follow_repos(ctx.platform, ctx.chat_id, extras, kind=kind)

    def _is_operator(self, ctx: ChatContext) -> bool:
        return ctx.user_id is not None and _who(ctx) in self._settings.admin_user_ids

    async def _track(self, ctx: ChatContext, args: str, _p: Progress | None) -> Reply:
        """Operators pin a repository in the tracked set (collected even if no chat names it)."""
        if not self._is_operator(ctx):
            return Reply("未知命令 /track，发送 /help 查看用法。", ephemeral=True)
        name = args.strip()
        if not is_repo_name(name):
            raise _Refused("用法：/track owner/name（GitHub 上的公开仓库）")
        if name.lower() in {r.lower() for r in self._settings.digest_repos}:
            return Reply(f"`{name}` 是默认仓库（DIGEST_REPOS），一直在跟踪。", ephemeral=True)
        admission = await admit_repo(
            self._store,
            self._settings,
            self._checker,
            name,
            tracked=self._tracked,
            by=_who(ctx),
            pinned=True,
        )
        if admission.repo is None:
            raise _Refused(admission.refusal or f"不能添加“{echo(name)}”。")
        return Reply(f"已固定跟踪 `{admission.repo}`：没有聊天订阅时也会收录，直到 /untrack。")

    async def _untrack(self, ctx: ChatContext, args: str, _p: Progress | None) -> Reply:
        """Operators remove a repository a chat or an operator added (not a DIGEST_REPOS one)."""
        if not self._is_operator(ctx):
            return Reply("未知命令 /untrack，发送 /help 查看用法。", ephemeral=True)
        name = args.strip()
        if not _NAME_RE.fullmatch(name):
            raise _Refused("用法：/untrack owner/name")
        found = resolve_repo(name, self._tracked).repo or name
        if found.lower() in {r.lower() for r in self._settings.digest_repos}:
            raise _Refused(f"`{found}` 是默认仓库；要停止跟踪，请修改 DIGEST_REPOS 设置。")
        if not await self._store.untrack_repo(found):
            raise _Refused(f"没有额外跟踪“{echo(name)}”。发送 /repos 查看全部。")
        return Reply(f"已停止跟踪 `{found}`：不再收录，订阅它的聊天也不再收到它。")

    # -- release alerts ------------------------------------------------------------------------

    async def _alerts(self, ctx: ChatContext, args: str, _p: Progress | None) -> Reply:
        mode, _, rest = args.partition(" ")
        mode = mode.lower()
        if not mode:
            current = await self._store.alert_chat(ctx.platform, ctx.chat_id)
            if current is None:
                return Reply("本聊天未开启版本发布提醒；发送 /alerts on 开启。")
            return Reply(f"本聊天已开启版本发布提醒：{self._alert_scope(current)}。")
        if mode not in ("on", "off"):
            raise _Refused(f"无法识别“{echo(mode)}”。{USAGE_ALERTS}")
        if refusal := await self._admin_refusal(ctx):
            return refusal
        if mode == "off":
            return await self._alerts_off(ctx, self._resolve_all(rest))
        repos, added = await self._resolve_or_add(ctx, rest)
        return await self._alerts_on(ctx, repos, added)

    async def _alerts_on(
        self, ctx: ChatContext, repos: tuple[str, ...], added: tuple[str, ...]
    ) -> Reply:
        current = await self._store.enable_alerts(
            ctx.platform, ctx.chat_id, repos or None, by=ctx.user_id
        )
        await self._follow(ctx, repos, kind="alerts")
        minutes = f"{self._settings.release_poll_minutes:g}"
        return Reply(
            f"已开启版本发布提醒：{self._alert_scope(current)}；"
            f"新版本发布后约 {minutes} 分钟内推送到本聊天。{_added_note(added)}"
        )

    async def _alerts_off(self, ctx: ChatContext, repos: tuple[str, ...]) -> Reply:
        if await self._store.alert_chat(ctx.platform, ctx.chat_id) is None:
            return Reply("本聊天没有开启版本发布提醒。", ephemeral=True)
        await self._store.unfollow_repos(ctx.platform, ctx.chat_id, repos or None, kind="alerts")
        left = await self._store.disable_alerts(
            ctx.platform, ctx.chat_id, repos or None, tracked=self._tracked
        )
        if left is None:
            return Reply("已关闭本聊天的版本发布提醒。")
        return Reply(f"已更新版本发布提醒：{self._alert_scope(left)}。")

    def _alert_scope(self, alerts: AlertChat) -> str:
        if alerts.repos is None:
            return f"全部 {len(self._tracked)} 个跟踪的仓库"
        return "、".join(f"`{repo}`" for repo in alerts.repos)

    # -- keyword watches -----------------------------------------------------------------------

    async def _watch(self, ctx: ChatContext, args: str, _p: Progress | None) -> Reply:
        try:
            words = parse_words(args)
        except WatchWordError as exc:
            raise _Refused(f"{exc} {USAGE_WATCH}") from None
        if not words:
            raise _Refused(USAGE_WATCH)
        if len(words) > MAX_WATCHES:
            raise _Refused(
                f"一次最多关注 {MAX_WATCHES} 个词（收到 {len(words)} 个）。{USAGE_WATCH}"
            )
        if refusal := await self._admin_refusal(ctx):
            return refusal
        try:
            change = await self._store.add_watches(
                ctx.platform, ctx.chat_id, words, limit=MAX_WATCHES
            )
        except WatchLimitExceeded as exc:
            raise _Refused(
                f"本聊天已关注 {exc.current} 个词，再加 {exc.adding} 个会超过上限 {exc.limit} 个；"
                "请先用 /unwatch 删除一些。"
            ) from None
        shown = "、".join(_word(w) for w in change.added) or "（没有新词）"
        text = f"已关注：{shown}；本聊天共关注 {change.total} 个词。"
        if change.existing:
            text += f"已在关注：{'、'.join(_word(w) for w in change.existing)}。"
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
            raise _Refused(str(exc)) from None
        if not words:
            raise _Refused("用法：/unwatch 词 [词 …]；发送 /watches 查看本聊天关注的词。")
        if refusal := await self._admin_refusal(ctx):
            return refusal
        removed = await self._store.remove_watches(ctx.platform, ctx.chat_id, words)
        if not removed:
            return Reply("本聊天没有关注这些词；发送 /watches 查看。", ephemeral=True)
        left = await self._store.watches_of(ctx.platform, ctx.chat_id)
        return Reply(f"已取消关注：{'、'.join(_word(w) for w in removed)}；还剩 {len(left)} 个。")

    async def _watches(self, ctx: ChatContext, _a: str, _p: Progress | None) -> Reply:
        words = await self._store.watches_of(ctx.platform, ctx.chat_id)
        if not words:
            return Reply("本聊天没有关注的词；发送 /watch FP8 MoE 添加。")
        listed = "、".join(_word(w) for w in words)
        return Reply(f"本聊天关注的词（{len(words)}/{MAX_WATCHES}）：{listed}")

    # -- repositories and help ---------------------------------------------------------------

    def _resolve(self, token: str) -> str:
        """One user-typed name → a tracked repository, else _Refused with suggestions."""
        if not _NAME_RE.fullmatch(token) or ".." in token:
            raise _Refused(f"无法识别“{echo(token)}”。{USAGE_DIGEST}")
        found = resolve_repo(token, self._tracked)
        if found.repo is not None:
            return found.repo
        if len(found.suggestions) > 1 and found.reason.endswith("ambiguous"):
            options = _repo_list(found.suggestions)
            raise _Refused(f"“{echo(token)}”对应多个仓库：{options}，请写全名。")
        hint = f"你是不是想找：{_repo_list(found.suggestions)}？" if found.suggestions else ""
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


def split_release_word(args: str) -> tuple[str, bool]:
    """`vllm releases` → (`vllm`, True): the word asks for release alerts instead of daily posts."""
    tokens = args.split()
    kept = [t for t in tokens if t.lower() not in RELEASE_WORDS]
    return " ".join(kept), len(kept) != len(tokens)


def _who(ctx: ChatContext) -> str:
    """`telegram:123`, the form of ADMIN_USER_IDS."""
    return f"{ctx.platform}:{ctx.user_id}"


def _repo_list(repos: Sequence[str]) -> str:
    """Repository names in prose: any chat can add one (/subscribe owner/name), so escaped."""
    return "、".join(escape_markdown_text(repo) for repo in repos)


def _word(word: str) -> str:
    """A watch word shown back as inline code (never Markdown, never a mention)."""
    return "`" + word.replace("`", "'") + "`"


def _added_note(added: Sequence[str]) -> str:
    if not added:
        return ""
    names = "、".join(f"`{repo}`" for repo in added)
    return f"新加入跟踪：{names}，从下一期日报起收录。"


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


def render_sections(digest: Digest, repos: Sequence[str]) -> str:
    """The named repositories' sections with their headings and the digest's date."""
    parts: list[str] = []
    for repo in repos:
        section = digest.section(repo)
        body = section.markdown.strip() if section is not None else ""
        if section is None:
            body = f"{digest.day.isoformat()} 的日报不含这个仓库。"
        heading = f"{escape_markdown_text(repo)}（{digest.day.isoformat()}）"
        parts.append(f"### {heading}\n{body or NO_UPDATES}")
    return "\n\n".join(parts) + "\n"
