"""Remove what every PR or commit repeats and no reader needs, before any budget is spent.

PR templates (HTML comments, checklists, "Thank you for contributing", pre-commit reminders),
bot-written summaries when a human description exists, `Signed-off-by`-style trailers and e-mail
addresses, and runs of blank lines. What is removed here is not "cut": nothing is lost.
"""

from __future__ import annotations

import re

_BOT_BLOCK = re.compile(
    r"<!--\s*This is an auto-generated comment.*?<!--\s*end of auto-generated comment.*?-->",
    re.DOTALL | re.IGNORECASE,
)
_BOT_HEADING = re.compile(r"^#{1,6}\s*Summary by (CodeRabbit|Copilot|Sourcery)\b.*$", re.I | re.M)
_HTML_COMMENT = re.compile(r"<!--.*?(?:-->|\Z)", re.DOTALL)
_TRAILER = re.compile(
    r"^\s*(signed-off-by|co-authored-by|reviewed-by|acked-by|tested-by|reported-by|"
    r"suggested-by|helped-by|change-id|cc)\s*:.*$",
    re.IGNORECASE | re.MULTILINE,
)
_EMAIL = re.compile(r"<?[\w.+-]+@[\w-]+(\.[\w-]+)+>?")
_CHECKBOX = re.compile(r"^\s*[-*+]\s+\[(?P<mark>[ xX])\]\s*(?P<text>.*)$")
# Checked items that only tell the reviewer the author followed the template.
_TEMPLATE_ITEM = re.compile(
    r"pre-commit|I have|tests? (have been|are) (added|passing)|all tests|CLA|lint|"
    r"documentation (has been|is) updated|self-review",
    re.IGNORECASE,
)
_THANKS = re.compile(
    r"^\s*(thank you for (contributing|your contribution)|thanks for (contributing|your)|"
    r"before (we review|submitting)|>\s*if you are unsure about how to set up `?pre-commit)",
    re.IGNORECASE,
)
_HEADING = re.compile(r"^\s*#{1,6}\s+\S")
_TEMPLATE_HEADING = re.compile(
    r"checklist|pre-commit|reviewer notes|related issues|^\W*tests?\W*$", re.IGNORECASE
)
_BLANKS = re.compile(r"\n[ \t]*(\n[ \t]*)+\n")


def _drop_bot_summary(text: str) -> str:
    """Bot-written summaries repeat the description: dropped when a description remains."""
    without = _BOT_BLOCK.sub("", text)
    heading = _BOT_HEADING.search(without)
    if heading:
        without = without[: heading.start()]
    return without if _HTML_COMMENT.sub("", without).strip() else text


def _drop_template_lines(lines: list[str]) -> list[str]:
    kept: list[str] = []
    skipping = False  # inside a paragraph or list item that is being dropped
    for line in lines:
        if not line.strip():
            skipping = False
            kept.append(line)
            continue
        box = _CHECKBOX.match(line)
        if box and (box["mark"] == " " or _TEMPLATE_ITEM.search(box["text"])):
            skipping = True
            continue
        if box:
            skipping = False
        if _THANKS.match(line):
            skipping = True
            continue
        if skipping and not _HEADING.match(line) and not re.match(r"^\s*[-*+]\s", line):
            continue
        skipping = False
        kept.append(line)
    return kept


def _drop_empty_headings(lines: list[str]) -> list[str]:
    """Headings left with nothing under them (e.g. an emptied checklist) go too."""
    kept: list[str] = []
    for index, line in enumerate(lines):
        if _HEADING.match(line):
            following = next((ln for ln in lines[index + 1 :] if ln.strip()), None)
            if following is None or _HEADING.match(following):
                continue
            if _TEMPLATE_HEADING.search(line.lstrip("# ").strip()) and following is None:
                continue
        kept.append(line)
    return kept


def clean_description(text: str) -> str:
    """A PR body, issue body or commit message without template, bot and trailer boilerplate."""
    if not text:
        return ""
    text = _drop_bot_summary(text.replace("\r\n", "\n"))
    text = _HTML_COMMENT.sub("", text)
    text = _TRAILER.sub("", text)
    text = _EMAIL.sub("", text)
    lines = _drop_template_lines(text.split("\n"))
    lines = _drop_empty_headings(lines)
    # Twice: dropping a heading can leave its parent heading empty.
    lines = _drop_empty_headings(lines)
    text = "\n".join(line.rstrip() for line in lines)
    return _BLANKS.sub("\n\n", text).strip()
