"""References to issues and PRs in text GitHub users wrote."""

from __future__ import annotations

from collectors.refs import closing_refs, issue_refs, issue_url

REPO = "flashinfer-ai/flashinfer"


def test_short_refs_in_order_once_each() -> None:
    assert issue_refs("Fixes #2357, see #2276 and #2357 again", REPO) == [2357, 2276]


def test_full_url_of_the_same_repository_counts() -> None:
    text = "fix: https://github.com/flashinfer-ai/flashinfer/issues/2604 and pull/7"
    assert issue_refs(text, REPO) == [2604]


def test_other_repository_and_code_do_not_count() -> None:
    text = "see vllm-project/vllm#5 and https://github.com/x/y/issues/9 `#77`\n```\n#88\n```"
    assert issue_refs(text, REPO) == []


def test_qualified_same_repo_and_html_entities() -> None:
    assert issue_refs("FlashInfer-AI/flashinfer#12 &#64; a#3", REPO) == [12]


def test_closing_keywords() -> None:
    text = "Closes #3. fixes: #4, resolved https://github.com/a/b/issues/5"
    assert closing_refs(text) == [3, 4, 5]
    assert closing_refs("see #6") == []


def test_issue_url() -> None:
    assert issue_url(REPO, 1) == "https://github.com/flashinfer-ai/flashinfer/issues/1"
