"""The web archive: pages and Atom feed built from a real SQLite store of synthetic days."""

from __future__ import annotations

import asyncio
import re
import threading
import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator, Iterator
from datetime import date, datetime
from html import unescape
from html.parser import HTMLParser
from pathlib import Path

import httpx
import pytest
from headless_chromium import HeadlessChromium, find_chromium
from markdown_it import MarkdownIt
from markdown_it.renderer import RendererHTML
from synthetic_days import REPOS, compose, day_activity, days_ending, pull, repo_day

from bot.site import (
    FEED_DAYS,
    MANIFEST,
    SiteStats,
    build_site,
    make_server,
    markdown_renderer,
    repo_slug,
    serve_site,
)
from bot.store import Store
from collectors.activity import DayActivity, Issue
from summarizer.digest import Digest, Section

ATOM = "{http://www.w3.org/2005/Atom}"
LAST = date(2026, 2, 4)
DAYS = days_ending(LAST, 4)
VLLM = "vllm-project/vllm"
HOSTILE_TITLE = "<script>alert(1)</script>"
RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$")


# ---------------------------------------------------------------- helpers


class Page(HTMLParser):
    """Elements, attributes and text of an HTML document, as a browser's parser splits them."""

    def __init__(self, html: str) -> None:
        super().__init__(convert_charrefs=True)
        self.elements: list[tuple[str, dict[str, str]]] = []
        self.chunks: list[str] = []
        self.feed(html)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.elements.append((tag, {name: value or "" for name, value in attrs}))

    def handle_data(self, data: str) -> None:
        self.chunks.append(data)

    @property
    def text(self) -> str:
        return "".join(self.chunks)

    def all(self, tag: str) -> list[dict[str, str]]:
        return [attrs for name, attrs in self.elements if name == tag]

    def hrefs(self) -> list[str]:
        return [attrs["href"] for attrs in self.all("a") if "href" in attrs]

    def table_rows(self, html: str) -> list[list[str]]:
        rows = re.findall(r"<tr>(.*?)</tr>", html, re.DOTALL)
        return [
            [unescape(re.sub(r"<[^>]+>", "", c)) for c in re.findall(r"<t[dh]>(.*?)</t[dh]>", row)]
            for row in rows
        ]


def hostile_day(day: date) -> tuple[Digest, DayActivity]:
    """A day whose texts try to become markup: a script title, javascript: links, raw HTML."""
    vllm = repo_day(VLLM, day, merged=0, releases=["v0.9.0"]).model_copy(
        update={
            "merged_pulls": [pull(VLLM, 4242, day, HOSTILE_TITLE, labels=["<b>bold</b>"])],
            "opened_issues": [
                Issue(
                    number=77,
                    title='"><img src=x onerror=alert(2)> 中文标题',
                    url="javascript:alert(3)",
                    created_at=datetime(
                        2026, 2, 4, 3, tzinfo=day_activity(day).window_utc[0].tzinfo
                    ),
                )
            ],
        }
    )
    activity = day_activity(day, overrides=[vllm])
    hostile_markdown = (
        f"**已合并 PR**\n- [#4242](https://github.com/{VLLM}/pull/4242) {HOSTILE_TITLE}\n"
        '- [点我](javascript:alert(4)) 和 <a href="javascript:alert(5)">链接</a>\n'
        "- <img src=x onerror=alert(6)> ![pixel](https://tracker.example/p.png)\n"
        "- <JAVASCRIPT:alert(7)> [大写](JaVaScRiPt:alert(8))"
        " [数据](data:text/html,<script>x</script>)"
    )
    sections = [
        Section(repo=VLLM, markdown=hostile_markdown, written_by="model", model="m")
        if a.repo == VLLM
        else Section(repo=a.repo, markdown="- 没有值得一提的变化", written_by="structured")
        for a in activity.repos
    ]
    digest = Digest(
        day=day,
        sections=sections,
        summary=f"摘要里也有 {HOSTILE_TITLE} 和 [坏链接](javascript:alert(9))。",
        conclusion="总结：<iframe src=https://evil.example></iframe> 需要关注。",
        notes=["<script>alert(10)</script> 说明"],
    )
    return digest, activity


