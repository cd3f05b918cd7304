"""GitHub's REST response shapes, parsed at the edge (only the fields the collector reads).

Fields GitHub may omit or null (and that a recording may lack) are optional here.
"""

from __future__ import annotations

from typing import Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, field_validator


class _Wire(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")


class GhUser(_Wire):
    """An account."""

    login: str


class GhPerson(_Wire):
    """A git author or committer."""

    name: str | None = None
    date: AwareDatetime | None = None


class GhCommitData(_Wire):
    """The git part of a commit."""

    message: str = ""
    author: GhPerson | None = None
    committer: GhPerson | None = None


class GhStats(_Wire):
    """A commit's line counts."""

    additions: int = 0
    deletions: int = 0


class GhFile(_Wire):
    """One file of a diff."""

    filename: str
    status: str = "modified"
    additions: int = 0
    deletions: int = 0
    patch: str | None = None


class GhCommit(_Wire):
    """A commit, as listed (no stats, no files) or in detail."""

    sha: str
    html_url: str
    commit: GhCommitData
    author: GhUser | None = None
    parents: list[dict[str, Any]] = []
    stats: GhStats | None = None
    files: list[GhFile] | None = None


class GhPullRef(_Wire):
    """The `pull_request` block of an issue that is a pull request."""

    html_url: str | None = None
    merged_at: AwareDatetime | None = None


class GhIssue(_Wire):
    """An issue or pull request from the issues listing."""

    number: int
    title: str = ""
    html_url: str
    user: GhUser | None = None
    labels: list[str] = []
    comments: int = 0
    body: str | None = None
    created_at: AwareDatetime | None = None
    updated_at: AwareDatetime | None = None
    pull_request: GhPullRef | None = None

    @field_validator("labels", mode="before")
    @classmethod
    def _label_names(cls, value: Any) -> Any:
        # GitHub sends label objects; names are what readers see.
        if isinstance(value, list):
            return [item.get("name", "") if isinstance(item, dict) else item for item in value]
        return value


class GhRelease(_Wire):
    """A release (drafts have no `published_at`)."""

    tag_name: str
    name: str | None = None
    html_url: str
    published_at: AwareDatetime | None = None
    created_at: AwareDatetime | None = None
    author: GhUser | None = None
    draft: bool = False
    prerelease: bool = False
    body: str | None = None


class GhCompare(_Wire):
    """The compare of a range: its commits and its net files."""

    total_commits: int = 0
    commits: list[GhCommit] = []
    files: list[GhFile] = []
