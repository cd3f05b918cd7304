"""The one Markdown splitter: Markdown in, pieces of Markdown out, each within a platform's limit.

Blocks come from markdown-it-py's token maps (top-level blocks, and the items of top-level lists).
A section (a heading, any headings right after it, and what follows up to the next heading) that
fits in a piece is never split; it starts a new piece when it does not fit the current one. A
longer section is split between blocks, a longer block between lines (a cut table repeats its
header), a longer line at a space (else anywhere), never inside a link, a URL, a code span or an
escape. A fence that must be cut is closed and reopened with its own marker and info string.
The platform's `length` (UTF-16 units of the rendered text for Telegram, characters of the
converted text for Discord) may be expensive, so each block is measured once, joined pieces are
estimated, and every final piece is measured again.
Only what cannot fit bends the rules: a link, URL or code span longer than the limit is cut, and
a heading stays last in a piece when it and the smallest start of its text exceed the limit.
"""

from __future__ import annotations

import math
import re
from bisect import bisect_right
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from itertools import accumulate, takewhile

from markdown_it import MarkdownIt

Length = Callable[[str], int]

# Below this no fence or heading has room to travel with any text.
MIN_LIMIT = 40
# A piece the estimate said fits but `length` says not is re-split this many times at most,
# with a smaller budget each time, before it is cut by characters.
_MAX_RESPLITS = 8

# Only block structure is needed: inline parsing is most of the cost and is skipped.
_MD = MarkdownIt("commonmark").enable("table").disable(["inline", "text_join"])

# Spans a cut must not fall inside: backslash escapes (a cut would un-escape the character), code
# spans, links and images, autolinks, bare URLs, and short bold/strike (a cut would leave stray
# markers on both sides).
_PROTECTED = re.compile(
    r"\\[!-/:-@\[-`{-~]"
    r"|(?<!`)(`+)(?!`).+?(?<!`)\1(?!`)"
    r"|!?\[(?:[^\[\]\n]|\[[^\[\]\n]*\])*\]\((?:[^()\s]|\([^()\s]*\))*(?:\s+\"[^\"\n]*\")?\)"
    r"|<[A-Za-z][A-Za-z0-9+.\-]{1,31}:[^\s<>]*>"
    r"|(?:https?|ftp)://[^\s<>]+"
    r"|www\.[^\s<>]+"
    r"|\*\*[^*\n]{1,200}\*\*"
    r"|~~[^~\n]{1,200}~~"
)
_SPACES = " \t"
# Where a line with no spaces (Chinese, say) is best cut: after punctuation.
_SOFT_AFTER = "。！？；，、：）」』,.;:!?)"
# Never cut right before these or right after a zero-width joiner: an emoji would fall apart.
_JOINERS = "\u200d\ufe0f\ufe0e"
_CONTAINER_PREFIX = re.compile(r"^[\s>]*")


def utf16_len(text: str) -> int:
    """Length in UTF-16 code units, as Telegram and Discord count a message."""
    return len(text.encode("utf-16-le")) // 2


def split_markdown(markdown: str, limit: int, length: Length = len) -> list[str]:
    """Markdown → pieces of Markdown, each with length(piece) <= limit."""
    if limit < MIN_LIMIT:
        raise ValueError(f"a limit below {MIN_LIMIT} leaves no room to split Markdown safely")
    text = markdown.replace("\r\n", "\n").replace("\r", "\n").strip("\n")
    if not text.strip():
        return []
    return _verified(text, limit, limit, length, 0)


def _verified(text: str, limit: int, budget: int, length: Length, depth: int) -> list[str]:
    """Split at `budget` by estimate, then measure each piece and re-split the ones too long."""
    out: list[str] = []
    for piece in _Doc(text, length).split(budget):
        actual = length(piece)
        if actual <= limit:
            out.append(piece)
            continue
        smaller = min(budget - 1, math.floor(budget * limit / actual * 0.95))
        if depth >= _MAX_RESPLITS or smaller < MIN_LIMIT // 2:
            out.extend(_forced(piece, limit, length))
        else:
            out.extend(_verified(piece, limit, smaller, length, depth + 1))
    return out


