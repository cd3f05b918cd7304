"""Logging of aiinfra-digest: one line per event, text or JSON, with secrets redacted.

`setup_logging` installs one stderr handler on the root logger whose formatter redacts the
final line (message, arguments, extras and traceback alike), so no call site has to remember
to. `redact` applies the same rules to any text, for run records and `/status` answers.
"""

from __future__ import annotations

import json as jsonlib
import logging
import os
import re
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TextIO
from urllib.parse import quote

from pydantic import SecretStr

from bot.settings import Settings

MASK = "***"

# Libraries that log every request (URLs with tokens in them, among other things) at INFO/DEBUG.
NOISY_LOGGERS: tuple[str, ...] = (
    "httpx",
    "httpx2",
    "httpcore",
    "openai",
    "telegram",
    "discord",
    "aiosqlite",
    "apscheduler",
    "alembic",
)

# Shortest configured secret redacted by exact value: a two-letter test token would otherwise
# blank out every word that contains it.
MIN_SECRET_LENGTH = 6

_TOKEN_CHARS = r"A-Za-z0-9_-"

# Whole-match patterns: the match itself is the secret.
_SECRET_PATTERNS: tuple[re.Pattern[str], ...] = (
    # GitHub: classic and OAuth/app/refresh tokens, and fine-grained personal access tokens.
    re.compile(r"\b(?:ghp|gho|ghu|ghs|ghr)_[A-Za-z0-9]{20,}"),
    re.compile(r"\bgithub_pat_[A-Za-z0-9_]{20,}"),
    # OpenRouter (sk-or-v1-…) and OpenAI-style (sk-…, sk-proj-…) keys.
    re.compile(rf"\bsk-[{_TOKEN_CHARS}]{{20,}}"),
    # Telegram bot tokens, bare or inside `/bot<token>/` (hence no word boundary before the id).
    re.compile(rf"(?<!\d)\d+:[{_TOKEN_CHARS}]{{35}}(?![{_TOKEN_CHARS}])"),
    # Discord bot tokens: base64 user id . timestamp . HMAC (JWTs have the same shape).
    re.compile(rf"\b[{_TOKEN_CHARS}]{{23,}}\.[{_TOKEN_CHARS}]{{6,}}\.[{_TOKEN_CHARS}]{{27,}}"),
    # Provider account ids such as OpenRouter's `user_2wqU29q2Bhpw2S2iw7Pwn8RHaXB`.
    re.compile(r"\buser_[A-Za-z0-9]{20,}\b"),
)

# Prefix patterns: group 1 is kept, what follows it up to a delimiter is the secret.
_PREFIXED_PATTERNS: tuple[re.Pattern[str], ...] = (
    # Any token in a Bot API path, whatever its shape (test servers use short fake ones).
    re.compile(r"(/bot)\d+:[^/\s\"'<>]+"),
    # The token segment of a Discord webhook URL: /api[/v10]/webhooks/<id>/<token>.
    re.compile(r"(/api(?:/v\d+)?/webhooks/\d+/)[^/?#\s\"'<>]+"),
    # Passwords in URLs (DATABASE_URL, proxies): scheme://user:<password>@host.
    re.compile(r"(://[^/\s:@]+:)[^@\s/]+(?=@)"),
    # Bearer credentials. (`Bot <token>` is left to the Discord token shape: "bot" is a word
    # in this project's own log lines.)
    re.compile(r"(\bBearer\s+)[A-Za-z0-9._~+/=-]{8,}", re.IGNORECASE),
    # Provider fields that identify the account, JSON or Python-repr quoted.
    re.compile(r"""(["']user_?id["']\s*:\s*["'])[^"']+""", re.IGNORECASE),
    # Credential-named fields in JSON, reprs and query strings.
    re.compile(
        r"""(\b(?:api[_-]?key|access_token|client_secret|password|authorization)"""
        r"""["']?\s*[:=]\s*["']?(?:(?:Bearer|Bot|Basic|token)\s+)?)[^\s"'&,;}]+""",
        re.IGNORECASE,
    ),
)


def _variants(secret: str) -> set[str]:
    """A secret and the forms it takes in logs: URL-quoted, and the parts that are secret alone."""
    webhook = re.search(r"/webhooks/\d+/([^/?#\s]+)", secret)
    if webhook:
        # Only the token segment is secret; the URL's id still tells the operator which webhook.
        secret = webhook.group(1)
    found = {secret, quote(secret, safe=""), quote(secret, safe="/:")}
    telegram = re.fullmatch(r"\d+:(.+)", secret)
    if telegram:
        found.add(telegram.group(1))
    return {value for value in found if len(value) >= MIN_SECRET_LENGTH}


@dataclass(frozen=True)
class Redactor:
    """Replaces configured secret values and well-known secret shapes with `***`."""

    secrets: tuple[str, ...] = ()
    _exact: re.Pattern[str] | None = field(init=False, repr=False, compare=False, default=None)

    def __post_init__(self) -> None:
        values: set[str] = set()
        for secret in self.secrets:
            values |= _variants(secret.strip())
        if values:
            # Longest first: where one value begins another, the longer one is masked whole.
            ordered = sorted(values, key=len, reverse=True)
            pattern = re.compile("|".join(re.escape(value) for value in ordered))
            object.__setattr__(self, "_exact", pattern)

    def __call__(self, text: str) -> str:
        """The text with every secret replaced by `***`."""
        if self._exact is not None:
            text = self._exact.sub(MASK, text)
        for pattern in _SECRET_PATTERNS:
            text = pattern.sub(MASK, text)
        for pattern in _PREFIXED_PATTERNS:
            text = pattern.sub(lambda match: match.group(1) + MASK, text)
        return text

    def value(self, value: Any) -> Any:
        """Redact the strings inside a JSON-like value; other objects become redacted `str()`."""
        if isinstance(value, str):
            return self(value)
        if value is None or isinstance(value, bool | int | float):
            return value
        if isinstance(value, Mapping):
            return {self(str(key)): self.value(item) for key, item in value.items()}
        if isinstance(value, list | tuple | set | frozenset):
            return [self.value(item) for item in value]
        return self(str(value))


