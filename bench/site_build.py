"""Static-site build time for 365 archived days, and the size of what it writes.

A fresh SQLite store is filled with 365 synthetic days (8 repositories, structured digests, as
`tests/synthetic_days.py` builds them; not timed), then `build_site` writes the whole archive:
index, 365 day pages, 365 × 8 repository-day pages and the Atom feed. Expect under 10 s.
Then the incremental case: a rebuild with nothing new, and one after the next day is archived.
The default `--busy 5` gives days near the reference digest of 2026-02-04 (9 k characters of
Markdown with 67 links a day, against its 12.7 k characters and 52 links); `--busy 10`
(16 k characters, 133 links) is a heavy year.
Run: python bench/site_build.py [--days N] [--busy K]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from synthetic_days import archive_day, day_activity, days_ending  # noqa: E402

from bot.site import build_site  # noqa: E402
from bot.store import Store  # noqa: E402


def _mb(size: int) -> str:
    return f"{size / 1e6:.1f} MB"


async def main(days: int, busy: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        store = await Store.open(f"sqlite+aiosqlite:///{tmp}/archive.db")
        try:
            started = time.perf_counter()
            for day in days_ending(date(2026, 2, 4), days):
                await archive_day(store, day_activity(day, busy=busy))
            print(f"archived {days} days in {time.perf_counter() - started:.1f} s (setup)")
            out = Path(tmp) / "site"
            base = "https://digest.example.org/"
            cpu = time.process_time()
            stats = await build_site(store, out, base_url=base)
            cpu = time.process_time() - cpu
            print(
                f"full build: {stats.seconds:.2f} s wall, {cpu:.2f} s CPU, "
                f"for {stats.days} days, {stats.files} files"
            )
            full = stats
            again = await build_site(store, out, base_url=base)
            print(f"rebuild, nothing new: {again.seconds:.2f} s ({again.reused_days} days kept)")
            await archive_day(store, day_activity(date(2026, 2, 5), busy=busy))
            grown = await build_site(store, out, base_url=base)
            print(
                f"rebuild after one new day: {grown.seconds:.2f} s "
                f"({grown.reused_days} days kept, {grown.files} files written)"
            )
            stats = await build_site(store, out, base_url=base, full=True)
        finally:
            await store.close()
        pages = sorted(out.rglob("*.html"))
        day_pages = [p for p in pages if p.parent.name == "days"]
        repo_pages = [p for p in pages if p.parent.parent.name == "days"]
        print(f"output: {_mb(stats.bytes)} in {stats.files} files ({stats.days} days)")
        print(f"  index.html {_mb((out / 'index.html').stat().st_size)}")
        print(f"  atom.xml {_mb((out / 'atom.xml').stat().st_size)} ({stats.feed_entries} entries)")
        for name, group in (("day page", day_pages), ("repository-day page", repo_pages)):
            sizes = [p.stat().st_size for p in group]
            print(f"  {len(sizes)} {name}s, mean {sum(sizes) / len(sizes) / 1e3:.1f} kB")
        verdict = "OK" if full.seconds < 10 else "SLOW"
        print(f"full build time {full.seconds:.2f} s (expect < 10 s): {verdict}")
        # Wall time depends on what else the machine runs; CPU time (all threads) much less.
        print(f"load average while measuring: {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--busy", type=int, default=5, help="activity level of a synthetic day")
    args = parser.parse_args()
    asyncio.run(main(args.days, args.busy))
