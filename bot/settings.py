"""Settings of aiinfra-digest, read from the environment and `.env` (see docs in README)."""

from __future__ import annotations

import re
from datetime import time
from typing import Annotated, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from summarizer.noise import DEFAULT_EXCLUDED_AUTHORS

DEFAULT_REPOS: tuple[str, ...] = (
    "deepseek-ai/DeepGEMM",
    "deepseek-ai/FlashMLA",
    "NVIDIA/cutlass",
    "flashinfer-ai/flashinfer",
    "Dao-AILab/flash-attention",
    "sgl-project/sglang",
    "vllm-project/vllm",
    "NVIDIA/cutile-python",
)

DEFAULT_MODELS: tuple[str, ...] = (
    "deepseek/deepseek-chat-v3-0324:free",
    "qwen/qwen3-235b-a22b:free",
    "openai/gpt-oss-120b:free",
    "meta-llama/llama-3.3-70b-instruct:free",
)

REPO_RE = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})/[A-Za-z0-9._-]{1,100}$")
_ADMIN_RE = re.compile(r"^(telegram|discord):-?\d+$")
_WEBHOOK_SECRET_RE = re.compile(r"[A-Za-z0-9_-]{1,256}")

CommaList = Annotated[list[str], NoDecode]


def split_commas(value: object) -> object:
    """Turn `a, b,c` into `["a", "b", "c"]`; lists pass through."""
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return value


_APPRISE_URL_RE = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]*://\S+$")
# A comma starts a new URL only before another scheme: Apprise URLs may hold commas themselves.
_URL_BREAK_RE = re.compile(r"\s*,\s*(?=[A-Za-z][A-Za-z0-9+.\-]*://)")


def notify_url_list(value: str) -> list[str]:
    """A comma-separated list of Apprise URLs, split only where a new URL begins."""
    text = value.strip().strip(",").strip()
    return [url.strip() for url in _URL_BREAK_RE.split(text) if url.strip()] if text else []


def parse_hhmm(value: str) -> time:
    """Parse `HH:MM` (24-hour clock) or raise ValueError with a short reason."""
    # ASCII digits only: `\d` would also take Arabic-Indic or full-width digits.
    match = re.fullmatch(r"([0-9]{1,2}):([0-9]{2})", value.strip())
    if not match or int(match[1]) > 23 or int(match[2]) > 59:
        raise ValueError(f"expected HH:MM between 00:00 and 23:59, got {value!r}")
    return time(int(match[1]), int(match[2]))


def is_repo_name(value: str) -> bool:
    """True when `value` looks like a GitHub `owner/name`."""
    return bool(REPO_RE.fullmatch(value)) and ".." not in value


