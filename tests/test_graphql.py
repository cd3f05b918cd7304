"""The GraphQL collector against the GraphQL stand-in: exact days at a cost that does not grow."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fake_github import FakeGitHub, commit, issue, pull, release
from fake_graphql import FakeGraphQL

from collectors.activity import DayActivity
from collectors.cache import MemoryCache
from collectors.collect import collect_day
from collectors.github import GitHubClient
from collectors.window import day_window

DAY = date(2026, 2, 4)
REPO = "acme/kernels"
SHANGHAI = day_window(DAY, "Asia/Shanghai")  # 2026-02-03T16:00Z .. 2026-02-04T16:00Z


@dataclass
class Servers:
    """The REST and GraphQL stand-ins over one data set."""

    rest: FakeGitHub
    gql: FakeGraphQL

    def client(self, cache: MemoryCache | None = None, **options: Any) -> GitHubClient:
        """A client with a token (so GraphQL is used unless `collector` says otherwise)."""
        options.setdefault("backoff", 0.0)
        return GitHubClient(self.rest.url, "tok", cache, graphql_url=self.gql.url, **options)

    async def collect(self, repos: list[str], timezone: str = "Asia/Shanghai") -> DayActivity:
        """One day over a fresh client."""
        async with self.client() as github:
            return await collect_day(github, repos, DAY, timezone)


@pytest.fixture
async def servers() -> AsyncIterator[Servers]:
    """Both stand-ins, started."""
    async with FakeGitHub() as rest, FakeGraphQL(rest) as gql:
        yield Servers(rest, gql)


def _at(instant: datetime, seconds: int = 0) -> datetime:
    return instant + timedelta(seconds=seconds)


def _details_only(rest: FakeGitHub) -> list[str]:
    """The REST paths asked, each a commit's detail by SHA (patches for the prompt), else fail."""
    details, issues = _prompt_requests(rest)
    assert issues == []
    return details


def _prompt_requests(rest: FakeGitHub) -> tuple[list[str], list[str]]:
    """REST requests beside GraphQL: (commit details for patches, linked-issue GETs); no other."""
    paths = [r.path for r in rest.requests]
    details = [p for p in paths if re.fullmatch(r"/repos/[^/]+/[^/]+/commits/[0-9a-f]{40}", p)]
    issues = [p for p in paths if re.fullmatch(r"/repos/[^/]+/[^/]+/issues/\d+", p)]
    assert len(details) + len(issues) == len(paths), paths
    return details, issues


async def test_a_quiet_day_is_one_query_of_one_point_and_one_commit_detail(
    servers: Servers,
) -> None:
    servers.rest.add_repo(
        REPO,
        commits=[commit(when=_at(SHANGHAI.start, 3600), message="Fix (#7)")],
        issues=[pull(7, created_at=_at(SHANGHAI.start, 60), merged_at=_at(SHANGHAI.start, 3600))],
    )
    activity = await servers.collect([REPO])
    got = activity.repos[0]
    assert got.error is None and got.complete
    assert [p.number for p in got.merged_pulls] == [7]
    assert [(q.cost, q.errors) for q in servers.gql.queries] == [(1, [])]
    assert len(_details_only(servers.rest)) == 1


async def test_history_beyond_100_commits_in_one_slice_is_paged_and_totals_stay_exact(
    servers: Servers,
) -> None:
    # 250 commits within one hour: more than one slice's page of 100.
    commits = [
        commit(
            when=_at(SHANGHAI.start, 7200 + i),
            message=f"Change {i}",
            files=[{"filename": f"f{i}.py", "status": "modified", "additions": i, "deletions": 1}],
        )
        for i in range(250)
    ]
    servers.rest.add_repo(REPO, commits=commits)
    got = (await servers.collect([REPO])).repos[0]
    assert got.totals.commits == len(got.commits) == 250
    assert got.totals.additions == sum(range(250))
    assert got.totals.deletions == 250
    assert len({c.sha for c in got.commits}) == 250
    # One query, then two follow-ups that carry only the overflowing slice.
    assert len(servers.gql.queries) == 3
    follow_ups = servers.gql.queries[1:]
    assert all(not q.variables["withMerged"] for q in follow_ups)
    assert all(sum(q.variables[f"with{i}"] for i in range(8)) == 1 for q in follow_ups)


