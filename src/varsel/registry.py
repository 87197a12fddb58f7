"""Import registry dumps and change feeds into the store; each import is a snapshot.

An import is streaming (records pass through a staging table in batches), transactional (a
failure leaves the store exactly as it was) and idempotent (the newest file again changes
nothing; a newer dump updates changed units and marks vanished ones as gone; an older file
imported before is applied again, which is how a wrong import is undone).

A file that would mark too many of the kind's units gone, or whose records are rejected too
often, is refused unless the operator allows it (import_checks): a wrong or cut file must not
quietly throw the registry away. A rejected record's unit is never marked gone: the registry
still has it. Beside the import: the staging tables and the merge (registry_merge), JSON
dumps read by DuckDB (registry_fast), records to rows in Python and the rejects file
(registry_extract), and the rows written straight or from DuckDB's stage (registry_load).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from varsel import import_checks, municipality, registry_fast, registry_load, registry_merge, unit
from varsel.clock import utcnow_iso
from varsel.db import Database
from varsel.dump import DumpReader, Format, Kind, open_dump
from varsel.erasure import erase_unit
from varsel.errors import UserError
from varsel.i18n import fmt_int
from varsel.import_checks import EarlierImports
from varsel.progress import ProgressCallback, no_progress
from varsel.registry_extract import Reject, RejectLog, extracted
from varsel.registry_merge import unit_kind
from varsel.snapshot import (
    Snapshot,
    file_sha256,
    get_snapshot,
    insert_snapshot,
    lock_register,
    set_dump_date,
)

IMPORT_CACHE_KIB = 64 << 10  # SQLite page cache per schema during an import (default 2 MiB)


@dataclass(frozen=True)
class ImportResult:
    """What one import did."""

    path: Path
    snapshot: Snapshot
    already_imported: bool
    rejects: tuple[Reject, ...]  # the first few, for display
    rejects_path: Path | None
    reapplied: int | None = None  # the earlier snapshot of the same file, applied again
    date_guessed: bool = False  # no date given or from the registry: see guessed_from
    corrected_from: str | None = None  # already imported: its guessed date, now corrected
    guessed_from: str = import_checks.FROM_FILE_TIME  # where a guessed date came from

    def summary(self) -> str:
        s = self.snapshot
        if self.already_imported:
            head = f"{self.path.name}: allerede importert som snapshot {s.id}"
            if self.corrected_from == s.dump_date:
                return f"{head}; dumpdatoen {s.dump_date} er bekreftet og ikke lenger gjettet."
            if self.corrected_from is not None:
                return (
                    f"{head}; dumpdatoen er rettet fra {self.corrected_from} (gjettet) til "
                    f"{s.dump_date}. Ellers er ingenting endret."
                )
            date = s.dump_date or "ukjent"
            if s.dump_date_guessed:
                return (
                    f"{head} (dumpdato {date}, gjettet fra filens endringstid); ingenting endret. "
                    "Er datoen feil, importer filen igjen med --dump-date ÅÅÅÅ-MM-DD."
                )
            return f"{head} (dumpdato {date}); ingenting endret."
        text = (
            f"{self.path.name}: {fmt_int(s.records)} {s.kind} lest — {fmt_int(s.new)} nye, "
            f"{fmt_int(s.changed)} endret, {fmt_int(s.unchanged)} uendret, "
            f"{fmt_int(s.gone)} borte, {fmt_int(s.rejected)} avvist "
            f"(snapshot {s.id}, dumpdato {s.dump_date or 'ukjent'})."
        )
        if self.reapplied is not None:
            text += f" Filen var importert før (snapshot {self.reapplied}) og er brukt på nytt."
        if s.removed:
            text += (
                f" {fmt_int(s.removed)} er slettet igjen: registeret har fjernet dem etter at "
                "dumpen ble laget."
            )
        if self.date_guessed:
            text += (
                f" Dumpdatoen {s.dump_date} er gjettet {self.guessed_from}: er den feil, "
                "importer filen igjen med --dump-date "
                "ÅÅÅÅ-MM-DD før du legger inn endringssider (de ser av datoen hvilke endringer "
                "dumpen alt har)."
            )
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
    records (see import_checks.MAX_GONE_SHARE and MAX_REJECTED_SHARE).
    """
    callback = progress or no_progress

    @contextlib.contextmanager
    def bar(_: str) -> Iterator[ProgressCallback]:
        yield callback

    (result,) = import_dumps(
        db,
        [path],
        rejects_path=rejects_path,
        dump_date=dump_date,
        progress_bar=bar,
        actor=actor,
        allow_shrink=allow_shrink,
    )
    return result


