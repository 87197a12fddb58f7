"""The single sender's lock on a campaign, and the checks before a send takes it.

One process sends a campaign at a time: `campaigns.sender_pid` names it, and
`sender_lease_until` says until when its lock holds unless it is renewed. A send that cannot
go is refused with nothing changed (`check`, `refuse_status`); then the lock is taken (`take`),
renewed while the run goes on (`renew`), and given up when the run ends (`finish`) or fails
(`release`).

A campaign handed to the workers (`varsel campaign start`, PostgreSQL) is theirs: neither
`varsel campaign send` nor the console's Send takes it, whatever its lease says, until an
operator takes it back by pausing it and then sending it (`refuse_holder`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

from varsel import outbox
from varsel.builder import make_factory
from varsel.campaign import STATUS_WORDS, Campaign, CampaignStatus
from varsel.clock import utcnow, utcnow_iso
from varsel.config import Settings
from varsel.db import Database
from varsel.errors import N_, Text
from varsel.leases import WORKERS, holder_gone, local_time
from varsel.message import MessageFactory
from varsel.send_config import SendError, SendOptions, key_paths, message_spec
from varsel.send_window import check_window

LEASE_SECONDS = 30.0


# A campaign handed to the workers, asked of a single sender (the command line or the console).
WORKERS_ONLY = N_(
    "kampanje %(campaign)s er gitt til arbeiderne («varsel worker»), og bare de sender den; "
    "vil du sende den selv, sett den på pause med «varsel campaign pause %(campaign)s» og "
    "send den så med «varsel campaign send %(campaign)s»"
)


def check(
    settings: Settings, campaign: Campaign, options: SendOptions
) -> tuple[list[tuple[str, str, str]], MessageFactory]:
    """Refuse, before the campaign is locked, what would stop the send once it started.

    The campaign's status, its send window, its DKIM keys and templates: a campaign made
    before a check existed, or a key removed since the lint, is refused here with nothing
    changed, instead of stopping the run half-way. Returns the keys and the message factory.
    """
    if campaign.status is not CampaignStatus.PAUSED:
        # A paused campaign is judged by `take`, which knows its holder: a paused workers'
        # campaign is the one a single sender may take back.
        refuse_status(campaign.id, campaign.status.value)
    check_window(campaign.spec.limits, f"kampanje {campaign.id} [window]")
    keys = key_paths(settings, campaign.spec) if options.sign else []
    return keys, make_factory(message_spec(campaign), keys)


def refuse_holder(db: Database, campaign_id: int) -> None:
    """Refuse, with nothing changed, a campaign a single sender may not take now.

    Its status (paused, cancelled) or the workers holding it; a live single sender's lock is
    judged by `take`. For the console's Send, before it starts its sender.
    """
    row = db.query_one("SELECT status, sender_pid FROM campaigns WHERE id = ?", (campaign_id,))
    if row is not None:
        refuse_status(campaign_id, row[0], row[1])


def refuse_status(campaign_id: int, status: str, holder: str | None = None) -> None:
    """Refuse a campaign whose status (paused, cancelled) or workers forbid sending it.

    A campaign handed to the workers is sent by them alone, however long ago they last
    renewed its lease (all of them may have stopped for a while): two kinds of sender would
    fight over it. Paused, it is the operator's again: resumed, it goes back to the workers;
    sent, the single sender takes it back.
    """
    cid = campaign_id
    if holder == WORKERS and status in (CampaignStatus.SENDING.value, CampaignStatus.READY.value):
        raise SendError(Text(WORKERS_ONLY, campaign=cid))
    if status == CampaignStatus.PAUSED.value and holder != WORKERS:
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
        refuse_status(cid, status, holder)
        if holder == WORKERS:
            _refuse_while_workers_hold(db, cid)
            # Paused, and now sent by one process: the workers leave it alone from here on.
            outbox.record_event(db, cid, None, "taken_from_workers", {})
        elif holder and lease and lease > utcnow_iso():
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


def _refuse_while_workers_hold(db: Database, campaign_id: int) -> None:
    """Refuse taking a paused campaign back while workers still hold some of its e-mails.

    A worker finishes what is on the wire after a pause; settling those deliveries under it
    (the sender's recovery at start) could send one of them twice.
    """
    held = db.scalar(
        "SELECT count(*) FROM deliveries WHERE campaign_id = ? AND state = ? AND lease_until > ?",
        (campaign_id, outbox.DeliveryState.CLAIMED.value, utcnow_iso()),
    )
    if held:
        raise SendError(
            Text(
                "arbeiderne gjør seg ferdige med %(n)s e-poster i kampanje %(campaign)s; "
                "prøv igjen om et minutt",
                n=int(held),
                campaign=campaign_id,
            )
        )


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
