"""The deployment files keep their promises: non-root image with a health check, two replicas
on PostgreSQL, a hardened systemd unit. (Docker itself cannot run here; these read the files.)"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]


def dockerfile_runtime_stage() -> str:
    """The last stage of the Dockerfile: what the image runs with."""
    text = (ROOT / "Dockerfile").read_text(encoding="utf-8")
    return re.split(r"^FROM ", text, flags=re.MULTILINE)[-1]


def test_image_is_slim_runs_as_non_root_and_checks_its_health() -> None:
    stage = dockerfile_runtime_stage()
    assert stage.startswith("python:3.11-slim")
    user = re.search(r"^USER (\S+)", stage, flags=re.MULTILINE)
    assert user is not None
    assert user.group(1) not in ("root", "0")
    assert re.search(r'^HEALTHCHECK .*\n?.*CMD \["aiinfra-digest", "health"\]', stage, re.MULTILINE)
    assert 'CMD ["aiinfra-digest", "run"]' in stage


def compose() -> dict[str, Any]:
    """docker-compose.yml as data (PyYAML is not a project dependency: skip without it)."""
    yaml = pytest.importorskip("yaml")
    data: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text(encoding="utf-8"))
    return data


def test_compose_runs_two_bot_replicas_on_a_healthy_postgresql() -> None:
    services = compose()["services"]
    db, bot = services["db"], services["bot"]
    assert db["image"].startswith("postgres:16")
    assert "healthcheck" in db
    assert any(volume.endswith(":/var/lib/postgresql/data") for volume in db["volumes"])
    assert bot["deploy"]["replicas"] == 2
    assert bot["build"] == "."
    assert bot["env_file"] == ".env"
    assert bot["restart"] == "unless-stopped"
    assert bot["depends_on"]["db"]["condition"] == "service_healthy"
    assert bot["environment"]["DATABASE_URL"] == "postgresql+asyncpg://digest:digest@db:5432/digest"


def systemd_unit() -> dict[str, list[str]]:
    """`Key=value` lines of the unit (keys may repeat, as systemd allows)."""
    settings: dict[str, list[str]] = {}
    for line in (ROOT / "deploy" / "aiinfra-digest.service").read_text().splitlines():
        if "=" in line and not line.startswith(("#", "[")):
            key, value = line.split("=", 1)
            settings.setdefault(key.strip(), []).append(value.strip())
    return settings


def test_systemd_unit_runs_the_venv_as_its_own_user_with_hardening() -> None:
    unit = systemd_unit()
    assert unit["ExecStart"] == ["/opt/aiinfra-digest/venv/bin/aiinfra-digest run"]
    assert unit["User"] != ["root"]
    assert unit["Restart"] == ["on-failure"]
    assert "EnvironmentFile" in unit
    assert unit["NoNewPrivileges"] == ["yes"]
    assert unit["ProtectSystem"] == ["strict"]
    assert unit["ReadWritePaths"] == unit["WorkingDirectory"] == ["/var/lib/aiinfra-digest"]
