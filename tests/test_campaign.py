from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from helpers import PASSWORD, campaign_toml, next_code, operator
from varsel import codes
from varsel.campaign import (
    Campaign,
    CampaignError,
    CampaignStatus,
    create_campaign,
    create_from_spec,
    get_campaign,
    language_of,
    refuse_pause,
    set_status,
    summaries,
)
from varsel.campaign_spec import (
    load_spec,
    spec_from_data,
)
from varsel.cli import cli
from varsel.config import Settings
from varsel.db import Database
from varsel.errors import BadCriteriaError
from varsel.registry import import_dump
from varsel.suppression import SuppressionKind, SuppressionReason, add

ROOT = Path(__file__).resolve().parent.parent

CAMPAIGN = campaign_toml(campaign="per_unit = {per_unit}\n", segment="min_employees = 2\n")


@pytest.fixture
def registry_db(db: Database, brreg: Path) -> Database:
    import_dump(db, brreg / "enheter-sample.json")
    import_dump(db, brreg / "underenheter-sample.json")
    return db


def write_campaign(tmp_path: Path, text: str = CAMPAIGN, **values: Any) -> Path:
    path = tmp_path / "campaign.toml"
    path.write_text(text.format(per_unit=str(values.get("per_unit", False)).lower()), "utf-8")
    return path


def deliveries(db: Database, campaign_id: int) -> list[tuple[Any, ...]]:
    return db.query(
        "SELECT d.address, d.state, d.language, d.code, "
        "(SELECT count(*) FROM delivery_units u WHERE u.delivery_id = d.id) "
        "FROM deliveries d WHERE campaign_id = ? ORDER BY address",
        (campaign_id,),
    )


def test_create_freezes_recipients_and_fills_the_outbox(
    registry_db: Database, settings: Settings, tmp_path: Path
) -> None:
    result = create_campaign(registry_db, settings, write_campaign(tmp_path))
    cid = result.campaign.id
    assert result.units == 9
    assert result.reach == {"email": 6, "phone_only": 2, "postal_only": 1}
    rows = deliveries(registry_db, cid)
    assert len(rows) == result.deliveries == 6
    assert {r[1] for r in rows} == {"queued"}
    assert all(codes.is_valid(r[3]) for r in rows)
    assert len({r[3] for r in rows}) == 6
    assert registry_db.scalar("SELECT count(*) FROM recipients WHERE campaign_id = ?", (cid,)) == 9
    assert result.summary().splitlines()[-1] == f"Kampanje-id: {cid}"
    assert result.key_notice is not None
    assert "_domainkey" in result.key_notice
    assert get_campaign(registry_db, cid).status is CampaignStatus.READY


def test_the_key_is_made_once(registry_db: Database, settings: Settings, tmp_path: Path) -> None:
    first = create_campaign(registry_db, settings, write_campaign(tmp_path))
    second = create_campaign(registry_db, settings, write_campaign(tmp_path))
    assert first.key_notice is not None
    assert second.key_notice is None


def _shared_registry(db: Database, brreg: Path, tmp_path: Path) -> None:
    records = json.loads((brreg / "enheter-sample.json").read_text("utf-8"))
    for r in records:
        if r["organisasjonsnummer"] in ("962986633", "958935420"):  # Statnett, Oslo kommune
            r["epostadresse"] = "Post@Regnskapskontoret.no"
    path = tmp_path / "e.json"
    path.write_text(json.dumps(records), "utf-8")
    import_dump(db, path)


def test_shared_address_gets_one_message_naming_both(
    db: Database, brreg: Path, settings: Settings, tmp_path: Path
) -> None:
    _shared_registry(db, brreg, tmp_path)
    result = create_campaign(db, settings, write_campaign(tmp_path))
    rows = {r[0]: r for r in deliveries(db, result.campaign.id)}
    assert rows["post@regnskapskontoret.no"][4] == 2
    assert result.shared_addresses == 1
    assert result.deliveries == 5


