"""The one Markdown splitter: limits, sections, blocks, lines, protected spans and fences."""

from __future__ import annotations

import random
import re
from collections.abc import Callable
from dataclasses import dataclass, field

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from markdown_it import MarkdownIt

from bot.platforms.textsplit import split_markdown, utf16_len

_MD = MarkdownIt("commonmark").enable("table").disable(["inline", "text_join"])
_HEADING = re.compile(r"^#{1,6} ")
# Generated sections: no code line starts with "#", no two headings are adjacent.
_SECTION = re.compile(r"\n\n(?=#{1,6} )")
_FENCE_LINE = re.compile(r"^[\s>]*(`{3,}|~{3,})")
_WORDS = [
    "vllm",
    "kernel",
    "batch",
    "调度器",
    "显存优化",
    "😀",
    "🚀",
    "👍🏽",
    "cache",
    "合并了",
    "🧠",
]


# --- a generator of Markdown digests --------------------------------------------------------


@dataclass
class _Gen:
    """Builds a random Markdown text and remembers the spans a cut must not fall inside."""

    rnd: random.Random
    protected: list[str] = field(default_factory=list)
    serial: int = 0

    def _id(self) -> int:
        self.serial += 1
        return self.serial

    def word(self) -> str:
        return self.rnd.choice(_WORDS)

    def link(self) -> str:
        n = self._id()
        label = " ".join(self.word() for _ in range(self.rnd.randint(1, 4)))
        span = f"[{label} #{n}](https://github.com/org/repo/pull/{n})"
        self.protected.append(span)
        return span

    def code(self) -> str:
        n = self._id()
        span = f"`run --flag {n} {self.word()}`" if self.rnd.random() < 0.7 else f"``a ` b {n}``"
        self.protected.append(span)
        return span

    def url(self) -> str:
        n = self._id()
        span = f"https://example.com/path/{n}?q=中文&x=1"
        if self.rnd.random() < 0.5:
            span = f"<https://example.org/a/{n}>"
        self.protected.append(span)
        return span

    def inline(self, tokens: int) -> str:
        parts = []
        for _ in range(tokens):
            roll = self.rnd.random()
            if roll < 0.1:
                parts.append(self.link())
            elif roll < 0.17:
                parts.append(self.code())
            elif roll < 0.2:
                parts.append(self.url())
            elif roll < 0.205:
                parts.append("x" * self.rnd.randint(100, 4500))  # a very long word
            elif roll < 0.24:
                parts.append("中文没有空格的长句子，继续写下去。" * self.rnd.randint(1, 12))
            else:
                parts.append(self.word())
        return " ".join(parts)

    def block(self) -> str:
        kind = self.rnd.choice(
            ["para", "para", "long", "heading", "fence", "table", "list", "quote"]
        )
        if kind == "para":
            return self.inline(self.rnd.randint(1, 30))
        if kind == "long":
            return self.inline(self.rnd.randint(100, 500))
        if kind == "heading":
            # Short enough that a heading and the first link or word after it fit in 200.
            title = f"{self.word()} {self.rnd.choice([self.word, self.link, self.code])()}"
            return "#" * self.rnd.randint(1, 6) + " " + title
        if kind == "fence":
            return self.fence("")
        if kind == "table":
            rows = [
                f"| {self.inline(2)} | {self.inline(3)} |" for _ in range(self.rnd.randint(1, 40))
            ]
            return "\n".join(["| repo | change |", "|---|---|", *rows])
        if kind == "list":
            marker = self.rnd.choice(["-", "*", "1."])
            items = []
            for _ in range(self.rnd.randint(1, 25)):
                item = f"{marker} {self.inline(self.rnd.randint(1, 40))}"
                if self.rnd.random() < 0.1:
                    item += "\n\n" + self.fence("   ")
                elif self.rnd.random() < 0.1:
                    item += f"\n   - {self.inline(5)}"
                items.append(item)
            return "\n".join(items)
        lines = [
            f"> {self.inline(self.rnd.randint(1, 40))}" for _ in range(self.rnd.randint(1, 30))
        ]
        if self.rnd.random() < 0.3:
            lines += ["> ```sh", *(f"> echo {self.word()} {i}" for i in range(30)), "> ```"]
        return "\n".join(lines)

    def fence(self, indent: str) -> str:
        marker = self.rnd.choice(["```", "~~~", "````", "~~~~~"])
        info = self.rnd.choice(["", "python", "json title=x", "diff"])
        body = []
        for i in range(self.rnd.randint(1, 120)):
            roll = self.rnd.random()
            if roll < 0.02:
                body.append("y = '" + "长" * self.rnd.randint(100, 2500) + "'")
            elif roll < 0.04:
                body.append(" ".join(f"arg{j}" for j in range(self.rnd.randint(50, 600))))
            else:
                body.append(f"x_{i} = call({self.word()!r})  # note")
        lines = [f"{marker}{info}", *body, marker]
        return "\n".join(indent + line if line else line for line in lines)

    def document(self) -> str:
        blocks: list[str] = []
        while len(blocks) < self.rnd.randint(1, 12):
            known = len(self.protected)
            block = self.block()
            # Headings in a row longer than a message cannot all travel with their text.
            if block.startswith("#") and blocks and blocks[-1].startswith("#"):
                del self.protected[known:]
            else:
                blocks.append(block)
        return "\n\n".join(blocks)


