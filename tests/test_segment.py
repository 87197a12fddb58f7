from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from varsel.cli import cli
from varsel.db import Database
from varsel.errors import BadCriteriaError
from varsel.registry import import_dump
from varsel.segment import Criteria, preview, resolve, selection_sql


def load(path: Path) -> list[dict[str, Any]]:
    return json.loads(path.read_text("utf-8"))  # type: ignore[no-any-return]


def write(path: Path, records: list[dict[str, Any]]) -> Path:
    path.write_text(json.dumps(records, ensure_ascii=False), "utf-8")
    return path


@pytest.fixture
def fixtures_db(db: Database, brreg: Path) -> Database:
    import_dump(db, brreg / "enheter-sample.json")
    import_dump(db, brreg / "underenheter-sample.json")
    return db


PILOT = Criteria(police_districts=("oslo",), min_employees=2)


def test_pilot_segment_on_real_records(fixtures_db: Database) -> None:
    p = preview(fixtures_db, PILOT)
    assert p.units == 9
    assert p.by_municipality == {"0301": 6, "3201": 2, "3203": 1}
    assert p.reachability == {"email": 6, "phone_only": 2, "postal_only": 1}
    assert p.undecided == 0
    assert p.rule == "registered_undecided"
    assert sum(p.reachability.values()) == p.units


def test_employee_rules_state_what_they_cannot_decide(fixtures_db: Database) -> None:
    auto = preview(fixtures_db, Criteria(min_employees=2))
    exact = preview(fixtures_db, Criteria(min_employees=2, employee_rule="exact"))
    registered = preview(fixtures_db, Criteria(min_employees=2, employee_rule="registered"))
    five = preview(fixtures_db, Criteria(min_employees=5))
    # Seven units have 1-4 employees (count hidden): auto keeps them, exact leaves them out.
    assert (auto.units, auto.undecided) == (26, 7)
    assert (exact.units, exact.undecided) == (19, 7)
    assert (registered.units, registered.undecided) == (26, 0)
    assert (five.units, five.undecided, five.rule) == (19, 0, "exact")
    assert "skjuler antall under 5" in auto.notes[0]


def test_sub_unit_in_area_brings_its_parent_once(db: Database, brreg: Path, tmp_path: Path) -> None:
    subs = load(brreg / "underenheter-sample.json")
    equinor_subs = [s for s in subs if s["overordnetEnhet"] == "923609016"]
    for s in equinor_subs:  # both Equinor branches moved to Oslo; the company is in Stavanger
        s["beliggenhetsadresse"] = {**s["beliggenhetsadresse"], "kommunenummer": "0301"}
    import_dump(db, brreg / "enheter-sample.json")
    import_dump(db, write(tmp_path / "u.json", subs))
    p = preview(db, PILOT)
    assert len(equinor_subs) == 2
    assert p.units == 10
    assert p.by_municipality["0301"] == 7


def test_historic_numbers_and_names_select_the_same(fixtures_db: Database) -> None:
    results = {
        term: preview(fixtures_db, Criteria(municipalities=(term,))).units
        for term in ("3201", "3024", "0219", "Bærum", "baerum")
    }
    assert set(results.values()) == {2}


def test_police_district_is_exactly_the_pilot_area(fixtures_db: Database) -> None:
    district = preview(fixtures_db, Criteria(police_districts=("Oslo politidistrikt",)))
    listed = preview(fixtures_db, Criteria(municipalities=("Oslo", "Asker", "Bærum")))
    assert district.area == ("0301", "3201", "3203")
    assert district.units == listed.units == 10


def test_industry_forms_and_sector(fixtures_db: Database) -> None:
    assert preview(fixtures_db, Criteria(nace=("62",))).units == 1
    assert preview(fixtures_db, Criteria(forms=("KOMM",))).units == 2
    as_only = preview(fixtures_db, Criteria(police_districts=("oslo",), exclude_forms=("KOMM",)))
    assert as_only.units == 8
    assert preview(fixtures_db, Criteria(sectors=("65",))).units == 2


def test_bad_criteria_are_refused_with_a_reason(fixtures_db: Database) -> None:
    with pytest.raises(BadCriteriaError, match="Ukjent kommune «Bergn» \\(mente du Bergen\\?\\)"):
        preview(fixtures_db, Criteria(municipalities=("Bergn",)))
    with pytest.raises(BadCriteriaError, match=r"96\.02 er fra SN2007"):
        preview(fixtures_db, Criteria(nace=("96.02",)))
    with pytest.raises(
        BadCriteriaError, match="ukjent organisasjonsform «ENKK» \\(mente du ENK\\?\\)"
    ):
        preview(fixtures_db, Criteria(forms=("ENKK",)))
    with pytest.raises(BadCriteriaError, match="underenhet"):
        preview(fixtures_db, Criteria(forms=("BEDR",)))


def test_sn2007_code_is_mapped_with_a_note(fixtures_db: Database) -> None:
    p = preview(fixtures_db, Criteria(nace=("45.2",)))
    assert p.units == 0
    assert any("95.31" in n for n in p.notes)


def test_status_exclusions(db: Database, brreg: Path, tmp_path: Path) -> None:
    records = load(brreg / "enheter-sample.json")
    by = {r["organisasjonsnummer"]: r for r in records}
    by["864139442"]["konkurs"] = True
    by["958935420"]["underAvvikling"] = True
    by["962986633"]["underTvangsavviklingEllerTvangsopplosning"] = True
    import_dump(db, write(tmp_path / "e.json", records))
    oslo = Criteria(municipalities=("0301",))
    assert preview(db, oslo).units == 4
    assert preview(db, Criteria(municipalities=("0301",), include_bankrupt=True)).units == 5
    assert preview(db, Criteria(municipalities=("0301",), include_liquidating=True)).units == 6


