"""Markdown → HTML for the web archive: raw HTML off, links only to http(s) (markdown-it-py)."""

from __future__ import annotations

import functools
import logging
import re
from collections.abc import Callable, Sequence
from typing import Any

from markdown_it import MarkdownIt
from markdown_it.renderer import RendererHTML
from markdown_it.rules_inline import StateInline
from markdown_it.token import Token
from markupsafe import Markup

GITHUB = "https://github.com"
_REPO_NAME = re.compile(r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$")
_HTTP_URL = re.compile(r"^https?://[^\s]+$", re.IGNORECASE)
# Characters mdurl.encode keeps as they are (its "safe" set plus alphanumerics).
_ENCODED_URL = re.compile(r"^[A-Za-z0-9;/?:@&=+$,\-_.!~*'()#]*$")
# A link whose label needs no inline parsing and whose URL needs no normalising (see above).
_SIMPLE_LINK = re.compile(
    r"\[([^\[\]\\`*_<>&!~\n]{1,200})\]\((https?://[A-Za-z0-9;/?:@&=+$,\-_.!~*'#]+)\)"
)


def is_safe_url(url: object) -> bool:
    """True for an absolute http(s) URL: the only links pages may carry out of the archive."""
    return isinstance(url, str) and bool(_HTTP_URL.match(url.strip()))


def repo_slug(repo: str) -> str:
    """`owner/name` → `owner__name`, a file name safe on every file system."""
    return re.sub(r"[^A-Za-z0-9_.-]", "_", repo.replace("/", "__")).strip(".") or "_"


def github_url(repo: str) -> str | None:
    """The repository's GitHub page, when `repo` looks like `owner/name`."""
    return f"{GITHUB}/{repo}" if _REPO_NAME.match(repo) else None


def _link_open(
    renderer: RendererHTML, tokens: Sequence[Token], idx: int, options: Any, env: Any
) -> str:
    # Links leave the archive (for GitHub): no window.opener for the target, no endorsement.
    tokens[idx].attrSet("rel", "nofollow noopener")
    return renderer.renderToken(tokens, idx, options, env)


def _fast_normalize(default: Callable[[str], str]) -> Callable[[str], str]:
    """markdown-it's link normalisation, skipped for URLs it would leave unchanged.

    Parsing and re-encoding every URL is a third of the rendering time of a link-heavy digest;
    a URL made only of characters mdurl never encodes (no `%`, no non-ASCII) comes out the same.
    """

    def normalize(url: str) -> str:
        return url if _ENCODED_URL.match(url) else default(url)

    return normalize


def _simple_link(state: StateInline, silent: bool) -> bool:
    """`[label](https://…)` with a plain label and URL, without the general link rule's work.

    Digests are mostly such links, and the general rule (label, destination and title parsing,
    character by character) is a third of the rendering time. Anything less plain (nested
    brackets, markup in the label, a title, parentheses or `%` in the URL) is left to it; the
    output is the same tokens the general rule would make.
    """
    if state.src[state.pos] != "[":
        return False
    match = _SIMPLE_LINK.match(state.src, state.pos)
    if match is None or not state.md.validateLink(match[2]):
        return False
    if not silent:
        state.push("link_open", "a", 1).attrs = {"href": match[2]}
        state.push("text", "", 0).content = match[1]
        state.push("link_close", "a", -1)
    state.pos = match.end()
    return True


@functools.cache
def markdown_renderer() -> MarkdownIt:
    """CommonMark with tables, raw HTML off, images off, and only http(s) links."""
    # markdown-it logs every block rule it tries at DEBUG: with LOG_LEVEL=debug a year's
    # build would print millions of lines. Its debug output is no use to operators.
    logging.getLogger("markdown_it").setLevel(logging.INFO)
    md = MarkdownIt("commonmark", {"html": False, "linkify": False, "typographer": False})
    md.enable(["table", "strikethrough"])
    # Images from model or issue text would load third-party resources (tracking pixels).
    md.disable("image")
    md.validateLink = is_safe_url  # type: ignore[method-assign]
    md.normalizeLink = _fast_normalize(md.normalizeLink)  # type: ignore[method-assign,assignment]
    md.add_render_rule("link_open", _link_open)
    md.inline.ruler.before("link", "simple_link", _simple_link)
    return md


def render_markdown_html(text: str) -> Markup:
    """Markdown (from the digest) → HTML that carries no markup of its own from the text."""
    return Markup(markdown_renderer().render(text))
