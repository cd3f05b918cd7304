"""Pacing of one platform's sends: one budget per platform per process, split between instances.

Each Sender owns one `RateGate`, built from what it declares (messages per second overall, and
at most N per window to one chat); every message of that platform (daily posts, alerts, replies
to commands, pictures) waits at the gate once, and nowhere else. `share(n)` splits the budget
between the n live instances (the fleet's heartbeats).
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import defaultdict, deque
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager


class RateGate:
    """Keeps sends under `per_second` overall and `chat_rate` (count, seconds) per chat.

    Sends are spaced evenly (no bursts) at `margin` of the limit, and a log of the sends that
    actually went out caps any second at `margin` of the limit too: after an event-loop stall
    the delayed sends cannot bunch up into a second Telegram would count as too many.
    `pause()` holds every send after a 429.
    """

    def __init__(
        self,
        per_second: float = 30.0,
        chat_rate: tuple[int, float] | None = (20, 60.0),
        *,
        per_chat_applies: Callable[[str], bool] = lambda chat_id: chat_id.startswith("-"),
        margin: float = 0.95,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._per_second = per_second
        self._margin = margin
        self._interval = 1.0
        self._cap = 1
        self.share(1)
        self._span = 1.0
        self._chat_limit = chat_rate[0] if chat_rate else 0
        self._chat_span = (chat_rate[1] / margin) if chat_rate else 0.0
        self._per_chat_applies = per_chat_applies
        self._clock = clock
        self._next = 0.0
        self._sent: deque[float] = deque()
        self._in_flight = 0
        self._admission = asyncio.Lock()
        self._groups: dict[str, deque[float]] = defaultdict(deque)

    def share(self, instances: int) -> None:
        """Pace at 1/`instances` of the limit: running instances split one bot's budget.

        Per-chat limits stay whole: a chat's delivery is held by one instance at a time.
        """
        rate = self._per_second * self._margin / max(1, instances)
        self._interval = 1.0 / rate
        # Any one second holds at most this many sends, whatever stalls delayed them; the gap
        # to `per_second` absorbs jitter between our clock and the server's (about 70 ms).
        self._cap = max(1, math.floor(rate))

    def reserve(self, chat_id: str) -> float:
        """Book the next send slot for `chat_id`; returns how long to wait for it."""
        now = self._clock()
        earliest = now
        # A forum topic or thread (`chat/topic`) posts into its chat: the chat's limit covers all.
        chat_id = chat_id.partition("/")[0]
        paced = self._chat_limit > 0 and self._per_chat_applies(chat_id)
        if paced and chat_id not in self._groups and len(self._groups) >= 10_000:
            self._forget_idle(now)
        window = self._groups[chat_id] if paced else None
        if window is not None:
            while window and window[0] <= now - self._chat_span:
                window.popleft()
            if len(window) >= self._chat_limit:
                earliest = max(earliest, window[-self._chat_limit] + self._chat_span)
        # The overall spacing advances by one interval whatever this chat's own wait: a group at
        # its per-minute limit waits alone and never holds up every other chat of the platform.
        overall = max(now, self._next)
        self._next = overall + self._interval
        slot = max(earliest, overall)
        if window is not None:
            window.append(slot)
        return slot - now

    def _forget_idle(self, now: float) -> None:
        """Drop the windows of chats with no send in the last span (a fan-out moves on)."""
        idle = [
            key
            for key, sends in self._groups.items()
            if not sends or sends[-1] <= now - self._chat_span
        ]
        for key in idle:
            del self._groups[key]

    def admit(self, *, in_flight: bool = False) -> float:
        """Log a send going out now and return 0, or return how long until one may.

        `in_flight`: the send counts as happening *now* until `finished()` logs its end, since
        the server may see it at any moment before its answer arrives.
        """
        now = self._clock()
        while self._sent and self._sent[0] <= now - self._span:
            self._sent.popleft()
        if len(self._sent) + self._in_flight >= self._cap:
            # Wait for the oldest logged send to age out, or poll while only in-flight ones fill.
            return self._sent[0] + self._span - now if self._sent else 0.01
        if in_flight:
            self._in_flight += 1
        else:
            self._sent.append(now)
        return 0.0

    def finished(self) -> None:
        """An in-flight send got its answer (or failed): log it at this moment."""
        self._in_flight = max(0, self._in_flight - 1)
        self._sent.append(self._clock())

    async def wait(self, chat_id: str, *, in_flight: bool = False) -> None:
        """Sleep until this send may go out (see `admit` for `in_flight`)."""
        delay = self.reserve(chat_id)
        if delay > 0:
            await asyncio.sleep(delay)
        # One waiter at a time (FIFO), so the slot a wait frees up is the waiter's own.
        async with self._admission:
            while (delay := self.admit(in_flight=in_flight)) > 0:  # noqa: ASYNC110 - the clock
                await asyncio.sleep(delay)

    @asynccontextmanager
    async def slot(self, chat_id: str) -> AsyncIterator[None]:
        """Wait for a send's turn; the send counts until it is answered.

        A send's arrival at the server lies between its start and its answer, so counting it
        until the answer means no one-second window at the server ever holds more than the cap,
        however a stall (a database write, a GC pause) shifts requests in flight.
        """
        await self.wait(chat_id, in_flight=True)
        try:
            yield
        finally:
            self.finished()

    def pause(self, seconds: float) -> None:
        """Hold all sends for `seconds` (the platform said so with a 429)."""
        self._next = max(self._next, self._clock() + seconds)
