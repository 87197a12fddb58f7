"""Import registry dumps and change feeds into the store; each import is a snapshot.

An import is streaming (records pass through a staging table in batches), transactional (a
failure leaves the store exactly as it was) and idempotent (the newest file again changes
nothing; a newer dump updates changed units and marks vanished ones as gone; an older file
imported before is applied again, which is how a wrong import is undone).

A file that would mark more than MAX_GONE_SHARE of the kind's units gone, or whose records
are rejected more than MAX_REJECTED_SHARE, is refused unless the operator allows it: a
wrong or cut file must not quietly throw the registry away. A rejected record's unit is
never marked gone: the registry still has it.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from varsel import municipality, registry_fast, unit
from varsel.clock import utcnow_iso
from varsel.db import Database
from varsel.dump import DumpReader, Format, Kind, open_dump
from varsel.errors import UserError
from varsel.i18n import fmt_int, fmt_share
from varsel.progress import ProgressCallback, no_progress
from varsel.registry_extract import Reject, RejectLog, Rows, extracted
from varsel.snapshot import Snapshot, file_sha256, get_snapshot, insert_snapshot

STAGE_COLUMNS = (*unit.RECORD_COLUMNS, "record_hash", "record_index")
IMPORT_CACHE_KIB = 64 << 10  # SQLite page cache per schema during an import (default 2 MiB)
# Shares above which an import is refused without --allow-shrink. A real nightly dump marks
# far less than 1 % of the units gone and rejects next to nothing.
MAX_GONE_SHARE = 0.05  # of the store's current units of the dump's kind
MAX_REJECTED_SHARE = 0.10  # of the dump's records


class ShrinkRefused(UserError):
    """The import would mark too many units gone or reject too many records; nothing changed."""


@dataclass(frozen=True)
class ImportResult:
    """What one import did."""

    path: Path
    snapshot: Snapshot
    already_imported: bool
    rejects: tuple[Reject, ...]  # the first few, for display
    rejects_path: Path | None
    reapplied: int | None = None  # the earlier snapshot of the same file, applied again

    def summary(self) -> str:
        s = self.snapshot
        if self.already_imported:
            return (
                f"{self.path.name}: allerede importert som snapshot {s.id} "
                f"({s.imported_at[:10]}); ingenting endret."
            )
        text = (
            f"{self.path.name}: {fmt_int(s.records)} {s.kind} lest — {fmt_int(s.new)} nye, "
            f"{fmt_int(s.changed)} endret, {fmt_int(s.unchanged)} uendret, "
            f"{fmt_int(s.gone)} borte, {fmt_int(s.rejected)} avvist "
            f"(snapshot {s.id}, dumpdato {s.dump_date or 'ukjent'})."
        )
        if self.reapplied is not None:
            text += f" Filen var importert før (snapshot {self.reapplied}) og er brukt på nytt."
        if s.unknown_municipality:
            text += (
                f" {fmt_int(s.unknown_municipality)} med ukjent kommunenummer: de kan ikke "
                "velges etter område."
            )
        if s.rejected and self.rejects_path:
            text += f" Avviste poster er skrevet til {self.rejects_path}."
        return text

    def first_rejects(self) -> list[str]:
        return [r.describe() for r in self.rejects]


def _dump_date(path: Path, given: str | None) -> str:
    if given:
        try:
            return dt.date.fromisoformat(given).isoformat()
        except ValueError:
            raise UserError(f"--dump-date {given!r}: skriv datoen som ÅÅÅÅ-MM-DD") from None
    sidecar = path.with_name(path.name + ".meta.json")
    if sidecar.exists():
        try:
            meta = json.loads(sidecar.read_text("utf-8"))
            if isinstance(meta, dict) and isinstance(meta.get("dump_date"), str):
                return dt.date.fromisoformat(meta["dump_date"]).isoformat()
        except (OSError, ValueError):
            pass  # a broken sidecar only loses the date; the file's time is the fallback
    return dt.date.fromtimestamp(path.stat().st_mtime).isoformat()


# -- import ---------------------------------------------------------------------------


def import_dump(
    db: Database,
    path: Path,
    *,
    rejects_path: Path | None = None,
    dump_date: str | None = None,
    progress: ProgressCallback | None = None,
    actor: str | None = None,
    allow_shrink: bool = False,
) -> ImportResult:
    """Import one dump file (any format, either kind) as a new snapshot.

    allow_shrink: import even when the file would mark many units gone or reject many
    records (see MAX_GONE_SHARE and MAX_REJECTED_SHARE).
    """
    progress = progress or no_progress
    path = Path(path)
    with open_dump(path) as reader:
        info = reader.info
        sha = file_sha256(path)
        # The store holds the newest dump applied (feed pages aside), whatever its date.
        newest = db.query_one(
            "SELECT id, dump_date, sha256 FROM snapshots WHERE kind = ? AND source = 'dump' "
            "ORDER BY id DESC LIMIT 1",
            (info.kind.value,),
        )
        if newest is not None and newest[2] == sha:
            return ImportResult(path, get_snapshot(db, newest[0]), True, (), None)
        prior = db.query_one(
            "SELECT id, dump_date FROM snapshots WHERE sha256 = ? AND kind = ? "
            "AND source = 'dump' ORDER BY id DESC LIMIT 1",
            (sha, info.kind.value),
        )
        if prior is not None:
            # Applied before and since replaced: applying it again undoes what came after.
            date = _dump_date(path, dump_date) if dump_date else prior[1]
        else:
            date = _dump_date(path, dump_date)
            if newest and newest[1] and date < newest[1]:
                raise UserError(
                    f"{path}: dumpen er fra {date}, men lageret har allerede en nyere "
                    f"({newest[1]}, snapshot {newest[0]}); importer den nyeste dumpen"
                )
        rejects = RejectLog(rejects_path, str(path))
        try:
            with _staged(db, reader, progress) as stage, _page_cache(db), db.transaction():
                snapshot_id = _load(
                    db, reader, path, sha, date, rejects, progress, stage, allow_shrink
                )
                _audit(db, actor, snapshot_id)
        except ShrinkRefused:
            rejects.commit()  # the operator will want to see what was rejected
            raise
        except BaseException:
            rejects.discard()
            raise
        rejects.commit()
    # Fresh statistics let the planner pick the covering segment indexes.
    db.execute("ANALYZE" if db.dialect == "sqlite" else "ANALYZE units")
    return ImportResult(
        path,
        get_snapshot(db, snapshot_id),
        False,
        tuple(rejects.first),
        rejects_path,
        prior[0] if prior is not None else None,
    )


@contextlib.contextmanager
def _page_cache(db: Database) -> Iterator[None]:
    """A larger SQLite page cache while the import runs (memory only; durability unchanged).

    With the default 2 MiB, inserting 1.2 M units in file order misses the cache on nearly
    every orgnr of the primary key's B-tree: the insert took 1.8 times the CPU time.
    """
    if db.dialect != "sqlite":
        yield
        return
    before = [int(db.scalar(f"PRAGMA {schema}.cache_size")) for schema in ("main", "temp")]
    for schema in ("main", "temp"):
        db.execute(f"PRAGMA {schema}.cache_size = -{IMPORT_CACHE_KIB}")
    try:
        yield
    finally:
        for schema, size in zip(("main", "temp"), before, strict=True):
            db.execute(f"PRAGMA {schema}.cache_size = {size}")


def _audit(db: Database, actor: str | None, snapshot_id: int) -> None:
    # Last in the import's transaction: PostgreSQL holds the audit log's lock only to commit.
    from varsel import audit

    snap = get_snapshot(db, snapshot_id)
    audit.record(
        db,
        actor or audit.SYSTEM,
        audit.Action.REGISTRY_IMPORT,
        f"snapshot:{snapshot_id}",
        {
            "file": snap.file_name,
            "sha256": snap.sha256,
            "kind": snap.kind,
            "dump_date": snap.dump_date,
            "records": snap.records,
            "new": snap.new,
            "changed": snap.changed,
            "gone": snap.gone,
            "rejected": snap.rejected,
            "unknown_municipality": snap.unknown_municipality,
        },
    )


@contextlib.contextmanager
def _staged(
    db: Database, reader: DumpReader, progress: ProgressCallback
) -> Iterator[registry_fast.Stage | None]:
    """JSON dumps extracted by DuckDB before the transaction starts; None for the Python way."""
    if reader.info.fmt is not Format.JSON:
        yield None
        return
    with registry_fast.staged(db, reader.path, reader.info.kind, progress) as stage:
        yield stage


def _load(
    db: Database,
    reader: DumpReader,
    path: Path,
    sha: str,
    date: str,
    rejects: RejectLog,
    progress: ProgressCallback,
    stage: registry_fast.Stage | None = None,
    allow_shrink: bool = False,
) -> int:
    info = reader.info
    now = utcnow_iso()
    table = registry_fast.load_stage(db, stage) if stage is not None else None
    if table is not None and db.query_one(
        f"SELECT 1 FROM {table} WHERE reject = ? LIMIT 1", (registry_fast.ODD,)
    ):
        # A record of a shape the SQL does not translate: the Python extractor decides.
        registry_fast.drop_stage(db, table)
        table = None
    snapshot_id = insert_snapshot(
        db,
        kind=info.kind.value,
        source="dump",
        file_name=path.name,
        file_path=str(path.resolve()),
        sha256=sha,
        format=info.fmt.value,
        dump_date=date,
        imported_at=now,
    )
    direct = db.dialect == "sqlite" and not db.query_one(
        "SELECT 1 FROM units WHERE kind = ? LIMIT 1", (unit_kind(info.kind),)
    )
    shrink = _ShrinkCheck(path, info.kind, rejects, allow_shrink)
    if table is not None and stage is not None:
        shrink.records = stage.rows
        counts = _load_fast(
            db, table, stage, info.kind, snapshot_id, now, rejects, shrink, direct=direct
        )
        reader.records_read = stage.rows
        progress(info.size, info.size, stage.rows)
        registry_fast.drop_stage(db, table)
    elif direct:
        counts = _write_direct(db, extracted(reader, rejects, progress), snapshot_id, now, rejects)
    else:
        batches = extracted(reader, rejects, progress)
        _create_staging(db)
        for rows, contact_rows in batches:
            db.insert_rows("staging_units", STAGE_COLUMNS, rows)
            db.insert_rows(
                "staging_contacts", (*unit.CONTACT_COLUMNS, "record_index"), contact_rows
            )
        for orgnr, index in _duplicates(db):
            rejects.add(Reject(index + 1, None, orgnr, DUPLICATE))
        shrink.records = batches_records(reader)
        counts = _merge(db, info.kind, snapshot_id, now, shrink)
        _drop_staging(db)
    db.execute(
        "UPDATE snapshots SET records = ?, new = ?, changed = ?, unchanged = ?, gone = ?, "
        "rejected = ?, unknown_municipality = ? WHERE id = ?",
        (
            batches_records(reader),
            counts["new"],
            counts["changed"],
            counts["unchanged"],
            counts["gone"],
            rejects.count,
            _unknown_municipalities(db, info.kind),
            snapshot_id,
        ),
    )
    return snapshot_id


class _ShrinkCheck:
    """Refuses a merge that marks too many units gone or rejected too many records."""

    def __init__(self, path: Path, kind: Kind, rejects: RejectLog, allowed: bool) -> None:
        self.path = path
        self.kind = kind
        self.rejects = rejects
        self.allowed = allowed
        self.records = 0

    def __call__(self, counts: dict[str, int], current: int) -> None:
        """Raise ShrinkRefused past a limit; current: the kind's units not gone before."""
        if self.allowed or current == 0:  # nothing to lose in an empty store
            return
        gone, rejected = counts["gone"], self.rejects.count
        problems = []
        if gone > MAX_GONE_SHARE * current:
            problems.append(
                f"{fmt_int(gone)} av {fmt_int(current)} {self.kind.value} i lageret ville blitt "
                f"merket som borte ({fmt_share(gone, current)}; grensen er "
                f"{MAX_GONE_SHARE * 100:g}\u00a0%)"
            )
        if rejected > MAX_REJECTED_SHARE * self.records:
            problems.append(
                f"{fmt_int(rejected)} av {fmt_int(self.records)} poster ville blitt avvist "
                f"({fmt_share(rejected, self.records)}; grensen er "
                f"{MAX_REJECTED_SHARE * 100:g}\u00a0%)"
            )
        if not problems:
            return
        raise ShrinkRefused(
            f"{self.path}: ikke importert: {' og '.join(problems)}. Importen ville gitt "
            f"{fmt_int(counts['new'])} nye, {fmt_int(counts['changed'])} endret, "
            f"{fmt_int(counts['unchanged'])} uendret, {fmt_int(gone)} borte, "
            f"{fmt_int(rejected)} avvist; lageret er ikke endret. Er filen riktig, "
            "importer den med --allow-shrink."
        )


