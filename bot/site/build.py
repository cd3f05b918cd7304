"""The web archive: a static site (index, day pages, repository-day pages) and an Atom feed.

Everything comes from the store's archive. Text from GitHub users and models reaches the pages
only through Jinja2's autoescape or through markdown-it with raw HTML disabled and links limited
to http(s), so an issue titled `<script>` stays text. Pages carry a script-free
Content-Security-Policy as a second line of defence.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import re
import shutil
import time
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from jinja2 import DictLoader, Environment, StrictUndefined
from markupsafe import Markup

from bot.site.markdown import github_url, is_safe_url, render_markdown_html, repo_slug
from bot.site.templates import TEMPLATES
from collectors.activity import DayActivity, RepoActivity
from collectors.window import day_window
from summarizer.digest import NO_UPDATES, Digest

if TYPE_CHECKING:
    from bot.store import Store

log = logging.getLogger(__name__)


SITE_TITLE = "AI Infra 每日简报"
# Full HTML of every day makes a feed heavy; readers poll it, so it carries the newest days only.
FEED_DAYS = 30
# All archived days (the store's archive listing is bounded by a limit).
MAX_DAYS = 100_000
ATOM_NS = "http://www.w3.org/2005/Atom"
FEED_ID = "tag:aiinfra-digest,2026:archive"
# Remembers what each day's pages were built from, for incremental rebuilds.
MANIFEST = ".site-manifest.json"
# Pages change when the templates or the code that fills them change: bump with the code.
SITE_FORMAT = "1"
_TEMPLATES_HASH = hashlib.sha256(
    json.dumps([SITE_FORMAT, TEMPLATES], sort_keys=True).encode()
).hexdigest()[:16]
_ISO_DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")

_WEEKDAYS = ("周一", "周二", "周三", "周四", "周五", "周六", "周日")
# Characters XML 1.0 forbids (C0 controls other than tab/newline/CR, lone surrogates, U+FFFE/F):
# a title carrying one would make the whole feed unparseable.
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


@dataclass(frozen=True)
class SiteStats:
    """What a build wrote: days archived, pages written (and their size), days kept, time."""

    days: int
    files: int
    bytes: int
    seconds: float
    feed_entries: int
    newest: date | None = None
    reused_days: int = 0  # days whose pages were already up to date (incremental build)


@dataclass(frozen=True)
class RepoCounts:
    """A repository-day's activity counts, as the index and page headers show them."""

    merged: int
    issues: int
    commits: int
    releases: int
    opened_pulls: int = 0
    additions: int = 0
    deletions: int = 0
    failed: bool = False

    @property
    def active(self) -> bool:
        """True when anything happened."""
        return bool(
            self.merged or self.issues or self.commits or self.releases or self.opened_pulls
        )

    @classmethod
    def of(cls, activity: RepoActivity) -> RepoCounts:
        """The counts of one collected repository-day."""
        return cls(
            merged=len(activity.merged_pulls),
            issues=len(activity.opened_issues),
            commits=activity.totals.commits,
            releases=len(activity.releases),
            opened_pulls=len(activity.opened_pulls),
            additions=activity.totals.additions,
            deletions=activity.totals.deletions,
            failed=activity.error is not None,
        )


class _Renderer:
    """Markdown → HTML for one build, each text once (notes and "no updates" repeat daily).

    Views ask for HTML on first use, so an incremental build never renders the days it keeps.
    Worker processes were tried and dropped: spawning them (each re-imports the application)
    cost more than the rendering they took over.
    """

    def __init__(self) -> None:
        self._done: dict[str, Markup] = {}

    def html(self, text: str) -> Markup:
        found = self._done.get(text)
        if found is None:
            found = self._done[text] = render_markdown_html(text)
        return found


@dataclass(frozen=True)
class _SectionView:
    repo: str
    slug: str
    github: str | None
    markdown: str
    counts: RepoCounts | None
    activity: RepoActivity | None
    renderer: _Renderer = field(compare=False, repr=False)

    @property
    def html(self) -> Markup:
        return self.renderer.html(self.markdown)