def _forced(text: str, limit: int, length: Length) -> list[str]:
    """Last resort for a piece no estimate gets right: the longest prefixes that fit, measured."""
    pieces: list[str] = []
    rest = text
    while rest and length(rest) > limit:
        low, high = 1, len(rest)
        while low < high:
            middle = (low + high + 1) // 2
            if length(rest[:middle]) <= limit:
                low = middle
            else:
                high = middle - 1
        pieces.append(rest[:low])
        rest = rest[low:]
    return [*pieces, rest] if rest else pieces


@dataclass(frozen=True, slots=True)
class _Atom:
    """A run of text that travels whole: `sep` is the original text before it (dropped at a cut)."""

    text: str
    size: int
    sep: str
    # Re-split into smaller atoms for a smaller budget (None: it cannot be).
    resplit: Callable[[int], list[_Atom]] | None = None
    # A fragment of a line: when it starts a piece its leading spaces would read as code.
    fragment: bool = False


@dataclass(frozen=True, slots=True)
class _Block:
    start: int  # first line
    end: int  # last non-blank line (inclusive)
    kind: str  # the type of its opening token

    @property
    def heading(self) -> bool:
        return self.kind == "heading_open"


@dataclass(frozen=True, slots=True)
class _Fence:
    start: int  # opener line
    stop: int  # first line after the body (the closer, or the end of the fence's container)
    closer: str | None  # the original closing line, if there is one
    marker: str


