"""Fit untrusted prompt text into a token budget, cutting the least important text first.

Order of cuts: diff patches (they arrive ranked by worth, so the end of a patch is the least
valuable part), then bodies (commit messages, then PR/issue bodies), then the changelog/README
lines a commit adds (the day's news), then release notes, then whole low-priority items (commits
already covered by a merged PR). Titles and links are never cut. The report says what was cut so
the prompt can tell the model.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Literal

ItemKind = Literal["release", "merged_pull", "opened_pull", "issue", "commit", "linked"]

# CJK ideographs, kana, hangul and full-width punctuation: roughly one token per character.
_CJK = re.compile(
    "[\u2e80-\u2fff\u3000-\u303f\u3040-\u30ff\u3100-\u312f\u3400-\u4dbf"
    "\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff\uff00-\uffef]"
)

# Framing around each item in the prompt (fences, field labels); a rough constant.
ITEM_OVERHEAD_TOKENS = 12
# Below this many tokens a truncated field says nothing useful; drop it instead.
_MIN_KEPT_TOKENS = 24
TRUNCATION_MARK = "\n…[truncated]"

# Body cut order by kind: commit messages go first, release notes last.
_BODY_RANK: dict[str, int] = {
    "commit": 0,
    "merged_pull": 1,
    "opened_pull": 1,
    "issue": 1,
    "linked": 1,
    "release": 3,
}
# The changelog/README lines of commits are cut after every body but the release notes.
_NEWS_RANK = 2


def estimate_tokens(text: str) -> int:
    """Estimate tokens offline: CJK characters ≈ 1 token each, other text ≈ 4 characters a token."""
    if not text:
        return 0
    cjk = len(_CJK.findall(text))
    return cjk + math.ceil((len(text) - cjk) / 4)


@dataclass(frozen=True)
class Item:
    """One prompt entry: `header` (title, link, sizes) is never cut; `body`, `news`, `patch` may be.

    `droppable` marks an item that may be left out whole (a commit covered by a merged PR).
    """

    kind: ItemKind
    header: str
    body: str = ""
    patch: str = ""
    news: str = ""
    droppable: bool = False

    @property
    def tokens(self) -> int:
        """Estimated tokens of the item as rendered in the prompt."""
        return (
            ITEM_OVERHEAD_TOKENS
            + estimate_tokens(self.header)
            + estimate_tokens(self.body)
            + estimate_tokens(self.patch)
            + estimate_tokens(self.news)
        )


@dataclass(frozen=True)
class BudgetReport:
    """The items that fit, and what was cut to make them fit."""

    items: tuple[Item, ...]
    budget: int
    tokens: int
    patches_cut: int = 0
    patch_chars_cut: int = 0
    bodies_cut: int = 0
    body_chars_cut: int = 0
    news_cut: int = 0
    news_chars_cut: int = 0
    items_dropped: int = 0
    dropped_chars: int = 0
    items_cut: int = 0
    cut_kinds: tuple[str, ...] = field(default_factory=tuple)

    @property
    def over_budget(self) -> bool:
        """True when even titles and links alone exceed the budget."""
        return self.tokens > self.budget

    @property
    def chars_cut(self) -> int:
        """All characters removed by the budget."""
        return self.patch_chars_cut + self.body_chars_cut + self.news_chars_cut + self.dropped_chars

    @property
    def cut_anything(self) -> bool:
        """True when the budget removed any text."""
        return self.items_cut > 0

    def describe(self) -> str:
        """A Chinese sentence for the prompt saying what the budget cut, or '' when nothing."""
        parts: list[str] = []
        if self.patches_cut:
            parts.append(f"{self.patches_cut} 处 diff 片段（{self.patch_chars_cut:,} 字符）")
        if self.bodies_cut:
            parts.append(f"{self.bodies_cut} 段正文/说明（{self.body_chars_cut:,} 字符）")
        if self.news_cut:
            parts.append(
                f"{self.news_cut} 段 changelog/README 新增内容（{self.news_chars_cut:,} 字符）"
            )
        if self.items_dropped:
            parts.append(f"{self.items_dropped} 个已由 PR 覆盖的 commit 条目")
        if not parts:
            return ""
        return (
            f"为控制输入长度（预算约 {self.budget:,} tokens），以下内容已被截短或省略："
            + "、".join(parts)
            + "。标题和链接均完整保留；不要猜测被省略的内容。"
        )


def truncate_to_tokens(text: str, tokens: int) -> str:
    """The longest prefix of `text` within `tokens` (estimated), plus a truncation mark."""
    if estimate_tokens(text) <= tokens:
        return text
    room = tokens - estimate_tokens(TRUNCATION_MARK)
    if room <= 0:
        return ""
    lo, hi = 0, len(text)
    while lo < hi:  # largest prefix length whose estimate fits
        mid = (lo + hi + 1) // 2
        if estimate_tokens(text[:mid]) <= room:
            lo = mid
        else:
            hi = mid - 1
    return text[:lo].rstrip() + TRUNCATION_MARK


def _water_level(sizes: Sequence[int], excess: int) -> int:
    """The largest cap C with sum(max(0, s - C)) >= excess (every field shares the cut)."""
    lo, hi = 0, max(sizes, default=0)
    if sum(sizes) < excess:
        return 0
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if sum(max(0, s - mid) for s in sizes) >= excess:
            lo = mid
        else:
            hi = mid - 1
    return lo


@dataclass
class _Cutter:
    """Mutable working state of one `fit` call."""

    items: list[Item]
    budget: int
    counts: dict[str, int] = field(default_factory=dict)
    touched: set[int] = field(default_factory=set)
    kinds: list[str] = field(default_factory=list)

    def total(self) -> int:
        return sum(item.tokens for item in self.items)

    def excess(self) -> int:
        return self.total() - self.budget

    def _bump(self, key: str, value: int) -> None:
        self.counts[key] = self.counts.get(key, 0) + value

    def cut_field(
        self, attr: Literal["body", "patch", "news"], pick: Callable[[Item], bool]
    ) -> None:
        """Shrink `attr` of the picked items to a common cap so the total fits, if it can."""
        excess = self.excess()
        chosen = [i for i, it in enumerate(self.items) if pick(it) and getattr(it, attr)]
        if excess <= 0 or not chosen:
            return
        sizes = [estimate_tokens(getattr(self.items[i], attr)) for i in chosen]
        # The mark costs a few tokens per cut field; ask for that much more.
        cap = _water_level(sizes, excess + len(chosen) * estimate_tokens(TRUNCATION_MARK))
        for index, size in zip(chosen, sizes, strict=True):
            if size <= cap:
                continue
            item = self.items[index]
            old: str = getattr(item, attr)
            new = truncate_to_tokens(old, cap) if cap >= _MIN_KEPT_TOKENS else ""
            if attr == "body":
                self.items[index] = replace(item, body=new)
            elif attr == "patch":
                self.items[index] = replace(item, patch=new)
            else:
                self.items[index] = replace(item, news=new)
            self._bump(f"{attr}_cut", 1)
            self._bump(f"{attr}_chars", len(old) - len(new.removesuffix(TRUNCATION_MARK)))
            self.touched.add(index)
            if attr not in self.kinds:
                self.kinds.append(attr)

    def drop_items(self) -> None:
        """Leave out droppable items, the last (least important) first, until the total fits."""
        for index in range(len(self.items) - 1, -1, -1):
            if self.excess() <= 0:
                return
            item = self.items[index]
            if not item.droppable:
                continue
            self._bump("dropped", 1)
            chars = len(item.header) + len(item.body) + len(item.patch) + len(item.news)
            self._bump("dropped_chars", chars)
            self.items[index] = replace(item, header="", body="", patch="", news="")
            self.touched.add(index)
            if "items" not in self.kinds:
                self.kinds.append("items")


def _has_body_rank(rank: int) -> Callable[[Item], bool]:
    return lambda item: _BODY_RANK[item.kind] == rank


def fit(items: Sequence[Item], budget: int) -> BudgetReport:
    """Cut patches, bodies, news, release notes, then droppable items until `items` fit."""
    cutter = _Cutter(items=list(items), budget=budget)
    cutter.cut_field("patch", lambda item: True)
    for rank in sorted({*_BODY_RANK.values(), _NEWS_RANK}):
        if rank == _NEWS_RANK:
            cutter.cut_field("news", lambda item: True)
        cutter.cut_field("body", _has_body_rank(rank))
    cutter.drop_items()
    kept = tuple(item for item in cutter.items if item.header)
    counts = cutter.counts
    return BudgetReport(
        items=kept,
        budget=budget,
        tokens=sum(item.tokens for item in kept),
        patches_cut=counts.get("patch_cut", 0),
        patch_chars_cut=counts.get("patch_chars", 0),
        bodies_cut=counts.get("body_cut", 0),
        body_chars_cut=counts.get("body_chars", 0),
        news_cut=counts.get("news_cut", 0),
        news_chars_cut=counts.get("news_chars", 0),
        items_dropped=counts.get("dropped", 0),
        dropped_chars=counts.get("dropped_chars", 0),
        items_cut=len(cutter.touched),
        cut_kinds=tuple(cutter.kinds),
    )
