from __future__ import annotations

import asyncio
import contextlib
import json
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from helpers import server_default_url
from varsel.db import Database, connect
from varsel.errors import StoreError
from varsel.outbox import record_event
from varsel.web import batch
from varsel.web.batch import GroupCommit


def _numbers(db: Database) -> list[int]:
    rows = db.query("SELECT detail FROM events WHERE kind = 'test'")
    return sorted(json.loads(r[0])["n"] for r in rows)


def test_every_job_is_answered_after_its_batch_is_committed(db: Database, db_url: str) -> None:
    sizes: list[int] = []

    def work(conn: Database, jobs: list[int]) -> list[int]:
        sizes.append(len(jobs))
        for n in jobs:
            record_event(conn, None, None, "test", {"n": n})
        return [n * 10 for n in jobs]

    writer: GroupCommit[int, int] = GroupCommit(db_url, work)
    committed: list[bool] = []

    async def request(n: int) -> int:
        result = await writer.run(n)
        # Another connection sees the row as soon as the job has its answer.
        detail = json.dumps({"n": n})
        committed.append(db.scalar("SELECT count(*) FROM events WHERE detail = ?", (detail,)) == 1)
        return result

    async def main() -> list[int]:
        return await asyncio.gather(*(request(n) for n in range(200)))

    try:
        results = asyncio.run(main())
    finally:
        writer.close()
    assert results == [n * 10 for n in range(200)]
    assert committed == [True] * 200
    assert _numbers(db) == list(range(200))
    assert sum(sizes) == 200
    assert max(sizes) > 1  # jobs that came together went in one transaction


def test_a_failing_job_spoils_no_other_in_its_batch(db: Database, db_url: str) -> None:
    def work(conn: Database, jobs: list[int]) -> list[str]:
        for n in jobs:
            record_event(conn, None, None, "test", {"n": n})
            if n == 2:
                raise ValueError("job 2 fails")
        return ["ok" for _ in jobs]

    writer: GroupCommit[int, str] = GroupCommit(db_url, work)

    async def request(n: int) -> str:
        try:
            return await writer.run(n)
        except ValueError as e:
            return str(e)

    async def main() -> list[str]:
        return await asyncio.gather(*(request(n) for n in range(4)))

    try:
        results = asyncio.run(main())
    finally:
        writer.close()
    assert results == ["ok", "ok", "job 2 fails", "ok"]
    assert _numbers(db) == [0, 1, 3]


@pytest.fixture
def sqlite(tmp_path: Path) -> Iterator[tuple[Database, str]]:
    """A SQLite store (its write lock is what these tests are about) and its URL."""
    url = str(tmp_path / "store.db")
    with connect(url) as db:
        yield db, url


def test_a_locked_sqlite_store_is_waited_for_without_stalling_the_loop(
    sqlite: tuple[Database, str],
) -> None:
    db, db_url = sqlite

    def work(conn: Database, jobs: list[int]) -> list[int]:
        for n in jobs:
            record_event(conn, None, None, "test", {"n": n})
        return jobs

    writer: GroupCommit[int, int] = GroupCommit(db_url, work)
    other = connect(db_url, migrate=False)
    other.execute("BEGIN IMMEDIATE")  # another process writing, for 0.3 s

    async def main() -> tuple[int, int]:
        ticks = 0

        async def release() -> None:
            nonlocal ticks
            for _ in range(30):
                await asyncio.sleep(0.01)
                ticks += 1
            other.execute("COMMIT")

        answer, _ = await asyncio.gather(writer.run(7), release())
        return answer, ticks

    try:
        answer, ticks = asyncio.run(main())
    finally:
        writer.close()
        other.close()
    assert (answer, ticks) == (7, 30)  # the loop ran on while the job waited for the lock
    assert _numbers(db) == [7]


