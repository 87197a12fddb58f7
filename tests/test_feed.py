from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any

from click.testing import CliRunner

from conftest import BRREG
from helpers import unit_row, units
from varsel.cli import cli
from varsel.db import Database
from varsel.feed import apply_feed
from varsel.registry import import_dump
from varsel.snapshot import list_snapshots

# A dump date before every entry in the sample page (April to September 2026) and below.
EARLY = "2026-03-01"


def test_feed_endring_applies_patches_in_id_order(db: Database, brreg: Path) -> None:
    import_dump(db, brreg / "enheter-sample.json", dump_date=EARLY)
    result = apply_feed(db, brreg / "oppdateringer-sample.json")
    s = result.snapshot
    assert s is not None
    assert (s.records, s.changed, s.rejected) == (8, 6, 0)
    assert s.skipped == 2  # patches of kapital and sisteInnsendteAarsregnskap: not kept fields
    assert unit_row(db, "923609016")["employees"] == 21272  # the newest update wins
    assert apply_feed(db, brreg / "oppdateringer-sample.json").already_applied


def feed(tmp_path: Path, entries: list[dict[str, Any]], name: str = "feed.json") -> Path:
    """A page in the registry's format: the sample page's envelope around these entries."""
    page = json.loads((BRREG / "oppdateringer-sample.json").read_bytes())
    page["_embedded"]["oppdaterteEnheter"] = entries
    page["page"]["totalElements"] = len(entries)
    path = tmp_path / name
    path.write_text(json.dumps(page, ensure_ascii=False, indent=2), "utf-8")
    return path


def entry(
    update_id: int,
    orgnr: str,
    change: str,
    ops: list[dict[str, Any]] | None = None,
    dato: str = "2026-11-20T10:00:00.000Z",
) -> dict[str, Any]:
    e: dict[str, Any] = {
        "oppdateringsid": update_id,
        "dato": dato,
        "organisasjonsnummer": orgnr,
        "endringstype": change,
    }
    if ops is not None:
        e["endringer"] = ops
    e["_links"] = {"enhet": {"href": f"https://data.brreg.no/enhetsregisteret/api/enheter/{orgnr}"}}
    return e


def test_feed_fjernet_erases_the_unit(db: Database, brreg: Path, tmp_path: Path) -> None:
    import_dump(db, brreg / "enheter-sample.json", dump_date=EARLY)
    assert db.scalar("SELECT count(*) FROM contacts WHERE orgnr = '912000354'") == 1
    result = apply_feed(db, feed(tmp_path, [entry(10, "912000354", "Fjernet")]))
    assert result.snapshot is not None
    assert result.snapshot.removed == 1
    assert db.scalar("SELECT count(*) FROM units WHERE orgnr = '912000354'") == 0
    assert db.scalar("SELECT count(*) FROM contacts WHERE orgnr = '912000354'") == 0


def test_feed_sletting_marks_deleted(db: Database, brreg: Path, tmp_path: Path) -> None:
    import_dump(db, brreg / "enheter-sample.json", dump_date=EARLY)
    apply_feed(db, feed(tmp_path, [entry(11, "934045769", "Sletting")]))
    row = unit_row(db, "934045769")
    assert row["deleted_date"] == "2026-11-20"
    assert row["gone_snapshot_id"] is not None


def test_feed_ny_and_endring_with_address_patch(db: Database, brreg: Path, tmp_path: Path) -> None:
    import_dump(db, brreg / "enheter-sample.json", dump_date=EARLY)
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
    import_dump(db, brreg / "enheter-sample.json", dump_date=EARLY)
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


# -- Fjernet always applies; nothing goes back in time ----------------------------------------


def employees(n: int) -> list[dict[str, Any]]:
    return [{"op": "replace", "path": "/antallAnsatte", "value": n}]


