"""Guards applied to every text a model (or a GitHub user) wrote before readers see it.

Grounding: a link survives only when it points at something in the collected activity; the
rest keep their text and lose the link. Mentions can never ping (`@everyone`, `@here`,
`@user`, Discord `<@123>` / `<@&123>`): a zero-width space goes after the `@`. Raw HTML is
stripped, headings become bold (a section lives under the digest's own `###`), and a whole
answer wrapped in a code fence is unwrapped. Also: tolerant JSON parsing and `looks_chinese`.

Plain text that our own code puts into Markdown (titles, labels, release names, logins, repository
names) goes through `escape_markdown_text` first, so that it reads literally; the guard treats a
backslash-escaped character as text, never as the start of a tag, link or URL.
"""

from __future__ import annotations

import json
import re
import string
from collections.abc import Callable
from typing import Any

from collectors.activity import RepoActivity
from collectors.refs import issue_refs, issue_url, link_short_refs

GITHUB = "https://github.com"
ZWSP = "\u200b"

# ---------------------------------------------------------------- escaping plain text

# Characters that start or end formatting wherever they stand, in at least one of the readers'
# renderers: code, emphasis, strikethrough (`~`), links, footnotes (`[^1]`), HTML and autolinks
# (`<`), Discord spoilers (`||`), Telegram's inline math (`$x$`), and the backslash itself.
# `_` only where it can open or close emphasis, i.e. not inside a word (`fp8_gemm` stays
# readable); `&` only where it starts a character reference (`&#64;` would render as `@`).
# Parentheses and `!` need no escape: with `[` escaped they can never form a link or image.
_INLINE_SPECIAL = re.compile(
    r"[\\`*\[\]<>|~$]|(?<![A-Za-z0-9])_|_(?![A-Za-z0-9])|&(?=#?[A-Za-z0-9]{1,32};)"
)
# Indentation never shows in a paragraph, but four spaces would start a code block: dropped.
_LINE_INDENT = re.compile(r"^[ \t]+", re.MULTILINE)
# What starts a block at the beginning of a line: headings, list items (`-`, `+`, `1.`, `1)`),
# setext underlines (`===`) and Discord's `-#` subtext.
_LINE_START_SPECIAL = re.compile(r"^([#+=-])", re.MULTILINE)
_LINE_START_NUMBER = re.compile(r"^([0-9]{1,9})([.)])", re.MULTILINE)


def escape_markdown_text(text: str) -> str:
    """Plain text (a title, label, name) → Markdown that shows exactly that text, unformatted.

    Backslash-escapes only what can start or end formatting (CommonMark, Telegram's converter,
    Discord, the web page), so the Markdown stays readable; a line's leading indentation (which
    readers never see) is dropped. Meant for one line of text. Mentions are left to the guard
    (`neutralise_mentions`), links to our own code: never use this inside a link's URL.
    """
    text = _INLINE_SPECIAL.sub(lambda match: "\\" + match.group(0), text)
    text = _LINE_INDENT.sub("", text)
    text = _LINE_START_SPECIAL.sub(r"\\\1", text)
    return _LINE_START_NUMBER.sub(r"\1\\\2", text)


# While the guard works, each backslash escape is held as one Unicode noncharacter (never valid
# in interchange text, and exactly 32 of them for the 32 ASCII punctuation characters), so that
# no rule below mistakes an escaped `<`, `[` or backtick for a tag, a link or a code span.
_PUNCTUATION = string.punctuation  # the 32 ASCII punctuation characters, in order
_HELD_BASE = 0xFDD0
_HELD_CHARS = "\ufdd0-\ufdef"
_HELD = re.compile(f"[{_HELD_CHARS}]")
_ESCAPE_PAIR = re.compile(r"\\([!-/:-@\[-`{-~])")


def _hold_escapes(text: str) -> str:
    text = _HELD.sub("", text)
    return _ESCAPE_PAIR.sub(lambda m: chr(_HELD_BASE + _PUNCTUATION.index(m[1])), text)


