"""Fault drills: what readers and operators see when GitHub, the models, the database or an
instance fail. Real HTTP against the stand-ins (GitHub, OpenRouter-style models, Telegram) and
the real code paths: `Scheduler.tick`, `bot.app.open_store`, `bot.app.run`, `fan_out` in a
second OS process killed with SIGKILL.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from aiohttp import web
from fake_github import FakeGitHub, commit, issue
from fake_llm import API_KEY, FAKE_USER_ID, FakeLLM, rate_limited
from fake_telegram import FakeTelegram
from pydantic import SecretStr
from service_support import make_activity
from store_backends import TestDatabase, isolated_database
from telegram import Bot

from bot.app import StartupError, open_store, run
from bot.delivery import fan_out
from bot.pipeline import Pipeline
from bot.platforms.telegram import TelegramSender
from bot.scheduler import Scheduler
from bot.settings import Settings
from bot.status import collect_status, render_status
from bot.store import Store
from collectors.github import GitHubClient
from summarizer.compose import Composer
from summarizer.digest import Digest, Section
from summarizer.llm import LLMClient
from summarizer.structured import ERROR_TEXT

DAY = date(2026, 2, 4)
AFTER_MIDNIGHT = datetime(2026, 2, 4, 17, 0, tzinfo=UTC)  # 01:00 in Shanghai: DAY has ended
POST = datetime(2026, 2, 5, 1, 0, tzinfo=UTC)  # 09:00 in Shanghai: DAY's posting time
LONG_AGO = datetime(2026, 1, 1, tzinfo=UTC)
REPOS = ["o/alpha", "o/beta"]
GITHUB_TOKEN = "ghp_" + "Z" * 36
CHATS = ("101", "102", "103")
ROOT = Path(__file__).resolve().parents[1]


def github_day(github: FakeGitHub) -> None:
    for repo in REPOS:
        github.add_repo(
            repo,
            commits=[commit(when="2026-02-04T03:00:00Z", message=f"Fix the {repo} kernel (#7)")],
            issues=[issue(8, created_at="2026-02-04T04:00:00Z", title=f"{repo} crashes")],
        )


@dataclass
class Deployment:
    """One instance as `run` wires it: store, pipeline, scheduler, Telegram sender."""

    store: Store
    scheduler: Scheduler
    telegram: FakeTelegram
    github: FakeGitHub

    async def day_passes(self) -> None:
        """Generate just after midnight, then post at 09:00."""
        assert (await self.scheduler.tick(AFTER_MIDNIGHT)).ready
        result = await self.scheduler.tick(POST)
        assert result.delivery is not None and result.delivery.sent == len(CHATS)

    def posts(self) -> dict[str, str]:
        """Each chat's post (its messages joined)."""
        return {c: "\n".join(m.plain for m in self.telegram.messages_to(c)) for c in CHATS}


@asynccontextmanager
async def deployment(
    tmp_path: Path, *, models: list[str] | None = None
) -> AsyncIterator[tuple[Deployment, FakeLLM | None]]:
    """GitHub, Telegram (and, with `models`, the model endpoint) stand-ins and one instance."""
    store = await Store.open(f"sqlite+aiosqlite:///{tmp_path / 'digest.sqlite3'}")
    for chat in CHATS:
        await store.subscribe(
            "telegram", chat, None, by=None, post_time="09:00", timezone="Asia/Shanghai",
            now=LONG_AGO,
        )  # fmt: skip
    settings = Settings(digest_repos=REPOS)
    async with (
        FakeGitHub(token=GITHUB_TOKEN) as github,
        FakeTelegram() as telegram,
        FakeLLM(latency=0.0) as fake_llm,
        Bot(telegram.token, base_url=f"{telegram.url}/bot") as bot,
        GitHubClient(github.url, GITHUB_TOKEN, store, backoff=0.01, backoff_max=0.05) as client,
    ):
        github_day(github)
        llm = LLMClient(API_KEY, fake_llm.base_url, models) if models else None
        try:
            pipeline = Pipeline(settings, store, github=client, composer=Composer(llm, store))
            scheduler = Scheduler(
                settings, store, pipeline, {"telegram": TelegramSender(bot)}, lambda: POST
            )
            yield Deployment(store, scheduler, telegram, github), fake_llm if models else None
        finally:
            if llm is not None:
                await llm.aclose()
            await store.close()


