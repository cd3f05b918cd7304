"""What a platform offers the delivery engine: one message to one chat, or why not.

A sender *declares* what the engine needs to know (its platform name, message limit, rates and
whether it posts pictures) as class attributes, renders Markdown into the platform's messages,
and sends one message at a time, mapping the platform's errors onto the three below. Splitting
is `bot.platforms.textsplit`; pacing is the sender's `gate` (`bot.platforms.pacing`), one per
sender object, built once per process; progress and retries are the engine's
(`bot.delivery`). Nothing else lives in a sender.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any, ClassVar, Protocol, runtime_checkable

from bot.platforms.pacing import RateGate


class ChatGone(Exception):
    """The chat no longer accepts messages (bot blocked, removed, chat or webhook deleted)."""


class RetryLater(Exception):
    """The platform asked us to wait `retry_after` seconds before sending again."""

    def __init__(self, retry_after: float, message: str = "rate limited") -> None:
        super().__init__(f"{message}; retry after {retry_after:g} s")
        self.retry_after = retry_after


class ChatMoved(Exception):
    """The chat lives under a new id now (a Telegram group that became a supergroup)."""

    def __init__(self, old_chat_id: str, new_chat_id: str) -> None:
        super().__init__(f"chat {old_chat_id} moved to {new_chat_id}")
        self.old_chat_id = old_chat_id
        self.new_chat_id = new_chat_id


class Sender(ABC):
    """One platform's delivery of single messages; subclasses declare their limits.

    `render` turns the readers' Markdown into the platform's messages (each within
    `message_limit`); `send_part` sends one of them and returns its message id, raising ChatGone
    when the chat is gone for good, RetryLater when asked to wait, ChatMoved when the chat has a
    new id; any other exception is a transient failure the engine retries (from that part).
    """

    platform: str
    # Longest message, in the platform's own unit (UTF-16 code units, characters, bytes).
    message_limit: ClassVar[int]
    # Messages per second this bot may send on the platform overall (split between instances).
    rate_per_second: float
    # At most `count` messages per `seconds` to one chat (None: no per-chat limit).
    chat_rate: ClassVar[tuple[int, float] | None] = None
    # Whether `send_photo` works (the chart of the day).
    sends_photos: ClassVar[bool] = False

    def __init__(self, *, gate: RateGate | None = None) -> None:
        self.gate = gate or RateGate(
            self.rate_per_second,
            self.chat_rate,
            per_chat_applies=self.paced_per_chat,
        )

    def paced_per_chat(self, chat_id: str) -> bool:
        """Whether `chat_rate` applies to `chat_id` (all chats, unless a platform says less)."""
        return True

    @abstractmethod
    def render(self, markdown: str) -> Sequence[Any]:
        """The readers' Markdown as this platform's messages, in order, each within the limit."""

    def render_for(self, chat_id: str, markdown: str) -> Sequence[Any]:
        """`render` for one chat; platforms whose chats differ in limits (push) override it."""
        return self.render(markdown)

    @abstractmethod
    async def send_part(self, chat_id: str, part: Any, *, reply_to: str | None = None) -> str:
        """Send one rendered message to `chat_id`; return its message id."""

    async def send_markdown(
        self, chat_id: str, markdown: str, *, reply_to: str | None = None, max_wait: float = 30.0
    ) -> list[str]:
        """Send `markdown` now, unrecorded (a reply to a command, a progress note).

        Paced at the gate like every message; a short rate limit is waited out, a moved chat
        followed. Recorded deliveries (digests, alerts) go through `bot.delivery` instead, which
        resumes a half-sent digest.
        """
        ids: list[str] = []
        target = chat_id
        for index, part in enumerate(self.render_for(chat_id, markdown)):
            for attempt in range(1, 4):
                try:
                    first = reply_to if index == 0 else None
                    async with self.gate.slot(target):
                        ids.append(await self.send_part(target, part, reply_to=first))
                    break
                except RetryLater as exc:
                    self.gate.pause(exc.retry_after)
                    if exc.retry_after > max_wait or attempt == 3:
                        raise
                except ChatMoved as exc:
                    target = exc.new_chat_id
        return ids

    async def send_photo(self, chat_id: str, png: bytes, caption: str) -> str:
        """Post a PNG with a plain caption; only where `sends_photos` is declared."""
        raise NotImplementedError(f"{self.platform} does not post pictures")

    async def aclose(self) -> None:  # noqa: B027 - most senders hold nothing to close
        """Release what the sender holds (HTTP sessions); the default holds nothing."""


@runtime_checkable
class PhotoSender(Protocol):
    """A Sender that can also post a picture (the chart of the day) to a chat."""

    async def send_photo(self, chat_id: str, png: bytes, caption: str) -> str:
        """Post `png` with a plain-text `caption`; return its message id."""
        ...


def photo_sender(sender: object) -> PhotoSender | None:
    """`sender` as a PhotoSender when it declares it posts pictures, else None."""
    if isinstance(sender, Sender):
        return sender if sender.sends_photos else None
    return sender if isinstance(sender, PhotoSender) else None
