"""One digest fanned out to 50 Discord webhooks, against a stand-in enforcing 5 requests / 2 s each.

The production path end to end: the webhooks are registered as `discord-webhook` chats in a
SQLite store, `bot.delivery.fan_out` claims and sends them through `DiscordWebhookSender`
(discord.py over TLS to the in-process stand-in of tests/fake_discord.py), which answers 429 to
any request beyond 5 per webhook in a 2 s window. Prints the wall time against the limit's
minimum and the 429s received.
Run: python bench/discord_webhook_fanout.py [webhooks]
"""

from __future__ import annotations

import asyncio
import logging
import math
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from datetime import date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from fake_discord import FakeDiscord  # noqa: E402

from bot.delivery import fan_out  # noqa: E402
from bot.platforms.discord import DiscordWebhookSender, register_webhooks  # noqa: E402
from bot.platforms.discord.render import render_messages  # noqa: E402
from bot.settings import DEFAULT_REPOS, load_settings  # noqa: E402
from bot.store import Store  # noqa: E402
from collectors.activity import DayActivity  # noqa: E402
from collectors.window import day_window  # noqa: E402
from summarizer.digest import Digest, Section, render_markdown  # noqa: E402

DAY = date(2026, 2, 4)
LIMIT, WINDOW = 5, 2.0
GLOBAL_PER_SECOND = 50  # Discord's global limit, per IP for token-less webhook calls


def digest() -> Digest:
    """A realistic full digest: eight repositories, a dozen linked items each."""
    sections = []
    for repo in DEFAULT_REPOS:
        items = [
            f"- 合并 [#{4100 + n} 为 `fused_moe` 增加 FP8 路径](https://github.com/{repo}/pull/"
            f"{4100 + n})：按专家批量提交分组 GEMM，减少内核启动，H100 上吞吐提升约 7%。"
            for n in range(12)
        ]
        sections.append(Section(repo=repo, markdown="\n".join(items), written_by="model"))
    return Digest(
        day=DAY, sections=sections, summary="MoE 与注意力内核持续优化。", conclusion="平稳。"
    )


class OneDigest:
    """The pipeline as delivery sees it, serving one ready digest."""

    def __init__(self, value: Digest) -> None:
        self.value = value

    async def day(self, day: date) -> tuple[Digest, DayActivity]:
        window = day_window(day, "Asia/Shanghai")
        activity = DayActivity(
            day=day, timezone="Asia/Shanghai", window_utc=(window.start, window.end), repos=[]
        )
        return self.value, activity

    async def digest_for(
        self, day: date, repos: Sequence[str] | None, *, added: Sequence[str] = ()
    ) -> Digest:
        return self.value


async def main(webhooks: int) -> None:
    value = digest()
    per_digest = len(render_messages(render_markdown(value)))
    async with FakeDiscord(limit=LIMIT, window=WINDOW) as fake:
        urls = [fake.add_webhook() for _ in range(webhooks)]
        with tempfile.TemporaryDirectory() as folder:
            store = await Store.open(f"sqlite+aiosqlite:///{Path(folder) / 'bench.db'}")
            session = fake.session()
            try:
                sender = DiscordWebhookSender(urls, session=session)
                await register_webhooks(store, sender, load_settings())
                started = time.monotonic()
                result = await fan_out(
                    store,
                    OneDigest(value),
                    {sender.platform: sender},
                    DAY,
                    worker="bench",
                    now=datetime(2026, 2, 5, 9, 0, tzinfo=ZoneInfo("Asia/Shanghai")),
                    concurrency=webhooks,
                )
                elapsed = time.monotonic() - started
            finally:
                await session.close()
                await store.close()
    accepted = [r for r in fake.records if r.kind == "webhook" and r.status == 200]
    per_second = Counter(int((r.at - started) // 1.0) for r in accepted)
    per_webhook_min = (math.ceil(per_digest / LIMIT) - 1) * WINDOW
    global_min = webhooks * per_digest / GLOBAL_PER_SECOND
    print(f"webhooks                         {webhooks}")
    print(f"messages per digest              {per_digest}")
    print(f"messages delivered               {len(accepted)} (expected {webhooks * per_digest})")
    print(f"fan-out result                   sent {result.sent}, failed {result.failed}")
    print(f"wall time                        {elapsed:.2f} s")
    print(f"last message accepted after      {max(r.at for r in accepted) - started:.2f} s")
    print(f"minimum under 5 req / 2 s        {per_webhook_min:.2f} s (webhooks in parallel)")
    print(f"minimum under 50 req/s per IP    {global_min:.2f} s")
    print(f"ratio to the binding minimum     {elapsed / max(per_webhook_min, global_min):.2f}")
    print(f"peak requests in one second      {max(per_second.values())}")
    print(f"429s received                    {fake.rate_limited}")


async def sender_alone(webhooks: int) -> None:
    """The same sends without the store and delivery: what the adapter itself takes."""
    markdown = render_markdown(digest())
    async with FakeDiscord(limit=LIMIT, window=WINDOW) as fake:
        urls = [fake.add_webhook() for _ in range(webhooks)]
        async with fake.session() as session:
            sender = DiscordWebhookSender(urls, session=session)
            started = time.monotonic()
            await asyncio.gather(*(sender.send_markdown(t, markdown) for t in sender.targets))
            elapsed = time.monotonic() - started
    print(f"sender alone, {webhooks:>2} webhook(s)       {elapsed:.2f} s, 429s {fake.rate_limited}")


if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING)
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 50
    asyncio.run(main(count))
    asyncio.run(sender_alone(count))
    asyncio.run(sender_alone(1))
