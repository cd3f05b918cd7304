"""The GraphQL path keeps the day's news: ranked patches of a few commits and linked issues."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from fake_github import FakeGitHub, commit, file, issue, pull
from fake_graphql import FakeGraphQL

from collectors.activity import Commit, RepoActivity
from collectors.cache import MemoryCache
from collectors.collect import LIMITS, collect_day
from collectors.github import GitHubClient
from collectors.graphql import patch_commits
from summarizer.prompts import repo_messages
from summarizer.structured import structured_section

DAY = date(2026, 2, 4)
REPO = "acme/kernels"
START = datetime(2026, 2, 4, tzinfo=UTC)  # the UTC day's window
CHANGELOG = "@@ -1,2 +1,4 @@\n # Changelog\n+## 2.0\n+- GB300 is now supported with CUDA 13.1\n"
DETAIL = re.compile(r"/repos/[^/]+/[^/]+/commits/[0-9a-f]{40}")
ISSUE_GET = re.compile(r"/repos/[^/]+/[^/]+/issues/\d+")


@dataclass
class Servers:
    """The REST and GraphQL stand-ins over one data set."""

    rest: FakeGitHub
    gql: FakeGraphQL

    async def collect(self, repos: list[str], cache: MemoryCache | None = None) -> RepoActivity:
        """The UTC day of `repos[0]` over GraphQL (a token is set)."""
        async with GitHubClient(
            self.rest.url, "tok", cache, graphql_url=self.gql.url, backoff=0.0
        ) as github:
            day = await collect_day(github, repos, DAY, "UTC")
        return day.repos[0]

    def rest_paths(self) -> tuple[list[str], list[str]]:
        """(commit details, linked-issue GETs) asked over REST; anything else fails the test."""
        paths = [r.path for r in self.rest.requests]
        details = [p for p in paths if DETAIL.fullmatch(p)]
        issues = [p for p in paths if ISSUE_GET.fullmatch(p)]
        assert len(details) + len(issues) == len(paths), paths
        return details, issues


@pytest.fixture
async def servers() -> AsyncIterator[Servers]:
    """Both stand-ins, started."""
    async with FakeGitHub() as rest, FakeGraphQL(rest) as gql:
        yield Servers(rest, gql)


def _user(activity: RepoActivity, budget: int = 6000) -> str:
    messages, _ = repo_messages(activity, budget)
    return messages[-1]["content"]


def _busy(servers: Servers, large: int) -> str:
    """`large` big source commits and one small sync commit carrying the changelog; its SHA."""
    commits = [
        commit(
            when=START + timedelta(minutes=10 + i),
            message=f"Tune kernel {i} (#{100 + i})",
            files=[file(f"csrc/k{i}.cu", 200 + i, 10)],
        )
        for i in range(large)
    ]
    sync = commit(
        when=START + timedelta(hours=5),
        message="Sync v2.0 from upstream",
        files=[file("CHANGELOG.md", 2, 0, CHANGELOG), file("csrc/tiny.cu", 1, 0)],
    )
    servers.rest.add_repo(REPO, commits=[*commits, sync])
    return str(sync["sha"])


async def test_a_sync_commits_changelog_reaches_the_prompt_and_details_stay_bounded(
    servers: Servers,
) -> None:
    sha = _busy(servers, large=25)
    got = await servers.collect([REPO])
    details, issues = servers.rest_paths()
    assert len(details) == LIMITS.patch_commits and issues == []
    assert f"/repos/{REPO}/commits/{sha}" in details  # small, but its message says "sync"
    text = _user(got)
    assert "GB300 is now supported with CUDA 13.1" in text
    # Totals stay GraphQL's exact sums, whatever got patches.
    assert got.totals.commits == 26
    assert got.totals.additions == sum(200 + i for i in range(25)) + 3
    with_files = [c for c in got.commits if c.files]
    assert len(with_files) == LIMITS.patch_commits
    assert any("patches read for 10 of 26 commits" in note for note in got.truncated)


async def test_a_rerun_asks_no_commit_detail_again(servers: Servers) -> None:
    _busy(servers, large=3)
    cache = MemoryCache()
    first = await servers.collect([REPO], cache)
    servers.rest.clear_log()
    again = await servers.collect([REPO], cache)
    assert again == first
    assert servers.rest_paths() == ([], [])  # details by SHA come from the cache


async def test_linked_issues_get_their_titles_over_the_graphql_path(servers: Servers) -> None:
    servers.rest.add_repo(
        REPO,
        commits=[commit(when=START + timedelta(hours=9), message="Fix OOM (#7)\n\nFixes #12")],
        issues=[
            pull(7, created_at=START - timedelta(days=3), merged_at=START + timedelta(hours=9)),
            issue(12, created_at=START - timedelta(days=20), title="OOM in autotuner on H100"),
        ],
    )
    got = await servers.collect([REPO])
    assert [(i.number, i.title) for i in got.linked_issues] == [(12, "OOM in autotuner on H100")]
    assert "linked issues: #12 OOM in autotuner on H100" in _user(got)
    _, issues = servers.rest_paths()
    assert issues == [f"/repos/{REPO}/issues/12"]  # #7 is the day's own PR: never asked


async def test_linked_issue_gets_are_capped_at_ten_over_graphql(servers: Servers) -> None:
    numbers = " ".join(f"#{n}" for n in range(100, 130))
    servers.rest.add_repo(
        REPO,
        commits=[commit(when=START + timedelta(hours=1), message=f"Cleanup\n\nRefs {numbers}")],
    )
    await servers.collect([REPO])
    _, issues = servers.rest_paths()
    assert len(issues) == LIMITS.linked_issue_requests


async def test_a_commit_detail_that_fails_leaves_the_day_whole(servers: Servers) -> None:
    sha = _busy(servers, large=1)
    servers.rest.fail(f"/commits/{sha}", 404, body={"message": "Not Found"}, times=5)
    got = await servers.collect([REPO])
    assert got.error is None and got.complete
    assert got.totals.commits == 2
    assert [c.sha for c in got.commits if not c.files] == [sha]
    assert any("1 commits' patches could not be read" in note for note in got.truncated)
    assert len(servers.gql.queries) == 1  # no fall back to the REST listings


def _commit(n: int, size: int, message: str) -> Commit:
    return Commit(
        sha=f"{n:040x}",
        title=message,
        url="",
        committed_at=START,
        additions=size,
        deletions=0,
        message=message,
    )


def test_patch_commits_takes_news_first_then_the_largest_and_skips_empty_ones() -> None:
    commits = [_commit(i, 100 * i, f"change {i}") for i in range(1, 9)]
    commits += [_commit(20 + i, 1, f"Release v1.{i}") for i in range(6)]
    commits.append(_commit(99, 0, "Empty merge"))
    chosen = patch_commits(commits, 6)
    news = {c.sha for c in commits if c.message.startswith("Release")}
    assert len(chosen) == 6
    assert len([s for s in chosen if s in news]) == 3  # up to half for the news
    assert [s for s in chosen if s not in news] == [f"{i:040x}" for i in (8, 7, 6)]
    assert f"{99:040x}" not in patch_commits(commits, 100)


async def test_recorded_cutlass_prompt_over_graphql_carries_the_cuda_13_1_and_gb300_news(
    recorded_day: Path,
) -> None:
    async with FakeGitHub() as rest, FakeGraphQL(rest) as gql:
        repos = rest.load_recorded(recorded_day)
        async with GitHubClient(rest.url, "tok", None, graphql_url=gql.url) as github:
            day = await collect_day(github, repos, DAY, "UTC")
            points = github.stats.graphql_points
        servers = Servers(rest, gql)
        details, issues = servers.rest_paths()
    cutlass = day.repo("NVIDIA/cutlass")
    assert cutlass is not None
    text = _user(cutlass)
    assert "CuTe DSL now supports CUDA toolkit 13.1!" in text
    assert "GB300 is now supported in CuTe DSL with CTK 13.1" in text
    section = structured_section(cutlass)
    assert "CUDA toolkit 13.1" in section and "GB300" in section
    # Bounded: one point per repository, at most 10 details and 10 issue GETs per repository.
    assert points == len(repos)
    for repo in repos:
        assert len([p for p in details if p.startswith(f"/repos/{repo}/")]) <= 10
        assert len([p for p in issues if p.startswith(f"/repos/{repo}/")]) <= 10