def test_per_unit_gives_one_message_each(
    db: Database, brreg: Path, settings: Settings, tmp_path: Path
) -> None:
    _shared_registry(db, brreg, tmp_path)
    result = create_campaign(db, settings, write_campaign(tmp_path, per_unit=True))
    shared = [r for r in deliveries(db, result.campaign.id) if r[0] == "post@regnskapskontoret.no"]
    assert [r[4] for r in shared] == [1, 1]


def test_a_follow_up_naming_a_campaign_that_does_not_exist_is_refused_and_nothing_is_made(
    registry_db: Database, settings: Settings, tmp_path: Path
) -> None:
    text = CAMPAIGN.replace(
        'police_district = ["oslo"]', 'police_district = ["oslo"]\nexclude_reached_by = [99]'
    )
    assert text != CAMPAIGN
    with pytest.raises(BadCriteriaError) as e:
        create_campaign(registry_db, settings, write_campaign(tmp_path, text))
    assert e.value.message == "kampanje 99 finnes ikke (utelat dem kampanje 99 nådde)"
    assert registry_db.scalar("SELECT count(*) FROM campaigns") == 0


def test_suppressed_at_creation(registry_db: Database, settings: Settings, tmp_path: Path) -> None:
    with registry_db.transaction():
        add(
            registry_db,
            SuppressionKind.ADDRESS,
            "firmapost@statnett.no",
            SuppressionReason.UNSUBSCRIBED,
        )
        add(registry_db, SuppressionKind.UNIT, "958935420", SuppressionReason.MANUAL)
    result = create_campaign(registry_db, settings, write_campaign(tmp_path))
    states = {r[0]: r[1] for r in deliveries(registry_db, result.campaign.id)}
    assert result.suppressed == 2
    assert states["firmapost@statnett.no"] == "suppressed"
    assert list(states.values()).count("suppressed") == 2
    # The summary says why, reason by reason.
    assert result.suppressed_by == {
        SuppressionReason.UNSUBSCRIBED: 1,
        SuppressionReason.MANUAL: 1,
    }
    assert "2 stoppet av avmelding/sperre (1 lagt inn av operatør, 1 avmeldt)" in result.summary()


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (("[segment]\n", "[segmnt]\n"), "ukjent tabell \\[segmnt\\]"),
        (('address = "sikkerhet@nsr-org.no"', 'address = "sikkerhet@nsr"'), "ikke en brukbar"),
        (('url = "https://www.politiet.no/rad.pdf"', 'url = "http://x.no/a"'), "https-adresse"),
        (('police_district = ["oslo"]', 'police_district = ["atlantis"]'), "politidistrikt"),
        (('name = "Test"', "name = 3"), "«name» skal være tekst"),
    ],
)
def test_bad_definitions(
    registry_db: Database, settings: Settings, tmp_path: Path, change: tuple[str, str], message: str
) -> None:
    path = write_campaign(tmp_path, CAMPAIGN.replace(*change))
    with pytest.raises(
        CampaignError if "politidistrikt" not in message else Exception, match=message
    ):
        create_campaign(registry_db, settings, path)
    assert registry_db.scalar("SELECT count(*) FROM campaigns") == 0


def test_a_definition_from_tables_is_checked_and_created_as_a_file_is(
    registry_db: Database, settings: Settings, tmp_path: Path
) -> None:
    import tomllib

    path = tmp_path / "c.toml"
    path.write_text(CAMPAIGN.format(per_unit="false"), "utf-8")
    data = tomllib.loads(path.read_text("utf-8"))
    assert spec_from_data(data, path, settings) == load_spec(path, settings)
    with pytest.raises(CampaignError, match=r"^skjemaet \[sender\]: mangler «name»$"):
        spec_from_data({**data, "sender": {"address": "a@nsr-org.no"}}, Path("skjemaet"), settings)
    made = create_from_spec(
        registry_db, settings, load_spec(path, settings), source_file=None, created_by="kari"
    )
    assert made.campaign.created_by == "kari"
    assert (
        registry_db.scalar("SELECT source_file FROM campaigns WHERE id = ?", (made.campaign.id,))
        is None
    )
    assert made.units == create_campaign(registry_db, settings, path).units


