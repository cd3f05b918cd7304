"""The model client over real HTTP against the fake OpenAI-compatible server."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from fake_llm import (
    API_KEY,
    FAKE_USER_ID,
    FakeLLM,
    answer,
    english,
    no_choices,
    rate_limited,
    reject_json_schema,
    server_error,
    slow,
)

from summarizer.llm import ATTRIBUTION_HEADERS, AllModelsFailed, LLMClient, redact

CHINESE = "今天合并了 [#1](https://github.com/acme/engine/pull/1)，修复了 FP8 kernel 的精度问题。"
MESSAGES = [{"role": "user", "content": "请总结。"}]
SCHEMA = {"type": "object", "properties": {"summary": {"type": "string"}}}


@pytest.fixture
async def fake() -> AsyncIterator[FakeLLM]:
    async with FakeLLM() as server:
        yield server


def _client(fake: FakeLLM, models: list[str], **kwargs: object) -> LLMClient:
    options: dict[str, object] = {"requests_per_minute": 6000.0, **kwargs}
    return LLMClient(API_KEY, fake.base_url, models, **options)  # type: ignore[arg-type]


async def test_rate_limited_first_model_hands_the_request_to_the_second(fake: FakeLLM) -> None:
    fake.always("m1", rate_limited())
    fake.always("m2", answer(CHINESE, prompt_tokens=120, completion_tokens=30))
    llm = _client(fake, ["m1", "m2"])
    try:
        completion = await llm.complete(MESSAGES)
    finally:
        await llm.aclose()
    assert completion.model == "m2"
    assert completion.text == CHINESE
    assert completion.usage.prompt_tokens == 120
    assert completion.usage.completion_tokens == 30
    assert completion.usage.calls == 2
    assert [r.model for r in fake.requests] == ["m1", "m2"]
    assert llm.stats.rate_limited == 1


async def test_requests_carry_the_key_and_openrouter_attribution_headers(fake: FakeLLM) -> None:
    fake.always("m1", answer(CHINESE))
    llm = _client(fake, ["m1"])
    try:
        await llm.complete(MESSAGES)
    finally:
        await llm.aclose()
    headers = fake.requests[0].headers
    assert headers["authorization"] == f"Bearer {API_KEY}"
    for name, value in ATTRIBUTION_HEADERS.items():
        assert headers[name.lower()] == value


async def test_a_short_retry_after_is_waited_out_on_the_same_model(fake: FakeLLM) -> None:
    fake.script("m1", rate_limited(retry_after=0.05))
    fake.always("m1", answer(CHINESE))
    llm = _client(fake, ["m1", "m2"])
    try:
        completion = await llm.complete(MESSAGES)
    finally:
        await llm.aclose()
    assert completion.model == "m1"
    assert fake.calls("m1") == 2
    assert fake.calls("m2") == 0


async def test_a_long_retry_after_moves_on_and_parks_the_model(fake: FakeLLM) -> None:
    fake.script("m1", rate_limited(retry_after=3600))
    fake.always("m1", answer(CHINESE))
    fake.always("m2", answer(CHINESE))
    llm = _client(fake, ["m1", "m2"])
    try:
        first = await llm.complete(MESSAGES)
        second = await llm.complete(MESSAGES)
    finally:
        await llm.aclose()
    assert (first.model, second.model) == ("m2", "m2")
    assert fake.calls("m1") == 1  # parked: not asked again within the hour


async def test_server_errors_and_answers_without_choices_fall_through(fake: FakeLLM) -> None:
    fake.always("m1", server_error(502))
    fake.always("m2", no_choices())
    fake.always("m3", answer(CHINESE))
    llm = _client(fake, ["m1", "m2", "m3"])
    try:
        completion = await llm.complete(MESSAGES)
    finally:
        await llm.aclose()
    assert completion.model == "m3"
    assert llm.stats.server_errors == 1


async def test_a_model_slower_than_the_timeout_is_skipped(fake: FakeLLM) -> None:
    fake.always("m1", slow(5.0, answer(CHINESE)))
    fake.always("m2", answer(CHINESE))
    llm = _client(fake, ["m1", "m2"], timeout=0.3)
    try:
        completion = await llm.complete(MESSAGES)
    finally:
        await llm.aclose()
    assert completion.model == "m2"
    assert llm.stats.timeouts == 1


async def test_empty_english_or_invalid_answers_count_as_unusable(fake: FakeLLM) -> None:
    fake.always("m1", answer("   "))
    fake.always("m2", english())
    fake.always("m3", answer("今天没有值得一提的内容，全部都是杂项修改。"))
    fake.always("m4", answer(CHINESE))
    llm = _client(fake, ["m1", "m2", "m3", "m4"])
    try:
        completion = await llm.complete(
            MESSAGES, validate=lambda text: None if "](" in text else "no link"
        )
    finally:
        await llm.aclose()
    assert completion.model == "m4"
    assert llm.stats.unusable == 3


async def test_when_every_model_fails_the_reasons_are_redacted(fake: FakeLLM) -> None:
    fake.always("m1", rate_limited())
    fake.always("m2", server_error(500))
    llm = _client(fake, ["m1", "m2"])
    try:
        with pytest.raises(AllModelsFailed) as failure:
            await llm.complete(MESSAGES)
    finally:
        await llm.aclose()
    reasons = failure.value.reasons
    assert len(reasons) == 2
    assert reasons[0].startswith("m1: HTTP 429")
    assert reasons[1].startswith("m2: HTTP 500")
    text = str(failure.value)
    assert FAKE_USER_ID not in text
    assert "user_id" not in text
    assert API_KEY not in text
    assert "rate-limited upstream" not in text


def test_redact_removes_account_ids_and_keys() -> None:
    line = f'{{"user_id":"{FAKE_USER_ID}"}} Bearer {API_KEY} sk-or-v1-abcdef0123456789'
    cleaned = redact(line, API_KEY)
    assert FAKE_USER_ID not in cleaned
    assert API_KEY not in cleaned
    assert "abcdef0123456789" not in cleaned


async def test_json_schema_rejected_with_400_falls_back_to_json_object_and_is_remembered(
    fake: FakeLLM,
) -> None:
    fake.always("m1", reject_json_schema())
    llm = _client(fake, ["m1"])
    try:
        await llm.complete(MESSAGES, json_schema=SCHEMA)
        await llm.complete(MESSAGES, json_schema=SCHEMA)
    finally:
        await llm.aclose()
    assert [r.response_format for r in fake.requests] == [
        "json_schema",
        "json_object",
        "json_object",
    ]
    assert fake.requests[0].body["response_format"]["json_schema"]["schema"] == SCHEMA


async def test_concurrent_requests_stay_within_the_concurrency_bound() -> None:
    async with FakeLLM(latency=0.1) as fake:
        fake.always("m1", answer(CHINESE))
        llm = _client(fake, ["m1"], concurrency=2)
        try:
            await asyncio.gather(*(llm.complete(MESSAGES) for _ in range(6)))
        finally:
            await llm.aclose()
        assert fake.calls() == 6
        assert fake.max_in_flight == 2
