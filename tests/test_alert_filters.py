"""Stable-only release alerts by default; `/alerts on all` adds nightlies and pre-releases.

The poller against the GitHub stand-in, alerts through the real TelegramSender to the Bot API
stand-in (which checks `message_thread_id`), the store on SQLite and PostgreSQL.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command
from fake_github import FakeGitHub, iso, release
from fake_telegram import FakeTelegram
from sqlalchemy.engine import Connection
from store_backends import BACKENDS, TestDatabase, isolated_database
from telegram import Bot

from bot.alerts import ReleasePoller, is_prerelease
from bot.platforms.telegram import TelegramSender
from bot.store import Store, make_engine
from bot.store.engine import alembic_config
from collectors.activity import Release
from collectors.github import GitHubClient

T0 = datetime(2026, 2, 5, 2, 0, tzinfo=UTC)
FLASHINFER = "flashinfer-ai/flashinfer"
FORUM = "-100500"
TOPIC = 45


class World:
    """The stand-ins, the store and a poller clock moved by the test."""

    def __init__(self, store: Store, github: FakeGitHub, telegram: FakeTelegram, bot: Bot):
        self.store = store
        self.github = github
        self.telegram = telegram
        self.sender = TelegramSender(bot)
        self.now = T0
        self.clients: list[GitHubClient] = []

    def poller(self, repos: Sequence[str] = (FLASHINFER,)) -> ReleasePoller:
        client = GitHubClient(self.github.url, None, self.store)
        self.clients.append(client)

        async def tracked() -> Sequence[str]:
            return repos

        return ReleasePoller(
            self.store,
            client,
            {"telegram": self.sender},
            repos=tracked,
            clock=lambda: self.now,
            worker="test",
        )

    def publish(self, tag: str, *, minutes_after: float, prerelease: bool = False) -> None:
        when = T0 + timedelta(minutes=minutes_after)
        item = release(tag, published_at=when, prerelease=prerelease)
        item["html_url"] = f"https://github.com/{FLASHINFER}/releases/tag/{tag}"
        self.github.repos[FLASHINFER.lower()].releases.insert(0, item)

    def tags(self, chat: str, thread: int | None = None) -> list[str]:
        return [
            re.split(r"[\s（]", m.plain.split("发布新版本 ")[1])[0]
            for m in self.telegram.messages_in(chat, thread)
        ]


@pytest.fixture(params=BACKENDS)
async def world(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[World]:
    async with (
        isolated_database(request.param, tmp_path) as db,
        FakeGitHub() as github,
        FakeTelegram(forums={FORUM: {TOPIC}}) as telegram,
    ):
        old = iso(T0 - timedelta(days=9))
        github.add_repo(FLASHINFER, releases=[release("v0.2.0", published_at=old)])
        store = await db.open()
        async with Bot(telegram.token, base_url=f"{telegram.url}/bot") as bot:
            world = World(store, github, telegram, bot)
            try:
                yield world
            finally:
                for client in world.clients:
                    await client.aclose()
                await store.close()


async def opt_in(
    store: Store, chat: str, *, prereleases: bool | None = None, thread: str | None = None
) -> None:
    await store.enable_alerts(
        "telegram",
        chat,
        None,
        by=chat,
        now=T0 - timedelta(hours=1),
        prereleases=prereleases,
        thread_id=thread,
    )


async def test_a_nightly_and_a_real_release_on_one_day_reach_stable_chats_once_and_all_chats_twice(
    world: World,
) -> None:
    await opt_in(world.store, "1")  # the default: stable releases only
    await opt_in(world.store, "2", prereleases=True)  # `/alerts on all`
    poller = world.poller()
    await poller.poll_once()
    world.publish("nightly-v0.3.0-20260205", minutes_after=1)
    world.publish("v0.3.0", minutes_after=3)
    world.now += timedelta(minutes=5)
    result = await poller.poll_once()
    assert result.new_releases == 2
    assert world.tags("1") == ["v0.3.0"]
    assert sorted(world.tags("2")) == ["nightly-v0.3.0-20260205", "v0.3.0"]
    assert world.telegram.rejected == []


async def test_a_release_github_marks_as_prerelease_is_stable_only_for_all_chats(
    world: World,
) -> None:
    await opt_in(world.store, "1")
    await opt_in(world.store, "2", prereleases=True)
    poller = world.poller()
    await poller.poll_once()
    world.publish("v0.4.0", minutes_after=1, prerelease=True)
    world.now += timedelta(minutes=5)
    await poller.poll_once()
    assert world.tags("1") == []
    assert world.tags("2") == ["v0.4.0"]


async def test_switching_back_to_stable_keeps_the_opt_in_and_drops_the_nightlies(
    world: World,
) -> None:
    await opt_in(world.store, "1", prereleases=True)
    await opt_in(world.store, "1", prereleases=False)  # `/alerts on stable`
    await opt_in(world.store, "1")  # `/alerts on`: as before
    current = await world.store.alert_chat("telegram", "1")
    assert current is not None and not current.prereleases
    poller = world.poller()
    await poller.poll_once()
    world.publish("nightly-20260205", minutes_after=1)
    world.now += timedelta(minutes=5)
    await poller.poll_once()
    assert world.tags("1") == []


async def test_alerts_turned_on_in_a_forum_topic_are_posted_in_that_topic(world: World) -> None:
    await opt_in(world.store, FORUM, thread=str(TOPIC))
    poller = world.poller()
    await poller.poll_once()
    world.publish("v0.3.0", minutes_after=1)
    world.now += timedelta(minutes=5)
    assert (await poller.poll_once()).sent == 1
    assert world.tags(FORUM, TOPIC) == ["v0.3.0"]
    assert world.telegram.messages_in(FORUM, None) == []


@pytest.mark.parametrize(
    ("tag", "unstable"),
    [
        ("nightly-2026-11-29", True),
        ("v1.0.0-rc.1", True),
        ("v0.5.0rc1", True),
        ("v0.6.4.dev3", True),
        ("v2.0.0a1", True),
        ("v2.0.0b2", True),
        ("v1.0.0-beta", True),
        ("v1.0.0-alpha.2", True),
        ("v0.6.0", False),
        ("v0.2.0.post1", False),
        ("v0.9.0-cu128", False),
        ("v1-devices", False),
        ("release-2026.02", False),
    ],
)
def test_which_tags_are_pre_releases(tag: str, unstable: bool) -> None:
    item = Release(tag_name=tag, published_at=T0, url="https://github.com/a/b/releases")
    assert is_prerelease(item) is unstable


def _to_0004(connection: Connection) -> None:
    config = alembic_config()
    config.attributes["connection"] = connection
    command.upgrade(config, "0004")


@pytest.fixture(params=BACKENDS)
async def db(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[TestDatabase]:
    async with isolated_database(request.param, tmp_path) as database:
        yield database


async def test_a_0004_database_keeps_its_chats_and_alerts_stable_only_in_the_chat_itself(
    db: TestDatabase,
) -> None:
    since = T0.replace(tzinfo=None) if db.backend == "sqlite" else T0
    engine = make_engine(db.url, schema=db.schema)
    try:
        async with engine.begin() as conn:
            await conn.run_sync(_to_0004)
            await conn.execute(
                sa.text(
                    "INSERT INTO alert_chats (platform, chat_id, repos, since, updated_at)"
                    " VALUES ('telegram', '-100500', NULL, :at, :at)"
                ),
                {"at": since},
            )
            await conn.execute(
                sa.text(
                    "INSERT INTO chats (platform, chat_id, post_time, timezone, active,"
                    " updated_at) VALUES ('telegram', '-100500', '09:00', 'Asia/Shanghai',"
                    " :yes, :at)"
                ),
                {"at": since, "yes": True},
            )
    finally:
        await engine.dispose()
    store = await db.open()  # migrates to the head
    try:
        alerts = await store.alert_chat("telegram", "-100500")
        chat = await store.get_chat("telegram", "-100500")
    finally:
        await store.close()
    assert alerts is not None and not alerts.prereleases and alerts.thread_id is None
    assert chat is not None and chat.active and chat.address == "-100500"
