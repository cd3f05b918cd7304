r"""The readers' Markdown in Discord's dialect, split into messages Discord accepts.

Discord renders `#`–`###` headings, lists, quotes, emphasis, code and masked links, but no tables,
rules or deeper headings. A message holds at most 2000 characters; the one splitter
(`bot.platforms.textsplit`) cuts at section boundaries first, then blocks, lines and words, never
inside a link or a code span, and closes and reopens a fence it must cut.
Backslash escapes (`\*`, `\_`, `\[` … in escaped titles) pass through unchanged: Discord honours
them, so they are never doubled, dropped, or cut from the character they escape.
"""

from __future__ import annotations

import re

from bot.platforms.textsplit import split_markdown, utf16_len

MESSAGE_LIMIT = 2000

_FENCE = re.compile(r"^\s*(`{3,}|~{3,})")
_HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
_RULE = re.compile(r"^\s*([-*_])(\s*\1){2,}\s*$")
_TABLE_SEPARATOR = re.compile(r"^\s*\|?\s*:?-{2,}:?\s*(\|\s*:?-{2,}:?\s*)*\|?\s*$")
# Not after a backslash: an escaped `\!` or `\<` is text.
_IMAGE = re.compile(r"(?<!\\)!\[([^\]\n]*)\]\(([^)\s]+)\)")
_BREAK = re.compile(r"(?<!\\)<br\s*/?>", re.IGNORECASE)
# A table cell ends at a `|` that is not escaped.
_CELL_SEPARATOR = re.compile(r"(?<!\\)\|")


def discord_length(text: str) -> int:
    """Length as Discord's limits count it (UTF-16 units, which never undercounts characters)."""
    return utf16_len(text)


def render_messages(markdown: str, limit: int = MESSAGE_LIMIT) -> list[str]:
    """Readers' Markdown → Discord messages, each at most `limit` characters, in order."""
    return split_messages(to_discord(markdown), limit)


def to_discord(markdown: str) -> str:
    """Rewrite what Discord cannot show: deep headings, tables, rules, images and `<br>`."""
    lines = markdown.replace("\r\n", "\n").split("\n")
    out: list[str] = []
    fence: str | None = None
    index = 0
    while index < len(lines):
        line = lines[index]
        opener = _FENCE.match(line)
        if fence is not None:
            out.append(line)
            if opener and opener[1].startswith(fence):
                fence = None
            index += 1
            continue
        if opener:
            fence = opener[1]
            out.append(line)
            index += 1
            continue
        if _is_table_start(lines, index):
            end = index + 2
            while end < len(lines) and lines[end].strip().startswith("|"):
                end += 1
            out.extend(_table_as_list(lines[index:end]))
            index = end
            continue
        converted = _inline(_block_line(line))
        # Rules and tables leave blank lines behind; one blank line is all Discord needs.
        if converted.strip() or (out and out[-1].strip()):
            out.append(converted)
        index += 1
    return "\n".join(out).strip("\n")


def split_messages(text: str, limit: int = MESSAGE_LIMIT) -> list[str]:
    """Discord Markdown → messages ≤ `limit`, by the one splitter (bot.platforms.textsplit)."""
    return split_markdown(text, limit, discord_length)


# --- rewriting ---------------------------------------------------------------------------------


def _block_line(line: str) -> str:
    heading = _HEADING.match(line)
    if heading:
        level, title = len(heading[1]), heading[2]
        if level == 1:
            return f"## {title}"
        if level <= 3:
            return f"{heading[1]} {title}"
        return f"**{title}**"
    if _RULE.match(line):
        return ""
    return line


def _inline(line: str) -> str:
    return _BREAK.sub(" ", _IMAGE.sub(r"[\1](\2)", line))


def _is_table_start(lines: list[str], index: int) -> bool:
    return (
        lines[index].strip().startswith("|")
        and index + 1 < len(lines)
        and bool(_TABLE_SEPARATOR.match(lines[index + 1]))
    )


def _cells(row: str) -> list[str]:
    row = row.strip()
    row = row[1:] if row.startswith("|") else row
    row = row[:-1] if row.endswith("|") and not row.endswith("\\|") else row
    return [cell.strip() for cell in _CELL_SEPARATOR.split(row)]


def _table_as_list(rows: list[str]) -> list[str]:
    """A table becomes its header in bold and one bullet per row (Discord has no tables)."""
    header = [cell for cell in _cells(rows[0]) if cell]
    out = [f"**{' · '.join(header)}**"] if header else []
    for row in rows[2:]:
        cells = [cell for cell in _cells(row) if cell]
        if cells:
            out.append(_inline("- " + " · ".join(cells)))
    return out
