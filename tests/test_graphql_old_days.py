"""Old days on the REST path: a listing cut by its page cap flags the day, never archived."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

from fake_github import FakeGitHub, commit, issue, pull

from bot.pipeline import Pipeline, make_composer
from bot.settings import Settings
from bot.store import Store
from collectors.collect import Limits, collect_repo
from collectors.github import GitHubClient
from collectors.window import day_window

DAY = date(2025, 9, 10)
REPO = "acme/busy"
WINDOW = day_window(DAY, "Asia/Shanghai")


def _busy_repo(github: FakeGitHub, later_updates: int) -> None:
    """A day with one merged PR and one new issue, then `later_updates` items touched since."""
    start = WINDOW.start
    touched_later = [
        issue(
            5000 + i,
            created_at=start - timedelta(days=400),
            updated_at=start + timedelta(days=30, minutes=i),
        )
        for i in range(later_updates)
    ]
    github.add_repo(
        REPO,
        commits=[commit(when=start + timedelta(hours=2), message="Fix (#10)")],
        issues=[
            pull(10, created_at=start - timedelta(days=3), merged_at=start + timedelta(hours=2)),
            issue(11, created_at=start + timedelta(hours=5)),
            *touched_later,
        ],
    )


async def test_an_issues_listing_stopped_at_its_page_cap_flags_the_day_incomplete() -> None:
    async with FakeGitHub() as github:
        _busy_repo(github, later_updates=250)
        async with GitHubClient(github.url, None, None) as client:
            capped = await collect_repo(client, REPO, WINDOW, limits=Limits(issue_pages=2))
            whole = await collect_repo(client, REPO, WINDOW, limits=Limits(issue_pages=5))
    assert not capped.complete
    assert any("stopped after 2 pages" in note for note in capped.truncated)
    assert whole.complete
    assert [p.number for p in whole.merged_pulls] == [10]
    assert [i.number for i in whole.opened_issues] == [11]


async def test_the_pipeline_never_archives_an_incomplete_day(tmp_path: Path) -> None:
    async with FakeGitHub() as github:
        _busy_repo(github, later_updates=3001)  # past the default cap of 30 pages of 100
        settings = Settings(
            database_url=f"sqlite+aiosqlite:///{tmp_path / 'd.sqlite3'}",
            github_api_url=github.url,
            digest_repos=[REPO],
        )
        store = await Store.open(settings.database_url)
        try:
            async with GitHubClient(github.url, None, store) as client:
                pipeline = Pipeline(
                    settings, store, github=client, composer=make_composer(settings, None, store)
                )
                digest, activity = await pipeline.day(DAY)
            assert [s.repo for s in digest.sections] == [REPO]
            assert activity.repos[0].complete is False
            assert await store.load_digest(DAY) is None
            assert await store.load_activity(DAY) is None
            run = await store.last_run(DAY)
            assert run is not None
            assert any("incomplete, not archived" in error for error in run.errors)
        finally:
            await store.close()
