"""Addresses and units that must not be contacted: unsubscribed, bounced, complained."""

from __future__ import annotations

import unicodedata
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from enum import StrEnum

from varsel import audit, contacts
from varsel.clock import utcnow_iso
from varsel.db import Database, Row
from varsel.digits import ascii_digits
from varsel.errors import N_, Text, UserError
from varsel.segment import u_label
from varsel.unit import valid_orgnr


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


# What an operator reads for each reason (the command line's list).
REASON_LABELS = {  # Bokmål; marked for the catalogs, which give the console nn and en
    SuppressionReason.UNSUBSCRIBED: N_("avmeldt"),
    SuppressionReason.HARD_BOUNCE: N_("adressen finnes ikke"),
    SuppressionReason.COMPLAINT: N_("klage (spam)"),
    SuppressionReason.MANUAL: N_("lagt inn av operatør"),
}

# Where an entry added by hand came from (add_manual's source), for the list's "Kilde" column;
# an entry from before the note had a column of its own says only that an operator added it.
SOURCE_LABELS = {  # Bokmål; marked for the catalogs, which give the console nn and en
    "cli": N_("kommandolinjen"),
    "console": N_("konsollen"),
    "operator": N_("operatør"),
}
# An entry varsel made itself names the delivery it came from (`delivery:ID` for a bounce,
# `web:delivery:ID` and `mail:delivery:ID` for an unsubscribe), and only the kind once the
# delivery's contact data is erased (erasure.erase_deliveries): (without the id, with it).
_DELIVERY_SOURCES = {
    "delivery": (
        N_("retur fra e-posttjenesten"),
        N_("retur fra e-posttjenesten (levering %(id)s)"),
    ),
    "web:delivery": (
        N_("avmelding på nettsiden"),
        N_("avmelding på nettsiden (levering %(id)s)"),
    ),
    "mail:delivery": (
        N_("avmelding per e-post"),
        N_("avmelding per e-post (levering %(id)s)"),
    ),
}


def source_text(source: str | None) -> str:
    """Where an entry came from, for the list's «Kilde» column: a Text (Bokmål, translated by
    the console) for the sources varsel writes; any other source as it is stored."""
    if not source:
        return ""
    if source in SOURCE_LABELS:
        return Text(SOURCE_LABELS[source])
    if source in _DELIVERY_SOURCES:
        return Text(_DELIVERY_SOURCES[source][0])
    named = _named_delivery(source)
    if named is not None:
        kind, number = named
        return Text(_DELIVERY_SOURCES[kind][1], id=number)
    return source


def _named_delivery(source: str) -> tuple[str, str] | None:
    """(kind, delivery id) of a source that names its delivery (`web:delivery:17`), or None."""
    kind, _, number = source.rpartition(":")
    named = kind in _DELIVERY_SOURCES and ascii_digits(number)
    return (kind, number) if named else None


def unlink_deliveries(db: Database, delivery_ids: Iterable[int]) -> int:
    """Entries that name one of these deliveries keep their value but only the kind of source.

    The entry must go on being honoured; the delivery it named leads to the business, so the
    link goes when the delivery's contact data is erased. Returns how many entries changed.
    """
    wanted = {str(d) for d in delivery_ids}
    if not wanted:
        return 0
    changed = []
    for kind, value, source in db.query(
        "SELECT kind, value, source FROM suppressions WHERE source LIKE '%delivery:%'"
    ):
        named = _named_delivery(str(source))
        if named is not None and named[1] in wanted:
            changed.append((named[0], kind, value))
    db.executemany("UPDATE suppressions SET source = ? WHERE kind = ? AND value = ?", changed)
    return len(changed)