def _release_escapes(text: str) -> str:
    return _HELD.sub(lambda m: "\\" + _PUNCTUATION[ord(m[0]) - _HELD_BASE], text)


# ---------------------------------------------------------------- links and grounding

# A Markdown inline link or image: [text](url) / [text](url "title") / ![alt](url).
# The text may hold one level of nested brackets (e.g. "[[Kernel] fix](url)").
_MD_LINK = re.compile(
    r"(?P<bang>!?)\[(?P<text>(?:[^\[\]]|\[[^\[\]]*\])*)\]"
    r"\(\s*<?(?P<url>[^\s()<>]*(?:\([^\s()<>]*\)[^\s()<>]*)*)>?(?:\s+(?:\"[^\"]*\"|'[^']*'))?\s*\)"
)
# <https://…> autolinks, and bare URLs (what chat apps turn into links on their own).
_AUTOLINK = re.compile(r"<(?P<url>[a-zA-Z][a-zA-Z0-9+.-]*:[^\s<>]+)>")
# A URL never ends in an escaped character (held, see above): `\)` after a URL closes the text.
_BARE_URL = re.compile(
    r"(?<![A-Za-z0-9+.\-])(?P<url>(?:https?|ftp|tg|mailto|javascript|file|data):[^\s<>\[\]()\"'`]*"
    rf"[^\s<>\[\]()\"'`.,;:!?，。；：！？）】」』{_HELD_CHARS}])",
    re.IGNORECASE,
)
_WWW = re.compile(
    rf"(?<![\w/.@])(?P<url>www\.[^\s<>\[\]()\"'`]+[^\s<>\[\]()\"'`.,;:!?，。{_HELD_CHARS}])"
)
# [label]: url   (reference-style link definitions)
_REF_DEF = re.compile(r"^[ \t]{0,3}\[[^\]]+\]:\s*\S+.*$", re.MULTILINE)
# [text][label] references whose definitions were removed: keep the text.
_REF_USE = re.compile(r"\[(?P<text>[^\[\]]+)\]\[[^\[\]]*\]")

# What is left of a link whose URL was removed: [text]()
_EMPTY_LINK = re.compile(r"!?\[(?P<text>[^\[\]]*)\]\(\s*\)")

_GH_REPO = re.compile(r"^https://github\.com/(?P<repo>[^/]+/[^/]+)$", re.IGNORECASE)
_GH_ITEM = re.compile(
    r"^https://github\.com/(?P<repo>[^/]+/[^/]+)/(?P<kind>pull|issues|commit|releases/tag)/"
    r"(?P<ref>[^/?#]+)$",
    re.IGNORECASE,
)


def _normalise_url(url: str) -> str:
    """Compare URLs without fragment, query, trailing slash or case of scheme and host."""
    url = url.strip().split("#", 1)[0].split("?", 1)[0].rstrip("/")
    match = re.match(r"^(https?)://([^/]+)(.*)$", url, re.IGNORECASE)
    if not match:
        return url
    scheme, host, rest = match.groups()
    return f"{scheme.lower()}://{host.lower()}{rest}"


def mentioned_numbers(activity: RepoActivity) -> set[int]:
    """Issue/PR numbers the day's own data mentions (`Fixes #2357` in a PR body or commit)."""
    texts: list[str] = [release.body for release in activity.releases]
    texts += [pull.body for pull in (*activity.merged_pulls, *activity.opened_pulls)]
    texts += [issue.body for issue in activity.opened_issues]
    texts += [commit.message for commit in activity.commits]
    found = {number for text in texts if text for number in issue_refs(text, activity.repo)}
    return found | {linked.number for linked in activity.linked_issues}


