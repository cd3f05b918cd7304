"""Shared fixtures: paths to the optional recorded data beside the project."""

from __future__ import annotations

from pathlib import Path

import pytest

SHARED = Path(__file__).resolve().parents[2] / "shared"
RECORDED_DAY = SHARED / "fixtures" / "github" / "2026-02-04"


@pytest.fixture
def recorded_day() -> Path:
    """The recorded GitHub day in ../shared, or skip when it is absent."""
    if not RECORDED_DAY.is_dir():
        pytest.skip("../shared/fixtures is not beside the project")
    return RECORDED_DAY


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Keep the developer's environment and .env out of tests."""
    import os

    for name in list(os.environ):
        if name.startswith(
            ("GITHUB_", "OPENROUTER_", "DIGEST_", "TELEGRAM_", "DISCORD_")
        ) or name in (
            "DATABASE_URL",
            "ADMIN_USER_IDS",
            "CACHE_DIR",
        ):
            monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
