"""Plain text from GitHub (titles, labels, names, logins) reads literally in every renderer.

`escape_markdown_text` backslash-escapes what could format; the guard keeps the escapes (and
still neutralises mentions and removes ungrounded links); Telegram (telegramify-markdown →
entities), Discord (escapes passed through as Discord honours them) and the web page
(markdown-it) then show the title character for character, with no formatting inside it.
"""

from __future__ import annotations

import html
import re
from datetime import UTC, date, datetime

import pytest

from bot.commands import echo, render_sections
from bot.platforms.discord.render import render_messages as discord_messages
from bot.platforms.discord.render import to_discord
from bot.platforms.telegram import render_messages as telegram_messages
from bot.site import render_markdown_html
from collectors.activity import Commit, DayActivity, Issue, PullRequest, Release, RepoActivity
from summarizer.digest import Digest, Section, render_markdown
from summarizer.guard import (
    ZWSP,
    allowed_links,
    clean_model_markdown,
    escape_markdown_text,
    neutralise_mentions,
)
from summarizer.release_note import ReleaseNote, alert_markdown
from summarizer.structured import structured_section, structured_summary
from summarizer.watch import match_watches, watch_section
from summarizer.weekly import render_weekly_markdown, weekly_digest

REPO = "o/r"
BASE = f"https://github.com/{REPO}"
DAY = date(2026, 1, 1)
WHEN = datetime(2026, 1, 1, 3, 0, tzinfo=UTC)
SHA = "6b3e607b852f1543dc21323155a2ad71473c8642"

# Every kind of inline formatting the three renderers know, in one title (no quotes: markdown-it
# writes `"` as `&quot;`, which would only complicate the comparison).
HOSTILE = "**bold `code [x] _a_b_ *em* __init__ ~~s~~ ||sp|| $x+y$ <b>h</b> a\\b [^1] &amp; #t"
# Block markers: harmless in the middle of a line, formatting at the start of one.
LINE_STARTS = [
    "<https://evil.example> C:\\",
    "# heading",
    "### h3",
    "> quote",
    "- item",
    "+ item",
    "* item",
    "1. item",
    "2) item",
    "===",
    "---",
    "-# subtext",
    "    indented code",
    "```",
    "~~~",
    "| a | b |",
    "[a]: https://evil.example",
    "<div>x</div>",
]
# Our own formatting that may wrap a whole escaped text: a link label, a heading.
LINK = frozenset({"text_link"})
HEADING = frozenset({"bold", "underline"})


# ---------------------------------------------------------------- helpers: what readers see


