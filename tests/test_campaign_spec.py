"""A campaign's definition, read and checked from its TOML file."""

from __future__ import annotations

from pathlib import Path

import pytest

from helpers import campaign_toml
from varsel.campaign_spec import load_spec
from varsel.config import Settings
from varsel.errors import CampaignError, UserError

ROOT = Path(__file__).resolve().parent.parent


def refusal(settings: Settings, path: Path, text: str) -> str:
    """The one-line message load_spec refuses `text` with, written to `path`."""
    path.write_text(text, "utf-8")
    with pytest.raises(CampaignError) as caught:
        load_spec(path, settings)
    return caught.value.message


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
        ('start = "25:00"', '[window]: start = "25:00" er ikke et klokkeslett TT:MM (00:00–23:59)'),
        ('end = "ab:cd"', '[window]: end = "ab:cd" er ikke et klokkeslett TT:MM (00:00–23:59)'),
        ('start = "8:00"', '[window]: start = "8:00" er ikke et klokkeslett TT:MM (00:00–23:59)'),
        (
            'start = "18:00"\nend = "08:00"',
            "[window]: start (18:00) må være før end (08:00); et vindu over midnatt kan ikke "
            "brukes",
        ),
        (
            'timezone = "Mars/Olympus"',
            '[window]: timezone = "Mars/Olympus" er ikke en kjent tidssone '
            "(for eksempel «Europe/Oslo»)",
        ),
    ],
)
def test_a_send_window_that_cannot_be_used_is_refused_when_read(
    settings: Settings, tmp_path: Path, window: str, message: str
) -> None:
    path = tmp_path / "c.toml"
    assert refusal(settings, path, campaign_toml() + f"[window]\n{window}\n") == f"{path} {message}"


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
    assert refusal(settings, path, campaign_toml().replace(*change, 1)) == f"{path} {message}"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            ("[campaign]\n", "[campaign]\nmin_employees = 5\n"),
            "[campaign]: nøkkelen «min_employees» hører hjemme i [segment], ikke i [campaign]",
        ),
        (
            ("[campaign]\n", '[limits]\ntitle = "Råd"\n[campaign]\n'),
            "[limits]: nøkkelen «title» hører hjemme i [document], ikke i [limits]",
        ),
        (
            ("[campaign]\n", '[window]\nname = "Uke 3"\n[campaign]\n'),
            "[window]: nøkkelen «name» hører hjemme i [campaign] eller [sender], ikke i [window]",
        ),
    ],
)
def test_a_key_under_the_wrong_heading_is_refused_naming_its_table(
    settings: Settings, tmp_path: Path, change: tuple[str, str], message: str
) -> None:
    path = tmp_path / "c.toml"
    assert refusal(settings, path, campaign_toml().replace(*change, 1)) == f"{path} {message}"


def test_a_definition_that_is_not_toml_is_refused_in_bokmal(
    tmp_path: Path, settings: Settings
) -> None:
    path = tmp_path / "c.toml"
    assert (
        refusal(settings, path, '{"a": 1}\n')
        == f"{path}: ugyldig TOML: ugyldig linje (linje 1, kolonne 1)"
    )


def test_a_campaigns_nace_list_is_read_as_several_codes_or_refused_naming_the_key(
    settings: Settings, tmp_path: Path
) -> None:
    path = tmp_path / "c.toml"
    path.write_text(campaign_toml(segment='nace = "62,47"\n'), "utf-8")
    assert load_spec(path, settings).criteria.nace == ("62,47",)  # as written; resolved as two
    assert refusal(settings, path, campaign_toml(segment='nace = ["62,1"]\n')) == (
        f"{path} [segment] nace: Ugyldig næringskode «1» i «62,1»: skriv 2–5 sifre "
        "(62, 62.1, 62.10, 62.100) eller en seksjonsbokstav (C); komma skiller flere koder"
    )


def test_an_empty_segment_table_is_said_to_be_empty_and_what_to_write(
    settings: Settings, tmp_path: Path
) -> None:
    path = tmp_path / "c.toml"
    full = campaign_toml()
    assert '[segment]\npolice_district = ["oslo"]\n' in full
    assert refusal(
        settings, path, full.replace('[segment]\npolice_district = ["oslo"]\n', "[segment]\n")
    ) == (
        f"{path}: [segment] er tom: skriv hvem kampanjen skal nå, for eksempel "
        'police_district = ["oslo"] eller municipality = ["0301"]'
    )
    # Without the table at all, it is still said to be missing.
    assert (
        refusal(settings, path, full.replace('[segment]\npolice_district = ["oslo"]\n', ""))
        == f"{path}: mangler [segment] (hvem kampanjen skal nå)"
    )


