"""One instance of several against the Discord stand-in, as its own OS process.

Run by tests/test_discord_instances.py and bench/discord_takeover.py (which kill it with SIGKILL):

    python tests/discord_worker.py --url URL [--schema S] --port P --ca CA.pem --token T \\
        --worker NAME --lease SECONDS --channel ID

It does what `aiinfra-digest run` does for Discord, on the real path: it posts one message to
`--channel` through the REST API (no gateway needed), prints one JSON line, then answers slash
commands through the command service only while it holds the `discord:gateway` lease
(`bot.platforms.discord.run_gateway`), until SIGTERM.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from fake_discord import stand_in_connector  # noqa: E402

from bot.app import install_stop_signals  # noqa: E402
from bot.commands import CommandService  # noqa: E402
from bot.pipeline import Pipeline  # noqa: E402
from bot.platforms.discord import discord_channel_sender, run_gateway  # noqa: E402
from bot.settings import load_settings  # noqa: E402
from bot.store import Store  # noqa: E402
from collectors.github import GitHubClient  # noqa: E402
from summarizer.compose import Composer  # noqa: E402


async def main(args: argparse.Namespace) -> None:
    """Post through REST, then take part in the gateway election until stopped."""
    stop = asyncio.Event()
    install_stop_signals(stop)
    store = await Store.open(args.url, schema=args.schema)
    settings = load_settings(discord_bot_token=args.token, admin_user_ids="discord:1")

    # Port 9 (discard) is never contacted: the commands used here need no GitHub.
    async with (
        GitHubClient("http://127.0.0.1:9", None, None) as github,
        discord_channel_sender(settings, connector=stand_in_connector(args.port, args.ca)) as out,
    ):
        pipeline = Pipeline(settings, store, github=github, composer=Composer(None, None))
        service = CommandService(settings, store, pipeline, clock=lambda: datetime.now(UTC))
        posted = await out.send_part(str(args.channel), f"posted by {args.worker}")
        print(json.dumps({"worker": args.worker, "posted": posted}), flush=True)
        await run_gateway(
            settings,
            service,
            store,
            args.worker,
            stop,
            ttl=args.lease,
            connector=lambda: stand_in_connector(args.port, args.ca),
            defer_after=0.5,
        )
    await store.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", required=True)
    parser.add_argument("--schema", default=None)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--ca", required=True)
    parser.add_argument("--token", required=True)
    parser.add_argument("--worker", required=True)
    parser.add_argument("--lease", type=float, default=30.0)
    parser.add_argument("--channel", type=int, required=True)
    asyncio.run(main(parser.parse_args()))
