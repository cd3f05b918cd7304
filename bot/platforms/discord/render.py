r"""The readers' Markdown in Discord's dialect, split into messages Discord accepts.

Discord renders `#`–`###` headings, lists, quotes, emphasis, code and masked links, but no tables,
rules or deeper headings. A message holds at most 2000 characters, so a digest is split at section
boundaries first, then paragraphs, then lines, and never inside a link, a code span or a fence.
Backslash escapes (`\*`, `\_`, `\[` … in escaped titles) pass through unchanged: Discord honours
them, so they are never doubled, dropped, or cut from the character they escape.
"""

from __future__ import annotations

import re
from collections.abc import Callable

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
# Spans a cut must not fall inside: backslash escapes (a cut there would un-escape the character),
# code spans, masked links, bare and <bracketed> URLs, and short emphasis (a cut there would leave
# stray asterisks on both sides).
_PROTECTED = re.compile(
    r"\\[!-/:-@\[-`{-~]"
    r"|`[^`\n]+`"
    r"|\[[^\]\n]*\]\([^)\s]*\)"
    r"|<https?://[^>\s]+>"
    r"|https?://[^\s<>()]+"
    r"|\*\*[^*\n]{1,200}\*\*"
    r"|~~[^~\n]{1,200}~~"
)
_SOFT_BREAKS = " \t。！？；，、：）)]」』,.;:!?"


def discord_length(text: str) -> int:
    """Length as Discord's limits count it (UTF-16 units, which never undercounts characters)."""
    return len(text.encode("utf-16-le")) // 2


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
    """Split Discord Markdown into messages ≤ `limit`: at sections, paragraphs, lines, words."""
    if limit < 20:
        raise ValueError("a message limit below 20 characters leaves no room to split safely")
    messages = _pack(_sections(text), "\n\n", limit, _split_section)
    return [message.strip("\n") for message in messages if message.strip()]


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


# --- splitting ---------------------------------------------------------------------------------


def _pack(
    pieces: list[str], separator: str, limit: int, finer: Callable[[str, int], list[str]]
) -> list[str]:
    """Greedily fill messages with whole pieces; a piece too big alone is split by `finer`."""
    messages: list[str] = []
    current = ""
    for piece in pieces:
        parts = finer(piece, limit) if discord_length(piece) > limit else [piece]
        for part in parts:
            candidate = f"{current}{separator}{part}" if current else part
            if discord_length(candidate) <= limit:
                current = candidate
            else:
                if current:
                    messages.append(current)
                current = part
    if current:
        messages.append(current)
    return messages


def _blocks(
    text: str, boundary: Callable[[str, list[str]], bool], *, fences_alone: bool = False
) -> list[list[str]]:
    """Group lines into blocks, starting a new one where `boundary` says; fences stay whole.

    With `fences_alone`, a fenced code block is a block of its own even without blank lines
    around it, so that only the fence-aware splitter ever cuts it.
    """
    blocks: list[list[str]] = [[]]
    fence: str | None = None
    for line in text.split("\n"):
        marker = _FENCE.match(line)
        if fence is None:
            if boundary(line, blocks[-1]) or (fences_alone and marker and blocks[-1]):
                blocks.append([])
            blocks[-1].append(line)
            fence = marker[1] if marker else None
        else:
            blocks[-1].append(line)
            if marker and marker[1].startswith(fence):
                fence = None
                if fences_alone:
                    blocks.append([])
    return [block for block in blocks if any(line.strip() for line in block)]


def _sections(text: str) -> list[str]:
    """Sections start at headings; a heading with no text of its own joins the next section."""
    sections = ["\n".join(block).strip("\n") for block in _blocks(text, _starts_section)]
    merged: list[str] = []
    for section in sections:
        if merged and _is_bare_heading(merged[-1]):
            merged[-1] = f"{merged[-1]}\n{section}"
        else:
            merged.append(section)
    return merged


def _starts_section(line: str, current: list[str]) -> bool:
    return bool(_HEADING.match(line)) and any(part.strip() for part in current)


def _is_bare_heading(section: str) -> bool:
    return all(_HEADING.match(line) for line in section.split("\n") if line.strip())


def _split_section(section: str, limit: int) -> list[str]:
    blocks = _blocks(section, _after_blank, fences_alone=True)
    paragraphs = ["\n".join(block).strip("\n") for block in blocks]
    return _pack(paragraphs, "\n\n", limit, _split_paragraph)


def _after_blank(line: str, current: list[str]) -> bool:
    return bool(current) and not current[-1].strip() and bool(line.strip())


def _split_paragraph(paragraph: str, limit: int) -> list[str]:
    if _FENCE.match(paragraph.split("\n", 1)[0]):
        return _split_fence(paragraph, limit)
    return _pack(paragraph.split("\n"), "\n", limit, _split_line)


def _split_fence(block: str, limit: int) -> list[str]:
    """A long code block continues in the next message as its own fenced block."""
    lines = block.split("\n")
    opener = lines[0]
    marker = _FENCE.match(opener)
    closer = marker[1] if marker else "```"
    body = lines[1:-1] if len(lines) > 1 and lines[-1].strip().startswith(closer) else lines[1:]
    room = limit - discord_length(opener) - discord_length(closer) - 2
    chunks = _pack(body or [""], "\n", room, _hard_split)
    return [f"{opener}\n{chunk}\n{closer}" for chunk in chunks]


def _split_line(line: str, limit: int) -> list[str]:
    """Cut a long line where no link, code span or emphasis is cut, preferring soft breaks."""
    pieces: list[str] = []
    rest = line
    while discord_length(rest) > limit:
        cut = _best_cut(rest, limit)
        head, rest = rest[:cut].rstrip(), rest[cut:].lstrip()
        if head:
            pieces.append(head)
    if rest:
        pieces.append(rest)
    return pieces


def _best_cut(text: str, limit: int) -> int:
    fits = _fitting_prefix(text, limit)
    inside = _protected_positions(text)
    allowed = [i for i in range(fits, 0, -1) if i not in inside]
    if not allowed:
        # Only a single protected span longer than a whole message gets here; cut it anyway.
        return max(fits, 1)
    soft = [i for i in allowed if text[i - 1] in _SOFT_BREAKS]
    # A soft break near the end keeps words and sentences whole without wasting much room.
    if soft and soft[0] >= allowed[0] * 0.7:
        return soft[0]
    return allowed[0]


def _fitting_prefix(text: str, limit: int) -> int:
    """The longest prefix length (in characters) whose Discord length is within `limit`."""
    total = 0
    for index, char in enumerate(text):
        total += 2 if ord(char) > 0xFFFF else 1
        if total > limit:
            return index
    return len(text)


def _protected_positions(text: str) -> set[int]:
    """Cut positions strictly inside a protected span."""
    inside: set[int] = set()
    for match in _PROTECTED.finditer(text):
        inside.update(range(match.start() + 1, match.end()))
    return inside


def _hard_split(text: str, limit: int) -> list[str]:
    pieces = []
    while discord_length(text) > limit:
        cut = max(_fitting_prefix(text, limit), 1)
        pieces.append(text[:cut])
        text = text[cut:]
    return [*pieces, text]
