from __future__ import annotations

from pathlib import Path

import pytest

from helpers import campaign_toml, sample_campaign
from varsel import codes, verify
from varsel.campaign import update_spec
from varsel.campaign_spec import load_spec
from varsel.config import Settings
from varsel.db import Database

CAMPAIGN = campaign_toml(public=False)


@pytest.fixture
def campaign_id(db: Database, brreg: Path, tmp_path: Path) -> int:
    return sample_campaign(db, brreg, tmp_path, CAMPAIGN)


def test_a_queued_code_is_not_genuine_until_it_may_have_been_sent(
    db: Database, campaign_id: int
) -> None:
    delivery_id, code = db.query("SELECT id, code FROM deliveries ORDER BY id")[0]
    assert verify.lookup(db, codes.format_code(code)) is None
    db.execute(
        "UPDATE deliveries SET state = 'sent', sent_at = ? WHERE id = ?",
        ("2026-01-05T10:00:00.000Z", delivery_id),
    )
    found = verify.lookup(db, code.lower())
    assert found is not None
    assert (found.delivery_id, found.campaign_id, found.sent_at) == (
        delivery_id,
        campaign_id,
        "2026-01-05T10:00:00.000Z",
    )
    assert found.units
    assert all(u.name for u in found.units)
    assert db.query("SELECT kind, delivery_id FROM events ORDER BY id") == [
        ("verify_unknown", None),
        ("verify_ok", delivery_id),
    ]


def test_a_bounced_or_complained_about_message_is_still_genuine(
    db: Database, campaign_id: int
) -> None:
    # A bounce or a spam complaint comes after the message left: whoever holds it (the
    # complainant has it in front of them) must be told it is ours, not that it is fake.
    (first, one), (second, two) = db.query("SELECT id, code FROM deliveries ORDER BY id")[:2]
    with db.transaction():
        for delivery_id in (first, second):
            db.execute(
                "UPDATE deliveries SET state = 'bounced', sent_at = ? WHERE id = ?",
                ("2026-01-05T10:00:00.000Z", delivery_id),
            )
    found = [verify.lookup(db, code) for code in (one, two)]
    assert [f.delivery_id if f else None for f in found] == [first, second]
    kinds = [k for (k,) in db.query("SELECT kind FROM events ORDER BY id")]
    assert kinds == ["verify_ok", "verify_ok"]


def test_unsubscribing_the_organisation_suppresses_every_unit(
    db: Database, campaign_id: int
) -> None:
    token = db.scalar("SELECT unsubscribe_token FROM deliveries ORDER BY id")
    found = verify.by_token(db, token)
    assert found is not None
    added = verify.unsubscribe(db, found, verify.UnsubscribeScope.ORGANISATION, one_click=False)
    assert added == [u.orgnr for u in found.units]
    assert (
        verify.unsubscribe(db, found, verify.UnsubscribeScope.ORGANISATION, one_click=False) == []
    )
    assert verify.by_token(db, "nope") is None


def _send_all(db: Database) -> list[str]:
    db.execute("UPDATE deliveries SET state = 'sent', sent_at = '2026-01-05T10:00:00.000Z'")
    return [str(c) for (c,) in db.query("SELECT code FROM deliveries ORDER BY id LIMIT 2")]


def test_several_codes_are_found_in_one_go_as_one_at_a_time(db: Database, campaign_id: int) -> None:
    first, second = _send_all(db)
    typed = [codes.format_code(second).lower(), "ABCD-2345-WXYZ", "nonsense", first]
    found = verify.by_codes(db, typed)
    assert found == [verify.by_code(db, t) for t in typed]
    assert [f.delivery_id if f else None for f in found] == [
        db.scalar("SELECT id FROM deliveries WHERE code = ?", (second,)),
        None,
        None,
        db.scalar("SELECT id FROM deliveries WHERE code = ?", (first,)),
    ]


def test_lookups_are_recorded_in_one_go(db: Database, campaign_id: int) -> None:
    first, _ = _send_all(db)
    found = verify.by_code(db, first)
    assert found is not None
    unknown = codes.new_code()  # well formed; 55 random bits are in no store
    verify.record_lookups(db, [(first, found), (unknown, None), ("nonsense", None)])
    assert db.query("SELECT kind, delivery_id, detail FROM events ORDER BY id") == [
        ("verify_ok", found.delivery_id, None),
        ("verify_unknown", None, '{"well_formed": true}'),
        ("verify_unknown", None, '{"well_formed": false}'),
    ]


def test_a_changed_definition_shows_in_the_next_lookup(
    db: Database, campaign_id: int, tmp_path: Path
) -> None:
    first, _ = _send_all(db)
    found = verify.by_code(db, first)
    assert found is not None
    assert found.spec.document_title == "Sikkerhetsråd"
    settings = Settings.load(environ={}, dkim_key_dir=str(tmp_path / "keys"))
    path = tmp_path / "c.toml"
    path.write_text(CAMPAIGN.replace('title = "Sikkerhetsråd"', 'title = "Nye råd"'), "utf-8")
    update_spec(db, campaign_id, load_spec(path, settings), actor="test")
    again = verify.by_code(db, first)
    assert again is not None
    assert again.spec.document_title == "Nye råd"


def test_a_found_code_tells_its_channel_and_the_language_it_was_sent_in(
    db: Database, campaign_id: int
) -> None:
    from varsel import letters
    from varsel.outbox import DeliveryState

    first, _ = _send_all(db)
    orgnr = db.scalar("SELECT orgnr FROM recipients ORDER BY orgnr")
    letter = codes.new_code()
    with db.transaction():
        letters.new_delivery(
            db,
            campaign_id,
            orgnr,
            "nn",
            DeliveryState.POSTED,
            letter.replace("-", ""),
            "2026-01-06T09:00:00.000Z",
        )
    email, posted = verify.by_codes(db, [first, letter])
    assert email is not None
    assert posted is not None
    assert (email.channel, email.language) == ("email", "nb")
    assert (posted.channel, posted.language, posted.code) == ("letter", "nn", letter)
    assert [u.orgnr for u in posted.units] == [orgnr]
    token = db.scalar("SELECT unsubscribe_token FROM deliveries WHERE code = ?", (first,))
    by_token = verify.by_token(db, token)
    assert by_token is not None
    assert (by_token.channel, by_token.language) == ("email", "nb")
