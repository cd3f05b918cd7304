"""What every command group shares: the values a command speaks in and the tracked set.

`ChatContext` and `Reply` are what the adapters hand in and get back; `Core` holds the settings,
store, pipeline, clock and the tracked repositories every group resolves names against.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Literal, Protocol

from bot.repos import resolve_repo
from bot.settings import Settings, is_repo_name
from bot.store.types import AlertChat, TrackedRepo, WatchChange
from bot.tracking import RepoChecker, admit_repo, chat_added_repos, shared_set, tracked_set
from collectors.activity import DayActivity
from collectors.cache import KeyValueCache
from summarizer.digest import Digest
from summarizer.guard import escape_markdown_text
from summarizer.llm import LLMClient

log = logging.getLogger(__name__)

ChatKind = Literal["private", "group", "channel"]
Progress = Callable[[str], Awaitable[None]]

# What is echoed back of a user's input: enough to recognise, too little to abuse.
ECHO_CHARS = 32
# Autocomplete asks on every keystroke; the tracked set changes rarely (and this instance's own
# additions are seen at once), so it is re-read from the store at most this often.
TRACKED_TTL = timedelta(seconds=30)

USAGE_DIGEST = "用法：/digest [仓库] [YYYY-MM-DD]，例如 /digest vllm 2026-02-04"
USAGE_SUBSCRIBE = "用法：/subscribe [仓库 …]（全部或指定仓库；写 owner/name 可添加其他公开仓库）"
USAGE_UNSUBSCRIBE = "用法：/unsubscribe [仓库 …]（全部或指定仓库）"
NOT_SUBSCRIBED = "本聊天尚未订阅，请先发送 /subscribe。"

NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}(?:/[A-Za-z0-9._-]{1,100})?")
_CONTROL = re.compile(r"[\x00-\x1f\x7f\u2028\u2029]+")


@dataclass(frozen=True)
class ChatContext:
    """Where a command came from, and how to ask whether its sender administers the chat."""

    platform: str
    chat_id: str
    chat_kind: ChatKind
    user_id: str | None
    is_admin: Callable[[], Awaitable[bool]]
    # The forum topic the command was sent in (Telegram): what it turns on posts there.
    thread_id: str | None = None


@dataclass(frozen=True)
class Reply:
    """The answer to a command, in the readers' Markdown; `ephemeral` hints "only the asker"."""

    text: str
    ephemeral: bool = False


