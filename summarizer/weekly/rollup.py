"""The roll-up: a week of archived days → sections per repository and an overview, and its text."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from datetime import date, timedelta
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from collectors.activity import DayActivity
from collectors.cache import KeyValueCache
from summarizer.digest import Digest, Usage
from summarizer.guard import clean_model_markdown, escape_markdown_text
from summarizer.llm import AllModelsFailed, LLMClient
from summarizer.weekly.gather import RepoWeek, gather_week
from summarizer.weekly.model import write_weekly
from summarizer.weekly.structured import (
    releases_markdown,
    structured_highlights,
    structured_weekly_summary,
    totals_line,
)

log = logging.getLogger(__name__)

WeeklyWrittenBy = Literal["model", "structured", "empty", "error"]

NO_WEEKLY_UPDATES = "本周无更新。"
WEEKLY_ERROR_TEXT = "本周该仓库的 GitHub 数据均未能获取。"


class WeeklySection(BaseModel):
    """One repository's part of the roll-up, in the readers' Markdown."""

    model_config = ConfigDict(frozen=True)

    repo: str
    releases: str  # every release of the week (from the data), or "" when there was none
    highlights: str  # important merged PRs and open problems (model or structured)
    totals: str  # the week's totals line
    written_by: WeeklyWrittenBy
    release_count: int = 0


class WeeklyDigest(BaseModel):
    """A week's roll-up for a set of repositories."""

    model_config = ConfigDict(frozen=True)

    start: date
    end: date
    timezone: str = "Asia/Shanghai"
    repos: list[str]
    archived_days: list[date]
    missing_days: list[date] = Field(default_factory=list)
    sections: list[WeeklySection]
    summary: str
    summary_by: str = "structured"  # the model's name, or "structured"
    notes: list[str] = Field(default_factory=list)
    # For operators only (logs), never rendered.
    reason: str | None = None
    usage: Usage = Field(default_factory=Usage)

    def section(self, repo: str) -> WeeklySection | None:
        """The section of `repo` (case-insensitive), if present."""
        return next((s for s in self.sections if s.repo.lower() == repo.lower()), None)


def _section(week: RepoWeek, highlights: str | None, day_count: int) -> WeeklySection:
    if week.all_failed:
        return WeeklySection(
            repo=week.repo,
            releases="",
            highlights=WEEKLY_ERROR_TEXT,
            totals="",
            written_by="error",
        )
    if week.is_empty:
        return WeeklySection(
            repo=week.repo,
            releases="",
            highlights=NO_WEEKLY_UPDATES,
            totals=totals_line(week, day_count),
            written_by="empty",
        )
    links = set(week.links)
    return WeeklySection(
        repo=week.repo,
        releases=clean_model_markdown(releases_markdown(week), links),
        highlights=highlights
        if highlights is not None
        else clean_model_markdown(structured_highlights(week), links),
        totals=totals_line(week, day_count),
        written_by="model" if highlights is not None else "structured",
        release_count=len(week.releases),
    )


def _notes(
    sections: Iterable[WeeklySection], used_model: bool, missing: Sequence[date]
) -> list[str]:
    """Short reader notes: what was written without a model, which days are not archived."""
    structured = [s.repo for s in sections if s.written_by == "structured"]
    notes: list[str] = []
    if structured and not used_model:
        notes.append("本周回顾未使用模型撰写，由存档的每日数据直接整理。")
    elif structured:
        listed = "、".join(escape_markdown_text(repo) for repo in structured)
        notes.append(f"以下仓库的本周要点由数据直接整理：{listed}。")
    if missing:
        days = "、".join(day.isoformat() for day in missing)
        notes.append(f"以下日期没有存档，未计入本周：{days}。")
    return notes


async def weekly_digest(
    days: Sequence[tuple[Digest, DayActivity]],
    repos: Sequence[str],
    llm: LLMClient | None,
    cache: KeyValueCache | None,
    *,
    start: date | None = None,
    end: date | None = None,
) -> WeeklyDigest:
    """The roll-up of the archived `days` for `repos` (in that order); one model call at most.

    `start`/`end` name the week when some of its days are not archived (default: the span of
    `days`). Raises ValueError when `days` is empty.
    """
    if not days:
        raise ValueError("a weekly roll-up needs at least one archived day")
    archived = sorted({activity.day for _digest, activity in days})
    start = start or archived[0]
    end = end or archived[-1]
    inside = [(d, a) for d, a in days if start <= a.day <= end]
    covered = sorted({a.day for _d, a in inside})
    span = [start + timedelta(days=i) for i in range((end - start).days + 1)]
    missing = [day for day in span if day not in set(covered)]
    day_count = len(covered)
    weeks = [gather_week(inside, repo) for repo in repos]

    summary = structured_weekly_summary(weeks, start, end)
    summary_by = "structured"
    highlights: dict[str, str] = {}
    reason: str | None = None
    usage = Usage()
    used_model = False
    if llm is not None and any(not w.is_empty for w in weeks):
        try:
            written = await write_weekly(llm, cache, weeks, start, end)
        except AllModelsFailed as exc:
            log.warning("the weekly roll-up was written without a model: %s", exc)
            reason = str(exc)
        except Exception as exc:  # a bug must not cost readers the roll-up
            log.exception("writing the weekly roll-up failed unexpectedly")
            reason = f"unexpected {type(exc).__name__}"
        else:
            summary, summary_by, highlights, usage = (
                written.summary,
                written.model,
                written.highlights,
                written.usage,
            )
            used_model = True
    every_link = set().union(*(w.links for w in weeks)) if weeks else set()
    if summary_by == "structured":
        summary = clean_model_markdown(summary, every_link)
    sections = [_section(w, highlights.get(w.repo.lower()), day_count) for w in weeks]
    timezone = next((a.timezone for _d, a in inside), days[0][1].timezone)
    return WeeklyDigest(
        start=start,
        end=end,
        timezone=timezone,
        repos=list(repos),
        archived_days=covered,
        missing_days=missing,
        sections=sections,
        summary=summary,
        summary_by=summary_by,
        notes=_notes(sections, used_model, missing),
        reason=reason,
        usage=usage,
    )


def render_weekly_markdown(weekly: WeeklyDigest) -> str:
    """The readers' format: title, 本周概览, then per repository releases, highlights, totals."""
    span = f"{weekly.start.isoformat()} 至 {weekly.end.isoformat()}"
    parts = [f"本周 AI Infra 新闻回顾（{span}）", "", "## 本周概览", weekly.summary.strip(), ""]
    parts.append("## 各仓库动态")
    for section in weekly.sections:
        parts.append(f"### {escape_markdown_text(section.repo)}")
        blocks = [section.releases, section.highlights, section.totals]
        parts.append("\n\n".join(block.strip() for block in blocks if block.strip()))
        parts.append("")
    for note in weekly.notes:
        parts.append(f"> {note}")
        parts.append("")
    return "\n".join(parts).rstrip() + "\n"
