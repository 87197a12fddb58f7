from __future__ import annotations

import copy
import csv
import gzip
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from helpers import unit_row, units
from varsel import brreg_csv, dump
from varsel.db import Database
from varsel.errors import BadFileError
from varsel.registry import import_dump, read_original
from varsel.snapshot import list_snapshots

# JSON dumps of every size go through DuckDB here, as national dumps do (conftest).
pytestmark = pytest.mark.usefixtures("every_json_dump_through_duckdb")


def load(path: Path) -> list[dict[str, Any]]:
    return json.loads(path.read_text("utf-8"))  # type: ignore[no-any-return]


def write_json(path: Path, records: list[dict[str, Any]], *, compact: bool = True) -> Path:
    text = json.dumps(
        records,
        ensure_ascii=False,
        separators=(",", ":") if compact else None,
        indent=None if compact else 2,
    )
    if path.suffix == ".gz":
        path.write_bytes(gzip.compress(text.encode("utf-8")))
    else:
        path.write_text(text, "utf-8")
    return path


def write_csv(path: Path, records: list[dict[str, Any]], columns: tuple[str, ...]) -> Path:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "wt", encoding="utf-8", newline="") as f:  # type: ignore[operator]
        w = csv.writer(f, quoting=csv.QUOTE_ALL)
        w.writerow(columns)
        for r in records:
            w.writerow(brreg_csv.encode_row(r, columns))
    return path


def test_import_real_enheter_json(db: Database, brreg: Path) -> None:
    result = import_dump(db, brreg / "enheter-sample.json", dump_date="2025-12-12")
    snap = result.snapshot
    assert (snap.kind, snap.format, snap.records, snap.new, snap.rejected) == (
        "enheter",
        "json",
        35,
        35,
        0,
    )
    equinor = unit_row(db, "923609016")
    assert equinor["name"] == "EQUINOR ASA"
    assert equinor["form"] == "ASA"
    assert equinor["municipality"] == "1103"
    assert equinor["employees"] == 21496
    assert equinor["kind"] == "enhet"
    assert snap.dump_date == "2025-12-12"


def test_hidden_employee_counts_are_kept_as_registered(db: Database, brreg: Path) -> None:
    import_dump(db, brreg / "enheter-sample.json")
    foss = unit_row(db, "912000354")  # 1-4 employees: count hidden, flag true
    assert (foss["employees"], bool(foss["has_employees"])) == (None, True)
    holding = unit_row(db, "931744682")  # no employees
    assert (holding["employees"], bool(holding["has_employees"])) == (None, False)


def test_import_real_underenheter(db: Database, brreg: Path) -> None:
    result = import_dump(db, brreg / "underenheter-sample.json")
    assert (result.snapshot.kind, result.snapshot.new) == ("underenheter", 18)
    tomra = unit_row(db, "981593057")
    assert (tomra["kind"], tomra["parent_orgnr"], tomra["municipality"]) == (
        "underenhet",
        "927124238",
        "3203",
    )
    foreign = unit_row(db, "827526452")
    assert (foreign["country"], foreign["municipality"]) == ("SK", None)


def test_every_format_gives_the_same_units(new_store_url: Any, brreg: Path, tmp_path: Path) -> None:
    from varsel.db import connect

    records = load(brreg / "enheter-sample.json")
    files = [
        write_json(tmp_path / "a.json", records, compact=False),
        write_json(tmp_path / "b.json.gz", records),
        write_csv(tmp_path / "c.csv", records, brreg_csv.ENHETER_COLUMNS),
        write_csv(tmp_path / "d.csv.gz", records, brreg_csv.ENHETER_COLUMNS),
    ]
    results = []
    for f in files:
        with connect(new_store_url()) as db:
            r = import_dump(db, f)
            assert r.snapshot.kind == "enheter"
            results.append(units(db))
    assert results[0] == results[1] == results[2] == results[3]
    assert len(results[0]) == 35