# --- checks ------------------------------------------------------------------------------------


def _squeezed(text: str) -> str:
    """Text without fence lines, table headers and whitespace: what survives any cut unchanged."""
    kept = [
        line
        for line in text.split("\n")
        if not _FENCE_LINE.match(line) and line not in ("| repo | change |", "|---|---|")
    ]
    return re.sub(r"\s+", "", "\n".join(kept))


def _last_block_is_heading(markdown: str) -> bool:
    opened = [t for t in _MD.parse(markdown) if t.level == 0 and t.nesting >= 0]
    return bool(opened) and opened[-1].type == "heading_open"


def _check(text: str, protected: list[str], limit: int, length: Callable[[str], int]) -> None:
    pieces = split_markdown(text, limit, length)
    assert pieces
    for piece in pieces:
        assert piece.strip()
        assert length(piece) <= limit
    assert _squeezed("\n\n".join(pieces)) == _squeezed(text)
    every = "\x00".join(pieces)
    for span in protected:
        assert span in every, span
    for section in _SECTION.split(text):
        if section.strip() and length(section.strip()) <= limit:
            assert section.strip() in every, section[:200]
    # Generated code and text lines never start with "#": a last line that does is a heading.
    for piece in pieces[:-1]:
        assert not _HEADING.match(piece.rsplit("\n", 1)[-1]), piece[-200:]
    if _HEADING.match(pieces[-1].rsplit("\n", 1)[-1]):
        assert _HEADING.match(text.rsplit("\n", 1)[-1])


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(
    seed=st.integers(0, 2**32 - 1),
    limit=st.sampled_from([200, 2000, 4096]),
    length=st.sampled_from([len, utf16_len]),
)
def test_every_piece_fits_keeps_spans_and_headings_and_gives_the_text_back(
    seed: int, limit: int, length: Callable[[str], int]
) -> None:
    gen = _Gen(random.Random(seed))
    _check(gen.document(), gen.protected, limit, length)


# --- one example per rule ----------------------------------------------------------------------


def test_utf16_len_counts_astral_emoji_as_two_units() -> None:
    assert utf16_len("a中😀") == 4
    assert len("a中😀") == 3


def test_short_text_is_one_piece_unchanged() -> None:
    text = "# 标题\n\n一段 [链接](https://x.org/1) 和 `code`。\n\n- a\n- b"
    assert split_markdown(text, 200) == [text]


