"""Day windows: a calendar day in a time zone as [start, end) in UTC."""

from __future__ import annotations

from datetime import UTC, date, datetime

from collectors.window import day_window, yesterday


def test_shanghai_day_starts_at_16z_the_day_before() -> None:
    window = day_window(date(2026, 2, 4), "Asia/Shanghai")
    assert window.start == datetime(2026, 2, 3, 16, tzinfo=UTC)
    assert window.end == datetime(2026, 2, 4, 16, tzinfo=UTC)


def test_commit_after_midnight_shanghai_belongs_to_next_day() -> None:
    instant = datetime(2026, 2, 3, 16, 30, tzinfo=UTC)
    assert day_window(date(2026, 2, 4), "Asia/Shanghai").contains(instant)
    assert not day_window(date(2026, 2, 3), "Asia/Shanghai").contains(instant)
    assert day_window(date(2026, 2, 3), "UTC").contains(instant)


def test_end_is_exclusive() -> None:
    window = day_window(date(2026, 2, 4), "UTC")
    assert not window.contains(window.end)
    assert window.contains(window.start)


def test_dst_day_is_23_hours() -> None:
    window = day_window(date(2026, 3, 8), "America/New_York")
    assert (window.end - window.start).total_seconds() == 23 * 3600


def test_yesterday_is_local() -> None:
    now = datetime(2026, 2, 4, 17, 0, tzinfo=UTC)  # 01:00 on 02-05 in Shanghai
    assert yesterday("Asia/Shanghai", now) == date(2026, 2, 4)
    assert yesterday("UTC", now) == date(2026, 2, 3)