def test_fjernet_on_a_page_applied_late_still_erases(
    db: Database, brreg: Path, tmp_path: Path
) -> None:
    import_dump(db, brreg / "enheter-sample.json", dump_date=EARLY)
    apply_feed(db, feed(tmp_path, [entry(200, "934045769", "Sletting")], "p2.json"))
    older = [entry(90, "923609016", "Endring", employees(1)), entry(100, "912001016", "Fjernet")]
    result = apply_feed(db, feed(tmp_path, older, "p1.json"))
    assert result.snapshot is not None
    assert (result.snapshot.removed, result.snapshot.skipped) == (1, 1)
    assert db.scalar("SELECT count(*) FROM units WHERE orgnr = '912001016'") == 0
    assert unit_row(db, "923609016")["employees"] == 21496  # id 90 is older than 200
    assert result.summary().splitlines()[1:] == [
        "  1 hoppet over: allerede brukt eller eldre (oppdateringsid ≤ 200)"
    ]
    assert db.scalar("SELECT last_update_id FROM feed_state WHERE kind = 'enheter'") == 200


def test_fjernet_twice_does_no_harm(db: Database, brreg: Path, tmp_path: Path) -> None:
    import_dump(db, brreg / "enheter-sample.json", dump_date=EARLY)
    apply_feed(db, feed(tmp_path, [entry(10, "912001016", "Fjernet")], "a.json"))
    again = [entry(10, "912001016", "Fjernet"), entry(11, "934045769", "Sletting")]
    result = apply_feed(db, feed(tmp_path, again, "b.json"))
    assert result.snapshot is not None
    assert (result.snapshot.removed, result.snapshot.gone, result.snapshot.skipped) == (0, 1, 1)
    assert result.skipped == (("fjernet, men fantes ikke i lageret", 1),)


def copy_of_sample(tmp_path: Path, name: str) -> Path:
    """The sample dump under another name and content (another file, as a new day's dump)."""
    records = json.loads((BRREG / "enheter-sample.json").read_bytes())
    records[0]["navn"] = records[0]["navn"] + " " + name
    path = tmp_path / name
    path.write_text(json.dumps(records, ensure_ascii=False), "utf-8")
    return path


def removed_units(db: Database) -> list[tuple[str, str, str]]:
    return [tuple(r) for r in db.query("SELECT orgnr, kind, removed_on FROM removed_units")]


def test_a_dump_made_before_a_removal_does_not_bring_the_unit_back(
    db: Database, tmp_path: Path
) -> None:
    first = import_dump(db, BRREG / "enheter-sample.json", dump_date=EARLY)
    apply_feed(db, feed(tmp_path, [entry(10, "912000354", "Fjernet")]))  # on 2026-11-20
    assert removed_units(db) == [("912000354", "enheter", "2026-11-20")]
    # The day's dump, made at about 05:00 before the removal, imported after the feed.
    same_day = import_dump(db, copy_of_sample(tmp_path, "dag.json"), dump_date="2026-11-20")
    # And the first dump again, to undo a wrong import.
    undone = import_dump(db, BRREG / "enheter-sample.json")
    for result in (same_day, undone):
        assert result.snapshot.removed == 1
        assert result.summary().endswith(
            " 1 er slettet igjen: registeret har fjernet dem etter at dumpen ble laget."
        )
    assert undone.reapplied == first.snapshot.id
    assert db.scalar("SELECT count(*) FROM units WHERE orgnr = '912000354'") == 0
    assert db.scalar("SELECT count(*) FROM contacts WHERE orgnr = '912000354'") == 0
    assert removed_units(db) == [("912000354", "enheter", "2026-11-20")]  # still honoured