def allowed_links(activity: RepoActivity) -> set[str]:
    """URLs of the activity's releases, PRs, issues and commits, plus the repository's own URL.

    Issues and PRs that the day's data mentions count too, as `…/issues/N` (GitHub redirects
    to the PR when N is one).
    """
    urls = {f"{GITHUB}/{activity.repo}"}
    urls.update(issue_url(activity.repo, number) for number in mentioned_numbers(activity))
    urls.update(release.url for release in activity.releases)
    urls.update(pull.url for pull in activity.merged_pulls)
    urls.update(pull.url for pull in activity.opened_pulls)
    urls.update(issue.url for issue in activity.opened_issues)
    urls.update(commit.url for commit in activity.commits)
    urls.update(linked.url for linked in activity.linked_issues)
    return {_normalise_url(url) for url in urls if url}


class _Grounding:
    """Decides whether a URL is grounded, and gives its canonical form when it is."""

    def __init__(self, allowed: set[str]) -> None:
        self._exact: dict[str, str] = {}
        # (repo, number) → canonical URL: a PR written as /issues/N (GitHub redirects) still counts.
        self._numbers: dict[tuple[str, str], str] = {}
        self._commits: list[tuple[str, str, str]] = []  # (repo, full sha, canonical URL)
        self._repos: dict[str, str] = {}  # lower-case owner/name → as spelled in the data
        for url in allowed:
            norm = _normalise_url(url)
            self._exact[norm.lower()] = norm
            match = _GH_ITEM.match(norm)
            if not match:
                continue
            repo, kind, ref = match["repo"].lower(), match["kind"].lower(), match["ref"]
            self._repos.setdefault(repo, match["repo"])
            if kind == "pull":
                self._numbers[(repo, ref)] = norm  # the PR's own page beats a mention's /issues/N
            elif kind == "issues":
                self._numbers.setdefault((repo, ref), norm)
            elif kind == "commit":
                self._commits.append((repo, ref.lower(), norm))
        for norm in self._exact.values():
            home = _GH_REPO.match(norm)
            if home:
                self._repos.setdefault(home["repo"].lower(), home["repo"])

    def canonical(self, url: str) -> str | None:
        """The allowed URL that `url` denotes, or None when it is not grounded."""
        norm = _normalise_url(url)
        if not re.match(r"^https?://", norm, re.IGNORECASE):
            return None
        found = self._exact.get(norm.lower())
        if found is not None:
            return found
        match = _GH_ITEM.match(norm)
        if not match:
            return None
        repo, kind, ref = match["repo"].lower(), match["kind"].lower(), match["ref"]
        if kind in ("pull", "issues"):
            return self._numbers.get((repo, ref))
        if kind == "commit" and len(ref) >= 7 and re.fullmatch(r"[0-9a-fA-F]+", ref):
            # Models like short SHAs; accept a unique prefix of a collected commit.
            hits = [c for r, sha, c in self._commits if r == repo and sha.startswith(ref.lower())]
            return hits[0] if len(hits) == 1 else None
        return None

    @property
    def repos(self) -> list[str]:
        """The repositories (owner/name) the allowed URLs belong to."""
        return list(self._repos.values())

    def cites_github_item(self, url: str) -> bool:
        """True when `url` points at a GitHub PR, issue, commit or release page."""
        return _GH_ITEM.match(_normalise_url(url)) is not None

    def number(self, repo: str, number: int) -> str | None:
        """The canonical URL of issue/PR `number` of `repo` when the data has or mentions it."""
        return self._numbers.get((repo.lower(), str(number)))

    def short_ref(self, number: int) -> tuple[bool, str | None]:
        """(grounded, link) for a bare `#N`: grounded in any repository, linked when in one only."""
        urls = {self._numbers[key] for key in self._numbers if key[1] == str(number)}
        return bool(urls), (next(iter(urls)) if len(urls) == 1 else None)

    def sha(self, ref: str) -> bool:
        """True when `ref` is a prefix of a collected commit's SHA."""
        ref = ref.lower()
        return any(sha.startswith(ref) for _, sha, _ in self._commits)


def _strip_bare_urls(text: str, grounding: _Grounding) -> str:
    def bare(match: re.Match[str]) -> str:
        url = match["url"]
        return url if grounding.canonical(url) is not None else ""

    text = _AUTOLINK.sub(lambda m: bare(m) and f"<{m['url']}>", text)
    text = _BARE_URL.sub(bare, text)
    return _WWW.sub(lambda m: "", text)


