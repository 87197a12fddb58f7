"""One registry unit: checks on a record, and the columns varsel keeps of it.

The store keeps the fields a selection or a letter needs as columns; the dump file itself,
identified by its hash, is the archive of record for everything else.
"""

from __future__ import annotations

import functools
import hashlib
import re
from collections.abc import Sequence
from typing import Any

from varsel import contacts, municipality
from varsel.digits import ascii_digits
from varsel.dump import Kind

# Columns of `units` filled from a record, in this order (bookkeeping columns follow).
RECORD_COLUMNS: tuple[str, ...] = (
    "orgnr",
    "kind",
    "parent_orgnr",
    "name",
    "form",
    "municipality",
    "postal_municipality",
    "country",
    "nace1",
    "nace2",
    "nace3",
    "employees",
    "has_employees",
    "sector",
    "bankrupt",
    "liquidating",
    "forced_dissolution",
    "deleted_date",
    "maalform",
    "addr_lines",
    "addr_postcode",
    "addr_city",
    "addr_country",
    "post_lines",
    "post_postcode",
    "post_city",
    "post_country",
    "post_countrycode",
    "email",
    "phone",
    "mobile",
    "website",
    "reach",
)
BOOKKEEPING_COLUMNS: tuple[str, ...] = (
    "record_hash",
    "snapshot_id",
    "record_index",
    "first_snapshot_id",
    "gone_snapshot_id",
    "updated_at",
)
UNIT_COLUMNS = RECORD_COLUMNS + BOOKKEEPING_COLUMNS
# The columns record_hash covers: all but reach, which follows from e-mail, phone and mobile.
HASHED_COLUMNS: tuple[str, ...] = tuple(c for c in RECORD_COLUMNS if c != "reach")
COL = {name: i for i, name in enumerate(UNIT_COLUMNS)}

CONTACT_COLUMNS = ("orgnr", "address", "source", "usable", "reason", "domain", "role", "personal")

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u200b-\u200f\u2028\u2029\ufeff]")
_SPACES = re.compile(r"[ \t\u00a0]{2,}|\u00a0")

PERSONAL_FORMS = frozenset({"ENK"})  # sole proprietorships: the unit is a person


class Rejected(Exception):
    """A record varsel cannot use; the message says why (Norwegian, one line)."""


def valid_orgnr(number: str) -> bool:
    """True when number is nine digits with a correct MOD11 check digit."""
    if len(number) != 9 or not ascii_digits(number):
        return False
    d = number.encode()
    total = (
        3 * d[0]
        + 2 * d[1]
        + 7 * d[2]
        + 6 * d[3]
        + 5 * d[4]
        + 4 * d[5]
        + 3 * d[6]
        + 2 * d[7]
        - 32 * 48  # the weights add up to 32; subtract the ASCII offset of every digit at once
    )
    check = (11 - total % 11) % 11
    return check != 10 and check == d[8] - 48


def format_orgnr(orgnr: str) -> str:
    """An organisation number as people write it, in groups of three: 974 760 673."""
    return f"{orgnr[:3]} {orgnr[3:6]} {orgnr[6:]}" if len(orgnr) == 9 else orgnr


def clean_text(value: Any) -> str | None:
    """Text without control characters, runs of spaces, or surrounding space; None if empty."""
    if value is None:
        return None
    text = value if isinstance(value, str) else str(value)
    if not text.isprintable():
        text = _CONTROL.sub(" ", text)
    if "  " in text or "\u00a0" in text or "\t" in text:
        text = _SPACES.sub(" ", text)
    text = text.strip()
    return text or None


def _lines(address: dict[str, Any]) -> str | None:
    raw = address.get("adresse")
    if not raw:
        return None
    if isinstance(raw, str):
        raw = raw.split("\n")
    lines = [c for c in (clean_text(x) for x in raw) if c]
    return "\n".join(lines) or None


def _as_text(value: Any) -> str | None:
    """A value the registry writes as text; a number there ("kommunenummer": 301) as its text."""
    return value if value is None or isinstance(value, str) else str(value)


@functools.lru_cache(maxsize=4096)
def _current_municipality(number: str) -> str:
    return municipality.current_number(number) or number


