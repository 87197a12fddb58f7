"""Small helpers shared by several test modules."""

from __future__ import annotations

from typing import Any

from varsel import unit
from varsel.db import Database


def units(db: Database) -> dict[str, tuple[Any, ...]]:
    """Every unit's kept columns, by orgnr."""
    cols = ", ".join(unit.RECORD_COLUMNS)
    return {r[0]: tuple(r) for r in db.query(f"SELECT {cols} FROM units ORDER BY orgnr")}


def unit_row(db: Database, orgnr: str) -> dict[str, Any]:
    """One unit's row as a dict."""
    cols = ", ".join(unit.UNIT_COLUMNS)
    row = db.query_one(f"SELECT {cols} FROM units WHERE orgnr = ?", (orgnr,))
    assert row is not None
    return dict(zip(unit.UNIT_COLUMNS, row, strict=True))
