"""The picture of the day: per repository the day's merged PRs, new issues and lines changed,
and the last 14 days of merged PRs as a small trend, drawn with Pillow as a PNG.

Pillow (about 20 MB) draws the bars and sparklines itself: matplotlib and numpy cost the Docker
image some 150 MB for this one picture. Labels are Chinese when a CJK font is installed (found
by scanning the usual font folders and checked to hold every glyph we draw), English otherwise,
so the picture never shows tofu boxes. The PNG stays far inside Telegram's photo limits (10 MB,
width + height ≤ 10000) and Discord's attachment limit: 1200×800 px and well under 1 MB for the
eight default repositories.
"""

from __future__ import annotations

import functools
import io
import math
import os
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Literal

from PIL import Image, ImageDraw, ImageFont

from collectors.activity import DayActivity, RepoActivity

# Preferred CJK families, most common on servers first (Debian: fonts-wqy-microhei in the image,
# fonts-noto-cjk, fonts-wqy-zenhei).
CJK_FONTS: tuple[str, ...] = (
    "Noto Sans CJK SC",
    "Source Han Sans SC",
    "Source Han Sans CN",
    "Noto Sans SC",
    "WenQuanYi Micro Hei",
    "WenQuanYi Zen Hei",
    "Droid Sans Fallback",
    "PingFang SC",
    "Microsoft YaHei",
    "SimHei",
    "Noto Sans CJK JP",
    "Noto Sans CJK TC",
)
# English labels use this family when installed, else Pillow's built-in Latin font.
LATIN_FONT = "DejaVu Sans"
# Where fonts live on Linux (fontconfig's defaults) and macOS; FONT_DIRS (os.pathsep-separated)
# is searched first.
FONT_DIRS: tuple[str, ...] = (
    "/usr/share/fonts",
    "/usr/local/share/fonts",
    "~/.local/share/fonts",
    "~/.fonts",
    "/Library/Fonts",
    "/System/Library/Fonts",
)
FONT_SUFFIXES = (".ttf", ".otf", ".ttc", ".otc")
_REGULAR = frozenset({"Regular", "Book", "Normal", "Roman"})
TREND_DAYS = 14
DPI = 100
WIDTH_IN = 12.0
# Telegram: a photo ≤ 10 MB with width + height ≤ 10000; Discord: 10 MB per attachment. The
# chart keeps to a tenth of that, and its sides well inside.
MAX_BYTES = 1_000_000
MAX_SIDES = 10_000
MAX_HEIGHT_IN = 40.0

_COLORS = {
    "text": "#1f2328",
    "merged": "#2f81f7",
    "issues": "#d29922",
    "additions": "#2da44e",
    "deletions": "#cf222e",
    "trend": "#8250df",
    "muted": "#6e7781",
    "grid": "#d0d7de",
}
# Panel widths relative to each other (merged, issues, lines, trend), as before.
_RATIOS = (1.0, 1.0, 1.5, 1.4)
# A code point no font maps: what a font draws for it is its "missing glyph" box.
_MISSING = "\U0010fffd"
# Font objects are cached and shared: one render at a time keeps FreeType single-threaded.
_RENDER_LOCK = threading.Lock()


@dataclass(frozen=True)
class Labels:
    """Every text the chart draws besides numbers and repository names."""

    language: Literal["zh", "en"]
    title: str
    totals: str
    merged: str
    issues: str
    lines: str
    trend: str
    failed: str
    no_repos: str
    peak: str


ZH = Labels(
    language="zh",
    title="AI Infra 每日活动 {day}",
    totals="合计：合并 PR {merged} · 新 issue {issues} · 改动 +{additions:,}/-{deletions:,} 行",
    merged="合并 PR",
    issues="新 issue",
    lines="改动行数（+新增 / -删除）",
    trend=f"近 {TREND_DAYS} 天合并 PR",
    failed="数据缺失",
    no_repos="当天没有跟踪的仓库",
    peak="峰值 {peak}",
)
EN = Labels(
    language="en",
    title="AI Infra daily activity {day}",
    totals="Total: {merged} merged PRs · {issues} new issues · +{additions:,}/-{deletions:,} lines",
    merged="Merged PRs",
    issues="New issues",
    lines="Lines changed (+/-)",
    trend=f"Merged PRs, last {TREND_DAYS} days",
    failed="no data",
    no_repos="no tracked repositories",
    peak="max {peak}",
)


@dataclass(frozen=True)
class Chart:
    """A rendered chart: the PNG, its pixel size, and the font and language of its labels."""

    png: bytes
    width: int
    height: int
    font: str | None
    language: Literal["zh", "en"]


def _label_characters(labels: Labels) -> set[str]:
    texts = [labels.title, labels.totals, labels.merged, labels.issues, labels.lines]
    texts += [labels.trend, labels.failed, labels.no_repos, labels.peak]
    return {char for text in texts for char in text if ord(char) > 0x7F}


