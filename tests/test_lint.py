"""The campaign linter, on campaigns made from the real registry records."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from helpers import campaign_toml, import_with_hostile_name
from varsel.campaign import create_campaign, get_campaign, update_spec
from varsel.campaign_spec import load_spec
from varsel.cli import cli
from varsel.config import Settings
from varsel.db import Database
from varsel.keys import key_path
from varsel.link_checks import under_base
from varsel.lint import definition_findings, lint_campaign
from varsel.lint_report import LintReport, Severity
from varsel.registry import import_dump

CAMPAIGN = campaign_toml(campaign="per_unit = {per_unit}\n", sender="{reply_to}\n")
# Templates that pass every check; each case below adds or takes away one thing.
TEXT = """{% for u in units %}
Til {{ u.name }} (org.nr. {{ u.orgnr|orgnr }})
{% endfor %}
Skriv {{ verify_url }} i nettleseren og koden {{ code }}.
Dokumentet: {{ document_url }}
Avmelding: {{ unsubscribe_url }}
"""
HTML = """<p>{% for u in units %}Til <strong>{{ u.name }}</strong> ({{ u.orgnr|orgnr }})<br>
{% endfor %}</p>
<p>Skriv {{ verify_url|link }} og koden {{ code }}.</p>
<p>Dokumentet: {{ document_url|link }}</p>
<p>Avmelding: {{ unsubscribe_url|link }}</p>
"""

# Names {{ unit }}, the first unit only: wrong for an address several units share.
ONLY_FIRST = TEXT.replace("{% for u in units %}\n", "").replace("{% endfor %}\n", "")
ONLY_FIRST = ONLY_FIRST.replace("u.", "unit.")


# Where the test campaigns' pages are (campaign_toml's [public] base_url): the server serves them.
PUBLIC = "https://www.politiet.no/varsel"


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """Default settings with the keys in the test's folder and the campaigns' public address."""
    return Settings.load(environ={}, dkim_key_dir=str(tmp_path / "keys"), public_base_url=PUBLIC)


@pytest.fixture
def registry_db(db: Database, brreg: Path) -> Database:
    from varsel.snapshot import norway_today

    # Dated today: a dump dated by the fixture file's time would grow old on a kept machine,
    # and lint warns about old data (registry-age).
    import_dump(db, brreg / "enheter-sample.json", dump_date=norway_today().isoformat())
    return db


def create(
    db: Database,
    settings: Settings,
    tmp_path: Path,
    extra: str = "",
    *,
    per_unit: bool = False,
    reply_to: bool = True,
) -> int:
    text = CAMPAIGN.format(
        per_unit=str(per_unit).lower(),
        reply_to='reply_to = "post@nsr-org.no"' if reply_to else "",
    )
    path = tmp_path / "campaign.toml"
    path.write_text(text, "utf-8")
    cid = create_campaign(db, settings, path).campaign.id
    if extra:
        # campaign create refuses what lint refuses on its own: the console's editor lets it in.
        path.write_text(text + extra, "utf-8")
        update_spec(db, cid, load_spec(path, settings), actor="kari")
    return cid


def templates(language: str = "nb", *, text: str = TEXT, html: str = HTML, **more: str) -> str:
    """A [templates.LANG] table with the given sources as TOML literal strings."""
    lines = [f"[templates.{language}]", f"text = '''{text}'''", f"html = '''{html}'''"]
    lines += [f"{key} = '''{value}'''" for key, value in more.items()]
    return "\n" + "\n".join(lines) + "\n"


def found(report: LintReport) -> list[tuple[str, str, str | None]]:
    return [(f.severity.value, f.code, f.language) for f in report.findings]


def test_a_campaign_with_the_shipped_templates_is_clean(
    registry_db: Database, settings: Settings, tmp_path: Path
) -> None:
    cid = create(registry_db, settings, tmp_path)
    report = lint_campaign(registry_db, settings, cid)
    assert report.findings == ()
    assert report.ok
    assert report.summary() == f"Kampanje {cid} kan sendes: 0 feil, 0 advarsler."


def test_the_result_is_recorded_as_an_event(
    registry_db: Database, settings: Settings, tmp_path: Path
) -> None:
    cid = create(registry_db, settings, tmp_path, reply_to=False)
    lint_campaign(registry_db, settings, cid)
    key_path(settings, "nsr-org.no", "varsel").unlink()
    lint_campaign(registry_db, settings, cid)
    rows = registry_db.query(
        "SELECT detail FROM events WHERE campaign_id = ? AND kind = 'lint' ORDER BY id", (cid,)
    )
    assert [json.loads(r[0]) for r in rows] == [
        {"ok": True, "errors": 0, "warnings": 1},
        {"ok": False, "errors": 1, "warnings": 1},
    ]


ERRORS = {
    "link elsewhere": (
        templates(text=TEXT + "Les mer på https://www.example.com/sikkerhet.\n"),
        "link-domain",
    ),
    "link elsewhere, HTML text only": (
        templates(html=HTML + "<p>Se www.example.com/sikkerhet</p>"),
        "link-domain",
    ),
    "shortener": (templates(text=TEXT + "Kort: https://bit.ly/3xYzAbC\n"), "shortener"),
    "shortener without a scheme": (templates(text=TEXT + "Kort: tinyurl.com/abc\n"), "shortener"),
    "shortener the operator allowed": (
        '[links]\nallowed_domains = ["www.politiet.no", "bit.ly"]\n'
        + templates(text=TEXT + "https://bit.ly/x\n"),
        "shortener",
    ),
    "redirect on an allowed host": (
        templates(text=TEXT + "https://www.politiet.no/redirect?url=https%3A%2F%2Fevil.example\n"),
        "redirect",
    ),
    "redirect in the query": (
        templates(text=TEXT + "https://www.politiet.no/r?u=https://evil.example/\n"),
        "redirect",
    ),
    "safelinks": (
        templates(
            text=TEXT + "https://eur01.safelinks.protection.outlook.com/?url=https%3A%2F%2Fx.no\n"
        ),
        "redirect",
    ),
    "facebook": (
        templates(text=TEXT + "https://l.facebook.com/l.php?u=https%3A%2F%2Fx.no\n"),
        "redirect",
    ),
    "clickable link": (
        templates(html=HTML + '<p><a href="https://www.politiet.no/varsel">her</a></p>'),
        "clickable-link",
    ),
    "image": (
        templates(html=HTML + '<img src="https://www.politiet.no/logo.png" alt="">'),
        "remote-content",
    ),
    "stylesheet with links on": (
        "[links]\nallow_clickable = true\n"
        + templates(html=HTML + '<link rel="stylesheet" href="https://www.politiet.no/s.css">'),
        "remote-content",
    ),
    "http": (templates(text=TEXT + "Se http://www.politiet.no/rad\n"), "http"),
    "no names": (templates(text="Hei!\n" + TEXT.split("{% endfor %}\n")[1]), "names"),
    "only the first unit": (templates(text=ONLY_FIRST), "names"),
    "no code": (templates(html=HTML.replace("{{ code }}", "fra brevet")), "missing-code"),
    "no verify URL": (
        templates(text=TEXT.replace("{{ verify_url }}", "kontrollsiden")),
        "missing-verify-url",
    ),
    "no document URL": (
        templates(text=TEXT.replace("{{ document_url }}", "på nettet")),
        "missing-document-url",
    ),
    "undefined name": (templates(text=TEXT + "{{ unit.nme }}\n"), "template"),
    "syntax error": (templates(html=HTML + "{% if %}"), "template"),
}


@pytest.mark.parametrize(("extra", "code"), ERRORS.values(), ids=ERRORS.keys())
def test_each_error_is_found_alone(
    registry_db: Database, settings: Settings, tmp_path: Path, extra: str, code: str
) -> None:
    cid = create(registry_db, settings, tmp_path, extra)
    report = lint_campaign(registry_db, settings, cid)
    assert found(report) == [("error", code, "nb")]
    assert not report.ok


def test_a_link_elsewhere_says_what_and_where(
    registry_db: Database, settings: Settings, tmp_path: Path
) -> None:
    extra = templates(
        "en",
        text=TEXT + "https://evil.example/x\n",
        html=HTML + "<p>https://evil.example/x</p>",
    )
    report = lint_campaign(registry_db, settings, create(registry_db, settings, tmp_path, extra))
    assert [f.message for f in report.findings] == [
        "en (tekst og HTML): https://evil.example/x går til evil.example, som ikke er et "
        "tillatt domene (tillatt: www.politiet.no)."
    ]


def test_a_template_error_carries_jinja_s_message(
    registry_db: Database, settings: Settings, tmp_path: Path
) -> None:
    # A mistyped attribute is found in the source, at its line, before anything is rendered.
    extra = templates("nn", text=TEXT + "{{ unit.nme }}\n")
    report = lint_campaign(registry_db, settings, create(registry_db, settings, tmp_path, extra))
    line = TEXT.count("\n") + 1
    assert [f.message for f in report.findings] == [
        f"templates.nn.text, linje {line}: «unit.nme» finnes ikke; unit har municipality, name, "
        "orgnr"
    ]
    # What only rendering shows carries Jinja's (Python's) own words.
    extra = templates("nn", text=TEXT + "{{ 1 / 0 }}\n")
    report = lint_campaign(registry_db, settings, create(registry_db, settings, tmp_path, extra))
    assert [f.message for f in report.findings] == [
        "nn: malen kan ikke brukes: malfeil: ZeroDivisionError: division by zero"
    ]


def test_a_template_that_would_take_the_process_s_memory_is_refused_in_its_words(
    registry_db: Database, settings: Settings, tmp_path: Path
) -> None:
    # Lint renders in the console's process: 2 ** 40 characters would be a MemoryError there.
    doubling = (
        '{% set ns = namespace(s="x") %}{% for i in range(40) %}{% set ns.s = ns.s ~ ns.s %}'
        "{% endfor %}{{ ns.s|length }}\n"
    )
    extra = templates("nn", text=TEXT + doubling)
    cid = create(registry_db, settings, tmp_path, extra)
    report = lint_campaign(registry_db, settings, cid)
    assert [f.message for f in report.findings] == [
        "nn: malen kan ikke brukes: malfeil: teksten eller listen blir for lang (over 100000) "
        "med «~»"
    ]
    env = {"VARSEL_DKIM_KEY_DIR": str(settings.dkim_key_dir), "VARSEL_PUBLIC_BASE_URL": PUBLIC}
    result = CliRunner().invoke(
        cli, ["--db", registry_db.url, "campaign", "lint", str(cid)], env=env
    )
    assert result.exit_code == 2
    assert result.output.splitlines()[0] == (
        "feil     nn: malen kan ikke brukes: malfeil: teksten eller listen blir for lang "
        "(over 100000) med «~»"
    )


def test_a_hard_coded_name_is_caught_by_the_second_sample(
    registry_db: Database, settings: Settings, tmp_path: Path
) -> None:
    # No recipient writes nynorsk, so nn's samples are the made-up EKSEMPEL AS and a second unit.
    text = "Til EKSEMPEL AS (org.nr. 999 999 999)\n" + TEXT.split("{% endfor %}\n")[1]
    extra = templates("nn", text=text)
    report = lint_campaign(registry_db, settings, create(registry_db, settings, tmp_path, extra))
    assert [f.message for f in report.findings] == [
        "nn (tekst): meldingen nevner ikke virksomheten den gjelder; mangler «BRØDRENE HANSEN & "
        "SØNN AS» (org.nr. 888 888 888). Bruk {{ unit.name }} og {{ unit.orgnr }}, eller en "
        "løkke over units."
    ]


def test_naming_one_unit_is_enough_when_each_unit_gets_its_own_message(
    registry_db: Database, settings: Settings, tmp_path: Path
) -> None:
    shared = create(registry_db, settings, tmp_path, templates(text=ONLY_FIRST))
    message = lint_campaign(registry_db, settings, shared).findings[0].message
    assert message.startswith(
        "nb (tekst): meldingen nevner ikke virksomheten den gjelder når flere virksomheter deler "
        "e-postadressen; mangler «"
    )
    assert message.endswith("Nevn alle med {% for u in units %}…{% endfor %}.")
    per_unit = create(registry_db, settings, tmp_path, templates(text=ONLY_FIRST), per_unit=True)
    assert lint_campaign(registry_db, settings, per_unit).findings == ()


def test_clickable_links_to_allowed_domains_pass_when_the_campaign_allows_them(
    registry_db: Database, settings: Settings, tmp_path: Path
) -> None:
    extra = "[links]\nallow_clickable = true\n" + templates(
        html=HTML + '<p><a href="https://www.politiet.no/varsel">her</a></p>'
    )
    report = lint_campaign(registry_db, settings, create(registry_db, settings, tmp_path, extra))
    assert report.findings == ()


def test_names_may_be_shown_in_other_case(
    registry_db: Database, settings: Settings, tmp_path: Path
) -> None:
    extra = templates(text=TEXT.replace("{{ u.name }}", "{{ u.name|title }}"))
    report = lint_campaign(registry_db, settings, create(registry_db, settings, tmp_path, extra))
    assert report.findings == ()


def test_a_problem_outside_the_templates_is_reported_once(
    registry_db: Database, settings: Settings, tmp_path: Path
) -> None:
    extra = "[links]\nallow_clickable = true\nallowed_domains = []\n"
    report = lint_campaign(registry_db, settings, create(registry_db, settings, tmp_path, extra))
    assert found(report) == [("error", "message", None)]
    assert report.findings[0].message == (
        "Kampanjen: lenker er slått på, men ingen domener er tillatt"
    )


def test_a_language_without_a_template(
    registry_db: Database, settings: Settings, tmp_path: Path
) -> None:
    cid = create(registry_db, settings, tmp_path)
    with registry_db.transaction():
        registry_db.execute(
            "UPDATE recipients SET language = 'se' WHERE campaign_id = ? AND orgnr = '962986633'",
            (cid,),
        )
    report = lint_campaign(registry_db, settings, cid)
    assert found(report) == [("error", "missing-template", "se")]


def test_a_missing_dkim_key(registry_db: Database, settings: Settings, tmp_path: Path) -> None:
    cid = create(registry_db, settings, tmp_path)
    path = key_path(settings, "nsr-org.no", "varsel")
    path.unlink()
    report = lint_campaign(registry_db, settings, cid)
    assert found(report) == [("error", "dkim-key", None)]
    assert report.findings[0].message == (
        f"Avsenderdomenet nsr-org.no har ingen DKIM-nøkkel: {path} finnes ikke. Lag den med "
        "«varsel keys generate --domain nsr-org.no --selector varsel» og publiser DNS-posten."
    )


def test_a_missing_ed25519_key_is_made_by_create_and_lint_says_its_algorithm(
    registry_db: Database, settings: Settings, tmp_path: Path
) -> None:
    # create made only the RSA key; lint then said to make the second with «keys generate
    # --selector varsele», which makes an RSA key, not the Ed25519 one the campaign asks for.
    path = tmp_path / "campaign.toml"
    path.write_text(campaign_toml(sender="dkim_ed25519 = true\n"), "utf-8")
    cid = create_campaign(registry_db, settings, path).campaign.id
    ed = key_path(settings, "nsr-org.no", "varsele")
    assert "dkim-key" not in [
        code for _, code, _ in found(lint_campaign(registry_db, settings, cid))
    ]
    ed.unlink()
    [missing] = [
        f for f in lint_campaign(registry_db, settings, cid).findings if f.code == "dkim-key"
    ]
    assert missing.message == (
        f"Avsenderdomenet nsr-org.no har ingen Ed25519-nøkkel for DKIM: {ed} finnes ikke. Lag "
        "den med «varsel keys generate --domain nsr-org.no --selector varsele --algorithm "
        "ed25519» og publiser DNS-posten."
    )


@pytest.mark.parametrize(("selector", "algorithm"), [("varsel", "ed25519"), ("varsele", "rsa")])
def test_a_dkim_key_of_the_wrong_algorithm_for_its_selector_is_an_error(
    registry_db: Database, settings: Settings, tmp_path: Path, selector: str, algorithm: str
) -> None:
    # RSA under the selector, Ed25519 under its second: an RSA key made for the second (as
    # the hint said before) would sign twice with RSA; Ed25519 alone most receivers cannot check.
    from varsel.dkim import generate_key

    path = tmp_path / "campaign.toml"
    path.write_text(campaign_toml(sender="dkim_ed25519 = true\n"), "utf-8")
    cid = create_campaign(registry_db, settings, path).campaign.id
    key = key_path(settings, "nsr-org.no", selector)
    key.unlink()
    generate_key(key.parent, "nsr-org.no", selector, algorithm)
    assert key.exists()
    [wrong] = [
        f for f in lint_campaign(registry_db, settings, cid).findings if f.code == "dkim-key"
    ]
    wanted = "rsa" if selector == "varsel" else "ed25519"
    assert wrong.message == (
        f"DKIM-nøkkelen {key} er {algorithm}, men selektoren {selector} skal ha en "
        f"{wanted}-nøkkel: flytt filen bort og lag en med «varsel keys generate --domain "
        f"nsr-org.no --selector {selector} --algorithm {wanted}», eller velg en ny dkim_selector."
    )


def test_a_dkim_key_that_is_not_a_key(
    registry_db: Database, settings: Settings, tmp_path: Path
) -> None:
    cid = create(registry_db, settings, tmp_path)
    key_path(settings, "nsr-org.no", "varsel").write_text("not a key\n", "ascii")
    assert found(lint_campaign(registry_db, settings, cid)) == [("error", "dkim-key", None)]


WARNINGS = {
    "long subject": (
        templates(subject="Forebyggende sikkerhetsinformasjon " * 3),
        "subject-length",
        "nb",
    ),
    "tracking": (
        templates(text=TEXT + "https://www.politiet.no/rad?utm_source=epost\n"),
        "tracking",
        "nb",
    ),
    "fbclid": (
        templates(text=TEXT + "https://www.politiet.no/rad?fbclid=IwAR0\n"),
        "tracking",
        "nb",
    ),
}


@pytest.mark.parametrize(("extra", "code", "language"), WARNINGS.values(), ids=WARNINGS.keys())
def test_each_warning_is_found_alone(
    registry_db: Database,
    settings: Settings,
    tmp_path: Path,
    extra: str,
    code: str,
    language: str,
) -> None:
    report = lint_campaign(registry_db, settings, create(registry_db, settings, tmp_path, extra))
    assert found(report) == [("warning", code, language)]
    assert report.ok


def test_no_reply_to_and_a_key_others_can_read_are_warnings(
    registry_db: Database, settings: Settings, tmp_path: Path
) -> None:
    cid = create(registry_db, settings, tmp_path, reply_to=False)
    key_path(settings, "nsr-org.no", "varsel").chmod(0o644)
    report = lint_campaign(registry_db, settings, cid)
    assert found(report) == [("warning", "dkim-key-mode", None), ("warning", "no-reply-to", None)]
    assert report.ok


def test_errors_come_before_warnings(
    registry_db: Database, settings: Settings, tmp_path: Path
) -> None:
    extra = templates(text=TEXT + "https://bit.ly/x?utm_source=a\n")
    cid = create(registry_db, settings, tmp_path, extra, reply_to=False)
    report = lint_campaign(registry_db, settings, cid)
    assert [f.severity for f in report.findings] == [
        Severity.ERROR,
        Severity.WARNING,
        Severity.WARNING,
    ]
    assert report.summary() == (
        f"Kampanje {cid} kan ikke sendes ennå: 1 feil, 2 advarsler. "
        "Rett feilene og kjør lint igjen."
    )


def test_cli_exit_status(registry_db: Database, settings: Settings, tmp_path: Path) -> None:
    env = {"VARSEL_DKIM_KEY_DIR": str(settings.dkim_key_dir), "VARSEL_PUBLIC_BASE_URL": PUBLIC}
    runner = CliRunner()
    clean = create(registry_db, settings, tmp_path)
    result = runner.invoke(cli, ["--db", registry_db.url, "campaign", "lint", str(clean)], env=env)
    assert result.exit_code == 0, result.output
    assert result.output == f"Kampanje {clean} kan sendes: 0 feil, 0 advarsler.\n"

    bad = create(registry_db, settings, tmp_path, templates(text=TEXT + "https://bit.ly/x\n"))
    result = runner.invoke(cli, ["--db", registry_db.url, "campaign", "lint", str(bad)], env=env)
    assert result.exit_code == 2
    lines = result.output.splitlines()
    assert lines[0].startswith("feil     nb (tekst): https://bit.ly/x er en forkortet lenke")
    assert lines[-1].startswith(f"Kampanje {bad} kan ikke sendes ennå: 1 feil")

    result = runner.invoke(
        cli, ["--db", registry_db.url, "campaign", "lint", str(bad), "--json"], env=env
    )
    assert result.exit_code == 2
    data = json.loads(result.output)
    assert data["ok"] is False
    assert [(f["severity"], f["code"], f["language"]) for f in data["findings"]] == [
        ("error", "shortener", "nb")
    ]

    result = runner.invoke(
        cli,
        ["--db", registry_db.url, "campaign", "preview", str(clean), "--out", str(tmp_path / "p")],
        env=env,
    )
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[0] == str(tmp_path / "p" / "nb.eml")
    assert len(result.output.splitlines()) == 9


def test_an_unknown_campaign(registry_db: Database, settings: Settings) -> None:
    result = CliRunner().invoke(
        cli,
        ["--db", registry_db.url, "campaign", "lint", "99"],
        env={"VARSEL_DKIM_KEY_DIR": str(settings.dkim_key_dir)},
    )
    assert result.exit_code == 2
    assert result.output == "varsel: kampanje 99 finnes ikke\n"


def test_get_campaign_still_reads_what_lint_looked_at(
    registry_db: Database, settings: Settings, tmp_path: Path
) -> None:
    # Linting only reads the campaign and appends an event; the campaign stays ready.
    cid = create(registry_db, settings, tmp_path)
    lint_campaign(registry_db, settings, cid)
    assert get_campaign(registry_db, cid).status.value == "ready"


def test_a_unit_whose_name_cannot_stand_in_the_subject_is_named_as_a_warning(
    db: Database, brreg: Path, settings: Settings, tmp_path: Path
) -> None:
    statnett = import_with_hostile_name(db, brreg, tmp_path)
    cid = create(db, settings, tmp_path, templates(subject="Til {{ unit.name }}"))
    report = lint_campaign(db, settings, cid)
    assert found(report) == [("warning", "unusable-units", None)]
    assert report.ok
    total = db.scalar("SELECT count(*) FROM recipients WHERE campaign_id = ?", (cid,))
    assert report.findings[0].message == (
        f"1 av {total} virksomheter har et navn eller andre registerdata som ikke kan stå i "
        "emnet; meldingene til dem feiler ved sending, de andre sendes: "
        f"{statnett['organisasjonsnummer']} «=?utf-8?q?x=0D=0ABcc:_evil@x.test?= SF»"
    )


# -- the definition on its own (campaign create runs these) ---------------------------------


def definition_errors(settings: Settings, tmp_path: Path, extra: str) -> list[str]:
    """The errors lint finds in campaign_toml() plus `extra`, with no store and no key."""
    path = tmp_path / "d.toml"
    path.write_text(campaign_toml() + extra, "utf-8")
    findings = definition_findings(load_spec(path, settings))
    return [f.message for f in findings if f.severity is Severity.ERROR]


def test_the_shipped_templates_pass_on_their_own(settings: Settings, tmp_path: Path) -> None:
    assert definition_errors(settings, tmp_path, "") == []


def test_an_own_text_with_the_default_html_is_refused(settings: Settings, tmp_path: Path) -> None:
    extra = f"\n[templates.nb]\ntext = '''{TEXT}'''\n"
    assert definition_errors(settings, tmp_path, extra) == [
        "[templates.nb] html: mangler, men text er kampanjens egen; skriv html (eller html_file) "
        "også, så tekst- og HTML-delen sier det samme"
    ]


def test_a_message_without_the_unsubscribe_address_is_refused(
    settings: Settings, tmp_path: Path
) -> None:
    text = TEXT.replace("Avmelding: {{ unsubscribe_url }}\n", "")
    assert definition_errors(settings, tmp_path, templates(text=text)) == [
        "nb (tekst): avmeldingsadressen {{ unsubscribe_url }} står ikke i meldingen; mottakeren "
        "skal kunne melde seg av uten å svare på e-posten."
    ]


def test_an_unknown_field_is_named_with_its_template_and_line(
    settings: Settings, tmp_path: Path
) -> None:
    text = "Hei\n\n{{ fields.kontakt }}\n" + TEXT
    assert definition_errors(settings, tmp_path, templates(text=text)) == [
        "templates.nb.text, linje 3: feltet «kontakt» finnes ikke i [fields]"
    ]
    # A field the template asks for with `is defined` is optional, as in the shipped ones.
    text = "{% if fields.kontakt is defined %}{{ fields.kontakt }}{% endif %}\n" + TEXT
    assert definition_errors(settings, tmp_path, templates(text=text)) == []


@pytest.mark.parametrize(
    ("html", "line", "expected"),
    [
        ("<p>{{ code", 1, "malen slutter før «}}» som avslutter «{{»"),
        ("{% for u in units %}\n<p>{{ u.name }}</p>", 2, "malen slutter før «{% endfor %}»"),
        ("<p>{{ code|stor }}</p>", 1, "filteret «stor» finnes ikke"),
        ("<p>\n{{ kontakt }}</p>", 2, "«kontakt» finnes ikke; malen kan bruke address, code, "),
    ],
)
def test_jinja_errors_are_said_in_bokmal_with_the_template_and_line(
    settings: Settings, tmp_path: Path, html: str, line: int, expected: str
) -> None:
    errors = definition_errors(settings, tmp_path, templates(html=HTML + html))
    assert len(errors) == 1
    line += HTML.count("\n")  # the lines of HTML, which the case's come after
    assert errors[0].startswith(f"templates.nb.html, linje {line}: {expected}")


def test_a_language_with_unpaired_templates_is_still_rendered_and_checked(
    settings: Settings, tmp_path: Path
) -> None:
    # The console's editor saves one part at a time: what the other checks find still shows.
    extra = f"\n[templates.nb]\ntext = '''{TEXT}https://bit.ly/abc\n'''\n"
    errors = definition_errors(settings, tmp_path, extra)
    assert errors[0].startswith("[templates.nb] html: mangler, men text er kampanjens egen")
    assert any("https://bit.ly/abc er en forkortet lenke" in e for e in errors[1:])


def test_an_attribute_no_business_has_is_named_not_blamed_on_the_registry(
    settings: Settings, tmp_path: Path
) -> None:
    # The console's audit: «Hei {{ unit.finnes_ikke }}» was reported as 91 of 94 businesses
    # having a name that cannot stand in the subject.
    errors = definition_errors(
        settings, tmp_path, templates(subject="Hei {{ unit.finnes_ikke }} fra {{ sender.navn }}")
    )
    assert errors == [
        "templates.nb.subject, linje 1: «unit.finnes_ikke» finnes ikke; unit har municipality, "
        "name, orgnr",
        "templates.nb.subject, linje 1: «sender.navn» finnes ikke; sender har address, name, "
        "organisation",
    ]
    text = "Til {{ unit.name }} ({{ unit.orgnr|orgnr }}) i {{ unit.municipality }}\n" + TEXT
    assert definition_errors(settings, tmp_path, templates(text=text)) == []


# -- the verification address against the server's public address ----------------------


def test_a_verification_address_the_server_does_not_answer_is_a_warning(
    registry_db: Database, settings: Settings, tmp_path: Path
) -> None:
    cid = create(registry_db, settings, tmp_path)
    elsewhere = dataclasses.replace(settings, public_base_url="https://varsel.example.no")
    report = lint_campaign(registry_db, elsewhere, cid)
    [finding] = report.findings
    assert (finding.severity, finding.code, finding.language) == (
        Severity.WARNING,
        "verify-url-base",
        None,
    )
    assert str(finding.message) == (
        "Meldingene ber mottakerne skrive inn kontrolladressen "
        "https://www.politiet.no/varsel/kontroll, men denne tjeneren har den offentlige adressen "
        "https://varsel.example.no (VARSEL_PUBLIC_BASE_URL). Blir ikke "
        "https://www.politiet.no/varsel/kontroll sendt videre hit, kommer mottakeren til en side "
        "som ikke kan sjekke koden i meldingen. Rett [public] base_url i kampanjen, eller "
        "innstillingen."
    )
    # A warning only: the authority's main site may pass the path on to this server.
    assert report.ok
    assert report.summary() == f"Kampanje {cid} kan sendes: 0 feil, 1 advarsel."


@pytest.mark.parametrize("base", ["", "https://www.politiet.no", "HTTPS://WWW.politiet.no/varsel/"])
def test_a_verification_address_under_the_servers_address_or_none_configured_passes(
    registry_db: Database, settings: Settings, tmp_path: Path, base: str
) -> None:
    cid = create(registry_db, settings, tmp_path)
    report = lint_campaign(registry_db, dataclasses.replace(settings, public_base_url=base), cid)
    assert report.findings == ()


def test_the_cli_prints_both_addresses_and_still_exits_0(
    registry_db: Database, settings: Settings, tmp_path: Path
) -> None:
    cid = create(registry_db, settings, tmp_path)
    env = {
        "VARSEL_DKIM_KEY_DIR": str(settings.dkim_key_dir),
        "VARSEL_PUBLIC_BASE_URL": "https://varsel.example.no",
    }
    result = CliRunner().invoke(
        cli, ["--db", registry_db.url, "campaign", "lint", str(cid)], env=env
    )
    assert result.exit_code == 0, result.output
    first, last = result.output.splitlines()[0], result.output.splitlines()[-1]
    assert first.startswith("advarsel")
    assert "https://www.politiet.no/varsel/kontroll" in first
    assert "https://varsel.example.no" in first
    assert last == f"Kampanje {cid} kan sendes: 0 feil, 1 advarsel."


@pytest.mark.parametrize(
    ("url", "base", "inside"),
    [
        ("https://www.politiet.no/varsel/kontroll", "https://www.politiet.no/varsel", True),
        ("https://www.politiet.no/varsel/kontroll", "https://www.politiet.no/varsel/", True),
        ("https://www.politiet.no/varsel/kontroll", "https://www.politiet.no", True),
        ("https://www.politiet.no/varsel/kontroll", "https://www.politiet.no:443/varsel", True),
        ("https://www.politiet.no/varsel/kontroll", "https://varsel.example.no", False),
        ("https://www.politiet.no/varsel/kontroll", "https://politiet.no/varsel", False),
        ("https://www.politiet.no/varsel/kontroll", "https://www.politiet.no/tips", False),
        ("https://www.politiet.no/varsel-ny/kontroll", "https://www.politiet.no/varsel", False),
        ("https://www.politiet.no/varsel/kontroll", "https://www.politiet.no:8443/varsel", False),
        ("https://xn--sr-vest-q1a.no/kontroll", "https://sør-vest.no", True),
        ("https://www.politiet.no/kontroll", "https://www.politiet.no:x/", False),
    ],
)
def test_under_base(url: str, base: str, inside: bool) -> None:
    assert under_base(url, base) is inside


def test_old_registry_data_is_a_warning_with_its_date_and_age(
    db: Database, brreg: Path, settings: Settings, tmp_path: Path
) -> None:
    from datetime import date

    from varsel.snapshot import norway_today
    from varsel.web.console_auth import translate

    # A dump dated 15 December 2025, imported today: the data is as old as the dump.
    import_dump(db, brreg / "enheter-sample.json", dump_date="2025-12-15")
    report = lint_campaign(db, settings, create(db, settings, tmp_path))
    assert found(report) == [("warning", "registry-age", None)]
    assert report.ok
    days = (norway_today() - date(2025, 12, 15)).days
    message = report.findings[0].message
    assert message == (
        f"Lageret har registerdata fra 2025-12-15 (dumpdato), {days} dager gamle, eldre enn 7 "
        "dager; hent endringene siden med «varsel registry update --fetch» (eller en ny dump) "
        "og lag kampanjen på nytt hvis mye kan ha endret seg."
    )
    # The console's editor shows lint findings in the page's language.
    assert translate("en", message).startswith(
        f"The store holds registry data as of 2025-12-15 (dump date), {days} days old, older "
        "than 7 days;"
    )


def test_fresh_registry_data_gives_no_age_warning(
    db: Database, brreg: Path, settings: Settings, tmp_path: Path
) -> None:
    from varsel.snapshot import norway_today

    import_dump(db, brreg / "enheter-sample.json", dump_date=norway_today().isoformat())
    report = lint_campaign(db, settings, create(db, settings, tmp_path))
    assert "registry-age" not in [f.code for f in report.findings]


def test_cli_lint_prints_the_age_warning_and_exits_0(
    db: Database, brreg: Path, settings: Settings, tmp_path: Path
) -> None:
    import_dump(db, brreg / "enheter-sample.json", dump_date="2025-12-15")
    cid = create(db, settings, tmp_path)
    env = {"VARSEL_DKIM_KEY_DIR": str(settings.dkim_key_dir), "VARSEL_PUBLIC_BASE_URL": PUBLIC}
    result = CliRunner().invoke(cli, ["--db", db.url, "campaign", "lint", str(cid)], env=env)
    assert result.exit_code == 0, result.output
    said = " ".join(result.output.split())
    assert said.startswith("advarsel Lageret har registerdata fra 2025-12-15 (dumpdato),")
    assert said.endswith(f"Kampanje {cid} kan sendes: 0 feil, 1 advarsel.")
