"""The guard on model output: grounding, mentions, HTML, headings, JSON, language."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from collectors.activity import Commit, Issue, PullRequest, Release, RepoActivity
from summarizer.guard import (
    ZWSP,
    allowed_links,
    clean_model_claims,
    clean_model_markdown,
    looks_chinese,
    neutralise_mentions,
    parse_json_object,
)

REPO = "acme/engine"
BASE = f"https://github.com/{REPO}"
WHEN = datetime(2026, 2, 4, 3, 0, tzinfo=UTC)
SHA = "6b3e607b852f1543dc21323155a2ad71473c8642"


def _activity() -> RepoActivity:
    return RepoActivity(
        repo=REPO,
        releases=[
            Release(tag_name="v1.0", published_at=WHEN, url=f"{BASE}/releases/tag/v1.0"),
        ],
        merged_pulls=[PullRequest(number=10, title="Fix", url=f"{BASE}/pull/10", merged_at=WHEN)],
        opened_issues=[Issue(number=11, title="Bug", url=f"{BASE}/issues/11", created_at=WHEN)],
        commits=[Commit(sha=SHA, title="Fix", url=f"{BASE}/commit/{SHA}", committed_at=WHEN)],
    )


ALLOWED = allowed_links(_activity())


def test_allowed_links_are_the_activity_urls_and_the_repository() -> None:
    assert {
        BASE,
        f"{BASE}/releases/tag/v1.0",
        f"{BASE}/pull/10",
        f"{BASE}/issues/11",
        f"{BASE}/commit/{SHA}",
    } == ALLOWED


def test_a_link_to_a_pr_not_in_the_activity_loses_the_link_but_keeps_the_text() -> None:
    text = f"修复了 [#10]({BASE}/pull/10) 和 [#99]({BASE}/pull/99)。"
    assert clean_model_markdown(text, ALLOWED) == f"修复了 [#10]({BASE}/pull/10) 和 #99。"


def test_bare_autolinked_and_reference_urls_outside_the_activity_are_removed() -> None:
    text = (
        "见 https://evil.example/phish 与 <https://evil.example/x>，"
        f"以及 {BASE}/pull/10。\n[ref]: https://evil.example/y\n"
        "[点这里](javascript:alert(1)) [tg](tg://user?id=1)"
    )
    cleaned = clean_model_markdown(text, ALLOWED)
    assert "evil.example" not in cleaned
    assert "javascript:" not in cleaned
    assert "tg://" not in cleaned
    assert f"{BASE}/pull/10" in cleaned
    assert "点这里" in cleaned


def test_a_bullet_citing_a_fabricated_pr_is_removed_whole_while_grounded_bullets_stay() -> None:
    text = (
        "**性能**\n"
        f"- 修复了 [#10]({BASE}/pull/10) 的崩溃。\n"
        f"- 另有性能优化：[#99999999]({BASE}/pull/99999999)\n"
        "  - 其中包括 FP8 kernel\n"
        f"- 发布了 [v1.0]({BASE}/releases/tag/v1.0)。"
    )
    cleaned, removed = clean_model_claims(text, ALLOWED)
    assert cleaned == (
        f"**性能**\n- 修复了 [#10]({BASE}/pull/10) 的崩溃。\n"
        f"- 发布了 [v1.0]({BASE}/releases/tag/v1.0)。"
    )
    assert removed == 1


def test_a_sentence_citing_an_unknown_number_or_sha_is_removed_not_its_paragraph() -> None:
    text = f"今天修复了 #10。另外 #4242 也合入了。提交 abc1234f 改了调度器。{SHA[:7]} 修复了 bug。"
    cleaned, removed = clean_model_claims(text, ALLOWED)
    assert cleaned == f"今天修复了 [#10]({BASE}/pull/10)。{SHA[:7]} 修复了 bug。"
    assert removed == 2


def test_a_link_to_another_repository_s_unknown_pr_is_an_ungrounded_claim() -> None:
    text = (
        "- 上游合入了 [#5](https://github.com/other/thing/pull/5)\n- 见 [#11]("
        + BASE
        + "/issues/11)"
    )
    cleaned, removed = clean_model_claims(text, ALLOWED)
    assert cleaned == f"- 见 [#11]({BASE}/issues/11)"
    assert removed == 1


def test_a_number_the_data_mentions_is_linked_as_an_issue_and_allowed() -> None:
    activity = _activity().model_copy(
        update={
            "merged_pulls": [
                PullRequest(
                    number=10,
                    title="Fix",
                    url=f"{BASE}/pull/10",
                    merged_at=WHEN,
                    body="Fixes #2357",
                )
            ]
        }
    )
    allowed = allowed_links(activity)
    assert f"{BASE}/issues/2357" in allowed
    cleaned, removed = clean_model_claims("- [#10](" + BASE + "/pull/10) 修复了 #2357。", allowed)
    assert cleaned == f"- [#10]({BASE}/pull/10) 修复了 [#2357]({BASE}/issues/2357)。"
    assert removed == 0


def test_references_in_code_blocks_are_left_alone() -> None:
    text = "```\ngit revert #99999\n```\n修复了 #10。"
    cleaned, removed = clean_model_claims(text, ALLOWED)
    assert cleaned == f"```\ngit revert #99999\n```\n修复了 [#10]({BASE}/pull/10)。"
    assert removed == 0


def test_short_sha_and_issue_form_of_a_pr_are_grounded_to_the_collected_url() -> None:
    text = f"[6b3e607]({BASE}/commit/6b3e607) 与 [#10]({BASE}/issues/10/)"
    cleaned = clean_model_markdown(text, ALLOWED)
    assert cleaned == f"[6b3e607]({BASE}/commit/{SHA}) 与 [#10]({BASE}/pull/10)"


def test_images_never_survive_only_their_alt_text() -> None:
    cleaned = clean_model_markdown(f"![图]({BASE}/pull/10)", ALLOWED)
    assert cleaned == "图"


@pytest.mark.parametrize(
    "mention",
    ["@everyone", "@here", "<@123456789>", "<@!123456789>", "<@&987654321>", "@someone", "＠here"],
)
def test_mentions_cannot_ping(mention: str) -> None:
    cleaned = neutralise_mentions(f"请注意 {mention} 以及中文@everyone")
    assert "@everyone" not in cleaned
    assert "@here" not in cleaned
    assert "<@1" not in cleaned and "<@!" not in cleaned and "<@&" not in cleaned
    assert "@someone" not in cleaned
    assert f"@{ZWSP}" in cleaned


def test_email_addresses_are_left_alone_and_neutralising_is_idempotent() -> None:
    once = neutralise_mentions("联系 dev@example.com 或 @alice")
    assert "dev@example.com" in once
    assert neutralise_mentions(once) == once


def test_raw_html_is_stripped_but_code_keeps_angle_brackets() -> None:
    text = "<script>alert(1)</script><b>加粗</b><br>下一行 `std::vector<int>` <!-- 注释 -->"
    cleaned = clean_model_markdown(text, ALLOWED)
    assert cleaned == "加粗\n下一行 `std::vector<int>`"


def test_headings_become_bold_and_a_whole_answer_fence_is_unwrapped() -> None:
    text = "```markdown\n# 更新\n## 新功能\n- 内容\n```"
    assert clean_model_markdown(text, ALLOWED) == "**更新**\n**新功能**\n- 内容"


def test_an_unclosed_code_fence_is_closed() -> None:
    cleaned = clean_model_markdown("说明：\n```python\nprint(1)", ALLOWED)
    assert cleaned.endswith("```")
    assert cleaned.count("```") == 2


def test_json_is_found_inside_fences_and_prose() -> None:
    fenced = '```json\n{"summary": "摘要", "conclusion": "总结"}\n```'
    prose = '好的，下面是结果：{"summary": "含 {括号}", "conclusion": "总结"} 希望有帮助。'
    assert parse_json_object(fenced) == {"summary": "摘要", "conclusion": "总结"}
    assert parse_json_object(prose)["summary"] == "含 {括号}"
    with pytest.raises(ValueError):
        parse_json_object("没有 JSON")


def test_chinese_with_english_terms_looks_chinese_but_english_or_japanese_does_not() -> None:
    assert looks_chinese(f"为 `Qwen3-Omni` 添加 FP8 KV cache 支持（[#10]({BASE}/pull/10)）。")
    assert looks_chinese("昨日无更新。")
    assert not looks_chinese("Adds FP8 KV cache support for Qwen3-Omni and fixes a race.")
    assert not looks_chinese("これは日本語の文章です。カーネルを修正しました。")
    assert not looks_chinese("")


def test_a_chinese_section_that_quotes_english_pr_titles_still_looks_chinese() -> None:
    # Shaped like the vllm section of the reference digest: English titles, Chinese notes.
    section = (
        f"- **Support RotaryEmbedding CustomOp for gpt-oss** ([#10]({BASE}/pull/10)): "
        "为 gpt-oss 模型添加了 RotaryEmbedding CustomOp 支持。\n"
        f"- **Fix audio-in-video support for Qwen2.5-Omni and Qwen3-Omni** ([#10]({BASE}/pull/10)):"
        " 修复了多模态模型中的音频处理问题。"
    )
    assert looks_chinese(section)
