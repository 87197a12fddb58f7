"""A campaign's send window: its times and time zone checked, and when it is next open.

The [window] table of a definition (days, start, end, timezone) is read with the rest of the
definition (campaign_spec); the sender, the workers and the console ask here whether sending
may go on now, and when it may start.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from varsel.errors import CampaignError, Text, visible

if TYPE_CHECKING:
    from varsel.campaign_spec import Limits

WINDOW_DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_CLOCK = re.compile(r"[0-9]{2}:[0-9]{2}\Z")


def _toml_value(value: object) -> str:
    """A value as it stands in the file, for `key = value` in a message: text in TOML's quotes."""
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, bool):
        return "true" if value else "false"
    return visible(str(value))


def check_window(limits: Limits, where: str) -> None:
    """The send window's times and time zone can be used; `where` names the table in messages.

    The sender checks a stored campaign's window again before it starts, so that a campaign
    made before this check existed cannot stop it half-way.
    """
    times = {}
    for key, value in (("start", limits.window_start), ("end", limits.window_end)):
        if value is None:
            continue
        try:
            if not isinstance(value, str) or not _CLOCK.match(value):
                raise ValueError(value)
            times[key] = dt.time.fromisoformat(value)
        except ValueError:
            raise CampaignError(
                Text(
                    "%(where)s: %(key)s = %(value)s er ikke et klokkeslett TT:MM (00:00–23:59)",
                    where=where,
                    key=key,
                    value=_toml_value(value),
                )
            ) from None
    start, end = times.get("start", dt.time(0, 0)), times.get("end", dt.time(23, 59))
    if start >= end:
        raise CampaignError(
            Text(
                "%(where)s: start (%(start)s) må være før end (%(end)s); et vindu over midnatt "
                "kan ikke brukes",
                where=where,
                start=start.strftime("%H:%M"),
                end=end.strftime("%H:%M"),
            )
        )
    zone = limits.timezone
    try:
        if not isinstance(zone, str) or not zone:
            raise ValueError(zone)
        ZoneInfo(zone)
    except (ValueError, ZoneInfoNotFoundError):
        raise CampaignError(
            Text(
                "%(where)s: timezone = %(value)s er ikke en kjent tidssone "
                "(for eksempel «Europe/Oslo»)",
                where=where,
                value=_toml_value(zone),
            )
        ) from None


def window_opens(limits: Limits, now: dt.datetime) -> dt.datetime:
    """When the send window is next open, at or after `now` (aware): `now` itself while open.

    Days and times are the window's time zone's; the instants are compared as such, so a
    change to or from summer time in between counts as the hour it is. Without a window (no
    days, start or end), always `now`. `end` is the first minute outside the window.
    """
    if not limits.has_window:
        return now
    zone = ZoneInfo(limits.timezone)
    start = dt.time.fromisoformat(limits.window_start or "00:00")
    end = dt.time.fromisoformat(limits.window_end or "23:59")
    at = now.timestamp()
    today = now.astimezone(zone).date()
    for ahead in range(8):
        day = today + dt.timedelta(days=ahead)
        if limits.window_days and WINDOW_DAYS[day.weekday()] not in limits.window_days:
            continue
        if dt.datetime.combine(day, end, zone).timestamp() <= at:
            continue  # today's window has closed
        opens = dt.datetime.combine(day, start, zone)
        return now if opens.timestamp() <= at else opens
    # A window's days are a part of the week (checked when the definition is read), and its
    # start is before its end: some day of the next eight has it open.
    raise AssertionError(f"no send window in a week: {limits}")


def window_shut_until(limits: Limits, now: dt.datetime) -> str | None:
    """While the send window is shut: when it opens, as the command line says it
    ("mandag 30. november kl. 08.00 (Europe/Oslo)"); None while it is open."""
    from babel.dates import format_datetime

    opens = window_opens(limits, now)
    if opens <= now:
        return None
    when = format_datetime(opens, "EEEE d. MMMM 'kl.' HH.mm", locale="nb")
    return f"{when} ({limits.timezone})"
