"""Retention: a finished campaign's contact data forgotten, its evidence kept.

Once a campaign is done (or cancelled), every delivery is final and the evaluation is made,
the authority may forget who the messages went to: the e-mail addresses become erasure's
stand-ins (every page that shows one says the address is deleted), and the relay's replies,
the print house's words on why a letter came back, the details of events, the failed
recipients of bounce reports, feedback's free text and the addresses that asked for the
document go. Kept: the campaign, its recipients (public registry data, what coverage and the
evaluation group by), every delivery's state, code, dates and channel, letters' and Altinn
messages' unit numbers, a letter's reason code and Altinn's replies (about the request, not
the recipient), the suppression list with its operators' notes (it honours opt-outs, for
every campaign; a note that names a unit goes when the unit is erased, erasure.py) and the
audit log. Nothing is undone.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from varsel import audit
from varsel.campaign import STATUS_WORDS, CampaignStatus, get_campaign
from varsel.clock import utcnow_iso
from varsel.db import Database
from varsel.erasure import erase_deliveries, is_stand_in, letter_reason, reply_codes, stand_in
from varsel.errors import UserError
from varsel.i18n import fmt_int
from varsel.outbox import FINAL_STATES, DeliveryState


class NotFinishedError(UserError):
    """The campaign is not finished: its contact data may still be needed."""


# A delivery that is not final, as the refusal counts it (most likely first).
_PENDING_WORDS = {
    DeliveryState.IN_DOUBT: "usikre",
    DeliveryState.QUEUED: "i kø",
    DeliveryState.DEFERRED: "utsatt",
    DeliveryState.CLAIMED: "under sending",
    DeliveryState.PRODUCED: "brev ikke meldt postlagt",
    DeliveryState.SUBMITTED: "Altinn ikke publisert",
}


@dataclass(frozen=True)
class Forgotten:
    """What forgetting a campaign erases (or erased): rows that still held contact data."""

    addresses: int  # e-mail deliveries whose address becomes a stand-in
    replies: int  # e-mail deliveries with the relay's reply text (its status codes stay)
    events: int  # events of its deliveries with details
    bounces: int  # bounce reports naming the failed recipient
    comments: int  # feedback answers with free text
    document_requests: int  # addresses that asked for the document
    letter_reasons: int = 0  # returned letters with the print house's words (a code stays)

    @property
    def total(self) -> int:
        return sum(asdict(self).values())

    def as_dict(self) -> dict[str, int]:
        return asdict(self)

    def lines(self) -> list[str]:
        """The counts in Bokmål, one a line."""
        return [
            f"{fmt_int(self.addresses):>8}  e-postadresser i leveransene",
            f"{fmt_int(self.replies):>8}  svar fra e-posttjeneren",
            f"{fmt_int(self.events):>8}  hendelser med detaljer",
            f"{fmt_int(self.bounces):>8}  returmeldinger som navngir mottakeren",
            f"{fmt_int(self.comments):>8}  fritekstkommentarer i tilbakemeldinger",
            f"{fmt_int(self.document_requests):>8}  adresser som ba om dokumentet",
            f"{fmt_int(self.letter_reasons):>8}  returbrev med fritekst fra trykkeriet",
        ]


def forgettable(db: Database, campaign_id: int) -> Forgotten:
    """What forget_campaign would erase, changing nothing; refused as it would be."""
    _check_finished(db, campaign_id)
    return _count(db, campaign_id, _Rows.read(db, campaign_id))


def forget_campaign(db: Database, campaign_id: int, *, actor: str) -> Forgotten:
    """Erase a finished campaign's contact data in one transaction, audited; keep its counts."""
    with db.transaction():
        _check_finished(db, campaign_id, lock=True)
        rows = _Rows.read(db, campaign_id)
        found = _count(db, campaign_id, rows)
        if found.total:
            _erase(db, campaign_id, rows)
        db.execute(
            "UPDATE campaigns SET forgotten_at = coalesce(forgotten_at, ?) WHERE id = ?",
            (utcnow_iso(), campaign_id),
        )
        audit.record(
            db, actor, audit.Action.CAMPAIGN_FORGET, f"campaign:{campaign_id}", found.as_dict()
        )
    return found


def forgotten_at(db: Database, campaign_id: int) -> str | None:
    """When the campaign's contact data was first forgotten, or None."""
    value = db.scalar("SELECT forgotten_at FROM campaigns WHERE id = ?", (campaign_id,))
    return None if value is None else str(value)


