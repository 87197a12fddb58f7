"""Change feeds (oppdateringer): Ny, Endring (JSON-Patch), Sletting and Fjernet.

A page is read and checked first (`feed_page`); applying it is here.
"""

from __future__ import annotations

import datetime as dt
import json
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from varsel import audit, registry_merge, unit
from varsel.clock import utcnow_iso
from varsel.db import Database
from varsel.dump import Kind
from varsel.erasure import erase_unit
from varsel.errors import UserError, quoted
from varsel.feed_page import FeedPage, read_page
from varsel.i18n import fmt_int
from varsel.snapshot import (
    Snapshot,
    get_snapshot,
    insert_snapshot,
    latest_snapshot,
    lock_register,
)

SHOWN_NOTES = 5

FEED_TYPES = frozenset({"Ny", "Endring", "Sletting", "Fjernet", "Ukjent"})
# Top-level record keys varsel keeps; patches to anything else only touch the dump archive.
TRACKED_KEYS = frozenset(
    {
        "organisasjonsnummer",
        "navn",
        "organisasjonsform",
        "overordnetEnhet",
        "forretningsadresse",
        "beliggenhetsadresse",
        "postadresse",
        "naeringskode1",
        "naeringskode2",
        "naeringskode3",
        "antallAnsatte",
        "harRegistrertAntallAnsatte",
        "institusjonellSektorkode",
        "konkurs",
        "underAvvikling",
        "underTvangsavviklingEllerTvangsopplosning",
        "slettedato",
        "nedleggelsesdato",
        "maalform",
        "epostadresse",
        "telefon",
        "mobil",
        "hjemmeside",
        "respons_klasse",
    }
)


@dataclass(frozen=True)
class FeedResult:
    """What applying one change-feed page did."""

    path: Path
    snapshot: Snapshot | None
    already_applied: bool
    notes: tuple[str, ...]
    skipped: tuple[tuple[str, int], ...] = ()  # (reason, how many), every skipped entry

    def summary(self) -> str:
        s = self.snapshot
        if self.already_applied or s is None:
            return f"{self.path.name}: allerede brukt; ingenting endret."
        changes = "endring" if s.records == 1 else "endringer"
        text = (
            f"{self.path.name}: {fmt_int(s.records)} {changes} i {s.kind} — {fmt_int(s.new)} nye, "
            f"{fmt_int(s.changed)} endret, {fmt_int(s.gone)} slettet, {fmt_int(s.removed)} "
            f"fjernet, {fmt_int(s.skipped)} hoppet over, {fmt_int(s.rejected)} avvist "
            f"(snapshot {s.id})."
        )
        reasons = [f"  {fmt_int(n)} hoppet over: {reason}" for reason, n in self.skipped]
        return "\n".join([text, *reasons, *(f"  {n}" for n in self.notes)])


def apply_feed(db: Database, page: FeedPage | Path, *, actor: str | None = None) -> FeedResult:
    """Apply one change-feed page: Ny, Endring (JSON-Patch), Sletting, and Fjernet (erase).

    Entries apply in `oppdateringsid` order. An entry whose id is not above the last one
    applied is skipped, as is one dated before the dump of its kind imported last (the dump
    holds what came later), but `Fjernet` always applies: the unit must be erased whatever
    order pages come in, and erasing twice does no harm. Every skip is counted with its reason.
    """
    if not isinstance(page, FeedPage):
        page = read_page(page)
    with db.transaction():
        lock_register(db, page.kind.value)  # two runs at once apply a page once
        return _apply_page(db, page, actor)


