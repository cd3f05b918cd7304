"""Bounds on generating days on demand: per chat a minute and a day, overall an hour."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from bot.ondemand import OnDemandLimiter

T0 = datetime(2026, 2, 5, 2, 0, tzinfo=UTC)


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now


def test_a_chat_gets_one_generation_a_minute_and_is_told_when_to_retry() -> None:
    clock = Clock()
    limiter = OnDemandLimiter(clock=clock)
    assert limiter.acquire("telegram:1") is None
    refusal = limiter.acquire("telegram:1")
    assert refusal is not None and refusal.scope == "chat-minute"
    assert refusal.retry_at == T0 + timedelta(minutes=1)
    assert limiter.acquire("telegram:2") is None  # another chat is not held back
    clock.now = T0 + timedelta(minutes=1)
    assert limiter.acquire("telegram:1") is None


def test_a_chat_gets_at_most_ten_a_day() -> None:
    clock = Clock()
    limiter = OnDemandLimiter(per_hour=1000, clock=clock)
    for minute in range(10):
        clock.now = T0 + timedelta(minutes=minute)
        assert limiter.acquire("telegram:1") is None
    clock.now = T0 + timedelta(minutes=30)
    refusal = limiter.acquire("telegram:1")
    assert refusal is not None and refusal.scope == "chat-day"
    assert refusal.retry_at == T0 + timedelta(days=1)


def test_the_hourly_cap_holds_across_chats_and_operators_are_exempt() -> None:
    clock = Clock()
    limiter = OnDemandLimiter(per_hour=3, clock=clock)
    assert [limiter.acquire(f"telegram:{i}") for i in range(3)] == [None, None, None]
    refusal = limiter.acquire("telegram:9")
    assert refusal is not None and refusal.scope == "global-hour"
    assert refusal.retry_at == T0 + timedelta(hours=1)
    assert limiter.acquire("telegram:9", operator=True) is None
    assert limiter.acquire("telegram:9", operator=True) is None
