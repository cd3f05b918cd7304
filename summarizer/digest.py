"""The Digest value (per-repository sections plus a summary) and its Markdown rendering."""

from __future__ import annotations

from datetime import date
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from summarizer.guard import escape_markdown_text

HEADER = "今日的 AI Infra 的新闻如下。"
NO_UPDATES = "昨日无更新。"

WrittenBy = Literal["model", "structured", "empty", "error"]


class Usage(BaseModel):
    """Token usage of the model calls behind one piece of text."""

    model_config = ConfigDict(frozen=True)

    prompt_tokens: int = 0
    completion_tokens: int = 0
    calls: int = 0

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            prompt_tokens=self.prompt_tokens + other.prompt_tokens,
            completion_tokens=self.completion_tokens + other.completion_tokens,
            calls=self.calls + other.calls,
        )


class Section(BaseModel):
    """One repository's part of a digest, in the readers' Markdown (without its `###` heading).

    `written_by` says how: by a model (`model` names it), from the data (`structured`), nothing
    happened (`empty`), or collection failed (`error`). `reason` is for operators, never readers.
    `claims_removed` counts the bullets or sentences the guard removed for citing a PR, issue or
    commit that is not in the day's data.
    """

    model_config = ConfigDict(frozen=True)

    repo: str
    markdown: str
    written_by: WrittenBy
    model: str | None = None
    reason: str | None = None
    activity_hash: str = ""
    usage: Usage = Field(default_factory=Usage)
    claims_removed: int = 0


class Digest(BaseModel):
    """A day's digest: sections in `DIGEST_REPOS` order, the summary and the conclusion."""

    model_config = ConfigDict(frozen=True)

    day: date
    timezone: str = "Asia/Shanghai"
    sections: list[Section]
    summary: str
    conclusion: str
    summary_by: str = "structured"
    notes: list[str] = Field(default_factory=list)
    # For operators (logs, run records), never rendered: why the summary was written without
    # a model, and what its model calls cost.
    summary_reason: str | None = None
    summary_usage: Usage = Field(default_factory=Usage)

    @property
    def usage(self) -> Usage:
        """Token usage of every model call behind this digest (sections and summary)."""
        total = self.summary_usage
        for section in self.sections:
            total = total + section.usage
        return total

    def section(self, repo: str) -> Section | None:
        """The section of `repo` (case-insensitive owner/name), if present."""
        for section in self.sections:
            if section.repo.lower() == repo.lower():
                return section
        return None

    @property
    def structured_repos(self) -> list[str]:
        """Repositories with activity whose section was written without a model."""
        return [s.repo for s in self.sections if s.written_by == "structured"]


def render_markdown(digest: Digest) -> str:
    """Render the readers' format: header, 摘要, 具体内容分析 with ### per repo, 总结."""
    parts = [f"{HEADER}（{digest.day.isoformat()}）", "", "## 摘要", digest.summary.strip(), ""]
    parts.append("## 具体内容分析")
    for section in digest.sections:
        parts.append(f"### {escape_markdown_text(section.repo)}")
        parts.append(section.markdown.strip() or NO_UPDATES)
        parts.append("")
    parts.append("## 总结")
    parts.append(digest.conclusion.strip())
    for note in digest.notes:
        parts.append("")
        parts.append(f"> {note}")
    return "\n".join(parts).rstrip() + "\n"
