"""Municipalities, counties and police districts: numbers of any era and names to 2024 numbers."""

from __future__ import annotations

import pytest

from varsel import municipality
from varsel.errors import BadCriteriaError


@pytest.mark.parametrize(
    ("old", "current"),
    [
        ("0219", "3201"),  # Bærum: 0219 -> 3024 (2020) -> 3201 (2024)
        ("0220", "3203"),  # Asker
        ("3024", "3201"),
        ("3025", "3203"),
        ("0627", "3203"),  # Røyken, merged into Asker in 2020
        ("0301", "0301"),
        ("301", "0301"),
    ],
)
def test_current_number_follows_the_chain(old: str, current: str) -> None:
    assert municipality.current_number(old) == current


def test_split_municipality_has_no_single_current_number() -> None:
    assert municipality.current_number("1507") is None
    assert municipality.resolve_municipality("1507") == ["1508", "1580"]
    assert municipality.resolve_municipality("5012") == ["5055", "5056", "5059"]
    assert municipality.resolve_municipality("1850") == ["1806", "1875"]


def test_unknown_number() -> None:
    assert municipality.current_number("9999") is None
    with pytest.raises(BadCriteriaError) as caught:
        municipality.resolve_municipality("9999")
    assert caught.value.message == "Ukjent kommunenummer 9999"


@pytest.mark.parametrize(
    ("term", "numbers"),
    [
        ("Oslo", ["0301"]),
        ("Oslo - Oslove", ["0301"]),  # SSB's 2026 name
        ("BÆRUM", ["3201"]),
        ("Baerum", ["3201"]),
        ("Kautokeino", ["5612"]),
        ("Guovdageaidnu", ["5612"]),
        ("guovdageaidnu - kautokeino", ["5612"]),
        ("Guovdageaidnu-Kautokeino", ["5612"]),
        ("Tana", ["5628"]),
        ("Herøy (Nordland)", ["1818"]),
        ("0219", ["3201"]),
    ],
)
def test_resolve_municipality(term: str, numbers: list[str]) -> None:
    assert municipality.resolve_municipality(term) == numbers


def test_names_keep_sami_parts() -> None:
    assert municipality.name("5612") == "Guovdageaidnu - Kautokeino"
    assert municipality.name("0219") is None


def test_ambiguous_name_asks_for_the_number() -> None:
    with pytest.raises(BadCriteriaError) as caught:
        municipality.resolve_municipality("Herøy")
    assert caught.value.message == (
        "Kommunenavnet «Herøy» er tvetydig "
        "(1515 Herøy (Møre og Romsdal), 1818 Herøy (Nordland)); bruk kommunenummeret"
    )


def test_unknown_name_suggests_the_closest() -> None:
    with pytest.raises(BadCriteriaError) as caught:
        municipality.resolve_municipality("Bergn")
    assert caught.value.message == "Ukjent kommune «Bergn» (mente du Bergen?)"


def test_counties() -> None:
    akershus = municipality.resolve_county("32")
    assert municipality.resolve_county("akershus") == akershus
    assert len(akershus) == 21
    assert "3201" in akershus
    assert municipality.county_of("0219") == ("32", "Akershus")
    assert municipality.resolve_county("Romsa") == municipality.resolve_county("55")


def test_former_county_names_where_its_municipalities_went() -> None:
    with pytest.raises(BadCriteriaError) as caught:
        municipality.resolve_county("Viken")
    assert caught.value.message == (
        "Fylke 30 finnes ikke lenger; kommunene ligger nå i 31 Østfold, 32 Akershus, 33 Buskerud"
    )


def test_oslo_police_district_is_exactly_oslo_baerum_asker() -> None:
    assert municipality.resolve_police_district("oslo") == ["0301", "3201", "3203"]
    assert municipality.police_district_of("0219") == "Oslo politidistrikt"


@pytest.mark.parametrize(
    "term",
    ["sor-ost", "sør-øst", "Sør-Øst politidistrikt", "SØR ØST", "sor_ost", "sørøst", "sorost"],
)
def test_police_district_slugs(term: str) -> None:
    assert municipality.resolve_police_district(term) == municipality.resolve_police_district(
        "Sør-Øst"
    )


@pytest.mark.parametrize(
    ("term", "district"),
    [
        ("sorvest", "Sør-Vest"),  # once refused, while "ost" was accepted
        ("sørvest", "Sør-Vest"),
        ("Sør Vest", "Sør-Vest"),
        ("SØR-VEST POLITIDISTRIKT", "Sør-Vest"),
        ("ost", "Øst"),
        ("moreogromsdal", "Møre og Romsdal"),
        ("more-og-romsdal", "Møre og Romsdal"),
        ("trondelag politidistrikt", "Trøndelag"),
    ],
)
def test_police_districts_with_and_without_norwegian_letters_spaces_and_dashes(
    term: str, district: str
) -> None:
    assert municipality.resolve_police_district(term) == municipality.resolve_police_district(
        f"{district} politidistrikt"
    )


def test_every_municipality_is_in_exactly_one_police_district() -> None:
    districts = municipality.police_districts()
    assert len(districts) == 12
    assert ("more-og-romsdal", "Møre og Romsdal politidistrikt") in districts
    members = [n for s, _ in districts for n in municipality.resolve_police_district(s)]
    assert sorted(members) == municipality.all_numbers()
    assert len(members) == 357


def test_unknown_police_district_suggests_the_closest() -> None:
    with pytest.raises(BadCriteriaError) as caught:
        municipality.resolve_police_district("sørøs")
    assert caught.value.message == (
        "Ukjent politidistrikt «sørøs» (mente du Sør-Øst politidistrikt?)"
    )