def test_a_dump_made_after_a_removal_that_holds_the_unit_publishes_it_again(
    db: Database, tmp_path: Path
) -> None:
    import_dump(db, BRREG / "enheter-sample.json", dump_date=EARLY)
    apply_feed(db, feed(tmp_path, [entry(10, "912000354", "Fjernet")]))
    later = import_dump(db, copy_of_sample(tmp_path, "senere.json"), dump_date="2026-11-21")
    assert later.snapshot.removed == 0
    assert unit_row(db, "912000354")["name"]  # the registry publishes it again: it is back
    assert removed_units(db) == []
    # A removal the registry repeats later is honoured again, by its own day.
    apply_feed(
        db,
        feed(
            tmp_path, [entry(11, "912000354", "Fjernet", dato="2026-11-25T09:00:00.000Z")], "b.json"
        ),
    )
    assert removed_units(db) == [("912000354", "enheter", "2026-11-25")]
    assert db.scalar("SELECT count(*) FROM units WHERE orgnr = '912000354'") == 0


def test_a_late_page_does_not_move_a_removal_to_an_earlier_day(
    db: Database, tmp_path: Path
) -> None:
    import_dump(db, BRREG / "enheter-sample.json", dump_date=EARLY)
    apply_feed(db, feed(tmp_path, [entry(10, "912000354", "Fjernet")], "a.json"))
    early = entry(5, "912000354", "Fjernet", dato="2026-10-01T09:00:00.000Z")
    apply_feed(db, feed(tmp_path, [early], "b.json"))
    assert removed_units(db) == [("912000354", "enheter", "2026-11-20")]


def test_entries_older_than_the_newest_dump_are_skipped(
    db: Database, brreg: Path, tmp_path: Path
) -> None:
    records = json.loads((brreg / "enheter-sample.json").read_bytes())
    equinor = next(r for r in records if r["organisasjonsnummer"] == "923609016")
    equinor["antallAnsatte"] = 22000
    dump = tmp_path / "enheter_alle.json"
    dump.write_text(json.dumps(records, ensure_ascii=False), "utf-8")
    import_dump(db, dump, dump_date="2026-11-28")
    page = json.loads((brreg / "oppdateringer-sample.json").read_bytes())
    removed = entry(25205461, "912001016", "Fjernet", dato="2026-09-15T08:00:00.000Z")
    page["_embedded"]["oppdaterteEnheter"].append(removed)
    path = tmp_path / "oppdateringer.json"
    path.write_text(json.dumps(page, ensure_ascii=False), "utf-8")

    result = apply_feed(db, path)
    s = result.snapshot
    assert s is not None
    assert (s.records, s.changed, s.removed, s.skipped) == (9, 0, 1, 8)
    assert unit_row(db, "923609016")["employees"] == 22000  # the dump's, not April's to September's
    assert db.scalar("SELECT count(*) FROM units WHERE orgnr = '912001016'") == 0
    assert result.skipped == (("eldre enn siste fullstendige import (dump fra 2026-11-28)", 8),)
    # The skipped entries are used: the next page goes on from them.
    assert db.scalar("SELECT last_update_id FROM feed_state WHERE kind = 'enheter'") == 25205461


def test_an_entry_dated_the_dump_day_is_applied(db: Database, brreg: Path, tmp_path: Path) -> None:
    # The dump is built at about 05:00 on its date; `dato` is UTC. The day before is in the
    # dump; the dump's own day is applied (most of it came after the dump).
    import_dump(db, brreg / "enheter-sample.json", dump_date="2026-11-20")
    entries = [
        entry(40, "923609016", "Endring", employees(1), dato="2026-11-19T23:59:59.999Z"),
        entry(41, "934045769", "Sletting", dato="2026-11-19T12:00:00.000Z"),
        entry(42, "927124238", "Endring", employees(400), dato="2026-11-20T00:00:00.000Z"),
        entry(43, "935478715", "Endring", employees(15200), dato="2026-11-20T21:00:00.000Z"),
    ]
    result = apply_feed(db, feed(tmp_path, entries))
    assert result.snapshot is not None
    assert (result.snapshot.changed, result.snapshot.skipped) == (2, 2)
    assert unit_row(db, "923609016")["employees"] == 21496
    assert unit_row(db, "934045769")["deleted_date"] is None
    assert unit_row(db, "927124238")["employees"] == 400
    assert unit_row(db, "935478715")["employees"] == 15200


