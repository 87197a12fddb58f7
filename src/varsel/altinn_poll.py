"""Polling Altinn: how each accepted correspondence stands, and what that makes of it.

`poll` asks Altinn for each accepted correspondence's status (up to `altinn_concurrency` at once,
through `altinn.in_flight`, the store on the calling thread): published or anything after it
(fetched, read, confirmed …) makes the delivery `delivered`; Failed or Reserved make it
`failed`; purged counts as delivered if it was published first. Sending is in `altinn`.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from functools import partial
from typing import Any

from varsel.altinn import (
    CHANNEL,
    DELIVERED,
    FAILED,
    PURGED,
    altinn_counts,
    client_for,
    concurrency_for,
    finish,
    in_flight,
)
from varsel.altinn_client import (
    NOT_FOUND,
    AltinnClient,
    AltinnRejected,
    AltinnStatus,
    AltinnUnavailable,
    status_name,
)
from varsel.campaign import get_campaign
from varsel.clock import utcnow_iso
from varsel.config import Settings
from varsel.db import Database
from varsel.i18n import fmt_int
from varsel.outbox import DeliveryState


@dataclass(frozen=True)
class PollRun:
    """What one `varsel altinn poll` found."""

    campaign_id: int
    delivered: int  # published (or further) since the last poll
    failed: int  # Altinn gave up on them
    waiting: int  # accepted, not yet published
    unsent: int  # not yet accepted by Altinn: `altinn send` sends them
    interrupted: str | None = None

    def summary(self) -> str:
        lines = [
            f"Kampanje {self.campaign_id}: {fmt_int(self.delivered)} nye levert i Altinn, "
            f"{fmt_int(self.failed)} feilet, {fmt_int(self.waiting)} venter på publisering."
        ]
        if self.unsent:
            lines.append(
                f"{fmt_int(self.unsent)} er ikke tatt imot av Altinn ennå; kjør «varsel altinn "
                f"send {self.campaign_id}»."
            )
        if self.interrupted:
            lines.append(f"Stoppet: {self.interrupted}")
        return "\n".join(lines)

    def as_dict(self) -> dict[str, Any]:
        return {
            "campaign_id": self.campaign_id,
            "delivered": self.delivered,
            "failed": self.failed,
            "waiting": self.waiting,
            "unsent": self.unsent,
            "interrupted": self.interrupted,
        }


def outcome_of(details: dict[str, Any]) -> tuple[DeliveryState | None, str]:
    """What a correspondence's details mean for its delivery: delivered, failed, or not yet."""
    status = status_name(details.get("status"))
    text = " ".join(str(details.get("statusText") or "").split())
    shown = f"{status}: {text}" if text and text != status else status
    try:
        known = AltinnStatus(status)
    except ValueError:
        return None, shown
    if known in DELIVERED:
        return DeliveryState.DELIVERED, shown
    if known in FAILED:
        return DeliveryState.FAILED, shown
    if known in PURGED:
        # Purged after it was published counts as delivered; purged before, it never was.
        history = {
            status_name(h.get("status"))
            for h in details.get("statusHistory") or []
            if isinstance(h, dict)
        }
        was_published = any(s in history for s in DELIVERED)
        return (DeliveryState.DELIVERED if was_published else DeliveryState.FAILED), shown
    return None, shown


def poll(
    db: Database,
    settings: Settings,
    campaign_id: int,
    *,
    client: AltinnClient | None = None,
    concurrency: int | None = None,
    progress: Callable[[int], None] | None = None,
) -> PollRun:
    """Ask Altinn how each accepted correspondence stands; settle the published and failed.

    Up to `concurrency` requests (default: the altinn_concurrency setting) are in flight at
    once, the first alone; the store is used from the calling thread only.
    """
    with client_for(settings, client) as http:
        return _poll(db, http, campaign_id, concurrency_for(settings, concurrency), progress)


def _poll(
    db: Database,
    http: AltinnClient,
    campaign_id: int,
    concurrency: int,
    progress: Callable[[int], None] | None,
) -> PollRun:
    get_campaign(db, campaign_id)
    todo = [
        _Asking(int(r[0]), r[2], r[3], f"status for Altinn-melding {r[0]} til {r[1]}")
        for r in db.query(
            "SELECT id, key, message_id, last_reply FROM deliveries WHERE campaign_id = ? "
            "AND channel = ? AND state = ? AND message_id IS NOT NULL ORDER BY id",
            (campaign_id, CHANNEL, DeliveryState.SUBMITTED.value),
        )
    ]
    delivered = failed = 0
    interrupted: str | None = None
    error: Exception | None = None

    def settle(asking: _Asking, future: Future[dict[str, Any]]) -> bool:
        nonlocal delivered, failed, interrupted, error
        try:
            details = future.result()
        except AltinnUnavailable as e:
            interrupted = e.message if interrupted is None else interrupted
            return False
        except Exception as e:  # raised once those in flight are recorded
            error = e if error is None else error
            return False
        state = _note_status(db, campaign_id, asking, details)
        delivered += state is DeliveryState.DELIVERED
        failed += state is DeliveryState.FAILED
        if progress is not None:
            progress(1)
        return True

    in_flight(iter(todo), partial(_details, http), settle, concurrency)
    if error is not None:
        raise error
    counts = altinn_counts(db, campaign_id)
    return PollRun(
        campaign_id,
        delivered,
        failed,
        counts["accepted"],
        counts["unsent"],
        interrupted,
    )


@dataclass(frozen=True)
class _Asking:
    """One accepted correspondence whose status is asked for."""

    delivery_id: int
    altinn_id: str
    last_reply: str | None
    what: str


def _details(http: AltinnClient, asking: _Asking) -> dict[str, Any]:
    """On a pool thread: the correspondence's details; one Altinn does not know has failed."""
    try:
        return http.details(asking.altinn_id, asking.what)
    except AltinnRejected as e:
        if e.problem.status != 404:
            raise
        return {"status": AltinnStatus.FAILED.value, "statusText": NOT_FOUND}


def _note_status(
    db: Database, campaign_id: int, asking: _Asking, details: dict[str, Any]
) -> DeliveryState | None:
    """Record what the details make of the delivery: delivered, failed, or (None) not yet."""
    state, shown = outcome_of(details)
    event_detail = {
        "correspondence_id": asking.altinn_id,
        "status": status_name(details.get("status")),
        "status_text": details.get("statusText"),
        "status_changed": details.get("statusChanged"),
    }
    if state is DeliveryState.DELIVERED:
        finish(
            db,
            campaign_id,
            asking.delivery_id,
            state,
            None,
            shown,
            "altinn_delivered",
            event_detail,
        )
    elif state is DeliveryState.FAILED:
        finish(
            db, campaign_id, asking.delivery_id, state, None, shown, "altinn_failed", event_detail
        )
    elif shown != asking.last_reply:
        with db.transaction():
            db.execute(
                "UPDATE deliveries SET last_reply = ?, updated_at = ? WHERE id = ?",
                (shown[:500], utcnow_iso(), asking.delivery_id),
            )
    return state
