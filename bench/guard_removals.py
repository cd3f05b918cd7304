"""Share of model-written bullets the guard removes on the recorded days (hallucinating model).

Collects each recorded day under ../shared/fixtures/github/ through the collector against the
stand-in GitHub (tests/fake_github.py), then writes its digest with the composer against the
stand-in model (tests/fake_llm.py) answering as `hallucinating_answer`: a bullet per linked item of
the prompt, plus one bullet citing a PR that does not exist (#99999999). Counts the bullets the
model wrote, the bullets the guard removed, and how many of those were the fabricated ones.
Run: python bench/guard_removals.py [--timezone Asia/Shanghai]
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import re
import sys
from datetime import date
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from fake_github import FakeGitHub  # noqa: E402
from fake_llm import API_KEY, FABRICATED_NUMBER, FakeLLM, hallucinating_answer  # noqa: E402

from collectors.collect import collect_day  # noqa: E402
from collectors.github import GitHubClient  # noqa: E402
from summarizer.compose import Composer  # noqa: E402
from summarizer.llm import LLMClient  # noqa: E402

RECORDED = ROOT.parent / "shared" / "fixtures" / "github"


def _bullets(text: str) -> list[str]:
    return [line for line in text.split("\n") if line.lstrip().startswith("- ")]


async def one_day(folder: Path, timezone: str) -> tuple[int, int, int, int]:
    """(bullets written, bullets removed, fabricated among them, fabricated written) of a day."""
    day = date.fromisoformat(folder.name)
    async with FakeGitHub() as server:
        repos = server.load_recorded(folder)
        async with GitHubClient(server.url, None, None) as github:
            activity = await collect_day(github, repos, day, timezone)
    answers: list[str] = []

    def recording(request: dict[str, Any]) -> str:
        text = hallucinating_answer(request)
        answers.append(text)
        return text

    async with FakeLLM(default=recording) as fake:
        llm = LLMClient(API_KEY, fake.base_url, ["m1"], requests_per_minute=60000.0)
        try:
            digest = await Composer(llm, None).compose(activity, repos)
        finally:
            await llm.aclose()
    written = [b for answer in answers for b in _bullets(answer)]
    kept = {
        b.strip() for s in digest.sections if s.written_by == "model" for b in _bullets(s.markdown)
    }
    # A kept bullet is the written one with its links canonicalised; compare by label text.
    removed = [b for b in written if not any(_label(b) == _label(k) for k in kept)]
    fabricated = [b for b in written if str(FABRICATED_NUMBER) in b]
    removed_fabricated = [b for b in removed if str(FABRICATED_NUMBER) in b]
    return len(written), len(removed), len(removed_fabricated), len(fabricated)


def _label(bullet: str) -> str:
    """A bullet without URLs, for matching what the guard kept against what the model wrote."""
    return re.sub(r"\]\([^)]*\)", "]", bullet.strip())


async def main() -> int:
    """Print per-day counts and the overall share."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--timezone", default="Asia/Shanghai")
    args = parser.parse_args()
    logging.disable(logging.WARNING)  # "GITHUB_TOKEN is not set" is expected here
    days = sorted(p for p in RECORDED.glob("????-??-??") if p.is_dir()) if RECORDED.is_dir() else []
    if not days:
        print(f"no recorded day found under {RECORDED}", file=sys.stderr)
        return 1
    totals = [0, 0, 0, 0]
    print(f"  {'day':<12}{'written':>8}{'removed':>8}{'fabricated removed':>20}")
    for folder in days:
        counts = await one_day(folder, args.timezone)
        totals = [a + b for a, b in zip(totals, counts, strict=True)]
        written, removed, removed_fab, fab = counts
        print(f"  {folder.name:<12}{written:>8}{removed:>8}{f'{removed_fab}/{fab}':>20}")
    written, removed, removed_fab, fab = totals
    share = removed / written if written else 0.0
    print(
        f"figure: bullets removed by the guard: {removed} of {written} model-written "
        f"({share:.1%}); fabricated removed {removed_fab}/{fab}; grounded removed "
        f"{removed - removed_fab}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(asyncio.run(main()))