async def test_github_502_for_a_whole_repository_the_digest_goes_out_saying_so(
    tmp_path: Path,
) -> None:
    async with deployment(tmp_path) as (world, _):
        world.github.server_error("/repos/o/beta", times=10_000)
        await world.day_passes()
        run = await world.store.last_run(DAY)
        status = render_status(await collect_status(Settings(digest_repos=REPOS), world.store))

    for post in world.posts().values():
        assert "o/alpha" in post and "o/beta" in post
        assert ERROR_TEXT in post  # the failed repository's section says so
        assert "Fix the o/alpha kernel" in post  # the other one is there in full
    assert run is not None
    assert any("o/beta" in e and "502" in e for e in run.errors)
    assert all(GITHUB_TOKEN not in e for e in run.errors)
    assert "`o/beta`: error" in status and GITHUB_TOKEN not in status


async def test_every_model_rate_limited_for_an_hour_the_structured_digest_goes_out_on_time(
    tmp_path: Path,
) -> None:
    models = ["m/one:free", "m/two:free"]
    async with deployment(tmp_path, models=models) as (world, fake_llm):
        assert fake_llm is not None
        for model in models:
            fake_llm.always(model, rate_limited(retry_after=3600))
        await world.day_passes()  # the 09:00 tick delivers: nobody waits out the hour
        digest = await world.store.load_digest(DAY)
        run = await world.store.last_run(DAY)
        calls = fake_llm.calls()

    assert digest is not None
    assert {s.written_by for s in digest.sections} == {"structured"}
    assert digest.summary_by == "structured"
    assert calls >= len(models)  # the models were asked, and refused
    for post in world.posts().values():
        assert "Fix the o/alpha kernel" in post and "o/beta crashes" in post
        assert FAKE_USER_ID not in post and "user_id" not in post
    assert run is not None and run.errors
    assert all(FAKE_USER_ID not in e for e in run.errors)


async def test_malformed_json_from_github_fails_that_section_and_the_run_goes_on(
    tmp_path: Path,
) -> None:
    async with deployment(tmp_path) as (world, _):
        world.github.malformed_json("/repos/o/beta/commits", times=10_000)
        await world.day_passes()
        digest = await world.store.load_digest(DAY)

    assert digest is not None
    beta, alpha = digest.section("o/beta"), digest.section("o/alpha")
    assert beta is not None and beta.written_by == "error"
    assert "malformed JSON" in (beta.reason or "")
    assert alpha is not None and alpha.written_by == "structured"
    for post in world.posts().values():
        assert ERROR_TEXT in post and "Fix the o/alpha kernel" in post


