"""One repository-day, collected over real HTTP from a stand-in GitHub built with small helpers."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import date
from pathlib import Path

import pytest
from fake_github import FakeGitHub, commit, file, issue, pull, release

from collectors.activity import DayActivity
from collectors.cache import FileCache, KeyValueCache
from collectors.collect import Limits, collect_day, collect_repo, pull_number
from collectors.github import GitHubClient
from collectors.window import day_window

DAY = date(2026, 2, 4)
REPO = "octo/engine"


@pytest.fixture
async def server() -> AsyncIterator[FakeGitHub]:
    async with FakeGitHub() as fake:
        yield fake


def github(server: FakeGitHub, cache: KeyValueCache | None = None) -> GitHubClient:
    return GitHubClient(server.url, "token", cache, backoff=0.001)


async def collect(
    server: FakeGitHub, repos: list[str], timezone: str, day: date = DAY
) -> DayActivity:
    async with github(server) as client:
        return await collect_day(client, repos, day, timezone)


async def test_commit_at_1630z_belongs_to_the_next_day_in_shanghai_and_the_same_day_in_utc(
    server: FakeGitHub,
) -> None:
    late = commit(when="2026-02-03T16:30:00Z", message="Late fix (#7)")
    server.add_repo(REPO, commits=[late])
    shanghai = (await collect(server, [REPO], "Asia/Shanghai")).repos[0]
    utc_same_day = (await collect(server, [REPO], "UTC")).repos[0]
    utc_day_before = (await collect(server, [REPO], "UTC", date(2026, 2, 3))).repos[0]
    assert [c.sha for c in shanghai.commits] == [late["sha"]]
    assert utc_same_day.commits == []
    assert [c.sha for c in utc_day_before.commits] == [late["sha"]]


async def test_a_pr_merged_in_the_window_but_opened_a_week_earlier_is_listed_as_merged(
    server: FakeGitHub,
) -> None:
    server.add_repo(
        REPO,
        commits=[commit(when="2026-02-04T03:00:00Z", message="Speed up the kernel (#41)")],
        issues=[
            pull(
                41,
                created_at="2026-01-28T10:00:00Z",
                merged_at="2026-02-04T03:00:00Z",
                title="Speed up the kernel",
                labels=["perf"],
            ),
        ],
    )
    activity = (await collect(server, [REPO], "Asia/Shanghai")).repos[0]
    (merged,) = activity.merged_pulls
    assert merged.number == 41 and merged.labels == ["perf"] and merged.author == "contributor"
    assert merged.merge_commit_sha == activity.commits[0].sha
    assert (merged.additions, merged.deletions) == (3, 1)
    assert activity.opened_pulls == []


async def test_an_issue_updated_but_not_created_in_the_window_is_not_listed_as_opened(
    server: FakeGitHub,
) -> None:
    server.add_repo(
        REPO,
        issues=[
            issue(10, created_at="2026-01-20T00:00:00Z", updated_at="2026-02-04T05:00:00Z"),
            issue(
                11,
                created_at="2026-02-04T06:00:00Z",
                title="Crash on H100",
                labels=["bug"],
                comments=2,
            ),
            pull(12, created_at="2026-02-04T07:00:00Z", title="Add FP8 path"),
            pull(13, created_at="2026-01-01T00:00:00Z", updated_at="2026-02-04T08:00:00Z"),
        ],
    )
    activity = (await collect(server, [REPO], "Asia/Shanghai")).repos[0]
    assert [i.number for i in activity.opened_issues] == [11]
    assert activity.opened_issues[0].labels == ["bug"] and activity.opened_issues[0].comments == 2
    assert activity.opened_issues[0].url == f"https://github.com/{REPO}/issues/11"
    assert [p.number for p in activity.opened_pulls] == [12]
    assert activity.merged_pulls == []


async def test_an_unknown_repository_is_an_error_section_while_the_others_succeed(
    server: FakeGitHub,
) -> None:
    server.add_repo(REPO, commits=[commit(when="2026-02-04T01:00:00Z")])
    activity = await collect(server, ["octo/missing", REPO], "Asia/Shanghai")
    missing, engine = activity.repos
    assert missing.repo == "octo/missing" and missing.error is not None
    assert "not found" in missing.error and "\n" not in missing.error
    assert missing.commits == [] and missing.totals.commits == 0
    assert engine.error is None and engine.totals.commits == 1


async def test_malformed_json_fails_only_that_repository(server: FakeGitHub) -> None:
    server.add_repo(REPO, commits=[commit(when="2026-02-04T01:00:00Z")])
    server.add_repo("octo/other", commits=[commit(when="2026-02-04T02:00:00Z")])
    server.malformed_json("/repos/octo/other/issues")
    engine, other = (await collect(server, [REPO, "octo/other"], "Asia/Shanghai")).repos
    assert other.error is not None and "malformed JSON" in other.error
    assert engine.error is None and engine.totals.commits == 1


async def test_a_bad_token_fails_every_repository_without_printing_it(server: FakeGitHub) -> None:
    server.token = "the-right-one"
    server.add_repo(REPO)
    async with GitHubClient(server.url, "ghp_wrong_Secret", None) as client:
        activity = await collect_day(client, [REPO], DAY, "Asia/Shanghai")
    error = activity.repos[0].error
    assert error is not None and "invalid" in error and "ghp_wrong_Secret" not in error


async def test_all_commits_of_the_window_are_collected_across_pages_with_exact_totals(
    server: FakeGitHub,
) -> None:
    commits = [
        commit(
            when=f"2026-02-04T{n // 60:02d}:{n % 60:02d}:00Z",
            message=f"Step {n} (#{1000 + n})",
            files=[file(f"src/f{n % 7}.py", n % 5 + 1, n % 3)],
        )
        for n in range(130)
    ]
    outside = commit(when="2026-02-04T16:00:00Z", message="Next day in Shanghai")
    server.add_repo(REPO, commits=[*commits, outside])
    activity = (await collect(server, [REPO], "Asia/Shanghai")).repos[0]
    assert [c.sha for c in activity.commits] == [c["sha"] for c in commits]
    assert activity.totals.commits == 130
    assert activity.totals.additions == sum(n % 5 + 1 for n in range(130))
    assert activity.totals.deletions == sum(n % 3 for n in range(130))
    assert activity.totals.files_changed == 7  # distinct files of the day
    assert [c.pull_number for c in activity.commits] == [1000 + n for n in range(130)]
    assert activity.truncated == []
    assert server.count(path=f"/repos/{REPO}/commits", status=200) == 2 + 130


async def test_releases_published_in_the_window_are_listed_and_drafts_are_not(
    server: FakeGitHub,
) -> None:
    server.add_repo(
        REPO,
        releases=[
            release("v1.2.0", published_at="2026-02-04T09:00:00Z", body="## Highlights\n- fast"),
            release("v1.3.0-rc1", published_at=None, created_at="2026-02-04T10:00:00Z"),
            release("v1.1.0", published_at="2026-02-03T15:59:59Z"),
        ],
    )
    activity = (await collect(server, [REPO], "Asia/Shanghai")).repos[0]
    (shipped,) = activity.releases
    assert shipped.tag_name == "v1.2.0" and shipped.body.startswith("## Highlights")
    assert shipped.url == f"https://github.com/{REPO}/releases/tag/v1.2.0"


async def test_an_immediate_rerun_costs_no_rate_limit(server: FakeGitHub, tmp_path: Path) -> None:
    server.add_repo(
        REPO,
        commits=[commit(when="2026-02-04T01:00:00Z"), commit(when="2026-02-04T02:00:00Z")],
        issues=[issue(5, created_at="2026-02-04T03:00:00Z")],
        releases=[release("v1", published_at="2026-02-04T04:00:00Z")],
    )
    cache = FileCache(tmp_path / "etags.db")
    async with github(server, cache=cache) as client:
        first = await collect_day(client, [REPO], DAY, "Asia/Shanghai")
        assert client.stats.rate_limited == 5
    async with github(server, cache=cache) as client:
        again = await collect_day(client, [REPO], DAY, "Asia/Shanghai")
        assert client.stats.rate_limited == 0
        assert client.stats.not_modified == 3 and client.stats.cache_hits == 2
    cache.close()
    assert again == first


async def test_an_empty_repository_has_no_commits_rather_than_an_error(
    server: FakeGitHub,
) -> None:
    server.add_repo(REPO)
    server.fail("/commits", 409, body={"message": "Git Repository is empty."})
    activity = (await collect(server, [REPO], "UTC")).repos[0]
    assert activity.error is None and activity.is_empty


async def test_a_commit_with_files_over_several_pages_lists_them_all(server: FakeGitHub) -> None:
    server.files_per_page = 2
    big = commit(when="2026-02-04T01:00:00Z", files=[file(f"f{n}.cu", 2, 1) for n in range(5)])
    server.add_repo(REPO, commits=[big])
    (landed,) = (await collect(server, [REPO], "UTC")).repos[0].commits
    assert landed.files_changed == 5 and len(landed.files) == 5
    assert (landed.additions, landed.deletions) == (10, 5)


async def test_commits_beyond_the_detail_limit_are_flagged_and_totals_come_from_compare(
    server: FakeGitHub,
) -> None:
    commits = [
        commit(when=f"2026-02-04T0{n}:00:00Z", message=f"c{n}", files=[file(f"x{n}.py", n + 1, 0)])
        for n in range(4)
    ]
    server.add_repo(REPO, commits=commits)
    window = day_window(DAY, "UTC")
    async with github(server) as client:
        activity = await collect_repo(client, REPO, window, limits=Limits(commit_details=2))
    assert activity.totals.commits == 4
    assert (activity.totals.additions, activity.totals.files_changed) == (1 + 2 + 3 + 4, 4)
    assert [c.additions for c in activity.commits] == [1, 2, None, None]
    assert any("without per-commit sizes" in note for note in activity.truncated)
    assert server.count(path="/compare/") == 1


async def test_long_patches_and_bodies_are_cut_and_flagged(server: FakeGitHub) -> None:
    patch = "@@ -1,400 +1,400 @@\n" + "+x = 1\n" * 2000
    server.add_repo(
        REPO,
        commits=[commit(when="2026-02-04T01:00:00Z", files=[file("a.py", 2000, 0, patch)])],
        issues=[issue(3, created_at="2026-02-04T02:00:00Z", body="long " * 2000)],
    )
    window = day_window(DAY, "UTC")
    limits = Limits(patch_chars=500, body_chars=300)
    async with github(server) as client:
        activity = await collect_repo(client, REPO, window, limits=limits)
    (landed,) = activity.commits
    assert landed.files[0].patch is not None and len(landed.files[0].patch) <= 502
    assert len(activity.opened_issues[0].body) <= 302
    assert any("patches cut" in note for note in activity.truncated)
    assert any("bodies" in note for note in activity.truncated)


@pytest.mark.parametrize(
    ("message", "number"),
    [
        ("Speed up decode (#1234)", 1234),
        ("Merge pull request #77 from someone/branch\n\nDetails", 77),
        ('Revert "Fix (#10)" (#12)', 12),
        ("Fix a typo\n\nSee (#99) in the body", None),
        ("No reference at all", None),
    ],
)
def test_the_pull_request_number_is_parsed_from_the_commit_headline(
    message: str, number: int | None
) -> None:
    assert pull_number(message) == number
