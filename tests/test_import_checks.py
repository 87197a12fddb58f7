"""The registry import's safety checks: files imported before, older dumps, the shrink refusal."""

from __future__ import annotations

import copy
import datetime as dt
import os
from pathlib import Path
from typing import Any

import pytest

from helpers import units
from test_registry import NBSP, load, write_dump, write_json
from varsel.db import Database
from varsel.errors import UserError
from varsel.import_checks import ShrinkRefused
from varsel.registry import import_dump
from varsel.snapshot import list_snapshots

# JSON dumps of every size go through DuckDB here, as national dumps do (conftest).
pytestmark = pytest.mark.usefixtures("every_json_dump_through_duckdb")


def _assert_store_unchanged(db: Database, before: dict[str, Any], snaps: int) -> None:
    assert units(db) == before
    assert len(list_snapshots(db)) == snaps


def test_same_file_twice_changes_nothing(db: Database, brreg: Path, tmp_path: Path) -> None:
    path = write_json(tmp_path / "enheter_alle.json.gz", load(brreg / "enheter-sample.json"))
    first = import_dump(db, path)
    before = units(db)
    second = import_dump(db, path)
    assert second.already_imported
    assert second.snapshot.id == first.snapshot.id
    assert units(db) == before
    assert len(list_snapshots(db)) == 1


def test_older_dump_is_refused(db: Database, brreg: Path, tmp_path: Path) -> None:
    records = load(brreg / "enheter-sample.json")
    import_dump(db, write_json(tmp_path / "a.json", records), dump_date="2026-02-01")
    with pytest.raises(UserError, match="nyere"):
        import_dump(db, write_json(tmp_path / "b.json", records[:3]), dump_date="2026-01-01")


@pytest.mark.parametrize("name", ["e.json.gz", "e.csv.gz"])
def test_an_import_that_marks_many_units_gone_is_refused(
    db: Database, brreg: Path, tmp_path: Path, name: str
) -> None:
    records = load(brreg / "enheter-sample.json")
    import_dump(db, write_json(tmp_path / "first.json", records), dump_date="2026-01-01")
    before = units(db)
    small = write_dump(tmp_path / name, records[:33])  # 2 of 35 gone: 5.7 %
    with pytest.raises(ShrinkRefused) as refused:
        import_dump(db, small, dump_date="2026-02-01")
    assert refused.value.message == (
        f"{small}: ikke importert: 2 av 35 enheter i lageret ville blitt merket som borte "
        f"(5,7{NBSP}%; grensen er 5{NBSP}%). Importen ville gitt 0 nye, 0 endret, 33 uendret, "
        "2 borte, 0 avvist; lageret er ikke endret. Er filen riktig, importer den med "
        "--allow-shrink."
    )
    assert refused.value.exit_status == 2
    _assert_store_unchanged(db, before, 1)
    result = import_dump(db, small, dump_date="2026-02-01", allow_shrink=True)
    assert result.snapshot.gone == 2


@pytest.mark.parametrize("name", ["e.json", "e.csv"])
def test_an_import_that_rejects_many_records_is_refused(
    db: Database, brreg: Path, tmp_path: Path, name: str
) -> None:
    records = load(brreg / "enheter-sample.json")
    import_dump(db, write_json(tmp_path / "first.json", records), dump_date="2026-01-01")
    before = units(db)
    bad = copy.deepcopy(records)
    for r in bad[:4]:  # 4 of 35 rejected: 11.4 %
        r["antallAnsatte"] = -1
    rejects = tmp_path / "rejects.jsonl"
    path = write_dump(tmp_path / name, bad)
    with pytest.raises(ShrinkRefused, match=f"4 av 35 poster ville blitt avvist \\(11,4{NBSP}%"):
        import_dump(db, path, rejects_path=rejects, dump_date="2026-02-01")
    _assert_store_unchanged(db, before, 1)
    assert len(rejects.read_text("utf-8").splitlines()) == 4  # to see why


