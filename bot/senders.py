"""What a chat platform offers the delivery layer: send one digest to one chat, or say why not.

Sending a picture is an optional capability (`PhotoSender`); a platform without it simply
receives no pictures.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable


class ChatGone(Exception):
    """The chat no longer accepts messages (bot blocked, removed, chat or webhook deleted)."""


class RetryLater(Exception):
    """The platform asked us to wait `retry_after` seconds before sending again."""

    def __init__(self, retry_after: float, message: str = "rate limited") -> None:
        super().__init__(f"{message}; retry after {retry_after:g} s")
        self.retry_after = retry_after


class Sender(Protocol):
    """One platform's delivery of a digest (already in the readers' Markdown) to one chat."""

    platform: str

    async def send_digest(self, chat_id: str, markdown: str) -> list[str]:
        """Send `markdown` (split and rendered as the platform needs); return the message ids.

        Raises ChatGone when the chat is gone for good, RetryLater when asked to wait; any other
        exception is a transient failure the caller may retry.
        """
        ...


@runtime_checkable
class PhotoSender(Protocol):
    """A Sender that can also post a picture (the chart of the day) to a chat."""

    async def send_photo(self, chat_id: str, png: bytes, caption: str) -> str:
        """Post `png` with a plain-text `caption` (cut to the platform's limit); return its id.

        Raises ChatGone, RetryLater or any other exception as `Sender.send_digest` does.
        """
        ...


def photo_sender(sender: object) -> PhotoSender | None:
    """`sender` as a PhotoSender when it can post pictures, else None."""
    return sender if isinstance(sender, PhotoSender) else None
