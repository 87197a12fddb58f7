"""A dump staged and merged into the store: staging tables, duplicates dropped, the merge.

The staged records are compared with the units by their hash: new ones inserted, changed ones
updated with their contacts, vanished ones marked gone (never a rejected record's unit).
"""

from __future__ import annotations

from varsel import unit
from varsel.db import Database
from varsel.dump import Kind
from varsel.import_checks import ShrinkCheck

STAGE_COLUMNS = (*unit.RECORD_COLUMNS, "record_hash", "record_index")


def create_staging(db: Database) -> None:
    drop_staging(db)
    db.execute(
        f"CREATE TEMP TABLE staging_units AS SELECT {', '.join(STAGE_COLUMNS)} "
        "FROM units WHERE 1 = 0"
    )
    db.execute(
        f"CREATE TEMP TABLE staging_contacts AS SELECT {', '.join(unit.CONTACT_COLUMNS)}, "
        "0 AS record_index FROM contacts WHERE 1 = 0"
    )


def drop_staging(db: Database) -> None:
    for table in ("staging_units", "staging_contacts", "touched", "staging_rejected"):
        db.execute(f"DROP TABLE IF EXISTS {table}")


def duplicates(db: Database) -> list[tuple[str, int]]:
    """Records whose orgnr came earlier in the same file; they are dropped from staging."""
    db.execute("CREATE INDEX staging_units_orgnr ON staging_units (orgnr, record_index)")
    if db.dialect == "postgresql":
        db.execute("ANALYZE staging_units")
    return _unstaged(
        db,
        "SELECT s.orgnr, s.record_index FROM staging_units s WHERE EXISTS ("
        "SELECT 1 FROM staging_units t WHERE t.orgnr = s.orgnr AND t.record_index < s.record_index)"
        " ORDER BY s.record_index",
    )


DUPLICATE = "organisasjonsnummeret står flere ganger i filen"


def unit_kind(kind: Kind) -> str:
    """The units.kind value of a dump kind."""
    return "underenhet" if kind is Kind.UNDERENHETER else "enhet"


def other_kind_reason(kind: Kind) -> str:
    """Why a record whose number is a unit of the other kind in the store is rejected."""
    other = "en hovedenhet" if kind is Kind.UNDERENHETER else "en underenhet"
    return f"organisasjonsnummeret er {other} i lageret"


def rejection(kind: Kind, stored_kind: str) -> str:
    """Why a record whose number the store holds already (as a unit of stored_kind) is not
    taken: named twice in the file, or the number of a unit of the other kind."""
    return DUPLICATE if stored_kind == unit_kind(kind) else other_kind_reason(kind)


def of_other_kind(db: Database, kind: Kind) -> list[tuple[str, int]]:
    """Staged records whose orgnr is a unit of the other kind; dropped from staging.

    One number is one unit: merged, the record would turn a main unit into a sub-unit (or the
    reverse) and take it out of its register.
    """
    return _unstaged(
        db,
        "SELECT s.orgnr, s.record_index FROM staging_units s JOIN units u "
        "ON u.orgnr = s.orgnr WHERE u.kind <> ? ORDER BY s.record_index",
        (unit_kind(kind),),
    )


def refused(db: Database, kind: Kind) -> list[tuple[str, int, str]]:
    """The staged records that are not merged, with why (orgnr, record index, reason); dropped
    from staging: an orgnr's later records in the file, and units of the other kind."""
    return [(orgnr, index, DUPLICATE) for orgnr, index in duplicates(db)] + [
        (orgnr, index, other_kind_reason(kind)) for orgnr, index in of_other_kind(db, kind)
    ]


def _unstaged(db: Database, sql: str, params: tuple[str, ...] = ()) -> list[tuple[str, int]]:
    """The staged records (orgnr, record index) the query finds, dropped from staging."""
    found = [(str(orgnr), int(index)) for orgnr, index in db.query(sql, params)]
    for orgnr, index in found:
        db.execute("DELETE FROM staging_units WHERE orgnr = ? AND record_index = ?", (orgnr, index))
        db.execute(
            "DELETE FROM staging_contacts WHERE orgnr = ? AND record_index = ?", (orgnr, index)
        )
    return found


def merge(
    db: Database, kind: Kind, snapshot_id: int, now: str, shrink: ShrinkCheck
) -> dict[str, int]:
    """Apply the staged dump to units and contacts; returns the counts.

    Units go gone first, then shrink may refuse (and the transaction rolls back) before any
    unit is written.
    """
    kind_value = unit_kind(kind)
    current = int(
        db.scalar(
            f"SELECT count(*) FROM units WHERE kind = '{kind_value}' AND gone_snapshot_id IS NULL"
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
        (snapshot_id, now, kind_value),
    ).rowcount
    db.execute(
        "CREATE TEMP TABLE touched AS SELECT s.orgnr AS orgnr, "
        "CASE WHEN u.orgnr IS NULL THEN 1 ELSE 0 END AS is_new "
        "FROM staging_units s LEFT JOIN units u ON u.orgnr = s.orgnr "
        "WHERE u.orgnr IS NULL OR u.record_hash <> s.record_hash "
        "OR u.gone_snapshot_id IS NOT NULL"
    )
    db.execute("CREATE INDEX touched_orgnr ON touched (orgnr, is_new)")
    _rehash_unchanged(db)
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


def _rehash_unchanged(db: Database) -> None:
    """Units whose hash differs but whose kept values do not: their hash is renewed, and they
    are no longer touched (counted unchanged, their contacts kept).

    The hash's definition grew with the kept columns: a store made by an earlier version holds
    hashes of fewer columns, and without this its first import after the upgrade would count
    every unit as changed. Cheap otherwise: only the few units whose hash differs are compared.
    """
    same = " IS NOT DISTINCT FROM "
    equal = " AND ".join(f"u.{c}{same}s.{c}" for c in unit.RECORD_COLUMNS)
    db.execute(
        "CREATE TEMP TABLE rehashed AS SELECT t.orgnr AS orgnr, s.record_hash AS record_hash "
        "FROM touched t JOIN units u ON u.orgnr = t.orgnr "
        "JOIN staging_units s ON s.orgnr = t.orgnr "
        f"WHERE t.is_new = 0 AND u.gone_snapshot_id IS NULL AND {equal}"
    )
    if not db.query_one("SELECT 1 FROM rehashed LIMIT 1"):
        db.execute("DROP TABLE rehashed")
        return
    db.execute(
        "UPDATE units SET record_hash = (SELECT r.record_hash FROM rehashed r "
        "WHERE r.orgnr = units.orgnr) WHERE orgnr IN (SELECT orgnr FROM rehashed)"
    )
    db.execute("DELETE FROM touched WHERE orgnr IN (SELECT orgnr FROM rehashed)")
    db.execute("DROP TABLE rehashed")