def test_the_first_import_into_an_empty_store_is_never_refused(
    db: Database, brreg: Path, tmp_path: Path
) -> None:
    records = load(brreg / "enheter-sample.json")[:4]
    for r in records[:3]:
        r["antallAnsatte"] = -1
    result = import_dump(db, write_json(tmp_path / "e.json", records))
    assert (result.snapshot.new, result.snapshot.rejected) == (1, 3)


def test_an_older_file_imported_again_is_applied_again(
    db: Database, brreg: Path, tmp_path: Path
) -> None:
    records = load(brreg / "enheter-sample.json")
    good = write_json(tmp_path / "good.json", records)
    first = import_dump(db, good, dump_date="2026-01-01")
    wrong = write_json(tmp_path / "wrong.json", records[:3])
    import_dump(db, wrong, dump_date="2026-02-01", allow_shrink=True)
    assert db.scalar("SELECT count(*) FROM units WHERE gone_snapshot_id IS NULL") == 3

    undo = import_dump(db, good, allow_shrink=True)  # 3 of 3 would go: the guard holds
    assert not undo.already_imported
    assert (undo.snapshot.new, undo.snapshot.changed, undo.snapshot.gone) == (0, 32, 0)
    assert undo.snapshot.dump_date == "2026-01-01"
    assert db.scalar("SELECT count(*) FROM units WHERE gone_snapshot_id IS NULL") == 35
    assert undo.summary().endswith(
        f"Filen var importert før (snapshot {first.snapshot.id}) og er brukt på nytt."
    )
    again = import_dump(db, good)
    assert (again.already_imported, again.snapshot.id) == (True, undo.snapshot.id)


def test_a_dump_date_after_today_is_refused_and_nothing_is_imported(
    db: Database, brreg: Path, tmp_path: Path
) -> None:
    path = write_json(tmp_path / "a.json", load(brreg / "enheter-sample.json")[:3])
    with pytest.raises(UserError) as refused:
        import_dump(db, path, dump_date="2099-01-01")
    assert refused.value.message == "--dump-date «2099-01-01»: datoen er etter i dag"
    assert db.scalar("SELECT count(*) FROM snapshots") == 0
    assert db.scalar("SELECT count(*) FROM units") == 0


@pytest.mark.parametrize("given", ["1800-01-01", "1994-12-31"])
def test_a_dump_date_before_the_registry_began_is_refused(
    db: Database, brreg: Path, tmp_path: Path, given: str
) -> None:
    path = write_json(tmp_path / "a.json", load(brreg / "enheter-sample.json")[:3])
    with pytest.raises(UserError) as refused:
        import_dump(db, path, dump_date=given)
    assert refused.value.message == (
        f"--dump-date «{given}»: datoen er før 1995, da Enhetsregisteret ble opprettet"
    )
    assert db.scalar("SELECT count(*) FROM snapshots") == 0
    assert import_dump(db, path, dump_date="1995-01-01").snapshot.dump_date == "1995-01-01"


def test_a_meta_json_dump_date_after_today_is_refused_and_nothing_is_imported(
    db: Database, brreg: Path, tmp_path: Path
) -> None:
    path = write_json(tmp_path / "e.json.gz", load(brreg / "enheter-sample.json"))
    sidecar = tmp_path / "e.json.gz.meta.json"
    sidecar.write_text('{"dump_date": "2099-12-01"}', "utf-8")
    with pytest.raises(UserError) as caught:
        import_dump(db, path)
    assert caught.value.message == (
        f"{sidecar}: dumpdatoen 2099-12-01 er etter i dag; oppgi riktig dato med "
        "--dump-date ÅÅÅÅ-MM-DD"
    )
    _assert_store_unchanged(db, {}, 0)
    assert import_dump(db, path, dump_date="2025-11-01").snapshot.dump_date == "2025-11-01"


