"""The site's pool of store connections (web/site.py's Store)."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from helpers import HTTPS, UNKNOWN, end_connections
from varsel.config import Settings
from varsel.db import connect
from varsel.web import create_app
from varsel.web.site import Store


@pytest.mark.postgres
def test_a_server_restart_costs_no_request(
    pg_url: str, postgres_base: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    name = f"varsel-test-{uuid.uuid4().hex[:8]}"
    monkeypatch.setenv("PGAPPNAME", name)  # the pool's connections, by name
    store = Store(pg_url)
    try:
        # Three requests at once leave three connections idle in the pool.
        with store.connection() as a, store.connection() as b, store.connection() as c:
            assert {a.scalar("SELECT 1"), b.scalar("SELECT 1"), c.scalar("SELECT 1")} == {1}
        assert end_connections(postgres_base, name) == 3
        # Each ended connection is found so before it is lent: none fails a request.
        for _ in range(4):
            with store.connection() as db:
                assert db.scalar("SELECT 1") == 1
    finally:
        store.close()


@pytest.mark.postgres
def test_the_pages_answer_after_a_server_restart(
    pg_url: str, postgres_base: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The register reads through the pool; a code's lookup (unknown: 404) writes through the
    # group commit.
    name = f"varsel-test-{uuid.uuid4().hex[:8]}"
    monkeypatch.setenv("PGAPPNAME", name)
    settings = Settings.load(
        environ={},
        database_url=pg_url,
        dkim_key_dir=str(tmp_path / "keys"),
        secret_key="test secret",  # noqa: S106 -- a key for this test only
    )
    with TestClient(create_app(settings), base_url=HTTPS) as client:
        pages = ("/varsler", f"/kontroll?kode={UNKNOWN}")
        assert [client.get(page).status_code for page in pages] == [200, 404]
        assert end_connections(postgres_base, name) >= 2
        assert [client.get(page).status_code for page in pages] == [200, 404]
        assert [client.get(page).status_code for page in pages] == [200, 404]
    with connect(pg_url) as db:
        # Each lookup counted once: none was lost, and none written twice.
        assert db.scalar("SELECT count(*) FROM events WHERE kind = 'verify_unknown'") == 3
