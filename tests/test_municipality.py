"""Municipalities, counties and police districts: numbers of any era and names to 2024 numbers."""

from __future__ import annotations

import csv

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


@pytest.mark.parametrize(
    ("term", "numbers"),
    [
        ("Oslo kommune", ["0301"]),
        ("BÆRUM KOMMUNE", ["3201"]),
        ("0301 Oslo", ["0301"]),  # as the preview's table names it
        ("3024 Bærum", ["3201"]),
        ("1818 Herøy", ["1818"]),  # the name alone is ambiguous; the number says which
        ("1507 Ålesund", ["1508", "1580"]),
    ],
)
def test_a_municipality_as_people_write_it(term: str, numbers: list[str]) -> None:
    assert municipality.resolve_municipality(term) == numbers


def test_a_number_with_another_municipalitys_name_is_refused() -> None:
    with pytest.raises(BadCriteriaError) as caught:
        municipality.resolve_municipality("3201 Asker")
    assert caught.value.message == "«3201 Asker»: 3201 er Bærum, ikke Asker"


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


def test_a_county_of_before_2024_gives_the_municipalities_it_had_with_a_note() -> None:
    viken = municipality.resolve_county("Viken")
    assert len(viken) == 51
    assert {municipality.county_of(n)[0] for n in viken} == {"31", "32", "33"}
    assert municipality.resolve_county("30") == viken
    assert municipality.notes([], ["Viken"]) == [
        "Fylke 30 Viken fantes til 31.12.2023; valgt: dagens 51 kommuner med områder som lå i "
        "det, i 31 Østfold, 32 Akershus, 33 Buskerud"
    ]


# Vest-Agder's ten municipalities of 2019 are in these ten of today (Søgne and Songdalen in
# Kristiansand, Mandal and Marnardal in Lindesnes, Audnedal in Lyngdal).
VEST_AGDER = ["4204", "4205", "4206", "4207", "4223", "4224", "4225", "4226", "4227", "4228"]


@pytest.mark.parametrize("term", ["Vest-Agder", "vest-agder", "Vest-Agder fylke", "10"])
def test_vest_agder_is_its_municipalities_in_agder(term: str) -> None:
    assert municipality.resolve_county(term) == VEST_AGDER
    assert municipality.notes([], [term]) == [
        "Fylke 10 Vest-Agder fantes til 31.12.2019; valgt: dagens 10 kommuner med områder som lå "
        "i det, i 42 Agder"
    ]


def test_sor_trondelag_16_is_its_part_of_trondelag() -> None:
    # 16 was Sør-Trøndelag until 2018, renumbered into 50 then; it once said "Ukjent fylkesnummer".
    found = municipality.resolve_county("16")
    assert municipality.resolve_county("Sør-Trøndelag") == found
    assert {municipality.county_of(n)[0] for n in found} == {"50"}
    assert "5001" in found  # Trondheim, with Klæbu
    assert "5059" in found  # Orkland: Orkdal, Meldal, Agdenes, part of Snillfjord
    assert "5035" not in found  # Stjørdal was Nord-Trøndelag
    assert len(found) == 19
    # Trøndelag is the two of them, and Rindal, which came from Møre og Romsdal in 2019.
    both = set(found) | set(municipality.resolve_county("17")) | {"5061"}
    assert both == set(municipality.resolve_county("50"))


@pytest.mark.parametrize(
    ("term", "county"),
    [
        ("Hedmark", "34"),
        ("Oppland", "34"),  # and Lunner and Jevnaker, now in Akershus
        ("Hordaland", "46"),
        ("Sogn og Fjordane", "46"),  # and Hornindal, now in Volda (Møre og Romsdal)
    ],
)
def test_old_county_names_are_no_longer_hints_to_other_counties(term: str, county: str) -> None:
    found = municipality.resolve_county(term)
    counties = [municipality.county_of(n)[0] for n in found]
    assert counties.count(county) > len(found) / 2


def test_todays_county_name_wins_over_the_old_county_of_that_name() -> None:
    assert municipality.resolve_county("Akershus") == municipality.resolve_county("32")
    assert municipality.notes([], ["Akershus"]) == []


def test_unknown_county_suggests_an_old_one_too() -> None:
    with pytest.raises(BadCriteriaError) as caught:
        municipality.resolve_county("Vest Agdr")
    assert caught.value.message == "Ukjent fylke «Vest Agdr» (mente du Vest-Agder?)"
    with pytest.raises(BadCriteriaError) as caught:
        municipality.resolve_county("13")
    assert caught.value.message == "Ukjent fylkesnummer 13"


@pytest.mark.parametrize(
    ("term", "numbers", "note"),
    [
        ("Mandal", ["4205"], "1002 Mandal (til 31.12.2019); valgt: 4205 Lindesnes"),
        ("Søgne", ["4204"], "1018 Søgne (til 31.12.2019); valgt: 4204 Kristiansand"),
        ("Ski", ["3207"], "0213 Ski (til 31.12.2019); valgt: 3207 Nordre Follo"),
        ("Rennesøy", ["1103"], "1142 Rennesøy (til 31.12.2019); valgt: 1103 Stavanger"),
        ("Finnøy", ["1103"], "1141 Finnøy (til 31.12.2019); valgt: 1103 Stavanger"),
        ("Lardal", ["3909"], "0728 Lardal (til 31.12.2017); valgt: 3909 Larvik"),
        ("Klæbu", ["5001"], "5030 Klæbu (til 31.12.2019); valgt: 5001 Trondheim - Tråante"),
        ("klaebu", ["5001"], "5030 Klæbu (til 31.12.2019); valgt: 5001 Trondheim - Tråante"),
        (
            "Snillfjord",
            ["5055", "5056", "5059"],
            "5012 Snillfjord (til 31.12.2019); valgt: 5055 Heim, 5056 Hitra, 5059 Orkland",
        ),
        (
            "Tysfjord",
            ["1806", "1875"],
            "1850 Tysfjord - Divtasvuodna (til 31.12.2019); valgt: 1806 Narvik, "
            "1875 Hábmer - Hamarøy",
        ),
    ],
)
def test_an_old_municipality_name_is_todays_municipality_with_a_note(
    term: str, numbers: list[str], note: str
) -> None:
    assert municipality.resolve_municipality(term) == numbers
    assert municipality.notes([term], []) == [f"«{term}» er den tidligere kommunen {note}"]


