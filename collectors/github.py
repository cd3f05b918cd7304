"""An async client for the GitHub REST API, frugal with the rate limit.

Every GET is conditional when an ETag is stored (a 304 costs no rate limit and reuses the stored
body), follows `Link` pagination, waits out rate limits instead of failing, retries 5xx and
timeouts with exponential backoff and jitter (tenacity), and keeps a bounded number of requests
in flight. Errors are `GitHubError` with a one-line message that never contains the token.
"""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import hashlib
import json
import logging
import re
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from types import TracebackType
from typing import Any
from urllib.parse import urlsplit

import httpx
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception_type,
    stop_after_attempt,
    wait_exponential,
    wait_random,
)

from collectors.cache import KeyValueCache

log = logging.getLogger(__name__)

ETAG_NAMESPACE = "etag"
PER_PAGE = 100
GRAPHQL_URL = "https://api.github.com/graphql"
COLLECTORS = ("auto", "rest", "graphql")
_API_VERSION = "2022-11-28"
_LINK = re.compile(r'<([^>]*)>\s*;\s*rel="([^"]*)"')
_SECONDARY = re.compile(r"secondary rate limit|abuse detection", re.IGNORECASE)

Sleep = Callable[[float], Awaitable[None]]
Params = Mapping[str, str | int]


class GitHubError(Exception):
    """A request that failed for good; `status` is the HTTP status when there was one."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(" ".join(message.split()))
        self.status = status


class GraphQLError(GitHubError):
    """A GraphQL answer carrying `errors` (GitHub sends these with HTTP 200)."""


class _Retryable(GitHubError):
    """A failure worth another attempt; `retry_after` is the wait the server asked for."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


@dataclass
class GitHubStats:
    """Request counters of one client (304s and cache hits cost no rate limit)."""

    requests: int = 0
    rate_limited: int = 0
    not_modified: int = 0
    cache_hits: int = 0
    retries: int = 0
    waited_seconds: float = 0.0
    graphql_requests: int = 0
    graphql_points: int = 0


@dataclass(frozen=True)
class Page:
    """One response body and the URL of the next page, if any."""

    data: Any
    next_url: str | None


@dataclass(frozen=True)
class Paged:
    """The items of a paginated listing; `complete` is False when paging stopped at a cap."""

    items: list[Any]
    pages: int
    complete: bool


def parse_links(header: str | None) -> dict[str, str]:
    """A `Link` header → {rel: url}."""
    return {rel: url for url, rel in _LINK.findall(header or "")}