def _apply_page(db: Database, page: FeedPage, actor: str | None) -> FeedResult:
    """apply_feed's work, in its transaction (under the register's lock)."""
    path, kind, entries, sha = page.path, page.kind, page.entries, page.sha256
    # The same page again changes nothing; but a dump imported since undid what it applied.
    applied = db.query_one(
        "SELECT id FROM snapshots WHERE sha256 = ? AND source = 'feed' AND kind = ? AND id > "
        "coalesce((SELECT max(id) FROM snapshots WHERE source = 'dump' AND kind = ?), 0)",
        (sha, kind.value, kind.value),
    )
    if applied:
        return FeedResult(path, None, True, ())
    unit_kind = registry_merge.unit_kind(kind)
    counts = dict.fromkeys(("new", "changed", "gone", "removed", "skipped", "rejected"), 0)
    skipped: Counter[str] = Counter()
    notes: list[str] = []

    def note(text: str) -> None:
        if len(notes) < SHOWN_NOTES:
            notes.append(text)

    def skip(reason: str) -> None:
        counts["skipped"] += 1
        skipped[reason] += 1

    now = utcnow_iso()
    watermark = db.scalar("SELECT last_update_id FROM feed_state WHERE kind = ?", (kind.value,))
    last = int(watermark) if watermark is not None else 0
    # The store holds the dump imported last (an older one imported again undoes a wrong
    # import), so its date is the one that counts, not the newest date seen.
    dump = latest_snapshot(db, kind.value, "dump")
    dump_date, guessed = (dump.dump_date, dump.dump_date_guessed) if dump else (None, False)
    newest_day: str | None = None  # of the entries applied: how new the data now is
    snapshot_id = insert_snapshot(
        db,
        kind=kind.value,
        source="feed",
        file_name=path.name,
        file_path=page.source or str(path.resolve()),
        sha256=sha,
        format="feed",
        dump_date=None,
        imported_at=now,
    )
    valid = _valid_entries(entries, counts, note)
    for entry in sorted(valid, key=lambda e: int(e["oppdateringsid"])):
        update_id = int(entry["oppdateringsid"])
        if entry["endringstype"] != "Fjernet":
            if update_id <= last:
                skip(f"allerede brukt eller eldre (oppdateringsid ≤ {last})")
                continue
            # `dato` is UTC; the dump is built at about 05:00 Norwegian time on its date.
            # An entry dated the day before (UTC) was made before that, so the dump has it
            # or something newer. One dated the dump's day is applied: most of that day
            # came after the dump, and one that came before sets what the dump already
            # holds, followed by that night's later entries in id order.
            day = _entry_day(entry)
            if dump_date and day and day < dump_date:
                if guessed:
                    _refuse_guessed(path, valid, dump_date)  # rolls the transaction back
                last = max(last, update_id)
                skip(f"eldre enn siste fullstendige import (dump fra {dump_date})")
                continue
        outcome = _apply_entry(db, entry, kind, unit_kind, snapshot_id, now)
        if not outcome.startswith(("skipped", "rejected")):
            newest_day = max(newest_day or "", _entry_day(entry) or "") or None
        if outcome.startswith("skipped"):
            skip(outcome.partition(":")[2].strip())
        elif outcome.startswith("rejected"):
            counts["rejected"] += 1
            note(f"avvist {entry['organisasjonsnummer']}: {outcome.partition(':')[2].strip()}")
        else:
            counts[outcome] += 1
        last = max(last, update_id)
    _save(db, kind, snapshot_id, len(entries), counts, last, now, newest_day)
    audit.record(
        db,
        actor or audit.SYSTEM,
        audit.Action.REGISTRY_UPDATE,
        f"snapshot:{snapshot_id}",
        {
            "file": path.name,
            "sha256": sha,
            "kind": kind.value,
            "last_update_id": last,
            **counts,
            "skipped_because": dict(skipped),
        },
    )
    return FeedResult(
        path, get_snapshot(db, snapshot_id), False, tuple(notes), tuple(skipped.items())
    )


def _valid_entries(
    entries: list[Any], counts: dict[str, int], note: Callable[[str], None]
) -> list[dict[str, Any]]:
    """The entries of a sound shape; the others are counted as rejected, with a note."""
    valid: list[dict[str, Any]] = []
    for entry in entries:
        problem = _entry_problem(entry)
        if problem:
            counts["rejected"] += 1
            note(f"avvist: {problem}")
        else:
            valid.append(entry)
    return valid


