# The registry_db fixture is imported from test_letters, so the tests' parameters of that name
# redefine the import, as pytest means them to.
# ruff: noqa: F811
"""Who needs a letter: the recipients e-mail did not reach, and only those."""

from __future__ import annotations

from pathlib import Path

from test_letters import (  # noqa: F401  # registry_db is a fixture
    EY,
    NORDEA,
    TELENOR,
    campaign,
    email_deliveries,
    registry_db,
)
from varsel.bounces import EVENT_KINDS, BounceKind
from varsel.config import Settings
from varsel.db import Database
from varsel.letter_candidates import candidates
from varsel.outbox import record_event


def test_a_complaint_or_a_temporary_failure_gets_no_letter(
    registry_db: Database, settings: Settings, tmp_path: Path
) -> None:
    # A complaint came from someone who got the e-mail; a 4xx until retries ran out says
    # nothing about the address.
    cid = campaign(registry_db, settings, tmp_path)
    (complained, _), (gave_up, _) = email_deliveries(registry_db)[:2]
    registry_db.execute("UPDATE deliveries SET state = 'bounced' WHERE id = ?", (complained,))
    record_event(registry_db, cid, complained, EVENT_KINDS[BounceKind.COMPLAINT])
    registry_db.execute(
        "UPDATE deliveries SET state = 'failed', last_reply = ? WHERE id = ?",
        ("451 4.7.1 Try again later", gave_up),
    )
    assert {c.orgnr for c in candidates(registry_db, cid)} == {NORDEA, EY, TELENOR}


def test_a_unit_whose_email_is_still_pending_gets_no_letter(
    registry_db: Database, settings: Settings, tmp_path: Path
) -> None:
    cid = campaign(registry_db, settings, tmp_path)
    assert registry_db.scalar(
        "SELECT count(*) FROM deliveries WHERE channel = 'email' AND state = 'queued'"
    )
    reasons = {c.orgnr: c.reason for c in candidates(registry_db, cid)}
    assert reasons == dict.fromkeys([NORDEA, EY, TELENOR], "no_email")
