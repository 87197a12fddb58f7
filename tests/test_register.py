"""The public register's words for a campaign: the places and the employee rule it used."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from helpers import campaign_toml
from varsel import municipality
from varsel.campaign_spec import CampaignSpec, load_spec
from varsel.config import Settings
from varsel.errors import VarselError
from varsel.register import area_names, employee_rule, subject
from varsel.segment_criteria import Criteria


@pytest.fixture
def spec(tmp_path: Path, settings: Settings) -> CampaignSpec:
    path = tmp_path / "c.toml"
    path.write_text(campaign_toml(), "utf-8")
    return load_spec(path, settings)


def with_criteria(spec: CampaignSpec, **criteria: object) -> CampaignSpec:
    return dataclasses.replace(spec, criteria=Criteria(**criteria))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("typed", "shown"),
    [
        ("agder", "Agder politidistrikt"),
        ("Sør-Vest", "Sør-Vest politidistrikt"),  # the docs' own spelling
        ("sor vest", "Sør-Vest politidistrikt"),
        ("Sør-Øst politidistrikt", "Sør-Øst politidistrikt"),
        ("OSLO", "Oslo politidistrikt"),
    ],
)
def test_a_police_district_is_named_as_the_segment_read_it(
    spec: CampaignSpec, typed: str, shown: str
) -> None:
    assert area_names(with_criteria(spec, police_districts=(typed,))) == (shown,)


@pytest.mark.parametrize(
    ("typed", "shown"), [("11", "Rogaland"), ("3", "Oslo"), ("rogaland fylke", "Rogaland")]
)
def test_a_county_is_named_by_its_2024_name(spec: CampaignSpec, typed: str, shown: str) -> None:
    assert area_names(with_criteria(spec, counties=(typed,))) == (shown,)


@pytest.mark.parametrize(
    ("typed", "shown"),
    [("0301", "Oslo"), ("301", "Oslo"), ("0219", "Bærum"), ("BÆRUM", "Bærum"), ("asker", "Asker")],
)
def test_a_municipality_is_named_by_its_2024_name(
    spec: CampaignSpec, typed: str, shown: str
) -> None:
    assert area_names(with_criteria(spec, municipalities=(typed,))) == (shown,)


def test_a_place_the_tables_do_not_know_is_shown_as_typed(spec: CampaignSpec) -> None:
    # An old campaign's stored spec may name what the tables no longer resolve.
    old = with_criteria(spec, counties=("99",), police_districts=(" Atlantis ",))
    assert area_names(old) == ("Atlantis", "99")


def test_a_county_split_in_2024_is_named_by_the_counties_it_became_or_as_typed(
    spec: CampaignSpec,
) -> None:
    # Never by the county of its first municipality alone: that would name too little.
    term = "Vestfold og Telemark"
    named = area_names(with_criteria(spec, counties=(term,)))
    try:
        numbers = municipality.resolve_county(term)
    except VarselError:
        assert named == (term,)
        return
    assert named == tuple(dict.fromkeys(municipality.county_of(n)[1] for n in sorted(numbers)))
    assert len(named) == 2  # Vestfold and Telemark


def test_places_named_twice_are_shown_once(spec: CampaignSpec) -> None:
    twice = with_criteria(spec, municipalities=("0301", "Oslo"), counties=("03",))
    assert area_names(twice) == ("Oslo",)


@pytest.mark.parametrize(
    ("minimum", "rule", "applied"),
    [
        (None, "auto", "none"),
        (1, "auto", "registered"),
        (None, "registered", "registered"),
        (2, "auto", "registered_undecided"),  # the registry hides counts of 1-4
        (3, "registered", "registered_undecided"),
        (2, "exact", "exact"),
        (5, "auto", "exact"),
        (10, "registered", "exact"),
    ],
)
def test_the_employee_rule_is_the_one_the_segment_applied(
    spec: CampaignSpec, minimum: int | None, rule: str, applied: str
) -> None:
    chosen = with_criteria(spec, min_employees=minimum, employee_rule=rule)
    assert employee_rule(chosen) == applied


def test_a_subject_that_would_take_the_page_s_memory_shows_the_campaign_s_name(
    spec: CampaignSpec,
) -> None:
    # The register is public and renders operators' subjects in the web process.
    doubling = (
        '{% set ns = namespace(s="x") %}{% for i in range(40) %}{% set ns.s = ns.s ~ ns.s %}'
        "{% endfor %}{{ ns.s }}"
    )
    widths = '{{ "%999999999s"|format(sender.organisation) }}'
    for source in (doubling, widths):
        nb = dataclasses.replace(spec.templates["nb"], subject=source)
        changed = dataclasses.replace(spec, templates={**spec.templates, "nb": nb})
        assert subject(changed) == spec.name
