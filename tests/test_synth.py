"""Tests for varsel.synth: synthetic registry dumps in the registry's own formats."""

from __future__ import annotations

import csv
import gzip
import io
import json
import re
from collections import Counter
from pathlib import Path
from typing import Any

import orjson
import pytest

from varsel.brreg_csv import ENHETER_COLUMNS, UNDERENHETER_COLUMNS
from varsel.errors import UserError
from varsel.synth import PILOT_AREA, SynthResult, area_share, write_dump

FIXTURES = Path(__file__).resolve().parents[2] / "shared" / "fixtures" / "brreg"
DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
ADDRESS_KEYS = {"land", "landkode", "postnummer", "poststed", "adresse", "kommune", "kommunenummer"}
STATUS_KEYS = {
    "konkursdato",
    "underAvviklingDato",
    "tvangsopplostPgaManglendeDagligLederDato",
    "tvangsopplostPgaManglendeRevisorDato",
    "tvangsopplostPgaManglendeRegnskapDato",
    "tvangsopplostPgaMangelfulltStyreDato",
}


def load(path: Path) -> list[dict[str, Any]]:
    data = path.read_bytes()
    records: list[dict[str, Any]] = orjson.loads(
        gzip.decompress(data) if data[:2] == b"\x1f\x8b" else data
    )
    return records


def fixture_keys(name: str) -> set[str]:
    if not (FIXTURES / name).exists():
        pytest.skip("the shared fixtures are not available")
    return {key for record in json.loads((FIXTURES / name).read_text("utf-8")) for key in record}


def mod11(orgnr: str) -> bool:
    r = sum(int(c) * w for c, w in zip(orgnr, (3, 2, 7, 6, 5, 4, 3, 2), strict=False)) % 11
    return len(orgnr) == 9 and orgnr.isdigit() and r != 1 and int(orgnr[8]) == (11 - r) % 11


@pytest.fixture(scope="module")
def national(tmp_path_factory: pytest.TempPathFactory) -> list[dict[str, Any]]:
    """60,000 enheter: 1/20 of a national dump."""
    path = tmp_path_factory.mktemp("national") / "enheter.json.gz"
    write_dump(path, units=60_000, seed=2023)
    return load(path)


def test_same_seed_writes_the_same_bytes_and_another_seed_does_not(tmp_path: Path) -> None:
    for name, seed in (("a", 7), ("b", 7), ("c", 8)):
        write_dump(tmp_path / f"{name}.json.gz", units=5000, seed=seed)

    a, b, c = ((tmp_path / f"{n}.json.gz").read_bytes() for n in "abc")
    assert a == b
    assert a != c


def test_a_record_does_not_depend_on_the_size_of_the_dump(tmp_path: Path) -> None:
    write_dump(tmp_path / "small.json", units=100, seed=3)
    write_dump(tmp_path / "large.json", units=9000, seed=3)

    assert load(tmp_path / "small.json") == load(tmp_path / "large.json")[:100]


def test_organisation_numbers_are_valid_and_unique_across_kinds(tmp_path: Path) -> None:
    write_dump(tmp_path / "e.json", units=20_000, seed=5)
    write_dump(tmp_path / "u.json", units=15_000, seed=5, kind="underenheter")

    numbers = [r["organisasjonsnummer"] for f in ("e", "u") for r in load(tmp_path / f"{f}.json")]
    assert all(mod11(n) for n in numbers)
    assert len(set(numbers)) == 35_000
    # Sub-units and main units both start with 8 or 9, as in the registry.
    assert {n[0] for n in numbers} == {"8", "9"}


def test_enheter_have_the_fixture_records_shape(national: list[dict[str, Any]]) -> None:
    allowed = fixture_keys("enheter-sample.json") | STATUS_KEYS

    for r in national[:20_000]:
        assert set(r) <= allowed
        assert r["respons_klasse"] == "Enhet"
        assert r["_links"]["self"]["href"].endswith(
            f"/enhetsregisteret/api/enheter/{r['organisasjonsnummer']}"
        )
        assert set(r["organisasjonsform"]) == {"kode", "beskrivelse", "_links"}
        assert set(r["forretningsadresse"]) <= ADDRESS_KEYS
        assert isinstance(r["harRegistrertAntallAnsatte"], bool)
        assert isinstance(r["konkurs"], bool)
        assert all(v is not None for v in r.values())
        assert all(
            DATE.match(v)
            for k, v in r.items()
            if k.endswith("Dato") or k.startswith("registreringsdato")
        )