def test_empty_text_is_no_piece_and_tiny_limit_is_refused() -> None:
    assert split_markdown("\n \n", 200) == []
    with pytest.raises(ValueError, match="limit"):
        split_markdown("text", 10)


def test_section_that_fits_starts_a_new_piece_rather_than_being_split() -> None:
    first = "## one\n\n" + "a " * 60
    second = "## two\n\n" + "b " * 60
    pieces = split_markdown(f"{first.strip()}\n\n{second.strip()}", 200)
    assert pieces == [first.strip(), second.strip()]


def test_small_sections_share_a_piece() -> None:
    text = "## one\n\nalpha\n\n## two\n\nbeta"
    assert split_markdown(text, 200) == [text]


def test_heading_goes_with_what_follows_it_not_at_the_end_of_a_piece() -> None:
    intro = "intro " * 25
    section = "## heading\n\n" + "\n\n".join(f"paragraph {i} " + "w " * 40 for i in range(4))
    pieces = split_markdown(f"{intro.strip()}\n\n{section}", 200)
    assert all(not _last_block_is_heading(piece) for piece in pieces)
    holder = next(piece for piece in pieces if "## heading" in piece)
    assert holder.startswith("## heading\n\nparagraph 0")


def test_headings_in_a_row_stay_with_the_text_under_them() -> None:
    text = "# day\n\n## repo\n\n" + "word " * 100
    pieces = split_markdown(text, 200)
    assert pieces[0].startswith("# day\n\n## repo\n\nword")


def test_a_heading_alone_at_the_end_may_end_the_last_piece() -> None:
    text = "text " * 30 + "\n\n## trailing"
    pieces = split_markdown(text, 160)
    assert pieces[-1].endswith("## trailing")


def test_long_section_is_split_between_blocks() -> None:
    paragraphs = [f"p{i} " + "word " * 25 for i in range(6)]
    text = "\n\n".join(p.strip() for p in paragraphs)
    pieces = split_markdown(text, 300)
    assert len(pieces) > 1
    for piece in pieces:
        for part in piece.split("\n\n"):
            assert part in [p.strip() for p in paragraphs]


def test_list_is_split_between_its_items() -> None:
    items = [f"- item {i} " + "x " * 30 for i in range(10)]
    pieces = split_markdown("\n".join(item.strip() for item in items), 200)
    assert len(pieces) > 1
    for piece in pieces:
        assert all(line.startswith("- item") for line in piece.split("\n"))


def test_long_block_is_split_at_line_breaks() -> None:
    lines = [f"line {i} " + "y" * 40 for i in range(20)]
    pieces = split_markdown("\n".join(lines), 200)
    assert len(pieces) > 1
    assert [line for piece in pieces for line in piece.split("\n")] == lines


def test_long_line_is_cut_at_a_space_never_inside_a_link_code_or_url() -> None:
    link = "[a very long link label](https://github.com/vllm-project/vllm/pull/12345)"
    code = "`python -m vllm.entrypoints.openai.api_server --model x`"
    url = "https://example.com/a/very/long/path?query=value&other=thing"
    line = " ".join([("filler " * 20).strip(), link, code, url] * 5)
    pieces = split_markdown(line, 120)
    for piece in pieces:
        assert not piece.startswith(" ") and not piece.endswith(" ")
    words = line.split(" ")
    assert [w for piece in pieces for w in piece.split(" ")] == words
    for span in (link, code, url):
        assert sum(piece.count(span) for piece in pieces) == 5


def test_a_word_longer_than_the_limit_is_cut_anywhere() -> None:
    word = "😀" * 500
    pieces = split_markdown(word, 100, utf16_len)
    assert all(utf16_len(piece) <= 100 for piece in pieces)
    assert "".join(pieces) == word


