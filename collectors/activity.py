"""Typed activity of one repository-day, and of a whole day: the activity JSON of interface.md."""

from __future__ import annotations

import hashlib
from datetime import UTC, date, datetime
from typing import Annotated

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, PlainSerializer


def _utc_z(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


UtcDatetime = Annotated[AwareDatetime, PlainSerializer(_utc_z, return_type=str)]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")


class FileChange(_Frozen):
    """One file of a commit's diff; `patch` is an excerpt, absent when not fetched or binary."""

    filename: str
    status: str = "modified"
    additions: int = 0
    deletions: int = 0
    patch: str | None = None


class Release(_Frozen):
    """A release published in the window."""

    tag_name: str
    name: str = ""
    published_at: UtcDatetime
    url: str
    author: str | None = None
    prerelease: bool = False
    body: str = ""


class PullRequest(_Frozen):
    """A pull request merged or opened in the window; size fields are None where not known."""

    number: int
    title: str
    url: str
    author: str | None = None
    labels: list[str] = Field(default_factory=list)
    created_at: UtcDatetime | None = None
    merged_at: UtcDatetime | None = None
    merge_commit_sha: str | None = None
    additions: int | None = None
    deletions: int | None = None
    body: str = ""


class Issue(_Frozen):
    """An issue opened in the window."""

    number: int
    title: str
    url: str
    created_at: UtcDatetime
    author: str | None = None
    labels: list[str] = Field(default_factory=list)
    comments: int = 0
    body: str = ""


class LinkedIssue(_Frozen):
    """An issue or PR that the day's PR bodies or commit messages mention, with its title."""

    number: int
    title: str
    url: str
    is_pull: bool = False
    state: str = ""


class Commit(_Frozen):
    """A commit on the default branch in the window; size fields are None where not fetched."""

    sha: str
    title: str
    url: str
    committed_at: UtcDatetime
    author: str | None = None
    pull_number: int | None = None
    additions: int | None = None
    deletions: int | None = None
    files_changed: int | None = None
    files: list[FileChange] = Field(default_factory=list)
    message: str = ""


class Totals(_Frozen):
    """The day's exact totals over the commits of the window."""

    commits: int = 0
    additions: int = 0
    deletions: int = 0
    files_changed: int = 0


class RepoActivity(_Frozen):
    """Everything that happened in one repository during one day window."""

    repo: str
    error: str | None = None
    releases: list[Release] = Field(default_factory=list)
    merged_pulls: list[PullRequest] = Field(default_factory=list)
    opened_pulls: list[PullRequest] = Field(default_factory=list)
    opened_issues: list[Issue] = Field(default_factory=list)
    commits: list[Commit] = Field(default_factory=list)
    totals: Totals = Field(default_factory=Totals)
    # Added later: absent from older archived JSON, hence the default.
    linked_issues: list[LinkedIssue] = Field(default_factory=list)
    truncated: list[str] = Field(default_factory=list)
    # False when a listing stopped at a cap, so items of the day may be missing: such a day is
    # served but never archived as complete (see bot.pipeline).
    complete: bool = True
    # PRs and commits of bot accounts left out before summarising (summarizer.noise).
    bot_items: int = 0

    @property
    def is_empty(self) -> bool:
        """True when nothing happened (and nothing failed)."""
        return self.error is None and not (
            self.releases
            or self.merged_pulls
            or self.opened_pulls
            or self.opened_issues
            or self.commits
        )

    def content_hash(self) -> str:
        """A stable hash of the activity, used as a cache key."""
        return hashlib.sha256(self.model_dump_json().encode()).hexdigest()[:32]

    @classmethod
    def failed(cls, repo: str, error: str) -> RepoActivity:
        """A repository-day that could not be collected, carrying a one-line reason."""
        return cls(repo=repo, error=" ".join(error.split()))


class DayActivity(_Frozen):
    """One calendar day of activity across the tracked repositories."""

    day: date
    timezone: str
    window_utc: tuple[UtcDatetime, UtcDatetime]
    repos: list[RepoActivity] = Field(default_factory=list)

    def repo(self, name: str) -> RepoActivity | None:
        """The activity of `name` (case-insensitive `owner/name`), if collected."""
        for activity in self.repos:
            if activity.repo.lower() == name.lower():
                return activity
        return None

    def to_json(self) -> str:
        """Serialise as the activity JSON of interface.md."""
        return self.model_dump_json(indent=2)

    @classmethod
    def from_json(cls, text: str | bytes) -> DayActivity:
        """Parse the activity JSON (raises pydantic.ValidationError on bad input)."""
        return cls.model_validate_json(text)
