"""The DuckDB projection gives the rows unit.extract gives, or marks the record odd."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import duckdb
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from helpers import unit_row
from varsel import contacts, registry_fast, unit
from varsel.db import Database
from varsel.dump import Kind
from varsel.registry import import_dump

# JSON dumps of every size go through DuckDB here, as national dumps do (conftest).
pytestmark = pytest.mark.usefixtures("every_json_dump_through_duckdb")

Outcome = tuple[Any, ...] | str


def expected(record: dict[str, Any], kind: Kind) -> Outcome:
    """What the Python extractor makes of a record."""
    try:
        values, _ = unit.extract(record, kind)
    except unit.Rejected as e:
        return ("rejected", str(e))
    return ("unit", values, unit.record_hash(values))


def staged(path: Path, kind: Kind) -> list[Outcome]:
    """What the projection makes of every record in a JSON dump, in file order."""
    rows = duckdb.connect().execute(registry_fast.projection(path, kind)).fetchall()
    out: list[Outcome] = []
    for row in sorted(rows):
        d = dict(zip(registry_fast.STAGE_COLUMNS, row, strict=True))
        if d["reject"] == registry_fast.ODD:
            out.append(registry_fast.ODD)
        elif d["reject"]:
            reason = registry_fast.reject_reason(d["reject"], d["orgnr"], kind, d["employees"])
            out.append(("rejected", reason))
        else:
            values = [d[c] for c in unit.RECORD_COLUMNS]
            if any(a.usable for a in contacts.parse_addresses(d["email"])):
                values[-1] = "email"
            out.append(("unit", tuple(values), d["record_hash"]))
    return out


def write(path: Path, records: list[dict[str, Any]], *, ascii_only: bool = False) -> Path:
    path.write_text(json.dumps(records, ensure_ascii=ascii_only), "utf-8")
    return path


@pytest.mark.parametrize(
    ("name", "kind"),
    [("enheter-sample.json", Kind.ENHETER), ("underenheter-sample.json", Kind.UNDERENHETER)],
)
def test_real_records_give_the_same_rows(brreg: Path, name: str, kind: Kind) -> None:
    records = json.loads((brreg / name).read_text("utf-8"))
    assert staged(brreg / name, kind) == [expected(r, kind) for r in records]


def test_whitespace_is_what_str_strip_strips() -> None:
    python_strips = "".join(c for c in map(chr, range(0x110000)) if c.isspace())
    assert python_strips == registry_fast.WHITESPACE


def test_hash_covers_every_kept_column_but_reach() -> None:
    assert unit.RECORD_COLUMNS[-1] == "reach"
    assert unit.RECORD_COLUMNS[:-1] == unit.HASHED_COLUMNS


# -- generated records ---------------------------------------------------------------------

DIRT = ["\t", "\n", "\x00", "\x1f", "\x85", "\u00a0", "\u200b", "\u2028", "\ufeff", "\u3000"]
TEXT = st.text(
    alphabet=st.sampled_from([*"aæøåZ09 @.-;,/'\"\\", *DIRT, "🇳", "\u1680"]), max_size=10
) | st.text(max_size=6)
ORGNR = st.sampled_from(
    ["923609016", " 923609016 ", "923609017", "92360901", "9236090160", "١٢٣٤٥٦٧٨٩", "", "abc"]
)
MUNICIPALITY = st.sampled_from(["0301", "301", " 0301", "3024", "0219", "9999", "", "abc", "1103 "])
EMAIL = (
    st.sampled_from(
        ["post@firma.no", " Post@Firma.NO ", "a@b.no; c@d.no", "22 33 44 55", "post@firmano", ""]
    )
    | TEXT
)


def optional(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.none() | strategy


@st.composite
def addresses(draw: st.DrawFn) -> dict[str, Any]:
    out: dict[str, Any] = {}
    fields: dict[str, st.SearchStrategy[Any]] = {
        "adresse": st.lists(optional(TEXT), max_size=3),
        "postnummer": TEXT,
        "poststed": TEXT,
        "land": TEXT,
        "landkode": TEXT,
        "kommunenummer": MUNICIPALITY | TEXT,
    }
    for key, strategy in fields.items():
        if draw(st.booleans()):
            out[key] = draw(optional(strategy))
    return out


@st.composite
def records(draw: st.DrawFn, kind: Kind) -> dict[str, Any]:
    """A record of the registry's shape: strings, booleans, integers, objects; dirt inside."""
    fields: dict[str, st.SearchStrategy[Any]] = {
        "organisasjonsnummer": ORGNR | st.integers(0, 10**9),
        "navn": TEXT,
        "organisasjonsform": st.fixed_dictionaries(
            {}, optional={"kode": optional(st.sampled_from(["AS", " ENK ", "BEDR", "AAFY", ""]))}
        ),
        "respons_klasse": st.sampled_from(["Enhet", "Underenhet", "annet"]),
        "overordnetEnhet": ORGNR | st.integers(0, 10),
        "forretningsadresse": addresses(),
        "postadresse": addresses(),
        "naeringskode1": st.fixed_dictionaries({"kode": optional(TEXT)}),
        "naeringskode2": st.fixed_dictionaries({"kode": TEXT}),
        "institusjonellSektorkode": st.fixed_dictionaries({"kode": TEXT}),
        "antallAnsatte": st.integers(-5, 10**12),
        "harRegistrertAntallAnsatte": st.booleans(),
        "konkurs": st.booleans(),
        "underAvvikling": st.booleans(),
        "underTvangsavviklingEllerTvangsopplosning": st.booleans(),
        "slettedato": st.sampled_from(["2024-01-31", ""]),
        "nedleggelsesdato": st.sampled_from(["2023-05-01", ""]),
        "maalform": st.sampled_from(["Bokmål", "Nynorsk", ""]),
        "epostadresse": EMAIL,
        "telefon": TEXT,
        "mobil": TEXT,
        "hjemmeside": TEXT,
    }
    if kind is Kind.UNDERENHETER or draw(st.integers(0, 9)) == 0:
        fields["beliggenhetsadresse"] = addresses()
    record: dict[str, Any] = {"organisasjonsnummer": draw(ORGNR), "navn": draw(TEXT)}
    for key, strategy in fields.items():
        if draw(st.integers(0, 3)):
            record[key] = draw(optional(strategy) if key != "organisasjonsnummer" else strategy)
    return record


