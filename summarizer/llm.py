"""OpenAI-compatible model client: a fallback chain of models that survives rate limits.

Free models on OpenRouter answer 429 much of the time. Each request goes through a client-side
limiter (at most N requests in any minute, a sliding window) and a concurrency bound; a
429/5xx/timeout or an unusable answer hands the request to the next model in `DIGEST_MODELS`.
A short `Retry-After` is waited out once on the same model; a long one parks that model for that
long and moves on. Failure
reasons are redacted one-liners for logs and run records; provider error bodies (which carry
the account's `user_id`) never leave this module.
"""

from __future__ import annotations

import asyncio
import email.utils
import logging
import math
import time
from collections import Counter, deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import openai
from openai import AsyncOpenAI
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception, stop_after_attempt

from collectors.redact import Redactor
from summarizer.digest import Usage
from summarizer.guard import looks_chinese

log = logging.getLogger(__name__)

# OpenRouter's app attribution headers (https://openrouter.ai/docs/app-attribution).
ATTRIBUTION_HEADERS: dict[str, str] = {
    "HTTP-Referer": "https://github.com/aiinfra-digest/aiinfra-digest",
    "X-Title": "aiinfra-digest",
}
# A Retry-After up to this many seconds is waited out on the same model; longer → next model.
MAX_RETRY_AFTER = 10.0
_REASON_CHARS = 160

Message = Mapping[str, str]
Validator = Callable[[str], str | None]
FormatLevel = Literal["json_schema", "json_object", "none"]
_FORMAT_LEVELS: tuple[FormatLevel, ...] = ("json_schema", "json_object", "none")


@dataclass(frozen=True)
class Completion:
    """A usable answer: its text, the model that wrote it, and the usage of every call it took."""

    text: str
    model: str
    usage: Usage


class AllModelsFailed(Exception):
    """Every model of the chain failed; `reasons` (redacted, one per model) are for operators."""

    def __init__(self, reasons: list[str]) -> None:
        self.reasons = list(reasons)
        super().__init__("all models failed: " + "; ".join(self.reasons))


@dataclass
class LLMStats:
    """Counters over the client's lifetime (for logs and benchmarks)."""

    requests: int = 0
    rate_limited: int = 0
    server_errors: int = 0
    timeouts: int = 0
    unusable: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    answered_by: Counter[str] = field(default_factory=Counter)
    # (model, outcome) → answers: answered, unusable, failed, skipped (parked by a Retry-After).
    outcomes: Counter[tuple[str, str]] = field(default_factory=Counter)


class _Failure(Exception):
    """One request failed; `reason` is already redacted."""

    def __init__(
        self, reason: str, *, status: int | None = None, retry_after: float | None = None
    ) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status
        self.retry_after = retry_after


@dataclass
class _Tally:
    """Calls and tokens spent on one `complete` call, failed attempts included."""

    calls: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0

    def usage(self) -> Usage:
        return Usage(
            prompt_tokens=self.prompt_tokens,
            completion_tokens=self.completion_tokens,
            calls=self.calls,
        )


_STATUS_WORDS = {
    400: "bad request",
    401: "unauthorized",
    402: "payment required",
    403: "forbidden",
    404: "model not found",
    408: "request timeout",
    413: "prompt too large",
    422: "unprocessable",
    429: "rate limited",
}


def redact(text: str, *secrets: str) -> str:
    """One line without account ids, keys or tokens, at most a couple of hundred characters."""
    return Redactor(secrets).line(text, _REASON_CHARS)


def parse_retry_after(headers: Mapping[str, str]) -> float | None:
    """Seconds to wait from `retry-after-ms` or `Retry-After` (seconds or an HTTP date)."""
    lowered = {key.lower(): value for key, value in headers.items()}
    milliseconds = lowered.get("retry-after-ms")
    if milliseconds:
        try:
            value = float(milliseconds) / 1000
        except ValueError:
            value = math.nan
        if math.isfinite(value) and value >= 0:
            return value
    raw = lowered.get("retry-after")
    if not raw:
        return None
    try:
        value = float(raw)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(raw)
        except (TypeError, ValueError):
            return None
        return max(0.0, when.timestamp() - time.time())
    return value if math.isfinite(value) and value >= 0 else None


def _status_reason(exc: openai.APIStatusError) -> str:
    """A short reason from status and (OpenRouter-shaped) body, never the raw body."""
    status = exc.status_code
    words = _STATUS_WORDS.get(status, "server error" if status >= 500 else "error")
    body: Any = exc.body
    details: list[str] = []
    if isinstance(body, Mapping):
        message = body.get("message")
        metadata = body.get("metadata")
        if isinstance(message, str) and message.strip():
            details.append(message.strip()[:80])
        if isinstance(metadata, Mapping) and isinstance(metadata.get("provider_name"), str):
            details.append(f"provider {metadata['provider_name']}")
    return f"HTTP {status} {words}" + (f" ({'; '.join(details)})" if details else "")


