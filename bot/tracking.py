"""Repositories beyond DIGEST_REPOS: the two kinds, and admitting a new one after asking GitHub.

The shared set is DIGEST_REPOS, then the repositories an operator pinned (`/track`): only it makes
the "all" digest, its summary, the site, the weekly roll-up and what other chats receive. A
repository a chat added (`/subscribe owner/name`) is collected while some active chat still names
it (daily posts or release alerts) and reaches only the chats that named it, as their own sections
after the shared ones: what its authors write never reaches anyone else. The tracked set (what is
collected and polled) is the shared set plus those additions; one nobody names any more drops out.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

from bot.settings import Settings, is_repo_name
from bot.store.types import TrackedRepo
from collectors.github import GitHubClient, GitHubError

log = logging.getLogger(__name__)

CheckStatus = Literal["public", "private", "missing", "moved", "unavailable"]
# A repository's existence changes rarely; a chat retrying a typo should not cost GitHub quota.
CHECK_CACHE_SECONDS = 600.0
_CACHE_SIZE = 512


class TrackedStore(Protocol):
    """The part of `bot.store.Store` the tracked set needs."""

    async def tracked_repos(self) -> list[TrackedRepo]:
        """Repositories tracked beyond the defaults."""
        ...

    async def followed_repos(self) -> set[str]:
        """Lower-case names active chats name."""
        ...


class ChatReposStore(TrackedStore, Protocol):
    """The tracked set, plus what one chat asked for."""

    async def follows_of(self, platform: str, chat_id: str, *, kind: str) -> set[str]:
        """Lower-case names of the repositories a chat asked for (`kind`: daily | alerts)."""
        ...


class AdmittingStore(TrackedStore, Protocol):
    """The tracked set, plus adding to it."""

    async def track_repo(self, repo: str, *, by: str | None, pinned: bool) -> TrackedRepo:
        """Add a repository to the tracked set."""
        ...


async def tracked_set(store: TrackedStore, defaults: Sequence[str]) -> list[str]:
    """DIGEST_REPOS, then pinned repositories, then chat-added ones still named by a chat."""
    chosen = list(dict.fromkeys(defaults))
    extras = await store.tracked_repos()
    if not extras:
        return chosen
    followed = await store.followed_repos()
    seen = {repo.lower() for repo in chosen}
    for extra in sorted(extras, key=lambda t: not t.pinned):
        key = extra.repo.lower()
        if key not in seen and (extra.pinned or key in followed):
            chosen.append(extra.repo)
            seen.add(key)
    return chosen


async def shared_set(store: TrackedStore, defaults: Sequence[str]) -> list[str]:
    """DIGEST_REPOS, then pinned repositories: what every chat may read."""
    chosen = list(dict.fromkeys(defaults))
    seen = {repo.lower() for repo in chosen}
    for extra in await store.tracked_repos():
        if extra.pinned and extra.repo.lower() not in seen:
            chosen.append(extra.repo)
            seen.add(extra.repo.lower())
    return chosen


async def added_set(store: TrackedStore, defaults: Sequence[str]) -> list[str]:
    """Repositories chats added (not shared) that some active chat still names."""
    shared = {repo.lower() for repo in await shared_set(store, defaults)}
    return [repo for repo in await tracked_set(store, defaults) if repo.lower() not in shared]


async def chat_added_repos(
    store: ChatReposStore,
    defaults: Sequence[str],
    platform: str,
    chat_id: str,
    named: Sequence[str] | None,
) -> tuple[str, ...]:
    """The added (not shared) repositories one chat receives: those it named or asked for."""
    wanted = {repo.lower() for repo in named or ()}
    wanted |= await store.follows_of(platform, chat_id, kind="daily")
    added = await added_set(store, defaults)
    return tuple(repo for repo in added if repo.lower() in wanted)


@dataclass(frozen=True)
class RepoCheck:
    """What GitHub said about `owner/name`: `repo` is its canonical (or, when moved, new) name."""

    status: CheckStatus
    repo: str | None = None
    detail: str = ""


class RepoChecker:
    """Asks GitHub (GET /repos/{owner}/{name}) whether a repository exists and is public.

    Goes through the process's one GitHub client (its rate-limit handling and ETag cache: a
    repeat check is a 304). Redirects are followed, so a renamed repository answers with its
    new name. Answers are remembered for CHECK_CACHE_SECONDS.
    """

    def __init__(
        self,
        github: GitHubClient | Callable[[], GitHubClient],
        *,
        timeout: float = 15.0,
        cache_seconds: float = CHECK_CACHE_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        # A factory is called at the first check: a command service that never checks a
        # repository never opens a connection pool.
        self._github = github if isinstance(github, GitHubClient) else None
        self._make = None if isinstance(github, GitHubClient) else github
        self._timeout = timeout
        self._cache_seconds = cache_seconds
        self._clock = clock
        self._answers: dict[str, tuple[float, RepoCheck]] = {}
        self.requests = 0

    @classmethod
    def from_settings(cls, settings: Settings) -> RepoChecker:
        """A checker with a client of its own on GITHUB_API_URL (`run` hands in the shared one)."""
        token = settings.github_token.get_secret_value() if settings.github_token else None
        timeout = min(settings.github_timeout, 15.0)
        return cls(
            lambda: GitHubClient(settings.github_api_url, token, None, timeout=timeout),
            timeout=timeout,
        )

    async def check(self, name: str) -> RepoCheck:
        """Public, private, missing (404: absent or private to us), moved, or unavailable."""
        if not is_repo_name(name):
            return RepoCheck("missing", detail="not an owner/name")
        key = name.lower()
        cached = self._answers.get(key)
        if cached is not None and self._clock() - cached[0] < self._cache_seconds:
            return cached[1]
        answer = await self._ask(name)
        if answer.status != "unavailable":
            if len(self._answers) >= _CACHE_SIZE:
                self._answers.clear()
            self._answers[key] = (self._clock(), answer)
        return answer

    async def _ask(self, name: str) -> RepoCheck:
        self.requests += 1
        if self._github is None and self._make is not None:
            self._github = self._make()
        assert self._github is not None
        try:
            # A chat is waiting: the client's own waits (rate limit, backoff) are cut short.
            async with asyncio.timeout(self._timeout):
                data = await self._github.get(f"repos/{name}", follow_redirects=True)
        except GitHubError as exc:
            if exc.status == 404:
                return RepoCheck("missing")
            log.warning("checking %s on GitHub: %s", name, exc)
            return RepoCheck("unavailable", detail=f"HTTP {exc.status}" if exc.status else "")
        except TimeoutError:
            log.warning("checking %s on GitHub timed out", name)
            return RepoCheck("unavailable", detail="timed out")
        try:
            full_name = str(data["full_name"])
            private = bool(data.get("private", False))
        except (KeyError, TypeError, AttributeError):
            return RepoCheck("unavailable", detail="malformed answer")
        if not is_repo_name(full_name):
            return RepoCheck("unavailable", detail="unexpected repository name")
        if private:
            return RepoCheck("private", full_name)
        if full_name.lower() != name.lower():
            return RepoCheck("moved", full_name)  # GitHub only names another repo after a 301
        return RepoCheck("public", full_name)


@dataclass(frozen=True)
class Admission:
    """The outcome of adding a repository: its canonical name, or a one-line Chinese refusal."""

    repo: str | None
    refusal: str | None = None
    added: bool = False


def _code(name: str) -> str:
    return f"`{name}`"


async def admit_repo(
    store: AdmittingStore,
    settings: Settings,
    checker: RepoChecker,
    name: str,
    *,
    tracked: Sequence[str],
    by: str | None,
    pinned: bool,
    chat_added: int = 0,
) -> Admission:
    """Add `name` to the tracked set once GitHub confirms it is public, within the settings' bounds.

    `tracked` is the current set; operators (`pinned`) may add even with TRACK_ANY_REPO=false.
    `chat_added` is how many repositories the asking chat has already added (MAX_CHAT_REPOS).
    """
    for repo in tracked:
        if repo.lower() == name.lower():
            if pinned:
                await store.track_repo(repo, by=by, pinned=True)
            return Admission(repo)
    shown = _code(name)
    if not pinned and not settings.track_any_repo:
        return Admission(
            None, f"本机器人只跟踪预设的仓库，不能添加 {shown}。发送 /repos 查看全部。"
        )
    if not pinned and chat_added >= settings.max_chat_repos:
        limit = settings.max_chat_repos
        refusal = f"本聊天添加的仓库已达上限（{limit} 个），不能再添加 {shown}。"
        return Admission(None, refusal + "可先取消订阅其中一个。")
    if len(tracked) >= settings.max_tracked_repos:
        limit = settings.max_tracked_repos
        return Admission(None, f"跟踪的仓库已达上限（{limit} 个），不能再添加 {shown}。")
    check = await checker.check(name)
    if check.status == "missing":
        return Admission(None, f"仓库 {shown} 不存在或为私有仓库；只能跟踪 GitHub 上的公开仓库。")
    if check.status == "private":
        return Admission(None, f"{shown} 是私有仓库；只能跟踪公开仓库。")
    if check.status == "moved" and check.repo is not None:
        new = _code(check.repo)
        return Admission(None, f"仓库 {shown} 已更名为 {new}，请使用新名称 {new}。")
    if check.status != "public" or check.repo is None:
        return Admission(None, f"暂时无法向 GitHub 确认 {shown}，请稍后再试。")
    for repo in tracked:  # the canonical spelling may be a tracked one typed in another case
        if repo.lower() == check.repo.lower():
            return Admission(repo)
    await store.track_repo(check.repo, by=by, pinned=pinned)
    log.info("tracking %s (added by %s%s)", check.repo, by or "?", ", pinned" if pinned else "")
    return Admission(check.repo, added=True)