def test_an_entry_with_a_bad_date_is_rejected(db: Database, brreg: Path, tmp_path: Path) -> None:
    import_dump(db, brreg / "enheter-sample.json", dump_date=EARLY)
    bad = entry(50, "923609016", "Endring", employees(1), dato="i går")
    result = apply_feed(db, feed(tmp_path, [bad]))
    assert result.snapshot is not None
    assert result.snapshot.rejected == 1
    assert result.notes == ("avvist: 923609016: ugyldig dato «i går»",)
    assert unit_row(db, "923609016")["employees"] == 21496


def test_a_patch_whose_test_fails_is_rejected_and_changes_nothing(
    db: Database, brreg: Path, tmp_path: Path
) -> None:
    import_dump(db, brreg / "enheter-sample.json", dump_date=EARLY)
    ops = [
        {"op": "test", "path": "/navn", "value": "STATOIL ASA"},
        {"op": "replace", "path": "/navn", "value": "NYTT NAVN ASA"},
    ]
    result = apply_feed(db, feed(tmp_path, [entry(50, "923609016", "Endring", ops)]))
    assert result.snapshot is not None
    assert (result.snapshot.changed, result.snapshot.rejected) == (0, 1)
    assert result.notes == (
        "avvist 923609016: JSON-Patch-testen for /navn feilet: lageret har «EQUINOR ASA», "
        "endringen forventer «STATOIL ASA»",
    )
    assert unit_row(db, "923609016")["name"] == "EQUINOR ASA"


def test_a_patch_past_the_end_of_a_list_is_rejected_and_grows_nothing(
    db: Database, brreg: Path, tmp_path: Path
) -> None:
    # A hostile page's index would have padded the list to a billion entries.
    import_dump(db, brreg / "enheter-sample.json", dump_date=EARLY)
    before = unit_row(db, "923609016")
    ops = [{"op": "add", "path": "/forretningsadresse/adresse/999999999/x", "value": "y"}]
    result = apply_feed(db, feed(tmp_path, [entry(50, "923609016", "Endring", ops)]))
    assert result.snapshot is not None
    assert (result.snapshot.changed, result.snapshot.rejected) == (0, 1)
    assert result.notes == (
        "avvist 923609016: JSON-Patch: indeksen «999999999» er utenfor en liste på 1",
    )
    assert unit_row(db, "923609016") == before


def test_a_patch_whose_test_holds_is_applied(db: Database, brreg: Path, tmp_path: Path) -> None:
    import_dump(db, brreg / "enheter-sample.json", dump_date=EARLY)
    ops = [
        {"op": "test", "path": "/antallAnsatte", "value": 21496},
        {"op": "test", "path": "/kapital/belop", "value": 1},  # not kept: not judged
        {"op": "replace", "path": "/antallAnsatte", "value": 21500},
    ]
    result = apply_feed(db, feed(tmp_path, [entry(50, "923609016", "Endring", ops)]))
    assert result.snapshot is not None
    assert (result.snapshot.changed, result.snapshot.rejected) == (1, 0)
    assert unit_row(db, "923609016")["employees"] == 21500


def test_the_summary_of_one_change_says_endring(db: Database, brreg: Path, tmp_path: Path) -> None:
    import_dump(db, brreg / "enheter-sample.json", dump_date=EARLY)
    result = apply_feed(db, feed(tmp_path, [entry(50, "923609016", "Endring", employees(21500))]))
    assert result.summary() == (
        "feed.json: 1 endring i enheter — 0 nye, 1 endret, 0 slettet, 0 fjernet, "
        "0 hoppet over, 0 avvist (snapshot 2)."
    )


SAMPLE_PAGE = (BRREG / "oppdateringer-sample.json").read_bytes()