def _utf16(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def entity_texts(markdown: str, kind: str) -> list[str]:
    """The text under each Telegram entity of `kind` (offsets count UTF-16 units)."""
    (message,) = telegram_messages(markdown)
    units = message.text.encode("utf-16-le")
    return [
        units[2 * e.offset : 2 * (e.offset + e.length)].decode("utf-16-le")
        for e in message.entities
        if e.type == kind
    ]


def telegram_shows_literally(
    markdown: str, shown: str, *, around: frozenset[str] = frozenset()
) -> None:
    """Every occurrence of `shown` in the Telegram text has no formatting inside it.

    Only entities of the `around` types (our link label, our heading) may cover it, wholly.
    """
    messages = telegram_messages(markdown)
    found = 0
    for message in messages:
        for match in re.finditer(re.escape(shown), message.text):
            found += 1
            start = _utf16(message.text[: match.start()])
            end = start + _utf16(shown)
            for entity in message.entities:
                entity_end = entity.offset + entity.length
                if not (entity.offset < end and start < entity_end):
                    continue
                covers = entity.offset <= start and end <= entity_end
                assert covers and entity.type in around, (shown, entity.type, message.text)
    assert found, ("not shown on Telegram", shown, [m.text for m in messages])


def site_shows_literally(markdown: str, shown: str) -> None:
    """The page holds `shown` as one run of text (HTML-escaped), no tag inside it."""
    page = str(render_markdown_html(markdown))
    assert html.escape(shown, quote=False) in page, (shown, page)


def discord_display(markdown: str) -> str:
    """What Discord shows of text without formatting: `\\` before a symbol is dropped."""
    return re.sub(r"\\([^0-9A-Za-z\s])", r"\1", markdown)


def discord_unescaped_specials(markdown: str) -> list[str]:
    """Formatting characters Discord would act on (unescaped; `_` only at a word's edge)."""
    bare = re.sub(r"\\[^0-9A-Za-z\s]", "", markdown)
    specials = re.findall(r"[*`~|\[\]<>\\]", bare)
    specials += re.findall(r"(?<![A-Za-z0-9])_|_(?![A-Za-z0-9])", bare)
    return specials


def discord_shows_literally(markdown: str, shown: str) -> None:
    """The Discord messages keep the escaped text unchanged, and it displays as `shown`."""
    escaped = escape_markdown_text(shown)
    joined = "\n".join(discord_messages(markdown))
    assert escaped in joined, (escaped, joined)
    assert discord_display(escaped) == shown
    assert discord_unescaped_specials(escaped) == []


def shown_literally_everywhere(
    markdown: str, shown: str, *, around: frozenset[str] = frozenset()
) -> None:
    telegram_shows_literally(markdown, shown, around=around)
    site_shows_literally(markdown, shown)
    discord_shows_literally(markdown, shown)


def _pull(number: int, title: str, *, author: str | None = None) -> PullRequest:
    return PullRequest(
        number=number,
        title=title,
        url=f"{BASE}/pull/{number}",
        author=author,
        merged_at=WHEN,
        additions=3,
        deletions=1,
    )


def _guarded_section(activity: RepoActivity) -> str:
    return clean_model_markdown(structured_section(activity), allowed_links(activity))


# ---------------------------------------------------------------- the function itself


@pytest.mark.parametrize(
    "text",
    [
        "Fix fp8_gemm for MoE (Blackwell) in v0.10.1-rc2!",
        "feat(scheduler): add chunked prefill",
        "[Kernel] fix a+b = c - d, see #123",
        "Don't crash at 100% load",
    ],
)
def test_ordinary_titles_stay_as_they_are(text: str) -> None:
    # Only `[` and `]` of a title tag change; parentheses, dots, dashes and intraword `_` do not.
    assert escape_markdown_text(text) == text.replace("[", "\\[").replace("]", "\\]")


def test_what_can_start_or_end_formatting_is_escaped() -> None:
    assert escape_markdown_text("**a** `b` _c_ ~d~ ||e|| $f$") == (
        "\\*\\*a\\*\\* \\`b\\` \\_c\\_ \\~d\\~ \\|\\|e\\|\\| \\$f\\$"
    )
    assert escape_markdown_text("[x](https://a.example) <b> a\\b") == (
        "\\[x\\](https://a.example) \\<b\\> a\\\\b"
    )
    assert escape_markdown_text("&#64;alice &amp; R&D") == "\\&#64;alice \\&amp; R&D"
    assert escape_markdown_text("fp8_gemm __init__") == "fp8_gemm \\_\\_init\\_\\_"


@pytest.mark.parametrize("text", [HOSTILE, *LINE_STARTS])
def test_escaped_text_alone_on_a_line_shows_literally_in_every_renderer(text: str) -> None:
    shown = text.strip()  # leading indentation never shows in a paragraph; it is dropped
    markdown = f"前文\n\n{escape_markdown_text(text)}\n\n后文"
    rendered = telegram_messages(markdown)
    assert [m.text for m in rendered] == [f"前文\n\n{shown}\n\n后文"]
    assert rendered[0].entities == ()
    page = str(render_markdown_html(markdown))
    assert f"<p>{html.escape(shown, quote=False)}</p>" in page, page
    assert discord_display(to_discord(escape_markdown_text(text))) == shown
    assert discord_unescaped_specials(escape_markdown_text(text)) == []


@pytest.mark.parametrize("text", [HOSTILE, *LINE_STARTS])
def test_escaped_text_inside_a_list_item_shows_literally_in_every_renderer(text: str) -> None:
    shown = text.strip()
    markdown = f"- [#1]({BASE}/pull/1) {escape_markdown_text(text)}（+3/-1）\n- 下一项 **粗体**"
    shown_literally_everywhere(markdown, shown)


# ---------------------------------------------------------------- the structured section


def test_a_hostile_pr_title_reads_literally_on_telegram_discord_and_the_site() -> None:
    activity = RepoActivity(
        repo=REPO,
        merged_pulls=[_pull(1, HOSTILE, author="dependabot[bot]")],
        opened_pulls=[_pull(2, "# heading _x_")],
        opened_issues=[
            Issue(number=3, title="`unclosed **bold", url=f"{BASE}/issues/3", created_at=WHEN)
        ],
        commits=[
            Commit(sha=SHA, title="~~gone~~ ||x||", url=f"{BASE}/commit/{SHA}", committed_at=WHEN)
        ],
    )
    markdown = _guarded_section(activity)
    for shown in (
        HOSTILE,
        "dependabot[bot]",
        "# heading _x_",
        "`unclosed **bold",
        "~~gone~~ ||x||",
    ):
        shown_literally_everywhere(markdown, shown)
    # Our own formatting still works around the titles: the headings stay bold, the links links.
    assert {"已合并 PR（1 个）", "当日统计"} <= set(entity_texts(markdown, "bold"))
    (message,) = telegram_messages(markdown)
    links = {e.url for e in message.entities if e.type == "text_link"}
    assert links == {f"{BASE}/pull/1", f"{BASE}/pull/2", f"{BASE}/issues/3", f"{BASE}/commit/{SHA}"}


def test_the_briefs_example_title_no_longer_bleeds_into_the_following_text() -> None:
    title = f"**bold `code [x]({BASE}/pull/2) _a_"
    activity = RepoActivity(repo=REPO, merged_pulls=[_pull(1, title)])
    markdown = _guarded_section(activity)
    # pull/2 is not in the activity: the guard removes the URL, the brackets stay as text.
    shown = "**bold `code [x]() _a_"
    shown_literally_everywhere(markdown, shown)
    (message,) = telegram_messages(markdown)
    assert f"#1 {shown}（+3/-1）" in message.text
    page = str(render_markdown_html(markdown))
    assert "<em>" not in page and "<code>" not in page
    assert f'href="{BASE}/pull/2"' not in page


def test_our_links_stay_links_and_a_grounded_url_in_a_title_stays_plain_text() -> None:
    title = f"see [x]({BASE}/pull/1) and ![i]({BASE}/pull/1)"
    activity = RepoActivity(repo=REPO, merged_pulls=[_pull(1, title)])
    markdown = _guarded_section(activity)
    assert f"[#1]({BASE}/pull/1) " in markdown
    shown_literally_everywhere(markdown, title)
    (message,) = telegram_messages(markdown)
    assert [e.url for e in message.entities if e.type == "text_link"] == [f"{BASE}/pull/1"]
    assert entity_texts(markdown, "text_link") == ["#1"]
    page = str(render_markdown_html(markdown))
    assert page.count("<a ") == 1 and "<img" not in page


def test_mentions_in_titles_and_logins_stay_inert_after_escaping() -> None:
    title = "ping @everyone @here <@123> <@&456> &#64;alice @_bob"
    activity = RepoActivity(repo=REPO, merged_pulls=[_pull(1, title, author="@channel")])
    markdown = _guarded_section(activity)
    for inert in (f"@{ZWSP}everyone", f"@{ZWSP}here", f"\\<@{ZWSP}123\\>", f"\\<@{ZWSP}&456\\>"):
        assert inert in markdown
    assert f"@{ZWSP}\\_bob" in markdown and f"@{ZWSP}channel" in markdown
    assert "\\&#64;alice" in markdown  # shown as the characters &#64;, never as a mention
    (message,) = telegram_messages(markdown)
    for ping in ("@everyone", "@here", "<@123>", "<@&456>", "@alice", "@_bob", "@channel"):
        assert ping not in message.text
    assert f"<@{ZWSP}123>" in message.text and "&#64;alice" in message.text
    for discord in discord_messages(markdown):
        assert "@everyone" not in discord and "<@123>" not in discord


def test_character_references_for_at_cannot_smuggle_a_mention_past_the_guard() -> None:
    cleaned = neutralise_mentions("hi &#64;alice &#x40;bob &commat;carol &#0064;everyone")
    assert cleaned == f"hi @{ZWSP}alice @{ZWSP}bob @{ZWSP}carol @{ZWSP}everyone"
    assert neutralise_mentions(cleaned) == cleaned
    # Telegram's converter would have shown each of them as a plain `@`.
    (message,) = telegram_messages(clean_model_markdown("&#64;alice", set()))
    assert message.text == f"@{ZWSP}alice"


def test_the_guard_keeps_escapes_as_text_and_is_idempotent() -> None:
    allowed = {f"{BASE}/pull/1"}
    escaped = "a \\<b\\>x\\</b\\> \\`c\\` \\# d \\[e\\]\\[f\\] \\<https://evil.example\\>"
    assert (
        clean_model_markdown(escaped, allowed)
        == "a \\<b\\>x\\</b\\> \\`c\\` \\# d \\[e\\]\\[f\\] \\<\\>"
    )
    link = f"[o/\\_r v1\\_ \\[x\\]]({BASE}/pull/1)"
    assert clean_model_markdown(link, allowed) == link
    once = clean_model_markdown(f"- {escape_markdown_text(HOSTILE)} @everyone", allowed)
    assert clean_model_markdown(once, allowed) == once
    # Unescaped markup written by a model is still handled as before.
    assert clean_model_markdown("<b>x</b> [y](https://evil.example)", allowed) == "x y"


def test_summary_lists_escape_repository_names_and_tags() -> None:
    repo = "_o_/__r__"
    release = Release(
        tag_name="v1_*",
        name="",
        published_at=WHEN,
        url=f"https://github.com/{repo}/releases/tag/v1",
    )
    activity = RepoActivity(repo=repo, releases=[release])
    quiet = RepoActivity(repo="_q_/_z_")
    summary, conclusion = structured_summary([], [activity, quiet])
    markdown = clean_model_markdown(f"{summary}\n\n{conclusion}", allowed_links(activity))
    shown_literally_everywhere(markdown, f"{repo} v1_*", around=LINK)
    shown_literally_everywhere(markdown, "_q_/_z_")


# ---------------------------------------------------------------- the other producers


def test_the_watch_section_shows_titles_and_tags_literally() -> None:
    day = DayActivity(
        day=DAY,
        timezone="Asia/Shanghai",
        window_utc=(WHEN, WHEN),
        repos=[
            RepoActivity(
                repo=REPO,
                releases=[
                    Release(
                        tag_name="v1_*x*",
                        name=f"bold {HOSTILE}",
                        published_at=WHEN,
                        url=f"{BASE}/releases/tag/v1",
                    )
                ],
                merged_pulls=[_pull(1, f"bold {HOSTILE}")],
            )
        ],
    )
    markdown = watch_section(match_watches(day, ["bold"]), ["bold"])
    shown_literally_everywhere(markdown, f"bold {HOSTILE}")
    shown_literally_everywhere(markdown, f"{REPO} release v1_*x*", around=LINK)


async def test_the_weekly_roll_up_shows_titles_labels_and_release_names_literally() -> None:
    activity = RepoActivity(
        repo=REPO,
        releases=[
            Release(tag_name="v2", name=HOSTILE, published_at=WHEN, url=f"{BASE}/releases/tag/v2")
        ],
        merged_pulls=[
            PullRequest(
                number=1,
                title=HOSTILE,
                url=f"{BASE}/pull/1",
                labels=["*hot*"],
                merged_at=WHEN,
                additions=10,
                deletions=2,
            )
        ],
        opened_issues=[Issue(number=2, title=HOSTILE, url=f"{BASE}/issues/2", created_at=WHEN)],
    )
    day = DayActivity(day=DAY, timezone="Asia/Shanghai", window_utc=(WHEN, WHEN), repos=[activity])
    digest = Digest(day=DAY, sections=[], summary="", conclusion="")
    weekly = await weekly_digest([(digest, day)], [REPO], None, None)
    markdown = render_weekly_markdown(weekly)
    shown_literally_everywhere(markdown, HOSTILE)
    shown_literally_everywhere(markdown, "*hot*")
    assert markdown.count(escape_markdown_text(HOSTILE)) == 3


def test_a_release_alert_shows_the_repository_and_release_name_literally() -> None:
    release = Release(
        tag_name="v1`x", name=HOSTILE, published_at=WHEN, url=f"{BASE}/releases/tag/v1"
    )
    note = ReleaseNote("- 要点 **保留** 模型的格式", "model", "m")
    markdown = alert_markdown("_o_/r", release, note)
    shown_literally_everywhere(markdown, HOSTILE)
    # The repository is bold as a whole and literally; the model's own bold is kept.
    assert entity_texts(markdown, "bold") == ["_o_/r", "保留"]
    assert entity_texts(markdown, "code") == ["v1'x"]


def test_repository_headings_are_escaped_in_the_digest_and_in_command_replies() -> None:
    repo = "_o_/__r__"
    digest = Digest(
        day=DAY,
        sections=[Section(repo=repo, markdown="内容", written_by="structured")],
        summary="摘要",
        conclusion="总结",
    )
    for markdown in (render_markdown(digest), render_sections(digest, [repo])):
        telegram_shows_literally(markdown, repo, around=HEADING)
        site_shows_literally(markdown, repo)
        assert f"### {escape_markdown_text(repo)}" in "\n".join(discord_messages(markdown))


def test_echoed_input_shows_literally_and_cannot_mention() -> None:
    shown = echo("**x** _y_ `z` @everyone")
    (message,) = telegram_messages(f"无法识别“{shown}”。")
    assert message.text == f"无法识别“**x** _y_ `z` @{ZWSP}everyone”。"
    assert message.entities == ()


# ---------------------------------------------------------------- Discord's converter


def test_discord_never_cuts_a_message_between_a_backslash_and_what_it_escapes() -> None:
    line = "\\*" * 40 + " " + "\\_" * 40
    pieces = discord_messages(line, limit=41)
    assert len(pieces) > 2
    for piece in pieces:
        trailing = len(piece) - len(piece.rstrip("\\"))
        assert trailing % 2 == 0, piece  # no backslash left without its character
        assert discord_unescaped_specials(piece) == []
    assert "".join(pieces).replace(" ", "") == line.replace(" ", "")


def test_discord_tables_keep_escaped_pipes_inside_their_cells() -> None:
    table = f"| 标题 | 作者 |\n|---|---|\n| {escape_markdown_text('a | b')} | x |"
    assert to_discord(table) == "**标题 · 作者**\n- a \\| b · x"


def test_discord_leaves_an_escaped_image_or_break_as_text() -> None:
    text = "\\![i](https://a.example/i.png) \\<br\\> \\<br>"
    assert to_discord(text) == text
