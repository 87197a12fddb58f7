"""The site's pool of store connections (web/site.py's Store)."""

from __future__ import annotations

import uuid

import psycopg
import pytest

from varsel.web.site import Store


@pytest.mark.postgres
def test_a_server_restart_costs_one_request_not_one_per_idle_connection(
    pg_url: str, postgres_base: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    name = f"varsel-test-{uuid.uuid4().hex[:8]}"
    monkeypatch.setenv("PGAPPNAME", name)  # the pool's connections, by name
    store = Store(pg_url)
    try:
        # Three requests at once leave three connections idle in the pool.
        with store.connection() as a, store.connection() as b, store.connection() as c:
            assert {a.scalar("SELECT 1"), b.scalar("SELECT 1"), c.scalar("SELECT 1")} == {1}
        # The server ends them all, as a restart of PostgreSQL does.
        with psycopg.connect(postgres_base, autocommit=True, application_name="t") as admin:
            ended = admin.execute(
                "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) "
                "FROM pg_stat_activity WHERE application_name = %s",
                (name,),
            ).fetchone()
        assert ended == (3,)
        failed = 0
        for _ in range(3):
            try:
                with store.connection() as db:
                    assert db.scalar("SELECT 1") == 1
            except psycopg.OperationalError:
                failed += 1
        assert failed == 1  # the first request meets a dead connection; the next get new ones
    finally:
        store.close()
