from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from helpers import unit_row, units
from varsel.db import Database
from varsel.errors import BadFileError
from varsel.feed import apply_feed
from varsel.registry import import_dump
from varsel.snapshot import list_snapshots


def test_feed_endring_applies_patches_in_id_order(db: Database, brreg: Path) -> None:
    import_dump(db, brreg / "enheter-sample.json")
    result = apply_feed(db, brreg / "oppdateringer-sample.json")
    s = result.snapshot
    assert s is not None
    assert (s.records, s.changed, s.rejected) == (8, 6, 0)
    assert s.skipped == 2  # patches of kapital and sisteInnsendteAarsregnskap: not kept fields
    assert unit_row(db, "923609016")["employees"] == 21272  # the newest update wins
    assert apply_feed(db, brreg / "oppdateringer-sample.json").already_applied


def feed(tmp_path: Path, entries: list[dict[str, Any]], name: str = "feed.json") -> Path:
    path = tmp_path / name
    path.write_text(
        json.dumps(
            {
                "_embedded": {"oppdaterteEnheter": entries},
                "page": {"size": 100, "totalElements": len(entries)},
            }
        )
    )
    return path


def entry(
    update_id: int, orgnr: str, change: str, ops: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    e: dict[str, Any] = {
        "oppdateringsid": update_id,
        "dato": "2026-11-20T10:00:00.000Z",
        "organisasjonsnummer": orgnr,
        "endringstype": change,
    }
    if ops is not None:
        e["endringer"] = ops
    return e


def test_feed_fjernet_erases_the_unit(db: Database, brreg: Path, tmp_path: Path) -> None:
    import_dump(db, brreg / "enheter-sample.json")
    assert db.scalar("SELECT count(*) FROM contacts WHERE orgnr = '912000354'") == 1
    result = apply_feed(db, feed(tmp_path, [entry(10, "912000354", "Fjernet")]))
    assert result.snapshot is not None
    assert result.snapshot.removed == 1
    assert db.scalar("SELECT count(*) FROM units WHERE orgnr = '912000354'") == 0
    assert db.scalar("SELECT count(*) FROM contacts WHERE orgnr = '912000354'") == 0


def test_feed_sletting_marks_deleted(db: Database, brreg: Path, tmp_path: Path) -> None:
    import_dump(db, brreg / "enheter-sample.json")
    apply_feed(db, feed(tmp_path, [entry(11, "934045769", "Sletting")]))
    row = unit_row(db, "934045769")
    assert row["deleted_date"] == "2026-11-20"
    assert row["gone_snapshot_id"] is not None


def test_feed_ny_and_endring_with_address_patch(db: Database, brreg: Path, tmp_path: Path) -> None:
    import_dump(db, brreg / "enheter-sample.json")
    new_unit = [
        {"op": "add", "path": "/organisasjonsnummer", "value": "910000004"},
        {"op": "add", "path": "/navn", "value": "NYTT FIRMA AS"},
        {"op": "add", "path": "/organisasjonsform", "value": {"kode": "AS"}},
        {
            "op": "add",
            "path": "/forretningsadresse",
            "value": {"adresse": ["Storgata 1"], "kommunenummer": "0301", "postnummer": "0155"},
        },
        {"op": "add", "path": "/epostadresse", "value": "post@nyttfirma.no"},
    ]
    moved = [
        {"op": "replace", "path": "/forretningsadresse/kommunenummer", "value": "3024"},
        {"op": "replace", "path": "/forretningsadresse/adresse/0", "value": "Sandvika 2"},
        {"op": "replace", "path": "/kapital/belop", "value": 100.0},
    ]
    result = apply_feed(
        db,
        feed(
            tmp_path,
            [entry(21, "910000004", "Ny", new_unit), entry(22, "935864879", "Endring", moved)],
        ),
    )
    assert result.snapshot is not None
    assert (result.snapshot.new, result.snapshot.changed) == (1, 1)
    assert unit_row(db, "910000004")["reach"] == "email"
    scan = unit_row(db, "935864879")
    assert (scan["municipality"], scan["addr_lines"]) == ("3201", "Sandvika 2")


def test_feed_entries_already_applied_are_skipped(
    db: Database, brreg: Path, tmp_path: Path
) -> None:
    import_dump(db, brreg / "enheter-sample.json")
    apply_feed(db, feed(tmp_path, [entry(30, "934045769", "Sletting")], "a.json"))
    result = apply_feed(
        db,
        feed(
            tmp_path,
            [entry(30, "934045769", "Sletting"), entry(31, "912000354", "Fjernet")],
            "b.json",
        ),
    )
    assert result.snapshot is not None
    assert (result.snapshot.skipped, result.snapshot.removed) == (1, 1)


def test_bad_feed_changes_nothing(db: Database, brreg: Path, tmp_path: Path) -> None:
    import_dump(db, brreg / "enheter-sample.json")
    before = units(db)
    bad = tmp_path / "bad.json"
    bad.write_text('{"_embedded": {"oppdaterteEnheter": [')
    with pytest.raises(BadFileError, match="ugyldig JSON"):
        apply_feed(db, bad)
    with pytest.raises(BadFileError, match="dette er en dump"):
        apply_feed(db, brreg / "enheter-sample.json")
    assert units(db) == before
    assert len(list_snapshots(db)) == 1
