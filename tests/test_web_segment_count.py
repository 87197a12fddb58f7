"""The console's segment count (segment_count.html): what its sentences say under each rule."""

from __future__ import annotations

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
