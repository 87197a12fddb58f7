"""When a campaign's send window is open."""

from __future__ import annotations

import dataclasses
import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from varsel.campaign_spec import Limits
from varsel.send_window import window_opens

OSLO = ZoneInfo("Europe/Oslo")
WEEKDAYS = Limits(
    window_days=("mon", "tue", "wed", "thu", "fri"), window_start="08:00", window_end="16:00"
)
DAILY = Limits(window_start="08:00", window_end="16:00")


def oslo(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text).replace(tzinfo=OSLO)


@pytest.mark.parametrize(
    ("limits", "now", "opens"),
    [
        (Limits(), "2026-11-28 03:00", "2026-11-28 03:00"),  # no window: always open
        (WEEKDAYS, "2026-11-30 09:30", "2026-11-30 09:30"),  # Monday, inside
        (WEEKDAYS, "2026-11-30 07:59", "2026-11-30 08:00"),  # before the start
        (WEEKDAYS, "2026-11-30 16:00", "2026-12-01 08:00"),  # the end is outside
        (WEEKDAYS, "2026-11-27 17:00", "2026-11-30 08:00"),  # Friday evening: Monday
        (WEEKDAYS, "2026-11-28 12:00", "2026-11-30 08:00"),  # Saturday
        (Limits(window_days=("sun",)), "2026-11-30 10:00", "2026-12-06 00:00"),  # next Sunday
        (Limits(window_end="12:00"), "2026-11-30 12:30", "2026-12-01 00:00"),  # an end alone
    ],
)
def test_the_window_opens_when_its_days_and_hours_say(limits: Limits, now: str, opens: str) -> None:
    assert window_opens(limits, oslo(now)) == oslo(opens)


@pytest.mark.parametrize(
    ("now", "hours"),
    [
        ("2026-03-28 20:00", 11),  # summer time begins in the night: an hour less to wait
        ("2026-10-24 20:00", 13),  # and ends: an hour more
        ("2026-11-27 20:00", 12),
    ],
)
def test_the_wait_for_the_window_counts_a_change_of_summer_time(now: str, hours: int) -> None:
    start = oslo(now)
    opens = window_opens(DAILY, start)
    assert opens.astimezone(OSLO).strftime("%H:%M") == "08:00"
    # As instants (Python subtracts two times of one zone by their clocks alone).
    assert opens.astimezone(dt.UTC) - start.astimezone(dt.UTC) == dt.timedelta(hours=hours)
    # Asked in UTC, as the sender asks: the difference of two zones is exact.
    utc = start.astimezone(dt.UTC)
    assert window_opens(DAILY, utc) - utc == dt.timedelta(hours=hours)


def test_the_window_is_in_its_own_time_zone() -> None:
    # 08:00-16:00 in New York is 14:00-22:00 in Oslo in November.
    new_york = dataclasses.replace(DAILY, timezone="America/New_York")
    assert window_opens(new_york, oslo("2026-11-30 13:00")) == dt.datetime(
        2026, 11, 30, 8, 0, tzinfo=ZoneInfo("America/New_York")
    )
    inside = oslo("2026-11-30 15:00")
    assert window_opens(new_york, inside) == inside
