"""Group commit for async views: requests' small writes go together, one transaction a batch.

A view awaits `GroupCommit.run(job)`; the jobs that arrive while a batch is being written go
together in the next one, through `work(db, jobs)` in one committed transaction, and each view
gets its own result once the batch is durable. Nothing is answered before it is committed.

SQLite runs the batches on the event loop itself: a batch costs tens of microseconds of CPU
and no waiting, and a hop to a thread would cost more than the work (every SQLite call would
hand the GIL to the loop and back). The writer's connection does not wait for SQLite's write
lock: when another process holds it, the batch is tried again a little later, so the loop never
stalls. Nor does it checkpoint the WAL (copy it into the database and fsync both, every ~1,000
pages: tens of milliseconds with every answer waiting): a thread of its own does that, twice a
second while batches are written. PostgreSQL runs the batches in one thread of their own, where
each batch's round trips wait without holding up the loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
import sqlite3
import threading
import time
from collections.abc import Callable, Sequence
from typing import Generic, TypeVar

from varsel.db import Database, connect, lost, normalise_url
from varsel.errors import StoreError
from varsel.wal import Checkpointer

log = logging.getLogger("varsel.web")

J = TypeVar("J")
R = TypeVar("R")
Work = Callable[[Database, list[J]], Sequence[R]]

MAX_BATCH = 256  # jobs in one transaction: bounds a statement's parameters and a batch's time
LINGER = 3  # turns of the loop a batch may wait while more jobs keep coming
BUSY_FIRST = 0.0005  # seconds before trying a locked SQLite store again; doubles each time
BUSY_MOST = 0.02  # the longest pause between tries
BUSY_GIVE_UP = 30.0  # seconds, as long as the store's other connections wait (busy_timeout)
CHECKPOINT_EVERY = 0.5  # seconds between the checkpoints of the WAL a SQLite writer wrote


class _Job(Generic[J, R]):
    __slots__ = ("future", "job", "loop")

    def __init__(self, job: J, loop: asyncio.AbstractEventLoop) -> None:
        self.job = job
        self.loop = loop
        self.future: asyncio.Future[R] = loop.create_future()


class GroupCommit(Generic[J, R]):
    """Runs jobs in batches, one committed transaction each; `run` returns a job's result."""

    def __init__(self, url: str, work: Work[J, R], *, durable: bool = True) -> None:
        self.url = url
        self.work = work
        # False: on PostgreSQL, a batch is answered once it is committed and seen by every
        # connection, without waiting for the WAL to reach the disk. A crash of PostgreSQL or
        # of the machine within ~0.6 s (three times wal_writer_delay) may then forget it, as
        # SQLite's synchronous = NORMAL forgets a commit on a crash of the machine.
        self.durable = durable
        self._db: Database | None = None
        self._pending: list[_Job[J, R]] = []
        self._inline = normalise_url(url)[0] == "sqlite"
        # SQLite: a flush is scheduled on the loop; when it started waiting for the lock.
        self._scheduled = False
        self._lingered = 0  # turns of the loop this flush has waited for more jobs
        self._seen = 0  # jobs pending at the last turn
        self._busy_since: float | None = None
        self._pause = BUSY_FIRST
        self._checkpointer: Checkpointer | None = None
        # PostgreSQL: the writer thread and its queue.
        self._queue: queue.SimpleQueue[_Job[J, R] | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    async def run(self, job: J) -> R:
        """The job's result, once the transaction that wrote it is committed."""
        entry: _Job[J, R] = _Job(job, asyncio.get_running_loop())
        if self._inline:
            self._pending.append(entry)
            if not self._scheduled:
                self._scheduled, self._lingered, self._seen = True, 0, 1
                entry.loop.call_soon(self._flush)
        else:
            self._start_thread()
            self._queue.put(entry)
        return await entry.future

    # -- SQLite: on the loop -------------------------------------------------------------

    def _flush(self) -> None:
        # While each turn of the loop brings more jobs, more are on their way (the answers to
        # the last batch went out together, and their clients' next requests follow): wait a
        # turn or two for them, as every batch costs a transaction.
        if len(self._pending) > self._seen and self._lingered < LINGER:
            self._seen, self._lingered = len(self._pending), self._lingered + 1
            self._pending[0].loop.call_soon(self._flush)
            return
        batch, self._pending = self._pending[:MAX_BATCH], self._pending[MAX_BATCH:]
        try:
            results = self._write(batch)
        except sqlite3.OperationalError as e:
            if e.sqlite_errorcode not in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED):
                self._settle_alone(batch, e)
            elif self._wait_for_lock(batch):
                return
        except Exception as e:
            self._settle_alone(batch, e)
        else:
            self._busy_since, self._pause = None, BUSY_FIRST
            _settle(batch, results)
        if self._pending:
            self._lingered, self._seen = 0, len(self._pending)
            batch[0].loop.call_soon(self._flush)
        else:
            self._scheduled = False

    def _wait_for_lock(self, batch: list[_Job[J, R]]) -> bool:
        """Put the batch back and try again later; False once it has waited too long."""
        now = time.monotonic()
        if self._busy_since is None:
            self._busy_since = now
        if now - self._busy_since > BUSY_GIVE_UP:
            self._busy_since, self._pause = None, BUSY_FIRST
            problem = StoreError(f"lageret {self.url}: låst av en annen skriver for lenge")
            for entry in batch:
                _fail(entry, problem)
            return False
        self._pending[:0] = batch
        batch[0].loop.call_later(self._pause, self._flush)
        self._pause = min(2 * self._pause, BUSY_MOST)
        return True

    def _settle_alone(self, batch: list[_Job[J, R]], error: Exception) -> None:
        # One job failed and took the batch with it: each again, alone, so that only it fails.
        if len(batch) == 1:
            _fail(batch[0], error)
            return
        for entry in batch:
            try:
                _settle([entry], self._write([entry]))
            except Exception as e:
                _fail(entry, e)

    def _write(self, batch: list[_Job[J, R]]) -> Sequence[R]:
        if self._db is not None and self._db.gone():
            # Ended by the server while it waited for this batch (PostgreSQL restarted, an
            # administrator): a new connection, rather than a batch failed on the old one.
            self._drop_connection()
        try:
            return self._write_once(batch)
        except _Uncommitted as first:
            # Lost before the batch's COMMIT was sent: nothing of it can have been committed,
            # so it is written once more, on a new connection, before any job is failed.
            log.warning("Forbindelsen til lageret ble brutt; skriver puljen på nytt (%s)", first)
            try:
                return self._write_once(batch)
            except _Uncommitted as again:
                raise again.error from None

    def _write_once(self, batch: list[_Job[J, R]]) -> Sequence[R]:
        if self._db is None:
            self._db = connect(self.url, migrate=False)
            if self._inline:
                # Never sleep in SQLite's busy handler on the loop: _flush tries again instead.
                self._db.execute("PRAGMA busy_timeout = 0")
                if self._checkpointer is None:
                    self._checkpointer = Checkpointer.start(self._db, CHECKPOINT_EVERY)
        worked = False  # past the work: the transaction's end may have committed it
        try:
            with _pipeline(self._db), self._db.transaction():
                if self._db.dialect == "postgresql" and not self.durable:
                    self._db.execute("SET LOCAL synchronous_commit = off")
                results = self.work(self._db, [entry.job for entry in batch])
                worked = True
        except sqlite3.OperationalError as e:
            if e.sqlite_errorcode in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED):
                raise  # the connection is fine: the transaction never began or was rolled back
            self._drop_connection()
            raise
        except Exception as e:
            self._drop_connection()
            if not worked and not self._inline and lost(e, self.url) is not None:
                raise _Uncommitted(e) from e
            raise
        if len(results) != len(batch):
            raise RuntimeError(f"{len(batch)} jobs gave {len(results)} results")
        if self._checkpointer is not None:
            self._checkpointer.wrote.set()
        return results

    def _drop_connection(self) -> None:
        # A connection that failed mid-transaction may be in any state: open a new one.
        if self._db is not None:
            db, self._db = self._db, None
            try:
                db.close()
            except Exception:
                log.exception("Kunne ikke lukke en forbindelse til lageret")

    # -- PostgreSQL: one thread ----------------------------------------------------------

    def _start_thread(self) -> None:
        if self._thread is None:
            with self._lock:
                if self._thread is None:
                    self._thread = threading.Thread(
                        target=self._serve, name="varsel-group-commit", daemon=True
                    )
                    self._thread.start()

    def _serve(self) -> None:
        while True:
            first = self._queue.get()
            if first is None:
                break
            batch = [first]
            stop = False
            while len(batch) < MAX_BATCH:
                try:
                    entry = self._queue.get_nowait()
                except queue.Empty:
                    break
                if entry is None:
                    stop = True
                    break
                batch.append(entry)
            try:
                results = self._write(batch)
            except Exception as e:
                # One job's own failure is found by running each alone; a store lost as the
                # batch committed may have committed it, and no job is run twice.
                if len(batch) == 1 or lost(e, self.url) is not None:
                    _post(batch, [], e)
                else:
                    for entry in batch:
                        try:
                            _post([entry], self._write([entry]), None)
                        except Exception as alone:
                            _post([entry], [], alone)
            else:
                _post(batch, results, None)
            if stop:
                break
        self._drop_connection()

    def close(self) -> None:
        """Stop the writer thread (after the batches queued) and close the connection."""
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join(timeout=30)
            self._thread = None
        else:
            self._drop_connection()
        if self._checkpointer is not None:
            self._checkpointer.close()
            self._checkpointer = None


