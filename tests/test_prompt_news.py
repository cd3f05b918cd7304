"""What the model sees: the day's news first, no boilerplate, linked issues with their titles."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

from fake_github import FakeGitHub, commit, issue, pull

from collectors.activity import (
    Commit,
    DayActivity,
    FileChange,
    PullRequest,
    Release,
    RepoActivity,
    Totals,
)
from collectors.collect import collect_day
from collectors.files import Worth, strip_licence, worth
from collectors.github import GitHubClient
from summarizer.boilerplate import clean_description
from summarizer.prompts import repo_messages, summary_messages
from summarizer.structured import structured_section

REPO = "acme/kernels"
WHEN = datetime(2026, 2, 4, 8, 0, tzinfo=UTC)
LICENCE = """\
# SPDX-FileCopyrightText: Copyright (c) 2026 ACME CORPORATION. All rights reserved.
# SPDX-License-Identifier: BSD-3-Clause
#
# Redistribution and use in source and binary forms, with or without
# modification, are permitted provided that the following conditions are met:
# THIS SOFTWARE IS PROVIDED BY THE COPYRIGHT HOLDERS "AS IS" AND ANY EXPRESS OR IMPLIED
# WARRANTIES ARE DISCLAIMED."""
TEMPLATE_BODY = """\
<!-- .github/pull_request_template.md -->
## Description
Adds a persistent FP8 GEMM kernel for Hopper.

## Pull Request Checklist
Thank you for contributing! Before we review your pull
request, please make sure the following items are complete.

- [x] I have run the hooks manually with `pre-commit run --all-files`
- [ ] Tests have been added or updated as needed.

<!-- This is an auto-generated comment: release notes by coderabbit.ai -->
## Summary by CodeRabbit
* New persistent kernel.
<!-- end of auto-generated comment: release notes by coderabbit.ai -->

Signed-off-by: Jane Doe <jane@example.com>"""


def _added(text: str) -> str:
    lines = text.splitlines()
    return f"@@ -0,0 +1,{len(lines)} @@\n" + "\n".join("+" + line for line in lines)


def _commit(files: list[FileChange], message: str = "Sync v2.0 (#7)") -> Commit:
    return Commit(
        sha="a" * 40,
        title=message.split("\n")[0],
        url=f"https://github.com/{REPO}/commit/{'a' * 40}",
        committed_at=WHEN,
        pull_number=7,
        additions=sum(f.additions for f in files),
        deletions=0,
        files_changed=len(files),
        files=files,
        message=message,
    )


def _day(*commits: Commit, **extra: object) -> RepoActivity:
    data = {"repo": REPO, "commits": list(commits), "totals": Totals(commits=len(commits))}
    return RepoActivity.model_validate({**data, **extra})


def _user(activity: RepoActivity, budget: int = 6000) -> str:
    messages, _ = repo_messages(activity, budget)
    return messages[-1]["content"]


def _big_new_file(lines: int) -> FileChange:
    body = [f"    value_{i} = compute({i})" for i in range(lines)]
    source = "\n".join([LICENCE, '"""Persistent FP8 GEMM kernels for Hopper."""', "", *body])
    source += "\n\ndef late_launcher(stream):\n    return stream\n\nclass TileScheduler:\n    pass"
    return FileChange(
        filename="kernels/fp8_gemm.py",
        status="added",
        additions=lines + 10,
        patch=_added(source),
    )


def test_changelog_line_survives_a_budget_that_cuts_a_large_new_file() -> None:
    changelog = FileChange(
        filename="CHANGELOG.md",
        additions=2,
        patch="@@ -1,2 +1,4 @@\n # Changelog\n+## 2.0\n+- GB300 is now supported with CUDA 13.1\n",
    )
    huge = FileChange(
        filename="kernels/big.py",
        status="modified",
        additions=4000,
        patch="@@ -1 +1,4000 @@\n" + "\n".join(f"+x_{i} = {i}" for i in range(4000)),
    )
    messages, report = repo_messages(_day(_commit([huge, changelog])), 1500)
    assert "GB300 is now supported with CUDA 13.1" in messages[-1]["content"]
    assert report.patches_cut == 1


