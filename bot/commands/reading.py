"""Reading the archive: /digest (a day, whole or by repository), /weekly and /chart."""

from __future__ import annotations

import asyncio
import logging
import math
import re
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

from bot.commands.core import (
    NOT_SUBSCRIBED,
    USAGE_DIGEST,
    ChatContext,
    Core,
    Group,
    Handler,
    Progress,
    Refused,
    Reply,
    admin_refusal,
    echo,
    resolve_in,
    who,
)
from bot.ondemand import GITHUB_OPENED, OnDemandLimiter, RepoAges
from bot.pipeline import NotReady
from collectors.cache import KeyValueCache
from collectors.window import day_window
from collectors.window import today as local_today
from summarizer.digest import NO_UPDATES, Digest, render_markdown
from summarizer.guard import escape_markdown_text
from summarizer.llm import LLMClient
from summarizer.watch import with_watch_section
from summarizer.weekly import WEEK_DAYS

log = logging.getLogger(__name__)

MAX_DIGEST_TOKENS = 9
RENDER_CACHE_SIZE = 512

PROGRESS_TEXT = "正在生成…"
GENERATION_FAILED = "生成日报失败，请稍后再试。"
# A day whose listing hit GitHub's page cap is served but never archived (bot.pipeline).
INCOMPLETE_NOTE = (
    "注意：{day} 有仓库的动态超出了 GitHub 列表的分页上限，这份日报可能不完整，因此没有存档；"
    "之后再查询会重新采集。"
)
USAGE_WEEKLY = "用法：/weekly [仓库 …] 查看本周回顾；/weekly on 或 /weekly off 开关每周一的推送"
USAGE_CHART = "用法：/chart on 或 /chart off（日报之后附上当日动态图）"
NO_WEEKLY = "本周还没有存档的简报。"
WEEKLY_FAILED = "生成本周回顾失败，请稍后再试。"

_DAY_RE = re.compile(r"(\d{4})-(\d{1,2})-(\d{1,2})")

# (day, view, repos, watch words) of a rendered /digest answer.
_RenderKey = tuple[date, str, tuple[str, ...] | None, tuple[str, ...], tuple[str, ...]]


def parse_day(token: str) -> date | None:
    """`YYYY-MM-DD` → date; None when the token is not date-shaped; Refused when impossible."""
    match = _DAY_RE.fullmatch(token)
    if match is None:
        return None
    try:
        return date(int(match[1]), int(match[2]), int(match[3]))
    except ValueError:
        raise Refused(f"日期“{echo(token)}”不存在。{USAGE_DIGEST}") from None


@dataclass(frozen=True)
class DigestRequest:
    """A parsed `/digest`: the day (None = latest) and the named repositories (tracked order)."""

    day: date | None
    repos: tuple[str, ...]


