"""The week written from the data alone: releases, highlights, totals and the overview."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date

from collectors.activity import Issue, PullRequest, Release
from summarizer.guard import escape_markdown_text
from summarizer.weekly.gather import Dated, RepoWeek

# Listed per repository in the roll-up (the rest are counted).
TOP_PULLS = 5
TOP_ISSUES = 5
_LINE_CHARS = 120


def one_line(text: str, limit: int = _LINE_CHARS) -> str:
    """`text` on one line, cut to `limit` characters with an ellipsis."""
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _plain(text: str) -> str:
    """Untrusted plain text (title, name, label) on one line, as Markdown shown literally."""
    return escape_markdown_text(one_line(text))


def _md(day: date) -> str:
    return f"{day.month:02d}-{day.day:02d}"


def pull_size(pull: PullRequest) -> str:
    """`+12/-3`: a PR's size, or "" when GitHub did not say."""
    if pull.additions is None and pull.deletions is None:
        return ""
    return f"+{pull.additions or 0:,}/-{pull.deletions or 0:,}"


def releases_markdown(week: RepoWeek) -> str:
    """Every release of the week, oldest first, each linked (empty when there was none)."""
    if not week.releases:
        return ""
    lines = [f"**版本发布（{len(week.releases)} 个）**"]
    for dated in week.releases:
        release = dated.item
        assert isinstance(release, Release)
        name = release.name.strip()
        title = f" {_plain(name)}" if name and name != release.tag_name else ""
        pre = "（预发布）" if release.prerelease else ""
        tag = escape_markdown_text(release.tag_name)
        lines.append(f"- {_md(dated.day)} [{tag}]({release.url}){title}{pre}")
    return "\n".join(lines)


def _pull_line(dated: Dated) -> str:
    pull = dated.item
    assert isinstance(pull, PullRequest)
    labels = ", ".join(_plain(label) for label in pull.labels[:3])
    details = [part for part in (pull_size(pull), labels) if part]
    extra = f"（{'，'.join(details)}）" if details else ""
    return f"- {_md(dated.day)} [#{pull.number}]({pull.url}) {_plain(pull.title)}{extra}"


def _issue_line(dated: Dated) -> str:
    issue = dated.item
    assert isinstance(issue, Issue)
    comments = f"（{issue.comments} 条评论）" if issue.comments else ""
    return f"- {_md(dated.day)} [#{issue.number}]({issue.url}) {_plain(issue.title)}{comments}"


def structured_highlights(week: RepoWeek) -> str:
    """The most important merged PRs and open problems of the week, from the data alone."""
    blocks: list[str] = []
    if week.merged_pulls:
        shown = week.merged_pulls[:TOP_PULLS]
        head = f"**重点合并 PR**（本周共 {len(week.merged_pulls)} 个，按改动规模与标签选出）"
        blocks.append("\n".join([head, *(_pull_line(d) for d in shown)]))
    if week.issues:
        shown = week.issues[:TOP_ISSUES]
        head = f"**待关注问题**（本周新 issue {len(week.issues)} 个，按讨论热度与标签选出）"
        blocks.append("\n".join([head, *(_issue_line(d) for d in shown)]))
    if not blocks:
        blocks.append("本周没有合并 PR 或新 issue。")
    return "\n\n".join(blocks)


def totals_line(week: RepoWeek, day_count: int) -> str:
    """The week's totals for one repository."""
    line = (
        f"**本周统计**：{day_count} 天中 {week.active_days} 天有更新；"
        f"{week.commits} 个 commit，+{week.additions:,}/-{week.deletions:,} 行；"
        f"{len(week.releases)} 个 release，{len(week.merged_pulls)} 个合并 PR，"
        f"{week.opened_pulls} 个新 PR，{len(week.issues)} 个新 issue。"
    )
    if week.failed_days:
        line += "其中 " + "、".join(_md(d) for d in week.failed_days) + " 的数据未能获取。"
    return line


def structured_weekly_summary(weeks: Sequence[RepoWeek], start: date, end: date) -> str:
    """The week's overview from counts, releases and the busiest repositories."""
    active = [w for w in weeks if not w.is_empty]
    span = f"本周（{start.isoformat()} 至 {end.isoformat()}）"
    if not active:
        return f"{span}跟踪的 {len(weeks)} 个仓库都没有可报道的更新。"
    releases = sum(len(w.releases) for w in active)
    merged = sum(len(w.merged_pulls) for w in active)
    issues = sum(len(w.issues) for w in active)
    commits = sum(w.commits for w in active)
    additions = sum(w.additions for w in active)
    deletions = sum(w.deletions for w in active)
    parts = [
        f"{span}跟踪的 {len(weeks)} 个仓库中有 {len(active)} 个有更新：共 {releases} 个 release，"
        f"{merged} 个合并 PR，{issues} 个新 issue，{commits} 个 commit"
        f"（+{additions:,}/-{deletions:,} 行）。"
    ]
    tagged = []
    for week in active:
        for dated in week.releases:
            assert isinstance(dated.item, Release)
            label = escape_markdown_text(f"{week.repo} {dated.item.tag_name}")
            tagged.append(f"[{label}]({dated.item.url})")
    if tagged:
        parts.append("版本发布：" + "、".join(tagged) + "。")
    busiest = sorted(
        (w for w in active if w.merged_pulls), key=lambda w: len(w.merged_pulls), reverse=True
    )
    if busiest:
        listed = "、".join(
            f"{escape_markdown_text(w.repo)}（{len(w.merged_pulls)} 个）" for w in busiest[:3]
        )
        parts.append(f"合并 PR 最多的是 {listed}。")
    pressing = sorted((w for w in active if w.issues), key=lambda w: len(w.issues), reverse=True)
    if pressing:
        listed = "、".join(
            f"{escape_markdown_text(w.repo)}（{len(w.issues)} 个）" for w in pressing[:3]
        )
        parts.append(f"新 issue 集中在 {listed}，可留意其中的回归与兼容性问题。")
    return "".join(parts)