def test_licence_header_never_reaches_the_prompt() -> None:
    source = LICENCE + "\n\ndef scale(x):\n    return 2 * x\n"
    new = FileChange(filename="ops/scale.py", status="added", additions=9, patch=_added(source))
    text = _user(_day(_commit([new], "Add scale op (#7)")))
    assert "def scale(x)" in text
    for word in ("SPDX", "Redistribution", "WARRANTIES", "Copyright"):
        assert word not in text


def test_pr_template_is_stripped_but_its_description_kept() -> None:
    merged = PullRequest(
        number=7,
        title="Persistent FP8 GEMM",
        url=f"https://github.com/{REPO}/pull/7",
        merged_at=WHEN,
        labels=["hopper"],
        body=TEMPLATE_BODY,
    )
    text = _user(_day(merged_pulls=[merged]))
    assert "Adds a persistent FP8 GEMM kernel for Hopper." in text
    assert "labels: hopper" in text
    for boilerplate in ("- [ ]", "- [x]", "Thank you", "<!--", "CodeRabbit", "jane@", "Signed-off"):
        assert boilerplate not in text


def test_commit_trailers_and_email_addresses_do_not_reach_the_prompt() -> None:
    message = "Fix race (#7)\n\nSigned-off-by: Jane Doe <jane@example.com>"
    text = _user(_day(_commit([], message)))
    assert "jane@example.com" not in text and "Signed-off-by" not in text


def test_a_new_5000_line_file_shows_its_docstring_and_signatures() -> None:
    text = _user(_day(_commit([_big_new_file(5000)], "Add FP8 GEMM (#7)")))
    assert "Persistent FP8 GEMM kernels for Hopper." in text
    assert "def late_launcher(stream):" in text and "class TileScheduler:" in text
    assert "value_1 = compute(1)" not in text
    assert "SPDX" not in text


def test_release_carries_its_date_and_prerelease_flag() -> None:
    release = Release(
        tag_name="v2.0rc1",
        name="v2.0rc1",
        published_at=WHEN,
        url=f"https://github.com/{REPO}/releases/tag/v2.0rc1",
        prerelease=True,
    )
    text = _user(_day(releases=[release]))
    assert "release: v2.0rc1\n" in text
    assert "published: 2026-02-04" in text and "prerelease: yes" in text


def test_no_model_section_of_a_sync_commit_lists_its_changelog_points() -> None:
    changelog = FileChange(
        filename="CHANGELOG.md",
        additions=3,
        patch="@@ -1 +1,4 @@\n # Changelog\n+## 2.0\n+- CuTe DSL now supports CUDA 13.1\n"
        "+  - GB300 is now supported\n+    + see the example kernel\n",
    )
    section = structured_section(_day(_commit([changelog], "v2.0 sync")))
    assert "  - CuTe DSL now supports CUDA 13.1" in section
    assert "  - GB300 is now supported" in section
    assert "see the example kernel" not in section  # a nested detail, not a point


def test_summary_prompt_gets_the_day_statistics_and_releases() -> None:
    release = Release(
        tag_name="v2.0",
        published_at=WHEN,
        url=f"https://github.com/{REPO}/releases/tag/v2.0",
    )
    activity = RepoActivity(
        repo=REPO, releases=[release], totals=Totals(commits=12, additions=300, deletions=40)
    )
    text = summary_messages([(REPO, "**新功能** …")], [activity])[-1]["content"]
    assert "12 个 commit（+300/-40 行）" in text
    assert "release v2.0（2026-02-04）" in text


def test_archived_activity_without_linked_issues_still_loads() -> None:
    day = DayActivity(day=date(2026, 2, 4), timezone="UTC", window_utc=(WHEN, WHEN), repos=[])
    raw = day.to_json().replace('"repos": []', f'"repos": [{{"repo": "{REPO}"}}]')
    loaded = DayActivity.from_json(raw)
    assert loaded.repos[0].linked_issues == []


