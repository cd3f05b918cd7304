"""`health`: exit 0 when the configured database answers `SELECT 1`, else 1, in one line."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.health import check_database, health
from bot.settings import load_settings


def closed_port() -> int:
    """A local TCP port nothing listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


@pytest.fixture
async def silent_server() -> AsyncIterator[int]:
    """A TCP server that accepts connections and never says a word."""
    held: list[asyncio.StreamWriter] = []

    async def accept(_reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)

    server = await asyncio.start_server(accept, "127.0.0.1", 0)
    yield server.sockets[0].getsockname()[1]
    for writer in held:
        writer.close()
    server.close()
    await server.wait_closed()


async def test_sqlite_database_that_opens_is_healthy(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = load_settings(database_url=f"sqlite+aiosqlite:///{tmp_path}/digest.db")
    assert await health(settings) == 0
    out, err = capsys.readouterr()
    assert out.startswith("healthy: database sqlite+aiosqlite:///")
    assert out.count("\n") == 1
    assert err == ""


async def test_sqlite_in_a_missing_directory_is_unhealthy(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = load_settings(database_url=f"sqlite+aiosqlite:///{tmp_path}/nowhere/digest.db")
    assert await health(settings) == 1
    out, err = capsys.readouterr()
    assert out == ""
    assert err.startswith("unhealthy: database ")
    assert err.count("\n") == 1


async def test_refused_postgresql_is_unhealthy_and_hides_the_password(
    capsys: pytest.CaptureFixture[str],
) -> None:
    url = f"postgresql+asyncpg://digest:s3cretpw@127.0.0.1:{closed_port()}/digest"
    assert await health(load_settings(database_url=url)) == 1
    _, err = capsys.readouterr()
    assert err.startswith("unhealthy: database postgresql+asyncpg://digest:***@127.0.0.1:")
    assert "s3cretpw" not in err
    assert err.count("\n") == 1


async def test_a_server_that_never_answers_is_unhealthy_after_the_timeout(
    silent_server: int,
) -> None:
    url = f"postgresql+asyncpg://digest:digest@127.0.0.1:{silent_server}/digest"
    assert await check_database(url, answer_within=0.3) == "no answer within 0.3 s"


async def test_synchronous_driver_is_unhealthy_with_a_reason() -> None:
    reason = await check_database("sqlite:///./x.db")
    assert reason is not None
    assert "async" in reason


async def test_unparsable_url_is_unhealthy() -> None:
    reason = await check_database("not a database url")
    assert reason is not None
    assert reason.startswith("ArgumentError")


async def test_reachable_postgresql_is_healthy(capsys: pytest.CaptureFixture[str]) -> None:
    url = os.environ.get("TEST_DATABASE_URL")
    if not url:
        pytest.skip("TEST_DATABASE_URL is not set")
    assert await health(load_settings(database_url=url)) == 0
    assert capsys.readouterr().out.startswith("healthy: database postgresql")


def test_a_whole_process_answers_in_exactly_one_line(tmp_path: Path) -> None:
    # As the CLI runs it: asyncio.run closes the loop at once, which is when a leftover driver
    # thread would print a traceback.
    script = (
        "import asyncio, sys\n"
        "from bot.health import health\n"
        "from bot.settings import load_settings\n"
        f"url = 'sqlite+aiosqlite:///{tmp_path}/nowhere/digest.db'\n"
        "sys.exit(asyncio.run(health(load_settings(database_url=url))))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        check=False,
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])},
    )
    assert done.returncode == 1
    assert done.stdout == ""
    assert done.stderr.startswith("unhealthy: database sqlite+aiosqlite:///")
    assert done.stderr.count("\n") == 1
