"""Logging: one line per event, text or JSON, and no secret ever reaches the output."""

from __future__ import annotations

import io
import json
import logging
import re
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

import bot.logs
from bot.logs import (
    NOISY_LOGGERS,
    Redactor,
    log_format_is_json,
    redact,
    secrets_from_settings,
    setup_logging,
)
from bot.settings import load_settings

TELEGRAM_TOKEN = "7012345678:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw1"
assert len(TELEGRAM_TOKEN.split(":")[1]) == 35  # the shape BotFather hands out
OPENROUTER_USER = "user_2wqU29q2Bhpw2S2iw7Pwn8RHaXB"


@dataclass(frozen=True)
class Leak:
    """A text carrying `secret`, and the secrets configured (as from settings) when it is logged."""

    kind: str
    text: str
    secret: str
    configured: tuple[str, ...] = ()


LEAKS = [
    Leak(
        "configured GITHUB_TOKEN of any shape",
        "GET /repos/x/y with token plain-test-token-0042",
        "plain-test-token-0042",
        ("plain-test-token-0042",),
    ),
    Leak(
        "GitHub classic token",
        "auth ghp_R2D2c3poR2D2c3poR2D2c3poR2D2c3po1234 rejected",
        "ghp_R2D2c3poR2D2c3poR2D2c3poR2D2c3po1234",
    ),
    Leak(
        "GitHub app token",
        "installation token ghs_abcdefghijklmnopqrstuvwxyz012345 expired",
        "ghs_abcdefghijklmnopqrstuvwxyz012345",
    ),
    Leak(
        "GitHub fine-grained token",
        "using github_pat_11AAAAAAA0123456789_abcdefghijklmnopqrstuvwxyzABCDEFGH",
        "github_pat_11AAAAAAA0123456789_abcdefghijklmnopqrstuvwxyzABCDEFGH",
    ),
    Leak(
        "OpenRouter key",
        "key=sk-or-v1-0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
        "sk-or-v1-0123456789abcdef0123456789abcdef",
    ),
    Leak(
        "OpenAI key",
        "Incorrect API key provided: sk-proj-AbCdEfGhIjKlMnOpQrStUvWx",
        "sk-proj-AbCdEfGhIjKlMnOpQrStUvWx",
    ),
    Leak("Telegram token", f"token {TELEGRAM_TOKEN} is invalid", TELEGRAM_TOKEN),
    Leak(
        "Telegram token in a Bot API URL",
        f"POST https://api.telegram.org/bot{TELEGRAM_TOKEN}/sendMessage failed",
        TELEGRAM_TOKEN.split(":")[1],
    ),
    Leak(
        "short fake Telegram token in a stand-in URL",
        "POST http://127.0.0.1:8081/bot42:fake/getUpdates failed",
        "42:fake",
    ),
    Leak(
        "configured Discord webhook URL",
        "webhook https://discord.com/api/webhooks/1200/wEbHoOkToKeN-123_xyz answered 500",
        "wEbHoOkToKeN-123_xyz",
        ("https://discord.com/api/webhooks/1200/wEbHoOkToKeN-123_xyz",),
    ),
    Leak(
        "unconfigured Discord webhook URL",
        "POST https://discord.com/api/v10/webhooks/77/aNoThErToKeN?wait=true",
        "aNoThErToKeN",
    ),
    Leak(
        "Discord bot token",
        "login with MTIzNDU2Nzg5MDEyMzQ1Njc4OTA.GaBcDe.abcdefghijklmnopqrstuvwxyz0123",
        "MTIzNDU2Nzg5MDEyMzQ1Njc4OTA.GaBcDe.abcdefghijklmnopqrstuvwxyz0123",
    ),
    Leak(
        "Bearer header",
        "headers={'Authorization': 'Bearer opaque.credential-9876'}",
        "opaque.credential-9876",
    ),
    Leak(
        "password in a database URL",
        "cannot connect to postgresql+asyncpg://digest:pg-pass-9@db:5432/digest",
        "pg-pass-9",
    ),
    Leak(
        "OpenRouter user_id field",
        f'OpenRouter 429: {{"error":{{"code":429}},"user_id":"{OPENROUTER_USER}"}}',
        OPENROUTER_USER,
    ),
]


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    """Leave the root logger and the active redactor as they were."""
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


def capture(
    *, json_mode: bool, secrets: tuple[str, ...] = (), verbose: bool = False
) -> io.StringIO:
    """Install the project's logging writing into a buffer."""
    out = io.StringIO()
    setup_logging(verbose=verbose, json=json_mode, secrets=secrets, stream=out)
    return out


def log_three_ways(leak: Leak) -> None:
    """The leak in a message, in an argument, and in an exception's traceback."""
    log = logging.getLogger("aiinfra_digest.test")
    log.warning(f"message: {leak.text}")
    log.warning("argument: %s", leak.text)
    try:
        raise RuntimeError(leak.text)
    except RuntimeError:
        log.exception("traceback follows")


@pytest.mark.parametrize("json_mode", [False, True], ids=["text", "json"])
@pytest.mark.parametrize("leak", LEAKS, ids=[leak.kind for leak in LEAKS])
def test_secret_is_redacted_in_message_args_and_traceback(leak: Leak, json_mode: bool) -> None:
    out = capture(json_mode=json_mode, secrets=leak.configured)
    log_three_ways(leak)
    lines = out.getvalue().splitlines()
    assert len(lines) == 3
    for line in lines:
        assert leak.secret not in line
        assert "***" in line
    assert "RuntimeError" in lines[2]


