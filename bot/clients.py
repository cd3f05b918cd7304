"""The process's clients of outside services: one GitHub client and one model client.

`aiinfra-digest run` and `post` open them once and hand them to the pipeline, the release-alert
poller, the weekly roll-up (scheduler and `/weekly`) and repository checks, so the GitHub rate
limit, the ETag cache, the model limiter and the fallback chain's parked models are shared by
every path instead of being multiplied by the number of paths.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from bot.pipeline import make_github, make_llm
from bot.settings import Settings
from collectors.cache import KeyValueCache
from collectors.github import GitHubClient
from summarizer.llm import LLMClient


@dataclass(frozen=True)
class Clients:
    """One GitHub client (with its ETag cache) and one model client (None without a key)."""

    github: GitHubClient
    llm: LLMClient | None


@asynccontextmanager
async def open_clients(
    settings: Settings, cache: KeyValueCache | None, *, llm_minute: float = 60.0
) -> AsyncIterator[Clients]:
    """The clients from the settings, closed on exit; `llm_minute` shortens the limiter's window
    (tests only)."""
    llm = make_llm(settings, minute=llm_minute)
    try:
        async with make_github(settings, cache) as github:
            yield Clients(github, llm)
    finally:
        if llm is not None:
            await llm.aclose()
