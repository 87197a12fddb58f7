"""A dump merged into the store: changed units updated, vanished ones gone, rejected ones kept."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from helpers import unit_row
from test_registry import load, write_csv, write_dump, write_json
from varsel import brreg_csv
from varsel.db import Database
from varsel.registry import import_dump

# JSON dumps of every size go through DuckDB here, as national dumps do (conftest).
pytestmark = pytest.mark.usefixtures("every_json_dump_through_duckdb")


def test_newer_dump_updates_changed_and_marks_gone(
    db: Database, brreg: Path, tmp_path: Path
) -> None:
    records = load(brreg / "enheter-sample.json")
    import_dump(db, write_json(tmp_path / "old.json", records), dump_date="2026-01-01")
    newer = copy.deepcopy(records)
    by_orgnr = {r["organisasjonsnummer"]: r for r in newer}
    by_orgnr["923609016"]["antallAnsatte"] = 22000
    by_orgnr["980001172"]["epostadresse"] = "Post@Byggfirma-Ege.no "
    newer.remove(by_orgnr["934045769"])
    newer.append({**by_orgnr["980000001"], "organisasjonsnummer": "910000004", "navn": "NY AS"})
    result = import_dump(db, write_json(tmp_path / "new.json", newer), dump_date="2026-02-01")
    s = result.snapshot
    assert (s.new, s.changed, s.unchanged, s.gone) == (1, 2, 32, 1)
    assert unit_row(db, "923609016")["employees"] == 22000
    assert unit_row(db, "934045769")["gone_snapshot_id"] == s.id
    assert db.query("SELECT address, usable, personal FROM contacts WHERE orgnr = '980001172'") in (
        [("post@byggfirma-ege.no", 1, 1)],
        [("post@byggfirma-ege.no", True, True)],
    )
    # The unit comes back in a later dump: no longer gone.
    newest = copy.deepcopy(records)
    newest[0]["antallAnsatte"] = 1040
    again = import_dump(db, write_json(tmp_path / "newest.json", newest), dump_date="2026-03-01")
    assert unit_row(db, "934045769")["gone_snapshot_id"] is None
    assert (again.snapshot.new, again.snapshot.gone) == (0, 1)  # 910000004 is gone now


def test_units_whose_hash_alone_differs_are_unchanged_and_get_the_new_hash(
    db: Database, brreg: Path, tmp_path: Path
) -> None:
    # A store made by an earlier version holds hashes of fewer columns: its first import after
    # the upgrade must not count every unit as changed, only those whose values changed.
    records = load(brreg / "enheter-sample.json")
    import_dump(db, write_json(tmp_path / "old.json", records), dump_date="2026-01-01")
    hashes = dict(db.query("SELECT orgnr, record_hash FROM units"))
    with db.transaction():
        db.execute("UPDATE units SET record_hash = record_hash + 1")
    newer = copy.deepcopy(records)
    newer[0]["antallAnsatte"] = 1040  # one real change
    result = import_dump(db, write_json(tmp_path / "new.json", newer), dump_date="2026-02-01")
    s = result.snapshot
    assert (s.new, s.changed, s.unchanged, s.gone) == (0, 1, len(records) - 1, 0)
    after = dict(db.query("SELECT orgnr, record_hash FROM units"))
    changed = newer[0]["organisasjonsnummer"]
    assert {o: h for o, h in after.items() if o != changed} == {
        o: h for o, h in hashes.items() if o != changed
    }
    # Only the changed unit took the new snapshot; the others still read from the old file.
    assert db.query("SELECT orgnr FROM units WHERE snapshot_id = ?", (s.id,)) == [(changed,)]


@pytest.mark.parametrize("name", ["e.json", "e.csv"])
def test_a_rejected_record_keeps_its_unit(
    db: Database, brreg: Path, tmp_path: Path, name: str
) -> None:
    records = load(brreg / "enheter-sample.json")
    import_dump(db, write_json(tmp_path / "first.json", records), dump_date="2026-01-01")
    before = unit_row(db, "923609016")
    newer = copy.deepcopy(records)
    newer[7]["antallAnsatte"] = -3  # 923609016
    del newer[8]["navn"]
    rejects = tmp_path / "rejects.jsonl"
    result = import_dump(
        db, write_dump(tmp_path / name, newer), rejects_path=rejects, dump_date="2026-02-01"
    )
    assert (result.snapshot.rejected, result.snapshot.gone) == (2, 0)
    assert unit_row(db, "923609016") == before
    assert unit_row(db, newer[8]["organisasjonsnummer"])["gone_snapshot_id"] is None
    lines = [json.loads(x) for x in rejects.read_text("utf-8").splitlines()]
    assert [(r["position"], r["reason"]) for r in lines] == [
        (8, "antallAnsatte er negativt: -3"),
        (9, "mangler navn"),
    ]


def test_a_csv_row_with_wrong_field_count_keeps_its_unit(
    db: Database, brreg: Path, tmp_path: Path
) -> None:
    records = load(brreg / "enheter-sample.json")[:3]
    import_dump(db, write_json(tmp_path / "first.json", records), dump_date="2026-01-01")
    path = write_csv(tmp_path / "e.csv", records[:2], brreg_csv.ENHETER_COLUMNS)
    with path.open("a", encoding="utf-8") as f:
        f.write(f'"{records[2]["organisasjonsnummer"]}","FOR KORT"\n')
    result = import_dump(db, path, dump_date="2026-02-01", allow_shrink=True)
    assert (result.snapshot.rejected, result.snapshot.gone) == (1, 0)
    assert result.rejects[0].orgnr == records[2]["organisasjonsnummer"]


@pytest.mark.parametrize("fmt", ["json", "csv"])
@pytest.mark.parametrize("first", [True, False])
def test_a_sub_unit_with_a_main_units_number_is_rejected_not_merged_into_it(
    db: Database, brreg: Path, tmp_path: Path, fmt: str, first: bool
) -> None:
    enheter = load(brreg / "enheter-sample.json")
    underenheter = load(brreg / "underenheter-sample.json")
    import_dump(db, write_json(tmp_path / "e.json", enheter), dump_date="2026-01-01")
    if not first:  # the merge, not the first import's straight insert
        import_dump(db, write_json(tmp_path / "u0.json", underenheter), dump_date="2026-01-01")
    taken = {**underenheter[0], "organisasjonsnummer": enheter[0]["organisasjonsnummer"]}
    records = [*underenheter, taken]
    path = tmp_path / f"u.{fmt}"
    if fmt == "csv":
        write_csv(path, records, brreg_csv.UNDERENHETER_COLUMNS)
    else:
        write_json(path, records)
    result = import_dump(db, path, dump_date="2026-02-01")
    assert [(r.position, r.orgnr, r.reason) for r in result.rejects] == [
        (
            len(records),
            enheter[0]["organisasjonsnummer"],
            "organisasjonsnummeret er en hovedenhet i lageret",
        )
    ]
    row = unit_row(db, enheter[0]["organisasjonsnummer"])
    assert (row["kind"], row["name"]) == ("enhet", enheter[0]["navn"])
    assert db.scalar("SELECT count(*) FROM units WHERE kind = 'enhet'") == len(enheter)
