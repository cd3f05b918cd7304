"""The picture of the day: a valid PNG of sane size; Chinese labels in a CJK font, else English;
drawn with Pillow alone (no matplotlib or numpy in the image)."""

from __future__ import annotations

import shutil
import struct
import subprocess
import sys
import warnings
import zlib
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest
from synthetic_days import archive_day, day_activity, days_ending, repo_day

import bot.chart
from bot.archive import chart_for, load_history
from bot.chart import (
    MAX_BYTES,
    ZH,
    Chart,
    find_cjk_font,
    font_covers,
    render_chart,
    render_day_chart,
)
from bot.store import Store
from collectors.activity import DayActivity, RepoActivity

DAY = date(2026, 2, 4)
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
TELEGRAM_PHOTO_BYTES = 10 * 1024 * 1024
TELEGRAM_SIDES = 10_000
DISCORD_ATTACHMENT_BYTES = 10 * 1024 * 1024


def chunks(png: bytes) -> Iterator[tuple[bytes, bytes]]:
    """(type, data) of every chunk, checking each CRC."""
    offset = len(PNG_SIGNATURE)
    while offset < len(png):
        (length,) = struct.unpack(">I", png[offset : offset + 4])
        kind = png[offset + 4 : offset + 8]
        data = png[offset + 8 : offset + 8 + length]
        (crc,) = struct.unpack(">I", png[offset + 8 + length : offset + 12 + length])
        assert zlib.crc32(kind + data) == crc, kind
        yield kind, data
        offset += 12 + length


def assert_valid_png(png: bytes) -> tuple[int, int]:
    """Signature, IHDR first, IEND last, every CRC right; returns (width, height)."""
    assert png.startswith(PNG_SIGNATURE)
    found = list(chunks(png))
    assert found[0][0] == b"IHDR" and found[-1][0] == b"IEND"
    assert any(kind == b"IDAT" for kind, _ in found)
    width, height, depth, colour = struct.unpack(">IIBB", found[0][1][:10])
    assert depth == 8 and colour in (2, 6)  # RGB or RGBA
    return width, height


def history(count: int = 13) -> list[tuple[date, DayActivity]]:
    return [(day, day_activity(day)) for day in days_ending(DAY, count + 1)[:-1]]


def busy_day() -> DayActivity:
    vllm = repo_day("vllm-project/vllm", DAY, merged=12, issues=5, releases=["v0.9.0"])
    failed = RepoActivity.failed("NVIDIA/cutile-python", "HTTP 502")
    return day_activity(DAY, overrides=[vllm, failed])


def render_quietly(activity: DayActivity, *, fonts: tuple[str, ...] | None = None) -> Chart:
    """Render, failing on any warning (a missing glyph is a warning: tofu boxes in the image)."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        return render_chart(activity, history(), fonts=fonts)


def test_the_chart_is_a_valid_png_within_platform_limits() -> None:
    chart = render_quietly(busy_day())
    width, height = assert_valid_png(chart.png)

    assert (width, height) == (chart.width, chart.height) == (1200, 800)
    assert width + height <= TELEGRAM_SIDES and max(width, height) / min(width, height) <= 20
    assert len(chart.png) <= MAX_BYTES < TELEGRAM_PHOTO_BYTES
    assert len(chart.png) < DISCORD_ATTACHMENT_BYTES
    assert render_day_chart(busy_day(), history()) == chart.png


def test_many_repositories_grow_the_chart_but_stay_within_limits() -> None:
    repos = [f"org{i}/repo{i}" for i in range(60)]
    activity = day_activity(DAY, repos)

    chart = render_chart(activity, [])
    width, height = assert_valid_png(chart.png)

    assert height > 800 and width + height <= TELEGRAM_SIDES
    assert len(chart.png) <= MAX_BYTES


def test_a_day_without_repositories_still_renders() -> None:
    empty = day_activity(DAY, [])
    assert_valid_png(render_quietly(empty).png)


@pytest.mark.skipif(find_cjk_font() is None, reason="no CJK font installed (fonts-wqy-microhei)")
def test_labels_are_chinese_in_a_cjk_font_when_one_is_installed() -> None:
    chart = render_quietly(busy_day())

    assert chart.language == "zh"
    assert chart.font == find_cjk_font()
    assert chart.font is not None
    assert font_covers(chart.font, set("合并新改动行数近天峰值缺失每日活动计删除增"))
    assert_valid_png(chart.png)


def test_without_a_cjk_font_the_labels_fall_back_to_english() -> None:
    chart = render_quietly(busy_day(), fonts=())
    assert (chart.font, chart.language) == (None, "en")
    assert_valid_png(chart.png)


def test_a_listed_but_uninstalled_font_is_not_chosen() -> None:
    chart = render_quietly(busy_day(), fonts=("No Such Font SC",))
    assert (chart.font, chart.language) == (None, "en")


def test_a_latin_only_font_is_never_taken_for_a_cjk_one() -> None:
    assert not font_covers("DejaVu Sans", {"合"})
    assert find_cjk_font(("DejaVu Sans",)) is None
    assert "合" in "".join((ZH.merged, ZH.totals))


async def test_chart_for_an_archived_day_reads_the_day_and_its_history(tmp_path: Path) -> None:
    async with await Store.open(f"sqlite+aiosqlite:///{tmp_path / 'db.sqlite'}") as store:
        for day in days_ending(DAY, 3):
            await archive_day(store, day_activity(day))
        png = await chart_for(store, DAY)
        history = await load_history(store, DAY)
        missing = await chart_for(store, date(2020, 1, 1))

    assert png is not None and assert_valid_png(png) == (1200, 800)
    assert [day for day, _activity in history] == days_ending(DAY, 3)[:-1]
    assert missing is None


def test_the_chart_draws_without_matplotlib_or_numpy() -> None:
    """The image ships Pillow only: importing and drawing the chart must not need matplotlib."""
    code = (
        "import sys, bot.chart\n"
        "sys.path.insert(0, 'tests')\n"
        "from synthetic_days import day_activity\n"
        "from datetime import date\n"
        "png = bot.chart.render_day_chart(day_activity(date(2026, 2, 4)), [])\n"
        "assert png.startswith(b'\\x89PNG'), png[:8]\n"
        "heavy = sorted({'matplotlib', 'numpy'} & set(sys.modules))\n"
        "assert not heavy, heavy\n"
    )
    root = Path(__file__).resolve().parents[1]
    done = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def test_a_font_in_font_dirs_is_found_first(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """FONT_DIRS folders are searched before the system's, so an operator can bring a font."""
    installed = bot.chart.installed_fonts()
    if not installed:
        pytest.skip("no font installed to copy")
    family, (path, _index) = next(iter(sorted(installed.items())))
    (tmp_path / "mine").mkdir()
    shutil.copy(path, tmp_path / "mine" / Path(path).name)
    monkeypatch.setenv("FONT_DIRS", str(tmp_path))
    bot.chart.installed_fonts.cache_clear()
    try:
        assert bot.chart.installed_fonts()[family][0] == str(tmp_path / "mine" / Path(path).name)
    finally:
        monkeypatch.delenv("FONT_DIRS")
        bot.chart.installed_fonts.cache_clear()