def test_needs_a_registry(db: Database, settings: Settings, tmp_path: Path) -> None:
    with pytest.raises(CampaignError, match="importer en dump"):
        create_campaign(db, settings, write_campaign(tmp_path))


def test_cli_create_prints_the_id_last(
    registry_db: Database, settings: Settings, tmp_path: Path
) -> None:
    secret = operator(registry_db, settings, "kari", "author")
    runner = CliRunner()
    result = runner.invoke(
        cli,
        ["--db", registry_db.url, "campaign", "create", str(ROOT / "examples" / "pilot.toml")],
        env={
            "VARSEL_DKIM_KEY_DIR": str(tmp_path / "keys"),
            "VARSEL_USER": "kari",
            "VARSEL_PASSWORD": PASSWORD,
            "VARSEL_TOTP": next_code(secret),
        },
    )
    assert result.exit_code == 0, result.output
    assert result.output.split()[-1] == "1"
    bad = runner.invoke(cli, ["--db", registry_db.url, "campaign", "create", "nope.toml"])
    assert bad.exit_code == 2
    assert bad.output.strip() == "varsel: nope.toml: filen finnes ikke"


def test_status_changes(registry_db: Database, settings: Settings, tmp_path: Path) -> None:
    cid = create_campaign(registry_db, settings, write_campaign(tmp_path)).campaign.id
    with pytest.raises(CampaignError) as caught:
        set_status(registry_db, cid, CampaignStatus.READY)  # resume what is not paused
    assert (
        caught.value.message == f"kampanje {cid} er «klar»; bare en pauset kampanje kan gjenopptas"
    )
    assert set_status(registry_db, cid, CampaignStatus.PAUSED).status is CampaignStatus.PAUSED
    assert set_status(registry_db, cid, CampaignStatus.READY).status is CampaignStatus.READY
    set_status(registry_db, cid, CampaignStatus.CANCELLED)
    assert {r[1] for r in deliveries(registry_db, cid)} == {"cancelled"}
    with pytest.raises(CampaignError, match="er «avbrutt»; bare en pauset kampanje kan gjenopptas"):
        set_status(registry_db, cid, CampaignStatus.READY)


def _changed_after_the_check(
    monkeypatch: pytest.MonkeyPatch, db: Database, cid: int, *statuses: str
) -> None:
    """Each of the first reads of the campaign is followed at once by a change to a status."""
    import varsel.campaign

    read = varsel.campaign.get_campaign
    pending = list(statuses)

    def then_changed(db_: Database, campaign_id: int) -> Campaign:
        campaign = read(db_, campaign_id)
        if pending:
            db.execute("UPDATE campaigns SET status = ? WHERE id = ?", (pending.pop(0), cid))
        return campaign

    monkeypatch.setattr(varsel.campaign, "get_campaign", then_changed)


