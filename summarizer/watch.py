"""Keyword watches: which of a day's PRs, issues, commits and releases mention a chat's words.

Pure functions over `DayActivity`. A word matches case-insensitively in an item's title, labels
or body (a commit's message, a release's tag, name and notes). Words of up to three letters and
digits (`FP8`, `MoE`, `RL`) must stand as a token of their own — between non-alphanumerics or at
a CamelCase step, so `fp8_gemm`, `W8A8-FP8` and `FusedMoE` match but `URL` does not match `RL`;
longer words and words with other characters match anywhere (`Blackwell` in `Blackwell-only`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

from collectors.activity import Commit, DayActivity, Issue, PullRequest, Release, RepoActivity
from summarizer.digest import Digest, Section
from summarizer.guard import GITHUB, clean_model_markdown, escape_markdown_text

MAX_WATCHES = 20
MAX_WORD_CHARS = 64
# Hits listed in the digest's section; the rest are counted (a broad word must not flood it).
MAX_LISTED = 40
SECTION_TITLE = "关注"
_TITLE_CHARS = 120

Kind = Literal["pr", "issue", "commit", "release"]
Field = Literal["title", "label", "body"]

_KIND_NAMES: dict[Kind, str] = {
    "pr": "PR",
    "issue": "issue",
    "commit": "commit",
    "release": "release",
}
_FIELD_NAMES: dict[Field, str] = {"title": "标题", "label": "标签", "body": "正文"}
_SHORT = re.compile(r"[A-Za-z0-9]{1,3}")
# Straight and typographic double quotes, and CJK corner brackets, group a phrase.
_TOKEN = re.compile(r'"([^"]*)"|“([^”]*)”|「([^」]*)」|(\S+)')
_QUOTES = '"“”「」'
_CONTROL = re.compile(r"[\x00-\x1f\x7f\u2028\u2029]")
# Each opening quote and the quote that closes it.
_PAIRS = {'"': '"', "“": "”", "「": "」"}


class WatchWordError(ValueError):
    """A watch word list that cannot be accepted; the message is one Chinese line."""


@dataclass(frozen=True)
class WatchHit:
    """One item of the day that mentions some watched words, and where it mentions them."""

    repo: str
    kind: Kind
    ref: str  # "#123", a short SHA, or a tag
    title: str
    url: str
    words: tuple[str, ...]  # as the chat wrote them, in the chat's order
    fields: tuple[Field, ...]  # where the first word matched … in title, label, body order


@dataclass(frozen=True)
class _Text:
    title: str
    labels: tuple[str, ...]
    body: str


def parse_words(text: str) -> list[str]:
    """Split `/watch` arguments into words: whitespace separates, double quotes group a phrase.

    Inner whitespace is collapsed, empty words dropped, repeats (any case) kept once. Raises
    WatchWordError for unbalanced quotes, or a word longer than MAX_WORD_CHARS, with control
    characters, or without a visible letter or digit (zero-width or punctuation only).
    """
    if not _balanced(text):
        raise WatchWordError('引号不成对：词组请用一对双引号括起来，例如 "MoE kernel"。')
    words: dict[str, str] = {}
    for match in _TOKEN.finditer(text):
        raw = next(group for group in match.groups() if group is not None)
        word = " ".join(raw.strip(_QUOTES).split())
        if not word:
            continue
        if _CONTROL.search(word):
            raise WatchWordError("关注词不能包含控制字符。")
        if len(word) > MAX_WORD_CHARS:
            raise WatchWordError(
                f"关注词过长（{len(word)} 个字符），每个词最多 {MAX_WORD_CHARS} 个字符。"
            )
        if not any(char.isalnum() for char in word):
            raise WatchWordError("关注词至少要包含一个看得见的字母、汉字或数字。")
        words.setdefault(word.casefold(), word)
    return list(words.values())


def _balanced(text: str) -> bool:
    """True when every quote that opens a phrase is closed, and none closes what never opened."""
    closing: str | None = None
    for char in text:
        if closing is not None:
            if char == closing:
                closing = None
        elif char in _PAIRS:
            closing = _PAIRS[char]
        elif char in "”」":
            return False
    return closing is None


def _pattern(word: str) -> re.Pattern[str]:
    escaped = r"\s+".join(re.escape(part) for part in word.split())  # any spacing in a phrase
    if not _SHORT.fullmatch(word):
        return re.compile(escaped, re.IGNORECASE)
    # A token of its own: not glued to letters/digits, except at a lower→UPPER CamelCase step.
    before = r"(?:(?<![A-Za-z0-9])|(?<=[a-z])(?=[A-Z]))"
    after = r"(?:(?![A-Za-z0-9])|(?<=[a-z0-9])(?=[A-Z]))"
    return re.compile(before + "(?i:" + escaped + ")" + after)


def mentions(word: str, text: str) -> bool:
    """True when `word` occurs in `text` by the rules of this module."""
    return _pattern(word).search(text) is not None


class _Matcher:
    def __init__(self, words: Sequence[str]) -> None:
        self.words = [w for w in dict.fromkeys(words) if w.strip()]
        self._patterns = [(word, _pattern(word)) for word in self.words]

    def match(self, text: _Text) -> tuple[tuple[str, ...], tuple[Field, ...]]:
        found: list[str] = []
        where: list[Field] = []
        for word, pattern in self._patterns:
            places: list[Field] = []
            if pattern.search(text.title):
                places.append("title")
            if any(pattern.search(label) for label in text.labels):
                places.append("label")
            if pattern.search(text.body):
                places.append("body")
            if places:
                found.append(word)
                where.extend(p for p in places if p not in where)
        return tuple(found), tuple(where)


def _pull_text(pull: PullRequest) -> _Text:
    return _Text(pull.title, tuple(pull.labels), pull.body)


def _issue_text(issue: Issue) -> _Text:
    return _Text(issue.title, tuple(issue.labels), issue.body)


def _commit_text(commit: Commit) -> _Text:
    body = commit.message.split("\n", 1)[1] if "\n" in commit.message else ""
    return _Text(commit.title, (), body)


def _release_text(release: Release) -> _Text:
    title = release.tag_name if release.name in ("", release.tag_name) else release.name
    return _Text(f"{release.tag_name} {title}", (), release.body)


def match_watches(activity: DayActivity, words: Sequence[str]) -> list[WatchHit]:
    """Every release, PR, issue and commit of the day that mentions any of `words`.

    Repositories in the day's order; within one: releases, PRs (merged, then opened; each PR
    once), issues, then commits not belonging to a PR already listed.
    """
    matcher = _Matcher(words)
    if not matcher.words:
        return []
    hits: list[WatchHit] = []
    for repo in activity.repos:
        if repo.error is None:
            hits += _repo_hits(matcher, repo)
    return hits


def _repo_hits(matcher: _Matcher, repo: RepoActivity) -> list[WatchHit]:
    hits: list[WatchHit] = []

    def add(kind: Kind, ref: str, title: str, url: str, text: _Text) -> bool:
        found, where = matcher.match(text)
        if found:
            hits.append(WatchHit(repo.repo, kind, ref, title, url, found, where))
        return bool(found)

    for release in repo.releases:
        add("release", release.tag_name, release.name, release.url, _release_text(release))
    listed: set[int] = set()
    seen: set[int] = set()
    for pull in [*repo.merged_pulls, *repo.opened_pulls]:
        if pull.number in seen:
            continue
        seen.add(pull.number)
        if add("pr", f"#{pull.number}", pull.title, pull.url, _pull_text(pull)):
            listed.add(pull.number)
    for issue in repo.opened_issues:
        add("issue", f"#{issue.number}", issue.title, issue.url, _issue_text(issue))
    for commit in repo.commits:
        if commit.pull_number is not None and commit.pull_number in listed:
            continue  # its PR is listed already
        add("commit", commit.sha[:7], commit.title, commit.url, _commit_text(commit))
    return hits


def _one_line(text: str, limit: int = _TITLE_CHARS) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _shown(word: str) -> str:
    """A watch word as inline code (backticks inside would end the span early)."""
    return "`" + word.replace("`", "'") + "`"


def _hit_line(hit: WatchHit) -> str:
    # Repository, tag and title are plain text from GitHub: escaped so that they read literally.
    label = escape_markdown_text(f"{hit.repo} {_KIND_NAMES[hit.kind]} {hit.ref}")
    parts = [f"- [{label}]({hit.url})"]
    if hit.title and hit.title != hit.ref:
        parts.append(escape_markdown_text(_one_line(hit.title)))
    words = "、".join(_shown(word) for word in hit.words)
    places = "、".join(_FIELD_NAMES[field] for field in hit.fields)
    parts.append(f"— 匹配 {words}（{places}）")
    return " ".join(parts)


def watch_section(hits: Sequence[WatchHit], words: Sequence[str]) -> str:
    """The Markdown of the `### 关注` section (without its heading), titles made safe."""
    listed = "、".join(_shown(word) for word in words)
    if not hits:
        return f"关注词 {listed} 今天没有匹配的动态。"
    lines = [f"关注词 {listed}：今天有 {len(hits)} 条匹配。"]
    lines += [_hit_line(hit) for hit in hits[:MAX_LISTED]]
    if len(hits) > MAX_LISTED:
        lines.append(f"- 另有 {len(hits) - MAX_LISTED} 条匹配未列出。")
    allowed = {hit.url for hit in hits} | {f"{GITHUB}/{hit.repo}" for hit in hits}
    # Titles and labels are written by anyone on GitHub: the same guard as any model text.
    return clean_model_markdown("\n".join(lines), allowed)


def with_watch_section(digest: Digest, activity: DayActivity, words: Iterable[str]) -> Digest:
    """`digest` plus a `### 关注` section after the repositories (unchanged without words)."""
    chosen = list(dict.fromkeys(words))
    if not chosen:
        return digest
    text = watch_section(match_watches(activity, chosen), chosen)
    section = Section(repo=SECTION_TITLE, markdown=text, written_by="structured")
    return digest.model_copy(update={"sections": [*digest.sections, section]})
