"""`varsel registry import` through the real command line."""

from __future__ import annotations

import gzip
import json
import re
from pathlib import Path

import psycopg
import pytest
from click.testing import CliRunner

from test_registry import load, write_json
from varsel.cli import cli
from varsel.db import Database, connect

# JSON dumps of every size go through DuckDB here, as national dumps do (conftest).
pytestmark = pytest.mark.usefixtures("every_json_dump_through_duckdb")


def test_rejects_of_every_file_go_to_one_file_each_line_naming_its_file(
    db: Database, brreg: Path, tmp_path: Path
) -> None:
    records = load(brreg / "enheter-sample.json")
    first = [*records[:10], {**records[0], "organisasjonsnummer": "123456789"}]
    second = [*records[:20], {**records[1], "antallAnsatte": -3}]
    a = write_json(tmp_path / "a.json", first)
    b = write_json(tmp_path / "b.json", second)
    rejects = tmp_path / "rejects.jsonl"
    rejects.write_text("from an earlier run\n", "utf-8")
    args = ["--db", db.url, "registry", "import", "--rejects", str(rejects), str(a), str(b)]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    lines = [json.loads(x) for x in rejects.read_text("utf-8").splitlines()]
    assert [(r["file"], r["position"], r["reason"]) for r in lines] == [
        (str(a), 11, "ugyldig organisasjonsnummer '123456789' (kontrollsiffer)"),
        (str(b), 21, "antallAnsatte er negativt: -3"),
    ]


def test_an_import_that_would_shrink_the_registry_exits_2_with_one_line(
    db: Database, brreg: Path, tmp_path: Path
) -> None:
    records = load(brreg / "enheter-sample.json")
    full = write_json(tmp_path / "full.json", records)
    small = write_json(tmp_path / "small.json", records[:3])
    runner = CliRunner()
    assert runner.invoke(cli, ["--db", db.url, "registry", "import", str(full)]).exit_code == 0
    refused = runner.invoke(cli, ["--db", db.url, "registry", "import", str(small)])
    assert refused.exit_code == 2
    assert refused.output.count("\n") == 1
    assert "32 av 35 enheter i lageret ville blitt merket som borte" in refused.output
    assert refused.output.strip().endswith("importer den med --allow-shrink.")
    allowed = runner.invoke(
        cli, ["--db", db.url, "registry", "import", "--allow-shrink", str(small)]
    )
    assert allowed.exit_code == 0, allowed.output
    assert "32 borte" in allowed.output


def test_a_rejects_file_under_a_file_is_one_line_in_bokmal_and_nothing_is_imported(
    brreg: Path, tmp_path: Path
) -> None:
    store = tmp_path / "varsel.db"
    dump = write_json(tmp_path / "a.json", load(brreg / "enheter-sample.json")[:3])
    args = ["--db", str(store), "registry", "import", "--rejects", "/etc/passwd/x", str(dump)]
    result = CliRunner().invoke(cli, args)
    assert (result.exit_code, result.output) == (
        2,
        "varsel: /etc/passwd/x: kan ikke skrive avvisningsfilen "
        "(en del av stien er ikke en mappe)\n",
    )
    assert not store.exists()


def _store_contents(db: Database) -> dict[str, list[str]]:
    """Every row of every table, sorted: equal before and after means nothing changed."""
    return {t: sorted(map(repr, db.query(f"SELECT * FROM {t}"))) for t in db.tables()}


