"""Addresses and units that must not be contacted: unsubscribed, bounced, complained."""

from __future__ import annotations

from collections.abc import Iterable
from enum import StrEnum

from varsel.clock import utcnow_iso
from varsel.db import Database


class SuppressionKind(StrEnum):
    """What a suppression applies to."""

    ADDRESS = "address"  # one e-mail address, for every unit that uses it
    UNIT = "unit"  # one organisation (orgnr), at every address


class SuppressionReason(StrEnum):
    """Why it must not be contacted."""

    UNSUBSCRIBED = "unsubscribed"  # the recipient asked to stop
    HARD_BOUNCE = "hard_bounce"  # the address does not exist
    COMPLAINT = "complaint"  # the recipient reported the message as spam
    MANUAL = "manual"  # an operator added it


def add(
    db: Database,
    kind: SuppressionKind,
    value: str,
    reason: SuppressionReason,
    source: str | None = None,
) -> bool:
    """Suppress an address or unit (within the caller's transaction); False if it already was."""
    existing = db.query_one(
        "SELECT 1 FROM suppressions WHERE kind = ? AND value = ?", (kind.value, value)
    )
    if existing:
        return False
    db.execute(
        "INSERT INTO suppressions (kind, value, reason, source, created_at) VALUES (?, ?, ?, ?, ?)",
        (kind.value, value, reason.value, source, utcnow_iso()),
    )
    return True


def suppressed(db: Database, kind: SuppressionKind, values: Iterable[str]) -> set[str]:
    """The values of the given kind that are suppressed."""
    items = list(dict.fromkeys(values))
    found: set[str] = set()
    for start in range(0, len(items), 500):
        chunk = items[start : start + 500]
        found |= {
            r[0]
            for r in db.query(
                "SELECT value FROM suppressions WHERE kind = ? AND value IN "
                f"({', '.join('?' for _ in chunk)})",
                [kind.value, *chunk],
            )
        }
    return found