def test_underenheter_have_the_fixture_records_shape(tmp_path: Path) -> None:
    allowed = fixture_keys("underenheter-sample.json") - {"links"}
    write_dump(tmp_path / "u.json", units=4000, seed=9, kind="underenheter")

    for r in load(tmp_path / "u.json"):
        assert set(r) <= allowed
        assert r["organisasjonsform"]["kode"] in ("BEDR", "AAFY")
        assert "forretningsadresse" not in r
        assert set(r["beliggenhetsadresse"]) == ADDRESS_KEYS
        assert r["_links"]["overordnetEnhet"]["href"].endswith(f"/enheter/{r['overordnetEnhet']}")


@pytest.mark.parametrize(
    ("kind", "columns"), [("enheter", ENHETER_COLUMNS), ("underenheter", UNDERENHETER_COLUMNS)]
)
def test_csv_has_the_registry_header_and_a_value_for_every_column(
    tmp_path: Path, kind: str, columns: tuple[str, ...]
) -> None:
    write_dump(tmp_path / "dump.csv", units=3000, seed=4, fmt="csv", kind=kind)
    text = (tmp_path / "dump.csv").read_text("utf-8")

    rows = list(csv.reader(io.StringIO(text)))
    assert text.splitlines()[0] == ",".join(f'"{c}"' for c in columns)
    assert len(rows) == 3001
    assert {len(row) for row in rows} == {len(columns)}


def test_csv_joins_arrays_with_newlines_and_writes_booleans_as_words(tmp_path: Path) -> None:
    write_dump(tmp_path / "dump.csv", units=500, seed=4, fmt="csv")
    write_dump(tmp_path / "dump.json", units=500, seed=4)

    rows = list(csv.DictReader(io.StringIO((tmp_path / "dump.csv").read_text("utf-8"))))
    records = load(tmp_path / "dump.json")
    assert [r["organisasjonsnummer"] for r in rows] == [r["organisasjonsnummer"] for r in records]
    assert {r["konkurs"] for r in rows} <= {"true", "false"}
    assert all(
        row["aktivitet"] == "\n".join(rec["aktivitet"])
        for row, rec in zip(rows, records, strict=True)
    )
    assert all(
        row["antallAnsatte"] == str(rec.get("antallAnsatte", ""))
        for row, rec in zip(rows, records, strict=True)
    )


def test_gzip_holds_exactly_the_plain_bytes(tmp_path: Path) -> None:
    write_dump(tmp_path / "dump.json", units=2000, seed=6)
    write_dump(tmp_path / "dump.json.gz", units=2000, seed=6)

    packed = (tmp_path / "dump.json.gz").read_bytes()
    assert packed[:2] == b"\x1f\x8b"
    assert gzip.decompress(packed) == (tmp_path / "dump.json").read_bytes()


def test_the_pilot_reappears_at_one_twentieth_scale(national: list[dict[str, Any]]) -> None:
    pilot = [r for r in national if r["forretningsadresse"].get("kommunenummer") in PILOT_AREA]
    employers = [r for r in pilot if r["harRegistrertAntallAnsatte"]]
    with_email = [r for r in employers if "epostadresse" in r]

    # 50,000 and 10,000 at 1.2 M units, scaled to 60,000.
    assert 2300 <= len(employers) <= 2700
    assert 425 <= len(with_email) <= 575
    assert 0.05 <= sum("antallAnsatte" in r for r in national) / len(national) <= 0.07


