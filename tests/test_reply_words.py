"""Why deliveries wait or failed, worded and grouped as operators read it."""

from __future__ import annotations

import pytest

from varsel import reply_words
from varsel.db import Database
from varsel.outbox import DeliveryState

GMAIL = (
    "550-5.1.1 The email account that you tried to reach does not exist. For more information, "
    "go to https://support.google.com/mail/?p=NoSuchUser {id} - gsmtp"
)


def test_addresses_and_relay_ids_are_hidden_and_the_rest_kept() -> None:
    one = GMAIL.format(id="41be03b00d2f7-b1bd6f6c6b4si1234567a12.123")
    other = GMAIL.format(id="d9443c01a7336-2a1f0e0b7b8si9876543a99.210")
    assert reply_words.hidden(one) == reply_words.hidden(other) == GMAIL.format(id="…")
    assert (
        reply_words.hidden("550 5.1.1 <ola.nordmann@example.no>: Recipient address rejected")
        == "550 5.1.1 <(adresse)>: Recipient address rejected"
    )
    # Status codes, hosts, words, dates and short numbers stay as the relay wrote them.
    kept = "451 4.7.1 mx01.firma.no: greylisted until 2026-11-30, try in 300 seconds (RBL-1234)"
    assert reply_words.hidden(kept) == kept


def test_the_address_is_said_in_the_readers_language() -> None:
    said = reply_words.hidden("550 <kari@firma.no>", {"(adresse)": "(address)"}.__getitem__)
    assert said == "550 <(address)>"


def test_a_letters_code_and_altinns_reply_are_worded() -> None:
    failed = DeliveryState.FAILED.value
    assert reply_words.worded("letter", failed, "no_postal_address") == (
        "ingen postadresse eller forretningsadresse i registeret"
    )
    returned = reply_words.worded("letter", DeliveryState.RETURNED.value, "flyttet, kari@x.no")
    assert returned == "flyttet, (adresse)"
    reserved = reply_words.worded("altinn", failed, "Reserved")
    assert reserved != "Reserved"
    assert "reserv" in reserved.lower()


@pytest.fixture
def failures(db: Database, campaign_id: int) -> int:
    """The campaign's six deliveries: four refused by Gmail (each with its own id and address),
    one refused for a full mailbox, one waiting."""
    ids = [int(r[0]) for r in db.query("SELECT id FROM deliveries ORDER BY id")]
    with db.transaction():
        for n, did in enumerate(ids[:4]):
            reply = GMAIL.format(id=f"41be03b00d2f{n}-b1bd6f6c6b4si123456{n}a12.123")
            db.execute(
                "UPDATE deliveries SET state = 'failed', last_reply = ? WHERE id = ?",
                (f"{reply} <person{n}@gmail.com>", did),
            )
        db.execute(
            "UPDATE deliveries SET state = 'failed', last_reply = '552 5.2.2 Mailbox full' "
            "WHERE id = ?",
            (ids[4],),
        )
        db.execute(
            "UPDATE deliveries SET state = 'deferred', last_reply = NULL WHERE id = ?", (ids[5],)
        )
    return campaign_id


def test_the_most_common_reason_is_counted_whole_however_its_replies_differ(
    db: Database, failures: int
) -> None:
    states = (DeliveryState.DEFERRED, DeliveryState.FAILED)
    # Fewer shown than there are distinct replies: the grouping is made before the cut.
    found = reply_words.grouped(db, failures, states, 1)
    assert [r.as_dict() for r in found] == [
        {"channel": "email", "state": "deferred", "reason": "", "count": 1},
        {
            "channel": "email",
            "state": "failed",
            "reason": GMAIL.format(id="…") + " <(adresse)>",
            "count": 4,
        },
    ]
    everything = reply_words.grouped(db, failures, states, 5, channel="email")
    assert [(r.state, r.reason, r.count) for r in everything][1:] == [
        ("failed", GMAIL.format(id="…") + " <(adresse)>", 4),
        ("failed", "552 5.2.2 Mailbox full", 1),
    ]
    assert reply_words.grouped(db, failures, states, 5, channel="letter") == []
