"""The units a claimed delivery's message names, read as the sender and its build workers do."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from helpers import sample_campaign
from varsel import claimed_units, outbox
from varsel.db import connect
from varsel.suppression import SuppressionKind, SuppressionReason, add

NOW = "2099-01-01T00:00:00.000Z"


def test_the_unit_kind_is_the_suppressions_own() -> None:
    assert SuppressionKind.UNIT.value == claimed_units.UNIT_KIND


def test_suppressed_units_are_not_named() -> None:
    units = [("912345678", "BAKERI AS", "0301", False), ("987654321", "SMED AS", None, True)]
    assert claimed_units.to_name(units) == (("912345678", "BAKERI AS", "0301"),)
    assert claimed_units.to_name([("987654321", "SMED AS", None, True)]) == ()


def test_a_build_workers_plain_read_of_the_file_finds_what_the_store_does(
    sqlite_url: str, brreg: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with connect(sqlite_url) as db:
        campaign_id = sample_campaign(db, brreg, tmp_path)
        rows = outbox.claim_rows(db, campaign_id, "w", 10, NOW)
        ids = [int(r[0]) for r in rows]
        blocked = outbox.with_units(db, campaign_id, rows)[0].units[0][0]
        with db.transaction():
            add(db, SuppressionKind.UNIT, blocked, SuppressionReason.UNSUBSCRIBED)
        expected = {c.delivery.id: list(c.units) for c in outbox.with_units(db, campaign_id, rows)}
    # Read-only, on sqlite3 alone, as builder._read_here opens it; more ids than one query takes.
    monkeypatch.setattr(claimed_units, "CHUNK", 4)
    plain = sqlite3.connect(Path(sqlite_url).resolve().as_uri() + "?mode=ro", uri=True)
    try:
        found = claimed_units.read(plain.execute, campaign_id, ids)
    finally:
        plain.close()
    assert found == expected
    assert sum(u[3] for units in found.values() for u in units) >= 1