def test_a_lock_held_too_long_fails_the_jobs_with_a_store_error(
    sqlite: tuple[Database, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    _, db_url = sqlite
    monkeypatch.setattr(batch, "BUSY_GIVE_UP", 0.05)
    writer: GroupCommit[int, int] = GroupCommit(db_url, lambda conn, jobs: jobs)
    other = connect(db_url, migrate=False)
    other.execute("BEGIN IMMEDIATE")
    try:
        with pytest.raises(StoreError, match="låst av en annen skriver for lenge"):
            asyncio.run(writer.run(1))
        other.execute("COMMIT")
        assert asyncio.run(writer.run(2)) == 2  # and works again once the lock is free
    finally:
        writer.close()
        other.close()


def test_a_batch_that_need_not_be_durable_does_not_wait_for_the_disk(db_url: str) -> None:
    def work(conn: Database, jobs: list[int]) -> list[str]:
        if conn.dialect == "postgresql":
            setting = str(conn.scalar("SHOW synchronous_commit"))
        else:
            setting = {1: "normal", 2: "full"}[int(conn.scalar("PRAGMA synchronous"))]
        return [setting for _ in jobs]

    url = server_default_url(db_url)
    durable: GroupCommit[int, str] = GroupCommit(url, work)
    relaxed: GroupCommit[int, str] = GroupCommit(url, work, durable=False)
    try:
        answers = (asyncio.run(durable.run(1)), asyncio.run(relaxed.run(1)))
    finally:
        durable.close()
        relaxed.close()
    # SQLite's WAL with synchronous = NORMAL is what every connection of varsel uses: a commit
    # survives a crash of the process, not of the machine; PostgreSQL's is asked per batch.
    expected = ("on", "off") if db_url.startswith("postgresql") else ("normal", "normal")
    assert answers == expected


def test_a_sqlite_writer_leaves_the_wal_to_its_checkpoint_thread(tmp_path: Path) -> None:
    url = str(tmp_path / "store.db")
    connect(url).close()

    def work(conn: Database, jobs: list[int]) -> list[int]:
        for n in jobs:
            record_event(conn, None, None, "test", {"n": n})
        return jobs

    writer: GroupCommit[int, int] = GroupCommit(url, work)

    async def main() -> list[int]:
        return await asyncio.gather(*(writer.run(n) for n in range(50)))

    try:
        asyncio.run(main())
        assert writer._db is not None
        # The loop's writer never checkpoints (its commits would wait for the fsyncs) ...
        assert writer._db.scalar("PRAGMA wal_autocheckpoint") == 0
        # ... the thread does, soon after: the rows reach the database file itself, which a
        # connection that ignores the WAL (immutable) reads.
        deadline = time.monotonic() + 10 * batch.CHECKPOINT_EVERY + 5
        while True:
            with contextlib.closing(sqlite3.connect(f"file:{url}?immutable=1", uri=True)) as direct:
                found = direct.execute("SELECT count(*) FROM events WHERE kind = 'test'")
                if found.fetchone()[0] == 50:
                    break
            assert time.monotonic() < deadline, "the WAL was not checkpointed"
            time.sleep(0.1)
    finally:
        writer.close()


def _end(postgres_base: str, pid: int) -> None:
    """End a backend as a restart of PostgreSQL does, and wait until it has gone."""
    with psycopg.connect(postgres_base, autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(%s, 5000)", (pid,))


@pytest.mark.postgres
def test_a_batch_whose_connection_ends_before_its_commit_is_written_once_on_a_new_one(
    pg_url: str, postgres_base: str
) -> None:
    connect(pg_url).close()
    ended: list[int] = []

    def work(conn: Database, jobs: list[int]) -> list[int]:
        for n in jobs:
            record_event(conn, None, None, "test", {"n": n})
        if not ended:
            ended.append(int(conn.scalar("SELECT pg_backend_pid()")))
            _end(postgres_base, ended[0])
            conn.scalar("SELECT 1")  # the batch meets its ended connection
        return jobs

    writer: GroupCommit[int, int] = GroupCommit(pg_url, work)
    try:
        result = asyncio.run(writer.run(7))  # a batch of one: no other job to try it alone
    finally:
        writer.close()
    assert result == 7
    with connect(pg_url) as db:
        assert _numbers(db) == [7]  # once: the ended try committed nothing


@pytest.mark.postgres
def test_a_batch_whose_connection_ends_as_it_commits_fails_and_is_never_run_twice(
    pg_url: str, postgres_base: str
) -> None:
    # The end reaches the writer only once COMMIT is on its way: the batch may have been
    # committed, so its jobs fail with the store's error rather than being run again.
    connect(pg_url).close()
    calls: list[list[int]] = []

    def work(conn: Database, jobs: list[int]) -> list[int]:
        calls.append(list(jobs))
        for n in jobs:
            record_event(conn, None, None, "test", {"n": n})
        if len(calls) == 1:
            conn.execute("SELECT pg_terminate_backend(pg_backend_pid())")  # answer unread
        return jobs

    writer: GroupCommit[int, int] = GroupCommit(pg_url, work)

    async def main() -> list[int | BaseException]:
        return await asyncio.gather(*(writer.run(n) for n in range(5)), return_exceptions=True)

    try:
        results = asyncio.run(main())
        after = asyncio.run(writer.run(9))  # and the next batch goes on a new connection
    finally:
        writer.close()
    first = calls[0]
    failed = [n for n, r in enumerate(results) if isinstance(r, psycopg.OperationalError)]
    assert failed == first
    assert [r for n, r in enumerate(results) if n not in first] == [
        n for n in range(5) if n not in first
    ]
    assert all(set(first).isdisjoint(call) for call in calls[1:])
    assert after == 9
