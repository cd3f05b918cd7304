"""The bundled synthetic sample day: activity to run the whole pipeline offline, without keys.

The data is written by the project (invented titles, people, numbers and SHAs), shaped like a busy
day of the eight default repositories, and shipped as package data so it works from a wheel too.
"""

from __future__ import annotations

from functools import cache
from importlib.resources import files

from collectors.activity import DayActivity

SAMPLE_RESOURCE = "sample-day.json"


@cache
def _sample_text() -> str:
    # Read once per process: the CLI, the service and tests may all ask for it.
    return files("collectors").joinpath("sample_data", SAMPLE_RESOURCE).read_text(encoding="utf-8")


def load_sample() -> DayActivity:
    """The bundled synthetic day (2026-01-15, Asia/Shanghai) as a DayActivity."""
    return DayActivity.from_json(_sample_text())
