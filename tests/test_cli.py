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
