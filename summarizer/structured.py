"""Sections and summary written from the data alone, in Chinese, when no model is available.

Deterministic and complete: every release and every merged PR of the day is listed and linked
(merged PRs grouped by area; a release or a sync without a description gets the changelog lines
the day added as its points), then new PRs, new issues, commits no merged PR covers, and the
day's totals. Titles, labels, names and logins are plain text written by GitHub users: they are
escaped (`escape_markdown_text`) so that they read literally; release notes are Markdown and kept
as such. The composer passes the result through the guard like any model text.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from collectors.activity import Commit, PullRequest, Release, RepoActivity
from collectors.files import added_lines, is_news, value_order
from summarizer.boilerplate import clean_description
from summarizer.digest import NO_UPDATES, Section
from summarizer.guard import escape_markdown_text

ERROR_TEXT = "暂时未能获取该仓库当天的 GitHub 数据，本节内容缺失。"
# Opened PRs, issues and uncovered commits listed per section (the rest are counted).
MAX_LISTED = 15
MAX_RELEASE_LINES = 6
_LINE_CHARS = 160
OTHER_AREA = "其他"

_TITLE_TAG = re.compile(r"^\s*\[(?P<tag>[^\[\]]{1,40})\]\s*")
_CONVENTIONAL = re.compile(
    r"^\s*(?P<type>[A-Za-z][A-Za-z-]{1,20})(?:\((?P<scope>[^()]{1,40})\))?!?:\s+"
)
_CONVENTIONAL_TYPES = {
    "feat": "新功能",
    "feature": "新功能",
    "fix": "问题修复",
    "bugfix": "问题修复",
    "perf": "性能",
    "refactor": "重构",
    "docs": "文档",
    "doc": "文档",
    "ci": "CI",
    "build": "构建",
    "test": "测试",
    "tests": "测试",
    "chore": "杂项",
    "misc": "杂项",
    "style": "代码风格",
    "revert": "回退",
    "benchmarks": "benchmarks",
    "bench": "benchmarks",
}
# Labels that say nothing about the area of a change.
_NOISE_LABELS = {
    "ready",
    "ready-for-review",
    "needs-rebase",
    "stale",
    "unstale",
    "lgtm",
    "approved",
    "do-not-merge",
    "run-ci",
    "ci-passed",
    "high priority",
    "good first issue",
    "help wanted",
    "v1",
}
# Labels that say what kind of change it is rather than where: used only when no area is known.
_KIND_LABELS = {
    "bug": "问题修复",
    "bugfix": "问题修复",
    "fix": "问题修复",
    "enhancement": "新功能",
    "feature": "新功能",
    "feature request": "新功能",
    "new feature": "新功能",
    "performance": "性能",
    "perf": "性能",
    "documentation": "文档",
    "docs": "文档",
    "refactor": "重构",
    "ci": "CI",
    "testing": "测试",
    "tests": "测试",
    "dependencies": "依赖",
}
_SUPPORT_DIRS = {"test", "tests", "docs", "doc", "benchmarks", "examples", ".github"}
# Top-level folders that are just containers: the next folder names the area.
_CONTAINER_DIRS = {"src", "python", "lib", "include", "csrc", "pkg", "packages", "source"}


@dataclass(frozen=True)
class _Area:
    key: str
    title: str  # Markdown (escaped, or a code span)
    prefix: str  # a leading title tag to drop when the PR is listed under this area


def _size(additions: int | None, deletions: int | None) -> str:
    if additions is None and deletions is None:
        return ""
    return f"+{additions or 0:,}/-{deletions or 0:,}"


def _one_line(text: str, limit: int = _LINE_CHARS) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _plain(text: str, limit: int = _LINE_CHARS) -> str:
    """Untrusted plain text on one line, shortened, as Markdown that shows it literally."""
    return escape_markdown_text(_one_line(text, limit))


def _code(text: str) -> str:
    """Text as an inline code span (a backtick inside would end the span early)."""
    return "`" + text.replace("`", "'") + "`"


def _dir_of(filename: str) -> str:
    parts = filename.split("/")[:-1]
    if not parts:
        return "（根目录）"
    if parts[0] in _SUPPORT_DIRS:
        return parts[0]
    if parts[0] in _CONTAINER_DIRS or len(parts) >= 2:
        return "/".join(parts[:2])
    return parts[0]


def _path_area(pull: PullRequest, commits: Sequence[Commit]) -> str | None:
    """The folder with the most changed lines among the commits of `pull`."""
    churn: dict[str, int] = {}
    for commit in commits:
        if commit.pull_number != pull.number:
            continue
        for change in commit.files:
            key = _dir_of(change.filename)
            weight = change.additions + change.deletions + 1
            # Tests and docs follow the change; the code they accompany names the area.
            if key.split("/")[0] in _SUPPORT_DIRS:
                weight = 1
            churn[key] = churn.get(key, 0) + weight
    if not churn:
        return None
    return max(churn.items(), key=lambda item: item[1])[0]


def area_of(pull: PullRequest, commits: Sequence[Commit]) -> _Area:
    """The area of a merged PR: its title tag, a label, its changed folders, or its title type."""
    tag = _TITLE_TAG.match(pull.title)
    if tag:
        name = tag["tag"].strip()
        return _Area(name.lower().replace(" ", ""), _plain(name), tag.group(0))
    conventional = _CONVENTIONAL.match(pull.title)
    if conventional and conventional["scope"]:
        scope = conventional["scope"].strip()
        return _Area(scope.lower(), _plain(scope), "")
    labels = [label.strip() for label in pull.labels if label.strip()]
    for label in labels:
        if label.lower() not in _NOISE_LABELS and label.lower() not in _KIND_LABELS:
            return _Area(label.lower(), _plain(label), "")
    folder = _path_area(pull, commits)
    if folder is not None:
        return _Area("path:" + folder, _code(folder), "")
    # No area known: group by the kind of change (a kind label, or the conventional type).
    kinds = [_KIND_LABELS[label.lower()] for label in labels if label.lower() in _KIND_LABELS]
    if conventional:
        kinds.append(_CONVENTIONAL_TYPES.get(conventional["type"].lower(), ""))
    for kind in kinds:
        if kind:
            return _Area(kind.lower(), kind, "")
    return _Area("", OTHER_AREA, "")


def news_points(commits: Sequence[Commit], limit: int = MAX_RELEASE_LINES) -> list[str]:
    """The top-level entries the commits add to changelogs/READMEs, once each, as plain text."""
    points: list[str] = []
    seen: set[str] = set()
    for commit in commits:
        news = [f for f in commit.files if is_news(f.filename) and f.patch]
        news.sort(key=lambda f: value_order(f.filename, f.additions + f.deletions))
        for change in news:
            for line in added_lines(change.patch):
                # Nested entries (deeper indentation) detail the ones above them.
                if len(line) - len(line.lstrip()) >= 4:
                    continue
                text = re.sub(r"^[-*+#>\s]+", "", line).strip()
                key = text.lower()
                if not text or set(text) <= set("-=*_|:") or key in seen:
                    continue
                seen.add(key)
                points.append(text)
                if len(points) == limit:
                    return points
    return points


def _point_lines(points: Sequence[str], indent: str) -> list[str]:
    return [f"{indent}- {_plain(point)}" for point in points]


def _pull_line(pull: PullRequest, prefix: str = "") -> str:
    title = pull.title[len(prefix) :] if prefix and pull.title.startswith(prefix) else pull.title
    author = _plain(pull.author) if pull.author else ""
    details = [part for part in (_size(pull.additions, pull.deletions), author) if part]
    extra = f"（{'，'.join(details)}）" if details else ""
    return f"[#{pull.number}]({pull.url}) {_plain(title)}{extra}"


def _release_lines(release: Release) -> list[str]:
    name = release.name.strip()
    title = name if name and name != release.tag_name else ""
    tag = escape_markdown_text(release.tag_name)
    head = f"- [{tag}]({release.url})" + (f" {_plain(title)}" if title else "")
    if release.prerelease:
        head += "（预发布）"
    lines = [head]
    kept = 0
    # The notes are Markdown: kept as such (one list item per line, so nothing spills over).
    for raw in release.body.splitlines():
        text = raw.strip().lstrip("#>").strip()
        text = re.sub(r"^[-*+]\s+", "", text)
        if not text or set(text) <= set("-=*_|:"):
            continue
        if kept == MAX_RELEASE_LINES:
            lines.append("  - ……（完整说明见发布页）")
            break
        lines.append(f"  - {_one_line(text)}")
        kept += 1
    return lines


def _merged_lines(activity: RepoActivity) -> list[str]:
    groups: dict[str, tuple[_Area, list[PullRequest]]] = {}
    for pull in activity.merged_pulls:
        area = area_of(pull, activity.commits)
        groups.setdefault(area.key, (area, []))[1].append(pull)
    ordered = sorted(
        groups.values(), key=lambda group: (group[0].title == OTHER_AREA, -len(group[1]))
    )
    lines = [f"**已合并 PR（{len(activity.merged_pulls)} 个）**"]

    def points(pull: PullRequest, indent: str) -> list[str]:
        # A sync without a description says what it brings in its changelog.
        if clean_description(pull.body):
            return []
        mine = [c for c in activity.commits if c.pull_number == pull.number]
        return _point_lines(news_points(mine), indent)

    if len(ordered) == 1 and ordered[0][0].title == OTHER_AREA:
        for pull in ordered[0][1]:
            lines += [f"- {_pull_line(pull)}", *points(pull, "  ")]
        return lines
    for area, pulls in ordered:
        lines.append(f"- **{area.title}**")
        for pull in pulls:
            lines += [f"  - {_pull_line(pull, area.prefix)}", *points(pull, "    ")]
    return lines


def _commit_points(commit: Commit) -> str:
    """Changelog points of a commit whose message has no description (a sync, a version bump)."""
    body = commit.message.split("\n", 1)[1] if "\n" in commit.message else ""
    if clean_description(body):
        return ""
    return "".join("\n" + line for line in _point_lines(news_points([commit]), "  "))


def _capped(title: str, entries: Sequence[str], noun: str) -> list[str]:
    lines = [f"**{title}（{len(entries)} 个）**"]
    lines += [f"- {entry}" for entry in entries[:MAX_LISTED]]
    if len(entries) > MAX_LISTED:
        lines.append(f"- 另有 {len(entries) - MAX_LISTED} 个{noun}未列出。")
    return lines


def _totals_line(activity: RepoActivity) -> str:
    totals = activity.totals
    return (
        f"**当日统计**：{totals.commits} 个 commit，"
        f"+{totals.additions:,}/-{totals.deletions:,} 行，"
        f"涉及 {totals.files_changed} 个文件；{len(activity.releases)} 个 release，"
        f"{len(activity.merged_pulls)} 个合并 PR，{len(activity.opened_pulls)} 个新 PR，"
        f"{len(activity.opened_issues)} 个新 issue。"
    )


def structured_section(activity: RepoActivity) -> str:
    """One repository-day in Chinese Markdown from the data alone (no model), every item linked."""
    if activity.error is not None:
        return ERROR_TEXT
    if activity.is_empty:
        return NO_UPDATES
    blocks: list[list[str]] = []
    if activity.releases:
        release_lines = [f"**版本发布（{len(activity.releases)} 个）**"]
        for release in activity.releases:
            release_lines += _release_lines(release)
            if not clean_description(release.body):
                release_lines += _point_lines(news_points(activity.commits), "  ")
        blocks.append(release_lines)
    if activity.merged_pulls:
        blocks.append(_merged_lines(activity))
    covered = {pull.number for pull in activity.merged_pulls}
    loose = [c for c in activity.commits if c.pull_number is None or c.pull_number not in covered]
    if loose:
        entries = [
            f"[{c.sha[:7]}]({c.url}) {_plain(c.title)}"
            + (f"（{_size(c.additions, c.deletions)}）" if c.additions is not None else "")
            + _commit_points(c)
            for c in loose
        ]
        blocks.append(_capped("其他 commit", entries, " commit"))
    if activity.opened_pulls:
        entries = [_pull_line(pull) for pull in activity.opened_pulls]
        blocks.append(_capped("新开 PR", entries, " PR"))
    if activity.opened_issues:
        entries = [
            f"[#{issue.number}]({issue.url}) {_plain(issue.title)}"
            for issue in activity.opened_issues
        ]
        blocks.append(_capped("新 issue", entries, " issue"))
    blocks.append([_totals_line(activity)])
    return "\n\n".join("\n".join(block) for block in blocks)


def _biggest_pulls(activities: Sequence[RepoActivity], count: int = 3) -> list[str]:
    sized = [
        (activity.repo, pull)
        for activity in activities
        for pull in activity.merged_pulls
        if pull.additions is not None or pull.deletions is not None
    ]
    sized.sort(key=lambda item: (item[1].additions or 0) + (item[1].deletions or 0), reverse=True)
    return [
        f"[{escape_markdown_text(repo)}#{pull.number}]({pull.url}) {_plain(pull.title, 80)}"
        f"（{_size(pull.additions, pull.deletions)}）"
        for repo, pull in sized[:count]
    ]


def structured_summary(
    sections: Sequence[Section], activities: Sequence[RepoActivity]
) -> tuple[str, str]:
    """The overall summary and conclusion from counts, releases and the biggest changes."""
    included = {section.repo.lower() for section in sections}
    chosen = [a for a in activities if not included or a.repo.lower() in included]
    active = [a for a in chosen if a.error is None and not a.is_empty]
    failed = [a.repo for a in chosen if a.error is not None]
    quiet = [a.repo for a in chosen if a.error is None and a.is_empty]
    if not active:
        summary = f"本期跟踪的 {len(chosen)} 个仓库当天都没有可报道的更新。"
    else:
        releases = sum(len(a.releases) for a in active)
        merged = sum(len(a.merged_pulls) for a in active)
        opened = sum(len(a.opened_pulls) for a in active)
        issues = sum(len(a.opened_issues) for a in active)
        commits = sum(a.totals.commits for a in active)
        additions = sum(a.totals.additions for a in active)
        deletions = sum(a.totals.deletions for a in active)
        parts = [
            f"本期 {len(chosen)} 个仓库中有 {len(active)} 个有更新："
            f"{releases} 个 release，{merged} 个合并 PR，{opened} 个新 PR，{issues} 个新 issue，"
            f"共 {commits} 个 commit（+{additions:,}/-{deletions:,} 行）。"
        ]
        tagged = [
            f"[{escape_markdown_text(f'{a.repo} {r.tag_name}')}]({r.url})"
            for a in active
            for r in a.releases
        ]
        if tagged:
            parts.append("版本发布：" + "、".join(tagged) + "。")
        biggest = _biggest_pulls(active)
        if biggest:
            parts.append("改动最大的合并 PR：" + "、".join(biggest) + "。")
        summary = "".join(parts)
    notes: list[str] = []
    busy = sorted(
        (a for a in active if a.opened_issues), key=lambda a: len(a.opened_issues), reverse=True
    )
    if busy:
        listed = "、".join(
            f"{escape_markdown_text(a.repo)}（{len(a.opened_issues)} 个）" for a in busy[:4]
        )
        notes.append(f"新 issue 集中在 {listed}，可留意其中的回归与兼容性报告。")
    if failed:
        notes.append("以下仓库的数据未能获取：" + _repo_list(failed) + "。")
    if quiet:
        notes.append("以下仓库当天没有更新：" + _repo_list(quiet) + "。")
    if not notes:
        notes.append("当天没有需要特别关注的风险信息。")
    return summary, "".join(notes)


def _repo_list(repos: Sequence[str]) -> str:
    # Tracked names can be added by any chat (/subscribe owner/name): `_` may sit at a word edge.
    return "、".join(escape_markdown_text(repo) for repo in repos)
