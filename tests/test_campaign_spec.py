"""A campaign's definition, read and checked from its TOML file."""

from __future__ import annotations

from pathlib import Path

import pytest

from helpers import campaign_toml
from varsel.campaign_spec import CampaignError, load_spec
from varsel.config import Settings

ROOT = Path(__file__).resolve().parent.parent


def test_pilot_example_parses(settings: Settings) -> None:
    spec = load_spec(ROOT / "examples" / "pilot.toml", settings)
    assert spec.criteria.police_districts == ("oslo",)
    assert spec.verify_url == "https://www.politiet.no/varsel/kontroll"
    assert set(spec.templates) == {"nb", "nn", "en"}
    assert not spec.allow_links


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (("[sender]", "[avsender]"), r"ukjent tabell \[avsender\]"),
        (('address = "sikkerhet@nsr-org.no"', 'address = "sikkerhet@nsr"'), "ikke en brukbar"),
        (('url = "https://www.politiet.no/rad.pdf"', 'url = "http://x.no/a"'), "https-adresse"),
        (('name = "Test"', "name = 3"), "«name» skal være tekst"),
    ],
)
def test_a_mistake_is_one_line_naming_the_file(
    settings: Settings, tmp_path: Path, change: tuple[str, str], message: str
) -> None:
    path = tmp_path / "c.toml"
    path.write_text(campaign_toml().replace(*change), "utf-8")
    with pytest.raises(CampaignError, match=message) as caught:
        load_spec(path, settings)
    assert str(path) in caught.value.message
    assert "\n" not in caught.value.message


def test_a_file_that_is_not_toml_is_a_user_error(settings: Settings, tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text("[campaign\nname = ", "utf-8")
    with pytest.raises(CampaignError) as caught:
        load_spec(path, settings)
    assert str(path) in caught.value.message


@pytest.mark.parametrize(
    ("window", "message"),
    [
        ('start = "25:00"', "[window]: start = '25:00' er ikke et klokkeslett TT:MM (00:00–23:59)"),
        ('end = "ab:cd"', "[window]: end = 'ab:cd' er ikke et klokkeslett TT:MM (00:00–23:59)"),
        ('start = "8:00"', "[window]: start = '8:00' er ikke et klokkeslett TT:MM (00:00–23:59)"),
        (
            'start = "18:00"\nend = "08:00"',
            "[window]: start (18:00) må være før end (08:00); et vindu over midnatt kan ikke "
            "brukes",
        ),
        (
            'timezone = "Mars/Olympus"',
            "[window]: timezone = 'Mars/Olympus' er ikke en kjent tidssone "
            "(for eksempel «Europe/Oslo»)",
        ),
    ],
)
def test_a_send_window_that_cannot_be_used_is_refused_when_read(
    settings: Settings, tmp_path: Path, window: str, message: str
) -> None:
    path = tmp_path / "c.toml"
    path.write_text(campaign_toml() + f"[window]\n{window}\n", "utf-8")
    with pytest.raises(CampaignError) as caught:
        load_spec(path, settings)
    assert caught.value.message == f"{path} {message}"


def test_a_usable_send_window_is_kept(settings: Settings, tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    window = '[window]\ndays = ["mon", "fri"]\nstart = "08:00"\nend = "16:30"\n'
    path.write_text(campaign_toml() + window + 'timezone = "Europe/Oslo"\n', "utf-8")
    limits = load_spec(path, settings).limits
    assert (limits.window_days, limits.window_start, limits.window_end) == (
        ("mon", "fri"),
        "08:00",
        "16:30",
    )


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            ("[campaign]\n", "[campaign]\nper_unitt = true\n"),
            "[campaign]: ukjent nøkkel «per_unitt» (mente du «per_unit»?)",
        ),
        (
            ("[sender]\n", '[sender]\nreplyto = "a@b.no"\n'),
            "[sender]: ukjent nøkkel «replyto» (mente du «reply_to»?)",
        ),
        (
            ("[document]\n", '[document]\nfiles = "a.pdf"\n'),
            "[document]: ukjent nøkkel «files» (mente du «file»?)",
        ),
        (("[public]\n", "[public]\nxyz = 1\n"), "[public]: ukjent nøkkel «xyz» (kjente: base_url)"),
        (
            ("[campaign]\n", "[links]\nallow_clicks = true\n[campaign]\n"),
            "[links]: ukjent nøkkel «allow_clicks» (mente du «allow_clickable»?)",
        ),
        (
            ("[campaign]\n", '[templates.nb]\nsubjekt = "Hei"\n[campaign]\n'),
            "[templates.nb]: ukjent nøkkel «subjekt» (mente du «subject»?)",
        ),
        (
            ("[campaign]\n", '[templates.se]\nsubject = "Hei"\n[campaign]\n'),
            "[templates]: ukjent nøkkel «se» (kjente: nb, nn, en)",
        ),
        (
            ("[campaign]\n", "[limits]\nconnection = 5\n[campaign]\n"),
            "[limits]: ukjent nøkkel «connection» (mente du «connections»?)",
        ),
        (
            ("[campaign]\n", '[window]\nstrat = "08:00"\n[campaign]\n'),
            "[window]: ukjent nøkkel «strat» (mente du «start»?)",
        ),
    ],
)
def test_an_unknown_key_in_any_table_is_refused_with_the_closest_known_one(
    settings: Settings, tmp_path: Path, change: tuple[str, str], message: str
) -> None:
    path = tmp_path / "c.toml"
    path.write_text(campaign_toml().replace(*change, 1), "utf-8")
    with pytest.raises(CampaignError) as caught:
        load_spec(path, settings)
    assert caught.value.message == f"{path} {message}"