def ground_links(text: str, allowed: set[str], *, link_refs: bool = False) -> str:
    """Keep links to allowed URLs (canonicalised); others lose the link but keep their text.

    With `link_refs`, a bare `#N` the data has or mentions becomes a link too.
    """
    grounding = _Grounding(allowed)
    kept: list[str] = []

    def link(match: re.Match[str]) -> str:
        label = _strip_bare_urls(match["text"], grounding).strip()
        if match["bang"]:  # images never reach chats; their alt text may
            return label
        url = grounding.canonical(match["url"])
        if url is None or not label:
            return label
        kept.append(f"[{label}]({url})")
        return f"\x00{len(kept) - 1}\x00"

    text = _REF_DEF.sub("", text)
    text = _REF_USE.sub(lambda m: m["text"], text)
    text = _MD_LINK.sub(link, text.replace("\x00", ""))
    text = _strip_bare_urls(text, grounding)
    text = _EMPTY_LINK.sub(lambda m: m["text"], text)
    if link_refs:  # in prose only: `#1` in code is code
        text = _outside_code(text, lambda prose: _link_bare_refs(prose, grounding))
    return re.sub(r"\x00(\d+)\x00", lambda m: kept[int(m[1])], text)


# ---------------------------------------------------------------- grounding by claim

# A list item (`-`, `*`, `+`, `1.`, `1)`) and its indentation.
_LIST_ITEM = re.compile(r"^(?P<indent>[ \t]*)(?:[-*+]|[0-9]{1,9}[.)])[ \t]+")
# Sentence ends: Chinese full stops, !/?, and `.`/`;` followed by a space.
_SENTENCE_END = re.compile(r"(?<=[。！？!?；])|(?<=[.;])(?=[ \t])")
# A bare commit SHA in prose: 7-40 hex characters with at least one digit and one letter.
_BARE_SHA = re.compile(r"(?<![\w/#.-])(?=[0-9a-f]*[0-9])(?=[0-9a-f]*[a-f])[0-9a-f]{7,40}(?![\w/-])")
# A repository name no real one can have: issue_refs then reports only the bare `#N` of a text.
_NO_REPO = "\x00/\x00"


def _urls_in(text: str) -> list[str]:
    urls = [m["url"] for m in _MD_LINK.finditer(text)]
    urls += [m["url"] for m in _AUTOLINK.finditer(text)]
    urls += [m["url"] for m in _BARE_URL.finditer(text)]
    return urls


def _without_urls(text: str) -> str:
    """The text readers see of `text`: link labels stay, URLs go (they are checked apart)."""
    text = _MD_LINK.sub(lambda m: f" {m['text']} ", text)
    text = _AUTOLINK.sub(" ", text)
    return _BARE_URL.sub(" ", text)


def _ungrounded_claim(text: str, grounding: _Grounding) -> bool:
    """True when `text` cites a PR, issue or commit that the day's data does not have."""
    for url in _urls_in(text):
        if grounding.cites_github_item(url) and grounding.canonical(url) is None:
            return True
    prose = _INLINE_CODE.sub(lambda m: m[0].strip("`"), text)
    shown = _without_urls(prose)
    if any(not grounding.short_ref(number)[0] for number in issue_refs(shown, _NO_REPO)):
        return True
    bare = set(issue_refs(shown, _NO_REPO))
    for repo in grounding.repos:
        for number in issue_refs(shown, repo):
            if number not in bare and grounding.number(repo, number) is None:
                return True
    return any(not grounding.sha(m[0]) for m in _BARE_SHA.finditer(shown))


def _drop_sentences(line: str, grounding: _Grounding) -> tuple[str, int]:
    sentences = [part for part in _SENTENCE_END.split(line) if part]
    kept = [part for part in sentences if not _ungrounded_claim(part, grounding)]
    if len(kept) == len(sentences):
        return line, 0
    return "".join(kept).strip(), len(sentences) - len(kept)