def test_registry_update_checks_every_page_before_applying_any(
    db: Database, brreg: Path, tmp_path: Path
) -> None:
    import_dump(db, brreg / "enheter-sample.json", dump_date=EARLY)
    good = feed(tmp_path, [entry(11, "934045769", "Sletting")])
    bad = tmp_path / "bad.json.gz"
    bad.write_bytes(gzip.compress(SAMPLE_PAGE)[:300])
    result = CliRunner().invoke(cli, ["--db", db.url, "registry", "update", str(good), str(bad)])
    assert result.exit_code == 2
    assert result.output == (
        f"varsel: {bad}: ødelagt gzip ved byte 300: filen slutter før gzip-strømmen er ferdig "
        "(avkortet nedlasting?)\n"
    )
    assert len(list_snapshots(db)) == 1
    assert unit_row(db, "934045769")["deleted_date"] is None


def test_registry_update_prints_why_entries_were_skipped(
    db: Database, brreg: Path, tmp_path: Path
) -> None:
    import_dump(db, brreg / "enheter-sample.json", dump_date="2026-11-28")
    page = tmp_path / "oppdateringer.json.gz"
    page.write_bytes(gzip.compress(SAMPLE_PAGE))
    result = CliRunner().invoke(cli, ["--db", db.url, "registry", "update", str(page)])
    assert result.exit_code == 0, result.output
    assert " ".join(result.output.split()) == (
        "oppdateringer.json.gz: 8 endringer i enheter — 0 nye, 0 endret, 0 slettet, 0 fjernet, "
        "8 hoppet over, 0 avvist (snapshot 2). 8 hoppet over: eldre enn siste fullstendige "
        "import (dump fra 2026-11-28)"
    )


def test_fjernet_of_a_parent_the_store_lacks_still_erases_its_number_from_sub_units(
    db: Database, brreg: Path, tmp_path: Path
) -> None:
    import_dump(db, brreg / "underenheter-sample.json", dump_date=EARLY)
    result = apply_feed(db, feed(tmp_path, [entry(10, "980001482", "Fjernet")]))
    assert result.snapshot is not None
    assert (result.snapshot.removed, result.snapshot.skipped) == (1, 0)
    assert db.scalar("SELECT count(*) FROM units WHERE parent_orgnr = '980001482'") == 0
    assert unit_row(db, "930187534")["parent_orgnr"] is None  # LYSE AS AVD BODØ, kept


def test_an_entry_for_a_unit_of_the_other_kind_is_rejected_and_changes_nothing(
    db: Database, brreg: Path, tmp_path: Path
) -> None:
    # One number is one unit: the enheter feed's Ny or Sletting for a sub-unit's number would
    # have turned it into a main unit or marked it deleted. As the import rejects it.
    import_dump(db, brreg / "underenheter-sample.json", dump_date=EARLY)
    before = unit_row(db, "930187534")
    ny = entry(60, "930187534", "Ny", [{"op": "replace", "path": "", "value": {"navn": "X AS"}}])
    gone = entry(61, "930187534", "Sletting")
    result = apply_feed(db, feed(tmp_path, [ny, gone]))
    assert result.snapshot is not None
    assert (result.snapshot.new, result.snapshot.gone, result.snapshot.rejected) == (0, 0, 2)
    reason = "organisasjonsnummeret er en underenhet i lageret"
    assert result.notes == (f"avvist 930187534: {reason}",) * 2
    assert unit_row(db, "930187534") == before


