"""The week's data: each repository's releases, merged PRs and new issues, ranked by importance."""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta

from collectors.activity import DayActivity, Issue, PullRequest, Release, RepoActivity
from summarizer.digest import Digest
from summarizer.guard import allowed_links

WEEK_DAYS = 7

# Labels (substrings, lower case) that make a merged PR matter more, or less.
_MAJOR_LABELS = (
    "breaking",
    "perf",
    "feature",
    "enhancement",
    "new model",
    "security",
    "critical",
    "high priority",
    "release",
)
_MINOR_LABELS = ("documentation", "docs", "ci", "chore", "test", "dependencies", "style")
_PROBLEM_LABELS = ("bug", "regression", "crash", "critical", "high priority", "performance")
_REGRESSION = re.compile(r"regress|crash|segfault|hang|nan\b|回归|崩溃|错误", re.IGNORECASE)


@dataclass(frozen=True)
class Dated:
    """An item of the week with the (local) day it belongs to."""

    day: date
    item: Release | PullRequest | Issue


@dataclass(frozen=True)
class RepoWeek:
    """What one repository did over the week, gathered from the daily activities."""

    repo: str
    releases: list[Dated] = field(default_factory=list)
    merged_pulls: list[Dated] = field(default_factory=list)  # most important first
    issues: list[Dated] = field(default_factory=list)  # most pressing first
    opened_pulls: int = 0
    commits: int = 0
    additions: int = 0
    deletions: int = 0
    active_days: int = 0
    collected_days: int = 0
    failed_days: list[date] = field(default_factory=list)
    sections: list[tuple[date, str]] = field(default_factory=list)  # archived daily sections
    links: frozenset[str] = frozenset()

    @property
    def is_empty(self) -> bool:
        """True when nothing happened in the days that were collected."""
        return self.active_days == 0

    @property
    def all_failed(self) -> bool:
        """True when no day of the week could be collected for this repository."""
        return self.collected_days == 0 and bool(self.failed_days)


def pull_importance(pull: PullRequest) -> float:
    """How much a merged PR matters: its size (log scale) plus its labels and title tags."""
    size = (pull.additions or 0) + (pull.deletions or 0)
    score = math.log10(1 + size)
    labels = [label.lower() for label in pull.labels]
    score += 1.5 * sum(1 for label in labels if any(k in label for k in _MAJOR_LABELS))
    score -= 1.0 * sum(1 for label in labels if any(k in label for k in _MINOR_LABELS))
    title = pull.title.lower()
    if re.match(r"^\s*(\[(feature|feat|perf|breaking|release)\]|(feat|perf)(\(|:|!))", title):
        score += 1.0
    return score


def issue_importance(issue: Issue) -> float:
    """How pressing a new issue looks: discussion, bug-like labels and words like regression."""
    score = math.log2(1 + issue.comments)
    labels = [label.lower() for label in issue.labels]
    score += 1.5 * sum(1 for label in labels if any(k in label for k in _PROBLEM_LABELS))
    if _REGRESSION.search(issue.title):
        score += 1.0
    return score


def _rank_pull(dated: Dated) -> tuple[float, int]:
    assert isinstance(dated.item, PullRequest)
    return -pull_importance(dated.item), dated.item.number


def _rank_issue(dated: Dated) -> tuple[float, int]:
    assert isinstance(dated.item, Issue)
    return -issue_importance(dated.item), dated.item.number


def gather_week(days: Sequence[tuple[Digest, DayActivity]], repo: str) -> RepoWeek:
    """One repository's week from the archived days (any order)."""
    releases: list[Dated] = []
    pulls: list[Dated] = []
    issues: list[Dated] = []
    sections: list[tuple[date, str]] = []
    failed: list[date] = []
    links: set[str] = set()
    totals = {"opened": 0, "commits": 0, "additions": 0, "deletions": 0, "active": 0, "ok": 0}
    for digest, activity in sorted(days, key=lambda pair: pair[1].day):
        day = activity.day
        repo_activity: RepoActivity | None = activity.repo(repo)
        if repo_activity is None:
            continue
        if repo_activity.error is not None:
            failed.append(day)
            continue
        totals["ok"] += 1
        if repo_activity.is_empty:
            continue
        totals["active"] += 1
        links |= allowed_links(repo_activity)
        releases += [Dated(day, r) for r in repo_activity.releases]
        pulls += [Dated(day, p) for p in repo_activity.merged_pulls]
        issues += [Dated(day, i) for i in repo_activity.opened_issues]
        totals["opened"] += len(repo_activity.opened_pulls)
        totals["commits"] += repo_activity.totals.commits
        totals["additions"] += repo_activity.totals.additions
        totals["deletions"] += repo_activity.totals.deletions
        section = digest.section(repo)
        if section is not None and section.written_by in ("model", "structured"):
            sections.append((day, section.markdown))
    return RepoWeek(
        repo=repo,
        releases=releases,
        merged_pulls=sorted(pulls, key=_rank_pull),
        issues=sorted(issues, key=_rank_issue),
        opened_pulls=totals["opened"],
        commits=totals["commits"],
        additions=totals["additions"],
        deletions=totals["deletions"],
        active_days=totals["active"],
        collected_days=totals["ok"],
        failed_days=failed,
        sections=sections,
        links=frozenset(links),
    )


def week_dates(end: date, days: int = WEEK_DAYS) -> list[date]:
    """The `days` calendar days ending with `end`, oldest first (the days to load)."""
    return [end - timedelta(days=days - 1 - offset) for offset in range(days)]