def forget_notes(db: Database, addresses: Iterable[str], mentions: Callable[[str], bool]) -> int:
    """Operators' notes that may name an erased unit go; the entries stay (they must go on
    being honoured): the note of an address entry for one of `addresses` (the unit's own), and
    any note `mentions` finds the unit in. Returns how many notes went."""
    own = set(addresses)
    forgotten = [
        (kind, value)
        for kind, value, note in db.query(
            "SELECT kind, value, note FROM suppressions WHERE note IS NOT NULL"
        )
        if (kind == SuppressionKind.ADDRESS.value and value in own) or mentions(str(note))
    ]
    db.executemany("UPDATE suppressions SET note = NULL WHERE kind = ? AND value = ?", forgotten)
    return len(forgotten)


class SuppressionError(UserError):
    """The suppression list cannot be changed as asked."""


@dataclass(frozen=True)
class Entry:
    """One address or unit on the suppression list."""

    kind: SuppressionKind
    value: str  # normalised e-mail address, or organisation number
    reason: SuppressionReason
    source: str | None  # what put it there: web:delivery:ID, mail:delivery:ID, cli, console
    created_at: str  # UTC, as the store keeps time
    note: str | None = None  # an operator's note on an entry added by hand

    def as_dict(self) -> dict[str, str | None]:
        return {
            "kind": self.kind.value,
            "value": self.value,
            "reason": self.reason.value,
            "source": self.source,
            "note": self.note,
            "created_at": self.created_at,
        }


def _shown(typed: str) -> str:
    # Whatever was typed, the message stays on one line.
    return " ".join(typed.split())


def shown_value(kind: SuppressionKind, value: str) -> str:
    """A stored value as an operator writes it: an IDN domain in its own letters (blåbær.no)."""
    return u_label(value) if kind is SuppressionKind.ADDRESS else value


def normalise_value(kind: SuppressionKind, typed: str, *, allow_test_domains: bool = False) -> str:
    """What an operator typed, as the list stores it: a normalised address, or an orgnr."""
    if kind is SuppressionKind.ADDRESS:
        # The normaliser the contacts, campaigns and bounces use: the stored value must be the
        # very text the campaign and the sender look up, or the suppression would never match.
        parsed = contacts.normalise_address(typed, allow_test_domains=allow_test_domains)
        if not parsed.usable:
            # Texts, so that the console says it in the page's language (the reasons are ids).
            why = Text(contacts.explain(parsed.reason) if parsed.reason else "ugyldig")
            raise SuppressionError(
                Text(
                    "«%(typed)s» er ikke en brukbar e-postadresse (%(why)s)",
                    typed=_shown(typed),
                    why=why,
                )
            )
        return parsed.address
    number = "".join(typed.split())  # "974 760 673", as it is often written
    if len(number) != 9 or not ascii_digits(number):
        raise SuppressionError(
            Text(
                "«%(typed)s» er ikke et organisasjonsnummer (det har ni siffer)",
                typed=_shown(typed),
            )
        )
    if not valid_orgnr(number):
        raise SuppressionError(
            Text(
                "«%(typed)s» er ikke et gyldig organisasjonsnummer (feil kontrollsiffer)",
                typed=_shown(typed),
            )
        )
    return number


def add(
    db: Database,
    kind: SuppressionKind,
    value: str,
    reason: SuppressionReason,
    source: str | None = None,
    note: str | None = None,
) -> bool:
    """Suppress an address or unit (within the caller's transaction); False if it already was."""
    # ON CONFLICT, not a look first: on PostgreSQL two transactions (a bounce and a one-click
    # unsubscribe for the same address) both find nothing, and the second insert would fail.
    inserted = db.execute(
        "INSERT INTO suppressions (kind, value, reason, source, note, created_at) "
        "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (kind, value) DO NOTHING",
        (kind.value, value, reason.value, source, note, utcnow_iso()),
    ).rowcount
    return bool(inserted)


def suppressed(db: Database, kind: SuppressionKind, values: Iterable[str]) -> set[str]:
    """The values of the given kind that are suppressed."""
    return set(reasons(db, kind, values))