@st.composite
def odd_records(draw: st.DrawFn, kind: Kind) -> dict[str, Any]:
    """A record with one value of a type the registry never writes there."""
    record = draw(records(kind))
    key, value = draw(
        st.sampled_from(
            [
                ("navn", 123),
                ("navn", True),
                ("antallAnsatte", "12"),
                ("antallAnsatte", 3.5),
                ("antallAnsatte", 10**20),
                ("konkurs", 1),
                ("epostadresse", ["a@b.no"]),
                ("maalform", False),
                ("naeringskode1", {"kode": 12.5}),
                ("postadresse", {"adresse": "Gate 1"}),
                ("postadresse", {"adresse": [1, "x"]}),
                ("postadresse", {"kommunenummer": 301}),
                ("organisasjonsnummer", None),
            ]
        )
    )
    record[key] = value
    return record


@pytest.mark.parametrize("kind", list(Kind))
@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_generated_records_give_the_same_rows(
    kind: Kind, data: st.DataObject, tmp_path_factory: pytest.TempPathFactory
) -> None:
    batch = data.draw(st.lists(records(kind), min_size=1, max_size=25))
    path = write(
        tmp_path_factory.mktemp("gen") / "dump.json", batch, ascii_only=data.draw(st.booleans())
    )
    assert staged(path, kind) == [expected(r, kind) for r in batch]


@pytest.mark.parametrize("kind", list(Kind))
@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_records_of_another_shape_are_odd_or_the_same(
    kind: Kind, data: st.DataObject, tmp_path_factory: pytest.TempPathFactory
) -> None:
    batch = data.draw(st.lists(records(kind) | odd_records(kind), min_size=1, max_size=10))
    path = write(tmp_path_factory.mktemp("odd") / "dump.json", batch)
    for got, want in zip(staged(path, kind), [expected(r, kind) for r in batch], strict=True):
        assert got in (registry_fast.ODD, want)


# -- the importer falls back to the Python reader --------------------------------------------


def test_odd_record_is_imported_the_python_way(db: Database, brreg: Path, tmp_path: Path) -> None:
    records = json.loads((brreg / "enheter-sample.json").read_text("utf-8"))
    records[0]["antallAnsatte"] = "12"  # a string: the Python reader reads it as a number
    result = import_dump(db, write(tmp_path / "enheter.json", records))
    assert (result.snapshot.new, result.snapshot.rejected) == (35, 0)
    assert unit_row(db, records[0]["organisasjonsnummer"])["employees"] == 12