def _font_files() -> Iterator[Path]:
    extra = [d for d in os.environ.get("FONT_DIRS", "").split(os.pathsep) if d]
    for folder in (*extra, *FONT_DIRS):
        root = Path(folder).expanduser()
        if root.is_dir():
            yield from sorted(p for p in root.rglob("*") if p.suffix.lower() in FONT_SUFFIXES)


@functools.cache
def installed_fonts() -> dict[str, tuple[str, int]]:
    """Installed families → (file, face index) of their regular face (collections: every face)."""
    found: dict[str, tuple[str, int]] = {}
    regular: set[str] = set()
    for path in _font_files():
        index = 0
        while True:
            try:
                face = ImageFont.truetype(str(path), 12, index=index)
            except (OSError, ValueError):
                break  # past the last face of a collection, or not a font FreeType reads
            family, style = face.getname()
            # The upright regular face of a family, when there is one, not its bold or italic.
            if family and (family not in found or (style in _REGULAR and family not in regular)):
                found[family] = (str(path), index)
                if style in _REGULAR:
                    regular.add(family)
            if path.suffix.lower() not in (".ttc", ".otc"):
                break
            index += 1
    return found


def _open(family: str, size: int) -> ImageFont.FreeTypeFont:
    path, index = installed_fonts()[family]
    return ImageFont.truetype(path, size, index=index, layout_engine=ImageFont.Layout.BASIC)


def font_covers(family: str, characters: set[str]) -> bool:
    """True when the installed font `family` has a glyph for every character."""
    if family not in installed_fonts():
        return False
    face = _open(family, 24)
    # FreeType draws a missing character as the font's .notdef glyph: same mask, no glyph.
    missing = face.getmask(_MISSING)
    missing_key = (missing.size, bytes(missing))
    for char in characters:
        mask = face.getmask(char)
        if (mask.size, bytes(mask)) == missing_key:
            return False
    return True


@functools.cache
def find_cjk_font(preferred: tuple[str, ...] = CJK_FONTS) -> str | None:
    """The first installed family of `preferred` that can draw every Chinese label, or None."""
    installed = installed_fonts()
    needed = _label_characters(ZH)
    for family in preferred:
        if family in installed and font_covers(family, needed):
            return family
    return None


Font = ImageFont.FreeTypeFont | ImageFont.ImageFont


class _Fonts:
    """Fonts of one family by pixel size (CJK, or Latin for English labels)."""

    def __init__(self, family: str | None, scale: float) -> None:
        self.family, self.scale = family, scale

    def __call__(self, points: float) -> Font:
        """The font at `points` (matplotlib-style: 1 pt = 1 px at 72 dpi) for this scale."""
        return _sized(self.family, max(6, round(points * self.scale * DPI / 72)))


@functools.cache
def _sized(family: str | None, pixels: int) -> Font:
    if family is not None:
        return _open(family, pixels)
    if LATIN_FONT in installed_fonts():
        return _open(LATIN_FONT, pixels)
    return ImageFont.load_default(pixels)  # Pillow's own Latin font (needs FreeType)


def _short_names(repos: Sequence[str]) -> list[str]:
    """`owner/name` → `name`, unless two repositories share a name."""
    names = [repo.rsplit("/", 1)[-1] for repo in repos]
    return [
        repo if names.count(name) > 1 else name for repo, name in zip(repos, names, strict=True)
    ]


def _series(
    activity: DayActivity, history: Sequence[tuple[date, DayActivity]], repo: str
) -> list[float]:
    """Merged PRs of `repo` per day of the trend window ending on the activity's day (NaN: none)."""
    by_day = {day: day_activity for day, day_activity in history}
    by_day[activity.day] = activity
    values: list[float] = []
    for offset in range(TREND_DAYS - 1, -1, -1):
        day_activity = by_day.get(activity.day - timedelta(days=offset))
        repo_activity = day_activity.repo(repo) if day_activity is not None else None
        if repo_activity is None or repo_activity.error is not None:
            values.append(math.nan)
        else:
            values.append(float(len(repo_activity.merged_pulls)))
    return values


def render_chart(
    activity: DayActivity,
    history: Sequence[tuple[date, DayActivity]],
    *,
    fonts: Sequence[str] | None = None,
) -> Chart:
    """Draw the day's chart; `fonts` overrides the CJK families searched (`()`: English labels)."""
    family = find_cjk_font(tuple(fonts) if fonts is not None else CJK_FONTS)
    labels = ZH if family is not None else EN
    repos = list(activity.repos)
    height_in = min(MAX_HEIGHT_IN, max(5.0, 2.4 + 0.7 * len(repos)))
    with _RENDER_LOCK:
        dpi = DPI
        png = _Canvas(activity, history, repos, labels, family, height_in, dpi).png()
        while len(png) > MAX_BYTES and dpi > 50:  # only a huge repository list gets here
            dpi = int(dpi * 0.75)
            png = _Canvas(activity, history, repos, labels, family, height_in, dpi).png()
    width, height = round(WIDTH_IN * dpi), round(height_in * dpi)
    return Chart(png=png, width=width, height=height, font=family, language=labels.language)


