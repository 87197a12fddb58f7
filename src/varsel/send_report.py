"""What a send did and where a campaign stands: one run's report, and `campaign status`."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from varsel import outbox
from varsel.campaign import Campaign, get_campaign
from varsel.db import Database
from varsel.i18n import fmt_int
from varsel.outbox import DeliveryState


@dataclass
class SendReport:
    """What one run of the sender did."""

    campaign_id: int
    counts: dict[str, int]
    sent_now: int
    seconds: float
    stopped: str  # done | paused | cancelled | deferred | interrupted
    in_doubt: int

    @property
    def rate(self) -> float:
        return self.sent_now / self.seconds if self.seconds > 0 else 0.0

    def summary(self) -> str:
        c = self.counts
        how = {
            "done": "ferdig",
            "paused": "pauset",
            "cancelled": "avbrutt (kansellert)",
            "interrupted": "stoppet",
            "deferred": "venter på nye forsøk (kjør «campaign send» igjen senere)",
            "relay": "stoppet fordi e-posttjeneren avviste utsendelsen",
        }[self.stopped]
        seconds = f"{self.seconds:.1f}".replace(".", ",")  # Norwegian decimal comma
        text = (
            f"Kampanje {self.campaign_id} {how}: {fmt_int(c['sent'])} sendt, "
            f"{fmt_int(c['deferred'])} utsatt, {fmt_int(c['failed'])} feilet, "
            f"{fmt_int(c['suppressed'])} sperret, {fmt_int(c['in_doubt'])} usikre, "
            f"{fmt_int(c['queued'])} i kø. Denne kjøringen: {fmt_int(self.sent_now)} sendt på "
            f"{seconds} s ({self.rate:.0f}/s)."
        )
        if self.in_doubt:
            text += (
                f"\n{fmt_int(self.in_doubt)} leveranser er usikre (forbindelsen brøt etter at "
                "meldingen var overført). Se «varsel campaign status "
                f"{self.campaign_id}» og send dem på nytt med «varsel campaign resend-in-doubt "
                f"{self.campaign_id}» bare hvis du vil risikere dobbel levering."
            )
        return text


@dataclass
class StatusReport:
    """A campaign's state for `campaign status`."""

    campaign: Campaign
    counts: dict[str, int]
    in_doubt: list[outbox.InDoubt] = field(default_factory=list)
    reasons: list[Reason] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.campaign.id,
            "name": self.campaign.name,
            "status": self.campaign.status.value,
            **self.counts,
            "in_doubt_deliveries": [d.as_dict() for d in self.in_doubt],
            "reasons": [r.as_dict() for r in self.reasons],
        }


@dataclass(frozen=True)
class Reason:
    """How many deliveries are deferred or failed with the same last reply (or reason)."""

    state: str  # deferred | failed
    reason: str
    count: int

    def as_dict(self) -> dict[str, Any]:
        return {"state": self.state, "reason": self.reason, "count": self.count}


REASONS_SHOWN = 5  # per state: the most common first


def reasons(db: Database, campaign_id: int, shown: int = REASONS_SHOWN) -> list[Reason]:
    """The most common reasons for the campaign's deferred and failed deliveries, with counts."""
    out = []
    for state in (DeliveryState.DEFERRED, DeliveryState.FAILED):
        rows = db.query(
            "SELECT coalesce(last_reply, ''), count(*) AS n FROM deliveries "
            "WHERE campaign_id = ? AND state = ? GROUP BY 1 ORDER BY n DESC, 1 LIMIT ?",
            (campaign_id, state.value, shown),
        )
        out += [Reason(state.value, str(reason), int(n)) for reason, n in rows]
    return out


def status(db: Database, campaign_id: int) -> StatusReport:
    """Counts per state, the in-doubt deliveries, and why deliveries wait or failed."""
    campaign = get_campaign(db, campaign_id)
    return StatusReport(
        campaign,
        outbox.counts(db, campaign_id),
        outbox.in_doubt(db, campaign_id),
        reasons(db, campaign_id),
    )