def test_employee_counts_below_five_are_hidden(national: list[dict[str, Any]]) -> None:
    counted = [r for r in national if "antallAnsatte" in r]
    hidden = [r for r in national if r["harRegistrertAntallAnsatte"] and "antallAnsatte" not in r]
    none = [r for r in national if not r["harRegistrertAntallAnsatte"]]

    assert min(r["antallAnsatte"] for r in counted) == 5
    assert all(r["harRegistrertAntallAnsatte"] for r in counted)
    assert len(hidden) > len(counted)
    assert not any("registreringsdatoAntallAnsatteNAVAaregisteret" in r for r in none)


def test_legal_forms_follow_the_registry_mix(national: list[dict[str, Any]]) -> None:
    forms = Counter(r["organisasjonsform"]["kode"] for r in national)

    assert [f for f, _ in forms.most_common(4)] == ["ENK", "AS", "FLI", "ESEK"]
    assert 0.36 <= forms["ENK"] / len(national) <= 0.42
    assert 0.34 <= forms["AS"] / len(national) <= 0.40
    assert 0.002 <= sum(r["konkurs"] for r in national) / len(national) <= 0.006


def test_foreign_branches_have_a_foreign_business_address(national: list[dict[str, Any]]) -> None:
    foreign = [r for r in national if r["forretningsadresse"]["landkode"] != "NO"]

    assert {r["organisasjonsform"]["kode"] for r in foreign} == {"NUF", "UTLA"}
    assert not any("kommunenummer" in r["forretningsadresse"] for r in foreign)
    assert {"SE", "DK", "DE", "GB", "PL"} <= {r["forretningsadresse"]["landkode"] for r in foreign}


def test_nynorsk_is_written_in_the_west(national: list[dict[str, Any]]) -> None:
    def nynorsk(county: str) -> float:
        units = [
            r for r in national if r["forretningsadresse"].get("kommunenummer", "")[:2] == county
        ]
        return sum(r["maalform"] == "Nynorsk" for r in units) / len(units)

    assert nynorsk("46") > 0.45
    assert nynorsk("03") < 0.03


def test_one_municipality_per_komm_unit(national: list[dict[str, Any]]) -> None:
    municipalities = [r["navn"] for r in national if r["organisasjonsform"]["kode"] == "KOMM"]

    # KOMM units lie every 3,361 units from unit 1,680: 18 fit in 60,000.
    assert len(municipalities) == len(set(municipalities)) == 18
    assert municipalities[0] == "OSLO KOMMUNE"


def test_industry_codes_are_sn2025(national: list[dict[str, Any]]) -> None:
    codes = Counter(r["naeringskode1"]["kode"] for r in national if "naeringskode1" in r)

    assert all(re.match(r"^\d\d\.\d{3}$", c) for c in codes)
    assert not any(c.startswith("45.") for c in codes)
    assert codes["00.000"] > 0
    esek = [r for r in national if r["organisasjonsform"]["kode"] == "ESEK"]
    assert sum("naeringskode1" not in r for r in esek) / len(esek) > 0.5


def test_email_field_holds_the_registry_kind_of_dirt(national: list[dict[str, Any]]) -> None:
    emails = [r["epostadresse"] for r in national if "epostadresse" in r]
    enk = [
        r["epostadresse"]
        for r in national
        if r["organisasjonsform"]["kode"] == "ENK" and "epostadresse" in r
    ]

    assert sum(e != e.strip() for e in emails) > 10
    assert sum(";" in e for e in emails) > 5
    assert sum("," in e for e in emails) > 5
    assert sum(e != e.lower() for e in emails) > 10
    assert sum("@" not in e for e in emails) > 5
    assert sum(bool(re.search(r"@[^.\s]+$", e)) for e in emails) > 5
    assert sum(bool(re.search(r"[æøå]", e)) for e in emails) > 5
    assert Counter(emails)["post@regnskapskontoret.no"] > 20
    assert (
        sum(e.endswith(("@gmail.com", "@hotmail.com", "@online.no")) for e in enk) / len(enk) > 0.4
    )