async def test_fixes_12_yields_the_issue_title_and_its_link() -> None:
    async with FakeGitHub() as server:
        server.add_repo(
            REPO,
            commits=[
                commit(when="2026-02-04T09:00:00Z", message="Fix OOM (#7)\n\nFixes #12"),
                commit(
                    when="2026-02-04T10:00:00Z",
                    message=f"fix: https://github.com/{REPO}/issues/13",
                ),
            ],
            issues=[
                pull(
                    7,
                    created_at="2026-02-01T00:00:00Z",
                    merged_at="2026-02-04T09:00:00Z",
                    body="Fixes #12, see also #99",
                ),
                # Last touched before the day: not in the day's listing, so it is asked for.
                issue(12, created_at="2026-01-20T00:00:00Z", title="OOM in autotuner on H100"),
                issue(13, created_at="2026-01-21T00:00:00Z", title="NaN in decode on B200"),
            ],
        )
        async with GitHubClient(server.url, None, None) as github:
            day = await collect_day(github, [REPO], date(2026, 2, 4), "UTC")
        assert server.count(path=f"/repos/{REPO}/issues/12") == 1
        # #99 does not exist: one GET, a 404, left out without failing the repository.
        assert server.count(path=f"/repos/{REPO}/issues/99", status=404) == 1
    activity = day.repos[0]
    assert activity.error is None
    url = f"https://github.com/{REPO}/issues/12"
    assert [(i.number, i.title, i.url) for i in activity.linked_issues] == [
        (12, "OOM in autotuner on H100", url),
        (13, "NaN in decode on B200", f"https://github.com/{REPO}/issues/13"),
    ]
    text = _user(activity)
    assert "linked issues: #12 OOM in autotuner on H100" in text
    assert "linked issues: #13 NaN in decode on B200" in text  # given as a full URL
    assert f"[#12]({url})" in text


async def test_linked_issue_gets_are_capped_at_ten_per_repository_day() -> None:
    numbers = " ".join(f"#{n}" for n in range(100, 130))
    async with FakeGitHub() as server:
        server.add_repo(
            REPO,
            commits=[commit(when="2026-02-04T09:00:00Z", message=f"Cleanup\n\nRefs {numbers}")],
        )
        async with GitHubClient(server.url, None, None) as github:
            await collect_day(github, [REPO], date(2026, 2, 4), "UTC")
        assert server.count(path=f"/repos/{REPO}/issues/") == 10


async def test_recorded_cutlass_prompt_carries_the_cuda_13_1_and_gb300_news(
    recorded_day: Path,
) -> None:
    async with FakeGitHub() as server:
        repos = server.load_recorded(recorded_day)
        async with GitHubClient(server.url, None, None) as github:
            day = await collect_day(github, repos, date(2026, 2, 4), "UTC")
    cutlass = day.repo("NVIDIA/cutlass")
    assert cutlass is not None
    text = _user(cutlass)
    assert "CuTe DSL now supports CUDA toolkit 13.1!" in text
    assert "GB300 is now supported in CuTe DSL with CTK 13.1" in text
    section = structured_section(cutlass)
    assert "CUDA toolkit 13.1" in section and "GB300" in section


def test_changed_files_rank_news_then_docs_then_source_then_tests_then_names_only() -> None:
    names = [
        "uv.lock",
        "tests/test_gemm.py",
        "third_party/cutlass/gemm.h",
        "csrc/gemm.cu",
        "docs/gemm.rst",
        "README.md",
        "CHANGELOG.md",
        "assets/diagram.png",
    ]
    ranked = sorted(names, key=worth)  # stable: README.md and docs/ share a rank
    assert ranked[:4] == ["CHANGELOG.md", "docs/gemm.rst", "README.md", "csrc/gemm.cu"]
    assert ranked[4] == "tests/test_gemm.py"
    assert {worth(n) for n in ranked[5:]} == {Worth.NAME_ONLY}


def test_ordinary_comments_survive_licence_stripping() -> None:
    patch = (
        "@@ -1,2 +1,3 @@\n+# Fall back to the default tactic on OOM.\n+x = 1\n"
        " # SPDX-License-Identifier: MIT"
    )
    stripped = strip_licence(patch)
    assert "Fall back to the default tactic on OOM." in stripped
    assert "SPDX" not in stripped


def test_a_checked_item_that_is_real_content_and_a_lone_bot_summary_are_kept() -> None:
    body = "## Changes\n- [x] Support FP8 in the MoE path\n- [ ] Tests have been added"
    assert "Support FP8 in the MoE path" in clean_description(body)
    assert "Tests have been added" not in clean_description(body)
    only_bot = (
        "<!-- This is an auto-generated comment: release notes by coderabbit.ai -->\n"
        "## Summary by CodeRabbit\n* Faster decode.\n"
        "<!-- end of auto-generated comment: release notes by coderabbit.ai -->"
    )
    assert "Faster decode." in clean_description(only_bot)
