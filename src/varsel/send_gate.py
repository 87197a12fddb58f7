"""The gate before a send: an approval that holds, or an allowed --no-approval; audited.

Every channel's send passes it (e-mail, Altinn, letters), and so does resuming a campaign the
workers send. The approval itself (fingerprint, four eyes) is approval.py's.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import TYPE_CHECKING

from varsel import audit
from varsel.approval import Approval, ApprovalError, latest_approval, require_approved
from varsel.campaign import get_campaign
from varsel.config import Settings
from varsel.db import Database
from varsel.errors import Text, VarselError
from varsel.retention import forgotten_at

if TYPE_CHECKING:
    from varsel.channel.smtp_relay import RelayConfig
    from varsel.send_report import SendReport
    from varsel.sender import SendOptions


def check_resume(db: Database, campaign_id: int) -> None:
    """Refuse resuming a workers' campaign whose approval no longer holds (NotApproved).

    Resumed, a campaign handed to the workers is theirs to send at once: no send passes the
    gate again, so a change made while it was paused would go out unapproved. Call in the
    transaction that resumes it. A campaign handed over without an approval (`campaign start
    --no-approval`, recorded as such) goes on as it was handed over.
    """
    from varsel.leases import WORKERS

    holder = db.scalar("SELECT sender_pid FROM campaigns WHERE id = ?", (campaign_id,))
    if holder != WORKERS or latest_approval(db, campaign_id) is None:
        return
    if _last_gate_without_approval(db, campaign_id):
        return
    require_approved(db, campaign_id)


def _last_gate_without_approval(db: Database, campaign_id: int) -> bool:
    """Whether the campaign's last e-mail send went through the gate with --no-approval."""
    for (detail,) in db.query(
        "SELECT detail FROM audit_log WHERE action = ? AND object = ? ORDER BY seq DESC",
        (audit.Action.CAMPAIGN_SEND.value, f"campaign:{campaign_id}"),
    ):
        data = json.loads(detail or "{}")
        if data.get("channel", "email") == "email":
            return bool(data.get("no_approval"))
    return False


def authorise_send(
    db: Database,
    settings: Settings,
    campaign_id: int,
    *,
    actor: str,
    no_approval: bool = False,
    channel: str = "email",
) -> Approval | None:
    """The gate before a send: an approval that holds, or an allowed --no-approval; audited
    as a send on the channel (email, altinn), so the log tells the channels' sends apart."""
    approval = check_send(db, settings, campaign_id, no_approval=no_approval)
    with db.transaction():
        _record_send(db, actor, campaign_id, no_approval, approval, channel)
    return approval


def check_send(
    db: Database, settings: Settings, campaign_id: int, *, no_approval: bool = False
) -> Approval | None:
    """The gate before a send, not audited: an approval that holds, or an allowed --no-approval."""
    get_campaign(db, campaign_id)
    if forgotten_at(db, campaign_id) is not None:
        # Before the approval: forgetting changed the deliveries, which also voids it.
        raise ApprovalError(
            Text(
                "kampanje %(campaign)s har glemt kontaktopplysningene sine (campaign forget); "
                "den sender ikke mer på noen kanal",
                campaign=campaign_id,
            )
        )
    if no_approval:
        if not settings.allow_no_approval:
            raise ApprovalError(
                Text(
                    "sending uten godkjenning er slått av her (VARSEL_ALLOW_NO_APPROVAL=false); "
                    "kampanje %(campaign)s må godkjennes",
                    campaign=campaign_id,
                )
            )
        return None
    return require_approved(db, campaign_id)


def _record_send(
    db: Database,
    actor: str,
    campaign_id: int,
    no_approval: bool,
    approval: Approval | None,
    channel: str = "email",
) -> None:
    audit.record(
        db,
        actor,
        audit.Action.CAMPAIGN_SEND,
        f"campaign:{campaign_id}",
        {"channel": channel, **gate_detail(no_approval, approval)},
    )


def gate_detail(no_approval: bool, approval: Approval | None) -> dict[str, object]:
    """What an audit entry of a run through the gate records about the approval it relied on."""
    return {
        "no_approval": no_approval,
        "approval": approval.id if approval else None,
        "approved_by": approval.approved_by if approval else None,
        "digest": approval.digest if approval else None,
    }


def send_checked(
    db: Database,
    settings: Settings,
    campaign_id: int,
    *,
    actor: str,
    no_approval: bool = False,
    relay: RelayConfig | None = None,
    options: SendOptions | None = None,
    progress: Callable[[dict[str, int], float], None] | None = None,
) -> SendReport:
    """Send a campaign after the four-eyes gate; how it ended is audited too.

    The send is audited only once it has started: in the transaction that locks the campaign,
    with the gate checked again there. A send refused before it started (no key, a campaign
    another process sends) leaves no entry.
    """
    from varsel.sender import send_campaign

    check_send(db, settings, campaign_id, no_approval=no_approval)  # refuse at once
    started = False

    def gate(db: Database) -> None:
        nonlocal started
        approval = check_send(db, settings, campaign_id, no_approval=no_approval)
        _record_send(db, actor, campaign_id, no_approval, approval)
        started = True

    try:
        report = send_campaign(
            db,
            settings,
            campaign_id,
            relay=relay,
            options=options,
            progress=progress,
            on_start=gate,
        )
    except VarselError as e:
        if started:
            _record_send_end(db, actor, campaign_id, {"stopped": "error", "error": e.message})
        raise
    _record_send_end(
        db,
        actor,
        campaign_id,
        {"stopped": report.stopped, "sent_now": report.sent_now, **report.counts},
    )
    return report


def _record_send_end(db: Database, actor: str, campaign_id: int, detail: dict[str, object]) -> None:
    with db.transaction():
        audit.record(db, actor, audit.Action.CAMPAIGN_SEND_END, f"campaign:{campaign_id}", detail)