class Reading(Group):
    """/digest, /weekly and /chart: a day or a week of the archive, written once if missing."""

    menu = (
        ("digest", "最新日报；可加仓库和/或日期：/digest vllm 2026-02-04"),
        ("weekly", "本周回顾（最近 7 天）；/weekly on 每周一推送"),
        ("chart", "日报附上当日动态图：/chart on 或 /chart off"),
    )

    def __init__(
        self,
        core: Core,
        *,
        llm: LLMClient | None,
        cache: KeyValueCache | None,
        on_demand: OnDemandLimiter,
        ages: RepoAges | None = None,
    ) -> None:
        """`ages` tells when repositories were created (None: days are not checked against it)."""
        self._core = core
        self._on_demand = on_demand
        self._ages = ages
        # Days generated here that the pipeline could not archive (incomplete), still said.
        self._incomplete: set[date] = set()
        self._llm = llm
        self._cache = cache
        # Rendered text per (day, view, repos, watch words), valid while the pipeline hands back
        # the same Digest.
        self._rendered: OrderedDict[_RenderKey, tuple[Digest, str]] = OrderedDict()

    def handlers(self) -> Mapping[str, Handler]:
        """/digest, /weekly and /chart."""
        return {"digest": self._digest, "weekly": self._weekly, "chart": self._chart}

    # -- /digest -----------------------------------------------------------------------------

    def parse_digest_args(self, args: str, among: Sequence[str] | None = None) -> DigestRequest:
        """Split `/digest` arguments into at most one day and any tracked repositories.

        `among` are the repositories the chat may read (default: every tracked one).
        """
        among = self._core.tracked if among is None else among
        tokens = args.split()
        if len(tokens) > MAX_DIGEST_TOKENS:
            raise Refused(f"参数太多。{USAGE_DIGEST}")
        day: date | None = None
        repos: list[str] = []
        for token in tokens:
            parsed = parse_day(token)
            if parsed is not None:
                if day is not None and parsed != day:
                    raise Refused(f"只能指定一个日期。{USAGE_DIGEST}")
                day = parsed
                continue
            repos.append(resolve_in(token, among))
        return DigestRequest(day, tuple(r for r in among if r in repos))

    async def _digest(self, ctx: ChatContext, args: str, progress: Progress | None) -> Reply:
        core = self._core
        # Another chat's additions are not this chat's to read: names resolve among its own.
        own = await core.added_by(ctx)
        request = self.parse_digest_args(args, core.visible(own))
        today = local_today(core.settings.digest_timezone, core.clock())
        day = request.day if request.day is not None else await self._default_day(today)
        if day >= today:
            raise Refused(f"{day.isoformat()} 还没有结束，日报在次日生成。{USAGE_DIGEST}")
        repos: tuple[str, ...] | None
        added = tuple(r for r in request.repos if not core.is_shared(r))
        if len(request.repos) == 1:
            view, repos = "section", request.repos
        elif request.repos:
            view, repos = "sections", request.repos
        else:
            view, repos, added = "digest", await core.chat_repos(ctx), own
        # The whole-subscription view is the chat's daily post: with its `### 关注` section.
        words = await core.store.watches_of(ctx.platform, ctx.chat_id) if view == "digest" else ()
        young: list[tuple[str, date]] = []
        generating = not await core.pipeline.has_digest(day)
        if generating:
            # Any day since the repositories' creation; one before is answered, never generated.
            if day < GITHUB_OPENED:
                raise Refused(f"{day.isoformat()} 早于 GitHub 上任何仓库的创建，没有这一天的日报。")
            # The repositories the reply would show: named ones, else the chat's (all shared ones
            # when it follows all) and those it added.
            asked = request.repos
            if view == "digest":
                asked = (*(core.shared if repos is None else repos), *own)
            young = await self._not_yet_created(day, asked)
            self._count_generation(ctx, day)
            if progress is not None:
                await progress(PROGRESS_TEXT)
        try:
            digest = await core.pipeline.ensure_day(
                day, repos if view == "digest" else None, now=core.clock(), added=added
            )
        except NotReady as early:
            return Reply(not_ready_text(early), ephemeral=True)
        except Exception:
            log.exception("digest of %s for %s could not be made", day, repos or "all")
            return Reply(GENERATION_FAILED, ephemeral=True)
        text = await self._render(digest, day, view, repos, words)
        notes = [
            f"{escape_markdown_text(repo)} 创建于 {born.isoformat()}，当天还不存在。"
            for repo, born in young
        ]
        if await self._unarchived(day, generating):
            notes.append(INCOMPLETE_NOTE.format(day=day.isoformat()))
        if notes:
            text = text.rstrip("\n") + "\n\n" + "\n".join(notes) + "\n"
        return Reply(text)

    async def _unarchived(self, day: date, generated: bool) -> bool:
        """True when a day generated here (now or before) is still not in the archive.

        The pipeline serves such a day but archives it only when complete (a listing stopped
        at its page cap); later asks are served from its memory, so the day is remembered.
        """
        if not generated and day not in self._incomplete:
            return False
        if await self._core.store.load_digest(day) is not None:
            self._incomplete.discard(day)
            return False
        if len(self._incomplete) >= RENDER_CACHE_SIZE:
            self._incomplete.clear()
        self._incomplete.add(day)
        return True

    async def _not_yet_created(self, day: date, repos: Sequence[str]) -> list[tuple[str, date]]:
        """The asked repositories created after `day` ended, with their creation day; Refused
        when that is every one of them (nothing could have happened)."""
        if self._ages is None or not repos:
            return []
        end = day_window(day, self._core.settings.digest_timezone).end
        zone = ZoneInfo(self._core.settings.digest_timezone)
        ages = self._ages
        borns = await asyncio.gather(*(ages.created(repo) for repo in repos))
        young = [
            (repo, born.astimezone(zone).date())
            for repo, born in zip(repos, borns, strict=True)
            if born is not None and born >= end
        ]
        if young and len(young) == len(repos):
            listed = "；".join(
                f"{escape_markdown_text(repo)} 创建于 {born.isoformat()}" for repo, born in young
            )
            raise Refused(f"{day.isoformat()} 时仓库还不存在（{listed}），没有这一天的日报。")
        return young

    def _count_generation(self, ctx: ChatContext, day: date) -> None:
        """Count an on-demand generation against the chat's and the hourly bounds, or refuse
        saying when to try again (operators are exempt)."""
        core = self._core
        operator = ctx.user_id is not None and who(ctx) in core.settings.admin_user_ids
        refusal = self._on_demand.acquire(f"{ctx.platform}:{ctx.chat_id}", operator=operator)
        if refusal is None:
            return
        zone = ZoneInfo(core.settings.digest_timezone)
        when = refusal.retry_at.astimezone(zone)
        minutes = max(1, math.ceil((refusal.retry_at - core.clock()).total_seconds() / 60))
        at = when.strftime("%H:%M") if minutes < 12 * 60 else when.strftime("%Y-%m-%d %H:%M")
        per_day = core.settings.on_demand_per_chat_day
        why = {
            "chat-minute": "每个聊天每分钟只能生成一次未存档的日报",
            "chat-day": f"每个聊天每天最多生成 {per_day} 次未存档的日报",
            "global-hour": "本小时生成未存档日报的次数已达上限",
        }[refusal.scope]
        raise Refused(
            f"{day.isoformat()} 尚未存档，{why}；请在 {at}（约 {minutes} 分钟后）再试。"
            "已存档的日报可随时查看。"
        )

    async def _default_day(self, today: date) -> date:
        """The latest digest: the archived day if it is yesterday or the day before, else yesterday.

        Just after midnight yesterday's digest may not be written yet; the one before is the
        latest then. An older archive means the bot was down, and yesterday is generated.
        """
        yesterday = today - timedelta(days=1)
        latest = await self._core.pipeline.latest_day()
        if latest is not None and yesterday - timedelta(days=1) <= latest <= yesterday:
            return latest
        return yesterday

    async def _render(
        self,
        digest: Digest,
        day: date,
        view: str,
        repos: tuple[str, ...] | None,
        words: tuple[str, ...] = (),
    ) -> str:
        """Render (cached while the pipeline returns the same Digest object)."""
        key = (day, view, repos, tuple(s.repo for s in digest.sections), words)
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
        activity = await self._core.store.load_activity(day)
        if activity is None:
            log.warning("no archived activity of %s: /digest is shown without 关注", day)
            return digest
        return with_watch_section(digest, activity, words)

    # -- the week and the picture of the day ----------------------------------------------------

    async def _weekly(self, ctx: ChatContext, args: str, progress: Progress | None) -> Reply:
        core = self._core
        mode = args.lower()
        if mode in ("on", "off"):
            return await self._opt_in(ctx, "weekly", mode == "on")
        if mode.split(" ", 1)[0] in ("on", "off"):
            raise Refused(USAGE_WEEKLY)
        # The roll-up reads the archive: the shared set only, never a chat's additions.
        named = tuple(r for r in core.resolve_all(args, USAGE_WEEKLY) if core.is_shared(r))
        repos = named or await core.chat_repos(ctx) or core.shared
        end = await self._week_end()
        if self._llm is not None and progress is not None:
            await progress(PROGRESS_TEXT)
        try:
            text = await core.pipeline.week_text(
                end, tuple(repos), llm=self._llm, cache=self._cache
            )
        except Exception:
            log.exception("the weekly roll-up to %s for %s could not be made", end, repos)
            return Reply(WEEKLY_FAILED, ephemeral=True)
        return Reply(text if text is not None else NO_WEEKLY)

    async def _week_end(self) -> date:
        """The last day of the week to show: the newest archived day within the last week.

        Without one, yesterday: its week then holds no archived day, and the reply says so.
        """
        today = local_today(self._core.settings.digest_timezone, self._core.clock())
        yesterday = today - timedelta(days=1)
        latest = await self._core.pipeline.latest_day()
        if latest is not None and yesterday - timedelta(days=WEEK_DAYS - 1) <= latest <= yesterday:
            return latest
        return yesterday

    async def _chart(self, ctx: ChatContext, args: str, _p: Progress | None) -> Reply:
        mode = args.lower()
        if mode in ("on", "off"):
            return await self._opt_in(ctx, "chart", mode == "on")
        if mode:
            raise Refused(f"无法识别“{echo(args)}”。{USAGE_CHART}")
        chat = await self._core.store.get_chat(ctx.platform, ctx.chat_id)
        state = "开启" if chat is not None and chat.active and chat.chart else "关闭"
        return Reply(f"日报附图：{state}。{USAGE_CHART}")

    async def _opt_in(self, ctx: ChatContext, what: Literal["chart", "weekly"], on: bool) -> Reply:
        """`/chart on|off` and `/weekly on|off`: administrators of a group only, as subscribing."""
        if refusal := await admin_refusal(ctx):
            return refusal
        store = self._core.store
        current = await store.get_chat(ctx.platform, ctx.chat_id)
        if current is None or not current.active:
            return Reply(NOT_SUBSCRIBED, ephemeral=True)
        if what == "chart":
            chat = await store.set_chart(ctx.platform, ctx.chat_id, on)
        elif on:  # turned on inside a forum topic: the chat's posts go there from now on
            chat = await store.set_weekly(ctx.platform, ctx.chat_id, on, thread_id=ctx.thread_id)
        else:
            chat = await store.set_weekly(ctx.platform, ctx.chat_id, on)
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


def not_ready_text(early: NotReady) -> str:
    """ "Not ready yet, try after HH:MM" in the readers' words."""
    day = early.day.isoformat()
    if early.after is None:
        return f"{day} 的日报正在生成，请稍后再试。"
    return (
        f"{day} 的日报还没准备好（GitHub 数据在午夜后几分钟才完整），请在 {early.after} 之后再试。"
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
