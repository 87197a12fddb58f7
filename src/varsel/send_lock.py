"""The single sender's lock on a campaign, and the checks before a send takes it.

One process sends a campaign at a time: `campaigns.sender_pid` names it, and
`sender_lease_until` says until when its lock holds unless it is renewed. A send that cannot
go is refused with nothing changed (`check`, `refuse_status`); then the lock is taken (`take`),
renewed while the run goes on (`renew`), and given up when the run ends (`finish`) or fails
(`release`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

from varsel import outbox
from varsel.builder import make_factory
from varsel.campaign import STATUS_WORDS, Campaign, CampaignStatus
from varsel.campaign_spec import check_window
from varsel.clock import utcnow, utcnow_iso
from varsel.config import Settings
from varsel.db import Database
from varsel.errors import Text
from varsel.leases import holder_gone, local_time
from varsel.message import MessageFactory
from varsel.send_config import SendError, SendOptions, key_paths, message_spec

LEASE_SECONDS = 30.0


def check(
    settings: Settings, campaign: Campaign, options: SendOptions
) -> tuple[list[tuple[str, str, str]], MessageFactory]:
    """Refuse, before the campaign is locked, what would stop the send once it started.

    The campaign's status, its send window, its DKIM keys and templates: a campaign made
    before a check existed, or a key removed since the lint, is refused here with nothing
    changed, instead of stopping the run half-way. Returns the keys and the message factory.
    """
    refuse_status(campaign.id, campaign.status.value)
    check_window(campaign.spec.limits, f"kampanje {campaign.id} [window]")
    keys = key_paths(settings, campaign.spec) if options.sign else []
    return keys, make_factory(message_spec(campaign), keys)


def refuse_status(campaign_id: int, status: str) -> None:
    """Refuse a campaign whose status forbids sending it (paused, cancelled)."""
    cid = campaign_id
    if status == CampaignStatus.PAUSED.value:
        raise SendError(
            Text(
                "kampanje %(campaign)s er «%(status)s»; "
                "gjenoppta den med «varsel campaign resume» først",
                campaign=cid,
                status=STATUS_WORDS[CampaignStatus.PAUSED],
            )
        )
    if status == CampaignStatus.CANCELLED.value:
        raise SendError(
            Text(
                "kampanje %(campaign)s er «%(status)s»; den kan ikke sendes",
                campaign=cid,
                status=STATUS_WORDS[CampaignStatus.CANCELLED],
            )
        )


def take(
    db: Database,
    campaign_id: int,
    worker_id: str,
    on_start: Callable[[Database], None] | None,
) -> None:
    """Lock the campaign for one run, unless its status or a live holder forbids it."""
    cid = campaign_id
    now = utcnow()
    with db.transaction():
        row = db.query_one(
            "SELECT status, sender_pid, sender_lease_until FROM campaigns WHERE id = ?", (cid,)
        )
        assert row is not None  # noqa: S101
        status, holder, lease = row
        refuse_status(cid, status)
        if holder and lease and lease > utcnow_iso():
            if not holder_gone(holder):
                raise SendError(
                    Text(
                        "kampanje %(campaign)s sendes allerede av %(holder)s; vent, eller "
                        "stopp den prosessen; låsen går ut kl. %(until)s",
                        campaign=cid,
                        holder=holder,
                        until=local_time(lease),
                    )
                )
            # A process of this host that no longer runs: its lease would only make
            # everyone wait for it to run out.
            outbox.record_event(db, cid, None, "lease_taken_over", {"holder": holder})
        until = (now + dt.timedelta(seconds=LEASE_SECONDS)).isoformat()
        db.execute(
            "UPDATE campaigns SET status = ?, sender_pid = ?, sender_lease_until = ?, "
            "updated_at = ? WHERE id = ?",
            (CampaignStatus.SENDING.value, worker_id, until, utcnow_iso(), cid),
        )
        if on_start is not None:
            # In the lock's transaction: the gate checked again, and the send audited, only
            # when it really starts.
            on_start(db)


def renew(db: Database, campaign_id: int, worker_id: str) -> str:
    """Hold the lock for another LEASE_SECONDS; the campaign's status now."""
    until = (utcnow() + dt.timedelta(seconds=LEASE_SECONDS)).isoformat()
    with db.transaction():
        db.execute(
            "UPDATE campaigns SET sender_lease_until = ? WHERE id = ? AND sender_pid = ?",
            (until, campaign_id, worker_id),
        )
        return str(db.scalar("SELECT status FROM campaigns WHERE id = ?", (campaign_id,)))


def finish(
    db: Database, campaign_id: int, worker_id: str, sent: int, stopped: str
) -> dict[str, int]:
    """After a run: the campaign's status set and its lock given up; the counts per state."""
    cid = campaign_id
    counts = outbox.counts(db, cid)
    pending = counts["queued"] + counts["deferred"] + counts["claimed"]
    with db.transaction():
        db.execute(
            "UPDATE campaigns SET status = ?, sender_pid = NULL, sender_lease_until = NULL, "
            "updated_at = ? WHERE id = ?",
            (_status_after_run(db, cid, pending), utcnow_iso(), cid),
        )
        outbox.record_event(
            db,
            cid,
            None,
            "send_run",
            {"sent": sent, "stopped": stopped, "worker": worker_id},
        )
    return counts


def release(db: Database, campaign_id: int, worker_id: str, sent: int) -> None:
    """After an error: the run's claims settled, the campaign's status and lock restored."""
    cid = campaign_id
    outbox.recover(db, cid, worker=worker_id)
    counts = outbox.counts(db, cid)
    pending = counts["queued"] + counts["deferred"] + counts["claimed"]
    with db.transaction():
        holder = db.scalar("SELECT sender_pid FROM campaigns WHERE id = ?", (cid,))
        if holder == worker_id:  # a run whose lock was taken over leaves the campaign alone
            db.execute(
                "UPDATE campaigns SET status = ?, sender_pid = NULL, sender_lease_until = NULL, "
                "updated_at = ? WHERE id = ? AND sender_pid = ?",
                (_status_after_run(db, cid, pending), utcnow_iso(), cid, worker_id),
            )
        outbox.record_event(
            db,
            cid,
            None,
            "send_run",
            {"sent": sent, "stopped": "error", "worker": worker_id},
        )


def _status_after_run(db: Database, campaign_id: int, pending: int) -> str:
    """The status a run leaves the campaign in, however it ended, from its status now.

    In the caller's transaction, while the run still holds the campaign: nothing was claimed
    since `pending` was counted.
    """
    status = str(db.scalar("SELECT status FROM campaigns WHERE id = ?", (campaign_id,)))
    if status == CampaignStatus.SENDING.value:
        return (CampaignStatus.DONE if pending == 0 else CampaignStatus.READY).value
    if status == CampaignStatus.PAUSED.value and pending == 0:
        # Paused as its last messages went out: nothing is left to resume, so it is done.
        outbox.record_event(db, campaign_id, None, "pause_came_too_late", {})
        return CampaignStatus.DONE.value
    return status