class Settings(BaseSettings):
    """Every setting of docs/interface.md, plus tuning knobs with safe defaults."""

    model_config = SettingsConfigDict(
        env_file=".env", env_file_encoding="utf-8", extra="ignore", case_sensitive=False
    )

    github_token: SecretStr | None = None
    github_api_url: str = "https://api.github.com"
    github_concurrency: int = Field(default=4, ge=1, le=64)
    github_timeout: float = Field(default=30.0, gt=0)
    # GraphQL (needs a token) collects a day in ~1 query whatever its size; REST is the
    # tokenless path and the fallback. auto: GraphQL when GITHUB_TOKEN is set.
    github_graphql_url: str = "https://api.github.com/graphql"
    github_collector: Literal["auto", "rest", "graphql"] = "auto"

    openrouter_api_key: SecretStr | None = None
    openrouter_base_url: str = "https://openrouter.ai/api/v1"
    digest_models: CommaList = Field(default_factory=lambda: list(DEFAULT_MODELS))
    llm_concurrency: int = Field(default=4, ge=1, le=64)
    llm_requests_per_minute: float = Field(default=20.0, gt=0)
    llm_timeout: float = Field(default=120.0, gt=0)
    llm_input_token_budget: int = Field(default=6000, ge=500)

    digest_repos: CommaList = Field(default_factory=lambda: list(DEFAULT_REPOS))
    digest_timezone: str = "Asia/Shanghai"
    digest_post_time: str = "09:00"
    # Logins whose PRs and commits are counted, not summarised (releases always are).
    digest_exclude_authors: CommaList = Field(
        default_factory=lambda: list(DEFAULT_EXCLUDED_AUTHORS)
    )

    database_url: str = "sqlite+aiosqlite:///./data/aiinfra-digest.db"
    cache_dir: str = "./data/cache"

    telegram_bot_token: SecretStr | None = None
    telegram_api_url: str = "https://api.telegram.org"
    # Webhook mode (several instances behind a load balancer): Telegram POSTs updates to this
    # public URL with the secret in a header; each instance listens on LISTEN:PORT.
    telegram_webhook_url: str | None = None
    telegram_webhook_secret: SecretStr | None = None
    telegram_webhook_listen: str = "0.0.0.0"
    telegram_webhook_port: int = Field(default=8443, ge=1, le=65535)
    # Prometheus /metrics of `run` on this port (all interfaces); unset: no endpoint.
    metrics_port: int | None = Field(default=None, ge=0, le=65535)
    discord_bot_token: SecretStr | None = None
    discord_webhook_url: SecretStr | None = None
    admin_user_ids: CommaList = Field(default_factory=list)
    # Push targets by Apprise URL (Feishu, DingTalk, WeCom, Slack, email, ...), comma-separated.
    notify_urls: SecretStr | None = None

    # Release alerts, and repositories chats may add beyond DIGEST_REPOS.
    release_poll_minutes: float = Field(default=5.0, gt=0, le=1440)
    track_any_repo: bool = True
    max_tracked_repos: int = Field(default=30, ge=1, le=1000)
    # Repositories one chat may add beyond the shared set (`/subscribe owner/name`).
    max_chat_repos: int = Field(default=5, ge=0, le=100)
    # Generating a day that is not archived yet, on demand: per chat (operators exempt) and overall.
    on_demand_per_chat_day: int = Field(default=10, ge=1, le=1000)
    on_demand_per_hour: int = Field(default=30, ge=1, le=10000)
    # How long `post` holds a chat's delivery before another worker may take it over; a rerun
    # after a killed `post` waits at most this long (plus a margin) for the dead one's claims.
    delivery_lease_seconds: float = Field(default=120.0, ge=1, le=3600)

    @field_validator(
        "digest_models", "digest_repos", "admin_user_ids", "digest_exclude_authors", mode="before"
    )
    @classmethod
    def _comma_list(cls, value: object) -> object:
        return split_commas(value)

    @field_validator("digest_repos")
    @classmethod
    def _repos_are_owner_name(cls, value: list[str]) -> list[str]:
        for repo in value:
            if not is_repo_name(repo):
                raise ValueError(f"{repo!r} is not an owner/name repository")
        if not value:
            raise ValueError("at least one repository is needed")
        return list(dict.fromkeys(value))

    @field_validator("digest_models")
    @classmethod
    def _models_not_empty(cls, value: list[str]) -> list[str]:
        if not value:
            raise ValueError("at least one model is needed")
        return value

    @field_validator("digest_timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r}") from None
        return value

    @field_validator("digest_post_time")
    @classmethod
    def _hhmm(cls, value: str) -> str:
        return parse_hhmm(value).strftime("%H:%M")

    @field_validator("admin_user_ids")
    @classmethod
    def _admins(cls, value: list[str]) -> list[str]:
        for entry in value:
            if not _ADMIN_RE.fullmatch(entry):
                raise ValueError(f"{entry!r} is not telegram:<id> or discord:<id>")
        return value

    @field_validator("telegram_webhook_url")
    @classmethod
    def _webhook_url(cls, value: str | None) -> str | None:
        if value is not None and not re.match(r"^https?://[^/\s]+", value):
            raise ValueError(f"{value!r} is not an http(s) URL")
        return value

    @field_validator("telegram_webhook_secret")
    @classmethod
    def _webhook_secret(cls, value: SecretStr | None) -> SecretStr | None:
        # Telegram's own rule for secret_token; anything else would be refused by setWebhook.
        if value is not None and not _WEBHOOK_SECRET_RE.fullmatch(value.get_secret_value()):
            raise ValueError("expected 1-256 characters of A-Z, a-z, 0-9, _ and -")
        return value

    @field_validator(
        "github_api_url", "github_graphql_url", "openrouter_base_url", "telegram_api_url"
    )
    @classmethod
    def _url(cls, value: str) -> str:
        if not re.match(r"^https?://", value):
            raise ValueError(f"{value!r} is not an http(s) URL")
        return value.rstrip("/")

    @field_validator("notify_urls")
    @classmethod
    def _notify_urls(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None:
            return None
        for index, url in enumerate(notify_url_list(value.get_secret_value()), 1):
            if not _APPRISE_URL_RE.match(url):
                # The URL itself holds credentials: name it by position only.
                raise ValueError(f"URL {index} is not an Apprise URL (scheme://...)")
        return value

    @property
    def notify_url_list(self) -> list[str]:
        """NOTIFY_URLS as a list of Apprise URLs (empty when unset)."""
        if self.notify_urls is None:
            return []
        return notify_url_list(self.notify_urls.get_secret_value())

    @property
    def zone(self) -> ZoneInfo:
        """The configured time zone."""
        return ZoneInfo(self.digest_timezone)

    @property
    def post_time(self) -> time:
        """The default local posting time."""
        return parse_hhmm(self.digest_post_time)


class SettingsError(Exception):
    """A setting has a bad value; the message is one line naming the variable."""


def load_settings(**overrides: object) -> Settings:
    """Read settings, turning a validation error into a one-line SettingsError."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        first = exc.errors()[0]
        name = str(first["loc"][0]).upper() if first["loc"] else "settings"
        message = str(first["msg"]).removeprefix("Value error, ")
        raise SettingsError(f"{name}: {message}") from None
