"""Plain values the store hands out: chats, delivery claims and run records (frozen)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime


def chat_address(chat_id: str, thread_id: str | None) -> str:
    """Where a sender posts: `chat_id`, or `chat_id/thread_id` inside a forum topic or thread.

    The form Discord webhook targets already use (`<webhook id>/<thread id>`); senders parse it.
    """
    return chat_id if thread_id is None else f"{chat_id}/{thread_id}"


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
    chart: bool = False  # the picture of the day follows the daily post
    weekly: bool = False  # the week's roll-up follows the Monday post
    thread_id: str | None = None  # the forum topic its posts go to (None: the chat itself)

    @property
    def key(self) -> tuple[str, str]:
        """(platform, chat_id), the chat's identity."""
        return (self.platform, self.chat_id)

    @property
    def address(self) -> str:
        """Where its posts go: the chat, or `chat/topic` (see `chat_address`)."""
        return chat_address(self.chat_id, self.thread_id)


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
    kind: str = "daily"  # or "weekly": the roll-up of the week ending with `day`
    # Ids of the parts the chat has accepted so far: a retry resumes after them.
    sent_ids: tuple[str, ...] = ()


@dataclass(frozen=True)
class RunRecord:
    """The record of one day's generation: operator-facing errors and when it ran."""

    day: date
    errors: tuple[str, ...]
    started_at: datetime | None
    finished_at: datetime


@dataclass(frozen=True)
class TrackedRepo:
    """A repository tracked beyond DIGEST_REPOS: added by a chat's /subscribe, or pinned by /track.

    An unpinned one is collected only while some active chat names it.
    """

    repo: str
    pinned: bool
    added_by: str | None
    added_at: datetime


@dataclass(frozen=True)
class AlertChat:
    """A chat that opted into release alerts: for `repos` (None: all tracked), from `since` on."""

    platform: str
    chat_id: str
    repos: tuple[str, ...] | None
    since: datetime
    enabled_by: str | None
    # Pre-releases and nightly/rc/dev/alpha/beta tags too (`/alerts on all`); else stable only.
    prereleases: bool = False
    thread_id: str | None = None  # the forum topic alerts go to (None: the chat itself)

    @property
    def key(self) -> tuple[str, str]:
        """(platform, chat_id), the chat's identity."""
        return (self.platform, self.chat_id)

    def wants(self, repo: str) -> bool:
        """True when this chat wants alerts of `repo` (case-insensitive owner/name)."""
        return self.repos is None or repo.lower() in {r.lower() for r in self.repos}


@dataclass(frozen=True)
class AlertClaim:
    """One release alert (platform, chat, repo, tag) claimed by `worker` until `lease_until`."""

    id: int
    platform: str
    chat_id: str
    repo: str
    tag: str
    message: str
    worker: str
    attempts: int
    lease_until: datetime
    # Ids of the parts the chat has accepted so far: a retry resumes after them.
    sent_ids: tuple[str, ...] = ()
    # The chat's alert topic when claimed (alert_chats.thread_id).
    thread_id: str | None = None

    @property
    def address(self) -> str:
        """Where the alert goes: the chat, or `chat/topic`."""
        return chat_address(self.chat_id, self.thread_id)


@dataclass(frozen=True)
class WatchChange:
    """The outcome of adding watch words: which were new, which the chat already had, the total."""

    added: tuple[str, ...]
    existing: tuple[str, ...]
    total: int


class WatchLimitExceeded(Exception):
    """Adding the words would take the chat beyond its watch limit; nothing was added."""

    def __init__(self, current: int, adding: int, limit: int) -> None:
        super().__init__(f"{current} watches + {adding} new > limit {limit}")
        self.current = current
        self.adding = adding
        self.limit = limit


@dataclass(frozen=True)
class PushTargetRow:
    """A stored push target: the `push` chat id and its Apprise URL (secret: not in repr)."""

    id: str
    url: str = field(repr=False)
    added_by: str | None = None
    created_at: datetime | None = None
