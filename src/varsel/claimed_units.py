"""The units a claimed delivery's message names, read from the store: one query, two callers.

The sender reads them after each claim (outbox.with_units), or, when its own loop is what
limits an unsigned send, leaves the read to the build workers (builder), which open the SQLite
file read-only. This module needs nothing but the standard library, so that a build worker
starts without the store's modules (psycopg among them).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

# A claimed delivery's unit as a message names it: orgnr, name (the orgnr if the campaign's
# recipients do not hold it), municipality number or None, and whether it is suppressed.
UnitToSend = tuple[str, str, str | None, bool]
# A unit as the message needs it: orgnr, name, municipality number or None.
UnitToName = tuple[str, str, str | None]

# suppression.SuppressionKind.UNIT, spelled out here so that a build worker need not import the
# store's modules (tests/test_claimed_units.py checks that they agree).
UNIT_KIND = "unit"
CHUNK = 500  # ids a query: well under SQLite's limit on parameters

Query = Callable[[str, Sequence[Any]], Iterable[Sequence[Any]]]


def read(query: Query, campaign_id: int, ids: Sequence[int]) -> dict[int, list[UnitToSend]]:
    """Each delivery's units (by orgnr), their names and whether each is suppressed now.

    A delivery's units and their names do not change once the campaign is created, and the
    suppressions read now are as current as any: so the read needs no transaction of its own.
    """
    units: dict[int, list[UnitToSend]] = {int(i): [] for i in ids}
    for start in range(0, len(ids), CHUNK):
        chunk = list(ids[start : start + CHUNK])
        rows = query(
            "SELECT u.delivery_id, u.orgnr, r.name, r.municipality, EXISTS (SELECT 1 FROM "
            "suppressions s WHERE s.kind = ? AND s.value = u.orgnr) FROM delivery_units "
            "u LEFT JOIN recipients r ON r.campaign_id = ? AND r.orgnr = u.orgnr WHERE "
            f"u.delivery_id IN ({', '.join('?' for _ in chunk)}) "
            "ORDER BY u.delivery_id, u.orgnr",
            [UNIT_KIND, campaign_id, *chunk],
        )
        for delivery_id, orgnr, name, municipality, blocked in rows:
            units[int(delivery_id)].append(
                (orgnr, name or orgnr, municipality or None, bool(blocked))
            )
    return units


def to_name(units: Iterable[UnitToSend]) -> tuple[UnitToName, ...]:
    """The units a message names: those not suppressed. None left: nothing is to be sent."""
    return tuple((orgnr, name, mun) for orgnr, name, mun, blocked in units if not blocked)