async def archive(store: Store, days: list[date], *, hostile: date | None = LAST) -> None:
    for day in days:
        if day == hostile:
            digest, activity = hostile_day(day)
        else:
            overrides = []
            if day == days[0]:
                overrides = [repo_day(VLLM, day, merged=3, issues=2, releases=["v0.8.5"])]
            activity = day_activity(day, overrides=overrides)
            digest = await compose(activity)
        await store.save_digest(digest, activity)


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    store = await Store.open(f"sqlite+aiosqlite:///{tmp_path / 'archive.db'}")
    await archive(store, DAYS)
    yield store
    await store.close()


@pytest.fixture
async def site(store: Store, tmp_path: Path) -> Path:
    out = tmp_path / "site"
    await build_site(store, out)
    return out


def read(path: Path) -> str:
    return path.read_bytes().decode("utf-8")


def feed(site: Path) -> ET.Element:
    return ET.fromstring(site.joinpath("atom.xml").read_bytes())


def assert_inert(html: str) -> None:
    """No element or attribute of `html` can run script or leave for a non-http(s) URL."""
    page = Page(html)
    assert page.all("script") == []
    assert page.all("iframe") == []
    assert page.all("img") == []
    for _tag, attrs in page.elements:
        assert not [name for name in attrs if name.startswith("on")], attrs
        for name in ("href", "src", "action"):
            if name in attrs:
                value = attrs[name].strip().lower()
                assert not value.startswith(("javascript:", "data:text", "vbscript:")), attrs


# ---------------------------------------------------------------- pages


async def test_build_writes_index_day_pages_repository_day_pages_and_feed(
    store: Store, tmp_path: Path
) -> None:
    stats = await build_site(store, tmp_path / "out")

    assert isinstance(stats, SiteStats)
    assert (stats.days, stats.feed_entries, stats.newest) == (4, 4, LAST)
    assert stats.files == 1 + 4 + 4 * len(REPOS) + 1
    pages = [p for p in (tmp_path / "out").rglob("*") if p.is_file() and p.name != MANIFEST]
    assert stats.bytes == sum(p.stat().st_size for p in pages)
    assert stats.reused_days == 0
    for day in DAYS:
        assert (tmp_path / "out" / "days" / f"{day}.html").is_file()
        for repo in REPOS:
            assert (tmp_path / "out" / "days" / str(day) / f"{repo_slug(repo)}.html").is_file()
    assert (tmp_path / "out" / "days" / "2026-02-04" / "vllm-project__vllm.html").is_file()


async def test_index_lists_days_newest_first_with_per_repository_counts(site: Path) -> None:
    html = read(site / "index.html")
    order = [d for d in re.findall(r'href="days/(\d{4}-\d{2}-\d{2})\.html"', html)]
    assert order == [str(d) for d in reversed(DAYS)]

    oldest = html[html.index(f'id="d{DAYS[0]}"') :]
    rows = Page(oldest).table_rows(oldest)
    assert rows[0] == ["仓库", "合并 PR", "新 issue", "commit", "release"]
    assert [VLLM, "3", "2", "3", "1"] in rows


async def test_day_page_links_each_repository_day_and_github(site: Path) -> None:
    page = Page(read(site / "days" / f"{DAYS[0]}.html"))
    hrefs = page.hrefs()

    for repo in REPOS:
        assert f"{DAYS[0]}/{repo_slug(repo)}.html" in hrefs
    external = [h for h in hrefs if h.startswith("http")]
    assert external and all(h.startswith("https://github.com/") for h in external)
    assert f"https://github.com/{VLLM}/releases/tag/v0.8.5" in hrefs
    assert f"{DAYS[1]}.html" in hrefs  # the next day
    assert "摘要" in page.text and "总结" in page.text


async def test_repository_day_page_lists_the_day_in_detail_with_github_links(site: Path) -> None:
    html = read(site / "days" / str(DAYS[0]) / "vllm-project__vllm.html")
    page = Page(html)

    assert "当日明细" in page.text
    assert "合并 PR 3 · 新 issue 2 · commit 3 · release 1" in page.text
    assert f"https://github.com/{VLLM}" in page.hrefs()
    assert sum(1 for h in page.hrefs() if f"github.com/{VLLM}/pull/" in h) >= 3


async def test_pages_are_utf8_chinese_and_phone_ready(site: Path) -> None:
    for path in (site / "index.html", site / "days" / f"{LAST}.html"):
        html = read(path)  # decodes as UTF-8 or fails
        assert html.startswith('<!doctype html>\n<html lang="zh-CN">')
        assert '<meta charset="utf-8">' in html
        assert '<meta name="viewport" content="width=device-width, initial-scale=1">' in html
        assert '"PingFang SC","Noto Sans CJK SC","Microsoft YaHei",sans-serif' in html
        assert "max-width:46rem" in html
        assert "AI Infra 每日简报" in html


