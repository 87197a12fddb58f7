from __future__ import annotations

from pathlib import Path

import pytest

from varsel import codes, verify
from varsel.campaign import create_campaign
from varsel.config import Settings
from varsel.db import Database
from varsel.registry import import_dump

CAMPAIGN = """
[campaign]
name = "Test"
[sender]
address = "sikkerhet@nsr-org.no"
name = "NSR"
organisation = "Oslo politidistrikt og NSR"
[document]
title = "Sikkerhetsråd"
url = "https://www.politiet.no/rad.pdf"
[segment]
police_district = ["oslo"]
"""


@pytest.fixture
def campaign_id(db: Database, brreg: Path, tmp_path: Path) -> int:
    settings = Settings.load(environ={}, dkim_key_dir=str(tmp_path / "keys"))
    import_dump(db, brreg / "enheter-sample.json")
    path = tmp_path / "c.toml"
    path.write_text(CAMPAIGN, "utf-8")
    return create_campaign(db, settings, path).campaign.id


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