def _bad_second_file(kind: str, tmp_path: Path, records: list[dict[str, object]]) -> Path:
    if kind == "missing":
        return tmp_path / "missing.json"
    if kind == "truncated":
        whole = gzip.compress(json.dumps(records).encode())
        cut = tmp_path / "cut.json.gz"
        cut.write_bytes(whole[: len(whole) // 2])
        return cut
    return write_json(tmp_path / "small.json", records[:3])  # would mark 32 of 35 gone


@pytest.mark.parametrize("bad", ["missing", "truncated", "shrink"])
def test_a_bad_second_file_leaves_the_store_as_it_was(
    db: Database, brreg: Path, tmp_path: Path, bad: str
) -> None:
    records = load(brreg / "enheter-sample.json")
    runner = CliRunner()
    first = write_json(tmp_path / "first.json", records)
    assert runner.invoke(cli, ["--db", db.url, "registry", "import", str(first)]).exit_code == 0
    changed = [{**records[0], "navn": "NYTT NAVN AS"}, *records[1:]]
    good = write_json(tmp_path / "good.json", changed)
    before = _store_contents(db)
    second = _bad_second_file(bad, tmp_path, records)
    result = runner.invoke(cli, ["--db", db.url, "registry", "import", str(good), str(second)])
    assert result.exit_code == 2, result.output
    assert result.output.count("\n") == 1
    assert str(second) in result.output
    assert _store_contents(db) == before


@pytest.mark.parametrize(
    ("command", "bad"),
    [
        (["registry", "import"], "missing"),
        (["registry", "import"], "truncated"),
        (["registry", "import"], "not a dump"),
        (["registry", "update"], "missing"),
        (["registry", "update"], "not a dump"),
    ],
)
def test_a_failed_import_or_update_leaves_no_store_it_made_behind(
    brreg: Path, tmp_path: Path, command: list[str], bad: str
) -> None:
    # The store held nothing before the command: a new, empty one left behind is a change.
    files = tmp_path / "files"
    files.mkdir()
    records = load(brreg / "enheter-sample.json")
    if bad == "not a dump":
        wrong = files / "wrong.json"
        wrong.write_text('{"hei": 1}', "utf-8")
    else:
        wrong = _bad_second_file(bad, files, records)
    store = tmp_path / "store" / "varsel.db"
    store.parent.mkdir()
    result = CliRunner().invoke(cli, ["--db", str(store), *command, str(wrong)])
    assert result.exit_code == 2, result.output
    assert result.output.count("\n") == 1
    assert list(store.parent.iterdir()) == []
    good = write_json(files / "good.json", records[:3])
    result = CliRunner().invoke(cli, ["--db", str(store), "registry", "import", str(good)])
    assert result.exit_code == 0, result.output
    assert store.exists()


@pytest.mark.postgres
@pytest.mark.parametrize(
    ("command", "bad"),
    [
        (["registry", "import"], "missing"),
        (["registry", "import"], "truncated"),
        (["registry", "import"], "not a dump"),
    ],
)
def test_a_failed_first_import_leaves_a_postgresql_database_as_it_was(
    pg_url: str, brreg: Path, tmp_path: Path, command: list[str], bad: str
) -> None:
    # The schema existed before the command, with a table of someone else's: both stay, and
    # nothing of varsel's schema is left behind.
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("CREATE TABLE theirs (note TEXT)")
        conn.execute("INSERT INTO theirs VALUES ('kept')")
    records = load(brreg / "enheter-sample.json")
    if bad == "not a dump":
        wrong = tmp_path / "wrong.json"
        wrong.write_text('{"hei": 1}', "utf-8")
    else:
        wrong = _bad_second_file(bad, tmp_path, records)
    result = CliRunner().invoke(cli, ["--db", pg_url, *command, str(wrong)])
    assert result.exit_code == 2, result.output
    assert result.output.count("\n") == 1
    with connect(pg_url, migrate=False) as db:
        assert db.tables() == ["theirs"]
        assert db.query("SELECT note FROM theirs") == [("kept",)]
    good = write_json(tmp_path / "good.json", records[:3])
    result = CliRunner().invoke(cli, ["--db", pg_url, "registry", "import", str(good)])
    assert result.exit_code == 0, result.output
    with connect(pg_url, migrate=False) as db:
        assert db.scalar("SELECT count(*) FROM units") == 3
        assert db.query("SELECT note FROM theirs") == [("kept",)]


@pytest.mark.postgres
def test_a_first_import_is_not_ended_by_the_servers_limit_for_an_idle_transaction(
    pg_url: str, tmp_path: Path
) -> None:
    # The store is made in the transaction that holds the whole command: reading the dump
    # takes longer than the server lets a transaction sit idle, and that is not this one's.
    from urllib.parse import quote

    from varsel.synth import write_dump

    dump = tmp_path / "enheter.json.gz"
    write_dump(dump, units=20000, seed=3)
    url = pg_url + quote(" -cidle_in_transaction_session_timeout=200")
    result = CliRunner().invoke(cli, ["--db", url, "registry", "import", str(dump)])
    assert result.exit_code == 0, result.output
    with connect(pg_url, migrate=False) as db:
        assert db.scalar("SELECT count(*) FROM units") == 20000


def test_several_files_are_imported_in_one_go(db: Database, brreg: Path, tmp_path: Path) -> None:
    records = load(brreg / "enheter-sample.json")
    a = write_json(tmp_path / "a.json", records[:10])
    b = write_json(tmp_path / "b.json", records[:12])
    result = CliRunner().invoke(cli, ["--db", db.url, "registry", "import", str(a), str(b)])
    assert result.exit_code == 0, result.output
    assert "a.json: 10 enheter lest — 10 nye" in result.output
    assert "b.json: 12 enheter lest — 2 nye, 0 endret, 10 uendret" in result.output
    assert db.scalar("SELECT count(*) FROM snapshots") == 2


EMPTY = (
    "varsel: lageret er tomt (--db eller VARSEL_DATABASE_URL uten verdi): oppgi en SQLite-fil "
    "eller en postgresql://-URL\n"
)
MEMORY = (
    "varsel: lageret {}: et lager i minnet forsvinner når kommandoen er ferdig; oppgi en "
    "SQLite-fil eller en postgresql://-URL\n"
)


@pytest.mark.parametrize(
    ("args", "env", "expected"),
    [
        (["--db", ""], {}, EMPTY),
        ([], {"VARSEL_DATABASE_URL": ""}, EMPTY),
        (["--db", ":memory:"], {}, MEMORY.format(":memory:")),
        (
            ["--db", "sqlite:///"],
            {},
            "varsel: lageret sqlite:///: mangler filnavnet (for eksempel sqlite:///varsel.db)\n",
        ),
    ],
)
@pytest.mark.parametrize("command", [["registry", "import"], ["registry", "snapshots"], ["init"]])
def test_an_empty_or_in_memory_store_is_refused_by_writing_and_reading_commands(
    brreg: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    args: list[str],
    env: dict[str, str],
    expected: str,
    command: list[str],
) -> None:
    monkeypatch.chdir(tmp_path)
    files = [str(brreg / "enheter-sample.json")] if command[-1] == "import" else []
    result = CliRunner().invoke(cli, [*args, *command, *files], env=env)
    assert (result.exit_code, result.output) == (2, expected)
    assert list(tmp_path.iterdir()) == []


def test_snapshots_of_an_empty_store_say_nothing_is_imported(db: Database) -> None:
    result = CliRunner().invoke(cli, ["--db", db.url, "registry", "snapshots"])
    assert (result.exit_code, result.output) == (
        0,
        "Ingenting er importert ennå (varsel registry import).\n",
    )


@pytest.mark.parametrize("command", ["import", "update"])
def test_import_and_update_without_files_ask_for_one(tmp_path: Path, command: str) -> None:
    store = tmp_path / "varsel.db"
    result = CliRunner().invoke(cli, ["--db", str(store), "registry", command])
    assert result.exit_code == 2
    assert "oppgi minst én fil" in result.output.splitlines()[-1]
    assert result.output.count("\n") == 1
    assert not store.exists()


def test_a_reimport_with_a_future_dump_date_exits_2_and_names_the_stored_date(
    db: Database, brreg: Path, tmp_path: Path
) -> None:
    # The audit's case: the date given again was not even checked, and the message showed
    # the import day where `registry snapshots` showed the dump's date.
    path = write_json(tmp_path / "enheter-sample.json", load(brreg / "enheter-sample.json"))
    runner = CliRunner()
    first = runner.invoke(
        cli, ["--db", db.url, "registry", "import", str(path), "--dump-date", "2025-12-15"]
    )
    assert first.exit_code == 0, first.output
    future = runner.invoke(
        cli, ["--db", db.url, "registry", "import", str(path), "--dump-date", "2030-01-01"]
    )
    assert (future.exit_code, future.output) == (
        2,
        "varsel: --dump-date «2030-01-01»: datoen er etter i dag\n",
    )
    again = runner.invoke(cli, ["--db", db.url, "registry", "import", str(path)])
    assert again.exit_code == 0, again.output
    assert again.output == (
        "enheter-sample.json: allerede importert som snapshot 1 (dumpdato 2025-12-15); "
        "ingenting endret.\n"
    )
    other = runner.invoke(
        cli, ["--db", db.url, "registry", "import", str(path), "--dump-date", "2025-12-01"]
    )
    assert other.exit_code == 2
    assert other.output.count("\n") == 1
    assert "med dumpdato 2025-12-15; --dump-date 2025-12-01 er ikke brukt" in other.output
    assert db.scalar("SELECT dump_date FROM snapshots") == "2025-12-15"


def test_snapshots_say_which_dump_dates_are_guessed(
    db: Database, brreg: Path, tmp_path: Path
) -> None:
    path = write_json(tmp_path / "kopi.json", load(brreg / "enheter-sample.json"))
    runner = CliRunner()
    assert runner.invoke(cli, ["--db", db.url, "registry", "import", str(path)]).exit_code == 0
    result = runner.invoke(cli, ["--db", db.url, "registry", "snapshots"])
    assert result.exit_code == 0, result.output
    assert result.output.endswith(
        "Dumpdatoen er gjettet fra filens endringstid for snapshot 1: rett den med «varsel "
        "registry import FIL --dump-date ÅÅÅÅ-MM-DD».\n"
    )
    listed = json.loads(
        runner.invoke(cli, ["--db", db.url, "registry", "snapshots", "--json"]).output
    )
    assert listed[0]["dump_date_guessed"] is True


def test_snapshots_show_the_newest_thirty_unless_asked_for_more(db: Database) -> None:
    # A year of daily change-feed pages is thousands of snapshots.
    from varsel.snapshot import insert_snapshot

    with db.transaction():
        for n in range(35):
            insert_snapshot(
                db,
                kind="enheter",
                source="feed",
                file_name=f"s{n}.json",
                file_path=f"/var/lib/varsel/oppdateringer/s{n}.json",
                sha256=f"{n:064x}",
                format="feed",
                dump_date="2026-11-20",
                imported_at="2026-11-20T06:30:00.000Z",
            )
    runner = CliRunner()

    def shown(*args: str) -> tuple[int, list[str]]:
        result = runner.invoke(cli, ["--db", db.url, "registry", "snapshots", *args])
        return result.exit_code, re.findall(r"\bs(\d+)\.json", result.output)

    code, names = shown()
    assert code == 0
    assert names == [str(n) for n in range(5, 35)]  # the newest, oldest first
    table = runner.invoke(cli, ["--db", db.url, "registry", "snapshots"]).output
    assert table.endswith("5 eldre er ikke vist (--all viser alle).\n")
    assert shown("--limit", "3") == (0, ["32", "33", "34"])
    assert shown("--all")[1] == [str(n) for n in range(35)]
    every = json.loads(
        runner.invoke(cli, ["--db", db.url, "registry", "snapshots", "--json"]).output
    )
    assert len(every) == 35  # for machines: all, unless --limit
    two = runner.invoke(cli, ["--db", db.url, "registry", "snapshots", "--json", "--limit", "2"])
    assert [s["id"] for s in json.loads(two.output)] == [34, 35]
    both = runner.invoke(cli, ["--db", db.url, "registry", "snapshots", "--all", "--limit", "2"])
    assert both.exit_code == 2
    assert "--limit og --all kan ikke brukes sammen" in both.output


def test_a_rejects_file_that_is_the_dump_is_refused_and_the_dump_kept(
    brreg: Path, tmp_path: Path
) -> None:
    store = tmp_path / "varsel.db"
    dump = write_json(tmp_path / "a.json", load(brreg / "enheter-sample.json")[:3])
    before = dump.read_bytes()
    args = ["--db", str(store), "registry", "import", "--rejects", str(dump), str(dump)]
    result = CliRunner().invoke(cli, args)
    assert (result.exit_code, result.output) == (
        2,
        f"varsel: {dump}: avvisningsfilen (--rejects) er en av filene som skal importeres; "
        "velg en annen fil\n",
    )
    assert dump.read_bytes() == before
    assert not store.exists()