ProgressBar = Callable[[str], AbstractContextManager[ProgressCallback]]


def import_dumps(
    db: Database,
    paths: Sequence[Path],
    *,
    rejects_path: Path | None = None,
    dump_date: str | None = None,
    progress_bar: ProgressBar | None = None,
    actor: str | None = None,
    allow_shrink: bool = False,
) -> list[ImportResult]:
    """Import dump files in order, all or nothing: one transaction over every file.

    Every file is opened (found, kind and format read) and JSON files are extracted before
    the transaction starts; any failure after that (a cut or damaged file, an older dump, a
    refused shrink) rolls back all of them. progress_bar: a progress callback for a step,
    given the step's description.
    """
    if dump_date is not None:  # checked before any file is opened: a wrong date is never ignored
        import_checks.check_given_date(dump_date)
    bar: ProgressBar = progress_bar or _no_bar
    paths = [Path(p) for p in paths]
    with contextlib.ExitStack() as stack:
        readers = [stack.enter_context(open_dump(path)) for path in paths]
        shas = [file_sha256(path) for path in paths]
        stages: list[registry_fast.Stage | None] = []
        for i, (reader, sha) in enumerate(zip(readers, shas, strict=True)):
            # A file already applied (imported again) is not extracted: nothing will change.
            if reader.info.fmt is not Format.JSON or import_checks.is_newest(
                db, reader.info.kind, sha
            ):
                stages.append(None)
                continue
            with bar(f"Leser {reader.path.name}") as progress:
                stages.append(stack.enter_context(_staged(db, reader, progress, i)))
        logs = [RejectLog(rejects_path, str(path)) for path in paths]
        done: list[tuple[int, EarlierImports]] = []
        try:
            with _page_cache(db), db.transaction():
                for kind in sorted({reader.info.kind.value for reader in readers}):
                    lock_register(db, kind)  # an import, or a feed page, at a time
                for reader, sha, stage, rejects in zip(readers, shas, stages, logs, strict=True):
                    with bar(f"Importerer {reader.path.name}") as progress:
                        done.append(
                            _import_one(
                                db,
                                reader,
                                sha,
                                stage,
                                rejects,
                                dump_date,
                                progress,
                                actor,
                                allow_shrink,
                            )
                        )
        except import_checks.ShrinkRefused:
            logs[len(done)].commit()  # the operator will want to see what was rejected
            for log in logs[len(done) + 1 :] + logs[: len(done)]:
                log.discard()
            raise
        except BaseException:
            for log in logs:
                log.discard()
            raise
        for log in logs:
            log.commit()
    if any(earlier.same is None for _, earlier in done):
        # Fresh statistics let the planner pick the covering segment indexes.
        db.execute("ANALYZE" if db.dialect == "sqlite" else "ANALYZE units")
    return [
        ImportResult(
            path,
            get_snapshot(db, snapshot_id),
            earlier.same is not None,
            () if earlier.same is not None else tuple(log.first),
            None if earlier.same is not None else rejects_path,
            earlier.prior,
            earlier.guessed,
            earlier.corrected_from,
            earlier.guessed_from or import_checks.FROM_FILE_TIME,
        )
        for path, (snapshot_id, earlier), log in zip(paths, done, logs, strict=True)
    ]


@contextlib.contextmanager
def _no_bar(_: str) -> Iterator[ProgressCallback]:
    yield no_progress


def _import_one(
    db: Database,
    reader: DumpReader,
    sha: str,
    stage: registry_fast.Stage | None,
    rejects: RejectLog,
    dump_date: str | None,
    progress: ProgressCallback,
    actor: str | None,
    allow_shrink: bool,
) -> tuple[int, EarlierImports]:
    """Apply one opened (and maybe staged) file inside the import's transaction."""
    path = reader.path
    earlier = import_checks.earlier_imports(db, path, reader.info.kind, sha, dump_date)
    if earlier.same is not None:
        if earlier.corrected_from is not None:
            _correct_date(db, actor, earlier.same, earlier.date, earlier.corrected_from)
        return earlier.same, earlier
    snapshot_id = _load(
        db, reader, path, sha, earlier.date, rejects, progress, stage, allow_shrink, earlier.guessed
    )
    _audit(db, actor, snapshot_id)
    return snapshot_id, earlier


