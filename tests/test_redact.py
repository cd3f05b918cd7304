"""One redactor for logs, delivery errors and model errors: the same secrets go, SHAs stay."""

from __future__ import annotations

import io
import logging
from collections.abc import Callable, Iterator

import pytest

import bot.logs
from bot.delivery import one_line
from bot.logs import NOISY_LOGGERS, setup_logging
from collectors.redact import Redactor
from summarizer.llm import redact as llm_redact

SHA = "6b3e607b852f1543dc21323155a2ad71473c8642"
CONFIGURED = "plain-configured-value-0042"
SECRETS = {
    "telegram bot token": "7012345678:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw1",
    "short-tailed bot token": "123456:ABCDEFGHIJKLMNOPQRSTUVWX",
    "webhook token": "https://discord.com/api/webhooks/1200/wEbHoOkToKeN-123_xyz_abcdefgh",
    "OpenRouter key": "sk-or-v1-0123456789abcdef0123456789abcdef",
    "GitHub classic token": "ghp_R2D2c3poR2D2c3poR2D2c3poR2D2c3po1234",
    "GitHub fine-grained token": "github_pat_11AAAAAAA0123456789_abcdefghijklmnopqrstuvwxyz",
    "Bearer credential": "Bearer opaque.credential-9876",
    "provider user id": "user_2wqU29q2Bhpw2S2iw7Pwn8RHaXB",
}
# The secret part of each text above (the webhook id and the word Bearer may stay).
SECRET_PART = {
    "webhook token": "wEbHoOkToKeN-123_xyz_abcdefgh",
    "Bearer credential": "opaque.credential-9876",
}


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    noisy = {name: logging.getLogger(name).level for name in NOISY_LOGGERS}
    active = bot.logs._active
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
    for name, noisy_level in noisy.items():
        logging.getLogger(name).setLevel(noisy_level)
    bot.logs._active = active


def logged(text: str) -> str:
    """What the project's log handler writes for `text`, with CONFIGURED as a setting."""
    out = io.StringIO()
    setup_logging(verbose=False, json=False, secrets=(CONFIGURED,), stream=out)
    logging.getLogger("aiinfra_digest.test").warning("%s", text)
    return out.getvalue()


def delivery_error(text: str) -> str:
    """`one_line` of a delivery error, with CONFIGURED as a setting."""
    bot.logs.set_secrets((CONFIGURED,))
    return one_line(RuntimeError(text))


def model_error(text: str) -> str:
    """The model client's redacted reason, with CONFIGURED as its key."""
    return llm_redact(text, CONFIGURED)


PATHS: dict[str, Callable[[str], str]] = {
    "log line": logged,
    "delivery error": delivery_error,
    "model error": model_error,
}


@pytest.mark.parametrize("path", PATHS, ids=list(PATHS))
@pytest.mark.parametrize("kind", SECRETS, ids=list(SECRETS))
def test_every_path_masks_the_same_secret_shapes(path: str, kind: str) -> None:
    text = f"POST failed with {SECRETS[kind]} at commit {SHA}"
    cleaned = PATHS[path](text)
    assert SECRET_PART.get(kind, SECRETS[kind]) not in cleaned
    assert "***" in cleaned


@pytest.mark.parametrize("path", PATHS, ids=list(PATHS))
def test_every_path_masks_the_configured_secret(path: str) -> None:
    cleaned = PATHS[path](f"GET /x with {CONFIGURED} refused")
    assert CONFIGURED not in cleaned and "***" in cleaned


@pytest.mark.parametrize("path", PATHS, ids=list(PATHS))
def test_a_40_hex_commit_sha_stays_readable_on_every_path(path: str) -> None:
    text = f"section of vllm-project/vllm failed at {SHA} (compare {SHA[:7]}...{SHA})"
    assert PATHS[path](text).count(SHA) == 2


def test_long_ids_that_are_not_secrets_stay_readable() -> None:
    text = (
        f"https://github.com/vllm-project/vllm/commit/{SHA} "
        "model deepseek/deepseek-chat-v3-0324:free, run 2026-02-04T09:00:00+08:00, "
        "task-force sk-short user_id=5, bearer of news"
    )
    assert Redactor()(text) == text


def test_a_model_error_is_one_line_cut_after_redaction() -> None:
    reason = llm_redact(f"first\nsecond {SECRETS['OpenRouter key']} " + "x" * 400)
    assert "\n" not in reason
    assert len(reason) <= 160 and reason.endswith("…")
    assert "0123456789abcdef" not in reason
