"""Resolve what a user typed (`vllm`, `FlashInfer`, `sgl-project/sglang`) to a tracked repo."""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Resolution:
    """The outcome of resolving one name: the repository, or why not and what was meant."""

    repo: str | None
    reason: str = ""
    suggestions: tuple[str, ...] = ()


def short_name(repo: str) -> str:
    """The part after the slash: `vllm-project/vllm` → `vllm`."""
    return repo.split("/", 1)[-1]


def resolve_repo(name: str, tracked: Sequence[str]) -> Resolution:
    """Resolve by full name or unique short name, case-insensitively; suggest near misses."""
    wanted = name.strip().lower()
    if not wanted:
        return Resolution(None, "empty repository name")
    for repo in tracked:
        if repo.lower() == wanted:
            return Resolution(repo)
    by_short = [repo for repo in tracked if short_name(repo).lower() == wanted]
    if len(by_short) == 1:
        return Resolution(by_short[0])
    if len(by_short) > 1:
        return Resolution(None, f"'{name}' is ambiguous", tuple(by_short))
    candidates = {short_name(r).lower(): r for r in tracked} | {r.lower(): r for r in tracked}
    close = difflib.get_close_matches(wanted, list(candidates), n=3, cutoff=0.5)
    contains = [r for r in tracked if wanted in r.lower()]
    suggestions = tuple(dict.fromkeys([candidates[c] for c in close] + contains))[:3]
    return Resolution(None, f"unknown repository '{name[:60]}'", suggestions)