@pytest.mark.parametrize(
    ("key", "what"),
    [
        ("police_district", "valgt hele landet"),
        ("municipality", "valgt hele landet"),
        ("county", "valgt hele landet"),
        ("nace", "valgt alle næringer"),
    ],
)
def test_an_empty_list_that_would_narrow_the_segment_is_refused_naming_it(
    settings: Settings, tmp_path: Path, key: str, what: str
) -> None:
    # police_district = [] once put no limit on the area: the whole country was selected.
    path = tmp_path / "c.toml"
    full = campaign_toml().replace('police_district = ["oslo"]', f"{key} = []")
    path.write_text(full, "utf-8")
    with pytest.raises(UserError) as caught:
        load_spec(path, settings)
    assert caught.value.message == (
        f"{path} [segment]: «{key}» er en tom liste, som ville {what}: "
        "skriv minst én, eller ta bort nøkkelen"
    )


def test_an_empty_exclusion_list_is_accepted(settings: Settings, tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text(campaign_toml(segment="exclude_form = []\n"), "utf-8")
    spec = load_spec(path, settings)
    assert (spec.criteria.police_districts, spec.criteria.exclude_forms) == (("oslo",), ())


@pytest.mark.parametrize(
    ("document", "extra", "where"),
    [
        ('file = "rad\\u0000.pdf"\n', "", "[document]: «file»"),
        ("", '[templates.nb]\ntext_file = "nb\\u0000.txt"\n', "[templates.nb]: «text_file»"),
        ("", '[templates.en]\nletter_file = "\\u0000"\n', "[templates.en]: «letter_file»"),
    ],
)
def test_a_nul_in_a_file_name_is_one_line_naming_table_and_key(
    settings: Settings, tmp_path: Path, document: str, extra: str, where: str
) -> None:
    # It was a ValueError traceback (embedded null byte).
    path = tmp_path / "c.toml"
    assert refusal(settings, path, campaign_toml(document=document) + extra) == (
        f"{path} {where} har et NUL-tegn (\\u0000) i filnavnet; skriv det uten"
    )


@pytest.mark.parametrize(
    ("limits", "message"),
    [
        ("connections = 0.5", "[limits]: connections skal være et positivt heltall"),
        ("connections = 2.5", "[limits]: connections skal være et positivt heltall"),
        ("connections = inf", "[limits]: connections skal være et positivt heltall"),
        (
            "per_domain_per_minute = nan",
            "[limits]: per_domain_per_minute skal være et positivt heltall",
        ),
        ("rate_per_second = nan", "[limits]: rate_per_second skal være et positivt tall"),
        ("retry_hours = inf", "[limits]: retry_hours skal være et positivt tall"),
        ('rate_per_second = "100"', "[limits]: rate_per_second skal være et positivt tall"),
    ],
)
def test_a_limit_that_is_no_usable_number_is_refused_naming_the_key(
    settings: Settings, tmp_path: Path, limits: str, message: str
) -> None:
    path = tmp_path / "c.toml"
    assert refusal(settings, path, campaign_toml(limits=limits + "\n")) == f"{path} {message}"


def test_a_whole_limit_written_as_a_float_is_kept_as_a_count(
    settings: Settings, tmp_path: Path
) -> None:
    path = tmp_path / "c.toml"
    path.write_text(campaign_toml(limits="connections = 8.0\nretry_hours = 0.5\n"), "utf-8")
    limits = load_spec(path, settings).limits
    assert (limits.connections, limits.retry_hours) == (8, 0.5)
    assert isinstance(limits.connections, int)


def test_dkim_ed25519_must_be_true_or_false(settings: Settings, tmp_path: Path) -> None:
    # bool("false") is True: the quoted word would have turned the Ed25519 key on.
    path = tmp_path / "c.toml"
    assert (
        refusal(settings, path, campaign_toml(sender='dkim_ed25519 = "false"\n'))
        == f"{path} [sender]: dkim_ed25519 skal være true eller false"
    )


@pytest.mark.parametrize("name", ["Politiet <post@politiet.no>", "post\uff20politiet.no"])
def test_a_sender_name_that_could_pass_for_an_address_is_refused(
    settings: Settings, tmp_path: Path, name: str
) -> None:
    # Mail programs show the name where the reader looks for the address; some show only it.
    path = tmp_path / "c.toml"
    text = campaign_toml().replace('name = "NSR"', f'name = "{name}"')
    assert refusal(settings, path, text) == (
        f"{path} [sender] name: «{name}» har «@», «<» eller «>»; mottakerne kan ta det for "
        "avsenderens adresse. Skriv bare navnet."
    )


def test_a_document_title_that_would_break_the_document_e_mails_subject_is_refused(
    settings: Settings, tmp_path: Path
) -> None:
    # The title is the subject of the e-mail that carries a download link (documents.message).
    path = tmp_path / "c.toml"
    title = "=?utf-8?q?x=0D=0ABcc:_evil@x.test?= Råd"
    assert refusal(settings, path, campaign_toml(title=title)) == (
        f"{path} [document] title: linjeskift, NUL eller «=?» kan ikke stå her, for teksten "
        f"står i et e-posthode: «{title}»"
    )


def test_a_dkim_selector_is_checked_when_read_and_kept_in_lower_case(
    settings: Settings, tmp_path: Path
) -> None:
    path = tmp_path / "c.toml"
    path.write_text(campaign_toml(sender='dkim_selector = "Varsel2026"\n'), "utf-8")
    assert load_spec(path, settings).dkim_selector == "varsel2026"  # as the key file is named
    assert refusal(settings, path, campaign_toml(sender='dkim_selector = "varsel 2026"\n')) == (
        f"{path} [sender] dkim_selector: «varsel 2026» kan ikke være en DKIM-selektor "
        "(bruk bokstavene a–z, tall og -, og punktum mellom ledd)"
    )


def test_a_template_file_that_is_not_utf8_is_one_line_naming_the_key(
    settings: Settings, tmp_path: Path
) -> None:
    (tmp_path / "nb.txt").write_bytes(
        "Hei {{ unit.name }}\nVennlig hilsen Bærum\n".encode("cp1252")
    )
    path = tmp_path / "c.toml"
    assert refusal(settings, path, campaign_toml() + '[templates.nb]\ntext_file = "nb.txt"\n') == (
        f"{path} [templates.nb] text_file: {tmp_path / 'nb.txt'}, linje 2: er ikke UTF-8 "
        "(byte 37); lagre filen som UTF-8"
    )


def test_a_document_file_name_too_long_is_said_not_to_exist(
    settings: Settings, tmp_path: Path
) -> None:
    path = tmp_path / "c.toml"
    path.write_text(campaign_toml(document=f'file = "{"a" * 300}.pdf"\n'), "utf-8")
    with pytest.raises(CampaignError, match=r"\[document\]: file «.*» finnes ikke"):
        load_spec(path, settings)


def test_a_key_with_two_homes_names_them_in_the_pages_language(
    settings: Settings, tmp_path: Path
) -> None:
    from varsel.web.console_auth import translate

    path = tmp_path / "c.toml"
    toml = campaign_toml().replace("[campaign]\n", '[window]\nname = "U"\n[campaign]\n', 1)
    path.write_text(toml, "utf-8")
    with pytest.raises(CampaignError) as raised:
        load_spec(path, settings)
    message = raised.value.args[0]
    assert translate("en", message).endswith(
        "[window]: the key “name” belongs in [campaign] or [sender], not in [window]"
    )
    assert translate("nn", message).endswith(
        "[window]: nøkkelen «name» høyrer heime i [campaign] eller [sender], ikkje i [window]"
    )


def test_a_campaign_base_url_too_long_for_the_list_unsubscribe_line_is_refused_naming_it(
    settings: Settings, tmp_path: Path
) -> None:
    base = "https://www.politiet.no/" + "v" * 900
    text = campaign_toml().replace("https://www.politiet.no/varsel", base)
    assert refusal(settings, tmp_path / "c.toml", text) == (
        f"{tmp_path / 'c.toml'} [public] base_url: adressen er 924 tegn lang; avmeldingslenken "
        "i e-postenes List-Unsubscribe-felt må stå på én linje, så den kan være på høyst 902 tegn"
    )


@pytest.mark.parametrize(
    ("changed", "where"),
    [
        ({"name": "Råd\\u0000"}, "[campaign]: «name»"),
        ({"organisation": "NSR\\u0000"}, "[sender]: «organisation»"),
    ],
)
def test_a_nul_in_a_text_is_refused_naming_its_key(
    settings: Settings, tmp_path: Path, changed: dict[str, str], where: str
) -> None:
    # TOML can write one (\u0000); PostgreSQL's text cannot hold it, and no name needs it.
    path = tmp_path / "c.toml"
    assert refusal(settings, path, campaign_toml(**changed)) == (
        f"{path} {where} har et NUL-tegn (\\u0000); skriv teksten uten det"
    )