async def test_a_rebuild_keeps_unchanged_days_and_rewrites_the_new_days_neighbour(
    store: Store, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    await build_site(store, out)
    kept = out / "days" / f"{DAYS[0]}.html"
    kept_before = kept.stat().st_mtime_ns

    same = await build_site(store, out)
    assert (same.reused_days, same.files) == (4, 2)  # only the index and the feed

    new_day = date(2026, 2, 5)
    activity = day_activity(new_day)
    await store.save_digest(await compose(activity), activity)
    grown = await build_site(store, out)

    assert (grown.days, grown.reused_days) == (5, 3)
    assert f"{new_day}.html" in Page(read(out / "days" / f"{LAST}.html")).hrefs()
    assert (out / "days" / str(new_day) / "vllm-project__vllm.html").is_file()
    assert kept.stat().st_mtime_ns == kept_before
    assert (await build_site(store, out, full=True)).reused_days == 0
    assert (await build_site(store, out, title="别的标题")).reused_days == 0


async def test_days_that_left_the_archive_lose_their_pages(store: Store, tmp_path: Path) -> None:
    out = tmp_path / "out"
    await build_site(store, out)
    async with await Store.open(f"sqlite+aiosqlite:///{tmp_path / 'smaller.db'}") as smaller:
        await archive(smaller, DAYS[1:], hostile=None)
        stats = await build_site(smaller, out)

    assert stats.days == 3
    assert not (out / "days" / f"{DAYS[0]}.html").exists()
    assert not (out / "days" / str(DAYS[0])).exists()
    assert (out / "days" / f"{DAYS[1]}.html").is_file()


# ---------------------------------------------------------------- Markdown

TRICKY_MARKDOWN = [
    "- [#1](https://github.com/a/b/pull/1) 修复（+1/-2）",
    "**[#1](https://github.com/a/b/pull/1)** 和 *[v1.0](https://github.com/a/b/releases/tag/v1.0)*",
    "[a](https://x.example/(z)) [b](https://x.example/a%20b) [c](https://x.example/路径)",
    '[a](https://x.example "title") [b](<https://x.example/b>) [c]( https://x.example/c )',
    "`[a](https://x.example)` \\[b](https://x.example) \\[c\\](https://x.example)",
    "[[a]](https://x.example) [a [b]](https://x.example) ![i](https://x.example/i.png)",
    "[a](javascript:alert(1)) [b](HTTPS://X.EXAMPLE/B) [c](data:text/html,x) [d](ftp://x.example)",
    "[a &amp; b](https://x.example) [a_b](https://x.example) [a*b*](https://x.example/c_d*e)",
    '[ spaced ](https://x.example)) [q"uote](https://x.example/?a=1&b=2#f~)',
    "[a](https://x.example)[b](https://x.example)[c]",
    "[line\nbreak](https://x.example) [](https://x.example) [x](https://)",
    "| 仓库 | [链接](https://x.example/t) |\n| --- | --- |\n| a | [b](https://x.example/b) |",
]


async def test_the_fast_link_path_renders_exactly_what_markdown_it_renders() -> None:
    plain = MarkdownIt("commonmark", {"html": False, "linkify": False, "typographer": False})
    plain.enable(["table", "strikethrough"])
    plain.disable("image")
    fast = markdown_renderer()
    plain.validateLink = fast.validateLink  # type: ignore[method-assign]
    assert isinstance(fast.renderer, RendererHTML)
    plain.add_render_rule("link_open", fast.renderer.rules["link_open"])
    corpus = list(TRICKY_MARKDOWN)
    for day in days_ending(LAST, 3):
        digest = await compose(day_activity(day, busy=5))
        corpus += [digest.summary, digest.conclusion, *(s.markdown for s in digest.sections)]
    corpus.append(hostile_day(LAST)[0].sections[-2].markdown)

    for text in corpus:
        assert fast.render(text) == plain.render(text), text
    assert 'href="https://github.com/a/b/pull/1"' in fast.render(TRICKY_MARKDOWN[0])


# ---------------------------------------------------------------- escaping


async def test_hostile_titles_and_javascript_links_stay_inert_text(site: Path) -> None:
    day_html = read(site / "days" / f"{LAST}.html")
    repo_html = read(site / "days" / str(LAST) / "vllm-project__vllm.html")

    for html in (day_html, repo_html, read(site / "index.html")):
        assert_inert(html)
    for html in (day_html, repo_html):
        assert HOSTILE_TITLE in Page(html).text  # shown as text, escaped in the source
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    repo_page = Page(repo_html)
    assert '"><img src=x onerror=alert(2)> 中文标题' in repo_page.text
    assert "<b>" not in repo_html
    assert "javascript" not in " ".join(repo_page.hrefs()).lower()
    day_page = Page(day_html)
    assert "点我" in day_page.text  # the link text survives, the link does not
    assert f"https://github.com/{VLLM}/pull/4242" in day_page.hrefs()


async def test_feed_content_is_escaped_html_that_stays_inert(site: Path) -> None:
    entry = next(
        e for e in feed(site).iter(f"{ATOM}entry") if str(LAST) in e.findtext(f"{ATOM}title", "")
    )
    content = entry.findtext(f"{ATOM}content") or ""

    assert_inert(content)
    assert HOSTILE_TITLE in Page(content).text
    assert f"https://github.com/{VLLM}/pull/4242" in Page(content).hrefs()


async def test_control_characters_in_titles_keep_the_feed_parseable(tmp_path: Path) -> None:
    async with await Store.open(f"sqlite+aiosqlite:///{tmp_path / 'db.sqlite'}") as store:
        activity = day_activity(LAST)
        digest = await compose(activity)
        digest = digest.model_copy(update={"summary": "摘要\x0b含有\x00控制字符\ufffe。"})
        await store.save_digest(digest, activity)
        await build_site(store, tmp_path / "out")

    entry = feed(tmp_path / "out").find(f"{ATOM}entry")
    assert entry is not None
    content = entry.findtext(f"{ATOM}content") or ""
    assert "控制字符" in content
    assert not re.search("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe]", content)


# ---------------------------------------------------------------- the feed


def assert_atom_date(text: str | None) -> datetime:
    assert text is not None and RFC3339.match(text), text
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def only(parent: ET.Element, tag: str) -> ET.Element:
    found = parent.findall(f"{ATOM}{tag}")
    assert len(found) == 1, f"{parent.tag} needs exactly one {tag}, has {len(found)}"
    return found[0]


async def test_atom_feed_follows_the_atom_rules(site: Path) -> None:
    root = feed(site)

    assert root.tag == f"{ATOM}feed"
    assert root.get("{http://www.w3.org/XML/1998/namespace}lang") == "zh-CN"
    assert re.match(r"^[a-z][a-z0-9+.-]*:", only(root, "id").text or "")
    assert only(root, "title").text == "AI Infra 每日简报"
    updated = assert_atom_date(only(root, "updated").text)
    # atom:author is required on the feed unless every entry has one.
    assert only(root, "author").findtext(f"{ATOM}name")
    alternates = [
        link for link in root.findall(f"{ATOM}link") if link.get("rel", "alternate") == "alternate"
    ]
    assert len(alternates) == 1 and alternates[0].get("href") == "index.html"

    entries = root.findall(f"{ATOM}entry")
    assert len(entries) == len(DAYS)
    ids = [only(e, "id").text for e in entries]
    assert len(set(ids)) == len(ids)
    assert all(re.match(r"^[a-z][a-z0-9+.-]*:\S+$", i or "") for i in ids)
    stamps = [assert_atom_date(only(e, "updated").text) for e in entries]
    assert stamps == sorted(stamps, reverse=True)  # newest first
    assert updated == max(stamps)
    for entry, day in zip(entries, reversed(DAYS), strict=True):
        assert str(day) in (only(entry, "title").text or "")
        content = only(entry, "content")
        assert content.get("type") == "html"
        assert "摘要" in (content.text or "") and "https://github.com/" in (content.text or "")
        link = only(entry, "link")
        assert (link.get("rel"), link.get("href")) == ("alternate", f"days/{day}.html")


async def test_feed_with_a_base_url_has_absolute_links_a_self_link_and_canonical_pages(
    store: Store, tmp_path: Path
) -> None:
    await build_site(store, tmp_path / "out", base_url="https://digest.example.org/ai/")
    root = feed(tmp_path / "out")

    links = {link.get("rel"): link.get("href") for link in root.findall(f"{ATOM}link")}
    assert links == {
        "self": "https://digest.example.org/ai/atom.xml",
        "alternate": "https://digest.example.org/ai/index.html",
    }
    entry = root.findall(f"{ATOM}entry")[0]
    assert only(entry, "id").text == f"https://digest.example.org/ai/days/{LAST}.html"
    html = read(tmp_path / "out" / "days" / f"{LAST}.html")
    assert f'<link rel="canonical" href="https://digest.example.org/ai/days/{LAST}.html">' in html


async def test_feed_carries_only_the_newest_days(tmp_path: Path) -> None:
    async with await Store.open(f"sqlite+aiosqlite:///{tmp_path / 'db.sqlite'}") as store:
        await archive(store, days_ending(LAST, 5), hostile=None)
        stats = await build_site(store, tmp_path / "out", feed_days=2)

    titles = [e.findtext(f"{ATOM}title") or "" for e in feed(tmp_path / "out").iter(f"{ATOM}entry")]
    assert (stats.days, stats.feed_entries, len(titles)) == (5, 2, 2)
    assert str(LAST) in titles[0] and FEED_DAYS >= 2


async def test_an_empty_archive_builds_an_index_and_a_valid_empty_feed(tmp_path: Path) -> None:
    async with await Store.open(f"sqlite+aiosqlite:///{tmp_path / 'db.sqlite'}") as store:
        stats = await build_site(store, tmp_path / "out")

    assert (stats.days, stats.files, stats.newest) == (0, 2, None)
    assert "存档中还没有简报" in read(tmp_path / "out" / "index.html")
    root = feed(tmp_path / "out")
    assert root.findall(f"{ATOM}entry") == []
    assert_atom_date(only(root, "updated").text)


# ---------------------------------------------------------------- serving and a real browser


@pytest.fixture
def served(site: Path) -> Iterator[str]:
    server = make_server(site, "127.0.0.1", 0)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        host, port = server.server_address[:2]
        yield f"http://{host!s}:{port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


async def test_serve_answers_pages_and_feed_with_their_charset(served: str) -> None:
    async with httpx.AsyncClient(base_url=served) as client:
        index = await client.get("/index.html")
        atom = await client.get("/atom.xml")
        missing = await client.get("/days/1999-01-01.html")

    assert index.status_code == 200
    assert index.headers["content-type"] == "text/html; charset=utf-8"
    assert "AI Infra 每日简报" in index.text
    assert atom.headers["content-type"].startswith("application/atom+xml")
    assert missing.status_code == 404


async def test_serve_site_runs_until_cancelled(site: Path) -> None:
    ready: asyncio.Future[str] = asyncio.get_running_loop().create_future()
    task = asyncio.create_task(serve_site(site, "127.0.0.1", 0, on_ready=ready.set_result))
    url = await asyncio.wait_for(ready, 5)
    async with httpx.AsyncClient() as client:
        response = await client.get(f"{url}days/{LAST}.html")
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task

    assert response.status_code == 200 and HOSTILE_TITLE in Page(response.text).text
    with pytest.raises(httpx.ConnectError):
        async with httpx.AsyncClient() as client:
            await client.get(url)


@pytest.mark.skipif(find_chromium() is None, reason="chromium is not installed")
async def test_index_and_day_page_render_in_headless_chromium_without_console_errors(
    served: str, tmp_path: Path
) -> None:
    control = tmp_path / "site" / "control.html"
    control.write_text(
        '<!doctype html><meta http-equiv="Content-Security-Policy" content="default-src \'none\'">'
        "<p>对照</p><script>console.error('x')</script>",
        encoding="utf-8",
    )
    layout = (
        "document.documentElement.scrollWidth",
        "window.innerWidth",
        "document.scripts.length",
    )

    async with HeadlessChromium.launch(tmp_path) as browser:
        index = await browser.visit(f"{served}/index.html", width=390, evaluate=layout)
        day = await browser.visit(f"{served}/days/{LAST}.html", width=390, evaluate=layout)
        checked = await browser.visit(f"{served}/control.html")

    assert checked.errors, "the harness must see console errors when a page has them"
    assert index.errors == [] and day.errors == []
    assert "AI Infra 每日简报" in index.text
    assert str(LAST) in index.text and VLLM in index.text and "合并 PR" in index.text
    assert "摘要" in day.text and "具体内容分析" in day.text and "总结" in day.text
    assert HOSTILE_TITLE in day.text  # rendered as visible text, not run
    for page in (index, day):
        assert page.value("document.scripts.length") == 0
        # Readable on a phone: nothing wider than the 390 px viewport.
        assert page.value("document.documentElement.scrollWidth") <= page.value("window.innerWidth")
