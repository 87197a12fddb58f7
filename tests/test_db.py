from __future__ import annotations

from collections.abc import Callable

import pytest

from varsel.db import applied_versions, connect, migrate_store, migrations, normalise_url
from varsel.errors import StoreError


def test_migrated_schema_equals_fresh_schema(new_store_url: Callable[[], str]) -> None:
    fresh = connect(new_store_url())
    stepwise = connect(new_store_url(), migrate=False)
    try:
        migrate_store(stepwise, use_fresh=False)
        assert stepwise.schema_description() == fresh.schema_description()
        assert applied_versions(stepwise) == applied_versions(fresh)
    finally:
        fresh.close()
        stepwise.close()


def test_migrations_are_numbered_without_gaps() -> None:
    versions = [m.version for m in migrations()]
    assert versions == list(range(1, len(versions) + 1))


def test_first_use_migrates_and_second_use_does_nothing(db_url: str) -> None:
    with connect(db_url) as db:
        assert "units" in db.tables()
        assert migrate_store(db) == []


def test_transaction_rolls_back_on_error(db_url: str) -> None:
    with connect(db_url) as db:
        with pytest.raises(RuntimeError), db.transaction():
            db.execute(
                "INSERT INTO feed_state (kind, last_update_id, updated_at) VALUES (?, ?, ?)",
                ("enheter", 1, "2026-01-01T00:00:00.000Z"),
            )
            raise RuntimeError("boom")
        assert db.scalar("SELECT count(*) FROM feed_state") == 0


def test_nested_transaction_is_a_savepoint(db_url: str) -> None:
    with connect(db_url) as db:
        with db.transaction():
            db.execute("INSERT INTO feed_state VALUES (?, ?, ?)", ("enheter", 1, "t"))
            with pytest.raises(RuntimeError), db.transaction():
                db.execute("INSERT INTO feed_state VALUES (?, ?, ?)", ("underenheter", 2, "t"))
                raise RuntimeError("inner")
        assert db.query("SELECT kind FROM feed_state") == [("enheter",)]


def test_normalise_url() -> None:
    assert normalise_url("varsel.db") == ("sqlite", "varsel.db")
    assert normalise_url("sqlite:///tmp/x.db") == ("sqlite", "tmp/x.db")
    assert normalise_url("postgresql://u@h/db")[0] == "postgresql"
    with pytest.raises(StoreError, match="ukjent skjema «mysql»"):
        normalise_url("mysql://h/db")


@pytest.mark.parametrize("url", ["", " ", "sqlite:///", "sqlite://"])
def test_an_empty_store_address_is_refused_rather_than_a_store_in_memory(url: str) -> None:
    with pytest.raises(StoreError, match="lageret"):
        normalise_url(url)


def test_missing_folder_is_a_user_error(tmp_path) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(StoreError, match="finnes ikke"):
        connect(str(tmp_path / "nope" / "varsel.db"))


def test_not_a_database_is_a_user_error(tmp_path) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "x.db"
    path.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(StoreError, match="er ikke en SQLite-database"):
        connect(str(path))


def test_a_postgresql_refusal_is_said_in_bokmal(postgres_base: str) -> None:
    # A real server: a database that is not there, and a port nobody listens on.
    with pytest.raises(StoreError) as missing:
        connect(postgres_base.rsplit("/", 1)[0] + "/varsel_finnes_ikke")
    assert missing.value.message.endswith(
        "får ikke kontakt med PostgreSQL (databasen «varsel_finnes_ikke» finnes ikke på tjeneren)"
    )
    with pytest.raises(StoreError) as closed:
        connect("postgresql://postgres@127.0.0.1:1/x")
    assert closed.value.message.endswith(
        "(tilkoblingen ble avvist: kjører PostgreSQL på den porten?)"
    )