Handler = Callable[[ChatContext, str, Progress | None], Awaitable[Reply]]


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
        thread_id: str | None = ...,
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
    async def set_weekly(
        self, platform: str, chat_id: str, on: bool, *, thread_id: str | None = ...
    ) -> ChatRecord | None: ...

    # The archive, for the weekly roll-up.
    async def load_digest(self, day: date) -> Digest | None: ...
    async def load_activity(self, day: date) -> DayActivity | None: ...

    # Repositories beyond DIGEST_REPOS, keyword watches and release alerts (bot.store.Store).
    async def tracked_repos(self) -> list[TrackedRepo]: ...
    async def followed_repos(self) -> set[str]: ...
    async def follows_of(self, platform: str, chat_id: str, *, kind: str) -> set[str]: ...
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
    async def move_chat(self, platform: str, old_chat_id: str, new_chat_id: str) -> bool: ...
    async def alert_chat(self, platform: str, chat_id: str) -> AlertChat | None: ...
    async def enable_alerts(
        self,
        platform: str,
        chat_id: str,
        repos: Sequence[str] | None,
        *,
        by: str | None,
        prereleases: bool | None = ...,
        thread_id: str | None = ...,
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
    async def digest_for(
        self, day: date, repos: Sequence[str] | None, *, added: Sequence[str] = ()
    ) -> Digest: ...
    async def ensure_day(
        self,
        day: date,
        repos: Sequence[str] | None = None,
        *,
        now: datetime | None = None,
        wait: bool = True,
        added: Sequence[str] = (),
    ) -> Digest: ...
    async def week_text(
        self,
        end: date,
        repos: Sequence[str],
        *,
        llm: LLMClient | None,
        cache: KeyValueCache | None,
    ) -> str | None: ...


class Refused(Exception):
    """Bad input: the reply says why in one line (never a traceback)."""

    def __init__(self, text: str) -> None:
        super().__init__(text)
        self.text = text


class Group:
    """A feature's commands: its menu entries, its handlers and an optional shared check."""

    menu: tuple[tuple[str, str], ...] = ()

    def handlers(self) -> Mapping[str, Handler]:
        """Command name → handler, for every command of the group (menu or not)."""
        return {}

    async def check(self, ctx: ChatContext, command: str) -> Reply | None:
        """A refusal for every command of the group, or None to let the handler answer."""
        return None


def echo(value: str) -> str:
    """A user's input made safe to show back: one line, truncated, Markdown-escaped, no mentions."""
    flat = _CONTROL.sub(" ", value).strip()
    cut = flat[:ECHO_CHARS]
    escaped = escape_markdown_text(cut).replace("@", "@\u200b")
    return escaped + ("…" if len(flat) > ECHO_CHARS else "")


def who(ctx: ChatContext) -> str:
    """`telegram:123`, the form of ADMIN_USER_IDS."""
    return f"{ctx.platform}:{ctx.user_id}"


def repo_list(repos: Sequence[str]) -> str:
    """Repository names in prose: any chat can add one (/subscribe owner/name), so escaped."""
    return "、".join(escape_markdown_text(repo) for repo in repos)


def word(text: str) -> str:
    """A watch word shown back as inline code (never Markdown, never a mention)."""
    return "`" + text.replace("`", "'") + "`"


def added_note(added: Sequence[str]) -> str:
    """The sentence telling a chat which repositories its command added to the tracked set."""
    if not added:
        return ""
    names = "、".join(f"`{repo}`" for repo in added)
    return f"新加入跟踪：{names}，从下一期日报起收录，只出现在本聊天的日报中。"


def here(ctx: ChatContext) -> str:
    """Where a command turns posts on: "本聊天", or "本话题" inside a forum topic."""
    return "本话题" if ctx.thread_id is not None else "本聊天"


async def admin_refusal(ctx: ChatContext) -> Reply | None:
    """A polite refusal when a non-administrator tries to change a group's subscription."""
    if ctx.chat_kind == "private" or await ctx.is_admin():
        return None
    return Reply("抱歉，只有本群管理员可以更改订阅。", ephemeral=True)


class Core:
    """The state the groups share: settings, store, pipeline, clock and the tracked set."""

    def __init__(
        self,
        settings: Settings,
        store: ChatStore,
        pipeline: DigestSource,
        clock: Callable[[], datetime],
        checker: RepoChecker | None = None,
    ) -> None:
        self.settings = settings
        self.store = store
        self.pipeline = pipeline
        self.clock = clock
        # Every collected repository (names resolve against it), and the shared set among them.
        self.tracked: tuple[str, ...] = tuple(settings.digest_repos)
        self.shared: tuple[str, ...] = tuple(settings.digest_repos)
        self._tracked_until: datetime | None = None  # when `tracked` should be read again
        self._tracked_read: asyncio.Task[tuple[str, ...]] | None = None
        # Asks GitHub about new repositories (on the process's one GitHub client, from `run`).
        self.checker = checker or RepoChecker.from_settings(settings)

    async def read_tracked(self) -> tuple[str, ...]:
        """Read the tracked set from the store into `tracked` (fresh for TRACKED_TTL)."""
        self.tracked = tuple(await tracked_set(self.store, self.settings.digest_repos))
        self.shared = tuple(await shared_set(self.store, self.settings.digest_repos))
        self._tracked_until = self.clock() + TRACKED_TTL
        return self.tracked

    async def tracked_repos(self) -> tuple[str, ...]:
        """The tracked set, re-read at most every TRACKED_TTL; the last known one on failure."""
        until = self._tracked_until
        if until is not None and self.clock() < until:
            return self.tracked
        if self._tracked_read is None:
            # Keystrokes arrive together: concurrent askers share one read.
            read = asyncio.ensure_future(self.read_tracked())
            read.add_done_callback(lambda _t: setattr(self, "_tracked_read", None))
            self._tracked_read = read
        try:
            return await asyncio.shield(self._tracked_read)
        except Exception:
            log.warning("the tracked repositories could not be read", exc_info=True)
            return self.tracked

    def resolve(self, token: str, usage: str = USAGE_DIGEST) -> str:
        """One user-typed name → a tracked repository, else Refused (with `usage`, the asking
        command's own usage line) and suggestions."""
        return resolve_in(token, self.tracked, usage)

    def resolve_all(
        self, args: str, usage: str = USAGE_SUBSCRIBE, also: Sequence[str] = ()
    ) -> tuple[str, ...]:
        """Names in `args` → tracked repositories in tracked order (empty: none named).

        `also` are names the chat itself holds (its list, its alerts): a repository no longer
        tracked still resolves there, so the chat can drop it.
        """
        known = {r.lower() for r in self.tracked}
        pool = (*self.tracked, *(r for r in also if r.lower() not in known))
        tokens = args.split()
        if len(tokens) > len(pool) + 4:
            raise Refused(f"仓库太多。{usage}，发送 /repos 查看全部。")
        chosen = {resolve_in(token, pool, usage) for token in tokens}
        return tuple(r for r in pool if r in chosen)

    async def resolve_or_add(
        self, ctx: ChatContext, args: str, usage: str = USAGE_SUBSCRIBE
    ) -> tuple[tuple[str, ...], tuple[str, ...]]:
        """Names → tracked repositories; an unknown `owner/name` is checked on GitHub and added.

        Returns (the repositories in tracked order, those newly added to the tracked set).
        """
        tokens = args.split()
        if len(tokens) > len(self.tracked) + 4:
            raise Refused(f"仓库太多。{usage}，发送 /repos 查看全部。")
        chosen: set[str] = set()
        added: list[str] = []
        own = {r.lower() for r in await self.added_by(ctx)}
        for token in tokens:
            try:
                chosen.add(self.resolve(token, usage))
                continue
            except Refused:
                if not is_repo_name(token):
                    raise
            admission = await admit_repo(
                self.store,
                self.settings,
                self.checker,
                token,
                tracked=self.tracked,
                by=who(ctx),
                pinned=False,
                chat_added=len(own | {r.lower() for r in chosen if not self.is_shared(r)}),
            )
            if admission.repo is None:
                raise Refused(admission.refusal or f"不能添加“{echo(token)}”。")
            if admission.repo not in self.tracked:
                self.tracked = (*self.tracked, admission.repo)
            if admission.added:
                added.append(admission.repo)
            chosen.add(admission.repo)
        own |= {r.lower() for r in chosen if not self.is_shared(r)}
        if len(own) > self.settings.max_chat_repos:
            limit = self.settings.max_chat_repos
            raise Refused(f"本聊天添加的仓库已达上限（{limit} 个）。可先取消订阅其中一个。")
        return tuple(r for r in self.tracked if r in chosen), tuple(added)

    def is_shared(self, repo: str) -> bool:
        """True when `repo` is in the shared set (DIGEST_REPOS or pinned by an operator)."""
        return repo.lower() in {r.lower() for r in self.shared}

    async def added_by(self, ctx: ChatContext) -> tuple[str, ...]:
        """The repositories outside the shared set this chat named or added (its own)."""
        chat = await self.store.get_chat(ctx.platform, ctx.chat_id)
        named = chat.repos if chat is not None and chat.active else None
        return await chat_added_repos(
            self.store, self.settings.digest_repos, ctx.platform, ctx.chat_id, named
        )

    def visible(self, ctx_added: Sequence[str]) -> tuple[str, ...]:
        """The repositories a chat may read: the shared set, then what it added itself."""
        own = {r.lower() for r in ctx_added}
        return tuple(r for r in self.tracked if self.is_shared(r) or r.lower() in own)

    async def follow(self, ctx: ChatContext, repos: Sequence[str], *, kind: str) -> None:
        """Record the repositories beyond DIGEST_REPOS the chat asked for.

        A chat on "all" names none, yet keeps these tracked until it drops them or stops.
        """
        defaults = {r.lower() for r in self.settings.digest_repos}
        extras = [r for r in repos if r.lower() not in defaults]
        if extras:
            await self.store.follow_repos(ctx.platform, ctx.chat_id, extras, kind=kind)

    async def chat_repos(self, ctx: ChatContext) -> tuple[str, ...] | None:
        """The shared repositories of the chat's subscription, or None (all shared) when it
        follows all or none; `()` when it names only repositories it added."""
        chat = await self.store.get_chat(ctx.platform, ctx.chat_id)
        if chat is None or not chat.active or not chat.repos:
            return None
        wanted = {r.lower() for r in chat.repos}
        chosen = tuple(r for r in self.shared if r.lower() in wanted)
        named_any = any(r.lower() in wanted for r in self.tracked)
        return chosen if chosen or named_any else None

    def describe(self, chat: ChatRecord, added: Sequence[str] = ()) -> str:
        """`全部 8 个仓库；每天 09:00（Asia/Shanghai）推送。`"""
        every = f"全部 {len(self.shared)} 个跟踪的仓库"
        if added and not chat.repos:
            every += f"，以及本聊天添加的 {repo_list(added)}"
        what = repo_list(chat.repos) if chat.repos else every
        return f"{what}；每天 {chat.post_time}（{chat.timezone}）推送。"

    def alert_scope(self, alerts: AlertChat) -> str:
        """Which repositories and releases a chat's release alerts cover, in prose."""
        if alerts.repos is None:
            repos = f"全部 {len(self.shared)} 个跟踪的仓库"
        else:
            repos = "、".join(f"`{repo}`" for repo in alerts.repos)
        if alerts.prereleases:
            return f"{repos}（含预发布与 nightly 版本）"
        return f"{repos}（仅正式版本，发送 /alerts on all 可包含预发布与 nightly）"


def resolve_in(token: str, repos: Sequence[str], usage: str = USAGE_DIGEST) -> str:
    """One user-typed name → one of `repos`, else Refused (with `usage`) and suggestions."""
    if not NAME_RE.fullmatch(token) or ".." in token:
        raise Refused(f"无法识别“{echo(token)}”。{usage}")
    found = resolve_repo(token, repos)
    if found.repo is not None:
        return found.repo
    if len(found.suggestions) > 1 and found.reason.endswith("ambiguous"):
        options = repo_list(found.suggestions)
        raise Refused(f"“{echo(token)}”对应多个仓库：{options}，请写全名。")
    hint = f"你是不是想找：{repo_list(found.suggestions)}？" if found.suggestions else ""
    raise Refused(f"没有跟踪仓库“{echo(token)}”。{hint}发送 /repos 查看全部。")
