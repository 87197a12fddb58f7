"""A unit the registry removed (Fjernet) is erased from the campaigns too, their counts kept."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from helpers import sample_campaign
from reportdata import channel_delivery, download, units_without_email
from varsel import feedback, letter_candidates
from varsel.coverage import coverage
from varsel.db import Database
from varsel.erasure import ERASED_NAME, erase_unit
from varsel.evaluate import evaluate
from varsel.feed import apply_feed
from varsel.outbox import DeliveryState as S
from varsel.outbox import record_event
from varsel.registry import import_dump
from varsel.segment import preview
from varsel.segment_criteria import Criteria
from varsel.suppression import SuppressionKind, SuppressionReason, add, entries


@pytest.fixture
def campaign_id(db: Database, brreg: Path, tmp_path: Path) -> int:
    return sample_campaign(db, brreg, tmp_path)


def everything(db: Database) -> str:
    """Every value of every table but the audit log's, as one text to search.

    Nor `removed_units`: the number and day of each removal, kept so that the erasure holds
    (test_fjernet_erases_the_unit_from_every_campaign_and_keeps_the_counts checks them).
    """
    tables = [
        t
        for (t,) in db.query(
            "SELECT name FROM sqlite_master WHERE type = 'table'"
            if db.dialect == "sqlite"
            else "SELECT table_name FROM information_schema.tables "
            "WHERE table_schema = current_schema()"
        )
        if not t.startswith(("audit_", "schema_", "sqlite_")) and t != "removed_units"
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

    result = apply_feed(db, fjernet(tmp_path, orgnr))
    assert result.snapshot is not None
    assert result.snapshot.removed == 1

    text = everything(db)
    assert orgnr not in text
    assert name not in text
    assert address not in text
    assert coverage(db, campaign_id) == before  # what the campaign counted still adds up
    # The number and the day of the removal, nothing else: no older dump brings it back.
    assert db.query("SELECT * FROM removed_units") == [(orgnr, "enheter", "2026-11-20")]
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


# -- what erasure found left behind: sub-units, notes, document requests, letters ----------

LYSE = "980001482"  # LYSE AS, Stavanger; sub-units in Bodø and Stavanger
LYSE_BODO = "930187534"  # LYSE AS AVD BODØ: selects Lyse in Bodø through its parent
EARLY = "2026-03-01"


def fjernet(tmp_path: Path, orgnr: str) -> Path:
    page = tmp_path / "fjernet.json"
    entry = {
        "oppdateringsid": 1,
        "dato": "2026-11-20T10:00:00.000Z",
        "organisasjonsnummer": orgnr,
        "endringstype": "Fjernet",
    }
    page.write_text(json.dumps({"_embedded": {"oppdaterteEnheter": [entry]}}), "utf-8")
    return page


def parent(db: Database, orgnr: str) -> str | None:
    value = db.scalar("SELECT parent_orgnr FROM units WHERE orgnr = ?", (orgnr,))
    return None if value is None else str(value)


def test_sub_units_lose_the_erased_parents_number_and_a_later_dump_sets_it(
    db: Database, brreg: Path, tmp_path: Path
) -> None:
    import_dump(db, brreg / "enheter-sample.json", dump_date=EARLY)
    import_dump(db, brreg / "underenheter-sample.json", dump_date=EARLY)
    bodo = Criteria(municipalities=("1804",))
    assert preview(db, bodo).units == 1  # Lyse, through its sub-unit in Bodø
    assert parent(db, LYSE_BODO) == LYSE

    with db.transaction():
        erased = erase_unit(db, LYSE)
    assert (erased.units, erased.sub_units) == (1, 2)
    assert LYSE not in everything(db)
    assert parent(db, LYSE_BODO) is None
    assert db.scalar("SELECT count(*) FROM units WHERE kind = 'underenhet'") == 18
    assert preview(db, bodo).units == 0  # nothing selects a parent that is gone
    # Equinor, selected in Stavanger through nothing but its own address, still is.
    assert preview(db, Criteria(municipalities=("1124",))).units == 1

    # A later dump that still names the parent sets it as any other change; the rest of the
    # sub-units are unchanged (their hashes are the import's own).
    records = json.loads((brreg / "underenheter-sample.json").read_text("utf-8"))
    later = tmp_path / "underenheter.json"
    later.write_text(json.dumps(records, indent=1), "utf-8")
    result = import_dump(db, later, dump_date="2026-03-02")
    assert (result.snapshot.new, result.snapshot.changed) == (0, 2)
    assert parent(db, LYSE_BODO) == LYSE


def test_a_feed_patch_sets_the_parent_of_a_sub_unit_whose_parent_was_erased(
    db: Database, brreg: Path, tmp_path: Path
) -> None:
    import_dump(db, brreg / "enheter-sample.json", dump_date=EARLY)
    import_dump(db, brreg / "underenheter-sample.json", dump_date=EARLY)
    apply_feed(db, fjernet(tmp_path, LYSE))
    assert parent(db, LYSE_BODO) is None
    new_parent = "923609016"  # Equinor buys the branch
    page = tmp_path / "under.json"
    entry = {
        "oppdateringsid": 2,
        "dato": "2026-11-21T10:00:00.000Z",
        "organisasjonsnummer": LYSE_BODO,
        "endringstype": "Endring",
        "endringer": [{"op": "replace", "path": "/overordnetEnhet", "value": new_parent}],
    }
    page.write_text(json.dumps({"_embedded": {"oppdaterteUnderenheter": [entry]}}), "utf-8")
    result = apply_feed(db, page)
    assert result.snapshot is not None
    assert result.snapshot.changed == 1
    assert parent(db, LYSE_BODO) == new_parent


def test_notes_that_name_the_unit_go_and_the_entries_stay(
    db: Database, campaign_id: int, tmp_path: Path
) -> None:
    orgnr, name, address = db.query(
        "SELECT r.orgnr, r.name, d.address FROM recipients r "
        "JOIN delivery_units du ON du.orgnr = r.orgnr JOIN deliveries d ON d.id = du.delivery_id "
        "WHERE r.campaign_id = ? AND (SELECT count(*) FROM delivery_units o "
        "WHERE o.delivery_id = d.id) = 1 ORDER BY r.orgnr LIMIT 1",
        (campaign_id,),
    )[0]
    spaced = f"{orgnr[:3]} {orgnr[3:6]} {orgnr[6:]}"
    other = db.scalar("SELECT orgnr FROM units WHERE orgnr <> ? ORDER BY orgnr LIMIT 1", (orgnr,))
    with db.transaction():
        add(db, SuppressionKind.ADDRESS, address, SuppressionReason.MANUAL, "cli", "ringte 3. mars")
        add(
            db,
            SuppressionKind.UNIT,
            other,
            SuppressionReason.MANUAL,
            "console",
            f"datterselskap av {spaced}",
        )
        add(
            db,
            SuppressionKind.ADDRESS,
            "daglig.leder@example.no",
            SuppressionReason.MANUAL,
            "cli",
            f"Daglig leder i {name.lower()} ba om det",
        )
        add(
            db,
            SuppressionKind.ADDRESS,
            "post@example.no",
            SuppressionReason.MANUAL,
            "cli",
            "ba om det på telefon",
        )
    apply_feed(db, fjernet(tmp_path, orgnr))

    notes = {e.value: e.note for e in entries(db)}
    assert notes == {
        address: None,  # the erased unit's own address: honoured still, the note gone
        other: None,
        "daglig.leder@example.no": None,
        "post@example.no": "ba om det på telefon",
    }
    assert orgnr not in everything(db)
    assert name not in everything(db)


def test_a_document_request_from_the_units_address_is_erased_and_still_counted(
    db: Database, campaign_id: int, tmp_path: Path
) -> None:
    orgnr, address, delivery_id = db.query(
        "SELECT du.orgnr, d.address, d.id FROM delivery_units du JOIN deliveries d "
        "ON d.id = du.delivery_id WHERE d.campaign_id = ? AND (SELECT count(*) FROM "
        "delivery_units o WHERE o.delivery_id = d.id) = 1 ORDER BY du.orgnr LIMIT 1",
        (campaign_id,),
    )[0]
    with db.transaction():
        db.execute("UPDATE deliveries SET state = 'sent' WHERE id = ?", (delivery_id,))
    download(db, campaign_id, address)
    before = evaluate(db, campaign_id).funnel
    assert before.downloaded == 1

    apply_feed(db, fjernet(tmp_path, orgnr))
    assert address not in everything(db)
    assert evaluate(db, campaign_id).funnel == before
    assert db.scalar("SELECT address FROM document_requests") == db.scalar(
        "SELECT address FROM deliveries WHERE id = ?", (delivery_id,)
    )


def test_an_erased_units_letter_keeps_its_reason_and_is_not_made_again(
    db: Database, campaign_id: int, tmp_path: Path
) -> None:
    orgnr = units_without_email(db, campaign_id)[0]
    letter = channel_delivery(db, campaign_id, orgnr, "letter", S.FAILED)
    with db.transaction():
        db.execute(
            "UPDATE deliveries SET last_reply = 'incomplete_address' WHERE id = ?", (letter,)
        )
    before = coverage(db, campaign_id)
    letters_before = len(letter_candidates.candidates(db, campaign_id))

    apply_feed(db, fjernet(tmp_path, orgnr))
    assert orgnr not in everything(db)
    assert coverage(db, campaign_id) == before
    stand_in, key, reply = db.query(
        "SELECT address, key, last_reply FROM deliveries WHERE id = ?", (letter,)
    )[0]
    assert (key, reply) == (stand_in, "incomplete_address")
    # Its recipient still finds its letter: no second one is planned for it.
    found = [c for c in letter_candidates.candidates(db, campaign_id) if c.orgnr == stand_in]
    assert [c.letter_id for c in found] in ([], [letter])
    assert len(letter_candidates.candidates(db, campaign_id)) == letters_before


def test_feedback_naming_the_unit_on_a_shared_delivery_loses_its_text(
    db: Database, campaign_id: int
) -> None:
    (first, one), (second, two) = db.query(
        "SELECT du.orgnr, du.delivery_id FROM delivery_units du JOIN deliveries d "
        "ON d.id = du.delivery_id WHERE d.campaign_id = ? ORDER BY du.orgnr LIMIT 2",
        (campaign_id,),
    )
    name = db.scalar("SELECT name FROM units WHERE orgnr = ?", (first,))
    with db.transaction():
        db.execute("UPDATE delivery_units SET delivery_id = ? WHERE orgnr = ?", (one, second))
        db.execute("DELETE FROM deliveries WHERE id = ?", (two,))
    feedback.store(db, feedback.Feedback(campaign_id, one, 5, True, None, f"Fra {name}", "nb"))
    feedback.store(db, feedback.Feedback(campaign_id, one, 3, True, None, "Nyttig", "nb"))
    with db.transaction():
        erase_unit(db, first)
    comments = [c for (c,) in db.query("SELECT comment FROM feedback ORDER BY id")]
    assert comments == [None, "Nyttig"]