def reasons(
    db: Database, kind: SuppressionKind, values: Iterable[str]
) -> dict[str, SuppressionReason]:
    """The values of the given kind that are suppressed, each with why."""
    items = list(dict.fromkeys(values))
    found: dict[str, SuppressionReason] = {}
    for start in range(0, len(items), 500):
        chunk = items[start : start + 500]
        found.update(
            (str(value), SuppressionReason(reason))
            for value, reason in db.query(
                "SELECT value, reason FROM suppressions WHERE kind = ? AND value IN "
                f"({', '.join('?' for _ in chunk)})",
                [kind.value, *chunk],
            )
        )
    return found


_COLUMNS = "kind, value, reason, source, created_at, note"


def _entry(row: Row) -> Entry:
    kind, value, reason, source, created_at, note = row
    return Entry(
        SuppressionKind(str(kind)),
        str(value),
        SuppressionReason(str(reason)),
        None if source is None else str(source),
        str(created_at),
        None if note is None else str(note),
    )


def find(db: Database, kind: SuppressionKind, value: str) -> Entry | None:
    """The list's entry for a normalised value, or None."""
    row = db.query_one(
        f"SELECT {_COLUMNS} FROM suppressions WHERE kind = ? AND value = ?", (kind.value, value)
    )
    return None if row is None else _entry(row)


_NEWEST_FIRST = "ORDER BY created_at DESC, kind, value"


def entries(
    db: Database, kind: SuppressionKind | None = None, *, limit: int | None = None
) -> list[Entry]:
    """The list, newest first; of one kind when given; the newest `limit` when given."""
    params: list[str | int] = [kind.value] if kind is not None else []
    where = "WHERE kind = ? " if kind is not None else ""
    cap = ""
    if limit is not None:
        cap, params = " LIMIT ?", [*params, limit]
    rows = db.query(f"SELECT {_COLUMNS} FROM suppressions {where}{_NEWEST_FIRST}{cap}", params)
    return [_entry(r) for r in rows]


def count(db: Database, kind: SuppressionKind | None = None) -> int:
    """How many entries the list holds; of one kind when given."""
    where, params = ("WHERE kind = ?", (kind.value,)) if kind is not None else ("", ())
    return int(db.scalar(f"SELECT count(*) FROM suppressions {where}", params) or 0)


def _needle(text: str) -> str:
    # No stored value holds a space ("974 760 673" is stored as 974760673, and "post @ firma.no"
    # typed is post@firma.no); addresses are kept in lower case; and the same letter may come
    # composed or not (å, or a and a ring) from another program's copy.
    return unicodedata.normalize("NFC", "".join(text.split())).lower()


def _like(needle: str) -> str:
    # The operator's % and _ are letters to find (ola_nordmann@), not LIKE's wildcards.
    escaped = needle.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def matching(db: Database, text: str, kind: SuppressionKind | None = None) -> list[Entry]:
    """The entries, newest first, whose value holds `text`, as stored or as an operator
    writes it (an IDN domain in its own letters): an address, a part of one, an orgnr."""
    needle = _needle(text)
    if not needle:
        raise SuppressionError("søket er tomt: skriv en adresse, en del av en, eller et orgnr")
    if "\x00" in needle:
        return []  # no value holds one (PostgreSQL's text cannot), nor can it be bound there
    # An address with an IDN domain is stored with the domain's A-label (xn--blbr-roah.no), in
    # which "bær" cannot be found by SQL: the few of those come back too, and are matched here
    # against what the operator sees (shown_value).
    where = "(lower(value) LIKE ? ESCAPE '\\' OR (kind = ? AND value LIKE ?))"
    params = [_like(needle), SuppressionKind.ADDRESS.value, "%xn--%"]
    if kind is not None:
        where, params = f"{where} AND kind = ?", [*params, kind.value]
    rows = db.query(f"SELECT {_COLUMNS} FROM suppressions WHERE {where} {_NEWEST_FIRST}", params)

    def holds(e: Entry) -> bool:
        if "xn--" not in e.value.lower():
            return True  # only LIKE brings back a value without an A-label
        return needle in e.value.lower() or needle in shown_value(e.kind, e.value).lower()

    return [e for e in map(_entry, rows) if holds(e)]


