from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from rich.console import Console

from test_segment import shared_address_records, write
from varsel.db import Database
from varsel.registry import import_dump
from varsel.segment import preview
from varsel.segment_criteria import Criteria
from varsel.segment_view import render_preview


def rendered(db: Database, criteria: Criteria, width: int = 80) -> str:
    console = Console(record=True, width=width, highlight=False)
    render_preview(console, preview(db, criteria))
    return console.export_text()


def rows(text: str) -> list[list[str]]:
    """The cells of every table row in the text, stripped."""
    return [
        [cell.strip() for cell in line.split("│")[1:-1]]
        for line in text.splitlines()
        if line.startswith("│")
    ]


def test_tables_show_domains_as_people_write_them_and_no_personal_address(
    db: Database, brreg: Path, tmp_path: Path
) -> None:
    import_dump(db, write(tmp_path / "e.json", shared_address_records(brreg)))
    text = rendered(db, Criteria(municipalities=("0301",)))
    assert ["post@oslofrisør.no", "2"] in rows(text)
    assert ["oslofrisør.no", "2"] in rows(text)
    assert "xn--" not in text
    assert ["post@eriksen-frisor.no", "2"] in rows(text)
    assert "marte" not in text
    assert "1 personlig adresse er ikke vist." in text


def test_foreign_addresses_are_a_row_of_their_own(db: Database, brreg: Path) -> None:
    import_dump(db, brreg / "enheter-sample.json")
    table = rows(rendered(db, Criteria(), width=120))
    assert ["Adresse i utlandet", "3", "0", "0", "3"] in table
    assert next(row for row in table if row[0] == "Sum")[:2] == ["Sum", "35"]
    assert not any(row[0] in ("utland", "Utlandet") for row in table)


def test_the_employee_rule_is_stated(db: Database, brreg: Path) -> None:
    import_dump(db, brreg / "enheter-sample.json")
    assert "Regel for ansatte: ingen krav til ansatte." in rendered(db, Criteria())
    text = rendered(db, Criteria(min_employees=10), width=200)
    assert "Regel for ansatte" not in text
    assert (
        "Merk: Ansatte: minst 10 etter oppgitt antall. Enheter med skjult antall (1–4) har "
        "færre enn 10 og er ikke med."
    ) in text


def test_after_a_change_feed_the_dump_date_and_the_newest_changes_day_are_shown(
    db: Database, brreg: Path
) -> None:
    from varsel.feed import apply_feed

    import_dump(db, brreg / "enheter-sample.json", dump_date="2026-03-01")
    before = preview(db, Criteria(municipalities=("0301",)))
    assert (before.as_dict()["dump_date"], before.as_dict()["feed_updated"]) == (
        "2026-03-01",
        None,
    )
    apply_feed(db, brreg / "oppdateringer-sample.json")
    after = preview(db, Criteria(municipalities=("0301",)))
    # The newest entry the page applied (2026-09-14T22:03Z), not the day it was applied: the
    # data is as old as the registry's last change in it.
    newest = after.as_dict()["feed_updated"]
    assert after.as_dict()["dump_date"] == "2026-03-01"
    assert newest == "2026-09-14"  # the entry's UTC day, as the feed compares entries
    first = rendered(db, Criteria(municipalities=("0301",)), width=200).splitlines()[0]
    assert first == (
        f"Registerdata: snapshot {after.snapshot.id}, dump 2026-03-01, "  # type: ignore[union-attr]
        f"oppdatert fra endringsloggen til {newest}"
    )


def test_one_of_a_kind_is_said_in_the_singular(db: Database, brreg: Path) -> None:
    import_dump(db, brreg / "enheter-sample.json")
    base = preview(db, Criteria(min_employees=3, employee_rule="exact"))
    one = replace(base, units=1, undecided=1, personal_addresses=1, role_addresses=1)
    console = Console(record=True, width=200, highlight=False)
    render_preview(console, one)
    text = console.export_text()
    assert "1 enhet valgt" in text
    assert "Uavgjort etter ansatte-regelen: 1 enhet, ikke med." in text
    assert (
        "1 e-postadresse tilhører enkeltpersonforetak (personopplysninger); "
        "1 er en rolleadresse som post@."
    ) in text
    assert "1 enheter" not in text
    many = replace(base, units=2, undecided=2, personal_addresses=2, role_addresses=0)
    console = Console(record=True, width=200, highlight=False)
    render_preview(console, many)
    text = console.export_text()
    assert "2 enheter valgt" in text
    assert "Uavgjort etter ansatte-regelen: 2 enheter, ikke med." in text
    assert "2 e-postadresser tilhører enkeltpersonforetak (personopplysninger); 0 er " in text


def test_a_store_with_only_sub_units_says_the_units_are_missing(db: Database, brreg: Path) -> None:
    import_dump(db, brreg / "underenheter-sample.json")
    text = rendered(db, Criteria(municipalities=("0301",)), width=200)
    assert text.startswith(
        "Ingen enheter (hovedenheter) importert ennå: et utvalg velger blant dem "
        "(varsel registry import ENHETER-DUMP).\n"
    )