class _Doc:
    """One Markdown text, its lines, blocks and fences, and the measures the splitter needs."""

    def __init__(self, text: str, length: Length) -> None:
        self.lines = text.split("\n")
        self.length = length
        # The cheap per-character measure used to cut inside a block, scaled by the block's ratio.
        self.wide = length is not len
        self._seps: dict[str, int] = {}
        self.blocks, self.fences = self._structure(text)
        self.sizes = [length(self.slice(b.start, b.end)) for b in self.blocks]

    # --- structure ------------------------------------------------------------------------

    def _structure(self, text: str) -> tuple[list[_Block], dict[int, _Fence]]:
        starts: dict[int, str] = {}
        fences: dict[int, _Fence] = {}
        for token in _MD.parse(text):
            if token.map is None:
                continue
            first, stop = token.map
            if token.type == "fence":
                fences[first] = self._fence(first, stop, token.markup)
            if token.level == 0 and token.nesting >= 0:
                if token.type not in ("bullet_list_open", "ordered_list_open"):
                    starts[first] = token.type
            elif token.level == 1 and token.type == "list_item_open":
                starts[first] = token.type
        # Lines no token claims (link reference definitions) stay with the block before them;
        # any before the first block open a block of their own.
        leading = next(i for i, line in enumerate(self.lines) if line.strip())
        if not starts or min(starts) > leading:
            starts[leading] = "paragraph_open"
        ordered = sorted(s for s in starts if s >= leading)
        blocks: list[_Block] = []
        for index, start in enumerate(ordered):
            stop = ordered[index + 1] if index + 1 < len(ordered) else len(self.lines)
            end = stop - 1
            while end > start and not self.lines[end].strip():
                end -= 1
            if self.lines[start].strip() or end > start:
                blocks.append(_Block(start, end, starts[start]))
        return blocks, fences

    def _fence(self, first: int, stop: int, marker: str) -> _Fence:
        last = stop - 1
        while last > first and not self.lines[last].strip():
            last -= 1
        bare = _CONTAINER_PREFIX.sub("", self.lines[last]).rstrip() if last > first else ""
        if bare and set(bare) == {marker[0]} and len(bare) >= len(marker):
            return _Fence(first, last, self.lines[last], marker)
        return _Fence(first, last + 1, None, marker)

    def sections(self) -> list[list[int]]:
        """Block indexes per section: a section starts at a heading not right after a heading."""
        out: list[list[int]] = []
        for index, block in enumerate(self.blocks):
            opens = block.heading and (index == 0 or not self.blocks[index - 1].heading)
            if opens or not out:
                out.append([])
            out[-1].append(index)
        return out

    # --- measures -------------------------------------------------------------------------

    def slice(self, start: int, end: int) -> str:
        return "\n".join(self.lines[start : end + 1])

    def seplen(self, sep: str) -> int:
        if sep not in self._seps:
            self._seps[sep] = self.length(sep) if sep else 0
        return self._seps[sep]

    def gap(self, index: int) -> str:
        """The original text between block `index - 1` and block `index` (blank lines kept)."""
        if index == 0:
            return ""
        return "\n" * (self.blocks[index].start - self.blocks[index - 1].end)

    def proxy(self, text: str) -> int:
        return utf16_len(text) if self.wide else len(text)

    def ratio(self, index: int) -> float:
        """Platform length per proxy unit in block `index`: rendering may shrink or grow text."""
        block = self.blocks[index]
        units = self.proxy(self.slice(block.start, block.end))
        return self.sizes[index] / units if units else 1.0

    # --- splitting ------------------------------------------------------------------------

    def split(self, budget: int) -> list[str]:
        """Pieces whose estimated length is within `budget`."""
        atoms: list[_Atom] = []
        for section in self.sections():
            size = sum(self.sizes[i] for i in section)
            size += sum(self.seplen(self.gap(i)) for i in section[1:])
            if size <= budget:
                first, last = self.blocks[section[0]], self.blocks[section[-1]]
                text = self.slice(first.start, last.end)
                atoms.append(_Atom(text, size, self.gap(section[0])))
            else:
                atoms.extend(self._section_atoms(section, budget))
        return self._pack(atoms, budget)

    def _pack(self, atoms: Sequence[_Atom], budget: int) -> list[str]:
        pieces: list[str] = []
        current: list[_Atom] = []
        size = 0
        for atom in atoms:
            joined = size + self.seplen(atom.sep) + atom.size
            if current and joined <= budget:
                current.append(atom)
                size = joined
            else:
                if current:
                    pieces.append(_join(current))
                current, size = [atom], atom.size
        if current:
            pieces.append(_join(current))
        return [piece for piece in pieces if piece.strip()]

    def _section_atoms(self, section: list[int], budget: int) -> list[_Atom]:
        """A section longer than the budget: its blocks, the long ones cut; headings stay on."""
        heads = list(takewhile(lambda i: self.blocks[i].heading, section))
        body = section[len(heads) :]
        atoms: list[_Atom] = []
        for index in body:
            atoms.extend(self._block_atoms(index, budget))
        # Headings in a row too long to travel together with text: the first ones go alone.
        lead: list[_Atom] = []
        while len(heads) > 1 and self._run_size(heads) > budget - MIN_LIMIT // 2:
            lead.extend(self._block_atoms(heads.pop(0), budget))
        if not heads:
            return atoms
        first, last = self.blocks[heads[0]], self.blocks[heads[-1]]
        head_size = self._run_size(heads)
        if head_size > budget:
            # A heading longer than a message is only a long line: cut it like one.
            return [*lead, *self._block_atoms(heads[0], budget), *atoms]
        head = _Atom(self.slice(first.start, last.end), head_size, self.gap(heads[0]))
        if not atoms:
            return [*lead, head]
        # The heading goes with the start of what follows it, cut smaller if it must be.
        room = budget - head_size - self.seplen(atoms[0].sep)
        if atoms[0].size > room and atoms[0].resplit is not None and room >= MIN_LIMIT // 2:
            atoms[:1] = atoms[0].resplit(room)
        follower = atoms[0]
        if head_size + self.seplen(follower.sep) + follower.size > budget:
            return [*lead, head, *atoms]
        merged = _Atom(
            f"{head.text}{follower.sep}{follower.text}",
            head_size + self.seplen(follower.sep) + follower.size,
            head.sep,
        )
        return [*lead, merged, *atoms[1:]]

    def _run_size(self, run: list[int]) -> int:
        """Estimated length of consecutive blocks `run` with the text between them."""
        return sum(self.sizes[i] for i in run) + sum(self.seplen(self.gap(i)) for i in run[1:])

    def _block_atoms(self, index: int, budget: int) -> list[_Atom]:
        """Block `index` as one atom when it fits, else its lines, fences cut and reopened."""
        block = self.blocks[index]
        sep = self.gap(index)
        if self.sizes[index] <= budget:

            def resplit(room: int) -> list[_Atom]:
                return self._line_atoms(block, index, room, sep)

            text = self.slice(block.start, block.end)
            return [_Atom(text, self.sizes[index], sep, resplit)]
        return self._line_atoms(block, index, budget, sep)

    def _line_atoms(self, block: _Block, index: int, budget: int, sep: str) -> list[_Atom]:
        ratio = self.ratio(index)
        if block.kind == "table_open" and block.end - block.start >= 2:
            # Each part of a cut table repeats the header row, so it is still a table.
            header = self.slice(block.start, block.start + 1)
            rows = self.lines[block.start + 2 : block.end + 1]
            return self._fence_chunks(header, "", rows, budget, ratio, sep)
        atoms: list[_Atom] = []
        line = block.start
        previous = block.start
        while line <= block.end:
            here = sep if not atoms else "\n" * (line - previous)
            fence = self.fences.get(line)
            if fence is not None:
                stop = min(fence.stop if fence.closer is None else fence.stop + 1, block.end + 1)
                atoms.extend(self._fence_atoms(fence, stop, budget, ratio, here))
                previous, line = stop - 1, stop
                continue
            text = self.lines[line]
            if text.strip():
                atoms.extend(self._word_atoms(text, budget, ratio, here))
                previous = line
            line += 1
        return atoms

    def _fence_atoms(
        self, fence: _Fence, stop: int, budget: int, ratio: float, sep: str
    ) -> list[_Atom]:
        """A fenced block cut into fenced blocks, each closed and reopened like the original."""
        opener = self.lines[fence.start]
        prefix = opener[: opener.find(fence.marker)]
        closer = fence.closer if fence.closer is not None else prefix + fence.marker
        body_stop = fence.stop if fence.closer is not None else stop
        body = self.lines[fence.start + 1 : min(body_stop, stop)]
        return self._fence_chunks(opener, closer, body, budget, ratio, sep)

    def _fence_chunks(
        self, opener: str, closer: str, body: list[str], budget: int, ratio: float, sep: str
    ) -> list[_Atom]:
        """Body lines packed into fenced chunks within `budget` (a chunk is estimated whole)."""
        if self._estimate(opener, closer, body, ratio) <= budget:
            return [self._fence_atom(opener, closer, body, ratio, sep)]
        room = budget - self._estimate(opener, closer, [""], ratio)
        if room < MIN_LIMIT // 4:
            # The fence lines alone nearly fill a message: cut it as plain lines instead.
            atoms: list[_Atom] = []
            for line in _wrapped(opener, body, closer).split("\n"):
                atoms.extend(self._word_atoms(line, budget, ratio, sep if not atoms else "\n"))
            return atoms
        chunks: list[list[str]] = [[]]
        for line in body:
            for text, _space in _cut_line(line, _cap(room, ratio), self.proxy) or [("", "")]:
                if (
                    chunks[-1]
                    and self._estimate(opener, closer, [*chunks[-1], text], ratio) > budget
                ):
                    chunks.append([])
                chunks[-1].append(text)
        out: list[_Atom] = []
        for chunk in chunks:
            out.append(self._fence_atom(opener, closer, chunk, ratio, sep if not out else "\n"))
        return out

    def _estimate(self, opener: str, closer: str, body: list[str], ratio: float) -> int:
        return math.ceil(self.proxy(_wrapped(opener, body, closer)) * ratio)

    def _fence_atom(
        self, opener: str, closer: str, body: list[str], ratio: float, sep: str
    ) -> _Atom:
        def resplit(room: int) -> list[_Atom]:
            return self._fence_chunks(opener, closer, body, room, ratio, sep)

        text = _wrapped(opener, body, closer)
        return _Atom(text, self._estimate(opener, closer, body, ratio), sep, resplit)

    def _word_atoms(self, line: str, budget: int, ratio: float, sep: str) -> list[_Atom]:
        """One line as an atom, or cut at spaces (else anywhere) outside protected spans."""
        atoms: list[_Atom] = []
        for text, before in _cut_line(line, _cap(budget, ratio), self.proxy):
            here = sep if not atoms else before

            def resplit(room: int, text: str = text, here: str = here) -> list[_Atom]:
                return self._word_atoms(text, room, ratio, here)

            size = math.ceil(self.proxy(text) * ratio)
            atoms.append(_Atom(text, size, here, resplit, fragment=True))
        return atoms