class _Uncommitted(Exception):
    """The store was lost before the batch's COMMIT was sent (its error is `error`)."""

    def __init__(self, error: Exception) -> None:
        super().__init__(str(error))
        self.error = error


def _pipeline(db: Database) -> contextlib.AbstractContextManager[object]:
    """PostgreSQL's pipeline mode for a batch; nothing on SQLite."""
    # Statements go out without waiting for their answers until one is read (one round trip
    # for all sent so far) or the transaction ends. work() sends what it can before it reads.
    # The one piece of psycopg here: db.py has no pipeline.
    if db.dialect == "postgresql":
        return db.raw_connection().pipeline()  # type: ignore[no-any-return]
    return contextlib.nullcontext()


def _settle(batch: Sequence[_Job[J, R]], results: Sequence[R]) -> None:
    for entry, result in zip(batch, results, strict=True):
        if not entry.future.done():  # a view whose client went away cancelled its wait
            entry.future.set_result(result)


def _fail(entry: _Job[J, R], error: BaseException) -> None:
    if not entry.future.done():
        entry.future.set_exception(error)


def _post(batch: list[_Job[J, R]], results: Sequence[R], error: Exception | None) -> None:
    """From the writer thread: settle each job on its own loop, one wake-up per loop."""
    by_loop: dict[asyncio.AbstractEventLoop, list[tuple[_Job[J, R], R | None]]] = {}
    answers: Sequence[R | None] = results if error is None else [None] * len(batch)
    for entry, answer in zip(batch, answers, strict=True):
        by_loop.setdefault(entry.loop, []).append((entry, answer))
    for loop, pairs in by_loop.items():

        def settle(pairs: list[tuple[_Job[J, R], R | None]] = pairs) -> None:
            for entry, answer in pairs:
                if error is not None:
                    _fail(entry, error)
                elif not entry.future.done():
                    entry.future.set_result(answer)  # type: ignore[arg-type]

        # A loop that has closed has nobody waiting for these answers any more.
        with contextlib.suppress(RuntimeError):
            loop.call_soon_threadsafe(settle)
