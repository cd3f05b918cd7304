"""Bot noise: dependabot and friends are counted in the section, never shown to the model."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, date, datetime

import pytest
from fake_llm import API_KEY, FakeLLM

from bot.settings import Settings
from collectors.activity import Commit, DayActivity, PullRequest, Release, RepoActivity, Totals
from summarizer.compose import Composer
from summarizer.llm import LLMClient
from summarizer.noise import without_bots

DAY = date(2026, 2, 4)
WHEN = datetime(2026, 2, 4, 3, 0, tzinfo=UTC)
REPO = "acme/engine"
BUMP = "Bump torch from 2.5.0 to 2.6.0"


def _pull(number: int, title: str, author: str) -> PullRequest:
    url = f"https://github.com/{REPO}/pull/{number}"
    return PullRequest(number=number, title=title, url=url, author=author, merged_at=WHEN)


def _commit(sha: str, title: str, author: str, pull: int | None = None) -> Commit:
    url = f"https://github.com/{REPO}/commit/{sha}"
    return Commit(sha=sha, title=title, url=url, committed_at=WHEN, author=author, pull_number=pull)


def _activity() -> RepoActivity:
    return RepoActivity(
        repo=REPO,
        releases=[
            Release(
                tag_name="v1.0.0",
                name="v1.0.0",
                published_at=WHEN,
                url=f"https://github.com/{REPO}/releases/tag/v1.0.0",
                author="github-actions[bot]",
            )
        ],
        merged_pulls=[
            _pull(10, "Add paged attention for FP8", "alice"),
            _pull(11, BUMP, "dependabot[bot]"),
        ],
        opened_pulls=[_pull(12, "[pre-commit.ci] pre-commit autoupdate", "pre-commit-ci[bot]")],
        commits=[
            _commit("a" * 40, "Add paged attention for FP8 (#10)", "alice", 10),
            _commit("b" * 40, f"{BUMP} (#11)", "dependabot[bot]", 11),
            _commit("c" * 40, "Update nightly index", "github-actions[bot]"),
            _commit("d" * 40, "Fix typo in docs", "bob"),
        ],
        totals=Totals(commits=4, additions=40, deletions=4, files_changed=4),
    )


def _day() -> DayActivity:
    return DayActivity(
        day=DAY,
        timezone="Asia/Shanghai",
        window_utc=(datetime(2026, 2, 3, 16, tzinfo=UTC), datetime(2026, 2, 4, 16, tzinfo=UTC)),
        repos=[_activity()],
    )


@pytest.fixture
async def fake() -> AsyncIterator[FakeLLM]:
    async with FakeLLM() as server:
        yield server


def test_bot_prs_and_commits_are_counted_once_and_releases_kept() -> None:
    filtered = without_bots(_activity(), Settings().digest_exclude_authors)
    assert [p.number for p in filtered.merged_pulls] == [10]
    assert filtered.opened_pulls == []
    assert [c.sha[0] for c in filtered.commits] == ["a", "d"]
    # The bump PR with its commit, the pre-commit PR, the nightly-index commit.
    assert filtered.bot_items == 3
    assert [r.tag_name for r in filtered.releases] == ["v1.0.0"]
    assert without_bots(filtered, Settings().digest_exclude_authors) == filtered


async def test_a_dependabot_pr_never_reaches_the_prompt_and_the_section_counts_it(
    fake: FakeLLM,
) -> None:
    llm = LLMClient(API_KEY, fake.base_url, ["m1"], requests_per_minute=6000.0)
    try:
        composer = Composer(llm, None, exclude_authors=Settings().digest_exclude_authors)
        digest = await composer.compose(_day(), [REPO])
    finally:
        await llm.aclose()
    prompts = "\n".join(request.text for request in fake.requests)
    assert fake.requests, "the model was asked"
    assert "Add paged attention for FP8" in prompts
    assert "Bump torch" not in prompts
    assert "pre-commit autoupdate" not in prompts
    assert "Update nightly index" not in prompts
    assert "v1.0.0" in prompts  # releases are never excluded
    (section,) = digest.sections
    assert section.written_by == "model"
    assert "另有 3 个机器人提交" in section.markdown


async def test_without_a_model_the_structured_lists_leave_bots_out_and_count_them() -> None:
    digest = await Composer(None, None).compose(_day(), [REPO])
    (section,) = digest.sections
    assert "Bump torch" not in section.markdown
    assert "Update nightly index" not in section.markdown
    assert "Fix typo in docs" in section.markdown
    assert "另有 3 个机器人提交" in section.markdown


async def test_an_empty_exclusion_list_keeps_every_author() -> None:
    digest = await Composer(None, None, exclude_authors=()).compose(_day(), [REPO])
    (section,) = digest.sections
    assert "Bump torch" in section.markdown
    assert "机器人" not in section.markdown
