"""Is this message ours? Look a delivery up by its verification code or its unsubscribe token.

Both secrets are printed in one message only, so finding the delivery tells the reader which
campaign sent it and which businesses it was addressed to. Unsubscribing lives here too: it
acts on the delivery its token names.
"""

from __future__ import annotations

import contextlib
import functools
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from varsel import codes
from varsel.campaign import CampaignSpec
from varsel.clock import utcnow_iso
from varsel.db import Database, Row
from varsel.erasure import is_stand_in
from varsel.outbox import DeliveryState, record_event
from varsel.suppression import SuppressionKind, SuppressionReason, add

# A code counts as genuine once its message may have left: the relay accepted it (sent, and
# bounced: a bounce or a spam complaint comes after the message left, and whoever holds it
# must be told it is ours), or the sender was handing it over (claimed, in doubt), or it was
# printed on a letter (produced, posted, returned). Queued, suppressed, cancelled and failed
# messages never reached anyone, so their codes are unknown to the public.
GENUINE_STATES = (
    DeliveryState.SENT,
    DeliveryState.BOUNCED,
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
    code: str  # the verification code as the message prints it: XXXX-XXXX-XXXX
    channel: str = "email"  # deliveries.channel: email, letter or altinn
    language: str = "nb"  # the language the message was sent in: nb, nn or en


_SELECT = (
    "SELECT d.id, d.campaign_id, c.name, c.spec, d.address, "
    "coalesce(d.sent_at, d.data_started_at, d.updated_at), d.code, d.channel, d.language "
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
        _printed(str(row[6])),
        str(row[7]),
        str(row[8]),
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
    record_lookups(db, [(typed, found)])


def record_lookups(db: Database, lookups: Sequence[tuple[str, Found | None]]) -> None:
    """Record lookups of typed codes and what each found, in one statement."""
    if not lookups:
        return
    at = utcnow_iso()
    values: list[object] = []
    for typed, found in lookups:
        if found is None:
            # The typed text is not kept: a near miss of a real code would still be half of it.
            well_formed = codes.normalise(typed) is not None
            values += (at, None, None, "verify_unknown", _WELL_FORMED[well_formed])
        else:
            values += (at, found.campaign_id, found.delivery_id, "verify_ok", None)
    # One statement with a row per lookup: on PostgreSQL, executemany would bind each apart.
    with contextlib.nullcontext() if db.in_transaction else db.transaction():
        db.execute(_insert_events(len(lookups)), values, prepare=True)


@functools.cache
def _insert_events(rows: int) -> str:
    values = ", ".join("(?, ?, ?, ?, ?)" for _ in range(rows))
    return f"INSERT INTO events (at, campaign_id, delivery_id, kind, detail) VALUES {values}"


# The detail record_event would write for an unknown code.
_WELL_FORMED = {w: json.dumps({"well_formed": w}) for w in (True, False)}


def by_code(db: Database, typed: str) -> Found | None:
    """The genuine delivery a code names, without recording a lookup (for forms that carry it)."""
    return by_codes(db, [typed])[0]


# A delivery, its campaign's name and version, and its businesses in one query: a row per
# business (a message names one or a few). The campaign's definition is not read here (see
# _spec_of); its updated_at lies past the ~20 kB definition in the row, but SQLite keeps the
# overflow pages' numbers of the row its cursor is on, so the codes of one campaign step
# through them cheaply: one statement costs less than asking for the campaigns apart.
_BY_CODES = (
    "SELECT d.code, d.id, d.campaign_id, d.address, "
    "coalesce(d.sent_at, d.data_started_at, d.updated_at), du.orgnr, coalesce(r.name, du.orgnr), "
    "c.name, c.updated_at, d.channel, d.language "
    "FROM deliveries d JOIN campaigns c ON c.id = d.campaign_id "
    "LEFT JOIN delivery_units du ON du.delivery_id = d.id "
    "LEFT JOIN recipients r ON r.campaign_id = d.campaign_id AND r.orgnr = du.orgnr "
    "WHERE d.code IN ({marks}) AND d.state IN ("
    + ", ".join(f"'{s.value}'" for s in GENUINE_STATES)
    + ")"
)

# Definitions by (campaign, updated_at): every change of a campaign sets its updated_at, so a
# definition is fetched and parsed once per version, not per lookup.
_specs: dict[tuple[int, str], CampaignSpec] = {}
_SPECS_MAX = 256


def _spec_of(db: Database, campaign_id: int, updated_at: str) -> CampaignSpec:
    spec = _specs.get((campaign_id, updated_at))
    if spec is None:
        spec = _spec(str(db.scalar("SELECT spec FROM campaigns WHERE id = ?", (campaign_id,))))
        if len(_specs) >= _SPECS_MAX:
            _specs.clear()
        # The store may have moved on between the two reads (PostgreSQL reads each statement
        # afresh): then this is a newer version, held under the older key until the next
        # lookup sees the new one.
        _specs[(campaign_id, updated_at)] = spec
    return spec


def by_codes(db: Database, typed: Sequence[str]) -> list[Found | None]:
    """by_code() for each of several typed codes, in one query."""
    return find(db, typed).result()


def find(db: Database, typed: Sequence[str]) -> Finding:
    """Start looking codes up: the query is sent, Finding.result() reads the answers.

    So a caller can send other statements before waiting (on PostgreSQL, in one round trip).
    """
    canonical = [codes.normalise(t) for t in typed]
    wanted = sorted({c for c in canonical if c is not None})
    if not wanted:
        return Finding(db, canonical, None)
    return Finding(db, canonical, db.execute(_find_sql(len(wanted)), wanted, prepare=True))


@functools.cache
def _find_sql(codes_wanted: int) -> str:
    return _BY_CODES.format(marks=", ".join("?" for _ in range(codes_wanted)))


@dataclass
class Finding:
    """Codes whose query is on its way to the store (see find())."""

    db: Database
    canonical: list[str | None]  # each typed code in canonical form, None if not a code
    deliveries: Any  # the query's cursor, None when no typed text was a code

    def result(self) -> list[Found | None]:
        """The genuine delivery of each typed code, or None."""
        if self.deliveries is None:
            return [None] * len(self.canonical)
        # A row per business the message was addressed to (one, or a few), in code order.
        rows: dict[str, list[Row]] = {}
        for row in self.deliveries.fetchall():
            these = rows.get(row[0])
            if these is None:
                rows[row[0]] = [row]
            else:
                these.append(row)
        specs: dict[int, tuple[str, CampaignSpec]] = {}
        for these in rows.values():
            campaign_id = these[0][2]
            if campaign_id not in specs:
                name, updated_at = these[0][7:9]
                specs[campaign_id] = (name, _spec_of(self.db, campaign_id, updated_at))
        found = {code: _found_rows(these, specs) for code, these in rows.items()}
        return [None if c is None else found.get(c) for c in self.canonical]


def _found_rows(rows: list[Row], campaigns: dict[int, tuple[str, CampaignSpec]]) -> Found:
    code, delivery_id, campaign_id, address, sent_at = rows[0][:5]
    channel, language = rows[0][9:11]
    name, spec = campaigns[campaign_id]
    units: tuple[UnitName, ...]
    if len(rows) == 1:
        orgnr = rows[0][5]
        units = () if orgnr is None else (UnitName(orgnr, rows[0][6]),)
    else:
        units = tuple(
            UnitName(o, n) for o, n in sorted((r[5], r[6]) for r in rows if r[5] is not None)
        )
    return Found(
        delivery_id,
        campaign_id,
        name,
        spec,
        address,
        sent_at,
        units,
        _printed(code),
        channel,
        language,
    )


def _printed(canonical: str) -> str:
    # codes.format_code, without checking again a code the store holds in canonical form.
    return f"{canonical[:4]}-{canonical[4:8]}-{canonical[8:]}"


# An unsubscribe token is made by secrets.token_urlsafe, and message.py prints none but URL
# characters that need no escaping: anything else names no delivery and is not sent to the
# store (PostgreSQL answers text with a NUL in it with an error, not a miss).
_TOKEN = re.compile(r"[A-Za-z0-9._~-]{1,64}")


def by_token(db: Database, token: str) -> Found | None:
    """The delivery an unsubscribe token names, whatever its state, or None."""
    if not _TOKEN.fullmatch(token):
        return None
    row = db.query_one(_SELECT + "WHERE d.unsubscribe_token = ?", (token,))
    return None if row is None else _found(db, row)


def unsubscribe(
    db: Database, found: Found, scope: UnsubscribeScope, *, one_click: bool, via: str = "web"
) -> list[str]:
    """Stop every future campaign to the address or the businesses; returns what was added.

    An erased address (see unsubscribe_scope) stops the businesses instead. `via` says how it
    was asked: "web" (the page, or one-click), or "mail" (the List-Unsubscribe mailto).
    """
    scope = unsubscribe_scope(found, scope)
    if scope is UnsubscribeScope.ADDRESS:
        targets = [(SuppressionKind.ADDRESS, found.address)]
    else:
        # An erased business's stand-in is no number: there is nothing to stop for it.
        targets = [(SuppressionKind.UNIT, u.orgnr) for u in found.units if not is_stand_in(u.orgnr)]
    source = f"{via}:delivery:{found.delivery_id}"
    with db.transaction():
        added = [
            value
            for kind, value in targets
            if add(db, kind, value, SuppressionReason.UNSUBSCRIBED, source)
        ]
        detail: dict[str, object] = {
            "scope": scope.value,
            "one_click": one_click,
            "added": len(added),
        }
        if via != "web":
            detail["via"] = via
        record_event(db, found.campaign_id, found.delivery_id, "unsubscribed", detail)
    return added


def unsubscribe_scope(found: Found, asked: UnsubscribeScope) -> UnsubscribeScope:
    """What an unsubscribe covers: the businesses when the address is erased (a forgotten
    campaign's, or an erased business's), since no address is left to stop."""
    if asked is UnsubscribeScope.ADDRESS and is_stand_in(found.address):
        return UnsubscribeScope.ORGANISATION
    return asked
