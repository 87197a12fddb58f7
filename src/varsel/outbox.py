"""The outbox: one durable row per delivery, written before any byte goes out.

A delivery moves `queued → claimed → sent | deferred → … | failed | suppressed | in_doubt`.
`claimed` with `data_started_at` set means the final dot of DATA may have reached the relay:
if the sender dies then, the delivery is in doubt and is resent only when an operator says so.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from varsel import claimed_units
from varsel.claimed_units import UnitToSend
from varsel.clock import utcnow_iso
from varsel.db import Database
from varsel.suppression import SuppressionKind


class DeliveryState(StrEnum):
    """Where one delivery stands."""

    QUEUED = "queued"  # waiting to be sent
    CLAIMED = "claimed"  # a sender has it; data_started_at says whether DATA may have gone out
    SENT = "sent"  # the relay accepted it (2xx after DATA)
    DEFERRED = "deferred"  # a temporary failure; retried at next_attempt_at
    FAILED = "failed"  # a permanent refusal (5xx), or retries ran out
    SUPPRESSED = "suppressed"  # the address or unit must not be contacted
    IN_DOUBT = "in_doubt"  # may or may not have been delivered; an operator decides
    CANCELLED = "cancelled"  # the campaign was cancelled before it was sent
    BOUNCED = "bounced"  # accepted by the relay, then a hard bounce or complaint came back
    PRODUCED = "produced"  # letter: rendered into a print batch, not yet reported posted
    POSTED = "posted"  # letter: the print house reports it handed to the post
    RETURNED = "returned"  # letter: came back undelivered
    SUBMITTED = "submitted"  # Altinn: the correspondence was accepted, not yet published
    DELIVERED = "delivered"  # Altinn: published in the organisation's inbox


FINAL_STATES = frozenset(
    {
        DeliveryState.SENT,
        DeliveryState.FAILED,
        DeliveryState.SUPPRESSED,
        DeliveryState.CANCELLED,
        DeliveryState.BOUNCED,
        DeliveryState.POSTED,
        DeliveryState.RETURNED,
        DeliveryState.DELIVERED,
    }
)
PENDING_STATES = (DeliveryState.QUEUED, DeliveryState.DEFERRED, DeliveryState.CLAIMED)


@dataclass(frozen=True)
class Delivery:
    """One outbox row, with the units it names."""

    id: int
    campaign_id: int
    address: str
    language: str
    code: str
    unsubscribe_token: str
    attempts: int
    created_at: str
    # The orgnr of every unit the message is addressed to; empty when the sender left reading
    # them to its build workers (outbox_claims).
    units: tuple[str, ...]

    @property
    def domain(self) -> str:
        return self.address.rsplit("@", 1)[-1]


_DELIVERY_COLUMNS = (
    "id, campaign_id, address, language, code, unsubscribe_token, attempts, created_at"
)


def claim(
    db: Database,
    campaign_id: int,
    worker: str,
    limit: int,
    now: str,
    lease_until: str | None = None,
) -> list[Delivery]:
    """Take up to limit due deliveries of a campaign for this worker, in one transaction."""
    rows = claim_rows(db, campaign_id, worker, limit, now, lease_until)
    return [c.delivery for c in with_units(db, campaign_id, rows)]


@dataclass(frozen=True, slots=True)
class Claimed:
    """A claimed delivery with what sending it needs from the store."""

    delivery: Delivery
    address_suppressed: bool
    units: tuple[UnitToSend, ...]


def claim_rows(
    db: Database,
    campaign_id: int,
    worker: str,
    limit: int,
    now: str,
    lease_until: str | None = None,
) -> list[Any]:
    """The claiming half of claim(): one short transaction; rows for with_units()."""
    skip_locked = " FOR UPDATE SKIP LOCKED" if db.dialect == "postgresql" else ""
    rows: list[Any] = []
    with db.transaction():
        # One state at a time, retries first: the index on (campaign, state, next_attempt_at)
        # then yields the rows in order, where both states at once would sort every due row
        # of the campaign for each batch (a cost that grows with the campaign).
        for state in (DeliveryState.DEFERRED, DeliveryState.QUEUED):
            if len(rows) >= limit:
                break
            rows += db.query(
                f"UPDATE deliveries SET state = ?, claimed_by = ?, lease_until = ?, "
                f"updated_at = ? WHERE id IN (SELECT id FROM deliveries WHERE campaign_id = ? "
                f"AND state = ? AND next_attempt_at <= ? ORDER BY next_attempt_at, id "
                f"LIMIT ?{skip_locked}) RETURNING {_DELIVERY_COLUMNS}, EXISTS (SELECT 1 FROM "
                "suppressions s WHERE s.kind = ? AND s.value = deliveries.address)",
                (
                    DeliveryState.CLAIMED.value,
                    worker,
                    lease_until,
                    now,
                    campaign_id,
                    state.value,
                    now,
                    limit - len(rows),
                    SuppressionKind.ADDRESS.value,
                ),
            )
    return rows


def with_units(db: Database, campaign_id: int, rows: list[Any]) -> list[Claimed]:
    """Claimed rows (claim_rows) with their units' names and the units' suppressions.

    A read of its own, after the claim's commit: a delivery's units and their names do not
    change once the campaign is created, and the suppressions read now are as current as any.
    A store's writer need not wait for it (the sender reads on a connection of its own).
    """
    if not rows:
        return []
    units = claimed_units.read(db.query, campaign_id, [int(r[0]) for r in rows])
    out = []
    for r in sorted(rows, key=lambda r: int(r[0])):
        mine = tuple(units[int(r[0])])
        out.append(Claimed(delivery_of(r, tuple(u[0] for u in mine)), address_suppressed(r), mine))
    return out


def delivery_of(row: Any, units: tuple[str, ...] = ()) -> Delivery:
    """A claimed row (claim_rows) as a Delivery; its units' orgnrs if they have been read."""
    return Delivery(
        int(row[0]), int(row[1]), row[2], row[3], row[4], row[5], int(row[6]), row[7], units
    )


