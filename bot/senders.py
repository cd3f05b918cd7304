"""What a chat platform offers the delivery layer: send one digest to one chat, or say why not."""

from __future__ import annotations

from typing import Protocol


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