async def test_a_database_unreachable_at_start_gives_one_clear_line_after_bounded_retries(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Port 9 on this host refuses connections: the database is "down" for the whole attempt.
    settings = Settings(database_url="postgresql+asyncpg://digest:s3cret-pw@127.0.0.1:9/digest")
    with caplog.at_level(logging.WARNING, logger="bot.app"), pytest.raises(StartupError) as raised:
        await open_store(settings, give_up_after=0.5)

    message = str(raised.value)
    assert message.startswith("cannot open the database: ")
    assert "\n" not in message and "s3cret-pw" not in message
    assert raised.value.status == 1
    warnings = [r for r in caplog.records if r.name == "bot.app"]
    assert 1 <= len(warnings) <= 2  # one line per attempt, the waits doubling
    assert all("database unreachable" in r.getMessage() for r in warnings)
    assert all("s3cret-pw" not in r.getMessage() for r in warnings)


# -- SIGKILL of one of two instances mid-fan-out (PostgreSQL) --------------------------------


class HeldTelegram(FakeTelegram):
    """The stand-in that, once `hold_after` messages were accepted, holds further sends until
    `release` is set; a held send whose client has gone (killed) is dropped, as a request that
    never reached Telegram."""

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


@pytest.fixture
async def pg(tmp_path: Path) -> AsyncIterator[TestDatabase]:
    async with isolated_database("postgresql", tmp_path) as database:
        yield database


async def test_sigkill_of_one_instance_mid_fan_out_loses_and_repeats_nothing(
    pg: TestDatabase,
) -> None:
    chats = [str(5000 + n) for n in range(40)]
    store = await pg.open()
    await store.save_digest(tiny_digest(DAY), make_activity(DAY, ["o/alpha"]))
    subscribed = [
        await store.subscribe(
            "telegram", chat, None, by=None, post_time="09:00", timezone="UTC", now=LONG_AGO
        )
        for chat in chats
    ]
    await store.ensure_deliveries(DAY, subscribed)
    async with HeldTelegram() as telegram:
        telegram.hold_after = len(chats) // 2
        child = await asyncio.create_subprocess_exec(
            sys.executable,
            str(ROOT / "tests" / "drill_worker.py"),
            "--url", pg.url, "--schema", str(pg.schema), "--telegram", telegram.url,
            "--token", telegram.token, "--day", DAY.isoformat(), "--worker", "doomed",
            "--lease", "2", "--batch", "5", "--concurrency", "4",
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        try:
            # Half the chats have their post (and it is recorded); more sends are in flight.
            await telegram.wait_until(lambda: telegram.held >= 1, within=60)
            for _ in range(500):
                if (await store.delivery_counts(DAY)).get("sent") == len(chats) // 2:
                    break
                await asyncio.sleep(0.01)
            os.kill(child.pid, signal.SIGKILL)
        finally:
            await child.wait()
        assert child.returncode == -signal.SIGKILL
        telegram.release.set()
        in_flight = (await store.delivery_counts(DAY)).get("sending", 0)

        # The surviving instance finishes once the killed one's claims expire.
        async with (
            GitHubClient("http://127.0.0.1:9", None, None) as github,
            Bot(telegram.token, base_url=f"{telegram.url}/bot") as bot,
        ):
            pipeline = Pipeline(Settings(), store, github=github, composer=Composer(None, None))
            for _ in range(100):
                await fan_out(
                    store, pipeline, {"telegram": TelegramSender(bot)}, DAY,
                    worker="survivor", now=datetime.now(UTC), ensure=False, lease_seconds=2,
                )  # fmt: skip
                if (await store.delivery_counts(DAY)).get("sent") == len(chats):
                    break
                await asyncio.sleep(0.2)

    received = Counter(m.chat_id for m in telegram.sent)
    assert in_flight >= 1  # the kill left claims behind
    assert received == dict.fromkeys(chats, 1)  # no loss, no duplicate
    assert await store.delivery_counts(DAY) == {"sent": len(chats)}


# -- the whole application -------------------------------------------------------------------


async def test_run_answers_commands_posts_once_and_stops_cleanly(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'digest.sqlite3'}"
    early = await Store.open(url)
    await early.subscribe(
        "telegram", "900", None, by=None, post_time="09:00", timezone="Asia/Shanghai",
        now=LONG_AGO,
    )  # fmt: skip
    await early.close()
    now = POST + timedelta(hours=1)
    async with FakeGitHub() as github, FakeTelegram() as telegram, FakeLLM(latency=0.0) as llm:
        github_day(github)
        settings = Settings(
            database_url=url,
            github_api_url=github.url,
            openrouter_api_key=SecretStr(API_KEY),
            openrouter_base_url=llm.base_url,
            digest_models=["m/one:free"],
            digest_repos=REPOS,
            telegram_bot_token=SecretStr(telegram.token),
            telegram_api_url=telegram.url,
        )
        stop = asyncio.Event()
        with caplog.at_level(logging.INFO):
            task = asyncio.create_task(run(settings, stop, clock=lambda: now))
            try:
                telegram.push_command(chat_id=5, user_id=5, text="/subscribe")
                telegram.push_command(chat_id=5, user_id=5, text="/digest alpha 2026-02-04")
                await telegram.wait_for_messages(2, chat_id=5, within=30)
                await telegram.wait_for_messages(1, chat_id=900, within=30)
                store = await Store.open(url)
                try:
                    for _ in range(500):
                        if await store.delivery_counts(DAY) == {"sent": 1}:
                            break
                        await asyncio.sleep(0.01)
                    counts = await store.delivery_counts(DAY)
                    chat = await store.get_chat("telegram", "5")
                finally:
                    await store.close()
            finally:
                stop.set()
                code = await asyncio.wait_for(task, 30)

    answers = [m.plain for m in telegram.messages_to(5)]
    assert any(a.startswith("已订阅") for a in answers)
    assert any("o/alpha" in a and "2026-02-04" in a for a in answers)
    post = "\n".join(m.plain for m in telegram.messages_to(900))
    assert post.count("今日的 AI Infra 的新闻如下。") == 1
    assert counts == {"sent": 1}
    assert chat is not None and chat.active
    assert code == 0
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


async def test_a_rejected_telegram_token_stops_run_with_one_line_naming_the_variable(
    tmp_path: Path,
) -> None:
    async with FakeTelegram() as telegram:
        settings = Settings(
            database_url=f"sqlite+aiosqlite:///{tmp_path / 'digest.sqlite3'}",
            telegram_bot_token=SecretStr("999999:NOT-THE-TOKEN-THE-SERVER-KNOWS"),
            telegram_api_url=telegram.url,
        )
        with pytest.raises(StartupError) as raised:
            await run(settings, asyncio.Event())
    assert raised.value.status == 2
    assert str(raised.value) == "TELEGRAM_BOT_TOKEN was rejected by the Bot API"
    assert "NOT-THE-TOKEN" not in str(raised.value)
