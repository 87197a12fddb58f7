"""Is this message ours? Look a delivery up by its verification code or its unsubscribe token.

Both secrets are printed in one message only, so finding the delivery tells the reader which
campaign sent it and which businesses it was addressed to. Unsubscribing lives here too: it
acts on the delivery its token names.
"""

from __future__ import annotations

import contextlib
import functools
from dataclasses import dataclass
from enum import StrEnum

from varsel import codes
from varsel.campaign import CampaignSpec
from varsel.db import Database
from varsel.outbox import DeliveryState, record_event
from varsel.suppression import SuppressionKind, SuppressionReason, add

# A code counts as genuine once its message may have left: the relay accepted it, or the
# sender was handing it over (claimed, in doubt), or it was printed on a letter (produced,
# posted, returned). Queued, suppressed, cancelled and failed messages never reached anyone,
# so their codes are unknown to the public.
GENUINE_STATES = (
    DeliveryState.SENT,
    DeliveryState.IN_DOUBT,
    DeliveryState.CLAIMED,
    DeliveryState.PRODUCED,
    DeliveryState.POSTED,
    DeliveryState.RETURNED,
    DeliveryState.SUBMITTED,  # Altinn: the request went out; Altinn may have published it
    DeliveryState.DELIVERED,  # Altinn: in the organisation's inbox
)


class UnsubscribeScope(StrEnum):
    """What an unsubscribe covers."""

    ADDRESS = "address"  # this e-mail address, for every business that uses it
    ORGANISATION = "organisation"  # every business the message was addressed to, at any address


@dataclass(frozen=True)
class UnitName:
    """A business the message was addressed to."""

    orgnr: str
    name: str


@dataclass(frozen=True)
class Found:
    """A genuine delivery, with what the public may see about it."""

    delivery_id: int
    campaign_id: int
    campaign_name: str
    spec: CampaignSpec
    address: str
    sent_at: str | None  # ISO 8601 UTC; None if not sent yet
    units: tuple[UnitName, ...]


_SELECT = (
    "SELECT d.id, d.campaign_id, c.name, c.spec, d.address, "
    "coalesce(d.sent_at, d.data_started_at, d.updated_at) "
    "FROM deliveries d JOIN campaigns c ON c.id = d.campaign_id "
)


# Parsing a definition costs more than the rest of a lookup; the text is its own cache key, so
# a changed definition is parsed afresh.
_spec = functools.lru_cache(maxsize=64)(CampaignSpec.from_json)


def _found(db: Database, row: tuple[object, ...]) -> Found:
    delivery_id, campaign_id = int(str(row[0])), int(str(row[1]))
    units = tuple(
        UnitName(orgnr, name)
        for orgnr, name in db.query(
            "SELECT du.orgnr, coalesce(r.name, du.orgnr) FROM delivery_units du "
            "LEFT JOIN recipients r ON r.campaign_id = ? AND r.orgnr = du.orgnr "
            "WHERE du.delivery_id = ? ORDER BY du.orgnr",
            (campaign_id, delivery_id),
        )
    )
    return Found(
        delivery_id,
        campaign_id,
        str(row[2]),
        _spec(str(row[3])),
        str(row[4]),
        None if row[5] is None else str(row[5]),
        units,
    )


def lookup(db: Database, typed: str) -> Found | None:
    """The genuine delivery a typed code names, or None; records verify_ok or verify_unknown.

    Joins the caller's transaction when there is one.
    """
    found = by_code(db, typed)
    record_lookup(db, typed, found)
    return found


def record_lookup(db: Database, typed: str, found: Found | None) -> None:
    """Record one lookup of a typed code and what it found: verify_ok or verify_unknown."""
    with contextlib.nullcontext() if db.in_transaction else db.transaction():
        if found is None:
            # The typed text is not kept: a near miss of a real code would still be half of it.
            well_formed = codes.normalise(typed) is not None
            record_event(db, None, None, "verify_unknown", {"well_formed": well_formed})
        else:
            record_event(db, found.campaign_id, found.delivery_id, "verify_ok")


def by_code(db: Database, typed: str) -> Found | None:
    """The genuine delivery a code names, without recording a lookup (for forms that carry it)."""
    code = codes.normalise(typed)
    if code is None:
        return None
    marks = ", ".join("?" for _ in GENUINE_STATES)
    row = db.query_one(
        _SELECT + f"WHERE d.code = ? AND d.state IN ({marks})",
        (code, *(s.value for s in GENUINE_STATES)),
    )
    return None if row is None else _found(db, row)


def by_token(db: Database, token: str) -> Found | None:
    """The delivery an unsubscribe token names, whatever its state, or None."""
    if not token or len(token) > 64:
        return None
    row = db.query_one(_SELECT + "WHERE d.unsubscribe_token = ?", (token,))
    return None if row is None else _found(db, row)


def unsubscribe(
    db: Database, found: Found, scope: UnsubscribeScope, *, one_click: bool
) -> list[str]:
    """Stop every future campaign to the address or the businesses; returns what was added."""
    if scope is UnsubscribeScope.ADDRESS:
        targets = [(SuppressionKind.ADDRESS, found.address)]
    else:
        targets = [(SuppressionKind.UNIT, u.orgnr) for u in found.units]
    source = f"web:delivery:{found.delivery_id}"
    with db.transaction():
        added = [
            value
            for kind, value in targets
            if add(db, kind, value, SuppressionReason.UNSUBSCRIBED, source)
        ]
        record_event(
            db,
            found.campaign_id,
            found.delivery_id,
            "unsubscribed",
            {"scope": scope.value, "one_click": one_click, "added": len(added)},
        )
    return added
