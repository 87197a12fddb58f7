"""Ctrl-C during DuckDB's work: a KeyboardInterrupt at once, never DuckDB's own error."""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pytest

from varsel import registry_fast
from varsel.duckdb_interrupt import interruptible
from varsel.synth import write_dump


@pytest.fixture(autouse=True)
def ctrl_c_raises() -> Iterator[None]:
    """Python's own SIGINT handler, as a command run from a terminal has."""
    before = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, before)


def ctrl_c() -> None:
    os.kill(os.getpid(), signal.SIGINT)


def test_ctrl_c_stops_a_long_query_at_once() -> None:
    con = duckdb.connect()
    threading.Timer(0.3, ctrl_c).start()
    # Without the interruption the query runs for minutes: stopped after 30 s anyway, with
    # DuckDB's own error, so that a failure does not hang the suite.
    backstop = threading.Timer(30, con.interrupt)
    backstop.start()
    started = time.monotonic()
    try:
        with pytest.raises(KeyboardInterrupt), interruptible(con):
            con.execute("SELECT count(*) FROM range(100000000000) t(i) WHERE i % 7 = 3").fetchone()
    finally:
        backstop.cancel()
    assert time.monotonic() - started < 10


def test_ctrl_c_while_a_dump_is_extracted_is_a_keyboard_interrupt(tmp_path: Path) -> None:
    dump = tmp_path / "enheter.json"
    write_dump(dump, units=100_000, seed=1)
    # The key is pressed by another process (as a terminal does), so no thread of this one has
    # to get the interpreter in time; a press that comes after the extraction lands inside
    # pytest.raises below, never in the next test, and fails the last assert.
    finished = False
    presser = subprocess.Popen(["sh", "-c", f"sleep 0.3; kill -INT {os.getpid()}"])
    try:
        with pytest.raises(KeyboardInterrupt):
            registry_fast.stage_sqlite(dump, "enheter", tmp_path, lambda *_: None)
            finished = True
            presser.wait()
            time.sleep(5)
    finally:
        presser.kill()
        presser.wait()
    assert not finished, "the extraction ended before Ctrl-C was pressed"
    # Nothing of the interruption's machinery is left behind.
    assert signal.set_wakeup_fd(-1) == -1
