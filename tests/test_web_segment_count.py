"""The console's segment count (segment_count.html): what its sentences say under each rule."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from helpers import HTTPS, next_code, operator, sign_in
from varsel.config import Settings
from varsel.db import Database
from varsel.registry import import_dump
from varsel.segment import preview
from varsel.segment_criteria import Criteria
from varsel.web import create_app
from varsel.web.console_auth import PREFIX


@pytest.fixture
def settings(tmp_path: Path, db_url: str) -> Settings:
    return Settings.load(
        environ={},
        database_url=db_url,
        secret_key="segment count test secret",  # noqa: S106 -- a key for this test only
        password_memory_kib=8192,
    )


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings), base_url=HTTPS) as c:
        yield c


def test_under_the_exact_rule_the_undecided_are_said_to_be_left_out(
    client: TestClient, db: Database, settings: Settings, brreg: Path
) -> None:
    import_dump(db, brreg / "enheter-sample.json")
    expected = preview(db, Criteria(min_employees=3, employee_rule="exact"))
    assert expected.undecided > 0
    sign_in(client, "kari", next_code(operator(db, settings, "kari", "author")))
    page = client.get(f"{PREFIX}/utvalg/telling?ansatte=3&regel=exact").text
    assert (
        f"<p>{expected.undecided} virksomheter til kan ikke avgjøres etter antall ansatte og er "
        "ikke med.</p>"
    ) in page
    assert "av dem kan ikke avgjøres" not in page
    assert "--employee-rule" not in page
    undecided = preview(db, Criteria(min_employees=3)).undecided
    page = client.get(f"{PREFIX}/utvalg/telling?ansatte=3").text
    assert f"<p>{undecided} av dem kan ikke avgjøres etter antall ansatte.</p>" in page
    assert "--employee-rule" not in page


@pytest.mark.parametrize(
    ("language", "employees", "industry"),
    [
        (
            "nn",
            "Tilsette: minst 3 kan ikkje avgjerast frå opne data, fordi registeret skjuler tal "
            "under 5. Regel brukt: einingar med minst 3 etter oppgitt tal, pluss einingar med "
            "registrerte tilsette der talet er skjult (1–4); dei er tekne med og talde som "
            "uavgjorde. Regelen exact (berre oppgitt tal) tek berre med einingar med 5 eller "
            "fleire.",
            "45.200 (SN2007) er tolka som 95.310 (SN2025): Reparasjon og vedlikehold av "
            "motorvogner",
        ),
        (
            "en",
            "Employees: at least 3 cannot be decided from open data, because the registry hides "
            "numbers below 5. Rule applied: units with at least 3 by the stated number, plus "
            "units with registered employees whose number is hidden (1–4); those are included "
            "and counted as undecided. The exact rule (stated numbers only) includes only units "
            "with 5 or more.",
            "45.200 (SN2007) is read as 95.310 (SN2025): Reparasjon og vedlikehold av motorvogner",
        ),
    ],
)
def test_the_notes_are_in_the_pages_language(
    client: TestClient,
    db: Database,
    settings: Settings,
    brreg: Path,
    language: str,
    employees: str,
    industry: str,
) -> None:
    import_dump(db, brreg / "enheter-sample.json")
    sign_in(client, "kari", next_code(operator(db, settings, "kari", "author")))

    page = client.get(f"{PREFIX}/utvalg/telling?ansatte=3&naering=45.200&lang={language}").text

    notes = re.findall(r'<p class="hint">([^<]*)</p>', page)
    assert notes[-2:] == [industry, employees]
    assert "Ansatte:" not in page
    assert "er tolket som" not in page


def test_a_note_is_said_in_bokmaal_without_a_language(
    client: TestClient, db: Database, settings: Settings, brreg: Path
) -> None:
    import_dump(db, brreg / "enheter-sample.json")
    sign_in(client, "kari", next_code(operator(db, settings, "kari", "author")))

    page = client.get(f"{PREFIX}/utvalg/telling?naering=M").text

    assert (
        '<p class="hint">Seksjon M er tolket etter SN2025: Eiendomsvirksomhet (68); i SN2007 var '
        "M Faglig, vitenskapelig og teknisk tjenesteyting (69–75)</p>"
    ) in page


@pytest.mark.parametrize(
    ("language", "one", "one_more", "none"),
    [
        (
            "nb",
            "1 virksomhet",
            "1 virksomhet til kan ikke avgjøres etter antall ansatte og er ikke med.",
            "0 virksomheter",
        ),
        (
            "nn",
            "1 verksemd",
            "1 verksemd til kan ikkje avgjerast etter talet på tilsette og er ikkje med.",
            "0 verksemder",
        ),
        (
            "en",
            "1 business",
            "1 more business cannot be decided by number of employees and is left out.",
            "0 businesses",
        ),
    ],
)
def test_one_business_is_counted_in_the_singular(
    client: TestClient,
    db: Database,
    settings: Settings,
    brreg: Path,
    language: str,
    one: str,
    one_more: str,
    none: str,
) -> None:
    import_dump(db, brreg / "enheter-sample.json")
    assert preview(db, Criteria(municipalities=("4642",))).units == 1
    left_out = preview(
        db, Criteria(municipalities=("5038",), min_employees=3, employee_rule="exact")
    )
    assert (left_out.units, left_out.undecided) == (0, 1)
    sign_in(client, "kari", next_code(operator(db, settings, "kari", "author")))

    page = client.get(f"{PREFIX}/utvalg/telling?kommuner=4642&lang={language}").text
    assert f"<h2>{one}</h2>" in page
    # The new-campaign form shows the same count above its e-mail line.
    page = client.get(f"{PREFIX}/kampanjer/ny?kommuner=4642&lang={language}").text
    assert f"<h2>{one}</h2>" in page
    page = client.get(
        f"{PREFIX}/utvalg/telling?kommuner=5038&ansatte=3&regel=exact&lang={language}"
    )
    assert f"<h2>{none}</h2>" in page.text
    assert f"<p>{one_more}</p>" in page.text


def test_the_builder_leaves_out_what_an_earlier_campaign_reached(
    client: TestClient, db: Database, settings: Settings, brreg: Path, tmp_path: Path
) -> None:
    from helpers import sample_campaign

    cid = sample_campaign(db, brreg, tmp_path)
    with db.transaction():  # every e-mail of the earlier campaign went out
        db.execute("UPDATE deliveries SET state = 'sent' WHERE campaign_id = ?", (cid,))
    expected = preview(db, Criteria(police_districts=("oslo",), exclude_reached_by=(cid,)))
    assert expected.left_out_reached > 0
    sign_in(client, "kari", next_code(operator(db, settings, "kari", "author")))
    builder = client.get(f"{PREFIX}/utvalg").text
    assert 'name="utelat"' in builder
    assert 'aria-describedby="utelat-hint"' in builder
    page = client.get(f"{PREFIX}/utvalg/telling?politi=oslo&utelat={cid}").text
    assert f"Utelatt: {expected.left_out_reached} virksomheter som kampanje {cid} nådde" in page
    missing = client.get(f"{PREFIX}/utvalg/telling?politi=oslo&utelat=99").text
    assert "kampanje 99 finnes ikke (utelat dem kampanje 99 nådde)" in missing
