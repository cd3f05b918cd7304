"""Plain values the store hands out: chats, delivery claims and run records (frozen)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime


@dataclass(frozen=True)
class Chat:
    """A chat on one platform and what it is subscribed to.

    `repos` is None for "all tracked repositories"; `post_time` is local "HH:MM" in `timezone`.
    """

    platform: str
    chat_id: str
    repos: tuple[str, ...] | None
    post_time: str
    timezone: str
    active: bool
    subscribed_by: str | None
    subscribed_at: datetime | None
    deactivated_at: datetime | None = None
    deactivation_reason: str | None = None

    @property
    def key(self) -> tuple[str, str]:
        """(platform, chat_id), the chat's identity."""
        return (self.platform, self.chat_id)


@dataclass(frozen=True)
class DeliveryClaim:
    """One delivery (platform, chat, day) claimed by `worker` until `lease_until`.

    `attempts` counts claims including this one; with `worker` it identifies the claim, so a
    worker whose lease expired and was taken over cannot mark the delivery any more.
    """

    id: int
    platform: str
    chat_id: str
    day: date
    worker: str
    attempts: int
    lease_until: datetime


@dataclass(frozen=True)
class RunRecord:
    """The record of one day's generation: operator-facing errors and when it ran."""

    day: date
    errors: tuple[str, ...]
    started_at: datetime | None
    finished_at: datetime
