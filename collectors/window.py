"""A calendar day in a time zone, as a half-open window [start, end) in UTC."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo


@dataclass(frozen=True)
class DayWindow:
    """The UTC instants that make up `day` in `timezone`."""

    day: date
    timezone: str
    start: datetime
    end: datetime

    def contains(self, instant: datetime) -> bool:
        """True when `instant` (timezone-aware) falls in [start, end)."""
        return self.start <= instant < self.end


def day_window(day: date, timezone: str = "Asia/Shanghai") -> DayWindow:
    """Return the UTC window of the local calendar day (DST days may be 23 or 25 hours)."""
    zone = ZoneInfo(timezone)
    start_local = datetime.combine(day, datetime.min.time(), tzinfo=zone)
    end_local = datetime.combine(day + timedelta(days=1), datetime.min.time(), tzinfo=zone)
    return DayWindow(day, timezone, start_local.astimezone(UTC), end_local.astimezone(UTC))


def yesterday(timezone: str, now: datetime | None = None) -> date:
    """The local calendar day before `now` (default: the current instant) in `timezone`."""
    current = (now or datetime.now(UTC)).astimezone(ZoneInfo(timezone))
    return current.date() - timedelta(days=1)


def today(timezone: str, now: datetime | None = None) -> date:
    """The local calendar day of `now` in `timezone`."""
    return (now or datetime.now(UTC)).astimezone(ZoneInfo(timezone)).date()
