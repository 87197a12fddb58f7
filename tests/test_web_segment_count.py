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
from varsel.segment import Criteria, preview
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
