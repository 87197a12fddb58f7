from __future__ import annotations

import json
import sqlite3
import stat
import threading
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from conftest import BRREG
from varsel import audit, backup
from varsel.backup import back_up
from varsel.cli import cli
from varsel.db import Database, connect
from varsel.errors import UserError
from varsel.registry import import_dump


@pytest.fixture
def store(tmp_path: Path) -> Path:
    path = tmp_path / "varsel.db"
    with connect(str(path)) as db:
        import_dump(db, BRREG / "enheter-sample.json", dump_date="2026-11-01")
    return path


def rows(path: Path, sql: str) -> list[tuple[object, ...]]:
    with connect(str(path), migrate=False) as db:
        return [tuple(r) for r in db.query(sql)]


def test_the_copy_holds_what_was_committed_and_is_one_file_for_its_owner(
    store: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "kopi" / "varsel-2026-11-30.db"
    target.parent.mkdir()
    # A writer in the middle of a transaction while the copy is taken: its row is not in the
    # copy, and the copy is not held up by it (WAL: a reader sees the last commit). It ends
    # before the copy is recorded in the audit log, which needs the write lock.
    other = connect(str(store), migrate=False)
    other.execute("BEGIN IMMEDIATE")
    other.execute("UPDATE units SET name = 'HALVFERDIG AS' WHERE orgnr = '923609016'")
    copy_store = backup._copy

    def copy_then_end(db: Database, temporary: Path) -> None:
        copy_store(db, temporary)
        other.execute("ROLLBACK")

    monkeypatch.setattr(backup, "_copy", copy_then_end)
    with connect(str(store), migrate=False) as db:
        made = back_up(db, target, actor="cli:test")
    other.close()
    assert made.path == target.resolve()
    assert made.bytes == target.stat().st_size > 0
    assert stat.S_IMODE(target.stat().st_mode) == 0o600  # personal data: the owner's alone
    assert sorted(p.name for p in target.parent.iterdir()) == [target.name]  # no -wal, no temp
    with sqlite3.connect(target) as copy:
        assert copy.execute("PRAGMA journal_mode").fetchone() == ("delete",)
        assert copy.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    query = "SELECT orgnr, name, employees FROM units ORDER BY orgnr"
    assert rows(target, query) == rows(store, query)
    assert ("923609016", "EQUINOR ASA", 21496) in rows(target, query)
    assert "varsel-2026-11-30.db (" in made.summary()


def test_a_copy_is_taken_while_another_connection_keeps_committing(
    store: Path, tmp_path: Path
) -> None:
    stop, going = threading.Event(), threading.Event()
    written = 0

    def keep_writing() -> None:
        nonlocal written
        with connect(str(store), migrate=False) as db:
            while not stop.is_set():
                with db.transaction():
                    db.execute(
                        "UPDATE units SET employees = coalesce(employees, 0) + 1 "
                        "WHERE orgnr = '923609016'"
                    )
                written += 1
                going.set()

    writer = threading.Thread(target=keep_writing)
    writer.start()
    made = []
    try:
        assert going.wait(30)  # the writer is committing before the first copy starts
        before = written
        deadline = time.monotonic() + 30
        with connect(str(store), migrate=False) as db:
            # Three copies at least, and more until the writer has committed between them
            # (a busy machine may not run it during the first three).
            while len(made) < 3 or (written == before and time.monotonic() < deadline):
                made.append(back_up(db, tmp_path / f"kopi{len(made)}.db", actor="cli:test"))
    finally:
        stop.set()
        writer.join()
    assert written > before
    for copy in made:
        with sqlite3.connect(copy.path) as c:
            assert c.execute("PRAGMA integrity_check").fetchone() == ("ok",)


def test_making_a_copy_is_in_the_audit_log(store: Path, tmp_path: Path) -> None:
    with connect(str(store), migrate=False) as db:
        made = back_up(db, tmp_path / "kopi.db", actor="cli:kari")
        entry = audit.entries(db, action=audit.Action.PERSONAL_DATA_EXPORT)[-1]
    assert (entry.actor, entry.object) == ("cli:kari", "store")
    assert json.loads(entry.detail) == {
        "what": "store_backup",
        "file": str(made.path),
        "bytes": made.bytes,
    }


@pytest.mark.parametrize(
    ("name", "says"),
    [
        ("finnes.db", "filen finnes allerede; velg et nytt navn"),
        ("mangler/kopi.db", "finnes ikke"),
        ("varsel.db", "filen finnes allerede"),  # the store itself
    ],
)
def test_a_target_that_cannot_be_used_is_refused_and_nothing_changes(
    store: Path, tmp_path: Path, name: str, says: str
) -> None:
    (tmp_path / "finnes.db").write_bytes(b"noe annet")
    before = store.read_bytes()
    with connect(str(store), migrate=False) as db, pytest.raises(UserError, match=says):
        back_up(db, tmp_path / name, actor="cli:test")
    assert (tmp_path / "finnes.db").read_bytes() == b"noe annet"
    assert store.read_bytes() == before  # not even an audit entry
    assert not list(tmp_path.glob(".*.tmp"))


def test_a_postgresql_store_is_sent_to_its_own_tools(pg_url: str, tmp_path: Path) -> None:
    with connect(pg_url) as db, pytest.raises(UserError, match="pg_dump"):
        back_up(db, tmp_path / "kopi.db", actor="cli:test")
    assert not (tmp_path / "kopi.db").exists()


def test_varsel_backup_says_where_and_refuses_in_one_line(store: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    target = tmp_path / "kopi.db"
    done = runner.invoke(cli, ["--db", str(store), "backup", str(target)])
    assert done.exit_code == 0, done.output
    assert done.output.startswith(f"Sikkerhetskopi av {store} skrevet til {target} (")
    assert done.output.rstrip().endswith("s.")
    again = runner.invoke(cli, ["--db", str(store), "backup", str(target)])
    assert again.exit_code == 2
    assert again.output == f"varsel: {target}: filen finnes allerede; velg et nytt navn\n"
    missing = runner.invoke(cli, ["--db", str(tmp_path / "nei.db"), "backup", str(tmp_path / "x")])
    assert missing.exit_code == 2
    assert "finnes ikke" in missing.output
    assert not (tmp_path / "nei.db").exists()


def test_a_copy_that_sqlite_cannot_finish_is_one_line_and_leaves_nothing(
    store: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def full(db: Database, temporary: Path) -> None:
        temporary.write_bytes(b"half")
        raise sqlite3.OperationalError("database or disk is full")

    monkeypatch.setattr(backup, "_copy", full)
    target = tmp_path / "kopi.db"
    with connect(str(store), migrate=False) as db, pytest.raises(UserError) as caught:
        back_up(db, target, actor="cli:test")
    assert str(caught.value) == (
        f"{target}: kopien kunne ikke lages (database or disk is full); {store} er urørt"
    )
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(("kopi", ".kopi"))) == []


@pytest.mark.parametrize("name", ["kopi#1.db", "kopi?.db", "100%25.db"])
def test_the_copy_itself_is_checked_whatever_its_name(
    store: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    checked: list[str] = []
    real_check = backup._check

    def check(path: Path) -> str | None:
        answer = real_check(path)
        checked.append(answer or "ok")
        return answer

    monkeypatch.setattr(backup, "_check", check)
    with connect(str(store), migrate=False) as db:
        made = back_up(db, tmp_path / name, actor="cli:test")
    assert checked == ["ok"]
    assert rows(made.path, "SELECT count(*) FROM units") == [(35,)]
    # Nothing else made beside it: a "#" or "?" once had SQLite check (and create) ".kopi".
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["varsel.db", name])
