"""Time to split the sample digest 100 times with bot.platforms.textsplit, per length function.

The digest is the bundled sample day composed without a model (what
`aiinfra-digest generate --sample` prints offline). Measured with `len` and `utf16_len` (cheap),
and with Telegram's real measure (UTF-16 units of telegramify's rendering, an expensive length
the splitter calls once per block and once per final piece). The splitters in use today are
timed beside it for comparison.
Run: python bench/textsplit_speed.py [--runs N]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT)]

from telegramify_markdown import RenderConfig, convert  # noqa: E402

from bot.platforms.textsplit import split_markdown, utf16_len  # noqa: E402
from bot.settings import Settings  # noqa: E402
from collectors.sample import load_sample  # noqa: E402
from summarizer.compose import Composer  # noqa: E402
from summarizer.digest import render_markdown  # noqa: E402


def telegram_length(markdown: str) -> int:
    """UTF-16 units of the text Telegram would receive for `markdown`."""
    text, _entities = convert(markdown, latex_escape=False, config=RenderConfig())
    return utf16_len(text)


def timed(runs: int, work: Callable[[], object]) -> float:
    """Seconds for `runs` calls of `work`."""
    started = time.perf_counter()
    for _ in range(runs):
        work()
    return time.perf_counter() - started


async def sample_markdown() -> str:
    """The sample day's digest as Markdown, composed without a model."""
    digest = await Composer(None, None).compose(load_sample(), Settings().digest_repos)
    return render_markdown(digest)


def main(runs: int) -> None:
    """Print the figures."""
    markdown = asyncio.run(sample_markdown())
    print(f"sample digest: {len(markdown)} characters, {utf16_len(markdown)} UTF-16 units")
    cases: list[tuple[str, int, Callable[[str], int]]] = [
        ("len", 2000, len),
        ("utf16_len", 4096, utf16_len),
        ("telegram rendered", 4096, telegram_length),
    ]
    for name, limit, length in cases:
        pieces = split_markdown(markdown, limit, length)
        seconds = timed(runs, lambda: split_markdown(markdown, limit, length))  # noqa: B023
        print(
            f"split_markdown limit={limit} length={name}: {runs} runs in {seconds:.3f} s "
            f"({seconds / runs * 1000:.2f} ms each), {len(pieces)} pieces"
        )
    # The platforms' whole rendering (split, then convert or render; Telegram's cache cleared).
    from bot.platforms.discord import render as discord_render
    from bot.platforms.telegram import render as telegram_render

    def telegram_messages() -> object:
        telegram_render._render_cached.cache_clear()
        return telegram_render.render_messages(markdown)

    seconds = timed(runs, telegram_messages)
    print(f"telegram render_messages: {runs} runs in {seconds:.3f} s")
    seconds = timed(runs, lambda: discord_render.render_messages(markdown))
    print(f"discord render_messages: {runs} runs in {seconds:.3f} s")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=100)
    main(parser.parse_args().runs)
