"""Push targets: pacing against each service's per-bot limit, and a daily post beside Telegram.

Part 1 sends `--messages` messages (Feishu: at least 120) to one Feishu, DingTalk, WeCom and
Slack target each, at once, the way the delivery engine sends parts (each waits at the `push`
sender's gate, then one Apprise call in a worker thread). The stand-ins (tests/fake_push.py:
TLS with a local CA behind a local CONNECT proxy, reached by Apprise's `requests` through
HTTPS_PROXY and REQUESTS_CA_BUNDLE) reject anything beyond the documented per-bot limits:
Feishu 100/min and 5/s, DingTalk and WeCom 20/min, Slack 1/s. Prints, per target, the most
messages accepted in any second and any minute against the limit, the average rate and the
rejections (expect 0). Real time: no window is shortened.

Part 2 fans the sample day's digest out through `bot.delivery.fan_out` to `--targets` push
targets (Feishu, DingTalk, WeCom and Slack bots in turn) and `--chats` Telegram private chats
together (tests/fake_telegram.py, 30 messages/s, python-telegram-bot over real HTTP). Prints the
wall time, deliveries and the 429s from either side (expect 0).
Run: python bench/push_targets.py [--messages 45] [--targets 20] [--chats 1000]
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
import tempfile
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from fake_push import Received, ServicesProcess  # noqa: E402
from fake_telegram import FakeTelegram  # noqa: E402
from telegram import Bot  # noqa: E402

from bot.delivery import fan_out  # noqa: E402
from bot.pipeline import Pipeline  # noqa: E402
from bot.platforms.base import RetryLater  # noqa: E402
from bot.platforms.push import (  # noqa: E402
    DingTalkSender,
    FeishuSender,
    PushSender,
    PushTarget,
    SlackSender,
    WeComSender,
    target_id,
)
from bot.platforms.telegram import TelegramSender  # noqa: E402
from bot.settings import Settings  # noqa: E402
from bot.store import Store  # noqa: E402
from collectors.github import GitHubClient  # noqa: E402
from collectors.sample import load_sample  # noqa: E402
from summarizer.compose import Composer  # noqa: E402

TELEGRAM_LIMIT = 30


def bot_url(service: str, n: int) -> str:
    """The Apprise URL of the n-th stand-in bot of a service."""
    if service == "feishu":
        return f"feishu://bench{n:04d}feishu0000000000000000"
    if service == "dingtalk":
        return f"dingtalk://bench{n:04d}0000000000000000000000000000000000000000000000000000"
    if service == "wecom":
        return f"wecombot://bench{n:04d}-wecom-0000-0000-000000000000"
    return f"slack://T0BENCH{n:04d}/B0BENCH{n:04d}/bench{n:04d}slack000000000000"


def busiest(times: list[float], seconds: float) -> int:
    """The most of `times` within any window of `seconds`."""
    best, start = 0, 0
    for end, at in enumerate(times):
        while at - times[start] >= seconds:
            start += 1
        best = max(best, end - start + 1)
    return best


async def pacing(services: ServicesProcess, messages: int) -> None:
    """Part 1: `messages` to one target per service at once, paced by the gate."""
    sender = PushSender()
    limits = {
        "feishu": FeishuSender.chat_rate,
        "dingtalk": DingTalkSender.chat_rate,
        "wecom": WeComSender.chat_rate,
        "slack": SlackSender.chat_rate,
    }
    targets = {
        service: PushTarget(target_id(bot_url(service, 1)), bot_url(service, 1))
        for service in limits
    }
    for target in targets.values():
        sender.add(target)
    retried: Counter[str] = Counter()

    # Feishu's 100 per minute binds only beyond 100 messages.
    counts = {
        service: max(messages, 120) if service == "feishu" else messages for service in limits
    }

    async def send(service: str, target: PushTarget) -> None:
        for n in range(counts[service]):
            while True:
                await sender.gate.wait(target.id)
                try:
                    await sender.send_part(target.id, f"第 {n + 1} 条 / message {n + 1}")
                    break
                except RetryLater:
                    retried[service] += 1

    started = time.monotonic()
    await asyncio.gather(*(send(service, t) for service, t in targets.items()))
    wall = time.monotonic() - started
    services.snapshot()
    print(f"part 1: messages to one bot of each service at once {counts} ({wall:.0f} s, real time)")
    for service, rate in limits.items():
        got: list[Received] = services.of(service)
        times = [r.at for r in got]
        rejected = sum(1 for s, _bot, _why in services.rejected if s.startswith(service))
        span = times[-1] - times[0] if len(times) > 1 else float("nan")
        per_minute = (len(times) - 1) / span * 60 if span else float("nan")
        assert rate is not None
        declared = rate[0] * 60 / rate[1]
        print(
            f"  {service:8s} declared {rate[0]}/{rate[1]:g} s = {declared:.0f}/min; accepted "
            f"{len(times)}; busiest second {busiest(times, 1.0)}, minute {busiest(times, 60.0)}; "
            f"average {per_minute:.1f}/min "
            f"over {span:.0f} s; rejected {rejected}; 429 retries {retried[service]}"
        )


async def together(services: ServicesProcess, targets: int, chats: int) -> None:
    """Part 2: the daily post to `targets` push targets and `chats` Telegram chats at once."""
    settings = Settings()
    activity = load_sample()
    composer = Composer(None, None)
    digest = await composer.compose(activity, settings.digest_repos)
    kinds = ("feishu", "dingtalk", "wecom", "slack")
    services.snapshot()
    before = len(services.received)
    rejected_before = len(services.rejected)
    with tempfile.TemporaryDirectory() as tmp:
        store = await Store.open(f"sqlite+aiosqlite:///{Path(tmp) / 'bench.db'}")
        await store.save_digest(digest, activity)
        subscribe = {"by": None, "post_time": "09:00", "timezone": settings.digest_timezone}
        for n in range(chats):
            await store.subscribe("telegram", str(100_000 + n), None, **subscribe)  # type: ignore[arg-type]
        for n in range(targets):
            url = bot_url(kinds[n % len(kinds)], 100 + n)
            await store.add_push_target(target_id(url), url, by="bench")
            await store.subscribe("push", target_id(url), None, **subscribe)  # type: ignore[arg-type]
        github = GitHubClient("http://127.0.0.1:9", None, None)
        pipeline = Pipeline(settings, store, github=github, composer=composer)
        push = PushSender(store)
        await push.load()
        async with (
            FakeTelegram(rate_per_second=TELEGRAM_LIMIT) as telegram,
            Bot(telegram.token, base_url=f"{telegram.url}/bot") as bot,
        ):
            started = time.perf_counter()
            result = await fan_out(
                store,
                pipeline,
                {"telegram": TelegramSender(bot), "push": push},
                activity.day,
                worker="bench",
                now=datetime.now(UTC),
            )
            wall = time.perf_counter() - started
            telegram_messages = len(telegram.sent)
            telegram_429 = telegram.too_many_requests
        counts = await store.delivery_counts(activity.day)
        await github.aclose()
        await store.close()
    services.snapshot()
    pushed = services.received[before:]
    per_service = Counter(r.service for r in pushed)
    rejected = services.rejected[rejected_before:]
    push_429 = sum(1 for _s, _b, why in rejected if why == "rate")
    print(f"part 2: the {activity.day} digest to {targets} push targets + {chats} Telegram chats")
    print(f"  wall time {wall:.1f} s; delivered {result.sent} (deliveries {counts})")
    print(
        f"  push messages {len(pushed)} ({dict(per_service)}); "
        f"Telegram messages {telegram_messages}"
    )
    print(
        f"  429s: Telegram {telegram_429}, push {push_429} (expect 0); "
        f"push rejected in all {len(rejected)}; errors {result.errors[:3]}"
    )


async def main(messages: int, targets: int, chats: int) -> None:
    """Both parts against one set of stand-ins."""
    with tempfile.TemporaryDirectory() as tmp, ServicesProcess(Path(tmp)) as services:
        os.environ.update(services.environ())
        if messages:
            await pacing(services, messages)
        if targets or chats:
            await together(services, targets, chats)


if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=45)
    parser.add_argument("--targets", type=int, default=20)
    parser.add_argument("--chats", type=int, default=1000)
    args = parser.parse_args()
    asyncio.run(main(args.messages, args.targets, args.chats))
