"""Change feeds (oppdateringer): Ny, Endring (JSON-Patch), Sletting and Fjernet."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from varsel import audit, unit
from varsel.clock import utcnow_iso
from varsel.db import Database
from varsel.dump import Kind
from varsel.erasure import erase_unit
from varsel.errors import BadFileError, read_user_file
from varsel.i18n import fmt_int
from varsel.snapshot import Snapshot, file_sha256, get_snapshot, insert_snapshot

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

    def summary(self) -> str:
        s = self.snapshot
        if self.already_applied or s is None:
            return f"{self.path.name}: allerede brukt; ingenting endret."
        text = (
            f"{self.path.name}: {fmt_int(s.records)} endringer i {s.kind} — {fmt_int(s.new)} nye, "
            f"{fmt_int(s.changed)} endret, {fmt_int(s.gone)} slettet, {fmt_int(s.removed)} "
            f"fjernet, {fmt_int(s.skipped)} hoppet over, {fmt_int(s.rejected)} avvist "
            f"(snapshot {s.id})."
        )
        return "\n".join([text, *(f"  {n}" for n in self.notes)])


def _feed_entries(path: Path) -> tuple[Kind, list[dict[str, Any]]]:
    raw = read_user_file(path, BadFileError)
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as e:
        raise BadFileError(f"{path}: ugyldig JSON ved byte {e.pos:,}: {e.msg}") from None
    if isinstance(data, list):
        if data and isinstance(data[0], dict) and "endringstype" not in data[0]:
            raise BadFileError(
                f"{path}: dette er en dump, ikke en endringslogg; bruk «varsel registry import»"
            )
        entries = data
        kind = (
            Kind.UNDERENHETER
            if any("underenhet" in str(e.get("_links", "")) for e in entries[:1])
            else Kind.ENHETER
        )
        return kind, [e for e in entries if isinstance(e, dict)]
    if not isinstance(data, dict) or not ({"_embedded", "page", "_links"} & data.keys()):
        raise BadFileError(f"{path}: ikke en side fra endringsloggen (oppdateringer)")
    embedded = data.get("_embedded") or {}
    if "oppdaterteUnderenheter" in embedded:
        return Kind.UNDERENHETER, list(embedded["oppdaterteUnderenheter"])
    if "oppdaterteEnheter" in embedded:
        return Kind.ENHETER, list(embedded["oppdaterteEnheter"])
    if embedded:
        raise BadFileError(f"{path}: ukjent innhold i _embedded: {', '.join(embedded)}")
    href = str((data.get("_links") or {}).get("self", {}).get("href", ""))
    return (Kind.UNDERENHETER if "underenheter" in href else Kind.ENHETER), []


def apply_feed(db: Database, path: Path, *, actor: str | None = None) -> FeedResult:
    """Apply one change-feed page: Ny, Endring (JSON-Patch), Sletting, and Fjernet (erase)."""
    path = Path(path)
    kind, entries = _feed_entries(path)
    sha = file_sha256(path)
    if db.query_one("SELECT id FROM snapshots WHERE sha256 = ? AND source = 'feed'", (sha,)):
        return FeedResult(path, None, True, ())
    unit_kind = "underenhet" if kind is Kind.UNDERENHETER else "enhet"
    counts = dict.fromkeys(("new", "changed", "gone", "removed", "skipped", "rejected"), 0)
    notes: list[str] = []

    def note(text: str) -> None:
        if len(notes) < SHOWN_NOTES:
            notes.append(text)

    with db.transaction():
        now = utcnow_iso()
        watermark = db.scalar("SELECT last_update_id FROM feed_state WHERE kind = ?", (kind.value,))
        last = int(watermark) if watermark is not None else 0
        snapshot_id = insert_snapshot(
            db,
            kind=kind.value,
            source="feed",
            file_name=path.name,
            file_path=str(path.resolve()),
            sha256=sha,
            format="feed",
            dump_date=None,
            imported_at=now,
        )
        valid: list[dict[str, Any]] = []
        for entry in entries:
            problem = _entry_problem(entry)
            if problem:
                counts["rejected"] += 1
                note(f"avvist: {problem}")
            else:
                valid.append(entry)
        for entry in sorted(valid, key=lambda e: int(e["oppdateringsid"])):
            update_id = int(entry["oppdateringsid"])
            if update_id <= last:
                counts["skipped"] += 1
                continue
            outcome = _apply_entry(db, entry, kind, unit_kind, snapshot_id, now)
            if outcome.startswith("skipped"):
                counts["skipped"] += 1
                note(f"{entry['organisasjonsnummer']}: {outcome.partition(':')[2].strip()}")
            elif outcome.startswith("rejected"):
                counts["rejected"] += 1
                note(f"avvist {entry['organisasjonsnummer']}: {outcome.partition(':')[2].strip()}")
            else:
                counts[outcome] += 1
            last = max(last, update_id)
        db.execute(
            "UPDATE snapshots SET records = ?, new = ?, changed = ?, gone = ?, removed = ?, "
            "skipped = ?, rejected = ? WHERE id = ?",
            (
                len(entries),
                counts["new"],
                counts["changed"],
                counts["gone"],
                counts["removed"],
                counts["skipped"],
                counts["rejected"],
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
            },
        )
    return FeedResult(path, get_snapshot(db, snapshot_id), False, tuple(notes))


def _entry_problem(entry: Any) -> str | None:
    if not isinstance(entry, dict):
        return "en endring er ikke et JSON-objekt"
    orgnr = entry.get("organisasjonsnummer")
    if not isinstance(orgnr, str) or not unit.valid_orgnr(orgnr):
        return f"ugyldig organisasjonsnummer {orgnr!r}"
    if not isinstance(entry.get("oppdateringsid"), int):
        return f"{orgnr}: mangler oppdateringsid"
    if entry.get("endringstype") not in FEED_TYPES:
        return f"{orgnr}: ukjent endringstype {entry.get('endringstype')!r}"
    changes = entry.get("endringer")
    if changes is not None and not (
        isinstance(changes, list) and all(isinstance(c, dict) for c in changes)
    ):
        return f"{orgnr}: endringer er ikke en JSON-Patch-liste"
    return None


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
        if row is None and not erased.recipients:
            return "skipped: fjernet, men fantes ikke i lageret"
        return "removed"
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
    the rest; those are skipped, and add/replace create missing parents.
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
        elif kind != "test":
            raise ValueError(f"ukjent JSON-Patch-operasjon {kind!r}")


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


def _set(document: dict[str, Any], parts: list[str], value: Any, *, insert: bool) -> None:
    node: Any = document
    for i, p in enumerate(parts[:-1]):
        nxt_is_index = parts[i + 1].isdigit() or parts[i + 1] == "-"
        if isinstance(node, list):
            idx = int(p)
            while len(node) <= idx:
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
        idx = int(last)
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
