"""Logging of aiinfra-digest: one line per event, text or JSON, with secrets redacted.

`setup_logging` installs one stderr handler on the root logger whose formatter redacts the
final line (message, arguments, extras and traceback alike), so no call site has to remember
to. `redact` applies the same rules to any text, for run records and `/status` answers. The
rules are the project's one redactor (`collectors.redact`); this module adds the secret values
configured for the process.
"""

from __future__ import annotations

import json as jsonlib
import logging
import os
import sys
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, TextIO

from pydantic import SecretStr

from bot.settings import Settings
from collectors.redact import MASK, MIN_SECRET_LENGTH, Redactor

__all__ = [
    "MASK",
    "MIN_SECRET_LENGTH",
    "NOISY_LOGGERS",
    "JsonFormatter",
    "Redactor",
    "TextFormatter",
    "add_secrets",
    "log_format_is_json",
    "record_extra",
    "redact",
    "secrets_from_settings",
    "set_secrets",
    "setup_logging",
]

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
    "apprise",
)

_active = Redactor()


def set_secrets(secrets: Iterable[str | None]) -> Redactor:
    """Make `redact` (and the log formatters) hide these exact values too; returns the redactor."""
    global _active
    _active = Redactor(tuple(secret for secret in secrets if secret))
    return _active


def add_secrets(secrets: Iterable[str | None]) -> Redactor:
    """Hide these values too, besides those set before (push target URLs read from the store)."""
    return set_secrets(dict.fromkeys([*_active.secrets, *secrets]))


def redact(text: str) -> str:
    """Hide secrets in `text`: the configured values and well-known token shapes become `***`."""
    return _active(text)


def secrets_from_settings(settings: Settings) -> list[str]:
    """The secret values of a `Settings` (tokens, keys, webhook and push target URLs)."""
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
    from bot.platforms.push import url_secrets

    for url in settings.notify_url_list:
        found.extend(url_secrets(url))
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
