"""Operators' status: `/status` (admins only, unadvertised) and `aiinfra-digest status`.

The store is real (SQLite, and PostgreSQL when TEST_DATABASE_URL is set); the GitHub rate limit
comes from a real collection against the GitHub stand-in.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from fake_github import FakeGitHub, commit
from fake_llm import FAKE_USER_ID
from fake_telegram import FakeTelegram
from pydantic import SecretStr
from service_support import ArchivePipeline, make_activity
from store_backends import BACKENDS, TestDatabase, isolated_database

from bot.app import status as status_command
from bot.commands import ChatContext, CommandService
from bot.pipeline import Pipeline
from bot.platforms.telegram import TelegramAdapter, render_messages
from bot.settings import Settings
from bot.status import collect_status, load_github_limit, record_github_limit, render_status
from bot.store import Store
from collectors.github import GitHubClient
from summarizer.compose import Composer
from summarizer.digest import Digest, Section

DAY = date(2026, 2, 4)
NOW = datetime(2026, 2, 5, 2, 0, tzinfo=UTC)  # 10:00 in Shanghai: DAY is yesterday
KEY = "sk-or-v1-" + "a" * 40
REPOS = ("deepseek-ai/DeepGEMM", "NVIDIA/cutlass", "vllm-project/vllm")


@pytest.fixture(params=BACKENDS)
async def db(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[TestDatabase]:
    async with isolated_database(request.param, tmp_path) as database:
        yield database


def settings(**values: object) -> Settings:
    return Settings(digest_repos=list(REPOS), **values)  # type: ignore[arg-type]


def written_digest() -> Digest:
    """One section per way of writing it, reasons carrying a key and a provider account id."""
    return Digest(
        day=DAY,
        sections=[
            Section(repo=REPOS[0], markdown="- x", written_by="model", model="m/one:free"),
            Section(
                repo=REPOS[1],
                markdown="- y",
                written_by="structured",
                reason=f"all models failed: m/one:free: 429 rate limited "
                f'{{"user_id": "{FAKE_USER_ID}"}} key {KEY}',
            ),
            Section(
                repo=REPOS[2],
                markdown="暂时未能获取",
                written_by="error",
                reason="GET /repos/vllm-project/vllm/commits: 502 Bad Gateway",
            ),
        ],
        summary="s",
        conclusion="c",
        summary_by="m/one:free",
    )


async def populate(store: Store) -> None:
    """DAY archived, its run recorded, three chats due: one sent, one failed, one pending."""
    await store.save_digest(written_digest(), make_activity(DAY, REPOS))
    await store.record_run(DAY, [f"section {REPOS[1]}: 429 from {FAKE_USER_ID}"])
    chats = [
        await store.subscribe(platform, chat, None, by=None, post_time="09:00", timezone="UTC")
        for platform, chat in (("telegram", "1"), ("telegram", "2"), ("discord", "3"))
    ]
    await store.ensure_deliveries(DAY, chats)
    first, second = await store.claim_deliveries(
        DAY, platform="telegram", worker="w", limit=2, lease_seconds=60, due_before=None
    )
    await store.mark_delivered(first, ["10"])
    await store.mark_failed(second, "Forbidden: bot was blocked", final=True)
    await record_github_limit(store, 4321, NOW.timestamp() + 3600, now=NOW)


async def test_status_says_how_each_section_was_written_and_why_redacted(db: TestDatabase) -> None:
    store = await db.open()
    await populate(store)

    status = await collect_status(settings(), store, now=NOW)
    text = render_status(status)

    assert status.day == DAY and status.expected_day == DAY
    by_repo = {r.repo: r for r in status.repos}
    assert by_repo[REPOS[0]].written_by == "model" and by_repo[REPOS[0]].model == "m/one:free"
    assert by_repo[REPOS[1]].written_by == "structured"
    assert "429" in (by_repo[REPOS[1]].reason or "")
    assert by_repo[REPOS[2]].written_by == "error"
    assert "502" in (by_repo[REPOS[2]].reason or "")
    assert status.deliveries == {"sent": 1, "failed": 1, "pending": 1}
    assert status.chats == {"telegram": 2, "discord": 1}
    assert status.github is not None and status.github.remaining == 4321
    assert "1 done, 1 pending, 1 failed" in text
    assert "model `m/one:free`" in text
    assert "4321 left" in text
    assert "discord 1, telegram 2" in text
    assert "Run errors: 1" in text
    assert FAKE_USER_ID not in text and KEY not in text


async def test_status_before_any_digest_says_nothing_was_generated(db: TestDatabase) -> None:
    store = await db.open()

    text = render_status(await collect_status(settings(), store, now=NOW))

    assert "No digest has been generated yet." in text
    assert f"Not generated yet: {DAY.isoformat()}" in text
    assert "GitHub rate limit: not seen yet" in text


async def test_status_keeps_one_fact_per_line_in_telegram(tmp_path: Path) -> None:
    store = await Store.open(f"sqlite+aiosqlite:///{tmp_path / 'db.sqlite3'}")
    try:
        await populate(store)
        status = await collect_status(settings(), store, now=NOW)
    finally:
        await store.close()
    text = render_status(status)
    plain = render_messages(text)[0].text
    assert len(plain.splitlines()) == len(text.strip().splitlines())


async def test_a_collection_leaves_the_github_rate_limit_for_status(tmp_path: Path) -> None:
    store = await Store.open(f"sqlite+aiosqlite:///{tmp_path / 'db.sqlite3'}")
    try:
        async with FakeGitHub(rate_limit=5000) as github:
            github.add_repo("o/r", commits=[commit(when="2026-02-04T01:00:00Z", message="x")])
            async with GitHubClient(github.url, None, store) as client:
                pipeline = Pipeline(
                    Settings(digest_repos=["o/r"]),
                    store,
                    github=client,
                    composer=Composer(None, store),
                )
                await pipeline.day(DAY)
            expected = github.remaining
        limit = await load_github_limit(store)
    finally:
        await store.close()
    assert limit is not None
    assert limit.remaining == expected < 5000
    assert limit.reset_at is not None and limit.seen_at is not None


def ctx(platform: str, user_id: str | None, chat_kind: str = "private") -> ChatContext:
    async def never() -> bool:
        return False

    return ChatContext(platform, "100", chat_kind, user_id, never)  # type: ignore[arg-type]


async def test_status_command_answers_only_admin_user_ids(tmp_path: Path) -> None:
    store = await Store.open(f"sqlite+aiosqlite:///{tmp_path / 'db.sqlite3'}")
    try:
        await populate(store)
        config = settings(admin_user_ids=["telegram:7", "discord:9"])
        service = CommandService(config, store, ArchivePipeline(store), clock=lambda: NOW)

        admin = await service.handle(ctx("telegram", "7"), "status", "")
        discord_admin = await service.handle(ctx("discord", "9", "group"), "/status", "")
        wrong_platform = await service.handle(ctx("discord", "7"), "status", "")
        stranger = await service.handle(ctx("telegram", "8"), "status", "")
        anonymous = await service.handle(ctx("telegram", None, "channel"), "status", "")
        unknown = await service.handle(ctx("telegram", "8"), "statux", "")
    finally:
        await store.close()

    assert "Last digest: 2026-02-04" in admin.text and admin.ephemeral
    assert "Last digest: 2026-02-04" in discord_admin.text
    for refused in (wrong_platform, stranger, anonymous):
        assert refused == unknown.__class__(unknown.text.replace("statux", "status"), True)
    assert "status" not in [name for name, _ in service.commands]


async def test_an_admin_asks_status_in_a_private_telegram_chat(tmp_path: Path) -> None:
    store = await Store.open(f"sqlite+aiosqlite:///{tmp_path / 'db.sqlite3'}")
    try:
        await populate(store)
        async with FakeTelegram() as telegram:
            config = settings(
                admin_user_ids=["telegram:7"],
                telegram_bot_token=SecretStr(telegram.token),
                telegram_api_url=telegram.url,
            )
            service = CommandService(config, store, ArchivePipeline(store), clock=lambda: NOW)
            adapter = TelegramAdapter(config, service)
            await adapter.start(poll_timeout=1)
            try:
                telegram.push_command(chat_id=7, user_id=7, text="/status")
                telegram.push_command(chat_id=8, user_id=8, text="/status")
                await telegram.wait_for_messages(1, chat_id=7)
                await telegram.wait_for_messages(1, chat_id=8)
            finally:
                await adapter.stop()
            menu = [c["command"] for c in telegram.commands]
    finally:
        await store.close()
    assert "Last digest: 2026-02-04" in telegram.messages_to(7)[0].plain
    assert telegram.messages_to(8)[0].plain.startswith("未知命令 /status")
    assert "status" not in menu


async def test_cli_status_prints_the_same_picture(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'db.sqlite3'}"
    store = await Store.open(url)
    await populate(store)
    await store.close()

    code = await status_command(settings(database_url=url), give_up_after=1)

    out = capsys.readouterr().out
    assert code == 0
    assert "Last digest: 2026-02-04" in out
    assert "1 done, 1 pending, 1 failed" in out
    assert FAKE_USER_ID not in out