def _refuse_guessed(path: Path, entries: list[dict[str, Any]], dump_date: str) -> None:
    """Entries older than a guessed dump date are refused, not skipped.

    Skipped, they would never come back (the watermark passes them), and a page applied after
    the dump stops a re-import from correcting its date (see import_checks).
    """
    too_old = sum(
        1
        for e in entries
        if e["endringstype"] != "Fjernet" and (_entry_day(e) or dump_date) < dump_date
    )
    raise UserError(
        f"{path}: ikke lagt inn: {fmt_int(too_old)} endringer er eldre enn dumpdatoen "
        f"{dump_date}, som er gjettet fra dumpfilens endringstid. Importer dumpen igjen med "
        "riktig dato (varsel registry import FIL --dump-date ÅÅÅÅ-MM-DD; samme dato bekrefter "
        "den) og legg så inn siden; lageret er ikke endret."
    )


def _save(
    db: Database,
    kind: Kind,
    snapshot_id: int,
    records: int,
    counts: dict[str, int],
    last: int,
    now: str,
    newest_day: str | None = None,
) -> None:
    """Write a page's counts (and its newest applied entry's day) and move the watermark."""
    db.execute(
        "UPDATE snapshots SET records = ?, new = ?, changed = ?, gone = ?, removed = ?, "
        "skipped = ?, rejected = ?, dump_date = ? WHERE id = ?",
        (
            records,
            counts["new"],
            counts["changed"],
            counts["gone"],
            counts["removed"],
            counts["skipped"],
            counts["rejected"],
            newest_day,
            snapshot_id,
        ),
    )
    if db.query_one("SELECT 1 FROM feed_state WHERE kind = ?", (kind.value,)):
        db.execute(
            "UPDATE feed_state SET last_update_id = ?, updated_at = ? WHERE kind = ?",
            (last, now, kind.value),
        )
    else:
        db.execute(
            "INSERT INTO feed_state (kind, last_update_id, updated_at) VALUES (?, ?, ?)",
            (kind.value, last, now),
        )


def _entry_day(entry: dict[str, Any]) -> str | None:
    """The UTC date (YYYY-MM-DD) of an entry's `dato`, or None when it has none."""
    value = entry.get("dato")
    return value[:10] if isinstance(value, str) else None


def _shown(value: Any) -> str:
    """A value from the feed in a message: text «quoted», anything else as JSON (null, 12)."""
    if isinstance(value, str):
        return quoted(value)
    try:
        return json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError):
        return quoted(str(value))


def _entry_problem(entry: Any) -> str | None:
    if not isinstance(entry, dict):
        return "en endring er ikke et JSON-objekt"
    orgnr = entry.get("organisasjonsnummer")
    if not isinstance(orgnr, str) or not unit.valid_orgnr(orgnr):
        return f"ugyldig organisasjonsnummer {_shown(orgnr)}"
    if not isinstance(entry.get("oppdateringsid"), int):
        return f"{orgnr}: mangler oppdateringsid"
    dato = entry.get("dato")
    if dato is not None and not (isinstance(dato, str) and _is_date(dato[:10])):
        return f"{orgnr}: ugyldig dato {_shown(dato)}"
    if entry.get("endringstype") not in FEED_TYPES:
        return f"{orgnr}: ukjent endringstype {_shown(entry.get('endringstype'))}"
    changes = entry.get("endringer")
    if changes is not None and not (
        isinstance(changes, list) and all(isinstance(c, dict) for c in changes)
    ):
        return f"{orgnr}: endringer er ikke en JSON-Patch-liste"
    return None


def _is_date(text: str) -> bool:
    try:
        dt.date.fromisoformat(text)
    except ValueError:
        return False
    return len(text) == 10