def _unknown_municipalities(db: Database, kind: Kind) -> int:
    """The kind's current units whose municipality number is not a 2024 one: no area has them."""
    numbers = ", ".join(f"'{n}'" for n in municipality.all_numbers())
    # The kind as a literal: SQLite uses the partial index units_area only for a literal.
    return int(
        db.scalar(
            f"SELECT count(*) FROM units WHERE kind = '{unit_kind(kind)}' "
            "AND gone_snapshot_id IS NULL AND municipality IS NOT NULL "
            f"AND municipality NOT IN ({numbers})"
        )
    )


DUPLICATE = "organisasjonsnummeret står flere ganger i filen"


def unit_kind(kind: Kind) -> str:
    """The units.kind value of a dump kind."""
    return "underenhet" if kind is Kind.UNDERENHETER else "enhet"


def batches_records(reader: DumpReader) -> int:
    """How many records the reader has handed out."""
    return reader.records_read


def _write_direct(
    db: Database,
    batches: Iterator[tuple[Rows, Rows]],
    snapshot_id: int,
    now: str,
    rejects: RejectLog,
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
            skip = _direct_duplicates(db, rows, rejects)
        conn.executemany(contact_insert, [c[:-1] for c in contact_rows if c[-1] not in skip])
    for _, sql in indexes:
        db.execute(sql)
    return {"new": new, "changed": 0, "unchanged": 0, "gone": 0}


def _direct_duplicates(db: Database, rows: Rows, rejects: RejectLog) -> set[int]:
    """Indices of rows that were not inserted because their orgnr was already there."""
    stored: dict[str, int] = dict(
        db.query(
            f"SELECT orgnr, record_index FROM units WHERE orgnr IN "
            f"({', '.join('?' for _ in rows)})",
            [r[0] for r in rows],
        )
    )
    skipped = {int(r[-1]) for r in rows if stored.get(r[0]) != r[-1]}
    for r in rows:
        if int(r[-1]) in skipped:
            rejects.add(Reject(int(r[-1]) + 1, None, r[0], DUPLICATE))
    return skipped


def _load_fast(
    db: Database,
    table: str,
    stage: registry_fast.Stage,
    kind: Kind,
    snapshot_id: int,
    now: str,
    rejects: RejectLog,
    shrink: _ShrinkCheck,
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
        _create_staging(db)
        for lo, hi in _email_chunks(db, table, stage):
            db.execute(
                f"INSERT INTO staging_units ({', '.join(STAGE_COLUMNS)}) "
                f"SELECT {cols}, s.record_hash, s.idx {rows}",
                (lo, hi),
            )
        db.execute(
            f"INSERT INTO staging_contacts ({contact_cols}, record_index) "
            f"SELECT {contact_cols}, record_index FROM fast_contacts"
        )
        for orgnr, index in _duplicates(db):
            rejects.add(Reject(index + 1, None, orgnr, DUPLICATE))
        counts = _merge(db, kind, snapshot_id, now, shrink)
        _drop_staging(db)
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
            for idx, orgnr in db.query(
                f"SELECT s.idx, s.orgnr FROM {table} s JOIN units u ON u.orgnr = s.orgnr "
                "WHERE s.reject IS NULL AND NOT (u.snapshot_id = ? AND u.record_index = s.idx) "
                "ORDER BY s.idx",
                (snapshot_id,),
            ):
                rejects.add(Reject(int(idx) + 1, None, orgnr, DUPLICATE))
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


def _create_staging(db: Database) -> None:
    _drop_staging(db)
    db.execute(
        f"CREATE TEMP TABLE staging_units AS SELECT {', '.join(STAGE_COLUMNS)} "
        "FROM units WHERE 1 = 0"
    )
    db.execute(
        f"CREATE TEMP TABLE staging_contacts AS SELECT {', '.join(unit.CONTACT_COLUMNS)}, "
        "0 AS record_index FROM contacts WHERE 1 = 0"
    )


def _drop_staging(db: Database) -> None:
    for table in ("staging_units", "staging_contacts", "touched", "staging_rejected"):
        db.execute(f"DROP TABLE IF EXISTS {table}")


def _duplicates(db: Database) -> list[tuple[str, int]]:
    """Records whose orgnr came earlier in the same file; they are dropped from staging."""
    db.execute("CREATE INDEX staging_units_orgnr ON staging_units (orgnr, record_index)")
    if db.dialect == "postgresql":
        db.execute("ANALYZE staging_units")
    dups = db.query(
        "SELECT s.orgnr, s.record_index FROM staging_units s WHERE EXISTS ("
        "SELECT 1 FROM staging_units t WHERE t.orgnr = s.orgnr AND t.record_index < s.record_index)"
        " ORDER BY s.record_index"
    )
    for orgnr, index in dups:
        db.execute("DELETE FROM staging_units WHERE orgnr = ? AND record_index = ?", (orgnr, index))
        db.execute(
            "DELETE FROM staging_contacts WHERE orgnr = ? AND record_index = ?", (orgnr, index)
        )
    return [(r[0], int(r[1])) for r in dups]


def _merge(
    db: Database, kind: Kind, snapshot_id: int, now: str, shrink: _ShrinkCheck
) -> dict[str, int]:
    """Apply the staged dump to units and contacts; returns the counts.

    Units go gone first, then shrink may refuse (and the transaction rolls back) before any
    unit is written.
    """
    unit_kind = "underenhet" if kind is Kind.UNDERENHETER else "enhet"
    current = int(
        db.scalar(
            f"SELECT count(*) FROM units WHERE kind = '{unit_kind}' AND gone_snapshot_id IS NULL"
        )
    )
    # The rejected records' units are still in the registry: kept as they were, never gone.
    db.execute("CREATE TEMP TABLE staging_rejected (orgnr TEXT)")
    db.insert_rows("staging_rejected", ("orgnr",), [(o,) for o in set(shrink.rejects.orgnrs)])
    db.execute("CREATE INDEX staging_rejected_orgnr ON staging_rejected (orgnr)")
    gone = db.execute(
        "UPDATE units SET gone_snapshot_id = ?, updated_at = ? WHERE kind = ? "
        "AND gone_snapshot_id IS NULL "
        "AND NOT EXISTS (SELECT 1 FROM staging_units s WHERE s.orgnr = units.orgnr) "
        "AND NOT EXISTS (SELECT 1 FROM staging_rejected r WHERE r.orgnr = units.orgnr)",
        (snapshot_id, now, unit_kind),
    ).rowcount
    db.execute(
        "CREATE TEMP TABLE touched AS SELECT s.orgnr AS orgnr, "
        "CASE WHEN u.orgnr IS NULL THEN 1 ELSE 0 END AS is_new "
        "FROM staging_units s LEFT JOIN units u ON u.orgnr = s.orgnr "
        "WHERE u.orgnr IS NULL OR u.record_hash <> s.record_hash "
        "OR u.gone_snapshot_id IS NOT NULL"
    )
    db.execute("CREATE INDEX touched_orgnr ON touched (orgnr, is_new)")
    staged = int(db.scalar("SELECT count(*) FROM staging_units"))
    new = int(db.scalar("SELECT count(*) FROM touched WHERE is_new = 1"))
    changed = int(db.scalar("SELECT count(*) FROM touched WHERE is_new = 0"))
    counts = {"new": new, "changed": changed, "unchanged": staged - new - changed, "gone": gone}
    shrink(counts, current)
    record_cols = ", ".join(unit.RECORD_COLUMNS)
    s_cols = ", ".join(f"s.{c}" for c in unit.RECORD_COLUMNS)
    db.execute(
        f"INSERT INTO units ({record_cols}, record_hash, snapshot_id, record_index, "
        "first_snapshot_id, gone_snapshot_id, updated_at) "
        f"SELECT {s_cols}, s.record_hash, ?, s.record_index, ?, CAST(NULL AS BIGINT), ? "
        "FROM staging_units s JOIN touched t ON t.orgnr = s.orgnr WHERE t.is_new = 1",
        (snapshot_id, snapshot_id, now),
    )
    if changed:
        db.execute(
            f"UPDATE units SET ({record_cols}, record_hash, snapshot_id, record_index, "
            f"gone_snapshot_id, updated_at) = (SELECT {s_cols}, s.record_hash, ?, "
            "s.record_index, CAST(NULL AS BIGINT), ? FROM staging_units s "
            "WHERE s.orgnr = units.orgnr) "
            "WHERE orgnr IN (SELECT orgnr FROM touched WHERE is_new = 0)",
            (snapshot_id, now),
        )
        db.execute(
            "DELETE FROM contacts WHERE source = 'registry' "
            "AND orgnr IN (SELECT orgnr FROM touched WHERE is_new = 0)"
        )
    contact_cols = ", ".join(unit.CONTACT_COLUMNS)
    c_cols = ", ".join(f"c.{c}" for c in unit.CONTACT_COLUMNS)
    db.execute(
        f"INSERT INTO contacts ({contact_cols}) SELECT {c_cols} "
        "FROM staging_contacts c JOIN touched t ON t.orgnr = c.orgnr"
    )
    return counts


# -- reading a unit's original record back -----------------------------------------------


def read_original(db: Database, orgnr: str) -> dict[str, Any]:
    """The unit's full record as the registry published it, read back from the dump file."""
    row = db.query_one(
        "SELECT u.record_index, s.file_path, s.sha256, s.source FROM units u "
        "JOIN snapshots s ON s.id = u.snapshot_id WHERE u.orgnr = ?",
        (orgnr,),
    )
    if row is None:
        raise UserError(f"{orgnr}: finnes ikke i lageret")
    index, file_path, sha, source = row
    if source != "dump" or index is None:
        raise UserError(f"{orgnr}: sist endret fra endringsloggen; originalen står i dumpen før")
    path = Path(file_path)
    if not path.exists():
        raise UserError(f"{orgnr}: dumpfilen {path} finnes ikke lenger")
    if file_sha256(path) != sha:
        raise UserError(f"{orgnr}: dumpfilen {path} er endret siden importen")
    for batch in _batches(path):
        offset = index - batch.first_index
        if 0 <= offset < len(batch.records):
            record: dict[str, Any] = batch.records[offset]
            return record
    raise UserError(f"{orgnr}: fant ikke posten i {path}")


def _batches(path: Path) -> Iterator[Any]:
    with open_dump(path) as reader:
        yield from reader
