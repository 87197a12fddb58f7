"""Snapshots: each imported dump or change-feed page, with its file hash and counts."""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from varsel.clock import utcnow
from varsel.db import Database
from varsel.errors import N_, Text, UserError

# Registry data older than this many days is flagged as old: on the console's dashboard and
# when a campaign is created from it. The registry changes every night; a week's changes are
# a few hundred businesses in a police district, more is worth a new dump.
STALE_DAYS = 7


@dataclass(frozen=True)
class Snapshot:
    """One imported dump or change-feed page."""

    id: int
    kind: str
    source: str
    file_name: str
    file_path: str
    sha256: str
    format: str
    dump_date: str | None
    imported_at: str
    records: int
    new: int
    changed: int
    unchanged: int
    gone: int
    removed: int
    skipped: int
    rejected: int
    unknown_municipality: int  # units whose municipality number no 2024 area has
    # A dump: its date is the file's modification time (no --dump-date, no .meta.json). A feed
    # page: never; its dump_date is the day of the newest entry it applied (None: none).
    dump_date_guessed: bool = False

    def __post_init__(self) -> None:
        # SQLite hands the flag back as 0 or 1.
        object.__setattr__(self, "dump_date_guessed", bool(self.dump_date_guessed))

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


SNAPSHOT_COLUMNS = tuple(f.name for f in dataclasses.fields(Snapshot))


def list_snapshots(
    db: Database, kind: str | None = None, *, newest: int | None = None
) -> list[Snapshot]:
    """Every snapshot (or the `newest` ones), newest last."""
    sql = f"SELECT {', '.join(SNAPSHOT_COLUMNS)} FROM snapshots"
    params: tuple[Any, ...] = ()
    if kind:
        sql += " WHERE kind = ?"
        params = (kind,)
    if newest is not None:
        # A year of daily change-feed pages is thousands of rows: read only those shown.
        rows = db.query(sql + " ORDER BY id DESC LIMIT ?", (*params, newest))
        return [Snapshot(*r) for r in reversed(rows)]
    return [Snapshot(*r) for r in db.query(sql + " ORDER BY id", params)]


def count_snapshots(db: Database) -> int:
    """How many snapshots the store has."""
    return int(db.scalar("SELECT count(*) FROM snapshots") or 0)


def get_snapshot(db: Database, snapshot_id: int) -> Snapshot:
    """One snapshot by id."""
    row = db.query_one(
        f"SELECT {', '.join(SNAPSHOT_COLUMNS)} FROM snapshots WHERE id = ?", (snapshot_id,)
    )
    if row is None:
        raise UserError(f"snapshot {snapshot_id} finnes ikke")
    return Snapshot(*row)


def latest_snapshot(
    db: Database, kind: str = "enheter", source: str | None = None
) -> Snapshot | None:
    """The newest snapshot of a kind (of a source: "dump" or "feed"), or None if there is none."""
    sql = f"SELECT {', '.join(SNAPSHOT_COLUMNS)} FROM snapshots WHERE kind = ?"
    params: tuple[str, ...] = (kind,)
    if source is not None:
        sql += " AND source = ?"
        params += (source,)
    row = db.query_one(sql + " ORDER BY id DESC LIMIT 1", params)
    return Snapshot(*row) if row else None


def insert_snapshot(db: Database, **values: Any) -> int:
    cols = ", ".join(values)
    marks = ", ".join("?" for _ in values)
    return int(
        db.execute(
            f"INSERT INTO snapshots ({cols}) VALUES ({marks}) RETURNING id", tuple(values.values())
        ).fetchone()[0]
    )


def set_dump_date(db: Database, snapshot_id: int, date: str) -> None:
    """Give a dump's snapshot the date the operator gave for its guessed one."""
    db.execute(
        "UPDATE snapshots SET dump_date = ?, dump_date_guessed = ? WHERE id = ?",
        (date, False, snapshot_id),
    )


def file_sha256(path: Path) -> str:
    """SHA-256 of a file, read in large blocks."""
    h = hashlib.sha256()
    with path.open("rb") as f:
        while block := f.read(1 << 20):
            h.update(block)
    return h.hexdigest()


