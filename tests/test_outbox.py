from __future__ import annotations

from pathlib import Path

import pytest

from helpers import campaign_toml
from varsel import outbox
from varsel.campaign import create_campaign
from varsel.config import Settings
from varsel.db import Database
from varsel.outbox import DeliveryState
from varsel.registry import import_dump
from varsel.suppression import SuppressionKind, SuppressionReason, add

CAMPAIGN = campaign_toml(organisation="NSR", title="Råd")


@pytest.fixture
def campaign_id(db: Database, brreg: Path, tmp_path: Path) -> int:
    import_dump(db, brreg / "enheter-sample.json")
    path = tmp_path / "c.toml"
    path.write_text(CAMPAIGN, "utf-8")
    settings = Settings.load(environ={}, dkim_key_dir=str(tmp_path / "keys"))
    return create_campaign(db, settings, path).campaign.id


NOW = "2999-01-01T00:00:00.000Z"


def test_claim_takes_each_delivery_once(db: Database, campaign_id: int) -> None:
    first = outbox.claim(db, campaign_id, "w1", 4, NOW)
    second = outbox.claim(db, campaign_id, "w2", 4, NOW)
    assert len(first) == 4
    assert len(second) == 2
    assert not {d.id for d in first} & {d.id for d in second}
    assert outbox.claim(db, campaign_id, "w3", 4, NOW) == []
    assert outbox.counts(db, campaign_id)["claimed"] == 6
    assert all(d.units for d in first + second)


def test_claim_takes_due_retries_first_then_the_queue_in_order(
    db: Database, campaign_id: int
) -> None:
    ids = [r[0] for r in db.query("SELECT id FROM deliveries ORDER BY id")]
    with db.transaction():
        db.execute(
            "UPDATE deliveries SET state = 'deferred', next_attempt_at = ? WHERE id = ?",
            ("2000-01-01T00:00:00.000Z", ids[4]),
        )
        db.execute(
            "UPDATE deliveries SET state = 'deferred', next_attempt_at = ? WHERE id = ?",
            ("2999-01-01T00:00:00.000Z", ids[5]),  # not due
        )
    now = "2100-01-01T00:00:00.000Z"
    first = outbox.claim(db, campaign_id, "w", 3, now)
    second = outbox.claim(db, campaign_id, "w", 3, now)
    assert sorted(d.id for d in first) == [ids[0], ids[1], ids[4]]
    assert [d.id for d in second] == [ids[2], ids[3]]
    assert outbox.claim(db, campaign_id, "w", 3, now) == []


def test_with_units_names_units_and_finds_suppressions(db: Database, campaign_id: int) -> None:
    first, second = outbox.claim(db, campaign_id, "w0", 2, NOW)
    unit = first.units[0]
    name, municipality = db.query_one(
        "SELECT name, municipality FROM recipients WHERE campaign_id = ? AND orgnr = ?",
        (campaign_id, unit),
    ) or ("", "")
    outbox.recover(db, campaign_id)  # both queued again
    with db.transaction():
        add(db, SuppressionKind.UNIT, unit, SuppressionReason.UNSUBSCRIBED)
        add(db, SuppressionKind.ADDRESS, second.address, SuppressionReason.UNSUBSCRIBED)
    rows = outbox.claim_rows(db, campaign_id, "w1", 6, NOW)
    claimed = {c.delivery.id: c for c in outbox.with_units(db, campaign_id, rows)}
    assert claimed[first.id].units[0] == (unit, name, municipality or None, True)
    assert not claimed[first.id].address_suppressed
    assert claimed[second.id].address_suppressed
    assert not any(
        blocked for c in claimed.values() if c.delivery.id != first.id for *_, blocked in c.units
    )
    assert [c.delivery.units for c in claimed.values()] == [
        tuple(u[0] for u in c.units) for c in claimed.values()
    ]


def test_not_due_yet_is_not_claimed(db: Database, campaign_id: int) -> None:
    assert outbox.claim(db, campaign_id, "w1", 10, "2000-01-01T00:00:00.000Z") == []


def test_recover_splits_claimed_by_whether_data_started(db: Database, campaign_id: int) -> None:
    claimed = outbox.claim(db, campaign_id, "w1", 3, NOW)
    db.execute("UPDATE deliveries SET data_started_at = ? WHERE id = ?", (NOW, claimed[0].id))
    assert outbox.recover(db, campaign_id) == (1, 2)
    counts = outbox.counts(db, campaign_id)
    assert (counts["in_doubt"], counts["queued"], counts["claimed"]) == (1, 5, 0)
    doubt = outbox.in_doubt(db, campaign_id)
    assert [d.id for d in doubt] == [claimed[0].id]
    assert doubt[0].data_started_at == NOW