def test_a_date_from_the_files_time_is_said_to_be_guessed(
    db: Database, brreg: Path, tmp_path: Path
) -> None:
    path = write_json(tmp_path / "a.json", load(brreg / "enheter-sample.json")[:3])
    os.utime(path, (0, dt.datetime(2026, 3, 4, 12).timestamp()))
    guessed = import_dump(db, path)
    assert guessed.snapshot.dump_date == "2026-03-04"
    assert guessed.snapshot.dump_date_guessed
    assert guessed.summary().endswith(
        " Dumpdatoen 2026-03-04 er gjettet fra filens endringstid (en kopi har kopieringens "
        "tid): er den feil, importer filen igjen med --dump-date ÅÅÅÅ-MM-DD før du legger inn "
        "endringssider (de ser av datoen hvilke endringer dumpen alt har)."
    )
    given = import_dump(
        db,
        write_json(tmp_path / "b.json", load(brreg / "enheter-sample.json")[:4]),
        dump_date="2026-03-05",
    )
    assert "gjettet" not in given.summary()


def test_a_download_day_in_meta_json_is_said_to_be_guessed(
    db: Database, brreg: Path, tmp_path: Path
) -> None:
    # registry download without Last-Modified wrote the day of the download as the date.
    path = write_json(tmp_path / "e.json.gz", load(brreg / "enheter-sample.json")[:3])
    sidecar = tmp_path / "e.json.gz.meta.json"
    sidecar.write_text('{"dump_date": "2026-03-04", "dump_date_guessed": true}', "utf-8")
    guessed = import_dump(db, path)
    assert (guessed.snapshot.dump_date, guessed.snapshot.dump_date_guessed) == ("2026-03-04", True)
    assert guessed.summary().endswith(
        " Dumpdatoen 2026-03-04 er gjettet fra nedlastingsdagen (registeret sendte ingen "
        "Last-Modified): er den feil, importer filen igjen med --dump-date ÅÅÅÅ-MM-DD før du "
        "legger inn endringssider (de ser av datoen hvilke endringer dumpen alt har)."
    )
    # A sidecar without the key (as every one before it) is the registry's word, as before.
    other = write_json(tmp_path / "f.json.gz", load(brreg / "enheter-sample.json")[:4])
    (tmp_path / "f.json.gz.meta.json").write_text('{"dump_date": "2026-03-05"}', "utf-8")
    assert not import_dump(db, other).snapshot.dump_date_guessed


def _guessed_import(db: Database, brreg: Path, tmp_path: Path) -> tuple[Path, int]:
    """A copied dump (no .meta.json) imported with its file time, 2026-11-20, as its date."""
    path = write_json(tmp_path / "kopi.json", load(brreg / "enheter-sample.json")[:3])
    os.utime(path, (0, dt.datetime(2026, 11, 20, 12).timestamp()))
    first = import_dump(db, path)
    assert (first.snapshot.dump_date, first.snapshot.dump_date_guessed) == ("2026-11-20", True)
    return path, first.snapshot.id


def test_already_imported_says_the_dump_date_not_the_import_day(
    db: Database, brreg: Path, tmp_path: Path
) -> None:
    path = write_json(tmp_path / "a.json", load(brreg / "enheter-sample.json")[:3])
    first = import_dump(db, path, dump_date="2025-12-15")
    again = import_dump(db, path)
    assert again.summary() == (
        f"a.json: allerede importert som snapshot {first.snapshot.id} (dumpdato 2025-12-15); "
        "ingenting endret."
    )