async def test_300_commits_spread_over_the_day_cost_one_query(servers: Servers) -> None:
    commits = [commit(when=_at(SHANGHAI.start, i * 280), message=f"C {i}") for i in range(300)]
    servers.rest.add_repo(REPO, commits=commits)
    got = (await servers.collect([REPO])).repos[0]
    assert got.totals.commits == 300
    assert len(servers.gql.queries) == 1
    assert servers.gql.points_spent == 1


@pytest.mark.parametrize("timezone", ["Asia/Shanghai", "UTC"])
async def test_window_edges_are_half_open_in_each_time_zone(
    servers: Servers, timezone: str
) -> None:
    window = day_window(DAY, timezone)
    start, end = window.start, window.end
    servers.rest.add_repo(
        REPO,
        commits=[
            commit(when=_at(start, -1), message="before (#1)"),
            commit(when=start, message="first second (#2)"),
            commit(when=_at(end, -1), message="last second (#3)"),
            commit(when=end, message="next day (#4)"),
        ],
        issues=[
            pull(1, created_at=_at(start, -90), merged_at=_at(start, -1)),
            pull(2, created_at=start, merged_at=start),
            pull(3, created_at=_at(end, -1), merged_at=_at(end, -1)),
            pull(4, created_at=end, merged_at=end),
            issue(10, created_at=_at(start, -1)),
            issue(11, created_at=start),
            issue(12, created_at=_at(end, -1)),
            issue(13, created_at=end),
        ],
        releases=[
            release("v1", published_at=_at(start, -1)),
            release("v2", published_at=start),
            release("v3", published_at=end),
        ],
    )
    got = (await servers.collect([REPO], timezone)).repos[0]
    assert [c.pull_number for c in got.commits] == [2, 3]
    assert [p.number for p in got.merged_pulls] == [2, 3]
    assert [p.number for p in got.opened_pulls] == [2, 3]
    assert [i.number for i in got.opened_issues] == [11, 12]
    assert [r.tag_name for r in got.releases] == ["v2"]
    # Each day's search asks exactly its own seconds.
    merged = servers.gql.queries[0].variables["merged"]
    assert merged.endswith(
        f"merged:{start:%Y-%m-%dT%H:%M:%S}+00:00..{_at(end, -1):%Y-%m-%dT%H:%M:%S}+00:00"
    )


async def test_a_pull_merged_in_the_window_but_opened_earlier_is_merged_not_opened(
    servers: Servers,
) -> None:
    opened = SHANGHAI.start - timedelta(days=40)
    merged = _at(SHANGHAI.start, 5 * 3600)
    servers.rest.add_repo(
        REPO,
        commits=[
            commit(
                when=merged,
                message="Long-running work (#42)",
                files=[{"filename": "a.cu", "status": "modified", "additions": 9, "deletions": 4}],
            )
        ],
        issues=[pull(42, created_at=opened, merged_at=merged, labels=["performance"])],
    )
    got = (await servers.collect([REPO])).repos[0]
    (pr,) = got.merged_pulls
    assert pr.number == 42 and pr.created_at == opened and pr.merged_at == merged
    assert pr.labels == ["performance"]
    assert (pr.additions, pr.deletions) == (9, 4)
    assert pr.merge_commit_sha == got.commits[0].sha
    assert got.opened_pulls == []


async def test_spent_points_wait_for_reset_at_before_the_next_query(servers: Servers) -> None:
    servers.rest.add_repo("acme/a", commits=[commit(when=_at(SHANGHAI.start, 60))])
    servers.rest.add_repo("acme/b", commits=[commit(when=_at(SHANGHAI.start, 60))])
    now = datetime(2026, 3, 1, 12, tzinfo=UTC)
    servers.gql.reset_at = now + timedelta(seconds=120)
    servers.gql.points_left = 3  # the first query leaves 2: at the client's reserve
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)
        servers.gql.points_left = 5000  # the hourly reset

    async with servers.client(sleep=sleep, clock=now.timestamp) as github:
        first = await collect_day(github, ["acme/a"], DAY, "Asia/Shanghai")
        assert (github.graphql_remaining, slept) == (2, [])
        second = await collect_day(github, ["acme/b"], DAY, "Asia/Shanghai")
        assert github.stats.graphql_points == 2
        assert github.graphql_remaining == 4999
    assert slept == [121.0]
    assert first.repos[0].totals.commits == second.repos[0].totals.commits == 1
    assert len(_details_only(servers.rest)) == 2  # one commit's patches per repository