def _units(lines: list[str]) -> list[list[str]]:
    """Lines grouped as readers see them: a list item with its continuation lines, or a line."""
    units: list[list[str]] = []
    fence: str | None = None
    for line in lines:
        match = _FENCE_LINE.match(line)
        in_code = fence is not None or match is not None
        if fence is not None:
            if match and match[1][0] == fence[0] and len(match[1]) >= len(fence):
                fence = None
        elif match:
            fence = match[1]
        continues = (
            not in_code
            and units
            and line.strip()
            and units[-1][0].strip()
            and _LIST_ITEM.match(units[-1][0])
            and not _LIST_ITEM.match(line)
            and not _FENCE_LINE.match(units[-1][-1])
        )
        if continues:
            units[-1].append(line)
        else:
            units.append([line] if not in_code else ["\x02" + line])
    return units


def ground_claims(text: str, allowed: set[str]) -> tuple[str, int]:
    """Remove every bullet or sentence that cites a PR/issue number or commit SHA not in the data.

    A fabricated reference takes its whole claim with it, not just its link; bare `#N` that the
    data has (or mentions) become links. Returns the text and how many claims were removed.
    """
    grounding = _Grounding(allowed)
    out: list[str] = []
    removed = 0
    drop_deeper_than: int | None = None  # nested items of a removed item go with it
    for unit in _units(text.split("\n")):
        first = unit[0]
        if first.startswith("\x02"):  # code: never a claim of ours to judge
            out.append(first[1:])
            drop_deeper_than = None
            continue
        item = _LIST_ITEM.match(first)
        if drop_deeper_than is not None:
            if item and len(item["indent"].expandtabs(4)) > drop_deeper_than:
                continue
            drop_deeper_than = None
        joined = "\n".join(unit)
        if item:
            if _ungrounded_claim(joined, grounding):
                removed += 1
                drop_deeper_than = len(item["indent"].expandtabs(4))
                continue
            out.append(joined)
            continue
        kept, dropped = _drop_sentences(joined, grounding)
        removed += dropped
        if kept or not dropped:
            out.append(kept)
    return "\n".join(out), removed


def _link_bare_refs(text: str, grounding: _Grounding) -> str:
    """`#N` outside links → a link to its page when exactly one repository has or mentions N."""
    return link_short_refs(text, lambda number: grounding.short_ref(number)[1])


# ---------------------------------------------------------------- mentions

# @everyone / @here ping wherever they stand on Discord; break them unconditionally.
_MASS_MENTION = re.compile(r"@(?!\u200b)(?=(?:everyone|here|all|channel)\b)", re.IGNORECASE)
# @user (Telegram, Discord, Slack-like), <@123>, <@!123>, <@&123>: not after a Latin word
# character, so e-mail addresses stay as they are.
# An escaped underscore (`@\_name`) still shows as `@_name`.
_USER_MENTION = re.compile(r"(?<![A-Za-z0-9_.+\-])@(?!\u200b)(?=[\w!&]|\\_)")
# Character references for `@` (`&#64;`, `&#x40;`, `&commat;`): Telegram's converter and the web
# page show them as `@`. An escaped one (`\&#64;`) shows literally and is left alone.
_AT_REFERENCE = re.compile(r"(?<!\\)&(?:#0*64|#[xX]0*40|commat);")


def neutralise_mentions(text: str) -> str:
    """Make every @-mention inert by putting a zero-width space right after its `@`."""
    text = text.replace("\uff20", "@")  # a full-width @ is read as @ by some clients
    text = _AT_REFERENCE.sub("@", text)
    text = _MASS_MENTION.sub("@" + ZWSP, text)
    return _USER_MENTION.sub("@" + ZWSP, text)


# ---------------------------------------------------------------- HTML, headings, fences

