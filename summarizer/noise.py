"""Bot noise: PRs and commits by automation accounts are counted, never summarised.

Dependency bumps and formatter runs (dependabot, pre-commit-ci, github-actions, renovate) crowd
out what people did. `without_bots` is applied once, where activity enters the Composer, so the
model's input, the structured lists and the summary all see the same filtered day; releases are
never dropped (a bot may publish a real release).
"""

from __future__ import annotations

from collections.abc import Collection

from collectors.activity import RepoActivity

DEFAULT_EXCLUDED_AUTHORS: tuple[str, ...] = (
    "dependabot[bot]",
    "pre-commit-ci[bot]",
    "github-actions[bot]",
    "renovate[bot]",
)


def bot_note(count: int) -> str:
    """The sentence a section ends with when bot items were left out ("" for none)."""
    return f"另有 {count} 个机器人提交（如 dependabot），未列入。" if count else ""


def without_bots(activity: RepoActivity, excluded: Collection[str]) -> RepoActivity:
    """`activity` without the PRs and commits of `excluded` logins, counted in `bot_items`.

    A bot's merged PR and the commit that landed it count once. Applying it twice changes
    nothing (the second pass finds no bot items left).
    """
    names = {name.strip().lower() for name in excluded if name.strip()}
    if not names or activity.error is not None:
        return activity

    def is_bot(author: str | None) -> bool:
        return author is not None and author.lower() in names

    merged = [p for p in activity.merged_pulls if not is_bot(p.author)]
    opened = [p for p in activity.opened_pulls if not is_bot(p.author)]
    dropped_merged = {p.number for p in activity.merged_pulls if is_bot(p.author)}
    commits = []
    loose_bot_commits = 0
    for commit in activity.commits:
        by_bot_pull = commit.pull_number is not None and commit.pull_number in dropped_merged
        if by_bot_pull:
            continue  # counted with its PR
        if is_bot(commit.author):
            loose_bot_commits += 1
            continue
        commits.append(commit)
    count = len(dropped_merged) + (len(activity.opened_pulls) - len(opened)) + loose_bot_commits
    if count == 0:
        return activity
    return activity.model_copy(
        update={
            "merged_pulls": merged,
            "opened_pulls": opened,
            "commits": commits,
            "bot_items": activity.bot_items + count,
        }
    )
