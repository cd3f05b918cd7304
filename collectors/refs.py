"""References to issues and pull requests inside text GitHub users wrote (bodies, commit messages).

One extraction for everyone: the prompt shows the titles of linked issues (summarizer/prompts),
the guard allows links to numbers the day's data itself mentions (summarizer/guard), and both must
agree on what "mentioned" means. Recognised: `#123`, `Fixes #123` / `closes #1` / `resolves #9`,
`owner/name#123` and full URLs `https://github.com/owner/name/issues/123` or `.../pull/123` — only
those of the same repository count. Text inside code (backticks, fences) is not read.
"""

from __future__ import annotations

import re
from collections.abc import Callable

_FENCE = re.compile(r"```.*?(?:```|\Z)", re.DOTALL)
_INLINE_CODE = re.compile(r"`[^`\n]*`")
# `#123` not preceded by a word character or `&` (HTML entities such as `&#123;`) nor by `/`.
_SHORT = re.compile(r"(?<![\w&/#])#(\d{1,9})\b")
_QUALIFIED = re.compile(r"(?<![\w/.-])([A-Za-z0-9][\w.-]*/[\w.-]+)#(\d{1,9})\b")
_URL = re.compile(
    r"https?://(?:www\.)?github\.com/([A-Za-z0-9][\w.-]*/[\w.-]+)/(?:issues|pull)/(\d{1,9})\b",
    re.IGNORECASE,
)
# Keywords GitHub itself treats as closing an issue.
_CLOSING = re.compile(
    r"\b(?:close[sd]?|fix(?:e[sd])?|resolve[sd]?)\s*:?\s+"
    r"(?:(?:https?://(?:www\.)?github\.com/[\w.-]+/[\w.-]+/(?:issues|pull)/)|"
    r"(?:[\w.-]+/[\w.-]+)?#)(\d{1,9})\b",
    re.IGNORECASE,
)


def _prose(text: str) -> str:
    return _INLINE_CODE.sub(" ", _FENCE.sub(" ", text))


def issue_refs(text: str, repo: str) -> list[int]:
    """Numbers of issues/PRs of `repo` (owner/name) that `text` mentions, in order, once each."""
    prose = _prose(text)
    repo_key = repo.lower()
    found: list[tuple[int, int]] = []  # (position, number)
    found.extend((m.start(), int(m[1])) for m in _SHORT.finditer(prose))
    found.extend(
        (m.start(), int(m[2])) for m in _QUALIFIED.finditer(prose) if m[1].lower() == repo_key
    )
    found.extend((m.start(), int(m[2])) for m in _URL.finditer(prose) if m[1].lower() == repo_key)
    seen: set[int] = set()
    numbers: list[int] = []
    for _, number in sorted(found):
        if number > 0 and number not in seen:
            seen.add(number)
            numbers.append(number)
    return numbers


def closing_refs(text: str) -> list[int]:
    """Numbers after a closing keyword (`Fixes #12`, `closes https://…/issues/3`), in order."""
    seen: set[int] = set()
    numbers: list[int] = []
    for match in _CLOSING.finditer(_prose(text)):
        number = int(match[1])
        if number > 0 and number not in seen:
            seen.add(number)
            numbers.append(number)
    return numbers


def link_short_refs(text: str, url_for: Callable[[int], str | None]) -> str:
    """Turn each bare `#N` of `text` into `[#N](url)` where `url_for(N)` gives a URL.

    The caller passes prose only (no code, no existing links): this rewrites, it does not skip.
    """

    def link(match: re.Match[str]) -> str:
        url = url_for(int(match[1]))
        return f"[{match[0]}]({url})" if url else match[0]

    return _SHORT.sub(link, text)


def issue_url(repo: str, number: int) -> str:
    """The canonical link of issue or PR `number` (GitHub redirects `issues/N` to a PR's page)."""
    return f"https://github.com/{repo}/issues/{number}"