def test_sub_unit_parents_exist_in_the_enheter_dump_of_the_same_seed(tmp_path: Path) -> None:
    write_dump(tmp_path / "e.json", units=8000, seed=11)
    write_dump(tmp_path / "u.json", units=6000, seed=11, kind="underenheter")

    enheter = {r["organisasjonsnummer"]: r for r in load(tmp_path / "e.json")}
    sub_units = load(tmp_path / "u.json")
    assert all(r["overordnetEnhet"] in enheter for r in sub_units)
    elsewhere = [
        r
        for r in sub_units
        if r["beliggenhetsadresse"]["kommunenummer"]
        != enheter[r["overordnetEnhet"]]["forretningsadresse"].get("kommunenummer")
    ]
    assert 0.1 <= len(elsewhere) / len(sub_units) <= 0.4


def test_municipalities_restrict_units_and_their_parents(tmp_path: Path) -> None:
    area = ["3203", "3201"]
    write_dump(tmp_path / "e.json", units=4000, seed=12, municipalities=area)
    write_dump(tmp_path / "u.json", units=3000, seed=12, kind="underenheter", municipalities=area)

    enheter = load(tmp_path / "e.json")
    sub_units = load(tmp_path / "u.json")
    assert {r["forretningsadresse"]["kommunenummer"] for r in enheter} == {"3201", "3203"}
    assert {r["beliggenhetsadresse"]["kommunenummer"] for r in sub_units} == {"3201", "3203"}
    assert {r["overordnetEnhet"] for r in sub_units} <= {r["organisasjonsnummer"] for r in enheter}


def test_area_share_is_the_areas_part_of_a_national_dump() -> None:
    assert area_share([]) == 1.0
    assert round(area_share(["0301"]), 3) == 0.147
    assert round(area_share(PILOT_AREA), 3) == 0.187


def test_summary_is_one_line_of_bokmal() -> None:
    result = SynthResult(Path("enheter.json.gz"), 1_200_000, 212_000_000, 58.3)

    assert (
        result.summary()
        == "Skrev 1 200 000 syntetiske enheter til enheter.json.gz (212 MB) på 58,3 s."
    )


def test_progress_is_reported_and_ends_with_the_file_size(tmp_path: Path) -> None:
    calls: list[tuple[int, int | None, int]] = []

    result = write_dump(
        tmp_path / "e.json.gz",
        units=10_000,
        seed=1,
        progress=lambda done, total, records: calls.append((done, total, records)),
    )

    assert [c[2] for c in calls] == [4096, 8192, 10_000, 10_000]
    assert calls[-1] == (result.bytes, result.bytes, 10_000)
    assert result.bytes == (tmp_path / "e.json.gz").stat().st_size


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"fmt": "xml"}, "Ukjent format «xml»: bruk json eller csv."),
        ({"kind": "roller"}, "Ukjent type «roller»: bruk enheter eller underenheter."),
        ({"units": -1}, "Antall enheter kan ikke være negativt."),
        (
            {"municipalities": ["0219"]},
            "Ukjent kommunenummer: 0219 (bruk 2024-nummer, f.eks. 3201 for Bærum).",
        ),
    ],
)
def test_bad_arguments_are_user_errors(
    tmp_path: Path, arguments: dict[str, Any], message: str
) -> None:
    kwargs: dict[str, Any] = {"units": 10, "seed": 1, **arguments}

    with pytest.raises(UserError) as raised:
        write_dump(tmp_path / "dump.json", **kwargs)

    assert raised.value.message == message
    assert list(tmp_path.iterdir()) == []


def test_a_missing_folder_is_a_user_error(tmp_path: Path) -> None:
    with pytest.raises(UserError) as raised:
        write_dump(tmp_path / "nowhere" / "dump.json", units=10, seed=1)

    assert raised.value.message == f"Mappen {tmp_path / 'nowhere'} finnes ikke."


def test_an_interrupted_dump_leaves_no_file(tmp_path: Path) -> None:
    (tmp_path / "dump.json.gz").write_bytes(b"the previous dump")

    def interrupt(done: int, total: int | None, records: int) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        write_dump(tmp_path / "dump.json.gz", units=10_000, seed=1, progress=interrupt)

    assert [p.name for p in tmp_path.iterdir()] == ["dump.json.gz"]
    assert (tmp_path / "dump.json.gz").read_bytes() == b"the previous dump"