@dataclass(frozen=True)
class _DayView:
    day: date
    digest: Digest
    activity: DayActivity | None
    sections: list[_SectionView]
    updated: datetime
    renderer: _Renderer = field(compare=False, repr=False)
    older: str | None = None
    newer: str | None = None

    @property
    def summary_html(self) -> Markup:
        return self.renderer.html(self.digest.summary)

    @property
    def conclusion_html(self) -> Markup:
        return self.renderer.html(self.digest.conclusion)

    @property
    def notes_html(self) -> list[Markup]:
        return [self.renderer.html(note) for note in self.digest.notes]

    @property
    def iso(self) -> str:
        return self.day.isoformat()

    @property
    def weekday(self) -> str:
        return _WEEKDAYS[self.day.weekday()]

    @property
    def active(self) -> list[_SectionView]:
        return [s for s in self.sections if s.counts is not None and s.counts.active]

    @property
    def quiet(self) -> list[str]:
        return [
            s.repo
            for s in self.sections
            if s.counts is not None and not s.counts.failed and not s.counts.active
        ]

    @property
    def failed(self) -> list[str]:
        return [s.repo for s in self.sections if s.counts is None or s.counts.failed]


@dataclass(frozen=True)
class _DetailItem:
    url: str | None  # None when the URL is not http(s): the label is shown without a link
    label: str
    text: str


@dataclass(frozen=True)
class _DetailGroup:
    title: str
    items: list[_DetailItem]


