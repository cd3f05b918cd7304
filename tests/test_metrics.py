"""The opt-in Prometheus endpoint, scraped over HTTP: deliveries, posts, generation time, and
the GitHub and model clients' counters read from the clients themselves."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from fake_github import FakeGitHub, commit
from fake_llm import API_KEY, FakeLLM, server_error
from prometheus_client.parser import text_string_to_metric_families
from test_delivery import DAY, POST_0900, RecordingSender, archive_sample, pipeline_for

from bot import metrics
from bot.delivery import fan_out
from bot.settings import Settings
from bot.store import Store
from collectors.github import GitHubClient
from summarizer.llm import LLMClient

REPO = "vllm-project/vllm"


@pytest.fixture
def endpoint() -> Iterator[str]:
    """The metrics server on a free port of 127.0.0.1; yields its /metrics URL."""
    served = metrics.serve(0, "127.0.0.1")
    try:
        yield f"http://127.0.0.1:{served.port}/metrics"
    finally:
        served.stop()


def scrape(url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """GET /metrics and parse it: (sample name, sorted labels) → value."""
    response = httpx.get(url, timeout=10)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def value(
    samples: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str, **labels: str
) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def test_deliveries_are_counted_by_platform_and_state(endpoint: str) -> None:
    before = scrape(endpoint)
    metrics.delivery("telegram", "sent")
    metrics.delivery("telegram", "sent")
    metrics.delivery("discord", "failed")
    after = scrape(endpoint)

    name = "aiinfra_deliveries_total"
    sent = value(after, name, platform="telegram", state="sent")
    assert sent - value(before, name, platform="telegram", state="sent") == 2
    failed = value(after, name, platform="discord", state="failed")
    assert failed - value(before, name, platform="discord", state="failed") == 1


def test_last_successful_post_per_day_keeps_the_seven_latest_days(endpoint: str) -> None:
    first = date(2026, 3, 1)
    for offset in range(10):
        metrics.posted(first + timedelta(days=offset), when=1_000_000.0 + offset)
    samples = scrape(endpoint)

    name = "aiinfra_last_successful_post_timestamp_seconds"
    days = sorted(dict(labels)["day"] for sample, labels in samples if sample == name)
    assert days[-1] == "2026-03-10" and len(days) == metrics.POSTED_DAYS_KEPT
    assert value(samples, name, day="2026-03-10") == 1_000_009.0
    assert value(samples, name, day="2026-03-01") == 0.0  # dropped: seven days were posted since


def test_generation_duration_is_a_histogram(endpoint: str) -> None:
    before = scrape(endpoint)
    metrics.generated(42.0)
    after = scrape(endpoint)

    count = "aiinfra_generation_seconds_count"
    assert value(after, count) - value(before, count) == 1
    total = "aiinfra_generation_seconds_sum"
    assert value(after, total) - value(before, total) == pytest.approx(42.0)


async def test_model_calls_by_model_and_outcome(endpoint: str) -> None:
    async with FakeLLM() as fake:
        fake.always("test/broken", server_error(500))
        llm = LLMClient(API_KEY, fake.base_url, ["test/broken", "test/works"])
        metrics.watch_llm(llm)
        try:
            before = scrape(endpoint)
            await llm.complete([{"role": "user", "content": "总结今天的更新"}])
            after = scrape(endpoint)
        finally:
            await llm.aclose()

    name = "aiinfra_model_calls_total"
    failed = dict(model="test/broken", outcome="failed")
    answered = dict(model="test/works", outcome="answered")
    assert value(after, name, **failed) - value(before, name, **failed) == 1
    assert value(after, name, **answered) - value(before, name, **answered) == 1


async def test_github_requests_and_rate_limit_remaining(endpoint: str) -> None:
    async with FakeGitHub(token="t", rate_limit=5000) as fake:
        fake.add_repo(REPO, commits=[commit(when="2026-02-04T01:00:00Z", message="Change")])
        async with GitHubClient(fake.url, "t", None) as github:
            metrics.watch_github(github)
            before = scrape(endpoint)
            await github.get(f"repos/{REPO}")
            await github.get(f"repos/{REPO}/commits")
            after = scrape(endpoint)
            remaining = fake.remaining

    name = "aiinfra_github_requests_total"
    assert value(after, name, kind="sent") - value(before, name, kind="sent") == 2
    assert value(after, name, kind="charged") - value(before, name, kind="charged") == 2
    assert value(after, "aiinfra_github_rate_limit_remaining") == remaining < 5000


def test_metrics_port_is_opt_in() -> None:
    assert Settings(_env_file=None).metrics_port is None  # type: ignore[call-arg]
    assert Settings(_env_file=None, metrics_port=9464).metrics_port == 9464  # type: ignore[call-arg]
    assert metrics.serve(None).port is None


async def test_a_fan_out_reports_each_delivery_and_the_days_last_post(
    endpoint: str, tmp_path: Path
) -> None:
    settings = Settings(database_url=f"sqlite+aiosqlite:///{tmp_path / 'db.sqlite'}")
    sender = RecordingSender("metrics-test")
    sender.gone.add("blocked")
    async with (
        await Store.open(settings.database_url) as store,
        GitHubClient("http://127.0.0.1:9", None, None) as github,  # never contacted: archived
    ):
        await archive_sample(store, settings)
        for chat_id in ("a", "b", "blocked"):
            await store.subscribe(
                sender.platform,
                chat_id,
                None,
                by="admin",
                post_time="09:00",
                timezone="Asia/Shanghai",
                now=datetime(2026, 1, 1, tzinfo=UTC),
            )
        before = scrape(endpoint)
        started = datetime.now(UTC).timestamp()
        result = await fan_out(
            store,
            pipeline_for(settings, store, github),
            {sender.platform: sender},
            DAY,
            worker="w1",
            now=POST_0900,
        )
        after = scrape(endpoint)

    assert (result.sent, result.deactivated) == (2, 1)
    name = "aiinfra_deliveries_total"
    for state, count in (("sent", 2), ("chat_gone", 1)):
        labels = dict(platform=sender.platform, state=state)
        assert value(after, name, **labels) - value(before, name, **labels) == count
    last_post = "aiinfra_last_successful_post_timestamp_seconds"
    assert value(after, last_post, day=DAY.isoformat()) >= started