def test_underenheter_csv(db: Database, brreg: Path, tmp_path: Path) -> None:
    records = load(brreg / "underenheter-sample.json")
    path = write_csv(tmp_path / "underenheter_alle.csv.gz", records, brreg_csv.UNDERENHETER_COLUMNS)
    result = import_dump(db, path)
    assert (result.snapshot.kind, result.snapshot.format, result.snapshot.new) == (
        "underenheter",
        "csv",
        18,
    )


def test_kind_and_format_come_from_content_not_name(
    db: Database, brreg: Path, tmp_path: Path
) -> None:
    path = write_json(tmp_path / "enheter_alle.csv", load(brreg / "underenheter-sample.json"))
    result = import_dump(db, path)
    assert (result.snapshot.kind, result.snapshot.format) == ("underenheter", "json")


def test_invalid_records_are_rejected_and_written(
    db: Database, brreg: Path, tmp_path: Path
) -> None:
    records = load(brreg / "enheter-sample.json")[:5]
    records[1] = {**records[1], "organisasjonsnummer": "123456789"}
    records[3] = {k: v for k, v in records[3].items() if k != "navn"}
    records.append(copy.deepcopy(records[0]))
    rejects = tmp_path / "rejects.jsonl"
    result = import_dump(db, write_json(tmp_path / "d.json", records), rejects_path=rejects)
    assert (result.snapshot.new, result.snapshot.rejected) == (3, 3)
    lines = [json.loads(x) for x in rejects.read_text("utf-8").splitlines()]
    assert [(r["position"], r["reason"]) for r in lines] == [
        (2, "ugyldig organisasjonsnummer '123456789' (kontrollsiffer)"),
        (4, "mangler navn"),
        (6, "organisasjonsnummeret står flere ganger i filen"),
    ]
    assert result.first_rejects()[0].startswith("post 2 123456789")


def test_records_of_the_other_kind_are_rejected(db: Database, brreg: Path, tmp_path: Path) -> None:
    records = (
        load(brreg / "enheter-sample.json")[:3] + load(brreg / "underenheter-sample.json")[2:3]
    )
    result = import_dump(db, write_json(tmp_path / "mixed.json", records))
    assert result.snapshot.rejected == 1
    assert "underenhet" in result.rejects[0].reason


@pytest.mark.parametrize("chunk", [97, 1000, 5000])
def test_json_stream_splits_correctly_at_any_chunk_size(
    db: Database, brreg: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, chunk: int
) -> None:
    records = load(brreg / "enheter-sample.json")
    # Nested arrays of objects and a string holding the record separator must not fool it.
    records[0]["paategninger"] = [{"infotype": "FRI", "tekst": "a},{b"}, {"infotype": "X"}]
    records[1]["navn"] = 'TRICKY "},{" AS'
    monkeypatch.setattr(dump, "JSON_CHUNK", chunk)
    monkeypatch.setattr(dump, "SNIFF", 64)
    path = write_json(tmp_path / "x.json", records, compact=chunk != 1000)
    assert import_dump(db, path).snapshot.new == 35
    assert unit_row(db, records[1]["organisasjonsnummer"])["name"] == 'TRICKY "},{" AS'


def _assert_store_unchanged(db: Database, before: dict[str, Any], snaps: int) -> None:
    assert units(db) == before
    assert len(list_snapshots(db)) == snaps