def render_day_chart(activity: DayActivity, history: Sequence[tuple[date, DayActivity]]) -> bytes:
    """The day's chart as PNG bytes (history: earlier days, for the 14-day trend)."""
    return render_chart(activity, history).png


def _number(value: float) -> str:
    return f"{int(value):,}"


def _compact(value: float) -> str:
    if abs(value) >= 1000:
        return f"{value / 1000:g}k"
    return f"{value:g}"


def _ticks(limit: float) -> list[float]:
    """Round axis ticks from 0 to below `limit`: steps of 1, 2 or 5 × 10^n, at most 5 of them."""
    raw = limit / 4
    magnitude = 10.0 ** math.floor(math.log10(raw)) if raw > 0 else 1.0
    step = next((m * magnitude for m in (1, 2, 5, 10) if m * magnitude >= raw), 10 * magnitude)
    step = max(step, 1.0)
    return [i * step for i in range(int(limit // step) + 1)]


class _Canvas:
    """One drawing of the chart at one resolution."""

    def __init__(
        self,
        activity: DayActivity,
        history: Sequence[tuple[date, DayActivity]],
        repos: Sequence[RepoActivity],
        labels: Labels,
        family: str | None,
        height_in: float,
        dpi: int,
    ) -> None:
        self.activity, self.history, self.repos, self.labels = activity, history, repos, labels
        self.scale = dpi / DPI
        self.width, self.height = round(WIDTH_IN * dpi), round(height_in * dpi)
        self.font = _Fonts(family, self.scale)
        self.image = Image.new("RGB", (self.width, self.height), "white")
        self.draw = ImageDraw.Draw(self.image)

    def px(self, inches: float) -> int:
        """Inches of the original figure layout → pixels at this resolution."""
        return round(inches * DPI * self.scale)

    def text(
        self,
        xy: tuple[float, float],
        text: str,
        points: float,
        color: str = _COLORS["text"],
        anchor: str = "la",
    ) -> None:
        """Text at `xy` in `points` (anchor as Pillow's: `lm` left-middle, `rm` right-middle...)."""
        self.draw.text(xy, text, font=self.font(points), fill=color, anchor=anchor)

    def png(self) -> bytes:
        """Draw everything and encode; no text chunks, so the same data gives the same bytes."""
        self._header()
        if not self.repos:
            middle = (self.width / 2, self.height / 2)
            self.text(middle, self.labels.no_repos, 14, anchor="mm")
        else:
            self._panels()
        buffer = io.BytesIO()
        self.image.save(buffer, format="PNG")
        return buffer.getvalue()

    def _header(self) -> None:
        ok = [r for r in self.repos if r.error is None]
        left = 0.02 * self.width
        title = self.labels.title.format(day=self.activity.day.isoformat())
        self.text((left, self.px(0.12)), title, 16)
        totals = self.labels.totals.format(
            merged=sum(len(r.merged_pulls) for r in ok),
            issues=sum(len(r.opened_issues) for r in ok),
            additions=sum(r.totals.additions for r in ok),
            deletions=sum(r.totals.deletions for r in ok),
        )
        self.text((left, self.px(0.48)), totals, 10, _COLORS["muted"])

    def _panels(self) -> None:
        left, right = 0.14 * self.width, 0.98 * self.width
        top, bottom = self.px(1.1), self.height - self.px(0.5)
        gap = 0.12 * (right - left) / (len(_RATIOS) + 0.12 * (len(_RATIOS) - 1))
        unit = (right - left - gap * (len(_RATIOS) - 1)) / sum(_RATIOS)
        boxes: list[tuple[float, float]] = []
        x = left
        for ratio in _RATIOS:
            boxes.append((x, x + ratio * unit))
            x += ratio * unit + gap
        row_height = (bottom - top) / len(self.repos)
        rows = [top + (i + 0.5) * row_height for i in range(len(self.repos))]
        for name, y in zip(_short_names([r.repo for r in self.repos]), rows, strict=True):
            self.text((left - self.px(0.08), y), name, 10, anchor="rm")
        failed = [r.error is not None for r in self.repos]
        merged = [0.0 if r.error else float(len(r.merged_pulls)) for r in self.repos]
        issues = [0.0 if r.error else float(len(r.opened_issues)) for r in self.repos]
        bar = row_height * 0.6
        self._bars(boxes[0], rows, bar, merged, failed, _COLORS["merged"], self.labels.merged)
        self._bars(boxes[1], rows, bar, issues, failed, _COLORS["issues"], self.labels.issues)
        self._lines(boxes[2], rows, bar, failed)
        self._trend(boxes[3], rows, row_height)

    def _axis(self, box: tuple[float, float], limit: float, title: str) -> float:
        """Panel title, grid lines with tick labels, the left spine; returns px per unit."""
        x0, x1 = box
        top, bottom = self.px(1.1), self.height - self.px(0.5)
        per_unit = (x1 - x0) / limit
        for tick in _ticks(limit):
            x = x0 + tick * per_unit
            self.draw.line([(x, top), (x, bottom)], fill=_COLORS["grid"], width=1)
            self.text((x, bottom + self.px(0.05)), _compact(tick), 8, _COLORS["muted"], "ma")
        self.draw.line([(x0, top), (x0, bottom)], fill=_COLORS["text"], width=1)
        self.draw.line([(x0, bottom), (x1, bottom)], fill=_COLORS["text"], width=1)
        self.text((x0, top - self.px(0.1)), title, 12, anchor="ld")
        return per_unit

    def _failed(self, x: float, y: float) -> None:
        self.text((x + self.px(0.04), y), self.labels.failed, 9, _COLORS["muted"], "lm")

    def _bars(
        self,
        box: tuple[float, float],
        rows: Sequence[float],
        bar: float,
        values: Sequence[float],
        failed: Sequence[bool],
        color: str,
        title: str,
    ) -> None:
        per_unit = self._axis(box, max(1.0, max(values, default=0.0)) * 1.3, title)
        for y, value, bad in zip(rows, values, failed, strict=True):
            if bad:
                self._failed(box[0], y)
                continue
            end = box[0] + value * per_unit
            if value > 0:
                self.draw.rectangle([box[0], y - bar / 2, end, y + bar / 2], fill=color)
            self.text((end + self.px(0.04), y), _number(value), 9, anchor="lm")

    def _lines(
        self, box: tuple[float, float], rows: Sequence[float], bar: float, failed: Sequence[bool]
    ) -> None:
        additions = [float(r.totals.additions) for r in self.repos]
        deletions = [float(r.totals.deletions) for r in self.repos]
        widest = max((a + d for a, d in zip(additions, deletions, strict=True)), default=0.0)
        per_unit = self._axis(box, max(1.0, widest) * 1.55, self.labels.lines)
        for y, added, deleted, bad in zip(rows, additions, deletions, failed, strict=True):
            if bad:
                self._failed(box[0], y)
                continue
            middle = box[0] + added * per_unit
            end = middle + deleted * per_unit
            if added > 0:
                self.draw.rectangle(
                    [box[0], y - bar / 2, middle, y + bar / 2], fill=_COLORS["additions"]
                )
            if deleted > 0:
                self.draw.rectangle(
                    [middle, y - bar / 2, end, y + bar / 2], fill=_COLORS["deletions"]
                )
            text = f"+{_number(added)}/-{_number(deleted)}"
            self.text((end + self.px(0.04), y), text, 8, anchor="lm")

    def _trend(self, box: tuple[float, float], rows: Sequence[float], row_height: float) -> None:
        """One sparkline per repository row, each scaled to its own peak."""
        x0, x1 = box
        top = self.px(1.1)
        self.text((x0, top - self.px(0.1)), self.labels.trend, 12, anchor="ld")
        step = (x1 - x0) / (TREND_DAYS + 3)  # room on the right for the peak label
        width = max(1, round(1.5 * self.scale * DPI / 72))
        for y, repo in zip(rows, self.repos, strict=True):
            values = _series(self.activity, self.history, repo.repo)
            known = [v for v in values if not math.isnan(v)]
            peak = max(known, default=0.0) or 1.0
            points = [
                None
                if math.isnan(v)
                else (x0 + (i + 0.5) * step, y + row_height * (0.3 - 0.6 * v / peak))
                for i, v in enumerate(values)
            ]
            run: list[tuple[float, float]] = []
            for point in [*points, None]:  # a gap (no data) ends a line
                if point is not None:
                    run.append(point)
                    continue
                if len(run) > 1:
                    self.draw.line(run, fill=_COLORS["trend"], width=width, joint="curve")
                run = []
            last = points[-1]
            if last is not None:
                r = max(2.0, 2.5 * self.scale)
                box_ = [last[0] - r, last[1] - r, last[0] + r, last[1] + r]
                self.draw.ellipse(box_, fill=_COLORS["trend"])
            peak_text = self.labels.peak.format(peak=int(max(known, default=0.0)))
            self.text((x0 + (TREND_DAYS + 0.3) * step, y), peak_text, 8, _COLORS["muted"], "lm")