def _code(record: dict[str, Any], key: str) -> str | None:
    value = record.get(key)
    if isinstance(value, dict):
        code = value.get("kode")
        return str(code).strip() or None if code is not None else None
    return None


def extract(
    record: dict[str, Any], kind: Kind
) -> tuple[tuple[Any, ...], tuple[contacts.Address, ...]]:
    """The unit's columns (RECORD_COLUMNS) and its registry e-mail addresses; raises Rejected."""
    if "_csv_error" in record:
        raise Rejected(record["_csv_error"])
    orgnr = record.get("organisasjonsnummer")
    if not isinstance(orgnr, str):
        raise Rejected("mangler organisasjonsnummer")
    orgnr = orgnr.strip()
    if not valid_orgnr(orgnr):
        raise Rejected(f"ugyldig organisasjonsnummer {orgnr!r} (kontrollsiffer)")
    name = clean_text(record.get("navn"))
    if name is None:
        raise Rejected("mangler navn")
    form = _code(record, "organisasjonsform")
    if form is None:
        raise Rejected("mangler organisasjonsform")
    is_sub = (
        record.get("beliggenhetsadresse") is not None  # JSON null is no address, as missing
        or form in ("BEDR", "AAFY")
        or (record.get("respons_klasse") == "Underenhet")
    )
    if is_sub != (kind is Kind.UNDERENHETER):
        what = "en underenhet" if is_sub else "en hovedenhet"
        raise Rejected(f"posten er {what}, men filen inneholder {kind.value}")

    business = record.get("beliggenhetsadresse" if is_sub else "forretningsadresse") or {}
    postal = record.get("postadresse") or {}
    if not isinstance(business, dict) or not isinstance(postal, dict):
        raise Rejected("adressen har feil form")
    kommune = _as_text(business.get("kommunenummer"))
    post_kommune = _as_text(postal.get("kommunenummer"))

    employees = record.get("antallAnsatte")
    if employees is not None:
        try:
            employees = int(employees)
        except (TypeError, ValueError):
            raise Rejected(f"antallAnsatte er ikke et tall: {employees!r}") from None
        if employees < 0:
            raise Rejected(f"antallAnsatte er negativt: {employees}")
    has_employees = bool(record.get("harRegistrertAntallAnsatte")) or bool(employees)

    email = clean_text(record.get("epostadresse"))
    phone = clean_text(record.get("telefon"))
    mobile = clean_text(record.get("mobil"))
    addresses = contacts.parse_addresses(email) if email else ()
    if any(a.usable for a in addresses):
        reach = "email"
    elif phone or mobile:
        reach = "phone_only"
    else:
        reach = "postal_only"

    parent = record.get("overordnetEnhet")
    values = (
        orgnr,
        "underenhet" if is_sub else "enhet",
        parent.strip() if isinstance(parent, str) else None,
        name,
        form,
        _current_municipality(kommune) if kommune else None,
        _current_municipality(post_kommune) if post_kommune else None,
        business.get("landkode"),
        _code(record, "naeringskode1"),
        _code(record, "naeringskode2"),
        _code(record, "naeringskode3"),
        employees,
        has_employees,
        _code(record, "institusjonellSektorkode"),
        bool(record.get("konkurs")),
        bool(record.get("underAvvikling")),
        bool(record.get("underTvangsavviklingEllerTvangsopplosning")),
        record.get("slettedato") or record.get("nedleggelsesdato"),
        record.get("maalform"),
        _lines(business),
        clean_text(business.get("postnummer")),
        clean_text(business.get("poststed")),
        clean_text(business.get("land")),
        _lines(postal),
        clean_text(postal.get("postnummer")),
        clean_text(postal.get("poststed")),
        clean_text(postal.get("land")),
        postal.get("landkode"),
        email,
        phone,
        mobile,
        clean_text(record.get("hjemmeside")),
        reach,
    )
    return values, addresses


