"""Prometheus metrics, opt-in: `METRICS_PORT` serves them at http://<host>:<port>/metrics.

Other modules report through a few one-line calls (`metrics.delivery(platform, state)`,
`metrics.posted(day)`, `metrics.generated(seconds)`); the GitHub and model clients live in lower
layers that must not import the bot, so their counters are read at scrape time from the clients'
own `stats` once `watch_github` / `watch_llm` has been told about them. Without METRICS_PORT
nothing listens and the calls only update in-memory counters.
"""

from __future__ import annotations

import logging
import time
import weakref
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date
from typing import Protocol

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

log = logging.getLogger(__name__)

# One registry for the process (not prometheus_client's global one, which holds the library's
# own process and GC collectors as well).
REGISTRY = CollectorRegistry()
# "Last successful post" keeps a label per digest day: only the days most recently posted to
# are exported, so the series do not grow forever.
POSTED_DAYS_KEPT = 7

_DELIVERIES = Counter(
    "aiinfra_deliveries",
    "Delivery attempts of the daily digest by outcome (sent, retrying, failed, chat_gone, ...).",
    ["platform", "state"],
    registry=REGISTRY,
)
_GENERATION = Histogram(
    "aiinfra_generation_seconds",
    "Time to collect and write one day's digest.",
    buckets=(5, 15, 30, 60, 120, 300, 600, 1200, 1800, 3600),
    registry=REGISTRY,
)
_LAST_POST = Gauge(
    "aiinfra_last_successful_post_timestamp_seconds",
    "Unix time of the last digest delivered to a chat, per digest day.",
    ["day"],
    registry=REGISTRY,
)


class GitHubLike(Protocol):
    """What the GitHub client exposes for metrics (collectors.github.GitHubClient)."""

    rate_limit_remaining: int | None

    @property
    def stats(self) -> object:
        """Request counters: requests, not_modified, cache_hits, rate_limited, retries."""
        ...


class LLMLike(Protocol):
    """What the model client exposes for metrics (summarizer.llm.LLMClient)."""

    @property
    def stats(self) -> object:
        """Counters; `outcomes` maps (model, outcome) → calls."""
        ...


# The days with a post exported, in the order they were last posted to.
_posted_days: dict[date, None] = {}
_github: weakref.WeakSet[GitHubLike] = weakref.WeakSet()
_llms: weakref.WeakSet[LLMLike] = weakref.WeakSet()
# GitHubStats field → the `kind` label it is exported under.
_GITHUB_KINDS = {
    "requests": "sent",
    "not_modified": "not_modified",
    "cache_hits": "cache_hit",
    "rate_limited": "charged",  # GitHubStats counts here every response that cost rate limit
    "retries": "retried",
}


def delivery(platform: str, state: str) -> None:
    """Count one delivery outcome (`sent`, `retrying`, `failed`, `chat_gone`, `taken_over`...)."""
    _DELIVERIES.labels(platform=platform, state=state).inc()


def posted(day: date, when: float | None = None) -> None:
    """Record that a chat received the digest of `day` now (or at Unix time `when`)."""
    _LAST_POST.labels(day=day.isoformat()).set(time.time() if when is None else when)
    _posted_days.pop(day, None)
    _posted_days[day] = None  # most recently posted last
    while len(_posted_days) > POSTED_DAYS_KEPT:
        oldest = next(iter(_posted_days))
        del _posted_days[oldest]
        _LAST_POST.remove(oldest.isoformat())


def generated(seconds: float) -> None:
    """Record how long one day's digest took to collect and write."""
    _GENERATION.observe(seconds)


def watch_github(client: GitHubLike) -> None:
    """Export `client`'s request counters and rate limit while it lives."""
    _github.add(client)


def watch_llm(client: LLMLike | None) -> None:
    """Export `client`'s model calls by model and outcome while it lives (None: no model)."""
    if client is not None:
        _llms.add(client)


class _ClientCollector(Collector):
    """Reads the watched clients' counters when Prometheus scrapes."""

    def collect(self) -> Iterator[Metric]:
        """The GitHub and model metrics, summed over the live clients."""
        github = CounterMetricFamily(
            "aiinfra_github_requests",
            "GitHub API requests: sent (reached GitHub), charged (cost rate limit), not_modified,"
            " cache_hit (no request), retried (attempts repeated after an error).",
            labels=["kind"],
        )
        for field, kind in _GITHUB_KINDS.items():
            github.add_metric([kind], sum(getattr(c.stats, field, 0) for c in list(_github)))
        yield github
        remaining = [c.rate_limit_remaining for c in list(_github)]
        known = [value for value in remaining if value is not None]
        limit = GaugeMetricFamily(
            "aiinfra_github_rate_limit_remaining",
            "Requests left in the GitHub rate-limit window, as of the last response.",
        )
        if known:
            limit.add_metric([], min(known))
        yield limit
        calls = CounterMetricFamily(
            "aiinfra_model_calls",
            "Model answers by model and outcome (answered, unusable, failed, skipped).",
            labels=["model", "outcome"],
        )
        totals: dict[tuple[str, str], int] = {}
        for client in list(_llms):
            for key, count in getattr(client.stats, "outcomes", {}).items():
                totals[key] = totals.get(key, 0) + count
        for (model, outcome), count in sorted(totals.items()):
            calls.add_metric([model, outcome], count)
        yield calls


REGISTRY.register(_ClientCollector())


@dataclass(frozen=True)
class Endpoint:
    """The running /metrics server: its port (None: not serving) and how to stop it."""

    port: int | None
    stop: Callable[[], None]


def serve(port: int | None, addr: str = "0.0.0.0") -> Endpoint:
    """Serve /metrics on `port` (0: any free port) in a background thread; None: do nothing."""
    if port is None:
        return Endpoint(None, lambda: None)
    server, thread = start_http_server(port, addr, registry=REGISTRY)
    log.info("metrics on http://%s:%d/metrics", addr, server.server_port)

    def stop() -> None:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)

    return Endpoint(server.server_port, stop)
