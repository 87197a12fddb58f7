# The campaign_id fixture is imported from test_sender, so the tests' parameters of that name
# redefine the import, as pytest means them to.
"""The sender's claims: a batch claimed, its units read, split into messages and suppressions."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Callable
from typing import Any

from varsel.clock import utcnow, utcnow_iso
from varsel.db import Database
from varsel.outbox_claims import Claim, Claimer
from varsel.suppression import SuppressionKind, SuppressionReason, add


async def on_the_loop(fn: Callable[..., Any], *args: Any) -> Any:
    """The sender's database thread, here: the call runs on the event loop itself."""
    return fn(*args)


def claim_once(db: Database, campaign_id: int) -> Claim:
    def times() -> tuple[str, str]:
        return utcnow_iso(), (utcnow() + dt.timedelta(minutes=5)).isoformat()

    claimer = Claimer(db, campaign_id, "w1", 400, on_the_loop, times)
    try:
        claim = asyncio.run(claimer.claim())
    finally:
        claimer.close()
    assert claimer.reader_db is None  # the reader's connection (SQLite files) closes with it
    return claim


def test_a_batch_is_split_into_messages_to_build_and_deliveries_suppressed(
    db: Database, campaign_id: int
) -> None:
    with db.transaction():
        add(db, SuppressionKind.ADDRESS, "firmapost@statnett.no", SuppressionReason.UNSUBSCRIBED)
        # The unit is the only one its address serves: none is left to write to.
        add(db, SuppressionKind.UNIT, "935478715", SuppressionReason.UNSUBSCRIBED)
    claim = claim_once(db, campaign_id)
    assert claim.count == 6
    assert sorted(d.address for d in claim.suppressed) == [
        "firmapost@statnett.no",
        "post@baerum.kommune.no",
    ]
    assert len(claim.deliveries) == len(claim.jobs) == 4
    for d, job in zip(claim.deliveries, claim.jobs, strict=True):
        assert job[:5] == (d.id, d.address, d.language, d.code, d.unsubscribe_token)
        assert [orgnr for orgnr, _, _ in job[5]] == list(d.units)
    oslo = next(job for job in claim.jobs if job[1] == "postmottak@oslo.kommune.no")
    assert oslo[5] == (("958935420", "OSLO KOMMUNE", "0301"),)
    # Suppressed or not, all six are claimed: the sender settles them.
    claimed = "SELECT count(*) FROM deliveries WHERE state = 'claimed' AND claimed_by = 'w1'"
    assert db.scalar(claimed) == 6
    assert claim.next_due is None


def test_a_claim_that_finds_nothing_due_says_when_the_next_retry_is(
    db: Database, campaign_id: int
) -> None:
    with db.transaction():
        db.execute(
            "UPDATE deliveries SET state = 'deferred', next_attempt_at = ? WHERE campaign_id = ?",
            ("2999-01-01T00:00:00.000Z", campaign_id),
        )
    claim = claim_once(db, campaign_id)
    assert (claim.count, claim.jobs, claim.suppressed) == (0, [], [])
    assert claim.next_due == "2999-01-01T00:00:00.000Z"
