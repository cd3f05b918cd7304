"""Markdown → Telegram messages: plain text plus entities, split to 4096 UTF-16 units.

Cut by the one splitter (`bot.platforms.textsplit`), measured as Telegram counts the rendered
text; rendered by telegramify-markdown (no parse_mode, so nothing can be "unbalanced"); entities
are made nestable as the Bot API requires.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

from telegram import MessageEntity
from telegramify_markdown import MessageEntity as MdEntity
from telegramify_markdown import RenderConfig, convert, utf16_len

from bot.platforms.textsplit import split_markdown

log = logging.getLogger(__name__)

MAX_MESSAGE = 4096
_SYMBOLS = RenderConfig.isolated()
_FORMATTING = frozenset({"bold", "italic", "underline", "strikethrough", "spoiler"})
_CODE = frozenset({"code", "pre"})
_QUOTES = frozenset({"blockquote", "expandable_blockquote"})


@dataclass(frozen=True)
class Rendered:
    """One Telegram message: plain text and its entities (offsets in UTF-16 code units)."""

    text: str
    entities: tuple[MdEntity, ...]

    @property
    def size(self) -> int:
        """The length Telegram checks against its 4096 limit."""
        return utf16_len(self.text)

    def api_entities(self) -> list[MessageEntity]:
        """The entities as python-telegram-bot objects."""
        return [
            MessageEntity(
                type=e.type, offset=e.offset, length=e.length, url=e.url, language=e.language
            )
            for e in self.entities
        ]


def render_messages(markdown: str, limit: int = MAX_MESSAGE) -> list[Rendered]:
    """Render Markdown for Telegram in messages of at most `limit` UTF-16 units of text.

    The one splitter (`bot.platforms.textsplit`) cuts the Markdown, measuring each piece as
    Telegram will count it (the rendered text); each piece is then rendered with its entities.
    """
    return list(_render_cached(markdown, limit))


@lru_cache(maxsize=64)
def _render_cached(markdown: str, limit: int) -> tuple[Rendered, ...]:
    # A fan-out sends the same few digests to every chat: render each once, not per chat,
    # so the event loop stays free to send on time.
    pieces = split_markdown(markdown, limit, _rendered_size)
    return tuple(part for part in map(_render, pieces) if part.text)


def _rendered_size(markdown: str) -> int:
    return _render(markdown).size


@lru_cache(maxsize=4096)
def _render(markdown: str) -> Rendered:
    text, entities = convert(markdown, latex_escape=False, config=_SYMBOLS)
    return _trimmed(text, tuple(nestable(entities)))


def nestable(entities: Sequence[MdEntity]) -> list[MdEntity]:
    """Entities Telegram accepts together, per the Bot API's nesting rules.

    Code and pre contain nothing and are inside nothing but quotes: bold/italic/... around them
    are cut around them, and code inside a link loses its code look. Quotes do not nest; other
    entities (links, ...) never contain each other; partial overlaps are dropped.
    """
    others = [e for e in entities if e.type not in _FORMATTING | _CODE | _QUOTES]
    kept_others: list[MdEntity] = []
    for entity in sorted(others, key=_span_order):
        if not any(_overlaps(entity, other) for other in kept_others):
            kept_others.append(entity)
    code = [
        e
        for e in entities
        if e.type in _CODE and not any(_overlaps(e, other) for other in kept_others)
    ]
    kept_code: list[MdEntity] = []
    for entity in sorted(code, key=_span_order):
        if not any(_overlaps(entity, other) for other in kept_code):
            kept_code.append(entity)
    quotes: list[MdEntity] = []
    for entity in sorted((e for e in entities if e.type in _QUOTES), key=_span_order):
        if not any(_overlaps(entity, other) for other in quotes):
            quotes.append(entity)
    formatting: list[MdEntity] = []
    for entity in (e for e in entities if e.type in _FORMATTING):
        formatting.extend(_cut_around(entity, kept_code))
    return sorted(quotes + kept_others + kept_code + formatting, key=_span_order)


def _span_order(entity: MdEntity) -> tuple[int, int]:
    return (entity.offset, -entity.length)


def _overlaps(a: MdEntity, b: MdEntity) -> bool:
    return a.offset < b.offset + b.length and b.offset < a.offset + a.length


def _cut_around(entity: MdEntity, holes: Sequence[MdEntity]) -> list[MdEntity]:
    """`entity` minus the ranges of `holes` (sorted, non-overlapping), as one or more entities."""
    pieces: list[MdEntity] = []
    start, end = entity.offset, entity.offset + entity.length
    for hole in holes:
        hole_start, hole_end = hole.offset, hole.offset + hole.length
        if hole_end <= start or hole_start >= end:
            continue
        if hole_start > start:
            pieces.append(entity.copy_with(offset=start, length=hole_start - start))
        start = max(start, hole_end)
    if end > start:
        pieces.append(entity.copy_with(offset=start, length=end - start))
    return pieces


def _trimmed(text: str, entities: tuple[MdEntity, ...]) -> Rendered:
    """Strip surrounding whitespace (Telegram would) and keep entities aligned to what is left."""
    lead = utf16_len(text) - utf16_len(text.lstrip())
    text = text.strip()
    size = utf16_len(text)
    kept: list[MdEntity] = []
    for entity in entities:
        start = max(entity.offset - lead, 0)
        end = min(entity.offset + entity.length - lead, size)
        if end > start:
            kept.append(entity.copy_with(offset=start, length=end - start))
    return Rendered(text, tuple(kept))


def clip_utf16(text: str, limit: int) -> str:
    """`text` cut (with an ellipsis) to at most `limit` UTF-16 code units, as Telegram counts."""
    if utf16_len(text) <= limit:
        return text
    cut = text[: limit - 1]
    while utf16_len(cut) > limit - 1:  # characters outside the BMP count twice
        cut = cut[:-1]
    return cut + "…"