def address_suppressed(row: Any) -> bool:
    """Whether a claimed row's (claim_rows) address was suppressed when it was claimed."""
    return bool(row[8])


def recover(db: Database, campaign_id: int, *, worker: str | None = None) -> tuple[int, int]:
    """After a crash: claimed rows whose DATA may have gone out become in doubt, the rest queued.

    Returns (in doubt, requeued). With worker, only that worker's rows are touched.
    """
    now = utcnow_iso()
    who = " AND claimed_by = ?" if worker else ""
    extra: tuple[Any, ...] = (worker,) if worker else ()
    with db.transaction():
        doubt = db.execute(
            "UPDATE deliveries SET state = ?, claimed_by = NULL, lease_until = NULL, "
            "updated_at = ? WHERE campaign_id = ? AND state = ? AND data_started_at IS NOT NULL"
            + who,
            (DeliveryState.IN_DOUBT.value, now, campaign_id, DeliveryState.CLAIMED.value, *extra),
        ).rowcount
        requeued = db.execute(
            "UPDATE deliveries SET state = ?, claimed_by = NULL, lease_until = NULL, "
            "updated_at = ? WHERE campaign_id = ? AND state = ? AND data_started_at IS NULL" + who,
            (DeliveryState.QUEUED.value, now, campaign_id, DeliveryState.CLAIMED.value, *extra),
        ).rowcount
        if doubt:
            record_event(db, campaign_id, None, "recovered_in_doubt", {"count": doubt})
    return int(doubt), int(requeued)


def counts(db: Database, campaign_id: int, channel: str = "email") -> dict[str, int]:
    """Number of deliveries in every state (all states present, zero when none)."""
    out = {s.value: 0 for s in DeliveryState}
    for state, n in db.query(
        "SELECT state, count(*) FROM deliveries WHERE campaign_id = ? AND channel = ? "
        "GROUP BY state",
        (campaign_id, channel),
    ):
        out[state] = int(n)
    return out


# The states each channel's deliveries pass through, in the order `campaign status` shows them.
CHANNEL_STATES: dict[str, tuple[DeliveryState, ...]] = {
    "email": (
        DeliveryState.QUEUED,
        DeliveryState.CLAIMED,
        DeliveryState.SENT,
        DeliveryState.DEFERRED,
        DeliveryState.FAILED,
        DeliveryState.BOUNCED,
        DeliveryState.SUPPRESSED,
        DeliveryState.IN_DOUBT,
        DeliveryState.CANCELLED,
    ),
    "letter": (
        DeliveryState.QUEUED,
        DeliveryState.PRODUCED,
        DeliveryState.POSTED,
        DeliveryState.RETURNED,
        DeliveryState.FAILED,
        DeliveryState.SUPPRESSED,
        DeliveryState.CANCELLED,
    ),
    "altinn": (
        DeliveryState.QUEUED,
        DeliveryState.SUBMITTED,
        DeliveryState.DELIVERED,
        DeliveryState.FAILED,
        DeliveryState.SUPPRESSED,
        DeliveryState.CANCELLED,
    ),
}


def counts_by_channel(db: Database, campaign_id: int) -> dict[str, dict[str, int]]:
    """Deliveries per channel and state: every channel's own states (zero when none).

    A state a channel does not normally reach is listed too when a delivery is in it, so the
    numbers always add up to the campaign's deliveries.
    """
    out = {channel: {s.value: 0 for s in states} for channel, states in CHANNEL_STATES.items()}
    for channel, state, n in db.query(
        "SELECT channel, state, count(*) FROM deliveries WHERE campaign_id = ? "
        "GROUP BY channel, state",
        (campaign_id,),
    ):
        out.setdefault(channel, {})[state] = int(n)
    # An Altinn message is stored as submitted when it is planned, before Altinn has taken it
    # (a run with --limit, or one cut short): until it has Altinn's id it is waiting, not sent.
    planned = int(
        db.scalar(
            "SELECT count(*) FROM deliveries WHERE campaign_id = ? AND channel = 'altinn' "
            "AND state = ? AND message_id IS NULL",
            (campaign_id, DeliveryState.SUBMITTED.value),
        )
        or 0
    )
    if planned:
        altinn = out["altinn"]
        altinn[DeliveryState.SUBMITTED.value] -= planned
        altinn[DeliveryState.QUEUED.value] += planned
    return out


