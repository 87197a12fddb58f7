"""A SQLite store's WAL checkpointed from a thread, for a writer that must not wait for it.

A writer left alone runs SQLite's automatic checkpoint at the end of the commit that passes
~1,000 pages of WAL, with its fsyncs: 10–80 ms during which every answer or every message
waiting for its durable mark waits too. A `Checkpointer` turns the writer's automatic
checkpoints off and checkpoints PASSIVE from a thread of its own (it neither waits for nor
blocks the writer or readers; the thread's SQLite calls release the GIL). The WAL reaches the
database as it would have, only off the writer's path.
"""

from __future__ import annotations

import contextlib
import logging
import threading

from varsel.db import Database, connect

log = logging.getLogger("varsel.wal")


class Checkpointer:
    """Checkpoints the WAL every `every` seconds after the writer said it wrote (`wrote`)."""

    def __init__(self, writer: Database, every: float) -> None:
        self.writer = writer
        self.every = every
        self.wrote = threading.Event()  # set by the writer after a commit: work to do
        self._stop = threading.Event()
        writer.execute("PRAGMA wal_autocheckpoint = 0")
        self._thread = threading.Thread(target=self._run, name="varsel-checkpoint", daemon=True)
        self._thread.start()

    @classmethod
    def start(cls, writer: Database, every: float) -> Checkpointer | None:
        """A checkpointer for a writer on a SQLite store in WAL mode; None for anything else."""
        if writer.dialect != "sqlite":
            return None
        if str(writer.scalar("PRAGMA journal_mode")).lower() != "wal":
            return None
        return cls(writer, every)

    def _run(self) -> None:
        db: Database | None = None
        try:
            while not self._stop.wait(self.every):
                if not self.wrote.is_set():
                    continue
                self.wrote.clear()
                try:
                    if db is None:
                        db = connect(self.writer.url, migrate=False)
                    db.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
                except Exception:
                    # Tried again at the next tick; the writer's own commits report what is
                    # wrong with the store (busy, a full disk).
                    log.exception("Kunne ikke skrive WAL-en inn i lageret; prøver igjen")
                    if db is not None:
                        with contextlib.suppress(Exception):
                            db.close()
                        db = None
        finally:
            if db is not None:
                db.close()

    def close(self) -> None:
        """Stop after the checkpoint under way, and give the writer its own checkpoints back."""
        self._stop.set()
        self._thread.join(timeout=30)
        with contextlib.suppress(Exception):  # the writer's connection may be closed already
            self.writer.execute("PRAGMA wal_autocheckpoint = 1000")
