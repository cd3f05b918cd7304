"""The GitHub client over real HTTP against the stand-in server: pages, ETags, limits, retries."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from fake_github import FakeGitHub, commit

from collectors.cache import FileCache, MemoryCache
from collectors.github import GitHubClient, GitHubError

REPO = "octo/widgets"
SINCE = {"since": "2026-02-03T00:00:00Z", "until": "2026-02-05T00:00:00Z"}


@pytest.fixture
async def server() -> AsyncIterator[FakeGitHub]:
    async with FakeGitHub(token="right-token") as fake:
        fake.add_repo(
            REPO,
            commits=[
                commit(when=f"2026-02-04T{n // 60:02d}:{n % 60:02d}:00Z", message=f"Change {n}")
                for n in range(250)
            ],
        )
        yield fake


class Sleeps:
    """An injected sleep: records the waits asked for and returns at once."""

    def __init__(self, then: Callable[[], None] | None = None) -> None:
        self.waits: list[float] = []
        self._then = then

    async def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)
        if self._then is not None:
            self._then()
        await asyncio.sleep(0)


def client(server: FakeGitHub, **options: Any) -> GitHubClient:
    defaults: dict[str, Any] = {"backoff": 0.001, "backoff_max": 0.01, "sleep": Sleeps()}
    cache = options.pop("cache", None)
    token = options.pop("token", "right-token")
    return GitHubClient(server.url, token, cache, **{**defaults, **options})


async def test_listing_follows_link_pagination_across_several_pages(server: FakeGitHub) -> None:
    async with client(server) as github:
        paged = await github.paginate(f"repos/{REPO}/commits", SINCE)
    assert len(paged.items) == 250 and paged.complete and paged.pages == 3
    assert len({item["sha"] for item in paged.items}) == 250
    assert [r.query.get("page") for r in server.requests] == [None, "2", "3"]
    assert all(r.query["per_page"] == "100" for r in server.requests)


async def test_listing_stops_at_max_pages_and_says_it_is_incomplete(server: FakeGitHub) -> None:
    async with client(server) as github:
        paged = await github.paginate(f"repos/{REPO}/commits", SINCE, max_pages=2)
    assert len(paged.items) == 200 and not paged.complete


async def test_etag_304_reuses_the_stored_body_across_a_new_client_with_the_same_file_cache(
    server: FakeGitHub, tmp_path: Path
) -> None:
    cache = FileCache(tmp_path / "cache.sqlite3")
    async with client(server, cache=cache) as github:
        first = await github.paginate(f"repos/{REPO}/commits", SINCE)
    cache.close()

    reopened = FileCache(tmp_path / "cache.sqlite3")  # as after a restart
    async with client(server, cache=reopened) as github:
        again = await github.paginate(f"repos/{REPO}/commits", SINCE)
        assert github.stats.not_modified == 3
        assert github.stats.rate_limited == 0
    reopened.close()
    assert again.items == first.items
    assert [r.status for r in server.requests] == [200, 200, 200, 304, 304, 304]
    assert all(r.conditional for r in server.requests[3:])


async def test_immutable_resource_is_served_from_the_cache_without_a_request(
    server: FakeGitHub,
) -> None:
    sha = next(iter(server.repos[REPO].details))
    cache = MemoryCache()
    async with client(server, cache=cache) as github:
        first = await github.get(f"repos/{REPO}/commits/{sha}", immutable=True)
        again = await github.get(f"repos/{REPO}/commits/{sha}", immutable=True)
        assert github.stats.cache_hits == 1
    assert first == again and len(server.requests) == 1


async def test_secondary_rate_limit_403_waits_retry_after_then_succeeds(
    server: FakeGitHub,
) -> None:
    server.secondary_rate_limit("/commits", retry_after=7)
    sleeps = Sleeps()
    async with client(server, sleep=sleeps) as github:
        data = await github.get(f"repos/{REPO}/commits", {"per_page": 5})
        assert github.stats.retries == 1
    assert len(data) == 5
    assert sleeps.waits == [7.0]
    assert [r.status for r in server.requests] == [403, 200]


async def test_secondary_rate_limit_longer_than_allowed_fails_at_once(server: FakeGitHub) -> None:
    server.secondary_rate_limit("/commits", retry_after=3600)
    async with client(server, max_rate_limit_wait=60) as github:
        with pytest.raises(GitHubError, match="rate limit"):
            await github.get(f"repos/{REPO}/commits")
    assert len(server.requests) == 1


async def test_a_502_then_success_is_retried(server: FakeGitHub) -> None:
    server.server_error("/commits", status=502)
    async with client(server) as github:
        data = await github.get(f"repos/{REPO}/commits", {"per_page": 3})
        assert github.stats.retries == 1
    assert len(data) == 3
    assert [r.status for r in server.requests] == [502, 200]


async def test_persistent_5xx_gives_up_after_the_attempts_with_one_line(
    server: FakeGitHub,
) -> None:
    server.server_error("/commits", status=503, times=10)
    async with client(server, max_attempts=3) as github:
        with pytest.raises(GitHubError) as caught:
            await github.get(f"repos/{REPO}/commits")
    assert "503" in str(caught.value) and "3 attempts" in str(caught.value)
    assert "\n" not in str(caught.value)
    assert len(server.requests) == 3


async def test_timeouts_are_retried_then_reported(server: FakeGitHub) -> None:
    server.delay = 0.3
    async with client(server, timeout=0.05, max_attempts=2) as github:
        with pytest.raises(GitHubError, match="timed out"):
            await github.get(f"repos/{REPO}/commits")
        assert github.stats.retries == 1


async def test_401_says_the_token_is_invalid_without_printing_it(
    server: FakeGitHub, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    secret = "ghp_SuperSecret123"
    async with client(server, token=secret) as github:
        with pytest.raises(GitHubError) as caught:
            await github.get(f"repos/{REPO}/commits")
    assert "invalid" in str(caught.value) and caught.value.status == 401
    assert secret not in str(caught.value) and secret not in caplog.text
    assert len(server.requests) == 1  # a bad token is not retried


async def test_not_found_is_a_404_error(server: FakeGitHub) -> None:
    async with client(server) as github:
        with pytest.raises(GitHubError) as caught:
            await github.get("repos/octo/nothing/commits")
    assert caught.value.status == 404


async def test_malformed_json_is_an_error_not_a_crash(server: FakeGitHub) -> None:
    server.malformed_json("/commits")
    async with client(server) as github:
        with pytest.raises(GitHubError, match="malformed JSON"):
            await github.get(f"repos/{REPO}/commits")


async def test_waits_for_the_reset_when_the_limit_is_nearly_spent(server: FakeGitHub) -> None:
    server.remaining = 3
    server.reset_at = int(time.time()) + 30
    sleeps = Sleeps(then=server.reset_rate_limit)
    async with client(server, sleep=sleeps, rate_limit_reserve=1) as github:
        for _ in range(4):
            await github.get(f"repos/{REPO}")
    assert 0 < sleeps.waits[0] <= 32
    assert server.count(status=403) == 0 and server.count(status=200) == 4


async def test_an_exhausted_limit_403_waits_until_the_reset_and_retries(
    server: FakeGitHub,
) -> None:
    server.remaining = 0
    server.reset_at = int(time.time()) + 20
    sleeps = Sleeps(then=server.reset_rate_limit)
    async with client(server, sleep=sleeps) as github:
        info = await github.get(f"repos/{REPO}")
    assert info["full_name"] == REPO
    assert len(sleeps.waits) == 1 and 0 < sleeps.waits[0] <= 22
    assert [r.status for r in server.requests] == [403, 200]


async def test_requests_in_flight_are_bounded_by_the_concurrency(server: FakeGitHub) -> None:
    server.delay = 0.02
    async with client(server, concurrency=3) as github:
        await asyncio.gather(*(github.get(f"repos/{REPO}") for _ in range(12)))
    assert server.peak_in_flight == 3


async def test_a_pagination_link_to_another_host_is_refused(server: FakeGitHub) -> None:
    link = '<https://elsewhere.example/steal?page=2>; rel="next"'
    server.fail("/commits", 200, body="[]", headers={"Link": link})
    async with client(server) as github:
        with pytest.raises(GitHubError, match="another host"):
            await github.paginate(f"repos/{REPO}/commits")
    assert len(server.requests) == 1
