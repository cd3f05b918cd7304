"""The picture of the day: per repository the day's merged PRs, new issues and lines changed,
and the last 14 days of merged PRs as a small trend, drawn with matplotlib (Agg) as a PNG.

Labels are Chinese when a CJK font is installed (found through matplotlib's font manager and
checked to hold every glyph we draw), English otherwise, so the picture never shows tofu boxes.
The PNG stays far inside Telegram's photo limits (10 MB, width + height ≤ 10000) and Discord's
attachment limit: about 1200×800 px and well under 1 MB for the eight default repositories.
"""

from __future__ import annotations

import functools
import io
import math
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Literal

# The Agg canvas is used directly (no pyplot): no display, no global figure registry.
from matplotlib import font_manager
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.font_manager import FontProperties
from matplotlib.ft2font import FT2Font
from matplotlib.ticker import FuncFormatter

from collectors.activity import DayActivity, RepoActivity

# Preferred CJK families, most common on servers first (Debian: fonts-noto-cjk, fonts-wqy-*).
CJK_FONTS: tuple[str, ...] = (
    "Noto Sans CJK SC",
    "Source Han Sans SC",
    "Source Han Sans CN",
    "Noto Sans SC",
    "WenQuanYi Zen Hei",
    "WenQuanYi Micro Hei",
    "Droid Sans Fallback",
    "PingFang SC",
    "Microsoft YaHei",
    "SimHei",
    "Noto Sans CJK JP",
    "Noto Sans CJK TC",
)
LATIN_FONT = "DejaVu Sans"  # bundled with matplotlib
TREND_DAYS = 14
DPI = 100
WIDTH_IN = 12.0
# Telegram: a photo ≤ 10 MB with width + height ≤ 10000; Discord: 10 MB per attachment. The
# chart keeps to a tenth of that, and its sides well inside.
MAX_BYTES = 1_000_000
MAX_SIDES = 10_000
MAX_HEIGHT_IN = 40.0

_COLORS = {
    "merged": "#2f81f7",
    "issues": "#d29922",
    "additions": "#2da44e",
    "deletions": "#cf222e",
    "trend": "#8250df",
    "muted": "#6e7781",
}
# Matplotlib's font and text caches are shared state: one render at a time.
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


def font_covers(family: str, characters: set[str]) -> bool:
    """True when the installed font `family` has a glyph for every character."""
    try:
        path = font_manager.findfont(FontProperties(family=family), fallback_to_default=False)
        face = FT2Font(path)
    except (ValueError, RuntimeError, OSError):
        return False
    return all(face.get_char_index(ord(char)) != 0 for char in characters)


@functools.cache
def find_cjk_font(preferred: tuple[str, ...] = CJK_FONTS) -> str | None:
    """The first installed family of `preferred` that can draw every Chinese label, or None."""
    installed = {entry.name for entry in font_manager.fontManager.ttflist}
    needed = _label_characters(ZH)
    for family in preferred:
        if family in installed and font_covers(family, needed):
            return family
    return None


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


def _bars(
    ax: Axes,
    values: Sequence[float],
    color: str,
    title: str,
    font: FontProperties,
    failed: Sequence[bool],
    failed_text: str,
) -> None:
    rows = range(len(values))
    container = ax.barh(rows, values, color=color, height=0.6)
    labels = ["" if bad else f"{int(v):,}" for v, bad in zip(values, failed, strict=True)]
    ax.bar_label(container, labels=labels, padding=3, fontsize=9)
    for row, bad in enumerate(failed):
        if bad:
            ax.text(0, row, f" {failed_text}", va="center", fontproperties=font, color="#6e7781")
    ax.set_title(title, fontproperties=font, fontsize=12, loc="left")
    ax.set_xlim(0, max(1.0, max(values, default=0.0)) * 1.3)
    _tidy(ax)


def _tidy(ax: Axes) -> None:
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    ax.tick_params(axis="x", labelsize=8, colors=_COLORS["muted"])
    ax.grid(axis="x", color="#d0d7de", linewidth=0.5)
    ax.set_axisbelow(True)


def _lines(
    ax: Axes,
    repos: Sequence[RepoActivity],
    title: str,
    font: FontProperties,
    failed_text: str,
) -> None:
    rows = list(range(len(repos)))
    additions = [float(r.totals.additions) for r in repos]
    deletions = [float(r.totals.deletions) for r in repos]
    ax.barh(rows, additions, color=_COLORS["additions"], height=0.6)
    ax.barh(rows, deletions, left=additions, color=_COLORS["deletions"], height=0.6)
    widest = max((a + d for a, d in zip(additions, deletions, strict=True)), default=0.0)
    for row, repo in enumerate(repos):
        if repo.error is not None:
            ax.text(0, row, f" {failed_text}", va="center", fontproperties=font, color="#6e7781")
            continue
        end = additions[row] + deletions[row]
        text = f" +{int(additions[row]):,}/-{int(deletions[row]):,}"
        ax.text(end, row, text, va="center", fontsize=8)
    ax.set_title(title, fontproperties=font, fontsize=12, loc="left")
    ax.set_xlim(0, max(1.0, widest) * 1.55)
    ax.xaxis.set_major_formatter(_compact)
    _tidy(ax)


def _compact_number(value: float, _position: object = None) -> str:
    if abs(value) >= 1000:
        return f"{value / 1000:g}k"
    return f"{value:g}"


_compact = FuncFormatter(_compact_number)


