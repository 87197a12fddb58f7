"""The WAL checkpointed by a thread while a writer keeps writing."""

from __future__ import annotations

import contextlib
import sqlite3
import time
from pathlib import Path

from varsel.db import connect
from varsel.wal import Checkpointer


def rows_in_the_database_file(path: Path) -> int:
    """Rows of the test's events as a connection that ignores the WAL (immutable) reads them."""
    with contextlib.closing(sqlite3.connect(f"file:{path}?immutable=1", uri=True)) as direct:
        return int(direct.execute("SELECT count(*) FROM events WHERE kind = 't'").fetchone()[0])


def test_the_thread_checkpoints_what_the_writer_wrote_and_gives_checkpoints_back(
    tmp_path: Path,
) -> None:
    path = tmp_path / "store.db"
    with connect(str(path)) as db:
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()  # the schema into the file
        checkpointer = Checkpointer.start(db, 0.05)
        assert checkpointer is not None
        try:
            assert db.scalar("PRAGMA wal_autocheckpoint") == 0
            with db.transaction():
                db.execute("INSERT INTO events (at, kind) VALUES ('2025-01-01T00:00:00.000Z', 't')")
            time.sleep(0.3)
            assert rows_in_the_database_file(path) == 0  # nobody said it wrote
            checkpointer.wrote.set()
            deadline = time.monotonic() + 10
            while rows_in_the_database_file(path) != 1:
                assert time.monotonic() < deadline, "the WAL was not checkpointed"
                time.sleep(0.05)
        finally:
            checkpointer.close()
        assert db.scalar("PRAGMA wal_autocheckpoint") == 1000


def test_no_checkpointer_for_a_store_without_a_wal(tmp_path: Path, pg_url: str) -> None:
    with connect(pg_url) as db:
        assert Checkpointer.start(db, 0.05) is None
    with connect(":memory:") as db:
        assert Checkpointer.start(db, 0.05) is None
