"""A unit the registry removed (Fjernet) is erased from the campaigns too, their counts kept."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from helpers import sample_campaign
from varsel import feedback
from varsel.coverage import coverage
from varsel.db import Database
from varsel.erasure import ERASED_NAME, erase_unit
from varsel.feed import apply_feed
from varsel.outbox import record_event
from varsel.suppression import SuppressionKind, SuppressionReason, add


@pytest.fixture
def campaign_id(db: Database, brreg: Path, tmp_path: Path) -> int:
    return sample_campaign(db, brreg, tmp_path)


def everything(db: Database) -> str:
    """Every value of every table but the audit log's, as one text to search."""
    tables = [
        t
        for (t,) in db.query(
            "SELECT name FROM sqlite_master WHERE type = 'table'"
            if db.dialect == "sqlite"
            else "SELECT table_name FROM information_schema.tables "
            "WHERE table_schema = current_schema()"
        )
        if not t.startswith(("audit_", "schema_", "sqlite_"))
    ]
    return json.dumps({t: db.query(f"SELECT * FROM {t}") for t in sorted(tables)}, default=str)


def test_fjernet_erases_the_unit_from_every_campaign_and_keeps_the_counts(
    db: Database, campaign_id: int, tmp_path: Path
) -> None:
    # A unit that had a delivery of its own, with traces of it everywhere.
    orgnr, name, address, delivery_id = db.query(
        "SELECT r.orgnr, r.name, d.address, d.id FROM recipients r "
        "JOIN delivery_units du ON du.orgnr = r.orgnr JOIN deliveries d ON d.id = du.delivery_id "
        "WHERE r.campaign_id = ? AND (SELECT count(*) FROM delivery_units o "
        "WHERE o.delivery_id = d.id) = 1 ORDER BY r.orgnr LIMIT 1",
        (campaign_id,),
    )[0]
    with db.transaction():
        db.execute(
            "UPDATE deliveries SET state = 'failed', last_reply = ? WHERE id = ?",
            (f"550 5.1.1 <{address}>: no such user", delivery_id),
        )
        record_event(db, campaign_id, delivery_id, "bounce", {"recipient": address})
    feedback.store(
        db,
        feedback.Feedback(campaign_id, delivery_id, 4, True, None, f"Hilsen {name}", "nb"),
    )
    before = coverage(db, campaign_id)
    # Its own opt-out goes with it (nothing can be sent to a unit that is gone): the counts
    # after the erasure are those without it.
    with db.transaction():
        add(db, SuppressionKind.UNIT, orgnr, SuppressionReason.MANUAL)
    assert orgnr in everything(db)
    assert address in everything(db)

    feed = tmp_path / "feed.json"
    entry = {
        "oppdateringsid": 1,
        "dato": "2026-11-20T10:00:00.000Z",
        "organisasjonsnummer": orgnr,
        "endringstype": "Fjernet",
    }
    feed.write_text(json.dumps({"_embedded": {"oppdaterteEnheter": [entry]}}), "utf-8")
    result = apply_feed(db, feed)
    assert result.snapshot is not None
    assert result.snapshot.removed == 1

    text = everything(db)
    assert orgnr not in text
    assert name not in text
    assert address not in text
    assert coverage(db, campaign_id) == before  # what the campaign counted still adds up
    erased = db.query("SELECT orgnr, name FROM recipients WHERE name = ?", (ERASED_NAME,))
    assert len(erased) == 1
    assert db.query(
        "SELECT d.state, du.orgnr FROM deliveries d JOIN delivery_units du "
        "ON du.delivery_id = d.id WHERE d.id = ?",
        (delivery_id,),
    ) == [("failed", erased[0][0])]
    assert db.scalar("SELECT usefulness FROM feedback WHERE delivery_id = ?", (delivery_id,)) == 4


def test_a_shared_delivery_keeps_the_address_of_the_other_units(
    db: Database, campaign_id: int
) -> None:
    # Make two recipients share one delivery (one address for both), then erase one of them.
    (first, one), (second, two) = db.query(
        "SELECT du.orgnr, du.delivery_id FROM delivery_units du JOIN deliveries d "
        "ON d.id = du.delivery_id WHERE d.campaign_id = ? ORDER BY du.orgnr LIMIT 2",
        (campaign_id,),
    )
    with db.transaction():
        db.execute("UPDATE delivery_units SET delivery_id = ? WHERE orgnr = ?", (one, second))
        db.execute("DELETE FROM deliveries WHERE id = ?", (two,))
        address = db.scalar("SELECT address FROM deliveries WHERE id = ?", (one,))
        erased = erase_unit(db, first)
    assert (erased.units, erased.recipients, erased.deliveries, erased.shared) == (1, 1, 0, 1)
    assert db.scalar("SELECT address FROM deliveries WHERE id = ?", (one,)) == address
    units = {
        u for (u,) in db.query("SELECT orgnr FROM delivery_units WHERE delivery_id = ?", (one,))
    }
    assert second in units
    assert first not in units
    assert len(units) == 2


def test_fjernet_of_a_unit_nobody_holds_is_skipped(db: Database, tmp_path: Path) -> None:
    with db.transaction():
        assert erase_unit(db, "999999999").recipients == 0