def _cap(budget: int, ratio: float) -> int:
    """Proxy units that stay within `budget` once scaled by `ratio` (rounding included)."""
    cap = max(1, math.floor(budget / ratio))
    while cap > 1 and math.ceil(cap * ratio) > budget:
        cap -= 1
    return cap


def _wrapped(opener: str, body: list[str], closer: str) -> str:
    """A fence (or a table: its header as opener, no closer) around `body` lines."""
    return "\n".join([opener, *body, closer] if closer else [opener, *body])


def _join(atoms: Sequence[_Atom]) -> str:
    head = atoms[0].text.lstrip(_SPACES) if atoms[0].fragment else atoms[0].text
    return (head + "".join(atom.sep + atom.text for atom in atoms[1:])).strip("\n")


def _cut_line(line: str, cap: int, proxy: Callable[[str], int]) -> list[tuple[str, str]]:
    """Cut `line` into (fragment, whitespace before it), proxy(fragment) <= cap where possible."""
    if proxy(line) <= cap:
        return [(line, "")]
    # Proxy units of every prefix, to find the longest fitting prefix by bisection.
    if proxy is len or proxy(line) == len(line):
        prefix = list(range(len(line) + 1))
    else:
        prefix = list(accumulate((2 if char > "\uffff" else 1 for char in line), initial=0))
    inside = bytearray(len(line) + 1)
    for match in _PROTECTED.finditer(line):
        inside[match.start() + 1 : match.end()] = b"\x01" * (match.end() - match.start() - 1)
    out: list[tuple[str, str]] = []
    before = ""
    start = 0
    while start < len(line):
        end = bisect_right(prefix, prefix[start] + cap) - 1
        if end >= len(line):
            out.append((line[start:], before))
            break
        cut = _best_cut(line, start, max(end, start + 1), inside)
        fragment = line[start:cut]
        rest_start = cut
        while rest_start < len(line) and line[rest_start] in _SPACES:
            rest_start += 1
        stripped = fragment.rstrip(_SPACES)
        if stripped:
            out.append((stripped, before))
            before = fragment[len(stripped) :] + line[cut:rest_start]
        else:
            before += fragment + line[cut:rest_start]
        start = rest_start
    return out


def _best_cut(line: str, start: int, end: int, inside: bytearray) -> int:
    """The cut in (start, end]: at a space, else after punctuation, else anywhere allowed."""
    floor = start + (end - start) // 2

    def allowed(cut: int) -> bool:
        if inside[cut] or line[cut - 1] == "\u200d":
            return False
        return cut >= len(line) or line[cut] not in _JOINERS

    # A space in the second half of the room keeps words whole without wasting much of it.
    search = end + 1
    while True:
        space = max(line.rfind(" ", floor, search), line.rfind("\t", floor, search))
        if space < floor:
            break
        for cut in (space + 1, space):
            if start < cut <= end and allowed(cut):
                return cut
        search = space
    for cut in range(end, floor, -1):
        if line[cut - 1] in _SOFT_AFTER and allowed(cut):
            return cut
    for cut in range(end, start, -1):
        if allowed(cut):
            return cut
    # Only a protected span longer than a whole message gets here: cut it anyway.
    return end
