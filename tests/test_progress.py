"""Progress of `collect`/`generate`: a bar on a terminal, one log line per repository otherwise."""

from __future__ import annotations

import io
import logging

import pytest

from bot.cli import main
from bot.progress import RepoProgress


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_without_a_terminal_each_repository_is_one_log_line(
    caplog: pytest.LogCaptureFixture,
) -> None:
    stream = io.StringIO()
    caplog.set_level(logging.INFO, logger="aiinfra_digest")
    with RepoProgress("collect", 2, stream=stream) as progress:
        progress.done("acme/kernels")
        progress.done("acme/models", "failed")
    assert stream.getvalue() == ""  # no redraw sequences in logs
    assert [r.getMessage() for r in caplog.records] == [
        "collect: acme/kernels [1/2]",
        "collect: acme/models (failed) [2/2]",
    ]


def test_on_a_terminal_a_bar_names_the_latest_repository(
    caplog: pytest.LogCaptureFixture,
) -> None:
    stream = _Terminal()
    caplog.set_level(logging.INFO, logger="aiinfra_digest")
    with RepoProgress("write", 2, stream=stream) as progress:
        progress.done("acme/kernels", "model")
        progress.done("acme/models", "structured")
    shown = stream.getvalue()
    assert "write: acme/models (structured)" in shown and "2/2" in shown
    assert caplog.records == []


def test_generate_logs_each_written_section_when_stderr_is_not_a_terminal(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["generate", "--sample"]) == 0
    out, err = capsys.readouterr()
    assert "write: " in err and "[1/" in err
    assert "write: " not in out  # stdout stays the digest