def test_a_definition_that_is_not_toml_is_refused_in_bokmal(
    tmp_path: Path, settings: Settings
) -> None:
    path = tmp_path / "c.toml"
    path.write_text('{"a": 1}\n', "utf-8")
    with pytest.raises(CampaignError) as caught:
        load_spec(path, settings)
    assert caught.value.message == f"{path}: ugyldig TOML: ugyldig linje (linje 1, kolonne 1)"


def test_a_campaigns_nace_list_is_read_as_several_codes_or_refused_naming_the_key(
    settings: Settings, tmp_path: Path
) -> None:
    path = tmp_path / "c.toml"
    path.write_text(campaign_toml(segment='nace = "62,47"\n'), "utf-8")
    assert load_spec(path, settings).criteria.nace == ("62,47",)  # as written; resolved as two
    path.write_text(campaign_toml(segment='nace = ["62,1"]\n'), "utf-8")
    with pytest.raises(CampaignError) as caught:
        load_spec(path, settings)
    assert caught.value.message == (
        f"{path} [segment] nace: Ugyldig næringskode «1» i «62,1»: skriv 2–5 sifre "
        "(62, 62.1, 62.10, 62.100) eller en seksjonsbokstav (C); komma skiller flere koder"
    )


def test_an_empty_segment_table_is_said_to_be_empty_and_what_to_write(
    settings: Settings, tmp_path: Path
) -> None:
    path = tmp_path / "c.toml"
    full = campaign_toml()
    assert '[segment]\npolice_district = ["oslo"]\n' in full
    path.write_text(full.replace('[segment]\npolice_district = ["oslo"]\n', "[segment]\n"), "utf-8")
    with pytest.raises(CampaignError) as caught:
        load_spec(path, settings)
    assert caught.value.message == (
        f"{path}: [segment] er tom: skriv hvem kampanjen skal nå, for eksempel "
        'police_district = ["oslo"] eller municipality = ["0301"]'
    )
    # Without the table at all, it is still said to be missing.
    path.write_text(full.replace('[segment]\npolice_district = ["oslo"]\n', ""), "utf-8")
    with pytest.raises(CampaignError) as caught:
        load_spec(path, settings)
    assert caught.value.message == f"{path}: mangler [segment] (hvem kampanjen skal nå)"