def record_hash(values: Sequence[Any]) -> int:
    """A stable 63-bit hash of a unit's kept columns: equal hashes, nothing varsel keeps changed.

    Each value is written unambiguously (N: null, T/F: booleans, I<n>; integers, S<bytes>:<text>
    strings) and the first 8 bytes of the MD5 of that text are taken, shifted to stay positive.
    registry_fast computes the same in DuckDB SQL for the JSON dumps, so the definition must
    stay simple enough to write in SQL; test_registry_fast checks that the two agree.
    """
    parts: list[str] = []
    for value in values[: len(HASHED_COLUMNS)]:
        if value is None:
            parts.append("N")
        elif value is True or value is False:
            parts.append("T" if value else "F")
        elif isinstance(value, int):
            parts.append(f"I{value};")
        else:
            text = str(value)
            parts.append(f"S{len(text.encode('utf-8', 'surrogatepass'))}:{text}")
    data = "".join(parts).encode("utf-8", "surrogatepass")
    digest = hashlib.md5(data, usedforsecurity=False).digest()
    return int.from_bytes(digest[:8], "big") >> 1


def contact_rows(
    orgnr: str, form: str, addresses: Sequence[contacts.Address]
) -> list[tuple[Any, ...]]:
    """Rows for the contacts table (CONTACT_COLUMNS) from a unit's registry addresses."""
    personal = form in PERSONAL_FORMS
    return [
        (
            orgnr,
            a.address,
            "registry",
            a.usable,
            a.reason.value if a.reason else None,
            a.domain,
            a.role,
            personal,
        )
        for a in addresses
    ]


def to_record(row: Sequence[Any]) -> dict[str, Any]:
    """The JSON-shaped record (the fields varsel keeps) of a units row; inverse of extract."""
    is_sub = row[COL["kind"]] == "underenhet"

    def address(
        lines: str | None,
        postcode: str | None,
        city: str | None,
        country: str | None,
        countrycode: str | None,
        kommune: str | None,
    ) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if lines:
            out["adresse"] = lines.split("\n")
        for key, value in (
            ("postnummer", postcode),
            ("poststed", city),
            ("land", country),
            ("landkode", countrycode),
            ("kommunenummer", kommune),
        ):
            if value:
                out[key] = value
        return out

    record: dict[str, Any] = {
        "organisasjonsnummer": row[COL["orgnr"]],
        "navn": row[COL["name"]],
        "organisasjonsform": {"kode": row[COL["form"]]},
        "harRegistrertAntallAnsatte": bool(row[COL["has_employees"]]),
        "konkurs": bool(row[COL["bankrupt"]]),
        "underAvvikling": bool(row[COL["liquidating"]]),
        "underTvangsavviklingEllerTvangsopplosning": bool(row[COL["forced_dissolution"]]),
        "respons_klasse": "Underenhet" if is_sub else "Enhet",
    }
    business = address(
        row[COL["addr_lines"]],
        row[COL["addr_postcode"]],
        row[COL["addr_city"]],
        row[COL["addr_country"]],
        row[COL["country"]],
        row[COL["municipality"]],
    )
    if business:
        record["beliggenhetsadresse" if is_sub else "forretningsadresse"] = business
    postal = address(
        row[COL["post_lines"]],
        row[COL["post_postcode"]],
        row[COL["post_city"]],
        row[COL["post_country"]],
        row[COL["post_countrycode"]],
        row[COL["postal_municipality"]],
    )
    if postal:
        record["postadresse"] = postal
    for key, col in (
        ("naeringskode1", "nace1"),
        ("naeringskode2", "nace2"),
        ("naeringskode3", "nace3"),
        ("institusjonellSektorkode", "sector"),
    ):
        if row[COL[col]]:
            record[key] = {"kode": row[COL[col]]}
    for key, col in (
        ("overordnetEnhet", "parent_orgnr"),
        ("antallAnsatte", "employees"),
        ("maalform", "maalform"),
        ("epostadresse", "email"),
        ("telefon", "phone"),
        ("mobil", "mobile"),
        ("hjemmeside", "website"),
    ):
        if row[COL[col]] is not None:
            record[key] = row[COL[col]]
    if row[COL["deleted_date"]]:
        record["nedleggelsesdato" if is_sub else "slettedato"] = row[COL["deleted_date"]]
    return record