def test_vanished_units_are_not_selected(db: Database, brreg: Path, tmp_path: Path) -> None:
    records = load(brreg / "enheter-sample.json")
    import_dump(db, write(tmp_path / "a.json", records), dump_date="2026-01-01")
    fewer = [r for r in records if r["organisasjonsnummer"] != "958935420"]
    import_dump(db, write(tmp_path / "b.json", fewer), dump_date="2026-01-02")
    assert preview(db, Criteria(municipalities=("0301",))).units == 6


def test_contacts_breakdown(db: Database, brreg: Path, tmp_path: Path) -> None:
    records = load(brreg / "enheter-sample.json")
    oslo = [r for r in records if r.get("forretningsadresse", {}).get("kommunenummer") == "0301"]
    extra = []
    for i, (orgnr, email) in enumerate(
        [
            ("910000004", "POST@Regnskap.no "),
            ("910000012", "post@regnskap.no"),
            ("910000020", "22 33 44 55"),
            ("910000039", "ola@firmano"),
        ]
    ):
        r = copy.deepcopy(oslo[0])
        r.update(organisasjonsnummer=orgnr, navn=f"FIRMA {i} AS", epostadresse=email)
        r.pop("telefon", None)
        extra.append(r)
    import_dump(db, write(tmp_path / "e.json", records + extra))
    p = preview(db, Criteria(municipalities=("0301",)))
    assert p.shared_addresses == [("post@regnskap.no", 2)]
    assert p.unusable == {"no_dot_in_domain": 1, "phone_number": 1}
    assert p.reachability["postal_only"] == 4  # two in the records, two with bad e-mail


def test_criteria_file_and_options_add_up(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text('[segment]\npolice_district = ["oslo"]\nmin_employees = 2\n', "utf-8")
    c = Criteria.build(path, {"exclude_form": ("ENK",), "min_employees": 5, "nace": ()})
    assert c == Criteria(police_districts=("oslo",), min_employees=5, exclude_forms=("ENK",))
    path.write_text('[segment]\npolice_distrikt = "oslo"\n', "utf-8")
    with pytest.raises(
        BadCriteriaError,
        match="ukjent kriterium «police_distrikt» \\(mente du «police_district»\\?\\)",
    ):
        Criteria.build(path, {})


def test_a_criteria_file_that_cannot_be_read_is_one_line(tmp_path: Path) -> None:
    # A file that is not UTF-8 once reached the user as tomllib's traceback.
    path = tmp_path / "c.toml"
    path.write_bytes(b'kommuner = ["\xff"]\n')
    with pytest.raises(BadCriteriaError) as caught:
        Criteria.build(path, {})
    assert caught.value.message == f"{path}: er ikke UTF-8"
    with pytest.raises(BadCriteriaError) as missing:
        Criteria.build(tmp_path / "mangler.toml", {})
    assert missing.value.message == f"{tmp_path / 'mangler.toml'}: filen finnes ikke"


def test_cli_json_has_the_interface_fields(fixtures_db: Database, brreg: Path) -> None:
    runner = CliRunner()
    result = runner.invoke(
        cli,
        [
            "--db",
            fixtures_db.url,
            "segment",
            "preview",
            "--police-district",
            "oslo",
            "--min-employees",
            "2",
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["units"] == 9
    assert data["undecided"] == 0
    assert data["by_municipality"] == {"0301": 6, "3201": 2, "3203": 1}
    assert sum(data["reachability"][k] for k in ("email", "phone_only", "postal_only")) == 9


def test_cli_table_and_bad_input(fixtures_db: Database) -> None:
    runner = CliRunner()
    table = runner.invoke(cli, ["--db", fixtures_db.url, "segment", "preview", "-m", "Asker"])
    assert table.exit_code == 0
    assert "3203 Asker" in table.output
    bad = runner.invoke(cli, ["--db", fixtures_db.url, "segment", "preview", "-m", "Bergn"])
    assert bad.exit_code == 2
    assert bad.output.strip() == "varsel: Ukjent kommune «Bergn» (mente du Bergen?)"


def test_main_units_are_selected_from_the_index_alone(fixtures_db: Database) -> None:
    # units_area holds every column the selection of main units reads (migration 0008): the
    # preview reads no table row per unit selected. A column added to the selection but not
    # to the index would make a national preview several times slower.
    if fixtures_db.dialect != "sqlite":
        pytest.skip("PostgreSQL reads the rows from the table")
    criteria = Criteria(police_districts=("oslo",), min_employees=2)
    sql, params = selection_sql(criteria, resolve(criteria))
    main_units = sql.split(" UNION ALL ")[0]
    root = dict(fixtures_db.query("SELECT name, rootpage FROM sqlite_master"))
    program = fixtures_db.query(f"EXPLAIN {main_units}", params[: main_units.count("?")])
    opened = {r[3]: r[2] for r in program if r[1] == "OpenRead"}  # root page -> cursor
    assert root["units_area"] in opened  # the selection goes through the index
    table = opened.get(root["units"])
    assert [r for r in program if r[1] == "Column" and r[2] == table] == []