def _apply_entry(
    db: Database, entry: dict[str, Any], kind: Kind, unit_kind: str, snapshot_id: int, now: str
) -> str:
    orgnr = entry["organisasjonsnummer"]
    change = entry["endringstype"]
    cols = ", ".join(unit.UNIT_COLUMNS)
    row = db.query_one(f"SELECT {cols} FROM units WHERE orgnr = ?", (orgnr,))
    if change == "Fjernet":
        # Removed from open data on legal grounds: copies must erase it, not keep it as gone.
        # Campaigns may hold copies of a unit that is no longer (or never was) in the store.
        erased = erase_unit(db, orgnr)
        # Remembered by number and day, so that no dump made before today brings it back.
        db.execute(
            "INSERT INTO removed_units (orgnr, kind, removed_on) VALUES (?, ?, ?) "
            "ON CONFLICT (orgnr) DO UPDATE SET kind = excluded.kind, removed_on = CASE WHEN "
            "excluded.removed_on > removed_units.removed_on THEN excluded.removed_on "
            "ELSE removed_units.removed_on END",
            (orgnr, kind.value, _entry_day(entry) or now[:10]),
        )
        # Its sub-units may be in the store when it is not (underenheter imported alone).
        if row is None and not erased.recipients and not erased.sub_units:
            return "skipped: fjernet, men fantes ikke i lageret"
        return "removed"
    if row is not None and row[unit.COL["kind"]] != unit_kind:
        # One number is one unit: applied, the entry would turn a main unit into a sub-unit
        # (or mark the wrong one deleted), taking it out of its register. As the import does.
        return f"rejected: {registry_merge.other_kind_reason(kind)}"
    if change == "Sletting":
        if row is None:
            return "skipped: slettet, men fantes ikke i lageret"
        deleted = str(entry.get("dato") or now)[:10]
        db.execute(
            "UPDATE units SET deleted_date = ?, gone_snapshot_id = ?, snapshot_id = ?, "
            "updated_at = ? WHERE orgnr = ?",
            (deleted, snapshot_id, snapshot_id, now, orgnr),
        )
        return "gone"
    if change == "Ukjent":
        return "skipped: endringstype Ukjent"
    ops = entry.get("endringer")
    if ops is None:
        return "skipped: endringen har ikke innhold (hent siden med includeChanges=true)"
    if row is None:
        if change == "Endring":
            return "skipped: endret, men fantes ikke i lageret (importer en nyere dump)"
        document: dict[str, Any] = {}
    else:
        document = unit.to_record(row)
    try:
        apply_patch(document, ops)
        values, addresses = unit.extract(document, kind)
    except (unit.Rejected, ValueError, TypeError, IndexError) as e:
        return f"rejected: {e}"
    digest = unit.record_hash(values)
    if row is not None and row[unit.COL["record_hash"]] == digest:
        return "skipped: endringen gjelder felt varsel ikke lagrer"
    record_cols = ", ".join(unit.RECORD_COLUMNS)
    if row is None:
        marks = ", ".join("?" for _ in unit.UNIT_COLUMNS)
        db.execute(
            f"INSERT INTO units ({cols}) VALUES ({marks})",
            (*values, digest, snapshot_id, None, snapshot_id, None, now),
        )
        outcome = "new"
    else:
        assigns = ", ".join(f"{c} = ?" for c in unit.RECORD_COLUMNS)
        db.execute(
            f"UPDATE units SET {assigns}, record_hash = ?, snapshot_id = ?, record_index = NULL, "
            "gone_snapshot_id = NULL, updated_at = ? WHERE orgnr = ?",
            (*values, digest, snapshot_id, now, orgnr),
        )
        db.execute("DELETE FROM contacts WHERE orgnr = ? AND source = 'registry'", (orgnr,))
        outcome = "changed"
    del record_cols
    rows = unit.contact_rows(orgnr, values[4], addresses)
    db.insert_rows("contacts", unit.CONTACT_COLUMNS, rows)
    return outcome


