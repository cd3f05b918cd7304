"""One pacing budget per platform per process, built from what each sender declares."""

from __future__ import annotations

from itertools import pairwise

import pytest
from telegram import Bot

from bot.app import share_budgets
from bot.platforms.base import Sender
from bot.platforms.discord import DiscordWebhookSender
from bot.platforms.pacing import RateGate
from bot.platforms.telegram import TelegramSender

WEBHOOK = "https://discord.com/api/webhooks/123456789012345678/" + "x" * 68


def senders() -> dict[str, Sender]:
    telegram = TelegramSender(Bot("123456:" + "A" * 35))
    webhook = DiscordWebhookSender([WEBHOOK])
    return {telegram.platform: telegram, webhook.platform: webhook}


def spacing(gate: RateGate, chat: str, sends: int) -> list[float]:
    """The gaps between `sends` consecutive reservations for `chat` (seconds)."""
    slots = [gate.reserve(chat) for _ in range(sends)]
    return [round(b - a, 4) for a, b in pairwise(slots)]


def test_each_sender_paces_at_what_it_declares() -> None:
    both = senders()
    telegram, webhook = both["telegram"], both["discord-webhook"]
    # 30/s at a 0.95 margin overall; a private chat has no per-chat limit.
    assert spacing(telegram.gate, "42", 3) == pytest.approx([1 / 28.5] * 2, abs=1e-3)
    # A group takes at most 20 a minute: the 21st waits for the window to move.
    group = [telegram.gate.reserve("-42") for _ in range(21)]
    assert group[-1] > 60
    # A webhook takes at most 5 per 2 s, whatever the overall 50/s would allow.
    hook = [webhook.gate.reserve("123456789012345678") for _ in range(6)]
    assert hook[-1] >= 2.0


def test_the_fleet_splits_every_platforms_budget_not_only_telegrams() -> None:
    both = senders()
    share_budgets(both)(2)
    assert spacing(both["telegram"].gate, "7", 3) == pytest.approx([2 / 28.5] * 2, abs=1e-3)
    assert spacing(both["discord-webhook"].gate, "x", 2) == pytest.approx([2 / 47.5], abs=1e-3)
    share_budgets(both)(1)
    assert spacing(both["telegram"].gate, "8", 3) == pytest.approx([1 / 28.5] * 2, abs=1e-3)


def test_a_group_at_its_limit_waits_alone_and_holds_up_no_other_chat() -> None:
    gate = senders()["telegram"].gate
    group = [gate.reserve("-42") for _ in range(21)]
    assert group[-1] > 60  # the group's 21st message waits for its minute
    assert gate.reserve("42") < 1  # a private chat right after it does not
