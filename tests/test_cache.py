"""The file cache keeps values across instances (restarts) and separates namespaces."""

from __future__ import annotations

from pathlib import Path

from collectors.cache import FileCache


async def test_file_cache_survives_a_restart(tmp_path: Path) -> None:
    first = FileCache(tmp_path / "cache.db")
    await first.put("etag", "https://x/1", '{"etag": "W/1"}')
    first.close()
    second = FileCache(tmp_path / "cache.db")
    assert await second.get("etag", "https://x/1") == '{"etag": "W/1"}'
    assert await second.get("section", "https://x/1") is None


async def test_file_cache_put_replaces(tmp_path: Path) -> None:
    cache = FileCache(tmp_path / "c.db")
    await cache.put("n", "k", "a")
    await cache.put("n", "k", "b")
    assert await cache.get("n", "k") == "b"