class GitHubClient:
    """GitHub REST client on httpx.AsyncClient; use as `async with GitHubClient(...) as gh`."""

    def __init__(
        self,
        base_url: str,
        token: str | None,
        cache: KeyValueCache | None,
        *,
        concurrency: int = 4,
        timeout: float = 30.0,
        max_attempts: int = 5,
        backoff: float = 1.0,
        backoff_max: float = 30.0,
        max_rate_limit_wait: float = 900.0,
        secondary_wait: float = 60.0,
        rate_limit_reserve: int = 2,
        sleep: Sleep = asyncio.sleep,
        clock: Callable[[], float] = time.time,
        graphql_url: str = GRAPHQL_URL,
        collector: str = "auto",
    ) -> None:
        headers = {
            "Accept": "application/vnd.github+json",
            "X-GitHub-Api-Version": _API_VERSION,
            "User-Agent": "aiinfra-digest",
        }
        if token:
            headers["Authorization"] = f"Bearer {token}"
        else:
            log.warning("GITHUB_TOKEN is not set: GitHub allows 60 unauthenticated requests/hour")
        self._base = base_url.rstrip("/") + "/"
        self._http = httpx.AsyncClient(
            base_url=self._base, headers=headers, timeout=httpx.Timeout(timeout)
        )
        self._has_token = bool(token)
        self._cache = cache
        self._semaphore = asyncio.Semaphore(concurrency)
        self._limit_lock = asyncio.Lock()
        self._max_attempts = max_attempts
        self._backoff = wait_exponential(multiplier=backoff, max=backoff_max) + wait_random(
            0, backoff
        )
        self._max_rate_limit_wait = max_rate_limit_wait
        self._secondary_wait = secondary_wait
        self._reserve = rate_limit_reserve
        self._sleep = sleep
        self._clock = clock
        self.stats = GitHubStats()
        self.rate_limit_remaining: int | None = None
        self.rate_limit_reset: float | None = None
        self.graphql_url = graphql_url
        if collector not in COLLECTORS:
            raise ValueError(f"collector must be one of {', '.join(COLLECTORS)}, not {collector!r}")
        self.collector = collector
        # GraphQL has its own budget in points (5,000/hour), read from `rateLimit` of each answer.
        self.graphql_remaining: int | None = None
        self.graphql_reset: float | None = None
        self._graphql_lock = asyncio.Lock()

    async def __aenter__(self) -> GitHubClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    @property
    def uses_graphql(self) -> bool:
        """True when days are collected over GraphQL (it needs a token; `auto` uses it then)."""
        # GitHub answers GraphQL only with a token, so without one even `graphql` means REST.
        return self.collector != "rest" and self._has_token

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self._http.aclose()

    async def get(
        self,
        path: str,
        params: Params | None = None,
        *,
        immutable: bool = False,
        follow_redirects: bool = False,
    ) -> Any:
        """The parsed JSON body of GET `path` (relative to the base URL, or an absolute URL)."""
        page = await self.get_page(
            path, params, immutable=immutable, follow_redirects=follow_redirects
        )
        return page.data

    async def get_page(
        self,
        path: str,
        params: Params | None = None,
        *,
        immutable: bool = False,
        follow_redirects: bool = False,
    ) -> Page:
        """GET one page; `immutable` serves a stored body without asking (e.g. a commit by SHA).

        `follow_redirects` answers a renamed repository's 301 with its new home (httpx drops the
        token on a redirect to another host).
        """
        url = self._url(path, params)
        cached = await self._cached(url)
        if immutable and cached is not None:
            self.stats.cache_hits += 1
            return Page(cached["data"], parse_links(cached["link"]).get("next"))
        page: Page = await self._retried(self._attempt, url, cached, follow_redirects)
        return page

    async def _retried(self, attempt: Callable[..., Awaitable[Any]], *args: Any) -> Any:
        """The one retry policy of REST and GraphQL calls: retryable failures with backoff or
        the server's wait, up to `max_attempts`, then one GitHubError."""
        retrying = AsyncRetrying(
            retry=retry_if_exception_type(_Retryable),
            stop=stop_after_attempt(self._max_attempts),
            wait=self._wait,
            sleep=self._slept,
            before_sleep=self._log_retry,
            reraise=True,
        )
        try:
            return await retrying(attempt, *args)
        except _Retryable as exc:
            raise GitHubError(f"{exc} (gave up after {self._max_attempts} attempts)") from None

    async def paginate(
        self,
        path: str,
        params: Params | None = None,
        *,
        max_pages: int | None = None,
        stop: Callable[[list[Any]], bool] | None = None,
    ) -> Paged:
        """All items of a listing, following `Link: rel="next"` (per_page=100).

        Paging ends early when `stop(page_items)` is true (complete: the caller has what it needs)
        or after `max_pages` (incomplete: the caller must flag it).
        """
        query: dict[str, str | int] = {"per_page": PER_PAGE, **(params or {})}
        page = await self.get_page(path, query)
        items: list[Any] = []
        pages = 0
        while True:
            if not isinstance(page.data, list):
                raise GitHubError(
                    f"GitHub sent a {type(page.data).__name__}, not a list, for {path}"
                )
            items.extend(page.data)
            pages += 1
            if page.next_url is None or (stop is not None and stop(page.data)):
                return Paged(items, pages, complete=True)
            if max_pages is not None and pages >= max_pages:
                return Paged(items, pages, complete=False)
            page = await self.get_page(self._same_origin(page.next_url))

    async def graphql(
        self,
        query: str,
        variables: Mapping[str, Any],
        *,
        reuse_fetched_after: datetime | None = None,
    ) -> dict[str, Any]:
        """The `data` of a GraphQL query; errors raise GraphQLError (or GitHubError on HTTP).

        An answer stored in the cache is served without asking when it was fetched after
        `reuse_fetched_after` (e.g. after a day's window closed: the day cannot change since).
        """
        key = (
            "graphql "
            + hashlib.sha256(
                json.dumps([query, dict(variables)], sort_keys=True).encode()
            ).hexdigest()
        )
        if reuse_fetched_after is not None:
            stored = await self._stored_graphql(key, reuse_fetched_after)
            if stored is not None:
                self.stats.cache_hits += 1
                return stored
        data: dict[str, Any] = await self._retried(self._graphql_attempt, query, variables)
        if self._cache is not None:
            entry = {"fetched_at": self._clock(), "data": data}
            await self._cache.put(ETAG_NAMESPACE, key, json.dumps(entry))
        return data

    async def _stored_graphql(self, key: str, fetched_after: datetime) -> dict[str, Any] | None:
        if self._cache is None:
            return None
        raw = await self._cache.get(ETAG_NAMESPACE, key)
        if raw is None:
            return None
        try:
            entry = json.loads(raw)
            fetched = float(entry["fetched_at"])
            data = entry["data"]
        except (ValueError, KeyError, TypeError):
            log.warning("ignoring a corrupt cached GraphQL answer")
            return None
        if fetched < fetched_after.timestamp() or not isinstance(data, dict):
            return None
        return data

    async def _graphql_attempt(self, query: str, variables: Mapping[str, Any]) -> dict[str, Any]:
        await self._respect_graphql_limit()
        short = _short(self.graphql_url)
        async with self._semaphore:
            try:
                response = await self._http.post(
                    self.graphql_url, json={"query": query, "variables": dict(variables)}
                )
            except httpx.TimeoutException:
                self.stats.graphql_requests += 1
                raise _Retryable(f"POST {short}: timed out") from None
            except httpx.TransportError as exc:
                raise _Retryable(f"POST {short}: {type(exc).__name__}") from None
        self.stats.graphql_requests += 1
        self._note_graphql_headers(response)
        if response.status_code != 200:
            failure = self._failure(short, response)
            if isinstance(failure, _Retryable) or failure.status == 401:
                raise failure
            raise GraphQLError(str(failure), failure.status)
        try:
            body = response.json()
        except ValueError:
            raise GraphQLError(f"GitHub sent malformed JSON for {short}", 200) from None
        if not isinstance(body, dict):
            raise GraphQLError(f"GitHub sent a {type(body).__name__}, not an object, for {short}")
        data = body.get("data")
        self._note_graphql_limit(data)
        errors = body.get("errors")
        if errors:
            raise self._graphql_failure(errors)
        if not isinstance(data, dict):
            raise GraphQLError(f"GitHub sent no data for {short}")
        return data

    def _note_graphql_headers(self, response: httpx.Response) -> None:
        """The GraphQL budget from the headers (the only source on an error answer)."""
        remaining = response.headers.get("X-RateLimit-Remaining")
        reset = response.headers.get("X-RateLimit-Reset")
        if remaining is not None and remaining.isdigit():
            self.graphql_remaining = int(remaining)
        if reset is not None and reset.isdigit():
            self.graphql_reset = float(reset)

    def _note_graphql_limit(self, data: Any) -> None:
        """Remember `rateLimit {cost remaining resetAt}` of an answer."""
        limit = data.get("rateLimit") if isinstance(data, dict) else None
        if not isinstance(limit, dict):
            return
        cost, remaining, reset = limit.get("cost"), limit.get("remaining"), limit.get("resetAt")
        if isinstance(cost, int):
            self.stats.graphql_points += cost
        if isinstance(remaining, int):
            self.graphql_remaining = remaining
        if isinstance(reset, str):
            with contextlib.suppress(ValueError):  # a malformed resetAt leaves the last known
                self.graphql_reset = datetime.fromisoformat(
                    reset.replace("Z", "+00:00")
                ).timestamp()

    def _graphql_failure(self, errors: Any) -> GitHubError:
        """The first error of a GraphQL answer; RATE_LIMITED waits for `resetAt`, then retries."""
        first = errors[0] if isinstance(errors, list) and errors else {}
        kind = first.get("type") if isinstance(first, dict) else None
        message = first.get("message") if isinstance(first, dict) else None
        text = " ".join(str(message or "unknown error").split())[:200]
        if kind == "RATE_LIMITED":
            wait = max((self.graphql_reset or self._clock()) - self._clock(), 0.0) + 1.0
            if wait > self._max_rate_limit_wait:
                return GraphQLError(
                    f"GitHub GraphQL rate limit: retry in {wait:.0f}s, longer than the "
                    f"{self._max_rate_limit_wait:.0f}s this client waits"
                )
            self.graphql_remaining = None
            return _Retryable(f"GraphQL rate limited ({text})", wait)
        return GraphQLError(f"GitHub GraphQL error{f' {kind}' if kind else ''}: {text}")

    async def _respect_graphql_limit(self) -> None:
        """Wait for the reset when GraphQL points are nearly spent, rather than hit the limit."""
        await self._respect_budget(graphql=True)

    def _url(self, path: str, params: Params | None) -> str:
        target = path if "://" in path else self._base + path.lstrip("/")
        query = {k: str(v) for k, v in params.items()} if params else None
        return str(self._http.build_request("GET", target, params=query).url)

    def _same_origin(self, url: str) -> str:
        # The Authorization header must never follow a link to another host.
        ours, theirs = urlsplit(self._base), urlsplit(url)
        if (ours.scheme, ours.netloc) != (theirs.scheme, theirs.netloc):
            raise GitHubError(f"refusing a pagination link to another host: {theirs.netloc}")
        return url

    async def _cached(self, url: str) -> dict[str, Any] | None:
        if self._cache is None:
            return None
        raw = await self._cache.get(ETAG_NAMESPACE, url)
        if raw is None:
            return None
        try:
            entry = json.loads(raw)
            return {
                "etag": entry["etag"],
                "link": entry.get("link"),
                "data": json.loads(entry["body"]),
            }
        except (ValueError, KeyError, TypeError):
            log.warning("ignoring a corrupt cache entry for %s", url)
            return None

    async def _store(self, url: str, etag: str, link: str | None, body: str) -> None:
        if self._cache is not None:
            entry = {"etag": etag, "link": link, "body": body}
            await self._cache.put(ETAG_NAMESPACE, url, json.dumps(entry))

    async def _attempt(
        self, url: str, cached: dict[str, Any] | None, follow_redirects: bool = False
    ) -> Page:
        await self._respect_rate_limit()
        headers = {"If-None-Match": cached["etag"]} if cached else {}
        short = _short(url)
        async with self._semaphore:
            try:
                response = await self._http.get(
                    url, headers=headers, follow_redirects=follow_redirects
                )
            except httpx.TimeoutException:
                self.stats.requests += 1
                raise _Retryable(f"GET {short}: timed out") from None
            except httpx.TransportError as exc:
                raise _Retryable(f"GET {short}: {type(exc).__name__}") from None
        self._count(response)
        if response.status_code == 304 and cached is not None:
            return Page(cached["data"], parse_links(cached["link"]).get("next"))
        if response.status_code == 200:
            return await self._accept(url, response)
        raise self._failure(short, response)

    def _count(self, response: httpx.Response) -> None:
        self.stats.requests += 1
        if response.status_code == 304:
            self.stats.not_modified += 1
        else:
            self.stats.rate_limited += 1
        remaining = response.headers.get("X-RateLimit-Remaining")
        reset = response.headers.get("X-RateLimit-Reset")
        if remaining is not None and remaining.isdigit():
            self.rate_limit_remaining = int(remaining)
        if reset is not None and reset.isdigit():
            self.rate_limit_reset = float(reset)

    async def _accept(self, url: str, response: httpx.Response) -> Page:
        try:
            data = response.json()
        except ValueError:
            raise GitHubError(f"GitHub sent malformed JSON for {_short(url)}", 200) from None
        link = response.headers.get("Link")
        etag = response.headers.get("ETag")
        if etag:
            await self._store(url, etag, link, response.text)
        return Page(data, parse_links(link).get("next"))

    def _failure(self, short: str, response: httpx.Response) -> GitHubError:
        status = response.status_code
        message = _message(response)
        if status == 401:
            if self._has_token:
                return GitHubError("GitHub rejected the token (401): GITHUB_TOKEN is invalid", 401)
            return GitHubError(f"GitHub asked for authentication (401) for {short}", 401)
        if status in (403, 429):
            wait = self._rate_limit_wait(response, message)
            if wait is not None:
                if wait > self._max_rate_limit_wait:
                    return GitHubError(
                        f"GitHub rate limit: retry in {wait:.0f}s, longer than the "
                        f"{self._max_rate_limit_wait:.0f}s this client waits"
                        + ("" if self._has_token else "; set GITHUB_TOKEN"),
                        status,
                    )
                return _Retryable(f"GET {short}: {status} rate limited ({message})", wait)
        if status >= 500:
            # A 503 may say when to come back; otherwise back off exponentially.
            after = _retry_after(response.headers.get("Retry-After"), self._clock())
            if after is not None:
                after = min(after, self._max_rate_limit_wait)
            return _Retryable(f"GET {short}: {status} {response.reason_phrase}", after)
        if status == 404:
            return GitHubError(f"GitHub 404 for {short}: not found, or private", 404)
        return GitHubError(f"GitHub {status} for {short}: {message}", status)

    def _rate_limit_wait(self, response: httpx.Response, message: str) -> float | None:
        """Seconds to wait before retrying a 403/429, or None when it is not a rate limit."""
        retry_after = _retry_after(response.headers.get("Retry-After"), self._clock())
        if retry_after is not None:
            return retry_after
        if response.headers.get("X-RateLimit-Remaining") == "0" and self.rate_limit_reset:
            return max(self.rate_limit_reset - self._clock(), 0.0) + 1.0
        if _SECONDARY.search(message) or response.status_code == 429:
            # GitHub's advice when a secondary limit names no time: wait at least a minute.
            return self._secondary_wait
        return None

    async def _respect_rate_limit(self) -> None:
        """Wait for the reset when the primary limit is nearly spent, rather than hit it."""
        await self._respect_budget(graphql=False)

    async def _respect_budget(self, *, graphql: bool) -> None:
        """The one wait for a nearly spent budget: REST requests or GraphQL points."""
        async with self._graphql_lock if graphql else self._limit_lock:
            if graphql:
                remaining, reset = self.graphql_remaining, self.graphql_reset
            else:
                remaining, reset = self.rate_limit_remaining, self.rate_limit_reset
            if remaining is None or reset is None or remaining > self._reserve:
                return
            delay = reset - self._clock() + 1.0
            if delay <= 0:
                return
            what = "GitHub GraphQL points" if graphql else "GitHub rate limit"
            if delay > self._max_rate_limit_wait:
                hint = "" if graphql or self._has_token else "; set GITHUB_TOKEN"
                raise GitHubError(
                    f"{what} nearly spent ({remaining} left) for {delay:.0f}s more{hint}"
                )
            log.warning("%s: %d left, waiting %.0fs for the reset", what, remaining, delay)
            await self._slept(delay)
            # The next response tells the new budget.
            if graphql:
                self.graphql_remaining = None
            else:
                self.rate_limit_remaining = None

    def _wait(self, state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome is not None else None
        if isinstance(exc, _Retryable) and exc.retry_after is not None:
            return exc.retry_after
        return float(self._backoff(state))

    async def _slept(self, seconds: float) -> None:
        self.stats.waited_seconds += seconds
        await self._sleep(seconds)

    def _log_retry(self, state: RetryCallState) -> None:
        self.stats.retries += 1
        exc = state.outcome.exception() if state.outcome is not None else None
        if isinstance(exc, _Retryable) and exc.retry_after is not None:
            # This wait is the one the server asked for (often up to the reset): the next
            # response tells the new budget, so the pre-request check must not wait again.
            self.rate_limit_remaining = None
        wait = state.next_action.sleep if state.next_action is not None else 0.0
        log.info("%s; attempt %d, retrying in %.1fs", exc, state.attempt_number, wait)


def _short(url: str) -> str:
    """The path and query of a URL, for messages (never carries the token: that is a header)."""
    parts = urlsplit(url)
    return parts.path + (f"?{parts.query}" if parts.query else "")


def _message(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.reason_phrase
    if isinstance(body, dict) and isinstance(body.get("message"), str):
        return " ".join(body["message"].split())[:200]
    return response.reason_phrase


def _retry_after(value: str | None, now: float) -> float | None:
    """`Retry-After` as seconds: an integer, or an HTTP date."""
    if value is None:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max((when - datetime.fromtimestamp(now, UTC)).total_seconds(), 0.0)