def apply_patch(document: dict[str, Any], ops: list[dict[str, Any]]) -> None:
    """Apply JSON-Patch operations to the part of a record varsel keeps.

    The store keeps only some fields, so a strict JSON-Patch library would refuse operations on
    the rest; those are skipped, and add/replace create missing parents. A `test` that fails on
    a field the store holds refuses the whole patch (ValueError), as JSON-Patch requires.
    """
    for op in ops:
        kind = op.get("op")
        path = op.get("path")
        if not isinstance(path, str):
            raise ValueError("JSON-Patch uten path")
        parts = _pointer(path)
        if not parts:
            if kind in ("add", "replace") and isinstance(op.get("value"), dict):
                document.clear()
                document.update(op["value"])
            continue
        if parts[0] not in TRACKED_KEYS:
            continue
        if kind in ("add", "replace"):
            _set(document, parts, op.get("value"), insert=kind == "add")
        elif kind == "remove":
            _remove(document, parts)
        elif kind in ("move", "copy"):
            source = _pointer(str(op.get("from", "")))
            value = _get(document, source)
            if kind == "move":
                _remove(document, source)
            if value is not None:
                _set(document, parts, value, insert=True)
        elif kind == "test":
            _check(document, parts, op.get("value"))
        else:
            raise ValueError(f"ukjent JSON-Patch-operasjon {kind!r}")


def _check(document: dict[str, Any], parts: list[str], expected: Any) -> None:
    """A `test` op: refuse the patch when a field varsel holds as the registry gives it differs.

    Only a top-level value that is not an object or list is compared: nested values are kept
    in part or renumbered (municipalities), so a difference there says nothing.
    """
    if len(parts) != 1 or parts[0] not in document:
        return
    held = document[parts[0]]
    if isinstance(held, dict | list) or isinstance(expected, dict | list):
        return
    if held != expected or isinstance(held, bool) != isinstance(expected, bool):
        raise ValueError(
            f"JSON-Patch-testen for /{parts[0]} feilet: lageret har {_shown(held)}, "
            f"endringen forventer {_shown(expected)}"
        )


def _pointer(path: str) -> list[str]:
    if path == "":
        return []
    if not path.startswith("/"):
        raise ValueError(f"ugyldig JSON-peker {path!r}")
    return [p.replace("~1", "/").replace("~0", "~") for p in path[1:].split("/")]


def _get(document: Any, parts: list[str]) -> Any:
    node = document
    for p in parts:
        if isinstance(node, dict):
            node = node.get(p)
        elif isinstance(node, list) and p.isdigit() and int(p) < len(node):
            node = node[int(p)]
        else:
            return None
    return node


# How far past a list's end a patch may point. The store keeps address lines without the
# blank ones the registry's record may hold, so an index can be past the end by as many (an
# address has at most three lines); a hostile page's index would make a list of a billion.
_LIST_SLACK = 8


def _index(node: list[Any], part: str) -> int:
    """A list index of a JSON pointer, at most _LIST_SLACK past the list's end."""
    if not part.isdigit() or int(part) > len(node) + _LIST_SLACK:
        raise ValueError(
            f"JSON-Patch: indeksen {quoted(part[:20])} er utenfor en liste på {len(node)}"
        )
    return int(part)


def _set(document: dict[str, Any], parts: list[str], value: Any, *, insert: bool) -> None:
    node: Any = document
    for i, p in enumerate(parts[:-1]):
        nxt_is_index = parts[i + 1].isdigit() or parts[i + 1] == "-"
        if isinstance(node, list):
            idx = _index(node, p)
            while len(node) <= idx:  # missing parents made, as for an object's
                node.append([] if nxt_is_index else {})
            node = node[idx]
        else:
            if not isinstance(node.get(p), dict | list):
                node[p] = [] if nxt_is_index else {}
            node = node[p]
    last = parts[-1]
    if isinstance(node, list):
        if last == "-":
            node.append(value)
            return
        idx = _index(node, last)
        if insert and idx <= len(node):
            node.insert(idx, value)
        elif idx < len(node):
            node[idx] = value
        else:
            node.append(value)
    else:
        node[last] = value


def _remove(document: dict[str, Any], parts: list[str]) -> None:
    parent = _get(document, parts[:-1]) if len(parts) > 1 else document
    last = parts[-1]
    if isinstance(parent, dict):
        parent.pop(last, None)
    elif isinstance(parent, list) and last.isdigit() and int(last) < len(parent):
        del parent[int(last)]
