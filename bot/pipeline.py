"""A day's run: collect → summarize → archive."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date

from bot.settings import Settings
from collectors.activity import DayActivity


async def collect_activity(settings: Settings, day: date, repos: Sequence[str]) -> DayActivity:
    """Collect `day` for `repos` from GitHub with the configured client."""
    raise NotImplementedError("the collector lands with issue 2")
