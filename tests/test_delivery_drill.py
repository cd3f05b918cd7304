"""Half-sent digests resume where they stopped: 429 storms and lost replies over the real client.

The drill of issue 9 (now in `delivery_drill.py`, shared with `bench/resume_drill.py`): a
5-part digest to 50 chats while the Bot API stand-in answers 429 to every third sendMessage, and
separately while it loses the reply of every fifth message it accepted.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from delivery_drill import run_drill
from store_backends import BACKENDS, isolated_database

from bot.store import Store

PARAGRAPHS = 20  # renders to eight Telegram messages


@pytest.fixture(params=BACKENDS)
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Store]:
    async with isolated_database(request.param, tmp_path) as database:
        yield await database.open()


async def test_a_429_storm_never_repeats_an_acknowledged_part_and_every_chat_gets_all(
    store: Store,
) -> None:
    # Telegram says "retry after 1"; time is scaled down tenfold to keep the test short.
    result = await run_drill(
        store, 50, paragraphs=PARAGRAPHS, rate_limit_every=3, lose_reply_every=None, retry_after=0.1
    )
    assert result.parts >= 5
    assert result.too_many_requests > 50
    assert result.acknowledged_resent == 0 and result.repeats == 0
    assert result.chats_incomplete == 0
    assert result.statuses == {"sent": 50}


async def test_lost_replies_repeat_at_most_that_part_and_every_chat_gets_all(
    store: Store,
) -> None:
    result = await run_drill(
        store, 50, paragraphs=PARAGRAPHS, rate_limit_every=None, lose_reply_every=5
    )
    assert result.lost_replies > 10
    assert result.acknowledged_resent == 0
    assert result.repeats <= result.lost_replies
    assert result.chats_incomplete == 0
    assert result.statuses == {"sent": 50}