@dataclass(frozen=True)
class InDoubt:
    """A delivery that may or may not have reached the relay."""

    id: int
    address: str
    units: tuple[str, ...]
    data_started_at: str | None
    last_reply: str | None

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "address": self.address,
            "units": list(self.units),
            "data_started_at": self.data_started_at,
            "last_reply": self.last_reply,
        }


def in_doubt(db: Database, campaign_id: int) -> list[InDoubt]:
    """Every in-doubt delivery of a campaign."""
    rows = db.query(
        "SELECT id, address, data_started_at, last_reply FROM deliveries WHERE campaign_id = ? "
        "AND state = ? ORDER BY id",
        (campaign_id, DeliveryState.IN_DOUBT.value),
    )
    out = []
    for delivery_id, address, started, reply in rows:
        units = tuple(
            r[0]
            for r in db.query(
                "SELECT orgnr FROM delivery_units WHERE delivery_id = ? ORDER BY orgnr",
                (delivery_id,),
            )
        )
        out.append(InDoubt(int(delivery_id), address, units, started, reply))
    return out


def resend_in_doubt(db: Database, campaign_id: int, *, actor: str | None = None) -> int:
    """The operator's decision: queue every in-doubt delivery again. Returns how many."""
    from varsel import audit

    now = utcnow_iso()
    with db.transaction():
        n = db.execute(
            "UPDATE deliveries SET state = ?, data_started_at = NULL, next_attempt_at = ?, "
            "updated_at = ? WHERE campaign_id = ? AND state = ?",
            (DeliveryState.QUEUED.value, now, now, campaign_id, DeliveryState.IN_DOUBT.value),
        ).rowcount
        record_event(db, campaign_id, None, "resend_in_doubt", {"count": n})
        # Some of these may arrive twice: who decided that is worth keeping.
        audit.record(
            db,
            actor or audit.SYSTEM,
            audit.Action.CAMPAIGN_RESEND_IN_DOUBT,
            f"campaign:{campaign_id}",
            {"count": n},
        )
    return int(n)


# The reason a delivery settled as not sent gives where failures are listed (status, console).
NOT_RESENT = "usikker: ikke sendt på nytt (operatørens avgjørelse)"


def settle_in_doubt(
    db: Database,
    campaign_id: int,
    *,
    delivered: bool,
    deliveries: Sequence[int] = (),
    actor: str | None = None,
) -> int:
    """The operator's other decision: settle in-doubt deliveries without sending them again.

    delivered: the relay's log shows it took the message (sent, at the time its transfer
    began); otherwise the message is given up (failed, NOT_RESENT as its reason), and the
    business counts as not reached by e-mail. Only `deliveries` when given (each must be in
    doubt in this campaign, or nothing changes); else every one in doubt. Returns how many.
    """
    from varsel import audit
    from varsel.errors import UserError

    wanted = sorted(set(deliveries))
    now = utcnow_iso()
    with db.transaction():
        doubtful = {
            int(r[0])
            for r in db.query(
                "SELECT id FROM deliveries WHERE campaign_id = ? AND state = ?",
                (campaign_id, DeliveryState.IN_DOUBT.value),
            )
        }
        for delivery_id in wanted:
            if delivery_id not in doubtful:
                raise UserError(
                    f"leveranse {delivery_id} er ikke usikker i kampanje {campaign_id} "
                    f"(se «varsel campaign status {campaign_id}»); ingenting er endret"
                )
        chosen = wanted or sorted(doubtful)
        state = DeliveryState.SENT if delivered else DeliveryState.FAILED
        for delivery_id in chosen:
            if delivered:
                db.execute(
                    "UPDATE deliveries SET state = ?, sent_at = COALESCE(data_started_at, ?), "
                    "updated_at = ? WHERE id = ?",
                    (state.value, now, now, delivery_id),
                )
            else:
                db.execute(
                    "UPDATE deliveries SET state = ?, last_reply = ?, updated_at = ? WHERE id = ?",
                    (state.value, NOT_RESENT, now, delivery_id),
                )
        detail: dict[str, Any] = {"count": len(chosen), "as": state.value}
        if wanted:
            detail["deliveries"] = wanted
        record_event(db, campaign_id, None, "settle_in_doubt", detail)
        audit.record(
            db,
            actor or audit.SYSTEM,
            audit.Action.CAMPAIGN_SETTLE_IN_DOUBT,
            f"campaign:{campaign_id}",
            detail,
        )
    return len(chosen)


def record_event(
    db: Database,
    campaign_id: int | None,
    delivery_id: int | None,
    kind: str,
    detail: dict[str, Any] | None = None,
) -> None:
    """Append one fact to the event log."""
    db.execute(
        "INSERT INTO events (at, campaign_id, delivery_id, kind, detail) VALUES (?, ?, ?, ?, ?)",
        (
            utcnow_iso(),
            campaign_id,
            delivery_id,
            kind,
            json.dumps(detail, ensure_ascii=False) if detail else None,
        ),
    )