def remove(db: Database, kind: SuppressionKind, value: str) -> bool:
    """Lift a suppression (within the caller's transaction); False if there was none."""
    deleted = db.execute(
        "DELETE FROM suppressions WHERE kind = ? AND value = ?", (kind.value, value)
    ).rowcount
    return bool(deleted)


# -- an operator's use cases, audited ---------------------------------------------------


def _object(kind: SuppressionKind, value: str) -> str:
    return f"{kind.value}:{value}"


@dataclass(frozen=True)
class Added:
    """What add_manual did: the entry on the list, and whether it was put there just now."""

    entry: Entry
    added: bool  # False: it was there already, for the entry's own reason


def add_manual(
    db: Database,
    kind: SuppressionKind,
    value: str,
    *,
    actor: str,
    note: str | None = None,
    source: str = "cli",
) -> Added:
    """Suppress a normalised value by hand; `source` says where (cli, console), the note why;
    audited."""
    note = (note or "").strip() or None
    with db.transaction():
        added = add(db, kind, value, SuppressionReason.MANUAL, source, note)
        if added:
            detail = {
                "kind": kind.value,
                "value": value,
                "reason": SuppressionReason.MANUAL.value,
                "note": note,
            }
            audit.record(db, actor, audit.Action.SUPPRESSION_ADD, _object(kind, value), detail)
        entry = find(db, kind, value)
    if entry is None:  # unreachable: it was there, or was added in this transaction
        raise RuntimeError(f"{_object(kind, value)} is not on the suppression list")
    return Added(entry, added)


def remove_manual(
    db: Database, kind: SuppressionKind, value: str, *, actor: str, note: str | None = None
) -> Entry:
    """Lift a suppression by hand, audited; the entry that was removed."""
    note = (note or "").strip() or None
    with db.transaction():
        entry = find(db, kind, value)
        if entry is None or not remove(db, kind, value):
            what = "adressen" if kind is SuppressionKind.ADDRESS else "organisasjonsnummeret"
            raise SuppressionError(f"{what} {value} står ikke på sperrelisten")
        detail = {
            "kind": kind.value,
            "value": value,
            "reason": entry.reason.value,
            "source": entry.source,
            "note": note,
        }
        audit.record(db, actor, audit.Action.SUPPRESSION_REMOVE, _object(kind, value), detail)
    return entry


@dataclass(frozen=True)
class Listing:
    """What an operator is shown of the list: entries newest first, and how many there are."""

    entries: list[Entry]  # the newest `limit` of those that match
    matched: int  # how many match the search (of the kind): all of them without a search
    total: int  # how many the list holds (of the kind)


def list_for_operator(
    db: Database,
    kind: SuppressionKind | None = None,
    *,
    actor: str,
    output: str,
    search: str | None = None,
    limit: int | None = None,
) -> Listing:
    """entries(), or those matching a search, recorded in the audit log: sole proprietors'
    addresses are personal data."""
    with db.transaction():
        total = count(db, kind)
        if search is None:
            shown, matched = entries(db, kind, limit=limit), total
        else:
            found = matching(db, search, kind)
            shown, matched = found[:limit], len(found)
        detail = {
            "what": "suppressions",
            "kind": kind.value if kind is not None else None,
            "format": output,
            # That a search chose the rows, never what was searched for: it may be a person's
            # address, which the hash-chained log could not forget when the person is erased.
            "search": search is not None,
            "rows": len(shown),
        }
        audit.record(db, actor, audit.Action.PERSONAL_DATA_EXPORT, "suppressions", detail)
    return Listing(shown, matched, total)
