"""The half-sent-digest drill, shared by its test and its bench.

A digest of several Telegram messages goes to many chats while the Bot API stand-in answers 429
to every Nth sendMessage and loses the reply of every Mth message it accepted (stored, then the
connection closes before the answer). `post`-style rounds run until every delivery is settled.
What a reader would notice is counted: parts the platform had acknowledged that were sent again,
chats missing a part or receiving them out of order, and repeats caused by lost replies.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from fake_telegram import FakeTelegram
from service_support import make_activity, make_digest
from telegram import Bot

from bot.delivery import FanOutResult, fan_out
from bot.platforms.pacing import RateGate
from bot.platforms.telegram import TelegramSender
from bot.store import Store
from collectors.activity import DayActivity
from summarizer.digest import Digest, render_markdown

DAY = date(2026, 2, 4)
START = datetime(2026, 2, 5, 1, 0, tzinfo=UTC)


class FixedDigest:
    """The fan-out's DigestSource: one digest of DAY for every chat (all follow everything)."""

    def __init__(self, paragraphs: int) -> None:
        self.digest = make_digest(DAY, paragraphs=paragraphs)
        self.activity = make_activity(DAY)

    async def day(self, day: date) -> tuple[Digest, DayActivity]:
        """The digest and its activity."""
        return self.digest, self.activity

    async def digest_for(self, day: date, repos: object, *, added: object = ()) -> Digest:
        """The same digest whatever the chat follows."""
        return self.digest


@dataclass
class DrillResult:
    """What readers would notice, and what the drill cost."""

    chats: int
    parts: int
    acknowledged_resent: int  # parts whose reply arrived, sent again (must be 0)
    chats_incomplete: int  # chats missing a part, or with parts out of order (must be 0)
    repeats: int  # extra copies of parts in chats' histories
    lost_replies: int  # replies the stand-in dropped (each may cause one repeat)
    too_many_requests: int
    rounds: int
    seconds: float
    statuses: dict[str, int]


async def run_drill(
    store: Store,
    chats: int,
    *,
    paragraphs: int = 40,
    rate_limit_every: int | None = 3,
    lose_reply_every: int | None = 7,
    retry_after: float = 1.0,
    rate_per_second: float = 1000.0,
    max_rounds: int = 20,
) -> DrillResult:
    """Deliver one digest to `chats` private chats through the chaos; count what went wrong."""
    pipeline = FixedDigest(paragraphs)
    ids = [str(1000 + n) for n in range(chats)]
    for chat_id in ids:
        await store.subscribe(
            "telegram", chat_id, None, by="drill", post_time="09:00", timezone="Asia/Shanghai"
        )
    async with FakeTelegram(
        rate_limit_every=rate_limit_every,
        chaos_retry_after=retry_after,
        lose_reply_every=lose_reply_every,
    ) as telegram:
        async with Bot(telegram.token, base_url=f"{telegram.url}/bot") as bot:
            sender = TelegramSender(bot, gate=RateGate(rate_per_second, None))
            expected = [part.text for part in sender.render(render_markdown(pipeline.digest))]
            started = time.monotonic()
            now = START
            rounds = 0
            total = FanOutResult()
            for rounds in range(1, max_rounds + 1):
                result = await fan_out(
                    store,
                    pipeline,
                    {"telegram": sender},
                    DAY,
                    worker=f"round-{rounds}",
                    now=now,
                    max_attempts=50,
                    retry_pauses=(0.01, 0.01),
                )
                total.add(result)
                retry_at = await store.next_retry_at(DAY)
                if retry_at is None:  # nothing left waiting for a later round
                    break
                now = max(now, retry_at) + timedelta(seconds=1)
            seconds = time.monotonic() - started
        acknowledged_resent = repeats = incomplete = 0
        for chat_id in ids:
            texts = [m.text for m in telegram.messages_to(int(chat_id))]
            collapsed = [t for n, t in enumerate(texts) if n == 0 or texts[n - 1] != t]
            repeats += len(texts) - len(collapsed)
            if collapsed != expected:
                incomplete += 1
            # A repeat is only allowed right after the part whose reply was lost; any other
            # second copy of a part means an acknowledged part went out again.
            acknowledged_resent += len(collapsed) - len(set(collapsed))
        return DrillResult(
            chats=chats,
            parts=len(expected),
            acknowledged_resent=acknowledged_resent,
            chats_incomplete=incomplete,
            repeats=repeats,
            lost_replies=telegram.lost_replies,
            too_many_requests=telegram.too_many_requests,
            rounds=rounds,
            seconds=seconds,
            statuses=await store.delivery_counts(DAY),
        )