async def test_a_rate_limited_answer_waits_for_the_reset_and_retries(servers: Servers) -> None:
    servers.rest.add_repo(REPO, commits=[commit(when=_at(SHANGHAI.start, 60))])
    now = datetime(2026, 3, 1, 12, tzinfo=UTC)
    servers.gql.reset_at = now + timedelta(seconds=60)
    servers.gql.points_left = 0
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)
        servers.gql.points_left = 5000

    async with servers.client(sleep=sleep, clock=now.timestamp) as github:
        got = (await collect_day(github, [REPO], DAY, "Asia/Shanghai")).repos[0]
    assert got.totals.commits == 1
    assert slept == [61.0]
    assert [q.errors != [] for q in servers.gql.queries] == [True, False]
    assert len(_details_only(servers.rest)) == 1


@pytest.mark.parametrize("fault", ["error", "http"])
async def test_a_graphql_failure_falls_back_to_rest_with_the_same_day(
    servers: Servers, fault: str
) -> None:
    servers.rest.add_repo(
        REPO,
        commits=[commit(when=_at(SHANGHAI.start, 60), message="Fix (#5)")],
        issues=[pull(5, created_at=_at(SHANGHAI.start, 10), merged_at=_at(SHANGHAI.start, 60))],
    )
    expected = (await servers.collect([REPO])).repos[0]
    assert len(_details_only(servers.rest)) == 1
    if fault == "error":
        servers.gql.error("Something went wrong while executing your query.")
    else:
        servers.gql.fail(status=502, times=5)  # every attempt
    got = (await servers.collect([REPO])).repos[0]
    assert got.error is None
    assert servers.rest.count(path="/commits") >= 1
    assert [c.sha for c in got.commits] == [c.sha for c in expected.commits]
    assert [p.number for p in got.merged_pulls] == [5]
    assert got.totals.additions == expected.totals.additions


async def test_an_unknown_search_qualifier_is_a_graphql_error_not_a_canned_answer(
    servers: Servers,
) -> None:
    servers.rest.add_repo(REPO)
    async with servers.client() as github:
        with pytest.raises(Exception, match="unknown search qualifier"):
            await github.graphql(
                'query { search(type: ISSUE, query: "repo:acme/kernels author:x", first: 5)'
                " { issueCount } }",
                {},
            )
        with pytest.raises(Exception, match="Cannot query field"):
            await github.graphql('query { repository(owner: "a", name: "b") { stars } }', {})


async def test_rest_collector_setting_and_no_token_never_ask_graphql(servers: Servers) -> None:
    servers.rest.add_repo(REPO, commits=[commit(when=_at(SHANGHAI.start, 60))])
    async with servers.client(collector="rest") as github:
        await collect_day(github, [REPO], DAY, "Asia/Shanghai")
    async with GitHubClient(servers.rest.url, None, None, graphql_url=servers.gql.url) as github:
        await collect_day(github, [REPO], DAY, "Asia/Shanghai")
    assert servers.gql.queries == []
    assert servers.rest.count(path="/commits") == 4  # listing + detail, twice


async def test_a_day_fetched_after_it_closed_is_reused_on_a_rerun(servers: Servers) -> None:
    servers.rest.add_repo(REPO, commits=[commit(when=_at(SHANGHAI.start, 60))])
    cache = MemoryCache()
    async with servers.client(cache) as github:
        first = await collect_day(github, [REPO], DAY, "Asia/Shanghai")
    async with servers.client(cache) as github:
        again = await collect_day(github, [REPO], DAY, "Asia/Shanghai")
        # The query's answer and the commit detail (immutable) both come from the cache.
        assert github.stats.graphql_requests == 0 and github.stats.cache_hits == 2
    assert again == first
    assert len(servers.gql.queries) == 1