def test_an_old_name_selects_what_its_old_number_selects() -> None:
    for name, number in [("Mandal", "1002"), ("Ski", "0213"), ("Snillfjord", "5012")]:
        assert municipality.resolve_municipality(name) == municipality.resolve_municipality(number)


def test_todays_name_wins_over_an_old_name_of_another_place() -> None:
    assert municipality.resolve_municipality("Sande") == ["1514"]  # Møre og Romsdal
    assert municipality.notes(["Sande"], []) == [
        "«Sande» er lest som 1514 Sande; den tidligere kommunen 0713 Sande (Vestfold) er nå "
        "3903 Holmestrand (skriv 0713 for den)"
    ]
    assert municipality.resolve_municipality("0713") == ["3903"]
    assert municipality.resolve_municipality("Os") == ["3430"]
    assert municipality.resolve_municipality("Bø") == ["1867"]
    # Os (Hedmark) is today's Os: no note for it, only for Os (Hordaland).
    assert municipality.notes(["Os"], []) == [
        "«Os» er lest som 3430 Os; den tidligere kommunen 1243 Os (Hordaland) er nå "
        "4624 Bjørnafjorden (skriv 1243 for den)"
    ]
    # Two of today's municipalities share the name: still the number is asked for.
    with pytest.raises(BadCriteriaError, match="«Herøy» er tvetydig"):
        municipality.resolve_municipality("Herøy")
    assert municipality.notes(["Oslo"], []) == []


def test_a_misspelt_old_name_suggests_it_with_what_it_is_now() -> None:
    with pytest.raises(BadCriteriaError) as caught:
        municipality.resolve_municipality("Mandall")
    assert caught.value.message == "Ukjent kommune «Mandall» (mente du Mandal (4205 Lindesnes)?)"


def test_comma_lists_are_each_place() -> None:
    assert municipality.resolve_municipality("Kristiansand, Stavanger") == ["1103", "4204"]
    assert municipality.resolve_municipality("Kristiansand,Mandal,") == ["4204", "4205"]
    assert municipality.resolve_county("Vest-Agder,11") == sorted(
        VEST_AGDER + municipality.resolve_county("11")
    )
    assert municipality.resolve_police_district("oslo, agder") == sorted(
        municipality.resolve_police_district("oslo") + municipality.resolve_police_district("agder")
    )


def test_a_bad_part_of_a_comma_list_is_named_with_its_list() -> None:
    with pytest.raises(BadCriteriaError) as caught:
        municipality.resolve_municipality("Kristiansand, Stavangr")
    assert caught.value.message == (
        "Ukjent kommune «Stavangr» (mente du Stavanger?) i «Kristiansand, Stavangr» "
        "(komma skiller flere)"
    )
    with pytest.raises(BadCriteriaError) as caught:
        municipality.resolve_police_district("oslo,sørøs")
    assert caught.value.message == (
        "Ukjent politidistrikt «sørøs» (mente du Sør-Øst politidistrikt?) i «oslo,sørøs» "
        "(komma skiller flere)"
    )


def test_no_place_name_has_a_comma() -> None:
    # A comma always separates places; a name with one would be split in two.
    from importlib import resources

    data = resources.files("varsel").joinpath("data")
    for filename, column in [
        ("kommuner-2024.csv", "navn"),
        ("kommuner-2024.csv", "fylke"),
        ("politidistrikter.csv", "politidistrikt"),
        ("kommunenavn-historiske.csv", "gammelt_navn"),
        ("fylker-historiske.csv", "navn"),
    ]:
        rows = csv.DictReader(data.joinpath(filename).read_text("utf-8").splitlines())
        assert not [row[column] for row in rows if "," in row[column]], filename


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


@pytest.mark.parametrize(
    ("number", "note"),
    [
        # The pilot's own numbers of January 2023, used until the 2024 reform.
        ("3024", "3024 er et tidligere kommunenummer (brukt til 31.12.2023); valgt: 3201 Bærum"),
        ("3025", "3025 er et tidligere kommunenummer (brukt til 31.12.2023); valgt: 3203 Asker"),
        ("0220", "0220 er et tidligere kommunenummer (brukt til 31.12.2019); valgt: 3203 Asker"),
        (
            "0706",
            "0706 er et tidligere kommunenummer (brukt til 31.12.2016); valgt: 3907 Sandefjord",
        ),
        (
            "5012",
            "5012 er et tidligere kommunenummer (brukt til 31.12.2019); valgt: 5055 Heim, "
            "5056 Hitra, 5059 Orkland",
        ),
    ],
)
def test_an_old_municipality_number_selects_todays_with_a_note(number: str, note: str) -> None:
    assert municipality.notes([number], []) == [note]


def test_a_current_municipality_number_has_no_note() -> None:
    assert municipality.notes(["0301", "3201,3203"], []) == []
