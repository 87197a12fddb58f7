"""Fixtures shared by the suite: stores on real SQLite and real PostgreSQL, and the fixtures dir."""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest
from starlette.testclient import TestClient

from browser import chromium, live_server, page  # noqa: F401 -- page-test fixtures, tests/browser.py
from helpers import HTTPS, key_settings, sample_campaign, schema_url
from varsel.config import Settings
from varsel.db import Database, connect
from varsel.testing import SmtpSink

ROOT = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("VARSEL_SHARED", ROOT.parent / "shared"))
BRREG = SHARED / "fixtures" / "brreg"
POSTGRES = os.environ.get("VARSEL_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432")
TEST_DATABASE = "varsel_test"


@pytest.fixture(autouse=True)
def _own_home(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test its own empty home folder: nothing is read from or written to the runner's own
    (~/.config/varsel holds the default DKIM keys and VERP secret), so that no test depends on
    what another test, or an earlier `make demo`, left there."""
    monkeypatch.setenv("HOME", str(tmp_path_factory.mktemp("home")))


def _ensure_database() -> str:
    with psycopg.connect(f"{POSTGRES}/postgres", autocommit=True) as conn:
        exists = conn.execute(
            "SELECT 1 FROM pg_database WHERE datname = %s", (TEST_DATABASE,)
        ).fetchone()
        if not exists:
            # Another test worker may make it first: PostgreSQL says so with DuplicateDatabase,
            # or, when both CREATE at the same moment, with a unique violation in its catalogue.
            with contextlib.suppress(
                psycopg.errors.DuplicateDatabase, psycopg.errors.UniqueViolation
            ):
                conn.execute(f"CREATE DATABASE {TEST_DATABASE}")
    return f"{POSTGRES}/{TEST_DATABASE}"


@pytest.fixture(scope="session")
def postgres_base() -> str:
    """URL of the test database on the local PostgreSQL server."""
    return _ensure_database()


@pytest.fixture
def pg_schemas(postgres_base: str) -> Iterator[Callable[[], str]]:
    """Makes fresh, empty schemas on the local PostgreSQL server; drops them afterwards."""
    made: list[str] = []

    def make() -> str:
        schema = f"t_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(postgres_base, autocommit=True) as conn:
            conn.execute(f"CREATE SCHEMA {schema}")
        made.append(schema)
        return schema_url(postgres_base, schema)

    yield make
    with psycopg.connect(postgres_base, autocommit=True) as conn:
        for schema in made:
            conn.execute(f"DROP SCHEMA {schema} CASCADE")


@pytest.fixture
def pg_url(pg_schemas: Callable[[], str]) -> str:
    """A fresh, empty schema on the local PostgreSQL server."""
    return pg_schemas()


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    """A new SQLite store file."""
    return str(tmp_path / "varsel.db")


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def new_store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Callable[[], str]:
    """Makes URLs of new, empty stores of one kind; every store test runs on both kinds."""
    if request.param == "postgresql":
        return request.getfixturevalue("pg_schemas")  # type: ignore[no-any-return]
    counter = iter(range(1000))
    return lambda: str(tmp_path / f"store{next(counter)}.db")


@pytest.fixture
def db_url(new_store_url: Callable[[], str]) -> str:
    """An empty store of each kind."""
    return new_store_url()


@pytest.fixture
def db(db_url: str) -> Iterator[Database]:
    """An open, migrated store of each kind."""
    database = connect(db_url)
    try:
        yield database
    finally:
        database.close()


@pytest.fixture
def every_json_dump_through_duckdb(monkeypatch: pytest.MonkeyPatch) -> None:
    """JSON dumps of any size extracted by DuckDB (registry_fast), as national dumps are: the
    tests' small files would otherwise go the Python way (registry_fast.SMALL_FILE). For the
    modules whose subject is the import."""
    from varsel import registry_fast

    monkeypatch.setattr(registry_fast, "SMALL_FILE", 0)


@pytest.fixture
def brreg() -> Path:
    """The folder of real registry records."""
    return BRREG


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """Default settings with the DKIM keys in the test's folder (a module may define its own)."""
    return key_settings(tmp_path)


@pytest.fixture
def campaign_id(db: Database, brreg: Path, tmp_path: Path, settings: Settings) -> int:
    """The registry sample and campaign_toml()'s campaign, made with `settings`' keys."""
    return sample_campaign(db, brreg, tmp_path)


@pytest.fixture
def sink() -> Iterator[SmtpSink]:
    """A real SMTP server on loopback, in this process, for the test's messages."""
    with SmtpSink() as s:
        yield s


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    """The web app on `settings`, over HTTPS as the console's __Host- cookie needs (a module
    may define its own)."""
    from varsel.web import create_app

    with TestClient(create_app(settings), base_url=HTTPS) as c:
        yield c