def test_chinese_without_spaces_is_cut_after_punctuation() -> None:
    sentence = "这是一个没有空格的句子，用来测试。"
    pieces = split_markdown(sentence * 20, 100)
    assert all(piece.endswith(("，", "。")) for piece in pieces[:-1])


@pytest.mark.parametrize(
    ("opener", "closer"), [("```python", "```"), ("~~~~ json title=x", "~~~~")]
)
def test_cut_fence_is_closed_and_reopened_with_its_marker_and_info(
    opener: str, closer: str
) -> None:
    body = [f"value_{i} = compute({i})" for i in range(40)]
    text = "\n".join(["before", "", opener, *body, closer, "", "after"])
    pieces = split_markdown(text, 200)
    code = [piece for piece in pieces if opener in piece]
    assert len(code) > 1
    for piece in code:
        lines = piece.split("\n")
        start = lines.index(opener)
        assert closer in lines[start + 1 :]
    reopened = [line for piece in pieces for line in piece.split("\n") if line.startswith("value_")]
    assert reopened == body


def test_fence_in_a_quote_is_reopened_inside_the_quote() -> None:
    body = [f"> echo step {i}" for i in range(30)]
    text = "\n".join(["> ```sh", *body, "> ```"])
    pieces = split_markdown(text, 150)
    assert len(pieces) > 1
    for piece in pieces:
        lines = piece.split("\n")
        assert lines[0] == "> ```sh" and lines[-1] == "> ```"


def test_long_code_line_in_a_fence_is_cut_inside_the_fence() -> None:
    text = "```\n" + "z" * 500 + "\n```"
    pieces = split_markdown(text, 100)
    assert all(p.startswith("```\n") and p.endswith("\n```") and len(p) <= 100 for p in pieces)


def test_expensive_length_is_called_once_per_block_and_once_per_piece() -> None:
    calls: list[str] = []

    def counted(text: str) -> int:
        calls.append(text)
        return len(text)

    blocks = [f"## s{i}\n\n" + "word " * 30 for i in range(30)]
    pieces = split_markdown("\n\n".join(b.strip() for b in blocks), 400, counted)
    separators = {call for call in calls if not call.strip()}
    assert len(calls) <= 2 * len(blocks) + len(pieces) + len(separators)


def test_piece_the_estimate_misjudged_is_measured_and_split_again() -> None:
    def grows(text: str) -> int:
        # A platform whose rendering of long text costs more than its parts (a header, say).
        return len(text) if len(text) < 150 else 2 * len(text)

    text = "\n\n".join(f"para {i} " + "v " * 30 for i in range(10))
    pieces = split_markdown(text, 300, grows)
    assert all(grows(piece) <= 300 for piece in pieces)
    assert _squeezed("".join(pieces)) == _squeezed(text)


def test_cut_table_keeps_rows_whole_and_repeats_its_header() -> None:
    rows = [f"| repo{i} | [pr](https://x.org/{i}) |" for i in range(30)]
    text = "\n".join(["| repo | link |", "|---|---|", *rows])
    pieces = split_markdown(text, 200)
    assert len(pieces) > 1
    assert all(p.startswith("| repo | link |\n|---|---|\n| repo") for p in pieces)
    assert [line for p in pieces for line in p.split("\n")[2:]] == rows


def test_telegram_rendered_length_where_links_shrink_to_their_labels() -> None:
    from telegramify_markdown import RenderConfig, convert

    def rendered(markdown: str) -> int:
        text, _entities = convert(markdown, latex_escape=False, config=RenderConfig())
        return utf16_len(text)

    gen = _Gen(random.Random(7))
    text = "\n\n".join(gen.block() for _ in range(12))
    pieces = split_markdown(text, 1000, rendered)
    assert all(rendered(piece) <= 1000 for piece in pieces)
    assert _squeezed("\n\n".join(pieces)) == _squeezed(text)
    # Markup Telegram does not show is not counted: pieces may be longer than 1000 characters.
    assert max(len(piece) for piece in pieces) > 1000
