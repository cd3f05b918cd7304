"""A chat's digest covers exactly the repositories it follows, whatever the day collected."""

from __future__ import annotations

from datetime import date
from pathlib import Path

from bot.pipeline import Pipeline, make_composer, make_github
from bot.settings import Settings
from bot.store import Store
from collectors.sample import load_sample
from summarizer.structured import ERROR_TEXT


async def _pipeline(tmp_path: Path) -> tuple[Pipeline, Store, date]:
    """A pipeline over a store holding the sample day (its GitHub client is never used)."""
    sample = load_sample()
    settings = Settings(
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'd.sqlite3'}",
        github_api_url="http://127.0.0.1:9",  # never reached: the day is archived
    )
    store = await Store.open(settings.database_url)
    composer = make_composer(settings, None, store)
    digest = await composer.compose(sample, [r.repo for r in sample.repos])
    await store.save_digest(digest, sample)
    return (
        Pipeline(settings, store, github=make_github(settings, store), composer=composer),
        store,
        sample.day,
    )


async def test_a_followed_repository_missing_from_the_day_gets_a_no_data_section(
    tmp_path: Path,
) -> None:
    pipeline, store, day = await _pipeline(tmp_path)
    try:
        digest = await pipeline.digest_for(day, ["triton-lang/triton"])
        assert [s.repo for s in digest.sections] == ["triton-lang/triton"]
        assert ERROR_TEXT in digest.sections[0].markdown

        mixed = await pipeline.digest_for(day, ["vllm-project/vllm", "triton-lang/triton"])
        assert [s.repo for s in mixed.sections] == ["vllm-project/vllm", "triton-lang/triton"]
        assert mixed.sections[0].written_by == "structured"
    finally:
        await store.close()


async def test_following_every_collected_repository_reuses_the_days_digest(
    tmp_path: Path,
) -> None:
    pipeline, store, day = await _pipeline(tmp_path)
    try:
        full = await pipeline.digest_for(day, None)
        same = await pipeline.digest_for(day, [s.repo for s in full.sections])
        assert same is full
    finally:
        await store.close()
