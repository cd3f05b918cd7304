"""The weekly roll-up: a week of archived daily digests and activity → one Chinese overview.

Per repository: every release of the week (always from the data, so none is ever missing),
the most important merged PRs (by size and labels), the open problems (the week's new issues,
by discussion and bug labels) and the week's totals. The narrative (overview and per-repository
highlights) is written by one model call per week and repository set, from fenced data and the
archived daily sections, guarded like every model text and cached; without a model, or when
the chain fails, it is written from the data (structured, deterministic).

`gather` collects and ranks, `structured` writes from the data, `model` asks the model (prompt,
parse, cache), `rollup` puts a week together and renders it. This package only re-exports.
"""

from summarizer.weekly.gather import (
    WEEK_DAYS,
    Dated,
    RepoWeek,
    gather_week,
    issue_importance,
    pull_importance,
    week_dates,
)
from summarizer.weekly.model import (
    WEEKLY_NAMESPACE,
    WEEKLY_PROMPT_VERSION,
    WEEKLY_SCHEMA,
    WEEKLY_SYSTEM_PROMPT,
    parse_weekly,
    weekly_messages,
)
from summarizer.weekly.rollup import (
    NO_WEEKLY_UPDATES,
    WEEKLY_ERROR_TEXT,
    WeeklyDigest,
    WeeklySection,
    WeeklyWrittenBy,
    render_weekly_markdown,
    weekly_digest,
)
from summarizer.weekly.structured import (
    TOP_ISSUES,
    TOP_PULLS,
    releases_markdown,
    structured_highlights,
    structured_weekly_summary,
    totals_line,
)

__all__ = [
    "NO_WEEKLY_UPDATES",
    "TOP_ISSUES",
    "TOP_PULLS",
    "WEEKLY_ERROR_TEXT",
    "WEEKLY_NAMESPACE",
    "WEEKLY_PROMPT_VERSION",
    "WEEKLY_SCHEMA",
    "WEEKLY_SYSTEM_PROMPT",
    "WEEK_DAYS",
    "Dated",
    "RepoWeek",
    "WeeklyDigest",
    "WeeklySection",
    "WeeklyWrittenBy",
    "gather_week",
    "issue_importance",
    "parse_weekly",
    "pull_importance",
    "releases_markdown",
    "render_weekly_markdown",
    "structured_highlights",
    "structured_weekly_summary",
    "totals_line",
    "week_dates",
    "weekly_digest",
    "weekly_messages",
]