def test_openrouter_429_body_from_the_reference_digest_keeps_everything_but_the_user_id() -> None:
    body = (
        'OpenRouter 429 Too Many Requests: {"error":{"message":"Provider returned error",'
        '"code":429,"metadata":{"raw":"openai/gpt-oss-120b:free is temporarily rate-limited '
        'upstream.","provider_name":"OpenInference","is_byok":false}},'
        f'"user_id":"{OPENROUTER_USER}"}}'
    )
    assert Redactor()(body) == body.replace(OPENROUTER_USER, "***")


def test_secret_in_extra_fields_is_redacted_in_both_formats() -> None:
    for json_mode in (False, True):
        out = capture(json_mode=json_mode, secrets=("plain-test-token-0042",))
        logging.getLogger("x").info(
            "request", extra={"url": "/bot42:fake/getMe", "auth": "plain-test-token-0042"}
        )
        text = out.getvalue()
        assert "42:fake" not in text
        assert "plain-test-token-0042" not in text


def test_normal_text_line_is_untouched() -> None:
    out = capture(json_mode=False)
    message = (
        "vllm-project/vllm: 12 commits, 3 merged PRs (#31245, #31250), written by "
        "deepseek/deepseek-chat-v3-0324:free at 09:00:00; task-force sk-short user_id=5; "
        "Bot commands registered, bearer of news; "
        "prompt_tokens=5120 https://github.com/vllm-project/vllm/commit/"
        "6b3e607b852f1543dc21323155a2ad71473c8642"
    )
    logging.getLogger("aiinfra_digest.pipeline").info(message)
    line = out.getvalue()
    assert line.count("\n") == 1
    assert re.fullmatch(
        r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}[+-]\d\d:\d\d INFO aiinfra_digest\.pipeline: (.*)\n",
        line,
    )
    assert line.rstrip("\n").endswith(f"aiinfra_digest.pipeline: {message}")


def test_text_mode_puts_a_traceback_on_the_same_line() -> None:
    out = capture(json_mode=False)
    try:
        raise ValueError("first\nsecond")
    except ValueError:
        logging.getLogger("x").exception("failed")
    text = out.getvalue()
    assert text.count("\n") == 1
    assert "failed | Traceback (most recent call last):\\n" in text
    assert "ValueError: first\\nsecond" in text


def test_json_mode_emits_one_valid_object_per_line() -> None:
    out = capture(json_mode=True)
    log = logging.getLogger("aiinfra_digest.delivery")
    log.info("delivered %d of %d", 9, 10, extra={"day": "2026-02-04", "platform": "telegram"})
    log.warning("multi\nline message")
    try:
        raise KeyError("gone")
    except KeyError:
        log.exception("chat vanished")
    lines = out.getvalue().splitlines()
    assert len(lines) == 3
    events = [json.loads(line) for line in lines]
    first = events[0]
    assert set(first) == {"ts", "level", "logger", "msg", "extra"}
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", first["ts"])
    assert first["level"] == "INFO"
    assert first["logger"] == "aiinfra_digest.delivery"
    assert first["msg"] == "delivered 9 of 10"
    assert first["extra"] == {"day": "2026-02-04", "platform": "telegram"}
    assert events[1]["msg"] == "multi\nline message"
    assert events[1]["extra"] == {}
    assert "KeyError: 'gone'" in events[2]["exc"]


def test_json_mode_keeps_non_ascii_readable() -> None:
    out = capture(json_mode=True)
    logging.getLogger("x").info("今日摘要已发送")
    assert "今日摘要已发送" in out.getvalue()


def test_redact_uses_the_secrets_given_to_setup_logging() -> None:
    capture(json_mode=False, secrets=("configured-value-77",))
    assert redact("run failed: configured-value-77 refused") == "run failed: *** refused"
    assert redact("nothing secret here") == "nothing secret here"


def test_very_short_configured_secrets_are_not_matched_everywhere() -> None:
    assert Redactor(("ab",))("a tab and a crab") == "a tab and a crab"


def test_url_quoted_form_of_a_configured_secret_is_redacted() -> None:
    redactor = Redactor(("a/b:c+secret",))
    assert redactor("q=a%2Fb%3Ac%2Bsecret") == "q=***"


def test_verbose_sets_debug_and_noisy_libraries_stay_at_warning() -> None:
    capture(json_mode=False, verbose=True)
    assert logging.getLogger().level == logging.DEBUG
    for name in NOISY_LOGGERS:
        assert logging.getLogger(name).level == logging.WARNING
    capture(json_mode=False, verbose=False)
    assert logging.getLogger().level == logging.INFO


def test_calling_setup_twice_does_not_duplicate_lines() -> None:
    capture(json_mode=False)
    out = capture(json_mode=True)
    logging.getLogger("x").info("once")
    assert len(out.getvalue().splitlines()) == 1


def test_log_format_is_read_from_the_environment_value() -> None:
    assert log_format_is_json({"LOG_FORMAT": "json"}) is True
    assert log_format_is_json({"LOG_FORMAT": "JSON "}) is True
    assert log_format_is_json({"LOG_FORMAT": "text"}) is False
    assert log_format_is_json({}) is False
    with pytest.raises(ValueError, match="LOG_FORMAT"):
        log_format_is_json({"LOG_FORMAT": "xml"})


def test_secrets_from_settings_lists_every_configured_secret() -> None:
    settings = load_settings(
        github_token="gh-value",
        openrouter_api_key="or-value",
        telegram_bot_token="1:tg",
        discord_webhook_url="https://discord.com/api/webhooks/1/wh",
    )
    assert secrets_from_settings(settings) == [
        "gh-value",
        "or-value",
        "1:tg",
        "https://discord.com/api/webhooks/1/wh",
    ]
