from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable
from pathlib import Path

import psycopg
import pytest

from varsel.db import applied_versions, connect, lost, migrate_store, migrations, normalise_url
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


# -- a store that fails under a command (db.lost) ------------------------------------------

END = "; det som var fullført, er lagret, og kommandoen kan kjøres igjen når lageret er i orden"


def _error_of(run: Callable[[], object]) -> BaseException:
    try:
        run()
    except Exception as e:
        return e
    raise AssertionError("no error")


def test_a_full_disk_a_held_lock_and_a_read_only_file_name_the_sqlite_store(
    tmp_path: Path,
) -> None:
    path = str(tmp_path / "varsel.db")
    with connect(path) as db:
        raw = db.raw_connection()
        # A file that may not grow (SQLite's own limit, as a full disk): SQLITE_FULL.
        pages = raw.execute("PRAGMA page_count").fetchone()[0]
        raw.execute(f"PRAGMA max_page_count = {pages}")
        full = _error_of(
            lambda: db.execute("INSERT INTO events (at, kind) VALUES (?, ?)", ("t", "x" * 100_000))
        )
        raw.execute("PRAGMA max_page_count = 1073741823")
        # Another process holds the write lock past the busy timeout: SQLITE_BUSY.
        holder = sqlite3.connect(path, isolation_level=None)
        holder.execute("BEGIN IMMEDIATE")
        raw.execute("PRAGMA busy_timeout = 0")
        busy = _error_of(lambda: db.execute("BEGIN IMMEDIATE"))
        holder.execute("ROLLBACK")
        holder.close()
    read_only = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    written = _error_of(lambda: read_only.execute("DELETE FROM events"))
    read_only.close()
    said = {
        "full": lost(full, path),
        "busy": lost(busy, path),
        "read-only": lost(written, f"sqlite:///{path}"),
    }
    assert {k: v.message if v else None for k, v in said.items()} == {
        "full": f"lageret {path}: disken er full{END}",
        "busy": f"lageret {path}: filen var låst av en annen prosess for lenge{END}",
        "read-only": f"lageret {path}: filen kan ikke skrives (skrivebeskyttet fil, mappe eller "
        f"disk){END}",
    }
    assert all(v is not None and v.exit_status == 75 for v in said.values())


def test_a_mistake_in_the_sql_is_not_the_stores_failure(db_url: str) -> None:
    # varsel's own faults keep their traceback: they are not hidden behind the store's line.
    with connect(db_url) as db:
        mistakes = [
            _error_of(lambda: db.execute("SELECT nope FROM units")),
            _error_of(lambda: db.execute("SELEC 1")),
            _error_of(
                lambda: db.execute("INSERT INTO feed_state VALUES (?, ?, ?)", (None, None, None))
            ),
        ]
    assert [lost(e, db_url) for e in mistakes] == [None, None, None]
    assert lost(RuntimeError("x"), db_url) is None


@pytest.mark.postgres
def test_a_server_that_ends_the_connection_or_cancels_a_query_is_named_without_the_password(
    pg_url: str,
) -> None:
    url = pg_url.replace("postgresql://", "postgresql://postgres:hemmelig@", 1)
    with connect(pg_url) as db:
        pid = db.scalar("SELECT pg_backend_pid()")
        db.execute("SET statement_timeout = 50")
        cancelled = _error_of(lambda: db.execute("SELECT pg_sleep(1)"))
        db.execute("SET statement_timeout = 0")
        with psycopg.connect(pg_url, autocommit=True) as admin:
            admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
        ended = _error_of(lambda: db.execute("SELECT 1"))
        gone = _error_of(lambda: db.execute("SELECT 1"))  # the connection is closed now
    said = [lost(e, url) for e in (cancelled, ended, gone)]
    assert all(s is not None for s in said)
    messages = [s.message for s in said if s is not None]
    assert all(m.startswith("lageret postgresql://postgres:***@") for m in messages)
    assert all("hemmelig" not in m and m.endswith(END) for m in messages)
    assert ": en spørring ble avbrutt (tidsgrense eller en administrator);" in messages[0]
    assert ": tjeneren avsluttet forbindelsen (stoppet, startet på nytt eller av " in messages[1]
    assert ": forbindelsen ble brutt;" in messages[2]


@pytest.mark.postgres
def test_a_server_that_ends_an_idle_transaction_or_session_is_named(pg_url: str) -> None:
    with connect(pg_url) as db:
        db.execute("SET idle_in_transaction_session_timeout = 100")
        with pytest.raises(psycopg.Error) as in_transaction, db.transaction():
            db.execute("SELECT 1")
            time.sleep(0.5)
            db.execute("SELECT 1")
    with connect(pg_url) as db:
        db.execute("SET idle_session_timeout = 100")
        time.sleep(0.5)
        idle = _error_of(lambda: db.execute("SELECT 1"))
    said = [lost(e, pg_url) for e in (in_transaction.value, idle)]
    messages = [s.message if s is not None else "" for s in said]
    assert "ubrukt for lenge (idle_in_transaction_session_timeout);" in messages[0]
    assert ": tjeneren avsluttet en forbindelse som sto ubrukt for lenge (" in messages[1]


def test_an_idle_connection_the_server_ended_is_known_gone_before_it_is_used(
    db_url: str,
) -> None:
    with connect(db_url) as db:
        assert not db.gone()
        assert db.scalar("SELECT 1") == 1
        assert not db.gone()  # an answer read leaves nothing behind
        if db.dialect == "postgresql":
            pid = db.scalar("SELECT pg_backend_pid()")
            with psycopg.connect(db_url, autocommit=True) as admin:
                admin.execute("SELECT pg_terminate_backend(%s, 5000)", (pid,))
            assert db.gone()
    assert db.gone() is (db.dialect == "postgresql")  # closed; SQLite is never ended under us


def test_a_damaged_sqlite_file_is_named_with_where_to_turn(tmp_path: Path) -> None:
    path = tmp_path / "varsel.db"
    with connect(str(path)) as db:
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    data = bytearray(path.read_bytes())
    page = 4096
    data[page:] = b"\xff" * (len(data) - page)  # every page but the first (the schema): garbage
    path.write_bytes(bytes(data))
    raw = sqlite3.connect(path)
    damaged = _error_of(lambda: raw.execute("SELECT count(*) FROM units").fetchall())
    raw.close()
    said = lost(damaged, str(path))
    assert said is not None
    assert said.exit_status == 1  # running it again will not mend the file
    assert said.message == (
        f"lageret {path}: filen er skadet; hent det siste hele eksemplaret fra "
        "sikkerhetskopien (varsel backup), og kjør så kommandoen igjen"
    )