@dataclass(frozen=True)
class DataAge:
    """How old the registry's data of a kind is: the dump's date, or the newest change since."""

    kind: str
    dump: Snapshot  # the dump applied last: the store holds it
    as_of: str | None  # ÅÅÅÅ-MM-DD: the newest applied change's day, else the dump's date
    from_feed: bool  # as_of is a change-feed entry's day, not the dump's date
    days: int | None  # days from as_of to today (Norway); None when the date is unknown

    @property
    def stale(self) -> bool:
        """Older than STALE_DAYS, or of an unknown date."""
        return self.days is None or self.days > STALE_DAYS

    @property
    def guessed(self) -> bool:
        """The age rests on a dump date guessed from the file's time."""
        return not self.from_feed and self.dump.dump_date_guessed

    def describe(self) -> Text:
        """One Bokmål line: the data's date, where it comes from, and its age (a Text)."""
        if self.as_of is None or self.days is None:
            return Text(
                "registerdata av ukjent dato (%(kind)s, snapshot %(id)s)",
                kind=self.kind,
                id=self.dump.id,
            )
        where = Text(
            N_("nyeste endring fra endringsloggen")
            if self.from_feed
            else (
                N_("dumpdato, gjettet fra filens endringstid") if self.guessed else N_("dumpdato")
            )
        )
        if self.days == 1:
            return Text(
                "registerdata fra %(date)s (%(where)s), 1 dag gamle", date=self.as_of, where=where
            )
        return Text(
            "registerdata fra %(date)s (%(where)s), %(days)s dager gamle",
            date=self.as_of,
            where=where,
            days=self.days,
        )


def data_age(db: Database, kind: str = "enheter", today: dt.date | None = None) -> DataAge | None:
    """The age of the registry's data of a kind, or None before any dump is imported.

    The store holds the dump applied last (an older one imported again undoes a wrong import)
    and the change-feed pages applied after it: the newest change they applied dates the data,
    else the dump's date. Not the import time: a year-old dump imported today is a year old.
    """
    dump = latest_snapshot(db, kind, "dump")
    if dump is None:
        return None
    newest_change = db.scalar(
        "SELECT max(dump_date) FROM snapshots WHERE kind = ? AND source = 'feed' AND id > ?",
        (kind, dump.id),
    )
    # A Fjernet entry applies whatever its date: one older than the dump does not date the data.
    from_feed = bool(newest_change) and (dump.dump_date is None or newest_change >= dump.dump_date)
    as_of = newest_change if from_feed else dump.dump_date
    if as_of is None:
        return DataAge(kind, dump, None, False, None)
    today = today or norway_today()
    days = max(0, (today - dt.date.fromisoformat(as_of[:10])).days)
    return DataAge(kind, dump, as_of[:10], from_feed, days)


# What `campaign create` prints (after «advarsel: »), the console's campaign pages show and the
# linter warns of, over old data.
STALE_WARNING = N_(
    "Lageret har %(age)s, eldre enn %(stale_days)s dager; hent endringene siden med «varsel "
    "registry update --fetch» (eller en ny dump) og lag kampanjen på nytt hvis mye kan ha "
    "endret seg."
)


def stale_warning(db: Database, kind: str = "enheter") -> Text | None:
    """One line (a Text, Bokmål as the CLI prints it) when the kind's data is older than
    STALE_DAYS (or undated), else None."""
    age = data_age(db, kind)
    if age is None or not age.stale:
        return None
    return Text(STALE_WARNING, age=age.describe(), stale_days=STALE_DAYS)


def norway_today() -> dt.date:
    """Today in Norway, where the registry dates its dumps."""
    return utcnow().astimezone(ZoneInfo("Europe/Oslo")).date()


REGISTER_LOCK = 7254200  # PostgreSQL advisory lock of the enheter register; +1 for underenheter


def lock_register(db: Database, kind: str) -> None:
    """In the caller's transaction: one dump import or change-feed page of a register at a time.

    SQLite's BEGIN IMMEDIATE already serialises writers. On PostgreSQL two runs at once (a
    timer and an operator) would each find a page new, or a dump not yet imported, and apply
    it twice.
    """
    if db.dialect == "postgresql":
        index = ("enheter", "underenheter").index(kind)
        # Per schema: advisory locks are the database's, and two stores in one database
        # (a test and a production schema) must not wait for each other's imports.
        db.execute(
            "SELECT pg_advisory_xact_lock(?, hashtext(current_schema()))",
            (REGISTER_LOCK + index,),
        )