_HTML_TAGS = (
    "a abbr address article aside audio b base bdi bdo big blink blockquote body br button "
    "canvas caption center cite code col colgroup data dd del details dfn dialog div dl dt em "
    "embed fieldset figcaption figure font footer form frame frameset h1 h2 h3 h4 h5 h6 head "
    "header hr html i iframe img input ins kbd label legend li link main map mark marquee meta "
    "meter nav noscript object ol optgroup option output p param picture pre progress q rp rt "
    "ruby s samp script section select small source span strike strong style sub summary sup "
    "svg table tbody td template textarea tfoot th thead time title tr track tt u ul var video "
    "wbr"
)
_DROP_WITH_CONTENT = re.compile(
    r"<(script|style|iframe|object|embed|template|svg)\b[^>]*>.*?</\1\s*>",
    re.IGNORECASE | re.DOTALL,
)
_HTML_COMMENT = re.compile(r"<!--.*?(?:-->|$)", re.DOTALL)
_BREAK = re.compile(r"<br\s*/?>", re.IGNORECASE)
_TAG = re.compile(
    r"</?(?:" + "|".join(_HTML_TAGS.split()) + r")\b(?:[^>\"']|\"[^\"]*\"|'[^']*')*/?>",
    re.IGNORECASE,
)
_FENCE_LINE = re.compile(r"^[ \t]*(`{3,}|~{3,})")
_INLINE_CODE = re.compile(r"(`+)(?:(?!\1).)+?\1")
_HEADING = re.compile(r"^[ \t]{0,3}(#{1,6})[ \t]+(?P<text>.*?)[ \t#]*$")
_WHOLE_FENCE = re.compile(
    r"^\s*(?P<fence>`{3,}|~{3,})[ \t]*(?:markdown|md|text|)[ \t]*\n"
    r"(?P<body>.*)\n[ \t]*(?P=fence)\s*$",
    re.IGNORECASE | re.DOTALL,
)


def strip_html(text: str) -> str:
    """Remove raw HTML tags and comments (keeping their text); `<br>` becomes a line break."""
    text = _DROP_WITH_CONTENT.sub("", text)
    text = _HTML_COMMENT.sub("", text)
    text = _BREAK.sub("\n", text)
    return _TAG.sub("", text)


def _outside_code(text: str, fix: Callable[[str], str]) -> str:
    """Apply `fix` to the prose of `text`, leaving fenced blocks and inline code untouched."""
    segments: list[tuple[bool, list[str]]] = []  # (is_code, lines)
    fence: str | None = None
    for line in text.split("\n"):
        match = _FENCE_LINE.match(line)
        is_code = fence is not None or match is not None
        if fence is not None:
            if match and match[1][0] == fence[0] and len(match[1]) >= len(fence):
                fence = None
        elif match:
            fence = match[1]
        if segments and segments[-1][0] == is_code:
            segments[-1][1].append(line)
        else:
            segments.append((is_code, [line]))
    out: list[str] = []
    for is_code, lines in segments:
        chunk = "\n".join(lines)
        if is_code:
            out.append(chunk)
            continue
        out.append(_outside_inline_code(chunk, fix))
    return "\n".join(out)


def _outside_inline_code(prose: str, fix: Callable[[str], str]) -> str:
    spans: list[str] = []

    def hold(match: re.Match[str]) -> str:
        spans.append(match.group(0))
        return f"\x01{len(spans) - 1}\x01"

    fixed = fix(_INLINE_CODE.sub(hold, prose.replace("\x01", "")))
    return re.sub(r"\x01(\d+)\x01", lambda m: spans[int(m[1])], fixed)


def downgrade_headings(text: str) -> str:
    """Turn Markdown headings into bold lines (the digest owns the heading levels)."""
    out: list[str] = []
    fence: str | None = None
    for line in text.split("\n"):
        match = _FENCE_LINE.match(line)
        if fence is not None:
            if match and match[1][0] == fence[0] and len(match[1]) >= len(fence):
                fence = None
            out.append(line)
            continue
        if match:
            fence = match[1]
            out.append(line)
            continue
        heading = _HEADING.match(line)
        if heading:
            title = heading["text"].strip().strip("*").strip()
            out.append(f"**{title}**" if title else "")
        else:
            out.append(line)
    return "\n".join(out)


