"""The bundled synthetic sample day: well formed, inside its day, printed by `collect --sample`."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import date, datetime

import pytest

from bot.cli import main
from bot.settings import DEFAULT_REPOS
from collectors.activity import DayActivity, RepoActivity
from collectors.sample import load_sample
from collectors.window import day_window

FULL_SHA = re.compile(r"[0-9a-f]{40}")


@pytest.fixture(scope="module")
def sample() -> DayActivity:
    return load_sample()


def instants(activity: RepoActivity) -> Iterator[tuple[str, datetime]]:
    """Every instant that places an item in the day, labelled for assertion messages."""
    for release in activity.releases:
        yield f"release {release.tag_name}", release.published_at
    for pull in activity.merged_pulls:
        assert pull.merged_at is not None, f"merged PR #{pull.number} has no merged_at"
        yield f"merged PR #{pull.number}", pull.merged_at
    for pull in activity.opened_pulls:
        assert pull.created_at is not None, f"opened PR #{pull.number} has no created_at"
        yield f"opened PR #{pull.number}", pull.created_at
    for issue in activity.opened_issues:
        yield f"issue #{issue.number}", issue.created_at
    for commit in activity.commits:
        yield f"commit {commit.sha[:8]}", commit.committed_at


def urls(activity: RepoActivity) -> Iterator[str]:
    """Every item URL of a repository-day."""
    yield from (release.url for release in activity.releases)
    yield from (pull.url for pull in activity.merged_pulls + activity.opened_pulls)
    yield from (issue.url for issue in activity.opened_issues)
    yield from (commit.url for commit in activity.commits)


def test_sample_is_the_eight_default_repositories_in_order(sample: DayActivity) -> None:
    assert [repo.repo for repo in sample.repos] == list(DEFAULT_REPOS)
    assert all(repo.error is None for repo in sample.repos)


def test_sample_window_is_its_shanghai_day(sample: DayActivity) -> None:
    window = day_window(date(2026, 1, 15), "Asia/Shanghai")
    assert sample.day == date(2026, 1, 15)
    assert sample.timezone == "Asia/Shanghai"
    assert sample.window_utc == (window.start, window.end)


def test_every_item_lies_in_the_window(sample: DayActivity) -> None:
    window = day_window(sample.day, sample.timezone)
    for repo in sample.repos:
        for label, instant in instants(repo):
            assert window.contains(instant), f"{repo.repo} {label} at {instant} is outside the day"


def test_totals_equal_the_sums_over_commits(sample: DayActivity) -> None:
    for repo in sample.repos:
        commits = repo.commits
        assert all(c.additions is not None for c in commits)
        assert repo.totals.commits == len(commits)
        assert repo.totals.additions == sum(c.additions or 0 for c in commits)
        assert repo.totals.deletions == sum(c.deletions or 0 for c in commits)
        assert repo.totals.files_changed == sum(c.files_changed or 0 for c in commits)


def test_listed_files_account_for_their_commit(sample: DayActivity) -> None:
    with_files = [c for repo in sample.repos for c in repo.commits if c.files]
    assert len(with_files) >= 2
    assert any(f.patch for c in with_files for f in c.files)
    for commit in with_files:
        assert commit.files_changed == len(commit.files)
        assert commit.additions == sum(f.additions for f in commit.files)
        assert commit.deletions == sum(f.deletions for f in commit.files)


def test_shas_are_full_and_merged_pulls_point_at_their_commits(sample: DayActivity) -> None:
    for repo in sample.repos:
        shas = {commit.sha for commit in repo.commits}
        assert len(shas) == len(repo.commits)
        assert all(FULL_SHA.fullmatch(sha) for sha in shas)
        for pull in repo.merged_pulls:
            assert pull.merge_commit_sha in shas
        numbers = {pull.number for pull in repo.merged_pulls}
        for commit in repo.commits:
            assert commit.pull_number is None or commit.pull_number in numbers


def test_two_repositories_are_quiet(sample: DayActivity) -> None:
    quiet = [repo.repo for repo in sample.repos if repo.is_empty]
    assert quiet == ["deepseek-ai/FlashMLA", "NVIDIA/cutile-python"]
    for name in quiet:
        repo = sample.repo(name)
        assert repo is not None
        assert repo.totals.commits == 0


def test_busy_day_has_releases_pulls_and_issues(sample: DayActivity) -> None:
    def count(field: str) -> int:
        return sum(len(getattr(repo, field)) for repo in sample.repos)

    assert count("releases") >= 1
    assert count("merged_pulls") >= 5
    assert count("opened_pulls") >= 3
    assert count("opened_issues") >= 3
    vllm = sample.repo("vllm-project/vllm")
    assert vllm is not None and vllm.releases and vllm.releases[0].body


def test_an_issue_body_carries_a_prompt_injection_for_the_guard(sample: DayActivity) -> None:
    bodies = [issue.body.lower() for repo in sample.repos for issue in repo.opened_issues]
    assert any("ignore all previous instructions" in b and "@everyone" in b for b in bodies)


def test_every_url_points_at_its_own_repository(sample: DayActivity) -> None:
    for repo in sample.repos:
        prefix = f"https://github.com/{repo.repo}/"
        for url in urls(repo):
            assert url.startswith(prefix), f"{url} is not under {prefix}"


def test_sample_round_trips_through_json(sample: DayActivity) -> None:
    assert DayActivity.from_json(sample.to_json()) == sample


def test_collect_sample_prints_the_sample_day(
    sample: DayActivity, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["collect", "--sample"])
    out, err = capsys.readouterr()
    assert code == 0
    assert DayActivity.from_json(out) == sample
    assert "Traceback" not in err
