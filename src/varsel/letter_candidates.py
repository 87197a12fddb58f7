"""Who of a campaign's recipients needs a letter, and where it goes, or why it cannot go.

A unit needs a letter when e-mail did not reach it (bounces.units_needing_another_channel's
rule). Its address is the registry's postal address if usable, else its business address,
else an active sub-unit's; a unit with none of these is unreachable, and says why.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from varsel.db import Database
from varsel.errors import N_
from varsel.letter_render import PostalAddress
from varsel.message_fields import clean_text
from varsel.outbox import DeliveryState
from varsel.suppression import SuppressionKind


class Unreachable(StrEnum):
    """Why a unit that needs a letter cannot get one."""

    NO_ADDRESS = "no_postal_address"  # neither a postal nor a business address, nor a sub-unit's
    INCOMPLETE = "incomplete_address"  # a Norwegian address without a valid postcode and city
    NOT_IN_REGISTRY = "not_in_registry"  # erased or gone from the registry since the freeze
    TOO_LONG = "address_too_long"  # name and address do not fit the envelope window


UNREACHABLE_TEXT = {
    Unreachable.NO_ADDRESS: N_("ingen postadresse eller forretningsadresse i registeret"),
    Unreachable.INCOMPLETE: N_("adressen mangler gyldig postnummer eller poststed"),
    Unreachable.NOT_IN_REGISTRY: N_("enheten er ikke lenger i registeret"),
    Unreachable.TOO_LONG: N_("adressen får ikke plass i konvoluttvinduet"),
}

_POSTCODE = re.compile(r"\d{4}\Z")


@dataclass(frozen=True)
class Candidate:
    """A recipient e-mail did not reach, with where a letter to it would go."""

    orgnr: str
    name: str
    language: str
    reason: str  # no_email | bounced
    address: PostalAddress | None
    unreachable: Unreachable | None
    suppressed: bool  # the organisation asked not to be contacted
    letter_id: int | None  # its letter delivery, if one was made before
    letter_state: DeliveryState | None
    letter_code: str | None
    letter_reply: str | None = None  # why its letter could not be made, if it failed


def _lines(text: str | None) -> tuple[str, ...]:
    return tuple(line for line in (clean_text(x) for x in (text or "").split("\n")) if line)


def choose_address(
    lines: str | None,
    postcode: str | None,
    city: str | None,
    country: str | None,
    countrycode: str | None,
) -> tuple[PostalAddress | None, Unreachable | None]:
    """A postal address from one of the registry's address groups, or why it will not do."""
    street = _lines(lines)
    code = clean_text(postcode or "")
    place = clean_text(city or "")
    if not street and not code and not place:
        return None, Unreachable.NO_ADDRESS
    if countrycode in (None, "", "NO"):
        if not _POSTCODE.match(code) or not place:
            return None, Unreachable.INCOMPLETE
        return PostalAddress(street, code, place, None), None
    name = clean_text(country or "") or countrycode or ""
    if not (street or place) or not name:
        return None, Unreachable.INCOMPLETE
    return PostalAddress(street, code, place, name), None


def unit_address(row: Sequence[Any]) -> tuple[PostalAddress | None, Unreachable | None]:
    """The postal address (post_*) if the registry has a usable one, else the business address.

    row: post_lines, post_postcode, post_city, post_country, post_countrycode,
    addr_lines, addr_postcode, addr_city, addr_country, country (the business address's code).
    """
    postal, why_postal = choose_address(*row[0:5])
    if postal is not None:
        return postal, None
    business, why_business = choose_address(*row[5:10])
    if business is not None:
        return business, None
    if Unreachable.INCOMPLETE in (why_postal, why_business):
        return None, Unreachable.INCOMPLETE
    return None, Unreachable.NO_ADDRESS


_ADDRESS_COLUMNS = (
    "post_lines, post_postcode, post_city, post_country, post_countrycode, "
    "addr_lines, addr_postcode, addr_city, addr_country, country"
)