def _wait_retry_after(state: RetryCallState) -> float:
    """Tenacity wait: the Retry-After the failed attempt carried."""
    exc = state.outcome.exception() if state.outcome else None
    return exc.retry_after or 0.0 if isinstance(exc, _Failure) else 0.0


class WindowLimiter:
    """At most `limit` requests start in any `period` seconds; callers wait their turn in order.

    A sliding log rather than aiolimiter's leaky bucket: a bucket drained at 20/min lets a burst
    of 20 be followed by a trickle, up to 39 in one minute, which a 20/min key refuses.
    """

    def __init__(
        self, limit: int, period: float, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.limit = max(1, limit)
        self.period = period
        self._clock = clock
        self._starts: deque[float] = deque()
        self._turn = asyncio.Lock()  # FIFO: the longest waiter gets the next free slot
        self.waiting = 0

    async def acquire(self) -> None:
        """Wait until fewer than `limit` requests started in the last `period` seconds."""
        self.waiting += 1
        try:
            async with self._turn:
                while True:
                    now = self._clock()
                    while self._starts and now - self._starts[0] >= self.period:
                        self._starts.popleft()
                    if len(self._starts) < self.limit:
                        self._starts.append(now)
                        return
                    await asyncio.sleep(self._starts[0] + self.period - now)
        finally:
            self.waiting -= 1

    async def __aenter__(self) -> None:
        await self.acquire()

    async def __aexit__(self, *_: object) -> None:
        return None


class LLMClient:
    """Chat completions over an OpenAI-compatible endpoint, with a model fallback chain.

    Make one per process and hand it to every path that asks a model (daily digest, weekly
    roll-up, release notes): the limiter only bounds the requests that go through it.
    """

    def __init__(
        self,
        api_key: str,
        base_url: str,
        models: Sequence[str],
        *,
        concurrency: int = 4,
        requests_per_minute: float = 20.0,
        minute: float = 60.0,
        timeout: float = 120.0,
        headers: dict[str, str] | None = None,
        max_retry_after: float = MAX_RETRY_AFTER,
        temperature: float | None = 0.3,
    ) -> None:
        if not models:
            raise ValueError("at least one model is needed")
        self._redactor = Redactor((api_key,))
        self._models = tuple(models)
        self._timeout = timeout
        self._max_retry_after = max_retry_after
        self._temperature = temperature
        self._client = AsyncOpenAI(
            api_key=api_key,
            base_url=base_url,
            timeout=timeout,
            max_retries=0,  # retries and fallbacks are ours, with limiter and chain in mind
            default_headers={**ATTRIBUTION_HEADERS, **(headers or {})},
        )
        self._semaphore = asyncio.Semaphore(concurrency)
        # `minute` is shorter only in tests, so a window can pass while they run.
        # A fractional rate is a whole number of requests over a stretched window.
        limit = max(1, math.floor(requests_per_minute))
        self.limiter = WindowLimiter(limit, minute * limit / requests_per_minute)
        # Models parked by a long Retry-After: model → monotonic time it may be asked again.
        self._parked_until: dict[str, float] = {}
        # The response_format each model was found to accept (json_schema is tried first).
        self._format_level: dict[str, int] = {}
        self.stats = LLMStats()

    def _redact(self, text: str) -> str:
        return self._redactor.line(text, _REASON_CHARS)

    @property
    def models(self) -> tuple[str, ...]:
        """The fallback chain, in order."""
        return self._models

    async def aclose(self) -> None:
        """Close the HTTP connections."""
        await self._client.close()

    async def complete(
        self,
        messages: Sequence[Message],
        *,
        json_schema: dict[str, Any] | None = None,
        validate: Validator | None = None,
        require_chinese: bool = True,
    ) -> Completion:
        """The first usable answer along the chain; raises AllModelsFailed with redacted reasons.

        Unusable: empty, not Chinese (unless `require_chinese` is False), or `validate(text)`
        returned an error string. `json_schema` asks for structured output where accepted.
        """
        tally = _Tally()
        reasons: list[str] = []
        for model in self._models:
            parked = self._parked_until.get(model, 0.0) - time.monotonic()
            if parked > 0:
                reasons.append(f"{model}: skipped, rate limited for {parked:.0f}s more")
                self.stats.outcomes[model, "skipped"] += 1
                continue
            try:
                text = await self._ask(model, messages, json_schema, tally)
            except _Failure as failure:
                reasons.append(f"{model}: {failure.reason}")
                self.stats.outcomes[model, "failed"] += 1
                log.info("model %s failed: %s", model, failure.reason)
                continue
            problem = self._problem(text, validate, require_chinese)
            if problem is not None:
                self.stats.unusable += 1
                self.stats.outcomes[model, "unusable"] += 1
                reasons.append(f"{model}: unusable answer ({self._redact(problem)})")
                log.info("model %s gave an unusable answer: %s", model, problem)
                continue
            self.stats.answered_by[model] += 1
            self.stats.outcomes[model, "answered"] += 1
            return Completion(text=text, model=model, usage=tally.usage())
        raise AllModelsFailed(reasons)

    @staticmethod
    def _problem(text: str, validate: Validator | None, require_chinese: bool) -> str | None:
        if not text.strip():
            return "empty"
        if require_chinese and not looks_chinese(text):
            return "not Chinese"
        return validate(text) if validate is not None else None

    async def _ask(
        self,
        model: str,
        messages: Sequence[Message],
        json_schema: dict[str, Any] | None,
        tally: _Tally,
    ) -> str:
        """One model's answer, stepping down response_format levels on 400."""
        if json_schema is None:
            return await self._with_retry_after(model, messages, None, tally)
        level = self._format_level.get(model, 0)
        while True:
            response_format = _response_format(_FORMAT_LEVELS[level], json_schema)
            try:
                text = await self._with_retry_after(model, messages, response_format, tally)
            except _Failure as failure:
                if failure.status == 400 and level + 1 < len(_FORMAT_LEVELS):
                    level += 1  # the endpoint rejected this response_format: ask more plainly
                    self._format_level[model] = level
                    continue
                raise
            return text

    async def _with_retry_after(
        self,
        model: str,
        messages: Sequence[Message],
        response_format: dict[str, Any] | None,
        tally: _Tally,
    ) -> str:
        """One request, repeated once after a short Retry-After; a long one parks the model."""
        retrying = AsyncRetrying(
            stop=stop_after_attempt(2),
            retry=retry_if_exception(self._short_wait),
            wait=_wait_retry_after,
            reraise=True,
        )
        try:
            async for attempt in retrying:
                with attempt:
                    return await self._request(model, messages, response_format, tally)
        except _Failure as failure:
            if failure.retry_after is not None and failure.retry_after > self._max_retry_after:
                self._parked_until[model] = time.monotonic() + failure.retry_after
            raise
        raise AssertionError("unreachable: tenacity reraises")  # pragma: no cover

    def _short_wait(self, exc: BaseException) -> bool:
        return (
            isinstance(exc, _Failure)
            and exc.retry_after is not None
            and exc.retry_after <= self._max_retry_after
        )

    async def _request(
        self,
        model: str,
        messages: Sequence[Message],
        response_format: dict[str, Any] | None,
        tally: _Tally,
    ) -> str:
        extra: dict[str, Any] = {}
        if response_format is not None:
            extra["response_format"] = response_format
        if self._temperature is not None:
            extra["temperature"] = self._temperature
        async with self._semaphore, self.limiter:
            tally.calls += 1
            self.stats.requests += 1
            try:
                async with asyncio.timeout(self._timeout):
                    response = await self._client.chat.completions.create(
                        model=model,
                        messages=[dict(m) for m in messages],  # type: ignore[misc]
                        **extra,
                    )
            except (TimeoutError, openai.APITimeoutError):
                self.stats.timeouts += 1
                raise _Failure(f"timed out after {self._timeout:g}s") from None
            except openai.APIStatusError as exc:
                raise self._status_failure(exc) from None
            except openai.APIConnectionError:
                raise _Failure("connection failed") from None
            except openai.APIError as exc:
                raise _Failure(f"bad response ({type(exc).__name__})") from None
        usage = getattr(response, "usage", None)
        if usage is not None:
            tally.prompt_tokens += usage.prompt_tokens or 0
            tally.completion_tokens += usage.completion_tokens or 0
            self.stats.prompt_tokens += usage.prompt_tokens or 0
            self.stats.completion_tokens += usage.completion_tokens or 0
        choices = getattr(response, "choices", None) or []
        if not choices:
            raise _Failure("answer without choices")
        content = choices[0].message.content
        return content if isinstance(content, str) else ""

    def _status_failure(self, exc: openai.APIStatusError) -> _Failure:
        status = exc.status_code
        if status == 429:
            self.stats.rate_limited += 1
        elif status >= 500:
            self.stats.server_errors += 1
        retry_after = parse_retry_after(exc.response.headers)
        if status not in (429, 503) and status < 500:
            retry_after = None  # only rate limits and overload are worth waiting for
        return _Failure(self._redact(_status_reason(exc)), status=status, retry_after=retry_after)


def _response_format(level: FormatLevel, schema: dict[str, Any]) -> dict[str, Any] | None:
    if level == "json_schema":
        return {
            "type": "json_schema",
            "json_schema": {"name": "digest_summary", "strict": True, "schema": schema},
        }
    if level == "json_object":
        return {"type": "json_object"}
    return None
