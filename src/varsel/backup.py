"""A consistent copy of a SQLite store, taken while the site and the senders keep writing.

Copying the file with `cp` while varsel runs can give a copy that SQLite calls corrupt: the
last commits live in the `-wal` file beside it, and a copy of the two taken at different
moments does not fit together. SQLite's online backup copies the store as one transaction saw
it (a reader in WAL mode: writers go on meanwhile), into a new file beside the target; the copy
is checked (`PRAGMA quick_check`), written to disk, and only then given the target's name. A
copy holds everything the store holds, personal data included, so making one is recorded in the
audit log. PostgreSQL stores are backed up with PostgreSQL's own tools (pg_dump).
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import time
import urllib.parse
from dataclasses import dataclass
from pathlib import Path

from varsel import audit
from varsel.db import Database, normalise_url
from varsel.errors import UserError, os_reason
from varsel.i18n import fmt_bytes, fmt_seconds


@dataclass(frozen=True)
class Backup:
    """A copy made: where, how large, how long it took."""

    source: Path
    path: Path
    bytes: int
    seconds: float

    def summary(self) -> str:
        return (
            f"Sikkerhetskopi av {self.source} skrevet til {self.path} "
            f"({fmt_bytes(self.bytes)}, kontrollert) på {fmt_seconds(self.seconds)}."
        )


def back_up(db: Database, target: Path, *, actor: str) -> Backup:
    """Copy the store to `target` (a new file), check the copy, and record it in the audit log."""
    dialect, source_name = normalise_url(db.url)
    if dialect != "sqlite":
        raise UserError(
            "sikkerhetskopi med varsel gjelder et SQLite-lager; ta kopi av et PostgreSQL-lager "
            "med PostgreSQL sine egne verktøy (pg_dump --format=custom)"
        )
    source = Path(source_name).expanduser().resolve()
    target = Path(target).expanduser()
    _check_target(source, target)
    started = time.monotonic()
    temporary = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    try:
        _copy(db, temporary)
        problem = _check(temporary)
        if problem is not None:
            raise UserError(f"{target}: kopien er ikke hel ({problem}); {source} er urørt")
        _sync(temporary)
        # A link, not a rename: a file that appeared at the target meanwhile is not replaced.
        try:
            os.link(temporary, target)
        except FileExistsError:
            raise UserError(f"{target}: filen finnes allerede; velg et nytt navn") from None
        _sync(target.parent)
    except OSError as e:
        raise UserError(f"{target}: kan ikke skrive kopien: {os_reason(e)}") from None
    except sqlite3.Error as e:
        # A full disk, a folder that vanished: SQLite's own words, in one line.
        raise UserError(f"{target}: kopien kunne ikke lages ({e}); {source} er urørt") from None
    finally:
        for leftover in (temporary, temporary.with_name(temporary.name + "-journal")):
            with contextlib.suppress(OSError):
                leftover.unlink()
    made = Backup(source, target.resolve(), target.stat().st_size, time.monotonic() - started)
    with db.transaction():
        detail = {"what": "store_backup", "file": str(made.path), "bytes": made.bytes}
        audit.record(db, actor, audit.Action.PERSONAL_DATA_EXPORT, "store", detail)
    return made


def _check_target(source: Path, target: Path) -> None:
    if target.exists() or target.is_symlink():
        raise UserError(f"{target}: filen finnes allerede; velg et nytt navn")
    if not target.parent.is_dir():
        raise UserError(f"{target}: mappen {target.parent} finnes ikke")
    if target.resolve() == source:
        raise UserError(f"{target}: det er lageret selv")


def _copy(db: Database, temporary: Path) -> None:
    """The store as one read transaction sees it, in one step (writers are not held up)."""
    connection: sqlite3.Connection = db.raw_connection()
    # Readable by its owner alone, as it holds personal data; SQLite keeps the mode it finds.
    os.close(os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    copy = sqlite3.connect(temporary)
    try:
        # One step: a copy made in several steps starts again whenever another connection
        # writes between them, and the senders write all the time.
        connection.backup(copy, pages=-1)
        # One file, with no -wal beside it: what a copy moved elsewhere should be. varsel
        # puts a store back in WAL mode when it opens it.
        copy.execute("PRAGMA journal_mode = DELETE")
    finally:
        copy.close()


def _check(path: Path) -> str | None:
    """None when SQLite finds the copy sound; else its first complaint."""
    # Quoted: a "#", "?" or "%" in the name would make SQLite open (and create) another file.
    uri = f"file:{urllib.parse.quote(str(path.resolve()))}?mode=ro"
    with contextlib.closing(sqlite3.connect(uri, uri=True)) as copy:
        found = copy.execute("PRAGMA quick_check").fetchone()
    answer = str(found[0]) if found else "intet svar"
    return None if answer == "ok" else answer


def _sync(path: Path) -> None:
    """Write a file (or a folder's entry for one) to disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