def test_a_page_is_refused_when_entries_are_older_than_a_guessed_dump_date(
    db: Database, brreg: Path, tmp_path: Path
) -> None:
    import os
    import shutil
    from datetime import datetime

    # The audit's case: a copied dump (no .meta.json) gets the copy's time as its date.
    dump = tmp_path / "enheter-sample.json"
    shutil.copy(brreg / "enheter-sample.json", dump)
    os.utime(dump, (0, datetime(2026, 11, 29, 12).timestamp()))
    runner = CliRunner()
    imported = runner.invoke(cli, ["--db", db.url, "registry", "import", str(dump)])
    assert imported.exit_code == 0, imported.output
    assert "Dumpdatoen 2026-11-29 er gjettet fra filens endringstid" in imported.output
    before = units(db)

    page = tmp_path / "oppdateringer.json"
    page.write_bytes(SAMPLE_PAGE)
    refused = runner.invoke(cli, ["--db", db.url, "registry", "update", str(page)])
    assert refused.exit_code == 2
    assert " ".join(refused.output.split()) == (
        f"varsel: {page}: ikke lagt inn: 8 endringer er eldre enn dumpdatoen 2026-11-29, som er "
        "gjettet fra dumpfilens endringstid. Importer dumpen igjen med riktig dato (varsel "
        "registry import FIL --dump-date ÅÅÅÅ-MM-DD; samme dato bekrefter den) og legg så inn "
        "siden; lageret er ikke endret."
    )
    assert units(db) == before
    assert [s.source for s in list_snapshots(db)] == ["dump"]
    assert db.scalar("SELECT count(*) FROM feed_state") == 0

    # The fix the message names: the real date, then the page.
    fixed = runner.invoke(
        cli, ["--db", db.url, "registry", "import", str(dump), "--dump-date", "2025-12-15"]
    )
    assert fixed.exit_code == 0, fixed.output
    assert "rettet fra 2026-11-29 (gjettet) til 2025-12-15" in fixed.output
    applied = runner.invoke(cli, ["--db", db.url, "registry", "update", str(page)])
    assert applied.exit_code == 0, applied.output
    assert "6 endret" in applied.output
    assert unit_row(db, "923609016")["employees"] == 21272


def test_a_feed_page_is_dated_by_the_newest_entry_it_applied(
    db: Database, brreg: Path, tmp_path: Path
) -> None:
    import_dump(db, brreg / "enheter-sample.json", dump_date=EARLY)
    result = apply_feed(
        db,
        feed(
            tmp_path,
            [
                entry(10, "934045769", "Sletting", dato="2026-09-14T22:03:45.964Z"),
                entry(11, "912000354", "Sletting", dato="2026-08-01T10:00:00.000Z"),
                entry(12, "999999999", "Sletting", dato="2026-10-01T10:00:00.000Z"),  # not held
            ],
        ),
    )
    assert result.snapshot is not None
    assert (result.snapshot.gone, result.snapshot.skipped) == (2, 1)
    assert result.snapshot.dump_date == "2026-09-14"  # not the skipped entry's, not today


def test_a_dump_imported_after_a_page_starts_the_feed_afresh_from_its_day(
    db: Database, brreg: Path, tmp_path: Path
) -> None:
    # The page's change came at 10:00 on the 20th; the dump of the 20th was made at about 05:00
    # and so has the value from before it. Imported after the page, the dump undoes the
    # change: the page given again applies again, and its ids are no longer taken as used.
    import_dump(db, brreg / "enheter-sample.json", dump_date=EARLY)
    page = feed(tmp_path, [entry(500, "927124238", "Endring", employees(4321))])
    assert apply_feed(db, page).snapshot is not None
    assert unit_row(db, "927124238")["employees"] == 4321
    records = json.loads((brreg / "enheter-sample.json").read_bytes())
    records[0]["navn"] += " NY"  # another file than the first dump
    dump = tmp_path / "enheter_alle.json"
    dump.write_text(json.dumps(records, ensure_ascii=False), "utf-8")
    import_dump(db, dump, dump_date="2026-11-20")
    assert unit_row(db, "927124238")["employees"] == 398  # as the dump has it
    assert db.scalar("SELECT count(*) FROM feed_state") == 0
    again = apply_feed(db, page)
    assert not again.already_applied
    assert again.snapshot is not None
    assert again.snapshot.changed == 1
    assert unit_row(db, "927124238")["employees"] == 4321
    assert apply_feed(db, page).already_applied  # and once is enough, until the next dump