def _check_finished(db: Database, campaign_id: int, *, lock: bool = False) -> None:
    campaign = get_campaign(db, campaign_id)
    if lock and db.dialect == "postgresql":
        # A status change (resume, resend in doubt) waits for the forgetting, or the reverse.
        db.execute("SELECT 1 FROM campaigns WHERE id = ? FOR UPDATE", (campaign_id,))
        campaign = get_campaign(db, campaign_id)
    final = [s.value for s in FINAL_STATES]
    marks = ", ".join("?" * len(final))
    pending = {
        str(state): int(n)
        for state, n in db.query(
            f"SELECT state, count(*) FROM deliveries WHERE campaign_id = ? "
            f"AND state NOT IN ({marks}) GROUP BY state",
            (campaign_id, *final),
        )
    }
    if pending:
        total = sum(pending.values())
        parts = ", ".join(
            f"{fmt_int(n)} {_PENDING_WORDS.get(DeliveryState(s), s)}"
            for s, n in sorted(pending.items(), key=lambda kv: (-kv[1], kv[0]))
        )
        what = "leveranse er" if total == 1 else "leveranser er"
        raise NotFinishedError(
            f"kampanje {campaign_id} er ikke ferdig: {fmt_int(total)} {what} ikke avsluttet "
            f"({parts})"
        )
    if campaign.status not in (CampaignStatus.DONE, CampaignStatus.CANCELLED):
        raise NotFinishedError(
            f"kampanje {campaign_id} er «{STATUS_WORDS[campaign.status]}»: bare en kampanje "
            "som er «ferdig» eller «avbrutt», kan glemmes"
        )


@dataclass(frozen=True)
class _Rows:
    """The campaign's rows that hold contact data, read once for counting and erasing."""

    deliveries: list[Any]  # (id, channel, address, last_reply) of every channel
    requests: list[Any]  # (id, address) of its document requests

    @classmethod
    def read(cls, db: Database, campaign_id: int) -> _Rows:
        return cls(
            db.query(
                "SELECT id, channel, address, last_reply FROM deliveries WHERE campaign_id = ?",
                (campaign_id,),
            ),
            db.query(
                "SELECT id, address FROM document_requests WHERE campaign_id = ?", (campaign_id,)
            ),
        )

    @property
    def emails(self) -> list[Any]:
        return [r for r in self.deliveries if r[1] == "email"]


def _count(db: Database, campaign_id: int, rows: _Rows) -> Forgotten:
    emails = rows.emails
    addresses = sum(1 for _, _, address, _ in emails if not is_stand_in(address))
    replies = sum(1 for _, _, _, reply in emails if reply != reply_codes(reply))
    requests = sum(1 for _, address in rows.requests if not is_stand_in(address))
    reasons = sum(
        1
        for _, channel, _, reply in rows.deliveries
        if channel == "letter" and reply != letter_reason(reply)
    )
    row = db.query_one(
        "SELECT (SELECT count(*) FROM events e JOIN deliveries d ON d.id = e.delivery_id "
        "WHERE d.campaign_id = ? AND e.detail IS NOT NULL), "
        "(SELECT count(*) FROM bounce_messages b JOIN deliveries d ON d.id = b.delivery_id "
        "WHERE d.campaign_id = ? AND b.recipient IS NOT NULL), "
        "(SELECT count(*) FROM feedback f WHERE f.comment IS NOT NULL AND (f.campaign_id = ? "
        "OR f.delivery_id IN (SELECT id FROM deliveries WHERE campaign_id = ?)))",
        (campaign_id,) * 4,
    )
    assert row is not None  # noqa: S101 - an aggregate always returns one row
    events, bounces, comments = (int(v) for v in row)
    return Forgotten(addresses, replies, events, bounces, comments, requests, reasons)


def _erase(db: Database, campaign_id: int, rows: _Rows) -> None:
    # One stand-in per address, not per delivery: deliveries that shared an address (one per
    # unit) still share it, and a document request still matches the deliveries its address
    # received, which is how the evaluation counts downloads.
    by_address: dict[str, str] = {}
    replacements: dict[int, str | None] = {}
    for delivery_id, channel, address, _ in rows.deliveries:
        if channel != "email":
            # Letters and Altinn: address and key are the unit's number; only traces go (and
            # the free text of a letter's reason).
            replacements[int(delivery_id)] = None
            continue
        # One forgotten before keeps its stand-in: only what came since (a late bounce's
        # reply) is erased, and the same values are written again.
        kept = address if is_stand_in(address) else by_address.setdefault(address, stand_in())
        replacements[int(delivery_id)] = kept
    erase_deliveries(db, replacements)
    db.executemany(
        "UPDATE document_requests SET address = ? WHERE id = ?",
        [
            (by_address.get(address) or stand_in(), request_id)
            for request_id, address in rows.requests
            if not is_stand_in(address)
        ],
    )
    # Feedback given without a code names no delivery, but its free text is as personal.
    db.execute(
        "UPDATE feedback SET comment = NULL WHERE campaign_id = ? AND comment IS NOT NULL",
        (campaign_id,),
    )
