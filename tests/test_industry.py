"""SN2025 industry codes: prefixes, sections, and SN2007 codes translated or refused."""

from __future__ import annotations

import csv
from collections import Counter
from importlib import resources

import pytest

from varsel import industry
from varsel.errors import BadCriteriaError


def _rows(filename: str) -> list[dict[str, str]]:
    text = resources.files("varsel").joinpath("data", filename).read_text(encoding="utf-8")
    return list(csv.DictReader(text.splitlines()))


def test_sn2025_table_is_complete_and_a_tree() -> None:
    rows = _rows("sn2025.csv")
    assert Counter(r["niva"] for r in rows) == {
        "seksjon": 22,
        "naering": 87,
        "hovedgruppe": 287,
        "gruppe": 651,
        "undergruppe": 738,
    }
    codes = {r["kode"] for r in rows}
    assert all(r["forelder"] in codes for r in rows if r["niva"] != "seksjon")


def test_correspondence_points_only_at_sn2025_subgroups() -> None:
    rows = _rows("sn2007-sn2025.csv")
    subgroups = {r["kode"] for r in _rows("sn2025.csv") if r["niva"] == "undergruppe"}
    assert len(rows) == 876
    assert len({r["sn2007"] for r in rows}) == 445
    assert {r["sn2025"] for r in rows} <= subgroups


@pytest.mark.parametrize(
    ("text", "prefix"),
    [
        ("62", "62"),
        ("62.1", "62.1"),
        ("62.10", "62.10"),
        ("62.100", "62.100"),
        ("6210", "62.10"),
        ("621", "62.1"),
        (" 62.10 ", "62.10"),
        ("c", "C"),
    ],
)
def test_normalise_prefix(text: str, prefix: str) -> None:
    assert industry.normalise_prefix(text) == prefix


def test_malformed_code_is_refused_with_the_accepted_forms() -> None:
    with pytest.raises(BadCriteriaError) as caught:
        industry.normalise_prefix("6")
    assert caught.value.message == (
        "Ugyldig næringskode «6»: skriv 2–5 sifre (62, 62.1, 62.10, 62.100) "
        "eller en seksjonsbokstav (C)"
    )


@pytest.mark.parametrize("text", ["", "62.1000", "621000", "62-10", "6a", "ÆØ", "62,1"])
def test_other_malformed_codes_are_refused(text: str) -> None:
    with pytest.raises(BadCriteriaError, match="Ugyldig næringskode"):
        industry.normalise_prefix(text)


def test_a_comma_separates_codes_as_giving_each_alone_does() -> None:
    assert industry.resolve_prefixes(["62,63"]) == ["62", "63"]
    assert industry.resolve_prefixes([" 62 , 63, "]) == ["62", "63"]
    assert industry.resolve_prefixes(["k,47"]) == ["47", "61", "62", "63"]
    assert industry.resolve_prefixes(["62.010,01.11"]) == ["01.11", "62.100"]
    # A code's decimals take a dot, SN2025 or SN2007 alike, as before.
    assert industry.resolve_prefixes(["62.01"]) == ["62.10"]
    assert industry.resolve_prefixes(["62.010"]) == ["62.100"]


def test_a_list_with_a_part_that_is_no_code_is_refused_naming_the_value() -> None:
    with pytest.raises(BadCriteriaError) as caught:
        industry.resolve_prefixes(["47", "62,1"])
    assert caught.value.message == (
        "Ugyldig næringskode «1» i «62,1»: skriv 2–5 sifre (62, 62.1, 62.10, 62.100) "
        "eller en seksjonsbokstav (C); komma skiller flere koder"
    )
    with pytest.raises(BadCriteriaError) as only_commas:
        industry.resolve_prefixes([" , "])
    assert only_commas.value.message == (
        "Ugyldig næringskode «,»: skriv 2–5 sifre (62, 62.1, 62.10, 62.100) "
        "eller en seksjonsbokstav (C)"
    )
    with pytest.raises(BadCriteriaError) as unknown:
        industry.resolve_prefixes(["62,99.9"])
    assert unknown.value.message == "Ukjent næringskode 99.9 (SN2025)"


