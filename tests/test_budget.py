"""The prompt budget: what is cut first, what is never cut, and what the prompt is told."""

from __future__ import annotations

from datetime import UTC, datetime

from collectors.activity import Commit, FileChange, Issue, PullRequest, Release, RepoActivity
from summarizer.budget import Item, estimate_tokens, fit, truncate_to_tokens
from summarizer.prompts import repo_messages

WHEN = datetime(2026, 2, 4, 3, 0, tzinfo=UTC)
REPO = "acme/engine"


def _pull(number: int, body: str = "") -> PullRequest:
    return PullRequest(
        number=number,
        title=f"Improve kernel {number}",
        url=f"https://github.com/{REPO}/pull/{number}",
        merged_at=WHEN,
        body=body,
    )


def _commit(sha_digit: str, pull: int | None, patch: str, message: str = "") -> Commit:
    sha = sha_digit * 40
    return Commit(
        sha=sha,
        title=f"Commit {sha_digit}",
        url=f"https://github.com/{REPO}/commit/{sha}",
        committed_at=WHEN,
        pull_number=pull,
        files=[FileChange(filename=f"src/mod_{sha_digit}.py", patch=patch)],
        message=f"Commit {sha_digit}\n\n{message}" if message else f"Commit {sha_digit}",
    )


def test_cjk_text_counts_about_one_token_per_character_and_latin_about_four_characters() -> None:
    assert estimate_tokens("你好世界") == 4
    assert estimate_tokens("a" * 400) == 100
    assert estimate_tokens("") == 0


def test_items_within_budget_are_left_untouched() -> None:
    items = [Item("merged_pull", "merged PR: #1 x", body="short body", patch="")]
    report = fit(items, 1000)
    assert report.items == tuple(items)
    assert not report.cut_anything
    assert report.describe() == ""


def test_patches_are_cut_before_any_body() -> None:
    items = [
        Item("merged_pull", "merged PR: #1 fix", body="B" * 2000),
        Item("commit", "commit: aaaaaaa fix", patch="P" * 8000),
    ]
    # Enough room for the bodies, not for the patch.
    report = fit(items, 1000)
    pull, commit = report.items
    assert pull.body == "B" * 2000
    assert len(commit.patch) < 8000
    assert report.patches_cut == 1 and report.bodies_cut == 0
    assert report.tokens <= 1000


def test_release_notes_are_the_last_bodies_cut() -> None:
    items = [
        Item("release", "release: v1.0", body="R" * 4000),
        Item("issue", "issue: #2 crash", body="I" * 4000),
        Item("commit", "commit: bbbbbbb tidy", body="C" * 4000),
    ]
    report = fit(items, 1300)
    release, issue, commit = report.items
    assert commit.body == ""
    assert len(issue.body) < 4000
    assert release.body == "R" * 4000


def test_commits_covered_by_pull_requests_are_dropped_only_after_bodies() -> None:
    items = [
        Item("merged_pull", "merged PR: #1 " + "t" * 400, body="x" * 400),
        *(Item("commit", f"commit: {i} covered " + "h" * 400, droppable=True) for i in range(5)),
    ]
    report = fit(items, 400)
    assert report.bodies_cut == 1
    assert report.items_dropped >= 1
    assert report.items[0].header.startswith("merged PR: #1")
    assert "已由 PR 覆盖的 commit" in report.describe()


def test_titles_and_links_are_never_cut_even_when_over_budget() -> None:
    header = "merged PR: #7 A long title\nlink: [#7](https://github.com/acme/engine/pull/7)"
    report = fit([Item("merged_pull", header, body="b" * 1000)], 5)
    assert report.items[0].header == header
    assert report.over_budget


def test_truncation_keeps_the_head_and_marks_the_cut() -> None:
    text = "head " + "x" * 4000
    cut = truncate_to_tokens(text, 50)
    assert cut.startswith("head ")
    assert cut.endswith("[truncated]")
    assert estimate_tokens(cut) <= 50


def test_prompt_states_that_patches_were_cut_and_keeps_pull_bodies() -> None:
    activity = RepoActivity(
        repo=REPO,
        merged_pulls=[_pull(1, body="Explains the new scheduler in detail.")],
        commits=[_commit("a", 1, patch="+ added line\n" * 3000)],
    )
    messages, report = repo_messages(activity, 2500)
    prompt = messages[1]["content"]
    assert report.patches_cut == 1 and report.bodies_cut == 0
    assert "diff 片段" in prompt and "已被截短或省略" in prompt
    assert "Explains the new scheduler in detail." in prompt
    assert "[#1](https://github.com/acme/engine/pull/1)" in prompt


def test_prompt_says_nothing_was_cut_when_everything_fits() -> None:
    activity = RepoActivity(
        repo=REPO,
        releases=[
            Release(
                tag_name="v2.0",
                published_at=WHEN,
                url=f"https://github.com/{REPO}/releases/tag/v2.0",
                body="notes",
            )
        ],
        opened_issues=[
            Issue(
                number=3,
                title="Crash",
                url=f"https://github.com/{REPO}/issues/3",
                created_at=WHEN,
                body="trace",
            )
        ],
    )
    messages, report = repo_messages(activity, 6000)
    prompt = messages[1]["content"]
    assert not report.cut_anything
    assert "已被截短或省略" not in prompt
    # Releases come before issues in the prompt.
    assert prompt.index("v2.0") < prompt.index("#3 Crash")