def test_resend_in_doubt_is_explicit(db: Database, campaign_id: int) -> None:
    claimed = outbox.claim(db, campaign_id, "w1", 2, NOW)
    for d in claimed:
        db.execute("UPDATE deliveries SET data_started_at = ? WHERE id = ?", (NOW, d.id))
    outbox.recover(db, campaign_id)
    assert outbox.resend_in_doubt(db, campaign_id) == 2
    counts = outbox.counts(db, campaign_id)
    assert (counts["in_doubt"], counts["queued"]) == (0, 6)
    kinds = [r[0] for r in db.query("SELECT kind FROM events ORDER BY id")]
    assert kinds == ["recovered_in_doubt", "resend_in_doubt"]


def three_in_doubt(db: Database, campaign_id: int) -> list[int]:
    claimed = outbox.claim(db, campaign_id, "w1", 3, NOW)
    for d in claimed:
        db.execute("UPDATE deliveries SET data_started_at = ? WHERE id = ?", (NOW, d.id))
    outbox.recover(db, campaign_id)
    return [d.id for d in claimed]


def test_settling_in_doubt_as_sent_keeps_when_the_transfer_began(
    db: Database, campaign_id: int
) -> None:
    from varsel import audit

    first, second, third = three_in_doubt(db, campaign_id)
    # The relay's log shows two of them accepted: those two, not the third.
    n = outbox.settle_in_doubt(
        db, campaign_id, delivered=True, deliveries=(second, first, first), actor="cli:ola"
    )
    assert n == 2
    states = dict(
        db.query("SELECT id, state FROM deliveries WHERE id IN (?, ?, ?)", (first, second, third))
    )
    assert states == {first: "sent", second: "sent", third: "in_doubt"}
    assert db.scalar("SELECT sent_at FROM deliveries WHERE id = ?", (first,)) == NOW
    (entry,) = audit.entries(db, action=audit.Action.CAMPAIGN_SETTLE_IN_DOUBT)
    assert (entry.actor, entry.object, entry.data) == (
        "cli:ola",
        f"campaign:{campaign_id}",
        {"count": 2, "as": "sent", "deliveries": [first, second]},
    )


def test_settling_in_doubt_as_failed_gives_them_up_with_the_reason(
    db: Database, campaign_id: int
) -> None:
    ids = three_in_doubt(db, campaign_id)
    assert outbox.settle_in_doubt(db, campaign_id, delivered=False) == 3
    rows = db.query(
        "SELECT state, last_reply FROM deliveries WHERE campaign_id = ? AND id IN (?, ?, ?)",
        (campaign_id, *ids),
    )
    assert rows == [("failed", outbox.NOT_RESENT)] * 3
    counts = outbox.counts(db, campaign_id)
    assert (counts["in_doubt"], counts["failed"], counts["queued"]) == (0, 3, 3)
    kinds = [r[0] for r in db.query("SELECT kind FROM events ORDER BY id")]
    assert kinds == ["recovered_in_doubt", "settle_in_doubt"]


def test_settling_a_delivery_that_is_not_in_doubt_changes_nothing(
    db: Database, campaign_id: int
) -> None:
    from varsel import audit
    from varsel.errors import UserError

    first, _, _ = three_in_doubt(db, campaign_id)
    queued = db.scalar("SELECT max(id) FROM deliveries WHERE campaign_id = ?", (campaign_id,))
    before = db.query("SELECT id, state, sent_at, last_reply FROM deliveries ORDER BY id")
    with pytest.raises(UserError) as e:
        outbox.settle_in_doubt(db, campaign_id, delivered=True, deliveries=(first, queued))
    assert e.value.message == (
        f"leveranse {queued} er ikke usikker i kampanje {campaign_id} "
        f"(se «varsel campaign status {campaign_id}»); ingenting er endret"
    )
    assert db.query("SELECT id, state, sent_at, last_reply FROM deliveries ORDER BY id") == before
    assert audit.entries(db, action=audit.Action.CAMPAIGN_SETTLE_IN_DOUBT) == []


def test_counts_has_every_state(db: Database, campaign_id: int) -> None:
    counts = outbox.counts(db, campaign_id)
    assert set(counts) == {s.value for s in DeliveryState}
    assert counts["queued"] == 6
