"""Seconds from SIGTERM to exit of `aiinfra-digest run`, in the states that used to hold it up.

Each scenario starts `python -m bot run` as its own OS process on a fresh SQLite file, against
the in-process stand-ins of GitHub, the model endpoint and Telegram (tests/fake_*.py), waits for
the state, sends SIGTERM and times the exit:

- generation in flight: yesterday's digest is being written and the model takes ten minutes to
  answer (the scheduler's tick is inside the pipeline when the signal arrives);
- Bot API unreachable: `run` is polling Telegram, then the Bot API stops answering (every request
  hangs, as behind a dead network path) before the signal.

The promise is ≤ 10 s in every state. Run: python bench/sigterm_stop.py
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from aiohttp import web  # noqa: E402
from fake_github import FakeGitHub, commit  # noqa: E402
from fake_llm import API_KEY, FakeLLM  # noqa: E402
from fake_telegram import FakeTelegram  # noqa: E402

REPO = "o/alpha"


class UnreachableTelegram(FakeTelegram):
    """The Telegram stand-in whose every request hangs once `unreachable` is set."""

    def __post_init__(self) -> None:
        super().__post_init__()
        self.unreachable = False
        self.polls = 0

    async def _dispatch(self, request: web.Request) -> web.Response:
        if self.unreachable:
            await asyncio.Event().wait()  # never answers
        if request.match_info["method"] == "getUpdates":
            self.polls += 1
        return await super()._dispatch(request)


def environment(
    database: Path, github: FakeGitHub, llm: FakeLLM, telegram: FakeTelegram
) -> dict[str, str]:
    """`run`'s settings for the stand-ins (no real service is contacted)."""
    skip = ("TELEGRAM_", "DISCORD_", "OPENROUTER_", "DATABASE_", "GITHUB_", "DIGEST_")
    env = {k: v for k, v in os.environ.items() if not k.startswith(skip)}
    env.update(
        DATABASE_URL=f"sqlite+aiosqlite:///{database}",
        GITHUB_API_URL=github.url,
        GITHUB_COLLECTOR="rest",
        OPENROUTER_API_KEY=API_KEY,
        OPENROUTER_BASE_URL=llm.base_url,
        DIGEST_MODELS="m/one:free",
        DIGEST_REPOS=REPO,
        TELEGRAM_BOT_TOKEN=telegram.token,
        TELEGRAM_API_URL=telegram.url,
        PYTHONPATH=str(ROOT),
    )
    return env


async def until(predicate: object, within: float, what: str) -> None:
    """Wait for `predicate()` to hold (polled), or fail naming `what`."""
    assert callable(predicate)
    deadline = time.monotonic() + within
    while not predicate():
        if time.monotonic() > deadline:
            raise SystemExit(f"gave up waiting for {what}")
        await asyncio.sleep(0.05)


async def stop_and_time(process: asyncio.subprocess.Process) -> tuple[float, int | None]:
    """SIGTERM the process; seconds until it exited, and its exit status."""
    started = time.monotonic()
    process.send_signal(signal.SIGTERM)
    try:
        await asyncio.wait_for(process.wait(), 60)
    except TimeoutError:
        process.kill()
        await process.wait()
    return time.monotonic() - started, process.returncode


async def scenario(name: str, folder: Path) -> tuple[float, int | None]:
    """Start `run`, bring it into the state `name`, SIGTERM it; (seconds, exit status)."""
    yesterday = (datetime.now(ZoneInfo("Asia/Shanghai")) - timedelta(days=1)).date()
    when = datetime(yesterday.year, yesterday.month, yesterday.day, 4, tzinfo=UTC)
    async with (
        FakeGitHub() as github,
        FakeLLM(latency=600.0) as llm,
        UnreachableTelegram() as telegram,
    ):
        github.add_repo(
            REPO, commits=[commit(when=when.isoformat().replace("+00:00", "Z"), message="Fix (#7)")]
        )
        env = environment(folder / f"{name.split()[0]}.sqlite3", github, llm, telegram)
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bot", "run",
            env=env, cwd=folder,
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
        )  # fmt: skip
        try:
            if name == "generation in flight":
                await until(lambda: llm.in_flight > 0, 120, "the model request")
            else:
                await until(lambda: telegram.polls > 0, 120, "polling")
                telegram.unreachable = True
                await asyncio.sleep(1.0)  # requests now hang
            return await stop_and_time(process)
        finally:
            if process.returncode is None:
                process.kill()
                await process.wait()


async def main() -> None:
    """Both scenarios, one line each."""
    with tempfile.TemporaryDirectory() as folder:
        for name in ("generation in flight", "Bot API unreachable"):
            seconds, code = await scenario(name, Path(folder))
            print(f"SIGTERM to exit, {name}: {seconds:.1f} s (exit status {code})", flush=True)


if __name__ == "__main__":
    asyncio.run(main())
