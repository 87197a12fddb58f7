"""Wall-clock time in one place, so tests and reports agree on its format."""

from __future__ import annotations

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