def candidates(db: Database, campaign_id: int) -> list[Candidate]:
    """Every recipient of the campaign that e-mail did not reach, by orgnr.

    Who that is, is bounces.units_needing_another_channel's rule: no e-mail delivery at all,
    or every one hard-bounced, refused for good, or suppressed for an earlier hard bounce.
    """
    from varsel.bounces import units_needing_another_channel

    needing = set(units_needing_another_channel(db, campaign_id))
    rows = db.query(
        "SELECT r.orgnr, r.name, r.language, u.orgnr, u.gone_snapshot_id, "
        + ", ".join(f"u.{c.strip()}" for c in _ADDRESS_COLUMNS.split(","))
        + ", l.id, l.state, l.code, l.last_reply, "
        "CASE WHEN s.value IS NULL THEN 0 ELSE 1 END, "
        # CROSS JOIN keeps SQLite on the unit's own deliveries (delivery_units by orgnr, then
        # each delivery by id), not every e-mail of the campaign for each unit.
        "CASE WHEN EXISTS (SELECT 1 FROM delivery_units du CROSS JOIN deliveries d "
        "WHERE d.id = du.delivery_id AND du.orgnr = r.orgnr AND d.campaign_id = r.campaign_id "
        "AND d.channel = 'email') THEN 1 ELSE 0 END "
        "FROM recipients r LEFT JOIN units u ON u.orgnr = r.orgnr "
        "LEFT JOIN deliveries l ON l.campaign_id = r.campaign_id AND l.channel = 'letter' "
        "AND l.key = r.orgnr "
        "LEFT JOIN suppressions s ON s.kind = ? AND s.value = r.orgnr "
        "WHERE r.campaign_id = ? ORDER BY r.orgnr",
        (SuppressionKind.UNIT.value, campaign_id),
    )
    out: list[Candidate] = []
    homeless: list[str] = []
    for row in rows:
        orgnr, name, language, present, gone = row[0:5]
        if orgnr not in needing:
            continue
        address: PostalAddress | None
        why: Unreachable | None
        if present is None or gone is not None:
            address, why = None, Unreachable.NOT_IN_REGISTRY
        else:
            address, why = unit_address(row[5:15])
            if why is Unreachable.NO_ADDRESS:
                homeless.append(orgnr)
        out.append(
            Candidate(
                orgnr=orgnr,
                name=name,
                language=language,
                reason="bounced" if row[20] else "no_email",
                address=address,
                unreachable=why,
                suppressed=bool(row[19]),
                letter_id=None if row[15] is None else int(row[15]),
                letter_state=None if row[16] is None else DeliveryState(row[16]),
                letter_code=row[17],
                letter_reply=row[18],
            )
        )
    if homeless:
        found = _sub_unit_addresses(db, homeless)
        out = [
            dataclasses.replace(c, address=found[c.orgnr], unreachable=None)
            if c.orgnr in found
            else c
            for c in out
        ]
    return out


def _sub_unit_addresses(db: Database, orgnrs: Sequence[str]) -> dict[str, PostalAddress]:
    """For units with no address of their own: the address of an active sub-unit (lowest orgnr).

    The letter is addressed to the unit by name, so it reaches the business at its branch.
    """
    found: dict[str, PostalAddress] = {}
    for start in range(0, len(orgnrs), 500):
        chunk = orgnrs[start : start + 500]
        rows = db.query(
            f"SELECT parent_orgnr, {_ADDRESS_COLUMNS} FROM units WHERE kind = 'underenhet' "
            "AND gone_snapshot_id IS NULL AND deleted_date IS NULL AND parent_orgnr IN "
            f"({', '.join('?' for _ in chunk)}) ORDER BY parent_orgnr, orgnr",
            chunk,
        )
        for row in rows:
            if row[0] in found:
                continue
            address, _ = unit_address(row[1:])
            if address is not None:
                found[row[0]] = address
    return found
