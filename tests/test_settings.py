"""Settings: defaults of interface.md, and one-line errors naming the variable."""

from __future__ import annotations

import pytest

from bot.settings import DEFAULT_REPOS, SettingsError, load_settings


def test_defaults_follow_the_interface() -> None:
    settings = load_settings()
    assert settings.digest_repos == list(DEFAULT_REPOS)
    assert settings.digest_timezone == "Asia/Shanghai"
    assert settings.digest_post_time == "09:00"
    assert settings.github_api_url == "https://api.github.com"
    assert settings.database_url.startswith("sqlite+aiosqlite:///")
    assert settings.openrouter_api_key is None


def test_comma_lists_are_split(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DIGEST_REPOS", "vllm-project/vllm, NVIDIA/cutlass")
    monkeypatch.setenv("DIGEST_MODELS", "a/b:free,c/d")
    monkeypatch.setenv("ADMIN_USER_IDS", "telegram:123,discord:456")
    settings = load_settings()
    assert settings.digest_repos == ["vllm-project/vllm", "NVIDIA/cutlass"]
    assert settings.digest_models == ["a/b:free", "c/d"]
    assert settings.admin_user_ids == ["telegram:123", "discord:456"]


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("DIGEST_TIMEZONE", "Mars/Base"),
        ("DIGEST_POST_TIME", "25:00"),
        ("DIGEST_REPOS", "vllm"),
        ("DIGEST_REPOS", "a/b,../../etc"),
        ("ADMIN_USER_IDS", "slack:1"),
        ("GITHUB_API_URL", "ftp://example"),
    ],
)
def test_bad_value_is_one_line_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(SettingsError) as caught:
        load_settings()
    message = str(caught.value)
    assert message.startswith(f"{name}:")
    assert "\n" not in message


def test_env_file_is_read(tmp_path: pytest.TempPathFactory) -> None:
    from pathlib import Path

    Path(".env").write_text("DIGEST_POST_TIME=7:30\n")
    assert load_settings().digest_post_time == "07:30"
