"""Push targets through Apprise, over real HTTP: the one delivery engine posts to them.

`json://` and `form://` targets post to a local sink; Feishu, DingTalk and WeCom targets post
to TLS stand-ins reached through a local proxy (`tests/fake_push.py`), as Apprise sends them.
"""

from __future__ import annotations

import logging
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from fake_push import FakeServices, PushSink
from pydantic import SecretStr
from store_backends import BACKENDS, TestDatabase, isolated_database

from bot.cli import main
from bot.delivery import FanOutResult, fan_out
from bot.pipeline import Pipeline
from bot.platforms.push import (
    PLATFORM,
    FeishuSender,
    OtherSender,
    PushGate,
    PushSender,
    describe_url,
    plain_text,
    target_id,
    url_secrets,
)
from bot.settings import Settings, notify_url_list
from bot.store import Store
from bot.targets import add_target, list_targets
from collectors.github import GitHubClient
from collectors.sample import load_sample
from summarizer.compose import Composer
from summarizer.digest import Digest, render_markdown

DAY = date(2026, 1, 15)  # the bundled sample day
POST_0900 = datetime(2026, 1, 16, 1, 0, tzinfo=UTC)
FEISHU_TOKEN = "3f0a9c1e-5b7d-4e2a-9f00-aa11bb22cc33"
DINGTALK_TOKEN = "d1e2a3b4c5d6e7f8a9b0c1d2e3f4a5b6c7d8e9f0a1b2c3d4e5f6a7b8c9d0e1f2"
WECOM_KEY = "693a91f6-7xxx-4bc4-97a0-0ec2sifa5aaa"


@dataclass
class World:
    """A store with the sample day archived and a pipeline reading it."""

    db: TestDatabase
    store: Store
    settings: Settings
    pipeline: Pipeline

    async def fan_out(self, sender: PushSender, *, worker: str = "w1") -> FanOutResult:
        return await fan_out(
            self.store,
            self.pipeline,
            {PLATFORM: sender},
            DAY,
            worker=worker,
            now=POST_0900,
            retry_pauses=(),
        )

    async def target(self, url: str) -> str:
        target = await add_target(self.store, self.settings, url, post_time="09:00")
        return target.id

    async def digest_markdown(self) -> str:
        digest = await self.pipeline.digest_for(DAY, None)
        return render_markdown(digest)


