"""Small builders shared by the command-service and Telegram tests and the benches.

`ArchivePipeline` is the `DigestSource` the service needs, over the real Store: archived days
come from the store; a missing day is "generated" by `make_digest` (no GitHub, no model) and
archived, and every generation is counted so tests can see it happened once.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta

from bot.pipeline import compose_week
from bot.settings import DEFAULT_REPOS
from bot.store import Store
from collectors.activity import DayActivity, RepoActivity
from collectors.cache import KeyValueCache
from summarizer.digest import Digest, Section
from summarizer.llm import LLMClient

ARCHIVED_DAY = date(2026, 2, 4)
# 2026-02-05 10:00 in Asia/Shanghai: 2026-02-04 is yesterday, and archived in the tests.
NOW = datetime(2026, 2, 5, 2, 0, tzinfo=UTC)


def section_text(repo: str, day: date, paragraphs: int = 2) -> str:
    """A section like the summarizer writes: bullets with links, bold and code."""
    name = repo.split("/", 1)[1]
    blocks = []
    for number in range(1, paragraphs + 1):
        blocks.append(
            f"- **合并** [#{1000 + number}](https://github.com/{repo}/pull/{1000 + number})："
            f"为 `{name}` 修复了第 {number} 个问题（{day.isoformat()}），🚀 性能提升 12%。\n"
            f"- 新增 issue [#{2000 + number}](https://github.com/{repo}/issues/{2000 + number})"
            "：讨论 FP8 内核在 H100 上的 <精度> 与 *吞吐*。"
        )
    return "\n\n".join(blocks)


def make_digest(day: date, repos: Sequence[str] = DEFAULT_REPOS, *, paragraphs: int = 2) -> Digest:
    """A digest of `day` with one written section per repository."""
    return Digest(
        day=day,
        sections=[
            Section(
                repo=repo, markdown=section_text(repo, day, paragraphs), written_by="structured"
            )
            for repo in repos
        ],
        summary=f"{day.isoformat()} 共有 {len(repos)} 个仓库有动态。",
        conclusion="整体来看，推理内核持续优化。",
    )


def make_activity(day: date, repos: Sequence[str] = DEFAULT_REPOS) -> DayActivity:
    """An (empty) activity record to archive beside a digest."""
    start = datetime(day.year, day.month, day.day, tzinfo=UTC) - timedelta(hours=8)
    return DayActivity(
        day=day,
        timezone="Asia/Shanghai",
        window_utc=(start, start + timedelta(days=1)),
        repos=[RepoActivity(repo=repo) for repo in repos],
    )


async def archive(store: Store, day: date, *, paragraphs: int = 2) -> Digest:
    """Save a digest of `day` in the store, as the scheduler would have."""
    digest = make_digest(day, paragraphs=paragraphs)
    await store.save_digest(digest, make_activity(day))
    return digest


class ArchivePipeline:
    """The service's DigestSource over the real Store, generating missing days without network."""

    def __init__(self, store: Store, *, paragraphs: int = 2, fail: bool = False) -> None:
        self.store = store
        self.paragraphs = paragraphs
        self.fail = fail
        self.generated: list[date] = []
        self.calls: list[tuple[date, tuple[str, ...] | None]] = []
        # Tests hold generation here to have several requests arrive while it runs.
        self.release = asyncio.Event()
        self.release.set()
        self._memory: dict[date, Digest] = {}
        self._inflight: dict[
            tuple[date, tuple[str, ...] | None, tuple[str, ...]], asyncio.Task[Digest]
        ] = {}

    async def has_digest(self, day: date) -> bool:
        """True when `day` is archived."""
        return day in self._memory or await self.store.load_digest(day) is not None

    async def latest_day(self) -> date | None:
        """The newest archived day."""
        return await self.store.latest_day()

    async def ensure_day(
        self,
        day: date,
        repos: Sequence[str] | None = None,
        *,
        now: datetime | None = None,
        wait: bool = True,
        added: Sequence[str] = (),
    ) -> Digest:
        """`digest_for`, shared by concurrent askers as the real pipeline does (no settle)."""
        key = (
            day,
            tuple(r.lower() for r in repos) if repos is not None else None,
            tuple(r.lower() for r in added),
        )
        task = self._inflight.get(key)
        if task is None:
            task = asyncio.ensure_future(self.digest_for(day, repos, added=added))
            self._inflight[key] = task
            task.add_done_callback(lambda _t: self._inflight.pop(key, None))
        return await asyncio.shield(task)

    async def digest_for(
        self, day: date, repos: Sequence[str] | None, *, added: Sequence[str] = ()
    ) -> Digest:
        """The day's digest (archived or generated now), cut to `repos` (plus `added`) if given."""
        if added:
            repos = [*(repos if repos is not None else DEFAULT_REPOS), *added]
        self.calls.append((day, tuple(repos) if repos is not None else None))
        digest = self._memory.get(day) or await self.store.load_digest(day)
        if digest is None:
            self.generated.append(day)
            await self.release.wait()
            if self.fail:
                raise RuntimeError("GitHub is down (scripted)")
            digest = make_digest(day, paragraphs=self.paragraphs)
            await self.store.save_digest(digest, make_activity(day))
        self._memory[day] = digest
        if repos is None:
            return digest
        wanted = {r.lower() for r in repos}
        return digest.model_copy(
            update={"sections": [s for s in digest.sections if s.repo.lower() in wanted]}
        )

    async def week_text(
        self,
        end: date,
        repos: Sequence[str],
        *,
        llm: LLMClient | None,
        cache: KeyValueCache | None,
    ) -> str | None:
        """The week's roll-up from the archive, as the real pipeline makes it."""
        return await compose_week(self.store, end, repos, llm, cache)
