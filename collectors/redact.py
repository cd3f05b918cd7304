"""The one redactor: configured secret values and well-known secret shapes become `***`.

Logs (`bot.logs`), delivery errors (`bot.delivery.one_line`) and model errors (`summarizer.llm`)
all go through `Redactor`, so a token shape added here is masked everywhere. It lives in the
lowest layer because every layer has errors to clean. Identifiers that are not secrets (40-hex
commit SHAs, issue numbers, model names) stay readable: operators need them.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

MASK = "***"

# Shortest configured secret redacted by exact value: a two-letter test token would otherwise
# blank out every word that contains it.
MIN_SECRET_LENGTH = 6

_TOKEN_CHARS = r"A-Za-z0-9_-"

# Whole-match patterns: the match itself is the secret.
SECRET_PATTERNS: tuple[re.Pattern[str], ...] = (
    # GitHub: classic and OAuth/app/refresh tokens, and fine-grained personal access tokens.
    re.compile(r"\b(?:ghp|gho|ghu|ghs|ghr)_[A-Za-z0-9]{20,}"),
    re.compile(r"\bgithub_pat_[A-Za-z0-9_]{20,}"),
    # OpenRouter (sk-or-v1-…) and OpenAI-style (sk-…, sk-proj-…) keys.
    re.compile(rf"\bsk-[{_TOKEN_CHARS}]{{20,}}"),
    # Telegram bot tokens, bare or inside `/bot<token>/` (hence no word boundary before the id):
    # BotFather's exact shape, and any long secret after a bot-sized numeric id.
    re.compile(rf"(?<!\d)\d+:[{_TOKEN_CHARS}]{{35}}(?![{_TOKEN_CHARS}])"),
    re.compile(rf"(?<!\d)\d{{6,}}:[{_TOKEN_CHARS}]{{20,}}"),
    # Discord bot tokens: base64 user id . timestamp . HMAC (JWTs have the same shape).
    re.compile(rf"\b[{_TOKEN_CHARS}]{{23,}}\.[{_TOKEN_CHARS}]{{6,}}\.[{_TOKEN_CHARS}]{{27,}}"),
    # Provider account ids such as OpenRouter's `user_2wqU29q2Bhpw2S2iw7Pwn8RHaXB`.
    re.compile(r"\buser_[A-Za-z0-9]{20,}\b"),
)

# Prefix patterns: group 1 is kept, what follows it up to a delimiter is the secret.
PREFIXED_PATTERNS: tuple[re.Pattern[str], ...] = (
    # Any token in a Bot API path, whatever its shape (test servers use short fake ones).
    re.compile(r"(/bot)\d+:[^/\s\"'<>]+"),
    # The token segment of a Discord webhook URL or path: [/api[/v10]/]webhooks/<id>/<token>.
    re.compile(r"(\bwebhooks/\d+/)[^/?#\s\"'<>]+"),
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
            if secret:
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
        for pattern in SECRET_PATTERNS:
            text = pattern.sub(MASK, text)
        for pattern in PREFIXED_PATTERNS:
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

    def line(self, text: str, limit: int) -> str:
        """Redacted, on one line, at most `limit` characters (an ellipsis marks a cut)."""
        # Redact before cutting, so a cut never leaves half a token for the patterns to miss.
        flat = self(" ".join(text.split()))
        return flat if len(flat) <= limit else flat[: limit - 1] + "…"