def _correct_date(
    db: Database, actor: str | None, snapshot_id: int, date: str, guessed: str
) -> None:
    """The dump applied last gets the date given for its guessed one (import_checks decided)."""
    from varsel import audit

    set_dump_date(db, snapshot_id, date)
    audit.record(
        db,
        actor or audit.SYSTEM,
        audit.Action.REGISTRY_IMPORT,
        f"snapshot:{snapshot_id}",
        {"dump_date": date, "guessed_dump_date": guessed},
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
            "removed": snap.removed,
            "rejected": snap.rejected,
            "unknown_municipality": snap.unknown_municipality,
        },
    )


@contextlib.contextmanager
def _staged(
    db: Database, reader: DumpReader, progress: ProgressCallback, n: int = 0
) -> Iterator[registry_fast.Stage | None]:
    """JSON dumps extracted by DuckDB before the transaction starts; None for the Python way
    (CSV, and JSON files under registry_fast.SMALL_FILE)."""
    if reader.info.fmt is not Format.JSON or reader.info.size < registry_fast.SMALL_FILE:
        yield None
        return
    schema = f"fast_stage{n}" if n else "fast_stage"
    with registry_fast.staged(db, reader.path, reader.info.kind, progress, schema) as stage:
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
    date_guessed: bool = False,
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
        dump_date_guessed=date_guessed,
        imported_at=now,
    )
    # The store now holds the dump as it was made (about 05:00 on its day): the changes the
    # feed had applied after that are undone, so the feed goes on from the dump's day again.
    db.execute("DELETE FROM feed_state WHERE kind = ?", (info.kind.value,))
    direct = db.dialect == "sqlite" and not db.query_one(
        "SELECT 1 FROM units WHERE kind = ? LIMIT 1", (unit_kind(info.kind),)
    )
    shrink = import_checks.ShrinkCheck(path, info.kind, rejects, allow_shrink)
    if table is not None and stage is not None:
        shrink.records = stage.rows
        counts = registry_load.load_fast(
            db, table, stage, info.kind, snapshot_id, now, rejects, shrink, direct=direct
        )
        reader.records_read = stage.rows
        progress(info.size, info.size, stage.rows)
        registry_fast.drop_stage(db, table)
    elif direct:
        counts = registry_load.write_direct(
            db, extracted(reader, rejects, progress), snapshot_id, now, rejects, info.kind
        )
    else:
        batches = extracted(reader, rejects, progress)
        registry_merge.create_staging(db)
        for rows, contact_rows in batches:
            db.insert_rows("staging_units", registry_merge.STAGE_COLUMNS, rows)
            db.insert_rows(
                "staging_contacts", (*unit.CONTACT_COLUMNS, "record_index"), contact_rows
            )
        for orgnr, index, reason in registry_merge.refused(db, info.kind):
            rejects.add(Reject(index + 1, None, orgnr, reason))
        shrink.records = batches_records(reader)
        counts = registry_merge.merge(db, info.kind, snapshot_id, now, shrink)
        registry_merge.drop_staging(db)
    removed = _erase_removed(db, info.kind, date)
    db.execute(
        "UPDATE snapshots SET records = ?, new = ?, changed = ?, unchanged = ?, gone = ?, "
        "removed = ?, rejected = ?, unknown_municipality = ? WHERE id = ?",
        (
            batches_records(reader),
            counts["new"],
            counts["changed"],
            counts["unchanged"],
            counts["gone"],
            removed,
            rejects.count,
            _unknown_municipalities(db, info.kind),
            snapshot_id,
        ),
    )
    return snapshot_id


def _erase_removed(db: Database, kind: Kind, dump_date: str) -> int:
    """Erase again the units the registry removed on or after the dump's day; how many.

    The dump was made (about 05:00 on its day) before the removal, so it still holds them:
    an older dump imported again to undo a wrong import, or the day's dump imported after the
    feed had applied that day's removals. A unit removed before the dump's day that the dump
    holds has been published again (the grounds for removing it ended): it stays, and its
    record goes.
    """
    again = [
        str(orgnr)
        for (orgnr,) in db.query(
            "SELECT r.orgnr FROM removed_units r JOIN units u ON u.orgnr = r.orgnr "
            "WHERE r.kind = ? AND r.removed_on >= ? ORDER BY r.orgnr",
            (kind.value, dump_date),
        )
    ]
    for orgnr in again:
        erase_unit(db, orgnr)
    db.execute(
        "DELETE FROM removed_units WHERE kind = ? AND removed_on < ? "
        "AND orgnr IN (SELECT orgnr FROM units)",
        (kind.value, dump_date),
    )
    return len(again)


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


def batches_records(reader: DumpReader) -> int:
    """How many records the reader has handed out."""
    return reader.records_read


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
