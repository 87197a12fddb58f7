"""Sample recipients: the units a lint, a preview or the editor renders a campaign's messages for.

Taken from the campaign's own frozen recipients, so that what is checked and shown is what
would be sent; made-up ones where a language has too few.
"""

from __future__ import annotations

from collections.abc import Sequence

from varsel import codes
from varsel.db import Database
from varsel.message import Recipient, UnitRef
from varsel.municipality import name as municipality_name

SAMPLE_ADDRESS = "post@eksempel.example"  # RFC 2606: a domain that can never receive mail
# Made up, for a language no recipient has; the second has an "&" so escaping is exercised too.
FALLBACK_UNITS = (
    UnitRef("999999999", "EKSEMPEL AS", "Oslo"),
    UnitRef("888888888", "BRØDRENE HANSEN & SØNN AS", "Bergen"),
)


def sample_units(db: Database, campaign_id: int, language: str) -> tuple[UnitRef, UnitRef]:
    """Two different units of the campaign in this language, made-up ones where it has fewer."""
    # A name that cannot stand in a subject (an encoded word) is no sample: its message fails
    # on its own (unit_findings names it), and would hide how everyone else's looks.
    rows = db.query(
        "SELECT orgnr, name, municipality FROM recipients WHERE campaign_id = ? AND language = ? "
        "AND name NOT LIKE ? ORDER BY orgnr LIMIT 2",
        (campaign_id, language, "%=?%"),
    )
    units = [UnitRef(r[0], r[1], municipality_name(r[2]) if r[2] else None) for r in rows]
    for fallback in FALLBACK_UNITS:
        if len(units) < 2 and fallback.orgnr not in {u.orgnr for u in units}:
            units.append(fallback)
    return units[0], units[1]


def sample_code() -> str:
    """A fresh, valid verification code that belongs to no delivery."""
    canonical = codes.normalise(codes.new_code())
    assert canonical is not None  # noqa: S101  # new_code() always makes a valid code
    return codes.format_code(canonical)


def sample_recipient(units: Sequence[UnitRef], language: str, code: str, token: str) -> Recipient:
    """A made-up recipient of these units, at an address that can never receive mail."""
    return Recipient(0, SAMPLE_ADDRESS, tuple(units), language, code, token)