@pytest.fixture(params=BACKENDS)
async def world(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[World]:
    async with isolated_database(request.param, tmp_path) as db:
        settings = Settings(database_url=db.url, digest_timezone="Asia/Shanghai")
        store = await db.open()
        activity = load_sample()
        await store.save_digest(
            await Composer(None, None).compose(activity, settings.digest_repos), activity
        )
        # Port 9 (discard) is never contacted: the day is archived.
        async with GitHubClient("http://127.0.0.1:9", None, None) as github:
            composer = Composer(None, store)
            yield World(
                db, store, settings, Pipeline(settings, store, github=github, composer=composer)
            )


class SmallJson(OtherSender):
    """`json://` targets with a small limit, so the digest needs many parts."""

    message_limit = 600


async def test_a_json_target_gets_the_digest_once_across_a_restart(world: World) -> None:
    async with PushSink() as sink:
        sink.fail_after["/digest"] = 2  # the service goes down after two parts
        chat_id = await world.target(sink.url("json", "digest"))
        first = await world.fan_out(PushSender(world.store, families=[SmallJson()]))
        assert first.retrying == 1 and len(sink.messages("digest")) == 2

        # A restart: a new process (new sender, new store connection), the service is back.
        del sink.fail_after["/digest"]
        again = await world.db.open()
        sender = PushSender(again, families=[SmallJson()])
        assert chat_id in {t.id for t in await sender.load()}
        second = await fan_out(
            again, world.pipeline, {PLATFORM: sender}, DAY, worker="w2", now=POST_0900,
            clock=lambda: datetime(2026, 1, 16, 2, 0, tzinfo=UTC),
        )  # fmt: skip
        third = await world.fan_out(sender, worker="w3")

    parts = sink.messages("digest")
    expected = SmallJson().render(await world.digest_markdown())
    assert second.sent == 1 and third.sent == 0
    assert parts == list(expected)  # every part once, in order: none lost, none repeated
    assert all(len(part) <= 600 for part in parts) and len(parts) > 3


async def test_a_form_target_gets_plain_parts_within_the_limit(world: World) -> None:
    async with PushSink() as sink:
        await world.target(sink.url("form", "hook"))
        result = await world.fan_out(PushSender(world.store, families=[SmallJson()]))
    assert result.sent == 1
    parts = sink.messages("hook")
    assert parts and all(len(part) <= 600 for part in parts)
    assert "".join(parts).count("###") == (await world.digest_markdown()).count("###")


async def test_refused_credentials_deactivate_the_target_and_tell_the_operator(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    async with PushSink() as sink:
        sink.status["/denied/s3cretT0kenValue"] = 401
        url = sink.url("json", "denied/s3cretT0kenValue")
        chat_id = await world.target(url)
        with caplog.at_level(logging.INFO):
            result = await world.fan_out(PushSender(world.store))
        again = await world.fan_out(PushSender(world.store), worker="w2")
    chat = await world.store.get_chat(PLATFORM, chat_id)
    assert result.deactivated == 1 and again.sent == 0
    assert chat is not None and not chat.active
    assert "credentials refused (401)" in (chat.deactivation_reason or "")
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert any(chat_id in line and "no more posts" in line for line in warnings)
    # (The sink's own access log is the service's side, not ours.)
    ours = [r for r in caplog.records if not r.name.startswith("aiohttp")]
    leaked = [r.getMessage() for r in ours if "s3cretT0kenValue" in r.getMessage()]
    assert not leaked, leaked
    assert not sink.received["/denied/s3cretT0kenValue"]


async def test_a_429_is_retried_later_not_deactivated(world: World) -> None:
    async with PushSink() as sink:
        sink.status["/busy"] = 429
        chat_id = await world.target(sink.url("json", "busy"))
        result = await fan_out(
            world.store, world.pipeline, {PLATFORM: PushSender(world.store)}, DAY,
            worker="w1", now=POST_0900, max_wait=1.0,
        )  # fmt: skip
    chat = await world.store.get_chat(PLATFORM, chat_id)
    assert result.retrying == 1 and result.deactivated == 0
    assert chat is not None and chat.active


async def test_feishu_dingtalk_and_wecom_receive_their_own_message_shapes(
    world: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with FakeServices(tmp_path) as services:
        for name, value in services.environ().items():
            monkeypatch.setenv(name, value)
        feishu = await world.target(f"feishu://{FEISHU_TOKEN}")
        dingtalk = await world.target(f"dingtalk://{DINGTALK_TOKEN}")
        wecom = await world.target(f"wecombot://{WECOM_KEY}")
        result = await world.fan_out(PushSender(world.store))
    assert result.sent == 3, result.errors
    assert not services.rejected
    markdown = await world.digest_markdown()

    cards = services.of("feishu", FEISHU_TOKEN)
    assert cards and all(c.payload["msg_type"] == "interactive" for c in cards)
    card_text = "".join(c.payload["card"]["elements"][0]["text"]["content"] for c in cards)
    assert "###" not in card_text and "**" in card_text  # lark_md: headings as bold lines
    assert all(c.size <= FeishuSender.message_limit for c in cards)

    ding = services.of("dingtalk", DINGTALK_TOKEN)
    assert ding and all(d.payload["msgtype"] == "markdown" for d in ding)
    assert "".join(d.payload["markdown"]["text"] for d in ding).count("###") == markdown.count(
        "###"
    )

    texts = services.of("wecom", WECOM_KEY)
    assert len(texts) > 1  # the digest is longer than one WeCom message
    assert all(t.payload["msgtype"] == "text" and t.size <= 2048 for t in texts)
    joined = "".join(t.payload["text"]["content"] for t in texts)
    assert "**" not in joined and "](" not in joined  # plain text, links spelled out
    assert {feishu, dingtalk, wecom} == {
        target_id(f"feishu://{FEISHU_TOKEN}"),
        target_id(f"dingtalk://{DINGTALK_TOKEN}"),
        target_id(f"wecombot://{WECOM_KEY}"),
    }


async def test_a_target_added_while_running_is_posted_to(world: World) -> None:
    async with PushSink() as sink:
        sender = PushSender(world.store)
        await sender.load()  # started with no targets
        await world.target(sink.url("json", "late"))
        result = await world.fan_out(sender)
    assert result.sent == 1 and sink.messages("late")


async def test_list_shows_scheme_host_and_a_hash_never_the_secret(world: World) -> None:
    import io

    await world.target(f"dingtalk://{DINGTALK_TOKEN}")
    await world.target("slack://T1ABCDEFG/B1ABCDEFG/xoxbSecretWebhookToken12345")
    out = io.StringIO()
    await list_targets(world.store, out)
    text = out.getvalue()
    assert "dingtalk://… #" in text and "slack://" in text
    assert DINGTALK_TOKEN not in text and "xoxbSecretWebhookToken12345" not in text


def test_url_secrets_cover_the_credentials_in_a_url() -> None:
    url = "mailtos://user:Pa55w0rdSecret@smtp.example.com?to=team@example.com"
    secrets = url_secrets(url)
    assert "Pa55w0rdSecret" in secrets and url in secrets
    assert "Pa55w0rdSecret" not in describe_url(url)
    assert describe_url(url).startswith("mailtos://smtp.example.com #")


def test_notify_urls_split_only_where_a_new_url_begins() -> None:
    urls = notify_url_list("mailto://u:p@x.com?to=a@b.c,d@e.f, ntfy://topic ,json://h/p")
    assert urls == ["mailto://u:p@x.com?to=a@b.c,d@e.f", "ntfy://topic", "json://h/p"]


def test_plain_text_spells_out_links_and_drops_markers() -> None:
    text = plain_text("### vllm\n- **合并** [PR #1](https://github.com/x/y/pull/1) `code`")
    assert text == "【vllm】\n- 合并 PR #1 (https://github.com/x/y/pull/1) code"


def test_targets_cli_adds_lists_and_refuses_bad_input(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("DATABASE_URL", f"sqlite+aiosqlite:///{tmp_path}/t.sqlite3")
    token = "ntfySecretTopicName123"
    assert main(["targets", "add", f"ntfys://{token}", "--time", "08:30", "--weekly"]) == 0
    added = capsys.readouterr().out
    assert added.startswith("added ntfy-") and token not in added
    target = re.search(r"added (\S+)", added)
    assert target is not None
    assert main(["targets", "list"]) == 0
    listed = capsys.readouterr().out
    assert target.group(1) in listed and "08:30" in listed and "weekly" in listed
    assert token not in listed

    assert main(["targets", "add", "not a url"]) == 2
    assert main(["targets", "add", "ntfys://x", "--time", "25:00"]) == 2
    assert main(["targets", "remove", "nope-123"]) == 2
    assert main(["targets", "test", "nope-123"]) == 2
    errors = capsys.readouterr().err.strip().splitlines()
    assert len(errors) == 4 and all(line.startswith("aiinfra-digest: ") for line in errors)
    assert "Traceback" not in "".join(errors)

    assert main(["targets", "remove", target.group(1)]) == 0
    capsys.readouterr()
    assert main(["targets", "list"]) == 0
    assert "no push targets" in capsys.readouterr().out


async def test_post_with_notify_urls_delivers_once_and_a_rerun_sends_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from bot import app
    from bot.logs import redact

    async with PushSink() as sink:
        url = sink.url("json", "team/n0tifySecretPath")
        settings = Settings(
            database_url=f"sqlite+aiosqlite:///{tmp_path}/bot.db",
            digest_timezone="Asia/Shanghai",
            notify_urls=SecretStr(f"{url}, {sink.url('form', 'other')}"),
        )
        store = await Store.open(settings.database_url)
        activity = load_sample()
        await store.save_digest(
            await Composer(None, None).compose(activity, settings.digest_repos), activity
        )
        await store.close()
        assert await app.post(settings, DAY) == 0
        first = capsys.readouterr().out
        assert await app.post(settings, DAY) == 0
        second = capsys.readouterr().out
    assert "sent 2," in first and "sent 0," in second
    assert sink.messages("team/n0tifySecretPath") and sink.messages("other")
    assert len(sink.received["/team/n0tifySecretPath"]) == len(
        OtherSender().render(render_markdown(await _sample_digest(settings)))
    )
    # The URL and the credential in it are now hidden wherever logs redact.
    assert "n0tifySecretPath" not in redact(f"POST {url} failed; path n0tifySecretPath")


async def _sample_digest(settings: Settings) -> Digest:
    return await Composer(None, None).compose(load_sample(), settings.digest_repos)


async def test_a_bad_notify_url_is_named_by_position_only(tmp_path: Path) -> None:
    from bot import app

    settings = Settings(
        database_url=f"sqlite+aiosqlite:///{tmp_path}/bot.db",
        notify_urls=SecretStr("json://127.0.0.1/ok, nosuchservice://s3cretValue99"),
    )
    with pytest.raises(app.StartupError) as failed:
        await app.post(settings, DAY)
    assert failed.value.status == 2 and "URL 2" in str(failed.value)
    assert "s3cretValue99" not in str(failed.value)


async def test_a_target_may_ask_for_the_weekly_roll_up_and_release_alerts(world: World) -> None:
    target = await add_target(
        world.store, world.settings, "json://127.0.0.1:9/x", weekly=True, alerts=True
    )
    chat = await world.store.get_chat(PLATFORM, target.id)
    assert chat is not None and chat.weekly
    assert await world.store.alert_chat(PLATFORM, target.id) is not None


def test_each_target_is_held_to_its_service_s_per_bot_limit() -> None:
    gate = PushSender().gate
    assert isinstance(gate, PushGate)
    waits = [gate.reserve_target("dingtalk-0123456789") for _ in range(21)]
    # 20 per minute per DingTalk bot: the 21st message waits for the window to move on...
    assert max(waits[:20]) == 0.0 and waits[20] > 55.0
    # ...and holds up no other bot, of that service or another.
    assert gate.reserve_target("dingtalk-9999999999") == 0.0
    assert gate.reserve_target("wecom-0123456789") == 0.0
    first, second = gate.reserve_target("slack-01234567"), gate.reserve_target("slack-01234567")
    assert second - first >= 1.0  # Slack: one message per second per webhook


async def test_targets_test_sends_one_short_message_now(world: World) -> None:
    from bot.targets import TEST_MESSAGE, test_target

    async with PushSink() as sink:
        chat_id = await world.target(sink.url("json", "check"))
        line = await test_target(world.store, chat_id)
    assert sink.messages("check") == [TEST_MESSAGE]
    assert line.startswith(f"{chat_id}: test message sent to json://127.0.0.1 #")