def test_truncated_gzip_stops_and_changes_nothing(
    db: Database, brreg: Path, tmp_path: Path
) -> None:
    import_dump(db, brreg / "underenheter-sample.json")
    before = units(db)
    data = gzip.compress(json.dumps(load(brreg / "enheter-sample.json")).encode())
    bad = tmp_path / "enheter_alle.json.gz"
    bad.write_bytes(data[: len(data) // 2])
    rejects = tmp_path / "rej.jsonl"
    with pytest.raises(BadFileError, match=r"enheter_alle\.json\.gz: ødelagt gzip ved byte"):
        import_dump(db, bad, rejects_path=rejects)
    _assert_store_unchanged(db, before, 1)
    assert not rejects.exists()
    assert not list(tmp_path.glob(".rejects-*"))


def test_corrupt_gzip_data(db: Database, brreg: Path, tmp_path: Path) -> None:
    data = bytearray(gzip.compress(json.dumps(load(brreg / "enheter-sample.json")).encode()))
    data[len(data) // 2] ^= 0xFF
    data[len(data) // 2 + 1] ^= 0xFF
    bad = tmp_path / "e.json.gz"
    bad.write_bytes(bytes(data))
    with pytest.raises(BadFileError, match=r"e\.json\.gz: ødelagt gzip"):
        import_dump(db, bad)
    _assert_store_unchanged(db, {}, 0)


def test_truncated_json(db: Database, brreg: Path, tmp_path: Path) -> None:
    text = json.dumps(load(brreg / "enheter-sample.json"))
    bad = tmp_path / "e.json"
    bad.write_text(text[: len(text) - 500])
    with pytest.raises(BadFileError, match="slutter midt i en post"):
        import_dump(db, bad)
    _assert_store_unchanged(db, {}, 0)


def test_invalid_json_names_the_byte(db: Database, brreg: Path, tmp_path: Path) -> None:
    text = json.dumps(load(brreg / "enheter-sample.json"))
    at = text.index('"navn"', 20000)
    bad = tmp_path / "e.json"
    bad.write_text(text[:at] + "@" + text[at + 1 :])
    with pytest.raises(BadFileError, match=r"ugyldig JSON ved byte \d"):
        import_dump(db, bad)
    _assert_store_unchanged(db, {}, 0)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"<html>Service unavailable</html>", "ikke en registerdump"),
        (b'{"_embedded": {"oppdaterteEnheter": []}}', "registry update"),
        (b"", "ikke en registerdump"),
        (b'"organisasjonsnummer","navn"\n"1","x"\n', "mangler adressekolonnene"),
    ],
)
def test_files_that_are_not_dumps(
    db: Database, tmp_path: Path, content: bytes, message: str
) -> None:
    path = tmp_path / "file.json"
    path.write_bytes(content)
    with pytest.raises(BadFileError, match=message):
        import_dump(db, path)
    _assert_store_unchanged(db, {}, 0)


def test_csv_with_unknown_column(db: Database, brreg: Path, tmp_path: Path) -> None:
    columns = (*brreg_csv.ENHETER_COLUMNS, "hemmeligFelt")
    path = write_csv(tmp_path / "e.csv", load(brreg / "enheter-sample.json"), columns)
    with pytest.raises(
        BadFileError,
        match="ukjent kolonne «hemmeligFelt» i CSV-overskriften "
        r"\(kolonne 91\)",
    ):
        import_dump(db, path)


def test_csv_row_with_wrong_field_count_is_rejected(
    db: Database, brreg: Path, tmp_path: Path
) -> None:
    path = write_csv(
        tmp_path / "e.csv", load(brreg / "enheter-sample.json")[:2], brreg_csv.ENHETER_COLUMNS
    )
    with path.open("a", encoding="utf-8") as f:
        f.write('"974760673","FOR KORT"\n')
    result = import_dump(db, path)
    assert (result.snapshot.new, result.snapshot.rejected) == (2, 1)
    assert result.rejects[0].line is not None


def test_missing_file(db: Database, tmp_path: Path) -> None:
    with pytest.raises(BadFileError, match="finnes ikke"):
        import_dump(db, tmp_path / "nope.json.gz")


def test_read_original_back_from_the_dump(db: Database, brreg: Path, tmp_path: Path) -> None:
    records = load(brreg / "enheter-sample.json")
    path = write_json(tmp_path / "e.json.gz", records)
    import_dump(db, path)
    assert read_original(db, "976389387") == records[18]


# -- an import never quietly throws the registry away ---------------------------------------

NBSP = "\u00a0"


def write_dump(path: Path, records: list[dict[str, Any]]) -> Path:
    """JSON (DuckDB's way) or CSV (the Python way), by the file's name."""
    if ".csv" in path.name:
        return write_csv(path, records, brreg_csv.ENHETER_COLUMNS)
    return write_json(path, records)


def test_units_with_an_unknown_municipality_are_kept_and_counted(
    db: Database, brreg: Path, tmp_path: Path
) -> None:
    records = load(brreg / "enheter-sample.json")
    records[0]["forretningsadresse"]["kommunenummer"] = "9999"
    records[1]["forretningsadresse"]["kommunenummer"] = "1507"  # split in 2024
    result = import_dump(db, write_json(tmp_path / "e.json", records))
    assert (result.snapshot.new, result.snapshot.unknown_municipality) == (35, 2)
    assert unit_row(db, records[0]["organisasjonsnummer"])["municipality"] == "9999"
    assert result.summary().endswith(
        " 2 med ukjent kommunenummer: de kan ikke velges etter område."
    )


def test_corrupt_csv_gzip_is_diagnosed_as_gzip(db: Database, brreg: Path, tmp_path: Path) -> None:
    path = write_csv(
        tmp_path / "e.csv.gz", load(brreg / "enheter-sample.json"), brreg_csv.ENHETER_COLUMNS
    )
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    data[len(data) // 2 + 1] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(BadFileError, match=r"e\.csv\.gz: ødelagt gzip"):
        import_dump(db, path)
    _assert_store_unchanged(db, {}, 0)


def test_a_file_imported_again_is_not_extracted_again(
    db: Database, brreg: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = import_dump(db, brreg / "enheter-sample.json")
    from varsel import registry_fast

    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("the same file was extracted again")

    monkeypatch.setattr(registry_fast, "staged", refuse)
    again = import_dump(db, brreg / "enheter-sample.json")
    assert again.already_imported
    assert again.snapshot.id == first.snapshot.id


def test_an_import_on_postgresql_waits_for_a_feed_page_of_its_register(
    pg_url: str, brreg: Path
) -> None:
    # The register's lock (snapshot.lock_register) is the feed's too: a dump's import and a
    # page applied at once would each change units under the other.
    import threading

    from varsel.db import connect
    from varsel.snapshot import lock_register

    done: list[int] = []

    def run() -> None:
        with connect(pg_url) as db:
            done.append(import_dump(db, brreg / "enheter-sample.json").snapshot.id)

    with connect(pg_url) as holder:
        with holder.transaction():
            lock_register(holder, "enheter")
            importing = threading.Thread(target=run)
            importing.start()
            importing.join(1.0)
            assert importing.is_alive()
            assert done == []
        importing.join(30)
    assert done == [1]


def test_a_register_lock_holds_only_its_own_store(
    pg_schemas: Callable[[], str], brreg: Path
) -> None:
    # Two stores in one database (schemas): an import in one does not wait for the other.
    from varsel.db import connect
    from varsel.snapshot import lock_register

    busy, other = pg_schemas(), pg_schemas()
    with connect(busy) as holder, holder.transaction():
        lock_register(holder, "enheter")
        with connect(other) as db:
            db.execute("SET lock_timeout = '2s'")  # waiting would fail, not hang
            assert import_dump(db, brreg / "enheter-sample.json").snapshot.id == 1


def test_a_json_dump_under_the_small_file_size_goes_the_python_way(
    db: Database, brreg: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from varsel import registry_fast

    path = brreg / "enheter-sample.json"
    monkeypatch.setattr(registry_fast, "SMALL_FILE", path.stat().st_size + 1)

    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("a small file was given to DuckDB")

    monkeypatch.setattr(registry_fast, "staged", refuse)
    assert import_dump(db, path).snapshot.new == 35


def test_a_json_dump_of_the_small_file_size_goes_through_duckdb(
    db: Database, brreg: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from varsel import registry_fast

    path = brreg / "enheter-sample.json"
    monkeypatch.setattr(registry_fast, "SMALL_FILE", path.stat().st_size)
    extracted = []
    staged = registry_fast.staged

    def spy(*args: Any, **kwargs: Any) -> Any:
        extracted.append(args[1])
        return staged(*args, **kwargs)

    monkeypatch.setattr(registry_fast, "staged", spy)
    assert import_dump(db, path).snapshot.new == 35
    assert extracted == [path]
