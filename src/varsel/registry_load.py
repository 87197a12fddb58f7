"""An import's rows written into units and contacts: the first load, or a DuckDB stage.

Two ways beside registry_merge's staging and merge: the first import of a kind into an empty
SQLite store goes straight into units (no staging, no merge), and the rows DuckDB extracted
(registry_fast) are loaded in chunks with their e-mail reach, merged or direct. The secondary
indexes of an empty store are dropped and built once at the end.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

from varsel import import_checks, registry_fast, registry_merge, unit
from varsel.db import Database
from varsel.dump import Kind
from varsel.registry_extract import Reject, RejectLog, Rows


def write_direct(
    db: Database,
    batches: Iterator[tuple[Rows, Rows]],
    snapshot_id: int,
    now: str,
    rejects: RejectLog,
    kind: Kind,
) -> dict[str, int]:
    """First import of a kind into SQLite: straight into units, no staging and no merge."""
    cols = ", ".join(unit.UNIT_COLUMNS)
    marks = ", ".join("?" for _ in unit.UNIT_COLUMNS)
    insert = f"INSERT INTO units ({cols}) VALUES ({marks}) ON CONFLICT (orgnr) DO NOTHING"
    contact_insert = (
        f"INSERT INTO contacts ({', '.join(unit.CONTACT_COLUMNS)}) "
        f"VALUES ({', '.join('?' for _ in unit.CONTACT_COLUMNS)})"
    )
    conn = db.raw_connection()
    # Into an empty table, building the secondary indexes once at the end is much cheaper
    # than keeping them up to date row by row; DDL is part of the transaction in SQLite.
    empty = not db.query_one("SELECT 1 FROM units LIMIT 1")
    indexes = (
        db.query(
            "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name IN "
            "('units', 'contacts') AND sql IS NOT NULL"
        )
        if empty
        else []
    )
    for name, _ in indexes:
        db.execute(f"DROP INDEX {name}")
    new = 0
    for rows, contact_rows in batches:
        before = conn.total_changes
        conn.executemany(
            insert, [(*r[:-1], snapshot_id, r[-1], snapshot_id, None, now) for r in rows]
        )
        inserted = conn.total_changes - before
        new += inserted
        skip: set[int] = set()
        if inserted < len(rows):
            skip = _direct_duplicates(db, rows, rejects, kind, snapshot_id)
        conn.executemany(contact_insert, [c[:-1] for c in contact_rows if c[-1] not in skip])
    for _, sql in indexes:
        db.execute(sql)
    return {"new": new, "changed": 0, "unchanged": 0, "gone": 0}


def _direct_duplicates(
    db: Database, rows: Rows, rejects: RejectLog, kind: Kind, snapshot_id: int
) -> set[int]:
    """Indices of rows that were not inserted because their orgnr was already there."""
    # The row inserted is this snapshot's at its index: a unit of the other kind may have the
    # same index in its own snapshot.
    stored: dict[str, tuple[int | None, str]] = {
        orgnr: (index if snapshot == snapshot_id else None, stored_kind)
        for orgnr, index, snapshot, stored_kind in db.query(
            f"SELECT orgnr, record_index, snapshot_id, kind FROM units WHERE orgnr IN "
            f"({', '.join('?' for _ in rows)})",
            [r[0] for r in rows],
        )
    }
    skipped = {int(r[-1]) for r in rows if stored.get(r[0], (None,))[0] != r[-1]}
    for r in rows:
        if int(r[-1]) in skipped:
            reason = registry_merge.rejection(kind, stored[r[0]][1])
            rejects.add(Reject(int(r[-1]) + 1, None, r[0], reason))
    return skipped


def load_fast(
    db: Database,
    table: str,
    stage: registry_fast.Stage,
    kind: Kind,
    snapshot_id: int,
    now: str,
    rejects: RejectLog,
    shrink: import_checks.ShrinkCheck,
    *,
    direct: bool,
) -> dict[str, int]:
    """Load the rows DuckDB extracted: rejects, then units in chunks with their e-mail reach."""
    accepted = stage.rows
    for idx, code, raw_orgnr, orgnr, employees in db.execute(
        f"SELECT idx, reject, raw_orgnr, orgnr, employees FROM {table} "
        "WHERE reject IS NOT NULL ORDER BY idx"
    ):
        reason = registry_fast.reject_reason(code, orgnr, kind, employees)
        rejects.add(Reject(int(idx) + 1, None, raw_orgnr, reason))
        accepted -= 1
    reach = "CASE WHEN e.idx IS NULL THEN s.reach ELSE 'email' END"
    cols = ", ".join([*(f"s.{c}" for c in unit.RECORD_COLUMNS[:-1]), reach])
    rows = (
        f"FROM {table} s LEFT JOIN fast_email e ON e.idx = s.idx "
        "WHERE s.idx >= ? AND s.idx < ? AND s.reject IS NULL ORDER BY s.idx"
    )
    contact_cols = ", ".join(unit.CONTACT_COLUMNS)
    if not direct:
        registry_merge.create_staging(db)
        for lo, hi in _email_chunks(db, table, stage):
            db.execute(
                f"INSERT INTO staging_units ({', '.join(registry_merge.STAGE_COLUMNS)}) "
                f"SELECT {cols}, s.record_hash, s.idx {rows}",
                (lo, hi),
            )
        db.execute(
            f"INSERT INTO staging_contacts ({contact_cols}, record_index) "
            f"SELECT {contact_cols}, record_index FROM fast_contacts"
        )
        for orgnr, index, reason in registry_merge.refused(db, kind):
            rejects.add(Reject(index + 1, None, orgnr, reason))
        counts = registry_merge.merge(db, kind, snapshot_id, now, shrink)
        registry_merge.drop_staging(db)
    else:
        indexes = _drop_indexes(db)
        new = 0
        for lo, hi in _email_chunks(db, table, stage):
            db.execute(
                f"INSERT INTO units ({', '.join(unit.UNIT_COLUMNS)}) SELECT * FROM ("
                f"SELECT {cols}, s.record_hash, ?, s.idx, ?, NULL, ? {rows}) "
                "WHERE true ON CONFLICT (orgnr) DO NOTHING",
                (snapshot_id, snapshot_id, now, lo, hi),
            )
            new += int(db.scalar("SELECT changes()"))
        if new < accepted:  # an orgnr came twice in the file
            for idx, orgnr, stored_kind in db.query(
                f"SELECT s.idx, s.orgnr, u.kind FROM {table} s JOIN units u "
                "ON u.orgnr = s.orgnr WHERE s.reject IS NULL "
                "AND NOT (u.snapshot_id = ? AND u.record_index = s.idx) ORDER BY s.idx",
                (snapshot_id,),
            ):
                reason = registry_merge.rejection(kind, stored_kind)
                rejects.add(Reject(int(idx) + 1, None, orgnr, reason))
        c_cols = ", ".join(f"c.{c}" for c in unit.CONTACT_COLUMNS)
        db.execute(
            f"INSERT INTO contacts ({contact_cols}) SELECT {c_cols} FROM fast_contacts c "
            "JOIN units u ON u.orgnr = c.orgnr AND u.record_index = c.record_index "
            "AND u.snapshot_id = ?",
            (snapshot_id,),
        )
        _create_indexes(db, indexes)
        counts = {"new": new, "changed": 0, "unchanged": 0, "gone": 0}
    for temp in ("fast_email", "fast_contacts"):
        db.execute(f"DROP TABLE IF EXISTS {temp}")
    return counts


def _email_chunks(
    db: Database, table: str, stage: registry_fast.Stage
) -> Iterator[tuple[int, int]]:
    """Ranges of stage idx, each once its parsed e-mail fields are in the temp tables.

    fast_email holds the records with a usable address, fast_contacts their contact rows.
    SQLite: parsed on a thread one chunk ahead (registry_fast.EmailParse). PostgreSQL: in
    this thread, in one chunk (its stage is a temp table without an index on idx).
    """
    for temp in ("fast_email", "fast_contacts"):
        db.execute(f"DROP TABLE IF EXISTS {temp}")
    key = "INTEGER PRIMARY KEY" if db.dialect == "sqlite" else "BIGINT PRIMARY KEY"
    db.execute(f"CREATE TEMP TABLE fast_email (idx {key}, orgnr TEXT NOT NULL)")
    db.execute(
        f"CREATE TEMP TABLE fast_contacts AS SELECT {', '.join(unit.CONTACT_COLUMNS)}, "
        "0 AS record_index FROM contacts WHERE 1 = 0"
    )
    columns = (*unit.CONTACT_COLUMNS, "record_index")
    if stage.emails is not None:
        for lo, hi, usable, contact_rows in stage.emails.chunks():
            db.insert_rows("fast_email", ("idx", "orgnr"), usable)
            db.insert_rows("fast_contacts", columns, contact_rows)
            yield lo, hi
        return
    usable, contact_rows = registry_fast.parse_emails(
        db.execute(
            f"SELECT idx, orgnr, form, email FROM {table} "
            "WHERE reject IS NULL AND email IS NOT NULL ORDER BY idx"
        )
    )
    db.insert_rows("fast_email", ("idx", "orgnr"), usable)
    db.insert_rows("fast_contacts", columns, contact_rows)
    if db.dialect == "postgresql":
        db.execute("ANALYZE fast_email")
    yield 0, stage.rows


def _drop_indexes(db: Database) -> list[tuple[str, str, str]]:
    """Drop the secondary indexes of an empty units table: building them once is cheaper."""
    if db.query_one("SELECT 1 FROM units LIMIT 1"):
        return []
    indexes: list[tuple[str, str, str]] = db.query(
        "SELECT name, sql, tbl_name FROM sqlite_master WHERE type = 'index' AND tbl_name IN "
        "('units', 'contacts') AND sql IS NOT NULL"
    )
    for name, _, _ in indexes:
        db.execute(f"DROP INDEX {name}")
    return indexes


def _create_indexes(db: Database, indexes: list[tuple[str, str, str]]) -> None:
    # SQLite sorts for CREATE INDEX on worker threads when allowed to.
    threads = db.scalar("PRAGMA threads")
    db.execute(f"PRAGMA threads = {max(2, os.cpu_count() or 1)}")
    try:
        for _, sql, _ in indexes:
            db.execute(sql)
    finally:
        db.execute(f"PRAGMA threads = {int(threads)}")
