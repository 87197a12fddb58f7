"""Wall-clock time in one place, so tests and reports agree on its format."""

from __future__ import annotations

import time
from datetime import UTC, datetime


def utcnow() -> datetime:
    """The current time, timezone-aware, in UTC."""
    return datetime.now(UTC)


def utcnow_iso() -> str:
    """The current time as ISO 8601 text with milliseconds and a Z: how the store keeps time."""
    return iso(utcnow())


def iso(moment: datetime) -> str:
    """A time as the store keeps it: ISO 8601 in UTC with milliseconds and a Z."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


class IsoClock:
    """utcnow_iso() for a hot loop: the same text, its date and time of day reused per second."""

    def __init__(self) -> None:
        self.second = -1
        self.prefix = ""

    def __call__(self) -> str:
        # Two stamps per message, on the one thread that all sending shares: formatting a
        # datetime each time costs four times as much as this.
        now = time.time()
        second = int(now)
        if second != self.second:
            self.second = second
            self.prefix = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
        return f"{self.prefix}.{int((now - second) * 1000):03d}Z"
