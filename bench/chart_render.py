"""Render time of the day's chart (8 repositories, 14-day trend) and the size of the PNG.

The first render loads fonts and is reported apart; then N renders are timed. Expect < 1 s
per image. Run: python bench/chart_render.py [--renders N]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from synthetic_days import day_activity, days_ending  # noqa: E402

from bot.chart import find_cjk_font, render_chart  # noqa: E402


def main(renders: int) -> None:
    days = days_ending(date(2026, 2, 4), 14)
    history = [(day, day_activity(day, busy=5)) for day in days[:-1]]
    activity = day_activity(days[-1], busy=5)
    print(f"CJK font: {find_cjk_font() or 'none (English labels)'}")
    started = time.perf_counter()
    chart = render_chart(activity, history)
    print(f"first render (font loading): {time.perf_counter() - started:.3f} s")
    times = []
    for _ in range(renders):
        started = time.perf_counter()
        chart = render_chart(activity, history)
        times.append(time.perf_counter() - started)
    times.sort()
    p95 = times[min(len(times) - 1, round(0.95 * len(times)) - 1)]
    print(
        f"{renders} renders: mean {statistics.mean(times) * 1000:.0f} ms, "
        f"p95 {p95 * 1000:.0f} ms, max {times[-1] * 1000:.0f} ms"
    )
    print(f"PNG {chart.width}×{chart.height} px, {len(chart.png) / 1e3:.0f} kB, {chart.language}")
    english = render_chart(activity, history, fonts=())
    print(f"English fallback PNG {len(english.png) / 1e3:.0f} kB")
    print(f"load average while measuring: {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs")
    verdict = "OK" if p95 < 1.0 else "SLOW"
    print(f"render time p95 {p95:.3f} s (expect < 1 s): {verdict}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--renders", type=int, default=30)
    main(parser.parse_args().renders)