_active = Redactor()


def set_secrets(secrets: Iterable[str | None]) -> Redactor:
    """Make `redact` (and the log formatters) hide these exact values too; returns the redactor."""
    global _active
    _active = Redactor(tuple(secret for secret in secrets if secret))
    return _active


def redact(text: str) -> str:
    """Hide secrets in `text`: the configured values and well-known token shapes become `***`."""
    return _active(text)


def secrets_from_settings(settings: Settings) -> list[str]:
    """The secret values of a `Settings` (tokens, keys, the Discord webhook URL)."""
    names = (
        "github_token",
        "openrouter_api_key",
        "telegram_bot_token",
        "discord_bot_token",
        "discord_webhook_url",
        "telegram_webhook_secret",
    )
    found: list[str] = []
    for name in names:
        secret: SecretStr | None = getattr(settings, name)
        if secret is not None:
            found.append(secret.get_secret_value())
    return found


def log_format_is_json(environ: Mapping[str, str] | None = None) -> bool:
    """Read `LOG_FORMAT` (`text`, the default, or `json`); other values are a ValueError."""
    value = (os.environ if environ is None else environ).get("LOG_FORMAT", "text").strip().lower()
    if value not in ("", "text", "json"):
        raise ValueError(f"LOG_FORMAT: expected text or json, got {value!r}")
    return value == "json"


# Attributes every LogRecord has; anything else was passed with `extra=`.
_RECORD_FIELDS = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {
    "message",
    "asctime",
    "taskName",
}


def record_extra(record: logging.LogRecord) -> dict[str, Any]:
    """The fields a call site passed with `extra=` (not the LogRecord's own attributes)."""
    return {
        key: value
        for key, value in vars(record).items()
        if key not in _RECORD_FIELDS and not key.startswith("_")
    }


def _one_line(text: str) -> str:
    # Tracebacks span lines; escaping keeps one event on one line for journald and docker logs.
    return text.replace("\r\n", "\n").replace("\r", "\n").replace("\n", "\\n")


class _RedactingFormatter(logging.Formatter):
    """Shared part: redaction with the redactor active at format time."""

    def __init__(self, redactor: Redactor | None = None) -> None:
        super().__init__()
        self._redactor = redactor

    @property
    def redactor(self) -> Redactor:
        """The fixed redactor, or the one `set_secrets` made last."""
        return self._redactor if self._redactor is not None else _active

    def message_and_trace(self, record: logging.LogRecord) -> tuple[str, str | None]:
        """The formatted message, and the traceback/stack text if the record carries one."""
        message = record.getMessage()
        trace: list[str] = []
        if record.exc_info:
            trace.append(self.formatException(record.exc_info))
        elif record.exc_text:
            trace.append(record.exc_text)
        if record.stack_info:
            trace.append(self.formatStack(record.stack_info))
        return message, "\n".join(trace) if trace else None


class TextFormatter(_RedactingFormatter):
    """`2026-02-04T09:00:00.123+08:00 INFO logger: message key=value`, on one line."""

    def format(self, record: logging.LogRecord) -> str:
        """One redacted line."""
        message, trace = self.message_and_trace(record)
        stamp = (
            datetime.fromtimestamp(record.created).astimezone().isoformat(timespec="milliseconds")
        )
        line = f"{stamp} {record.levelname} {record.name}: {message}"
        extra = record_extra(record)
        if extra:
            line += " " + " ".join(f"{key}={value}" for key, value in extra.items())
        if trace:
            line += " | " + trace
        return _one_line(self.redactor(line))


class JsonFormatter(_RedactingFormatter):
    """One JSON object per line: ts, level, logger, msg, extra, and exc when there is one."""

    def format(self, record: logging.LogRecord) -> str:
        """One redacted JSON line."""
        message, trace = self.message_and_trace(record)
        stamp = datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds")
        event: dict[str, Any] = {
            "ts": stamp.replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "msg": message,
            "extra": record_extra(record),
        }
        if trace:
            event["exc"] = trace
        # Redact field by field before encoding: escaped quotes would hide `"user_id": "…"`.
        return jsonlib.dumps(self.redactor.value(event), ensure_ascii=False)


_HANDLER_MARK = "_aiinfra_digest_handler"


def setup_logging(
    *,
    verbose: bool,
    json: bool,
    secrets: Sequence[str],
    stream: TextIO | None = None,
) -> None:
    """Log to stderr (or `stream`), one redacted line per event; DEBUG when verbose, else INFO.

    Calling it again replaces the handler it installed before, so tests and the CLI may both
    call it.
    """
    set_secrets(secrets)
    handler = logging.StreamHandler(stream if stream is not None else sys.stderr)
    handler.setFormatter(JsonFormatter() if json else TextFormatter())
    setattr(handler, _HANDLER_MARK, True)

    root = logging.getLogger()
    for old in list(root.handlers):
        # basicConfig's handler (or ours from an earlier call) would print every line twice.
        if getattr(old, _HANDLER_MARK, False) or type(old) is logging.StreamHandler:
            root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(logging.DEBUG if verbose else logging.INFO)
    for name in NOISY_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)