def unwrap_fence(text: str) -> str:
    """A whole answer wrapped in one ```markdown fence → its content."""
    match = _WHOLE_FENCE.match(text)
    return match["body"] if match else text


def _close_open_fence(text: str) -> str:
    """A fence the model never closed would swallow the rest of the digest: close it."""
    fence: str | None = None
    for line in text.split("\n"):
        match = _FENCE_LINE.match(line)
        if not match:
            continue
        if fence is None:
            fence = match[1]
        elif match[1][0] == fence[0] and len(match[1]) >= len(fence):
            fence = None
    return text if fence is None else f"{text}\n{fence}"


def clean_model_markdown(text: str, allowed_links: set[str]) -> str:
    """Everything readers may see of a model's (or GitHub user's) Markdown, made safe."""
    return _clean(text, allowed_links, by_claim=False)[0]


def clean_model_claims(text: str, allowed_links: set[str]) -> tuple[str, int]:
    """A model's Markdown made safe and grounded by claim: (text, claims removed).

    Like `clean_model_markdown`, and every bullet or sentence citing a PR, issue or commit that
    is not in the day's data is removed whole; grounded bare `#N` become links.
    """
    return _clean(text, allowed_links, by_claim=True)


def _clean(text: str, allowed_links: set[str], *, by_claim: bool) -> tuple[str, int]:
    text = text.replace("\r\n", "\n").replace("\r", "\n").strip()
    text = _hold_escapes(text)
    text = unwrap_fence(text)
    text = _close_open_fence(text)
    text = _outside_code(text, strip_html)
    text = downgrade_headings(text)
    removed = 0
    if by_claim:
        text, removed = ground_claims(text, allowed_links)
    text = ground_links(text, allowed_links, link_refs=by_claim)
    # Released before the mentions: an escaped `\@` still shows as `@` and must not ping.
    text = _release_escapes(text)
    text = neutralise_mentions(text)
    text = re.sub(r"[ \t]+\n", "\n", text)
    return re.sub(r"\n{3,}", "\n\n", text).strip(), removed


# ---------------------------------------------------------------- JSON

_JSON_FENCE = re.compile(
    r"(`{3,}|~{3,})[ \t]*(?:json|javascript|js)?[ \t]*\n(.*?)\n[ \t]*\1", re.DOTALL | re.IGNORECASE
)


def parse_json_object(text: str) -> dict[str, Any]:
    """The first JSON object in `text`, tolerating code fences and prose around it.

    Raises ValueError with a short reason when there is none.
    """
    text = text.strip().lstrip("\ufeff")
    candidates = [text]
    candidates += [match[2] for match in _JSON_FENCE.finditer(text)]
    decoder = json.JSONDecoder()
    for candidate in candidates:
        try:
            value = json.loads(candidate)
        except ValueError:
            value = None
        if isinstance(value, dict):
            return value
    for candidate in candidates:
        for start in (i for i, char in enumerate(candidate) if char == "{"):
            try:
                value, _end = decoder.raw_decode(candidate, start)
            except ValueError:
                continue
            if isinstance(value, dict):
                return value
    raise ValueError("no JSON object found in the answer")


# ---------------------------------------------------------------- language

_HAN = re.compile("[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
_KANA_HANGUL = re.compile("[\u3040-\u30ff\uac00-\ud7af]")
_LATIN = re.compile("[A-Za-z]")
_NOT_PROSE = re.compile(r"`[^`]*`|\]\([^)]*\)|https?://\S+")


def looks_chinese(text: str) -> bool:
    """True when the prose is Chinese (English technical terms allowed), not English or Japanese.

    Code spans and URLs are ignored; Han characters must be at least 12% of the letters.
    """
    prose = _NOT_PROSE.sub(" ", text)
    han = len(_HAN.findall(prose))
    if han < 2:
        return False
    if len(_KANA_HANGUL.findall(prose)) * 4 > han:
        return False
    latin = len(_LATIN.findall(prose))
    # Real Chinese sections quoting English PR titles run at 0.18-0.3; English answers near 0.
    return han >= 0.12 * (han + latin)
