"""`post` finishes what it claims or says so: never exit 0 with chats unserved.

The kill-and-rerun drill runs `aiinfra-digest post` as real OS processes against the Telegram
stand-in: the first is killed with SIGKILL half-way through 300 chats, the second is started at
once and must wait for the dead one's leases to run out, then deliver those chats too.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections import Counter
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from aiohttp import web
from fake_discord import FakeDiscord
from fake_telegram import FakeTelegram
from service_support import make_activity

from bot.app import POST_PENDING
from bot.app import post as post_command
from bot.platforms.discord import DiscordWebhookSender, register_webhooks
from bot.post import post_once
from bot.settings import Settings, load_settings
from bot.store import Store
from summarizer.digest import Digest, Section

DAY = date(2026, 2, 4)
LONG_AGO = datetime(2026, 1, 1, tzinfo=UTC)
ROOT = Path(__file__).resolve().parents[1]
CHATS = [str(7000 + n) for n in range(300)]
CONCURRENCY = 8  # fan_out's default: the most sends one process has in flight


class HeldTelegram(FakeTelegram):
    """Holds every send after `hold_after` accepted messages until `release`; a held send whose
    client has gone (killed) is dropped, as a request that never reached Telegram."""

    def __post_init__(self) -> None:
        super().__post_init__()
        self.hold_after: int | None = None
        self.release = asyncio.Event()
        self.held = 0

    async def _dispatch(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        holding = self.hold_after is not None and not self.release.is_set()
        if method == "sendMessage" and holding and len(self.sent) >= (self.hold_after or 0):
            self.held += 1
            await self._notify()
            await self.release.wait()
            if request.transport is None or request.transport.is_closing():
                return web.Response(status=499)
        return await super()._dispatch(request)


def tiny_digest(day: date) -> Digest:
    """A one-message digest."""
    return Digest(
        day=day,
        sections=[Section(repo="o/alpha", markdown="- 修复了一个问题", written_by="structured")],
        summary="一个仓库有动态。",
        conclusion="平稳。",
    )


async def archived_day_with_chats(url: str, chats: list[str]) -> Store:
    store = await Store.open(url)
    await store.save_digest(tiny_digest(DAY), make_activity(DAY, ["o/alpha"]))
    for chat in chats:
        await store.subscribe(
            "telegram", chat, None, by=None, post_time="09:00", timezone="UTC", now=LONG_AGO
        )
    return store


def post_env(url: str, telegram: FakeTelegram, lease: float) -> dict[str, str]:
    skip = ("TELEGRAM_", "DISCORD_", "OPENROUTER_", "DATABASE_")
    env = {k: v for k, v in os.environ.items() if not k.startswith(skip)}
    env.update(
        DATABASE_URL=url,
        TELEGRAM_BOT_TOKEN=telegram.token,
        TELEGRAM_API_URL=telegram.url,
        DIGEST_REPOS="o/alpha",
        GITHUB_API_URL="http://127.0.0.1:9",  # never contacted: the day is archived
        DELIVERY_LEASE_SECONDS=str(lease),
        PYTHONPATH=str(ROOT),
    )
    return env


async def start_post(env: dict[str, str], cwd: Path) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", "post", "--date", DAY.isoformat(),
        env=env, cwd=cwd, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip


async def test_post_killed_half_way_and_rerun_at_once_serves_every_chat_and_exits_0(
    tmp_path: Path,
) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'digest.sqlite3'}"
    store = await archived_day_with_chats(url, CHATS)
    half = len(CHATS) // 2
    async with HeldTelegram() as telegram:
        telegram.hold_after = half
        env = post_env(url, telegram, lease=3.0)
        first = await start_post(env, tmp_path)
        try:
            await telegram.wait_until(lambda: telegram.held >= 1, within=120)
            for _ in range(1000):  # the accepted half is recorded
                if (await store.delivery_counts(DAY)).get("sent") == half:
                    break
                await asyncio.sleep(0.01)
            os.kill(first.pid, signal.SIGKILL)
        finally:
            await first.wait()
        assert first.returncode == -signal.SIGKILL
        left_leased = (await store.delivery_counts(DAY)).get("sending", 0)
        telegram.release.set()

        second = await start_post(env, tmp_path)
        out, err = await asyncio.wait_for(second.communicate(), 120)

    received = Counter(m.chat_id for m in telegram.sent)
    assert left_leased >= 1  # the kill left claims behind, held by a dead process
    assert set(received) == set(CHATS)  # no chat lost
    assert sum(received.values()) - len(CHATS) <= CONCURRENCY  # at most the in-flight window
    assert await store.delivery_counts(DAY) == {"sent": len(CHATS)}
    assert second.returncode == 0, err.decode()
    line = out.decode().strip()
    assert line.startswith(f"{DAY}: sent {len(CHATS) - half}, failed 0, pending 0")
    await store.close()


async def test_a_lease_another_worker_keeps_makes_post_exit_non_zero_naming_the_pending(
    tmp_path: Path,
) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'digest.sqlite3'}"
    store = await archived_day_with_chats(url, ["1", "2"])
    await store.ensure_deliveries(DAY, await store.active_chats())
    (held,) = await store.claim_deliveries(
        DAY, platform="telegram", worker="alive", limit=1, lease_seconds=600, due_before=None
    )
    async with FakeTelegram() as telegram:
        settings = load_settings(
            database_url=url, telegram_bot_token=telegram.token, telegram_api_url=telegram.url,
            digest_repos=["o/alpha"], github_api_url="http://127.0.0.1:9",
            delivery_lease_seconds=1,
        )  # fmt: skip
        from bot.platforms.telegram import telegram_sender

        async with telegram_sender(settings) as sender:
            result = await post_once(settings, DAY, {"telegram": sender}, store=store)

    assert result.sent == 1 and result.pending == 1 and not result.complete
    assert [m.chat_id for m in telegram.sent] == ["2"]
    assert await store.delivery_status("telegram", held.chat_id, DAY) == "sending"
    await store.close()


async def test_an_unreachable_discord_webhook_exits_non_zero_with_the_pending_count(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'digest.sqlite3'}"
    store = await archived_day_with_chats(url, [])
    async with FakeDiscord() as fake:
        hook = fake.add_webhook()
        session = fake.session()
    # The stand-in is gone: every connection to the webhook is refused.
    settings = Settings(
        database_url=url, digest_repos=["o/alpha"], github_api_url="http://127.0.0.1:9"
    )
    try:
        sender = DiscordWebhookSender([hook], session=session)
        await register_webhooks(store, sender, settings)
        result = await post_once(settings, DAY, {sender.platform: sender}, store=store, rounds=1)
    finally:
        await session.close()
    assert result.sent == 0 and result.pending == 1 and not result.complete
    await store.close()


async def test_post_command_exits_3_and_says_how_many_chats_are_pending(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'digest.sqlite3'}"
    store = await archived_day_with_chats(url, ["1"])
    async with FakeTelegram() as telegram:
        telegram.fail_next(502, "Bad Gateway", times=10)
        settings = load_settings(
            database_url=url, telegram_bot_token=telegram.token, telegram_api_url=telegram.url,
            digest_repos=["o/alpha"], github_api_url="http://127.0.0.1:9",
        )  # fmt: skip
        code = await post_command(settings, DAY, rounds=1)
    out, err = capsys.readouterr()
    assert code == POST_PENDING
    assert f"{DAY}: sent 0, failed 0, pending 1" in out
    assert "1 chat(s) have not received the post yet" in err
    await store.close()