def test_two_codes_that_also_read_as_one_code_get_a_note() -> None:
    assert industry.notes(["47,11"]) == [
        "«47,11» er lest som to næringskoder, 47 og 11; mente du koden 47.11, skriv den med punktum"
    ]
    # 62.01 is SN2007's (now 62.10): the operator may have meant it too.
    assert industry.notes(["62,01"])[0].startswith("«62,01» er lest som to næringskoder")
    # 62.64 is no code: the list can only mean two.
    assert industry.notes(["62,64"]) == []
    assert industry.notes(["62", "45.200"]) == [
        "45.200 (SN2007) er tolket som 95.310 (SN2025): Reparasjon og vedlikehold av motorvogner"
    ]


def test_sn2025_codes_pass_and_covered_prefixes_are_dropped() -> None:
    assert industry.resolve_prefixes(["62.1", "47.11", "62", "6210"]) == ["47.11", "62"]
    assert industry.explain_mapping("62") is None


def test_section_expands_to_its_divisions() -> None:
    assert industry.resolve_prefixes(["C"]) == [str(n) for n in range(10, 34)]
    assert industry.resolve_prefixes(["k"]) == ["61", "62", "63"]
    assert industry.explain_mapping("C") is None


def test_section_letter_that_moved_since_sn2007_gets_a_note() -> None:
    assert industry.resolve_prefixes(["M"]) == ["68"]
    assert industry.explain_mapping("M") == (
        "Seksjon M er tolket etter SN2025: Eiendomsvirksomhet (68); "
        "i SN2007 var M Faglig, vitenskapelig og teknisk tjenesteyting (69–75)"
    )


def test_unknown_section_is_refused() -> None:
    with pytest.raises(BadCriteriaError) as caught:
        industry.resolve_prefixes(["W"])
    assert caught.value.message == "Ukjent næringsseksjon W (SN2025 har seksjonene A–V)"


def test_sn2007_code_with_one_successor_is_mapped() -> None:
    assert industry.resolve_prefixes(["45.200"]) == ["95.310"]
    assert industry.explain_mapping("45.200") == (
        "45.200 (SN2007) er tolket som 95.310 (SN2025): Reparasjon og vedlikehold av motorvogner"
    )
    assert industry.resolve_prefixes(["45.2"]) == ["95.31"]


def test_sn2007_code_with_several_successors_is_refused_naming_them() -> None:
    with pytest.raises(BadCriteriaError) as caught:
        industry.resolve_prefixes(["96.02"])
    assert caught.value.message == (
        "Næringskode 96.02 er fra SN2007 og finnes ikke i SN2025; "
        "velg blant 96.21 (Frisering og barbering), 96.22 (Skjønnhetspleie)"
    )
    assert industry.explain_mapping("96.02") is None


def test_sn2025_code_that_meant_something_else_in_sn2007_gets_a_note() -> None:
    assert industry.resolve_prefixes(["69.201"]) == ["69.201"]
    assert industry.explain_mapping("69.201") == (
        "69.201 er tolket etter SN2025 (Revisjon); "
        "i SN2007 betydde 69.201 noe annet, som nå er 69.202"
    )


def test_unknown_code_is_refused() -> None:
    with pytest.raises(BadCriteriaError) as caught:
        industry.resolve_prefixes(["62", "99.9"])
    assert caught.value.message == "Ukjent næringskode 99.9 (SN2025)"


def test_names_and_sections() -> None:
    assert industry.name("62.100") == "Dataprogrammeringstjenester"
    assert industry.name("95.31") == "Reparasjon og vedlikehold av motorvogner"
    assert industry.name("00.000") == "Uoppgitt"
    assert industry.name("45.200") is None
    assert industry.section_of("62.100") == "K"
    assert industry.section_of("95.310") == "T"
    assert industry.section_of("45.200") is None
    assert industry.sections()[0] == ("A", "Jordbruk, skogbruk og fiske")
    assert industry.sections()[-1][0] == "V"
    assert len(industry.sections()) == 22
