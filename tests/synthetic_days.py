"""Synthetic archived days for the site, weekly and chart tests and their benchmarks.

    activity = day_activity(date(2026, 2, 4))            # deterministic, varies with the day
    digest = await archive_day(store, activity)          # structured digest, saved in the store

Names, numbers and SHAs are invented; URLs point at github.com like real activity.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Sequence
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from collectors.activity import (
    Commit,
    DayActivity,
    FileChange,
    Issue,
    PullRequest,
    Release,
    RepoActivity,
    Totals,
)
from collectors.window import day_window
from summarizer.compose import Composer
from summarizer.digest import Digest

TZ = "Asia/Shanghai"
REPOS = (
    "deepseek-ai/DeepGEMM",
    "deepseek-ai/FlashMLA",
    "NVIDIA/cutlass",
    "flashinfer-ai/flashinfer",
    "Dao-AILab/flash-attention",
    "sgl-project/sglang",
    "vllm-project/vllm",
    "NVIDIA/cutile-python",
)
_TOPICS = (
    "FP8 grouped GEMM for MoE decode",
    "paged KV cache for MLA",
    "SM100 TMA multicast",
    "speculative decoding scheduler",
    "CUDA graph capture for prefill",
    "Blackwell warp-specialised kernel",
)


def at(day: date, hour: int) -> datetime:
    """An instant inside `day`'s Shanghai window (hour 0-23 local)."""
    window = day_window(day, TZ)
    return window.start + timedelta(hours=hour % 24)


def sha(*parts: object) -> str:
    """A stable fake 40-character SHA."""
    return hashlib.sha1("|".join(map(str, parts)).encode()).hexdigest()


def release(repo: str, day: date, tag: str, *, name: str = "", body: str = "") -> Release:
    """A release published on `day`."""
    return Release(
        tag_name=tag,
        name=name or tag,
        published_at=at(day, 10),
        url=f"https://github.com/{repo}/releases/tag/{tag}",
        author="release-bot",
        body=body or f"- {tag} 版本说明：修复若干问题",
    )


def pull(
    repo: str,
    number: int,
    day: date,
    title: str,
    *,
    additions: int | None = 120,
    deletions: int | None = 30,
    labels: Sequence[str] = (),
    merged: bool = True,
) -> PullRequest:
    """A pull request merged (or opened) on `day`."""
    return PullRequest(
        number=number,
        title=title,
        url=f"https://github.com/{repo}/pull/{number}",
        author=f"dev{number % 7}",
        labels=list(labels),
        created_at=at(day, 1),
        merged_at=at(day, 9) if merged else None,
        additions=additions,
        deletions=deletions,
    )


def issue(
    repo: str, number: int, day: date, title: str, *, comments: int = 0, labels: Sequence[str] = ()
) -> Issue:
    """An issue opened on `day`."""
    return Issue(
        number=number,
        title=title,
        url=f"https://github.com/{repo}/issues/{number}",
        created_at=at(day, 12),
        author=f"user{number % 5}",
        labels=list(labels),
        comments=comments,
    )


def commit_for(repo: str, pr: PullRequest, day: date) -> Commit:
    """The merge commit of `pr`."""
    digest = sha(repo, pr.number, day)
    return Commit(
        sha=digest,
        title=f"{pr.title} (#{pr.number})",
        url=f"https://github.com/{repo}/commit/{digest}",
        committed_at=at(day, 9),
        author=pr.author,
        pull_number=pr.number,
        additions=pr.additions,
        deletions=pr.deletions,
        files_changed=3,
        files=[
            FileChange(
                filename="csrc/kernels/gemm.cu",
                additions=pr.additions or 0,
                deletions=pr.deletions or 0,
            )
        ],
    )


def repo_day(
    repo: str,
    day: date,
    *,
    merged: int = 0,
    issues: int = 0,
    opened: int = 0,
    releases: Sequence[str] = (),
    seed: int = 0,
    **extra: Any,
) -> RepoActivity:
    """A repository-day with the given numbers of merged PRs, new issues, new PRs and releases."""
    rng = random.Random(f"{repo}{day}{seed}")
    base = 1000 + (day.toordinal() % 500) * 10
    merged_pulls = [
        pull(
            repo,
            base + i,
            day,
            f"[Kernel] {rng.choice(_TOPICS)} #{i}",
            additions=rng.randint(5, 3000),
            deletions=rng.randint(0, 800),
            labels=rng.choice(((), ("performance",), ("bug",), ("enhancement",))),
        )
        for i in range(merged)
    ]
    commits = [commit_for(repo, pr, day) for pr in merged_pulls]
    return RepoActivity(
        repo=repo,
        releases=[release(repo, day, tag) for tag in releases],
        merged_pulls=merged_pulls,
        opened_pulls=[
            pull(repo, base + 100 + i, day, f"WIP: {rng.choice(_TOPICS)}", merged=False)
            for i in range(opened)
        ],
        opened_issues=[
            issue(
                repo,
                base + 200 + i,
                day,
                f"[Bug] {rng.choice(_TOPICS)} 在 H100 上出错",
                comments=rng.randint(0, 12),
                labels=("bug",),
            )
            for i in range(issues)
        ],
        commits=commits,
        totals=Totals(
            commits=len(commits),
            additions=sum(c.additions or 0 for c in commits),
            deletions=sum(c.deletions or 0 for c in commits),
            files_changed=3 * len(commits),
        ),
        **extra,
    )


def day_activity(
    day: date,
    repos: Sequence[str] = REPOS,
    *,
    overrides: Sequence[RepoActivity] = (),
    busy: int = 3,
) -> DayActivity:
    """A day across `repos`: numbers vary with the day and repository; `overrides` replace some."""
    window = day_window(day, TZ)
    replaced = {a.repo: a for a in overrides}
    activities = []
    for index, repo in enumerate(repos):
        if repo in replaced:
            activities.append(replaced[repo])
            continue
        rng = random.Random(f"{repo}{day}")
        quiet = (day.toordinal() + index) % 5 == 0
        activities.append(
            RepoActivity(repo=repo)
            if quiet
            else repo_day(
                repo,
                day,
                merged=rng.randint(0, busy * 2),
                issues=rng.randint(0, busy),
                opened=rng.randint(0, busy),
            )
        )
    return DayActivity(
        day=day, timezone=TZ, window_utc=(window.start, window.end), repos=activities
    )


async def compose(activity: DayActivity, repos: Sequence[str] | None = None) -> Digest:
    """The structured digest of `activity` (no model)."""
    names = list(repos) if repos is not None else [a.repo for a in activity.repos]
    return await Composer(None, None).compose(activity, names)


async def archive_day(store: Any, activity: DayActivity) -> Digest:
    """Compose (structured) and archive `activity` in `store`; returns the digest."""
    digest = await compose(activity)
    await store.save_digest(digest, activity)
    return digest


def days_ending(end: date, count: int) -> list[date]:
    """`count` consecutive days ending with `end`, oldest first."""
    return [end - timedelta(days=count - 1 - i) for i in range(count)]


def noon_utc(day: date) -> datetime:
    """Noon UTC of `day` (a fixed clock for tests)."""
    return datetime.combine(day, time(12), tzinfo=UTC)
