"""Snapshots: each imported dump or change-feed page, with its file hash and counts."""

from __future__ import annotations

import dataclasses
import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from varsel.db import Database
from varsel.errors import UserError


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

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


SNAPSHOT_COLUMNS = tuple(f.name for f in dataclasses.fields(Snapshot))


def list_snapshots(db: Database, kind: str | None = None) -> list[Snapshot]:
    """Every snapshot, newest last."""
    sql = f"SELECT {', '.join(SNAPSHOT_COLUMNS)} FROM snapshots"
    params: tuple[Any, ...] = ()
    if kind:
        sql += " WHERE kind = ?"
        params = (kind,)
    return [Snapshot(*r) for r in db.query(sql + " ORDER BY id", params)]


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


def file_sha256(path: Path) -> str:
    """SHA-256 of a file, read in large blocks."""
    h = hashlib.sha256()
    with path.open("rb") as f:
        while block := f.read(1 << 20):
            h.update(block)
    return h.hexdigest()