def _trend(
    ax: Axes, series: Sequence[Sequence[float]], labels: Labels, font: FontProperties
) -> None:
    """One sparkline per repository row, each scaled to its own peak."""
    xs = list(range(TREND_DAYS))
    for row, values in enumerate(series):
        known = [v for v in values if not math.isnan(v)]
        peak = max(known, default=0.0) or 1.0
        ys = [row + 0.3 - 0.6 * (v / peak) if not math.isnan(v) else math.nan for v in values]
        ax.plot(xs, ys, color=_COLORS["trend"], linewidth=1.5)
        if not math.isnan(ys[-1]):
            ax.plot([xs[-1]], [ys[-1]], "o", color=_COLORS["trend"], markersize=4)
        peak_text = labels.peak.format(peak=int(max(known, default=0.0)))
        ax.text(
            TREND_DAYS - 0.2,
            row,
            peak_text,
            va="center",
            fontproperties=font,
            fontsize=8,
            color=_COLORS["muted"],
        )
    ax.set_title(labels.trend, fontproperties=font, fontsize=12, loc="left")
    ax.set_xlim(-0.5, TREND_DAYS + 2.5)
    ax.set_xticks([])
    for side in ("top", "right", "bottom", "left"):
        ax.spines[side].set_visible(False)


def render_chart(
    activity: DayActivity,
    history: Sequence[tuple[date, DayActivity]],
    *,
    fonts: Sequence[str] | None = None,
) -> Chart:
    """Draw the day's chart; `fonts` overrides the CJK families searched (`()`: English labels)."""
    family = find_cjk_font(tuple(fonts) if fonts is not None else CJK_FONTS)
    labels = ZH if family is not None else EN
    font = FontProperties(family=[family, LATIN_FONT] if family else [LATIN_FONT])
    repos = list(activity.repos)
    height_in = min(MAX_HEIGHT_IN, max(5.0, 2.4 + 0.7 * len(repos)))
    with _RENDER_LOCK:
        png = _draw(activity, history, repos, labels, font, height_in, DPI)
        dpi = DPI
        while len(png) > MAX_BYTES and dpi > 50:  # only a huge repository list gets here
            dpi = int(dpi * 0.75)
            png = _draw(activity, history, repos, labels, font, height_in, dpi)
    width, height = round(WIDTH_IN * dpi), round(height_in * dpi)
    return Chart(png=png, width=width, height=height, font=family, language=labels.language)


def render_day_chart(activity: DayActivity, history: Sequence[tuple[date, DayActivity]]) -> bytes:
    """The day's chart as PNG bytes (history: earlier days, for the 14-day trend)."""
    return render_chart(activity, history).png


def _draw(
    activity: DayActivity,
    history: Sequence[tuple[date, DayActivity]],
    repos: Sequence[RepoActivity],
    labels: Labels,
    font: FontProperties,
    height_in: float,
    dpi: int,
) -> bytes:
    figure = Figure(figsize=(WIDTH_IN, height_in), dpi=dpi, facecolor="white")
    FigureCanvasAgg(figure)
    ok = [r for r in repos if r.error is None]
    figure.suptitle(
        labels.title.format(day=activity.day.isoformat()),
        fontproperties=font,
        fontsize=16,
        x=0.02,
        ha="left",
    )
    figure.text(
        0.02,
        1 - 0.62 / height_in,
        labels.totals.format(
            merged=sum(len(r.merged_pulls) for r in ok),
            issues=sum(len(r.opened_issues) for r in ok),
            additions=sum(r.totals.additions for r in ok),
            deletions=sum(r.totals.deletions for r in ok),
        ),
        fontproperties=font,
        fontsize=10,
        color=_COLORS["muted"],
    )
    if not repos:
        figure.text(0.5, 0.5, labels.no_repos, fontproperties=font, ha="center", fontsize=14)
        return _png(figure)
    grid = figure.add_gridspec(
        1,
        4,
        width_ratios=[1.0, 1.0, 1.5, 1.4],
        left=0.14,
        right=0.98,
        top=1 - 1.1 / height_in,
        bottom=0.5 / height_in,
        wspace=0.12,
    )
    first = figure.add_subplot(grid[0, 0])
    axes = [first, *(figure.add_subplot(grid[0, i], sharey=first) for i in range(1, 4))]
    failed = [r.error is not None for r in repos]
    merged = [
        0.0 if bad else float(len(r.merged_pulls)) for r, bad in zip(repos, failed, strict=True)
    ]
    issues = [
        0.0 if bad else float(len(r.opened_issues)) for r, bad in zip(repos, failed, strict=True)
    ]
    _bars(axes[0], merged, _COLORS["merged"], labels.merged, font, failed, labels.failed)
    _bars(axes[1], issues, _COLORS["issues"], labels.issues, font, failed, labels.failed)
    _lines(axes[2], repos, labels.lines, font, labels.failed)
    _trend(axes[3], [_series(activity, history, r.repo) for r in repos], labels, font)
    first.set_yticks(range(len(repos)), labels=_short_names([r.repo for r in repos]))
    for tick in first.get_yticklabels():
        tick.set_fontproperties(font)
        tick.set_fontsize(10)
    first.set_ylim(len(repos) - 0.5, -0.5)  # first repository on top
    for ax in axes[1:]:
        ax.tick_params(axis="y", left=False, labelleft=False)
    return _png(figure)


def _png(figure: Figure) -> bytes:
    buffer = io.BytesIO()
    # No "Software" chunk: the same data gives the same bytes on every matplotlib version.
    figure.savefig(buffer, format="png", facecolor="white", metadata={"Software": None})
    return buffer.getvalue()