@pytest.mark.parametrize(
    ("given", "message"),
    [
        ("2030-01-01", "--dump-date «2030-01-01»: datoen er etter i dag"),
        ("15.12.2025", "--dump-date «15.12.2025»: skriv datoen som ÅÅÅÅ-MM-DD"),
        ("20251215", "--dump-date «20251215»: skriv datoen som ÅÅÅÅ-MM-DD"),
        ("", "--dump-date «»: skriv datoen som ÅÅÅÅ-MM-DD"),
        ("2025-W50-1", "--dump-date «2025-W50-1»: skriv datoen som ÅÅÅÅ-MM-DD"),
        ("2025-02-30", "--dump-date «2025-02-30»: den datoen finnes ikke"),
    ],
)
def test_a_bad_dump_date_is_refused_also_for_a_file_already_imported(
    db: Database, brreg: Path, tmp_path: Path, given: str, message: str
) -> None:
    path = write_json(tmp_path / "a.json", load(brreg / "enheter-sample.json")[:3])
    import_dump(db, path, dump_date="2025-12-15")
    with pytest.raises(UserError) as refused:
        import_dump(db, path, dump_date=given)
    assert refused.value.message == message
    assert [s.dump_date for s in list_snapshots(db)] == ["2025-12-15"]


def test_a_guessed_date_is_corrected_by_importing_the_file_again_with_the_date(
    db: Database, brreg: Path, tmp_path: Path
) -> None:
    from varsel import audit

    path, snapshot_id = _guessed_import(db, brreg, tmp_path)
    before = units(db)
    corrected = import_dump(db, path, dump_date="2025-12-15")
    assert corrected.already_imported
    assert corrected.summary() == (
        f"kopi.json: allerede importert som snapshot {snapshot_id}; dumpdatoen er rettet fra "
        "2026-11-20 (gjettet) til 2025-12-15. Ellers er ingenting endret."
    )
    (snap,) = list_snapshots(db)
    assert (snap.dump_date, snap.dump_date_guessed) == ("2025-12-15", False)
    assert units(db) == before
    last = audit.entries(db, action=audit.Action.REGISTRY_IMPORT)[-1]
    assert last.data == {"dump_date": "2025-12-15", "guessed_dump_date": "2026-11-20"}
    # Now given, the date is the operator's word: another one is refused.
    with pytest.raises(UserError) as refused:
        import_dump(db, path, dump_date="2025-12-16")
    assert refused.value.message == (
        f"{path}: allerede importert som snapshot {snapshot_id} med dumpdato 2025-12-15; "
        "--dump-date 2025-12-16 er ikke brukt: den datoen ble oppgitt ved importen "
        "(--dump-date eller .meta.json), og bare en gjettet dato kan rettes"
    )


def test_the_same_date_given_again_confirms_a_guessed_one(
    db: Database, brreg: Path, tmp_path: Path
) -> None:
    path, snapshot_id = _guessed_import(db, brreg, tmp_path)
    confirmed = import_dump(db, path, dump_date="2026-11-20")
    assert confirmed.summary() == (
        f"kopi.json: allerede importert som snapshot {snapshot_id}; dumpdatoen 2026-11-20 er "
        "bekreftet og ikke lenger gjettet."
    )
    assert not list_snapshots(db)[0].dump_date_guessed


def test_a_guessed_date_is_not_corrected_after_a_feed_page(
    db: Database, brreg: Path, tmp_path: Path
) -> None:
    from test_feed import entry, feed
    from varsel.feed import apply_feed

    path, snapshot_id = _guessed_import(db, brreg, tmp_path)
    # A page whose entries are all after the guessed date is applied as usual.
    page = apply_feed(db, feed(tmp_path, [entry(10, "912000354", "Sletting")]))
    assert page.snapshot is not None
    with pytest.raises(UserError) as refused:
        import_dump(db, path, dump_date="2025-12-15")
    assert refused.value.message == (
        f"{path}: allerede importert som snapshot {snapshot_id} med dumpdato 2026-11-20; "
        f"--dump-date 2025-12-15 er ikke brukt: endringssider er lagt inn etter den (snapshot "
        f"{page.snapshot.id}) og har hoppet over endringer eldre enn 2026-11-20; de kommer ikke "
        "tilbake om datoen rettes. Last ned og importer en ny dump (varsel registry download), "
        "så endringssidene etter den"
    )
    assert list_snapshots(db)[0].dump_date == "2026-11-20"
