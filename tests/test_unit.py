from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from varsel.dump import Kind
from varsel.unit import (
    RECORD_COLUMNS,
    UNIT_COLUMNS,
    Rejected,
    clean_text,
    extract,
    format_orgnr,
    record_hash,
    to_record,
    valid_orgnr,
)


def reference_mod11(number: str) -> bool:
    weights = (3, 2, 7, 6, 5, 4, 3, 2)
    if len(number) != 9 or not number.isdigit():
        return False
    remainder = sum(int(d) * w for d, w in zip(number, weights, strict=False)) % 11
    check = 0 if remainder == 0 else 11 - remainder
    return check != 10 and check == int(number[8])


@given(st.integers(min_value=0, max_value=999_999_999))
def test_valid_orgnr_matches_the_mod11_rule(n: int) -> None:
    number = f"{n:09d}"
    assert valid_orgnr(number) == reference_mod11(number)


@pytest.mark.parametrize("bad", ["", "92360901", "9236090160", "92360901a", "٩٢٣٦٠٩٠١٦"])
def test_malformed_numbers(bad: str) -> None:
    assert not valid_orgnr(bad)


def test_an_orgnr_is_written_in_groups_of_three() -> None:
    assert format_orgnr("974760673") == "974 760 673"
    assert format_orgnr("97476067") == "97476067"  # not a number of nine: left as it is


def test_clean_text() -> None:
    assert clean_text("  Postboks 1    Grønland ") == "Postboks 1 Grønland"
    assert clean_text("A\x00B\u200bC") == "A B C"
    assert clean_text(" ") is None
    assert clean_text(None) is None


def test_extract_and_to_record_agree_on_real_records(brreg: Path) -> None:
    for name, kind in (
        ("enheter-sample.json", Kind.ENHETER),
        ("underenheter-sample.json", Kind.UNDERENHETER),
    ):
        for record in json.loads((brreg / name).read_text("utf-8")):
            values, _ = extract(record, kind)
            row = (*values, record_hash(values), 1, 0, 1, None, "t")
            assert len(row) == len(UNIT_COLUMNS)
            again, _ = extract(to_record(row), kind)
            assert again == values, record["organisasjonsnummer"]
            assert len(values) == len(RECORD_COLUMNS)


def test_record_hash_is_stable_and_sensitive() -> None:
    values = ("923609016", "enhet", None, "EQUINOR ASA", 21496, True)
    assert record_hash(values) == record_hash(list(values))
    assert record_hash(values) != record_hash((*values[:4], 21497, True))


def test_rejections(brreg: Path) -> None:
    record = json.loads((brreg / "enheter-sample.json").read_text("utf-8"))[0]
    with pytest.raises(
        Rejected, match="posten er en hovedenhet, men filen inneholder underenheter"
    ):
        extract(record, Kind.UNDERENHETER)
    with pytest.raises(Rejected, match="mangler organisasjonsform"):
        extract({**record, "organisasjonsform": {}}, Kind.ENHETER)
    with pytest.raises(Rejected, match="antallAnsatte er ikke et tall"):
        extract({**record, "antallAnsatte": "mange"}, Kind.ENHETER)


def test_a_municipality_number_written_as_a_number_is_read_as_its_text(brreg: Path) -> None:
    record = json.loads((brreg / "enheter-sample.json").read_text("utf-8"))[0]
    as_text = {**record, "forretningsadresse": {**record["forretningsadresse"]}}
    as_text["forretningsadresse"]["kommunenummer"] = "301"
    as_number = {**record, "forretningsadresse": {**record["forretningsadresse"]}}
    as_number["forretningsadresse"]["kommunenummer"] = 301
    municipality = UNIT_COLUMNS.index("municipality")
    assert extract(as_number, Kind.ENHETER)[0][municipality] == "0301"
    assert extract(as_number, Kind.ENHETER)[0] == extract(as_text, Kind.ENHETER)[0]