def _environment() -> Environment:
    env = Environment(
        loader=DictLoader(TEMPLATES),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    return env


def _size(additions: int | None, deletions: int | None) -> str:
    if additions is None and deletions is None:
        return ""
    return f"（+{additions or 0:,}/-{deletions or 0:,}）"


def _item(url: str, label: str, text: str) -> _DetailItem:
    return _DetailItem(url if is_safe_url(url) else None, label, text)


def detail_groups(activity: RepoActivity | None) -> list[_DetailGroup]:
    """The repository-day's items, grouped and linked to GitHub, for its page's detail list."""
    if activity is None:
        return []
    groups = [
        _DetailGroup(
            "版本发布",
            [
                _item(
                    r.url,
                    r.tag_name,
                    (r.name if r.name and r.name != r.tag_name else "")
                    + ("（预发布）" if r.prerelease else ""),
                )
                for r in activity.releases
            ],
        ),
        _DetailGroup(
            "已合并 PR",
            [
                _item(p.url, f"#{p.number}", p.title + _size(p.additions, p.deletions))
                for p in activity.merged_pulls
            ],
        ),
        _DetailGroup(
            "新开 PR", [_item(p.url, f"#{p.number}", p.title) for p in activity.opened_pulls]
        ),
        _DetailGroup(
            "新 issue",
            [
                _item(
                    i.url,
                    f"#{i.number}",
                    i.title + (f"（{i.comments} 条评论）" if i.comments else ""),
                )
                for i in activity.opened_issues
            ],
        ),
        _DetailGroup(
            "commit",
            [
                _item(c.url, c.sha[:7], c.title + _size(c.additions, c.deletions))
                for c in activity.commits
            ],
        ),
    ]
    return [group for group in groups if group.items]


def _updated(day: date, digest: Digest, activity: DayActivity | None) -> datetime:
    """When a day's entry counts as written: the end of its window (a digest follows its day)."""
    if activity is not None:
        return activity.window_utc[1].astimezone(UTC)
    return day_window(day, digest.timezone).end


def _day_view(digest: Digest, activity: DayActivity | None, renderer: _Renderer) -> _DayView:
    sections = []
    for section in digest.sections:
        repo_activity = activity.repo(section.repo) if activity is not None else None
        sections.append(
            _SectionView(
                repo=section.repo,
                slug=repo_slug(section.repo),
                github=github_url(section.repo),
                markdown=section.markdown.strip() or NO_UPDATES,
                counts=RepoCounts.of(repo_activity) if repo_activity is not None else None,
                activity=repo_activity,
                renderer=renderer,
            )
        )
    return _DayView(
        day=digest.day,
        digest=digest,
        activity=activity,
        sections=sections,
        updated=_updated(digest.day, digest, activity),
        renderer=renderer,
    )


def _rfc3339(instant: datetime) -> str:
    return instant.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _absolute(base_url: str | None, path: str) -> str:
    return f"{base_url.rstrip('/')}/{path}" if base_url else path


# ---------------------------------------------------------------- the feed


def atom_feed(
    days: Sequence[_DayView],
    fragments: Sequence[str],
    *,
    title: str,
    base_url: str | None,
    now: datetime | None = None,
) -> bytes:
    """Atom 1.0 for `days` (newest first) with each day's full HTML as its content."""

    def sub(parent: ET.Element, tag: str, text: str | None = None, **attrs: str) -> ET.Element:
        element = ET.SubElement(parent, tag, attrs)
        if text is not None:
            element.text = _NOT_XML.sub("", text)
        return element

    # Plain names with an explicit xmlns: ElementTree's default_namespace rejects the
    # unqualified attributes Atom uses (rel, href, type).
    feed = ET.Element("feed", {"xmlns": ATOM_NS, "xml:lang": "zh-CN"})
    base = base_url.rstrip("/") if base_url else None
    sub(feed, "id", f"{base}/atom.xml" if base else FEED_ID)
    sub(feed, "title", title)
    sub(feed, "subtitle", "AI Infra 开源仓库的每日中文简报")
    newest = max((d.updated for d in days), default=now or datetime.now(UTC))
    sub(feed, "updated", _rfc3339(newest))
    if base:
        sub(feed, "link", rel="self", type="application/atom+xml", href=f"{base}/atom.xml")
    sub(feed, "link", rel="alternate", type="text/html", href=_absolute(base, "index.html"))
    author = sub(feed, "author")
    sub(author, "name", "aiinfra-digest")
    sub(feed, "generator", "aiinfra-digest")
    for day, fragment in zip(days, fragments, strict=True):
        entry = sub(feed, "entry")
        page = f"days/{day.iso}.html"
        sub(entry, "id", _absolute(base, page) if base else f"{FEED_ID}:{day.iso}")
        sub(entry, "title", f"{day.iso}（{day.weekday}）AI Infra 新闻")
        sub(entry, "updated", _rfc3339(day.updated))
        sub(entry, "link", rel="alternate", type="text/html", href=_absolute(base, page))
        sub(entry, "content", fragment, type="html")
    body = ET.tostring(feed, encoding="unicode")
    return ('<?xml version="1.0" encoding="utf-8"?>\n' + body + "\n").encode("utf-8")


# ---------------------------------------------------------------- the build


class _Writer:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.files = 0
        self.bytes = 0
        self._dirs: set[Path] = set()

    def write(self, relative: str, content: str | bytes) -> None:
        path = self.root / relative
        if path.parent not in self._dirs:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._dirs.add(path.parent)
        data = content.encode("utf-8") if isinstance(content, str) else content
        path.write_bytes(data)
        self.files += 1
        self.bytes += len(data)

    def write_quietly(self, relative: str, content: str) -> None:
        """Write a file that is not part of the site (not counted), atomically."""
        path = self.root / relative
        temporary = path.with_name(path.name + ".tmp")
        temporary.write_text(content, encoding="utf-8")
        temporary.replace(path)


async def _load_days(store: Store, renderer: _Renderer) -> list[_DayView]:
    views: list[_DayView] = []
    for day in await store.archived_days(limit=MAX_DAYS):
        digest = await store.load_digest(day)
        if digest is None:  # deleted between listing and loading
            continue
        views.append(_day_view(digest, await store.load_activity(day), renderer))
    return views


def _day_key(view: _DayView, title: str, base_url: str | None) -> str:
    """Everything a day's pages depend on: unchanged key, unchanged pages."""
    digest = hashlib.sha256()
    parts = (
        _TEMPLATES_HASH,
        title,
        base_url or "",
        view.older or "",
        view.newer or "",
        view.digest.model_dump_json(),
        view.activity.model_dump_json() if view.activity is not None else "",
    )
    for part in parts:
        digest.update(part.encode("utf-8"))
        digest.update(b"\x1f")
    return digest.hexdigest()


def _read_manifest(out_dir: Path) -> dict[str, str]:
    try:
        data = json.loads((out_dir / MANIFEST).read_text(encoding="utf-8"))
        days = data["days"] if data.get("format") == _TEMPLATES_HASH else {}
        return {str(day): str(key) for day, key in days.items()}
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return {}


def _remove_day(out_dir: Path, iso: str) -> None:
    """Delete the pages of a day that left the archive."""
    if not _ISO_DAY.match(iso):  # the manifest is ours, but it is a file on disk
        return
    (out_dir / "days" / f"{iso}.html").unlink(missing_ok=True)
    folder = out_dir / "days" / iso
    if folder.is_dir():
        shutil.rmtree(folder)


async def build_site(
    store: Store,
    out_dir: Path,
    *,
    title: str = SITE_TITLE,
    base_url: str | None = None,
    feed_days: int = FEED_DAYS,
    full: bool = False,
) -> SiteStats:
    """Write the static archive of every archived day to `out_dir`; returns what was written.

    `base_url` (where the site will be served) makes feed links and ids absolute and adds
    canonical links; without it every link is relative and the feed ids are tag URIs.
    Pages of days whose content, neighbours and settings are unchanged since the last build
    into `out_dir` are kept as they are (`full=True` rewrites everything). Rendering runs in a
    worker thread, so an event loop calling this (the bot) keeps answering meanwhile.
    """
    started = time.perf_counter()
    renderer = _Renderer()
    views = await _load_days(store, renderer)
    options = _BuildOptions(Path(out_dir), title, base_url, feed_days, full)
    stats = await asyncio.to_thread(_write_site, views, renderer, options)
    return replace(stats, seconds=time.perf_counter() - started)


@dataclass(frozen=True)
class _BuildOptions:
    out_dir: Path
    title: str
    base_url: str | None
    feed_days: int
    full: bool


def _write_site(views: list[_DayView], renderer: _Renderer, options: _BuildOptions) -> SiteStats:
    """The CPU-bound part of a build: render and write the pages, the feed and the manifest."""
    out_dir, title, base_url = options.out_dir, options.title, options.base_url
    for index, view in enumerate(views):  # newest first
        newer = views[index - 1].iso if index > 0 else None
        older = views[index + 1].iso if index + 1 < len(views) else None
        views[index] = replace(view, older=older, newer=newer)
    previous = {} if options.full else _read_manifest(out_dir)
    keys = {view.iso: _day_key(view, title, base_url) for view in views}
    in_feed = views[: max(0, options.feed_days)]
    stale = [
        view
        for view in views
        if previous.get(view.iso) != keys[view.iso]
        or not (out_dir / "days" / f"{view.iso}.html").is_file()
    ]
    env = _environment()
    common = {"site_title": title}
    writer = _Writer(out_dir)
    index_canonical = _absolute(base_url, "index.html") if base_url else None
    writer.write(
        "index.html",
        env.get_template("index.html").render(
            **common, root="", days=views, canonical=index_canonical
        ),
    )
    day_template = env.get_template("day.html")
    repo_template = env.get_template("repo_day.html")
    for view in stale:
        page = f"days/{view.iso}.html"
        canonical = _absolute(base_url, page) if base_url else None
        writer.write(page, day_template.render(**common, root="../", day=view, canonical=canonical))
        for section in view.sections:
            repo_page = f"days/{view.iso}/{section.slug}.html"
            writer.write(
                repo_page,
                repo_template.render(
                    **common,
                    root="../../",
                    day=view,
                    s=section,
                    details=detail_groups(section.activity),
                    canonical=_absolute(base_url, repo_page) if base_url else None,
                ),
            )
    for gone in set(previous) - set(keys):
        _remove_day(out_dir, gone)
    fragment = env.get_template("fragment.html").module.day_fragment  # type: ignore[attr-defined]
    fragments = [str(fragment(view, False)) for view in in_feed]
    writer.write("atom.xml", atom_feed(in_feed, fragments, title=title, base_url=base_url))
    writer.write_quietly(MANIFEST, json.dumps({"format": _TEMPLATES_HASH, "days": keys}, indent=0))
    return SiteStats(
        days=len(views),
        files=writer.files,
        bytes=writer.bytes,
        seconds=0.0,
        feed_entries=len(in_feed),
        newest=views[0].day if views else None,
        reused_days=len(views) - len(stale),
    )
