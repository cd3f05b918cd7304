"""Per-repository progress of `collect` and `generate`: a rich bar on a terminal, log lines else.

The bar goes to stderr so that stdout stays the command's output (JSON or Markdown) even when it
is piped; when stderr is not a terminal (cron, CI, Docker logs) each finished repository is one
log line instead, so logs never fill with redraw sequences.
"""

from __future__ import annotations

import logging
import sys
from types import TracebackType
from typing import TextIO

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

log = logging.getLogger("aiinfra_digest")


class RepoProgress:
    """Counts finished repositories of one stage (`collect`, `write`) and shows them."""

    def __init__(self, stage: str, total: int, *, stream: TextIO | None = None) -> None:
        self._stage = stage
        self._total = total
        self._done = 0
        stream = stream if stream is not None else sys.stderr
        self._bar: Progress | None = None
        if stream.isatty():
            self._bar = Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                console=Console(file=stream),
                transient=False,
            )
            self._task = self._bar.add_task(stage, total=total)

    def __enter__(self) -> RepoProgress:
        if self._bar is not None:
            self._bar.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._bar is not None:
            self._bar.stop()

    def done(self, repo: str, outcome: str = "") -> None:
        """One repository finished (`outcome`: a short word such as "failed" or "structured")."""
        self._done += 1
        note = f" ({outcome})" if outcome else ""
        if self._bar is not None:
            self._bar.update(self._task, advance=1, description=f"{self._stage}: {repo}{note}")
        else:
            log.info("%s: %s%s [%d/%d]", self._stage, repo, note, self._done, self._total)
