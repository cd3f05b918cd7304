"""The recorded day 2026-02-04 (../shared/fixtures) through the fake GitHub matches truth.json."""

from __future__ import annotations

import json
import re
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from fake_github import FakeGitHub

from collectors.activity import DayActivity
from collectors.cache import FileCache
from collectors.collect import collect_day
from collectors.github import GitHubClient

DAY = date(2026, 2, 4)


def _truth(folder: Path) -> dict[str, dict[str, dict[str, Any]]]:
    truth: dict[str, dict[str, dict[str, Any]]] = json.loads((folder / "truth.json").read_text())
    return truth


async def _collect(folder: Path, timezone: str, cache_path: Path) -> tuple[DayActivity, int, int]:
    async with FakeGitHub() as server:
        repos = server.load_recorded(folder)
        cache = FileCache(cache_path)
        try:
            async with GitHubClient(server.url, None, cache) as github:
                activity = await collect_day(github, repos, DAY, timezone)
                first = github.stats.rate_limited
            server.clear_log()
            async with GitHubClient(server.url, None, cache) as github:
                again = await collect_day(github, repos, DAY, timezone)
                # A linked issue the recording lacks is a 404, which has no ETag to reuse.
                rerun = github.stats.rate_limited - server.count(path="/issues/", status=404)
        finally:
            cache.close()
        assert again == activity
        return activity, first, rerun


@pytest.mark.parametrize("timezone", ["Asia/Shanghai", "UTC"])
async def test_recorded_day_matches_truth_in_each_time_zone(
    recorded_day: Path, tmp_path: Path, timezone: str
) -> None:
    truth = _truth(recorded_day)[timezone]
    activity, _, _ = await _collect(recorded_day, timezone, tmp_path / "cache.db")
    assert [r.repo for r in activity.repos] == list(truth)
    for repo, expected in truth.items():
        got = activity.repo(repo)
        assert got is not None and got.error is None, got
        # Only excerpts were cut (patches, bodies), never a list or a total.
        assert all(re.search(r"patches|bodies|messages", note) for note in got.truncated)
        assert sorted(c.sha for c in got.commits) == sorted(expected["commits"]), repo
        assert sorted(p.number for p in got.merged_pulls) == sorted(expected["merged_pulls"]), repo
        assert sorted(r.tag_name for r in got.releases) == sorted(expected["releases"]), repo
        assert got.totals.commits == len(expected["commits"])
        assert (got.totals.additions, got.totals.deletions) == (
            expected["additions"],
            expected["deletions"],
        ), repo
        for key in ("opened_pulls", "opened_issues"):
            if expected.get(key) is not None:
                assert sorted(x.number for x in getattr(got, key)) == sorted(expected[key])


async def test_recorded_day_costs_few_requests_and_nothing_on_a_rerun(
    recorded_day: Path, tmp_path: Path
) -> None:
    activity, first, rerun = await _collect(recorded_day, "Asia/Shanghai", tmp_path / "c.db")
    assert first / len(activity.repos) <= 6
    assert rerun == 0


async def test_recorded_merged_pulls_carry_their_squash_commit_and_size(
    recorded_day: Path, tmp_path: Path
) -> None:
    activity, _, _ = await _collect(recorded_day, "Asia/Shanghai", tmp_path / "c.db")
    cutlass = activity.repo("NVIDIA/cutlass")
    assert cutlass is not None
    (pull,) = cutlass.merged_pulls
    (commit,) = cutlass.commits
    assert commit.pull_number == pull.number == 2999
    assert pull.merge_commit_sha == commit.sha
    assert (pull.additions, pull.deletions) == (13228, 1474)
    assert commit.files_changed == len(commit.files) > 0