def test_a_cancel_never_overwrites_a_sender_that_finished_after_the_check(
    registry_db: Database, settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cid = create_campaign(registry_db, settings, write_campaign(tmp_path)).campaign.id
    registry_db.execute("UPDATE campaigns SET status = 'sending' WHERE id = ?", (cid,))
    _changed_after_the_check(monkeypatch, registry_db, cid, "done")
    with pytest.raises(CampaignError) as caught:
        set_status(registry_db, cid, CampaignStatus.CANCELLED)
    assert caught.value.message == f"kampanje {cid} er «ferdig» og kan ikke settes til «avbrutt»"
    assert registry_db.scalar("SELECT status FROM campaigns WHERE id = ?", (cid,)) == "done"
    assert "cancelled" not in {r[1] for r in deliveries(registry_db, cid)}


def test_a_status_changed_after_the_check_to_one_allowed_too_is_changed_from_that(
    registry_db: Database, settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A worker started the ready campaign in between: cancelling a sending one is allowed too.
    cid = create_campaign(registry_db, settings, write_campaign(tmp_path)).campaign.id
    _changed_after_the_check(monkeypatch, registry_db, cid, "sending")
    assert set_status(registry_db, cid, CampaignStatus.CANCELLED).status is CampaignStatus.CANCELLED
    recorded = registry_db.scalar(
        "SELECT detail FROM audit_log WHERE action = 'campaign_cancel' AND object = ?",
        (f"campaign:{cid}",),
    )
    assert json.loads(recorded) == {"from": "sending"}


def test_a_status_changed_after_every_check_is_refused_with_try_again(
    registry_db: Database, settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cid = create_campaign(registry_db, settings, write_campaign(tmp_path)).campaign.id
    _changed_after_the_check(monkeypatch, registry_db, cid, "sending", "paused", "sending")
    with pytest.raises(CampaignError) as caught:
        set_status(registry_db, cid, CampaignStatus.CANCELLED)
    assert caught.value.message == (f"kampanje {cid} ble endret av noen andre samtidig; prøv igjen")
    assert registry_db.scalar("SELECT status FROM campaigns WHERE id = ?", (cid,)) == "sending"


@pytest.mark.parametrize(
    ("maalform", "form", "country", "expected"),
    [
        ("Bokmål", "AS", "NO", "nb"),
        ("Nynorsk", "AS", "NO", "nn"),
        (None, "NUF", "NO", "en"),
        ("Bokmål", "AS", "SE", "en"),
        (None, "ENK", None, "nb"),
    ],
)
def test_language_of(maalform: str | None, form: str, country: str | None, expected: str) -> None:
    assert language_of(maalform, form, country) == expected


def test_summaries_count_each_campaigns_businesses_e_mails_and_sent(
    registry_db: Database, settings: Settings, tmp_path: Path
) -> None:
    first = create_campaign(registry_db, settings, write_campaign(tmp_path)).campaign.id
    second = create_campaign(
        registry_db, settings, write_campaign(tmp_path, per_unit=True)
    ).campaign.id
    with registry_db.transaction():
        registry_db.execute(
            "UPDATE deliveries SET state = 'sent' WHERE id = (SELECT min(id) FROM deliveries "
            "WHERE campaign_id = ? AND channel = 'email')",
            (second,),
        )
        # One that went out and bounced later was sent too: «Sendt» does not drop on a bounce.
        registry_db.execute(
            "UPDATE deliveries SET state = 'bounced' WHERE id = (SELECT max(id) FROM deliveries "
            "WHERE campaign_id = ? AND channel = 'email')",
            (second,),
        )
    listed = summaries(registry_db)
    assert [s.id for s in listed] == [second, first]  # newest first
    for s in listed:
        units = registry_db.scalar("SELECT count(*) FROM recipients WHERE campaign_id = ?", (s.id,))
        emails = registry_db.scalar(
            "SELECT count(*) FROM deliveries WHERE campaign_id = ? AND channel = 'email'", (s.id,)
        )
        assert (s.units, s.emails) == (units, emails)
        assert s.status is CampaignStatus.READY
    assert (listed[0].sent, listed[1].sent) == (2, 0)
    assert listed[0].emails > 0


def test_cli_list_shows_the_campaigns_and_their_json(
    registry_db: Database, settings: Settings, tmp_path: Path
) -> None:
    runner = CliRunner()
    empty = runner.invoke(cli, ["--db", registry_db.url, "campaign", "list"])
    assert empty.exit_code == 0, empty.output
    assert empty.output.strip() == (
        "Ingen kampanjer ennå: lag en med `varsel campaign create FIL.toml`."
    )
    cid = create_campaign(registry_db, settings, write_campaign(tmp_path)).campaign.id
    set_status(registry_db, cid, CampaignStatus.PAUSED)
    shown = runner.invoke(
        cli, ["--db", registry_db.url, "campaign", "list"], env={"COLUMNS": "100"}
    )
    assert shown.exit_code == 0, shown.output
    header, _, row = shown.output.splitlines()[:3]
    assert header.split() == [
        "Id", "Navn", "Status", "Laget", "Av", "Virksomheter", "E-poster", "Sendt"
    ]  # fmt: skip
    summary = summaries(registry_db)[0]
    assert row.split()[0] == str(cid)
    assert "pauset" in row.split()
    assert row.split()[-3:] == [str(summary.units), str(summary.emails), "0"]
    as_json = runner.invoke(cli, ["--db", registry_db.url, "campaign", "list", "--json"])
    assert json.loads(as_json.output) == [summary.as_dict()]
    assert json.loads(as_json.output)[0]["status"] == "paused"
    assert json.loads(as_json.output)[0]["forgotten_at"] is None


def test_cli_list_marks_a_forgotten_campaign_within_80_columns(
    registry_db: Database, settings: Settings, tmp_path: Path
) -> None:
    cid = create_campaign(registry_db, settings, write_campaign(tmp_path)).campaign.id
    with registry_db.transaction():
        registry_db.execute(
            "UPDATE campaigns SET forgotten_at = '2026-11-29T12:00:00.000Z' WHERE id = ?", (cid,)
        )
    assert summaries(registry_db)[0].forgotten_at == "2026-11-29T12:00:00.000Z"
    shown = CliRunner().invoke(
        cli, ["--db", registry_db.url, "campaign", "list"], env={"COLUMNS": "80"}
    )
    assert shown.exit_code == 0, shown.output
    header, _, row, below = shown.output.splitlines()[:4]
    assert header.split()[-1] == "Sendt"  # every column still fits
    assert "klar" in row.split()
    assert "glemt" in below.split()


# Templates that pass lint on their own; each case below spoils one thing.
TEXT = """{% for u in units %}
Til {{ u.name }} (org.nr. {{ u.orgnr|orgnr }})
{% endfor %}
Skriv {{ verify_url }} og koden {{ code }}. Dokumentet: {{ document_url }}
Avmelding: {{ unsubscribe_url }}
"""
HTML = """<p>{% for u in units %}{{ u.name }} ({{ u.orgnr|orgnr }}) {% endfor %}</p>
<p>Skriv {{ verify_url|link }} og koden {{ code }}. Dokumentet: {{ document_url|link }}</p>
<p>Avmelding: {{ unsubscribe_url|link }}</p>
"""


def with_templates(text: str = TEXT, html: str = HTML) -> str:
    source = CAMPAIGN.format(per_unit="false")
    return source + f"\n[templates.nb]\ntext = '''{text}'''\nhtml = '''{html}'''\n"


def stored(db: Database) -> tuple[Any, ...]:
    return tuple(
        db.scalar(f"SELECT count(*) FROM {table}")
        for table in ("campaigns", "recipients", "deliveries", "audit_log")
    )


@pytest.mark.parametrize(
    ("text", "html", "message"),
    [
        (TEXT, HTML + "{% if %}", "templates.nb.html, linje 4: Jinja sier: Expected an expression"),
        (
            TEXT,
            HTML + '<a href="https://www.politiet.no/varsel">her</a>',
            "nb (HTML): klikkbar lenke (<a href>) til https://www.politiet.no/varsel, men ",
        ),
        (TEXT + "https://bit.ly/abc\n", HTML, "nb (tekst): https://bit.ly/abc er en forkortet"),
        (
            TEXT + "https://example.com/x\n",
            HTML,
            "nb (tekst): https://example.com/x går til example.com, som ikke er et tillatt domene",
        ),
        (
            "{{ fields.kontakt }}\n" + TEXT,
            HTML,
            "templates.nb.text, linje 1: feltet «kontakt» finnes ikke i [fields]",
        ),
        (TEXT.replace("koden {{ code }}", "koden"), HTML, "nb (tekst): kontrollkoden står ikke"),
    ],
)
def test_create_refuses_a_definition_that_could_never_be_sent(
    registry_db: Database,
    settings: Settings,
    tmp_path: Path,
    text: str,
    html: str,
    message: str,
) -> None:
    path = tmp_path / "campaign.toml"
    path.write_text(with_templates(text, html), "utf-8")
    before = stored(registry_db)
    with pytest.raises(CampaignError) as e:
        create_campaign(registry_db, settings, path)
    assert e.value.message.startswith(f"{path.resolve()}: {message}")
    assert "\n" not in e.value.message
    assert stored(registry_db) == before


def test_cli_create_refuses_before_it_asks_who_the_author_is(
    registry_db: Database, tmp_path: Path
) -> None:
    path = tmp_path / "c.toml"
    path.write_text(with_templates(TEXT + "https://bit.ly/abc\n"), "utf-8")
    before = stored(registry_db)
    # No VARSEL_USER, VARSEL_PASSWORD or TOTP: asking for them would fail another way.
    result = CliRunner().invoke(cli, ["--db", registry_db.url, "campaign", "create", str(path)])
    assert result.exit_code == 2
    assert result.output.startswith(f"varsel: {path}: nb (tekst): https://bit.ly/abc er en ")
    assert len(result.output.strip().splitlines()) == 1
    assert stored(registry_db) == before


def test_a_segment_mistake_names_the_file_the_table_and_the_key(
    settings: Settings, tmp_path: Path
) -> None:
    path = tmp_path / "c.toml"
    path.write_text(campaign_toml(segment='municipality = ["Askerr"]\n'), "utf-8")
    with pytest.raises(CampaignError) as e:
        load_spec(path, settings)
    assert e.value.message == (
        f"{path} [segment] municipality: Ukjent kommune «Askerr» (mente du Asker?)"
    )


def test_only_a_campaign_that_is_sending_can_be_paused(
    registry_db: Database, settings: Settings, tmp_path: Path
) -> None:
    cid = create_campaign(registry_db, settings, write_campaign(tmp_path)).campaign.id
    for status, word in (("ready", "klar"), ("paused", "pauset"), ("done", "ferdig")):
        registry_db.execute("UPDATE campaigns SET status = ? WHERE id = ?", (status, cid))
        with pytest.raises(CampaignError) as caught:
            refuse_pause(get_campaign(registry_db, cid))
        assert caught.value.message == (
            f"kampanje {cid} er «{word}»; bare en kampanje som sendes, kan pauses"
        )
    registry_db.execute("UPDATE campaigns SET status = 'sending' WHERE id = ?", (cid,))
    refuse_pause(get_campaign(registry_db, cid))  # no error: a sender is at work


def test_the_summary_says_one_unit_in_the_singular(
    registry_db: Database, settings: Settings, tmp_path: Path
) -> None:
    # Komplett ASA is the sample's only unit in Sandefjord (3907), and it has an e-mail address.
    text = CAMPAIGN.replace('police_district = ["oslo"]', 'municipality = ["3907"]')
    result = create_campaign(registry_db, settings, write_campaign(tmp_path, text))
    assert (result.units, result.deliveries) == (1, 1)
    assert result.summary().splitlines()[:2] == [
        f"Kampanje {result.campaign.id} «Test» er opprettet fra snapshot "
        f"{result.campaign.snapshot_id}: 1 enhet, 1 med brukbar e-post, 0 uten.",
        "1 e-post i utboksen.",
    ]
    many = create_campaign(registry_db, settings, write_campaign(tmp_path))
    assert f": {many.units} enheter, " in many.summary()