def test_file_duckdb_cannot_read_is_imported_the_python_way(
    db: Database, brreg: Path, tmp_path: Path
) -> None:
    records = json.loads((brreg / "enheter-sample.json").read_text("utf-8"))
    records[1]["organisasjonsform"] = "AS"  # not an object: DuckDB stops, Python rejects it
    result = import_dump(db, write(tmp_path / "enheter.json", records))
    assert (result.snapshot.new, result.snapshot.rejected) == (34, 1)
    assert result.first_rejects() == [
        f"post 2 {records[1]['organisasjonsnummer']}: mangler organisasjonsform"
    ]


def test_fast_import_stores_what_the_python_way_stores(
    new_store_url: Any, brreg: Path, tmp_path: Path
) -> None:
    from helpers import units
    from varsel.db import connect

    records = json.loads((brreg / "enheter-sample.json").read_text("utf-8"))
    odd = [*records, {**records[0], "organisasjonsnummer": "914594685", "navn": 7}]
    with connect(new_store_url()) as fast, connect(new_store_url()) as python:
        import_dump(fast, write(tmp_path / "fast.json", records))
        import_dump(python, write(tmp_path / "odd.json", odd))  # odd: the Python way
        python.execute("DELETE FROM contacts WHERE orgnr = '914594685'")
        python.execute("DELETE FROM units WHERE orgnr = '914594685'")
        assert units(fast) == units(python)
        contacts_sql = f"SELECT {', '.join(unit.CONTACT_COLUMNS)} FROM contacts ORDER BY 1, 2"
        assert fast.query(contacts_sql) == python.query(contacts_sql)


def test_fast_update_of_a_store_stores_what_the_python_way_stores(
    new_store_url: Any, brreg: Path, tmp_path: Path
) -> None:
    """A newer dump into a store that holds units: changed, new, gone and reach as Python has it."""
    from helpers import units
    from varsel.db import connect

    records = json.loads((brreg / "enheter-sample.json").read_text("utf-8"))
    newer = [dict(r) for r in records[1:]]  # the first unit is gone
    newer[0]["epostadresse"] = "Post@Nytt-Firma.no; 22 33 44 55"  # reach becomes or stays email
    newer[1]["epostadresse"] = "22 33 44 55"  # no usable address: reach is phone or post
    newer[2]["navn"] = "NYTT NAVN AS"
    newer.append({**records[0], "organisasjonsnummer": "914594685"})  # a new unit
    odd = {
        **records[0],
        "organisasjonsnummer": "811111112",
        "navn": 7,
    }  # the file goes the Python way
    with connect(new_store_url()) as fast, connect(new_store_url()) as python:
        for db, extra in ((fast, []), (python, [odd])):
            import_dump(db, write(tmp_path / "old.json", records), dump_date="2026-01-01")
            result = import_dump(
                db, write(tmp_path / f"new{len(extra)}.json", newer + extra), dump_date="2026-01-02"
            )
            s = result.snapshot
            assert (s.new, s.changed, s.gone) == (1 + len(extra), 3, 1)
        python.execute("DELETE FROM contacts WHERE orgnr = '811111112'")
        python.execute("DELETE FROM units WHERE orgnr = '811111112'")
        fast_units, python_units = units(fast), units(python)
        assert fast_units == python_units
        reach = unit.COL["reach"]
        assert fast_units[newer[0]["organisasjonsnummer"]][reach] == "email"
        assert fast_units[newer[1]["organisasjonsnummer"]][reach] != "email"
        contacts_sql = f"SELECT {', '.join(unit.CONTACT_COLUMNS)} FROM contacts ORDER BY 1, 2"
        assert fast.query(contacts_sql) == python.query(contacts_sql)


def test_failure_while_parsing_e_mail_leaves_the_store_as_it_was(
    tmp_path: Path, brreg: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An error on the e-mail thread reaches the importer; the transaction rolls back."""
    from varsel.db import connect

    def broken(rows: Any) -> Any:
        raise RuntimeError("parser broke")

    with connect(str(tmp_path / "store.db")) as db:
        monkeypatch.setattr(registry_fast, "parse_emails", broken)
        with pytest.raises(RuntimeError, match="parser broke"):
            import_dump(db, brreg / "enheter-sample.json")
        assert db.scalar("SELECT count(*) FROM units") == 0
        assert db.scalar("SELECT count(*) FROM snapshots") == 0
