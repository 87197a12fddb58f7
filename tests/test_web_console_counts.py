"""The console says one in the singular: progress, coverage and the audit log's chain, in nb,
nn and en (Starlette's test client, on SQLite and PostgreSQL)."""

from __future__ import annotations

from pathlib import Path

import pytest
from starlette.testclient import TestClient

from helpers import campaign_toml, console_settings, next_code, operator, sign_in, sign_in_as
from varsel.audit import GENESIS
from varsel.campaign import CampaignStatus, create_campaign, set_status
from varsel.config import Settings
from varsel.coverage import coverage
from varsel.db import Database
from varsel.registry import import_dump
from varsel.web.console_auth import PREFIX


@pytest.fixture
def settings(tmp_path: Path, db_url: str) -> Settings:
    return console_settings(tmp_path, db_url)


def one_unit_campaign(db: Database, settings: Settings, tmp_path: Path, brreg: Path) -> int:
    """A campaign of Komplett ASA alone (the sample's only unit in 3907), with its one e-mail."""
    import_dump(db, brreg / "enheter-sample.json")
    text = campaign_toml(segment='municipality = ["3907"]\n').replace(
        'police_district = ["oslo"]\n', ""
    )
    (tmp_path / "c.toml").write_text(text, "utf-8")
    result = create_campaign(db, settings, tmp_path / "c.toml", created_by="kari")
    assert (result.units, result.deliveries) == (1, 1)
    return result.campaign.id


@pytest.mark.parametrize(
    ("language", "finished", "cancelled"),
    [
        ("nb", "0 av 1 e-post er ferdig.", "0 av 1 e-post ble sendt; 1 ble ikke sendt (avbrutt)."),
        ("nn", "0 av 1 e-post er ferdig.", "0 av 1 e-post vart send; 1 vart ikkje send (avbrote)."),
        ("en", "0 of 1 e-mail is finished.", "0 of 1 e-mail sent; 1 not sent (cancelled)."),
    ],
)
def test_the_progress_panel_counts_one_email_in_the_singular(
    client: TestClient,
    db: Database,
    settings: Settings,
    tmp_path: Path,
    brreg: Path,
    language: str,
    finished: str,
    cancelled: str,
) -> None:
    cid = one_unit_campaign(db, settings, tmp_path, brreg)
    sign_in_as(client, db, settings, "vera", "viewer")
    panel = client.get(f"{PREFIX}/kampanjer/{cid}/fremdrift?lang={language}").text
    assert finished in panel
    set_status(db, cid, CampaignStatus.CANCELLED, actor="kari")
    panel = client.get(f"{PREFIX}/kampanjer/{cid}/fremdrift?lang={language}").text
    assert cancelled in panel


@pytest.mark.parametrize(
    ("language", "one", "many"),
    [
        (
            "nb",
            "Av 1 virksomhet er 0 nådd, 1 på vei og 0 ikke nådd.",
            "Av {units} virksomheter er 0 nådd, {way} på vei og {no} ikke nådd.",
        ),
        (
            "nn",
            "Av 1 verksemd er 0 nådd, 1 på veg og 0 ikkje nådd.",
            "Av {units} verksemder er 0 nådde, {way} på veg og {no} ikkje nådde.",
        ),
        (
            "en",
            "Of 1 business: 0 reached, 1 on the way, 0 not reached.",
            "Of {units} businesses, 0 were reached, {way} are on the way and {no} were not "
            "reached.",
        ),
    ],
)
def test_the_coverage_page_counts_one_business_in_the_singular(
    client: TestClient,
    db: Database,
    settings: Settings,
    tmp_path: Path,
    brreg: Path,
    language: str,
    one: str,
    many: str,
) -> None:
    cid = one_unit_campaign(db, settings, tmp_path, brreg)
    oslo = tmp_path / "oslo"
    oslo.mkdir()
    (oslo / "c.toml").write_text(campaign_toml(segment="min_employees = 2\n"), "utf-8")
    other = create_campaign(db, settings, oslo / "c.toml", created_by="kari").campaign.id
    sign_in_as(client, db, settings, "vera", "viewer")

    page = client.get(f"{PREFIX}/kampanjer/{cid}/dekning?lang={language}").text
    assert f"<p>{one}</p>" in page

    c = coverage(db, other)
    assert (c.units, c.reached, c.on_the_way, c.not_reached) == (9, 0, 6, 3)
    page = client.get(f"{PREFIX}/kampanjer/{other}/dekning?lang={language}").text
    assert f"<p>{many.format(units=9, way=6, no=3)}</p>" in page


@pytest.mark.parametrize(
    ("language", "one", "many"),
    [
        ("nb", "Kjeden er hel: 1 oppføring.", "Kjeden er hel: 2 oppføringer."),
        ("nn", "Kjeda er heil: 1 oppføring.", "Kjeda er heil: 2 oppføringar."),
        ("en", "The chain is intact: 1 entry.", "The chain is intact: 2 entries."),
    ],
)
def test_the_audit_log_counts_one_entry_in_the_singular(
    client: TestClient, db: Database, settings: Settings, language: str, one: str, many: str
) -> None:
    secret = operator(db, settings, "berit", "approver")
    # A log begun after berit's account was made: her sign-in is its first and only entry.
    with db.transaction():
        db.execute("DELETE FROM audit_log")
        db.execute("UPDATE audit_head SET seq = 0, hash = ? WHERE id = 1", (GENESIS,))
    sign_in(client, "berit", next_code(secret))

    page = client.get(f"{PREFIX}/logg?lang={language}").text
    assert f'id="kjede">{one} ' in page

    operator(db, settings, "kari", "author")  # made and confirmed: two entries more
    with db.transaction():
        db.execute("DELETE FROM audit_log WHERE seq > 2")
        db.execute(
            "UPDATE audit_head SET seq = 2, hash = (SELECT hash FROM audit_log WHERE seq = 2) "
            "WHERE id = 1"
        )
    page = client.get(f"{PREFIX}/logg?lang={language}").text
    assert f'id="kjede">{many} ' in page