async def test_a_day_not_yet_settled_is_asked_again(servers: Servers) -> None:
    servers.rest.add_repo(REPO, commits=[commit(when=_at(SHANGHAI.start, 60))])
    cache = MemoryCache()
    # The client's clock stands inside the day: the answer may still change.
    inside = (SHANGHAI.start + timedelta(hours=3)).timestamp
    for _ in range(2):
        async with servers.client(cache, clock=inside) as github:
            await collect_day(github, [REPO], DAY, "Asia/Shanghai")
    assert len(servers.gql.queries) == 2


# -- the recorded day -------------------------------------------------------------------------


@pytest.mark.parametrize("timezone", ["Asia/Shanghai", "UTC"])
async def test_recorded_day_over_graphql_matches_truth_in_one_point_per_repository(
    recorded_day: Path, timezone: str
) -> None:
    truth = json.loads((recorded_day / "truth.json").read_text())[timezone]
    async with FakeGitHub() as rest, FakeGraphQL(rest) as gql:
        repos = rest.load_recorded(recorded_day)
        cache = MemoryCache()
        servers = Servers(rest, gql)
        async with servers.client(cache) as github:
            activity = await collect_day(github, repos, DAY, timezone)
            assert github.stats.graphql_points == len(repos)
        async with servers.client(cache) as github:
            again = await collect_day(github, repos, DAY, timezone)
            assert github.stats.graphql_requests == 0
        assert again == activity
        # Beside GraphQL: commit details for patches (immutable, asked once for both runs) and
        # linked-issue titles (conditional), each within its per-repository bound.
        details, issues = _prompt_requests(rest)
        assert len(details) == len(set(details)) <= 10 * len(repos)
        assert len(issues) <= 2 * 10 * len(repos)
    assert [r.repo for r in activity.repos] == list(truth)
    for repo, expected in truth.items():
        got = activity.repo(repo)
        assert got is not None and got.error is None and got.complete, got
        assert sorted(c.sha for c in got.commits) == sorted(expected["commits"]), repo
        assert sorted(p.number for p in got.merged_pulls) == sorted(expected["merged_pulls"])
        assert sorted(r.tag_name for r in got.releases) == sorted(expected["releases"]), repo
        assert got.totals.commits == len(expected["commits"])
        assert (got.totals.additions, got.totals.deletions) == (
            expected["additions"],
            expected["deletions"],
        ), repo


async def test_recorded_merged_pull_carries_its_commit_and_size(recorded_day: Path) -> None:
    async with FakeGitHub() as rest, FakeGraphQL(rest) as gql:
        repos = rest.load_recorded(recorded_day)
        activity = await Servers(rest, gql).collect(repos)
    cutlass = activity.repo("NVIDIA/cutlass")
    assert cutlass is not None
    (pr,) = cutlass.merged_pulls
    (only,) = cutlass.commits
    assert only.pull_number == pr.number == 2999
    assert pr.merge_commit_sha == only.sha
    assert (pr.additions, pr.deletions) == (13228, 1474)
    assert only.files_changed is not None and only.files_changed > 0


async def test_collector_settings_reach_the_client(monkeypatch: pytest.MonkeyPatch) -> None:
    from bot.pipeline import make_github
    from bot.settings import SettingsError, load_settings

    async def path() -> tuple[str, str, bool]:
        async with make_github(load_settings(), None) as github:
            return github.collector, github.graphql_url, github.uses_graphql

    monkeypatch.setenv("GITHUB_COLLECTOR", "rest")
    monkeypatch.setenv("GITHUB_GRAPHQL_URL", "http://127.0.0.1:9/graphql")
    monkeypatch.setenv("GITHUB_TOKEN", "tok")
    assert await path() == ("rest", "http://127.0.0.1:9/graphql", False)
    monkeypatch.setenv("GITHUB_COLLECTOR", "auto")
    assert (await path())[2]
    monkeypatch.delenv("GITHUB_TOKEN")
    assert not (await path())[2]  # GitHub's GraphQL needs a token
    monkeypatch.setenv("GITHUB_COLLECTOR", "fast")
    with pytest.raises(SettingsError, match="GITHUB_COLLECTOR"):
        load_settings()
    monkeypatch.setenv("GITHUB_COLLECTOR", "graphql")
    monkeypatch.setenv("GITHUB_GRAPHQL_URL", "ftp://x")
    with pytest.raises(SettingsError, match="GITHUB_GRAPHQL_URL"):
        load_settings()
