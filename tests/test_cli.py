"""The command line: one-line reasons and exit status 2 for bad input; the offline main job."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bot.cli import main


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["collect", "--date", "2026-13-45"], "--date"),
        (["collect", "--date", "yesterday"], "--date"),
        (["collect", "--date", "2999-01-01"], "in the future"),
        (["collect", "--repo", "nosuch"], "unknown repository"),
        (["generate", "--repo", "vlm"], "did you mean vllm-project/vllm"),
        (["generate", "--activity", "missing.json"], "cannot read"),
        (["generate", "--sample", "--activity", "x.json"], "cannot be used together"),
        (["frobnicate"], "invalid choice"),
    ],
)
def test_bad_input_exits_2_with_one_line(
    capsys: pytest.CaptureFixture[str], argv: list[str], needle: str
) -> None:
    code, out, err = run(capsys, *argv)
    assert code == 2
    assert out == ""
    assert needle in err
    assert len(err.strip().splitlines()) == 1
    assert "Traceback" not in err


def test_bad_setting_names_the_variable(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DIGEST_TIMEZONE", "Mars/Base")
    code, _, err = run(capsys, "collect", "--sample")
    assert code == 2
    assert err.strip().splitlines() == [err.strip()]
    assert "DIGEST_TIMEZONE" in err


def test_activity_file_that_is_not_activity_json_is_refused(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"day": "someday", "repos": []}), encoding="utf-8")
    code, out, err = run(capsys, "generate", "--activity", str(bad))
    assert code == 2
    assert out == ""
    assert "is not activity JSON" in err
    assert len(err.strip().splitlines()) == 1


@pytest.mark.parametrize("command", [["run"], ["post", "--date", "2026-01-15"]])
def test_run_and_post_without_any_chat_platform_exit_2_with_one_line(
    capsys: pytest.CaptureFixture[str], command: list[str]
) -> None:
    code, out, err = run(capsys, *command)
    assert code == 2
    assert out == ""
    assert "TELEGRAM_BOT_TOKEN" in err
    assert len(err.strip().splitlines()) == 1


def test_db_upgrade_creates_the_sqlite_database(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    code, out, _ = run(capsys, "db", "upgrade")
    assert code == 0
    assert "up to date" in out
    assert (tmp_path / "data" / "aiinfra-digest.db").is_file()


def test_site_writes_an_index_and_a_feed_even_from_an_empty_archive(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    code, out, _ = run(capsys, "site", "-o", str(tmp_path / "site"))
    assert code == 0
    assert "0 days" in out
    assert (tmp_path / "site" / "index.html").is_file()
    assert (tmp_path / "site" / "atom.xml").is_file()


def test_serve_refuses_a_folder_without_a_built_site(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    code, _, err = run(capsys, "serve", "-d", str(tmp_path / "nothing"))
    assert code == 2
    assert "no built site" in err


def test_status_on_a_fresh_database_says_nothing_was_generated_yet(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, out, _ = run(capsys, "status")
    assert code == 0
    assert "No digest has been generated yet" in out
    assert "Active chats: none" in out
