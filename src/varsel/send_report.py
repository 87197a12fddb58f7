"""What a send did and where a campaign stands: one run's report, and `campaign status`."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from varsel import outbox, reply_words
from varsel.campaign import STATUS_WORDS, Campaign, get_campaign
from varsel.db import Database
from varsel.i18n import fmt_count, fmt_int
from varsel.outbox import DeliveryState
from varsel.reply_words import Reason


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
        if self.stopped == "done" and c["in_doubt"]:
            # Nothing more is sent by itself, but the campaign is not done with: the operator
            # decides about the deliveries in doubt.
            n = fmt_count(c["in_doubt"], "usikker", "usikre")
            how = f"venter på avgjørelse ({n})"
        seconds = f"{self.seconds:.1f}".replace(".", ",")  # Norwegian decimal comma
        text = (
            f"Kampanje {self.campaign_id} {how}: {sent_words(c)}, "
            f"{fmt_int(c['deferred'])} utsatt, {fmt_int(c['failed'])} feilet, "
            f"{fmt_int(c['suppressed'])} sperret, {fmt_int(c['in_doubt'])} usikre, "
            f"{fmt_int(c['queued'])} i kø. Denne kjøringen: {fmt_int(self.sent_now)} sendt på "
            f"{seconds} s ({self.rate:.0f}/s)."
        )
        if self.in_doubt:
            which = "leveranse er usikker" if self.in_doubt == 1 else "leveranser er usikre"
            text += (
                f"\n{fmt_int(self.in_doubt)} {which} (forbindelsen brøt etter at "
                "meldingen var overført). Se «varsel campaign status "
                f"{self.campaign_id}» og send dem på nytt med «varsel campaign resend-in-doubt "
                f"{self.campaign_id}» bare hvis du vil risikere dobbel levering, eller avgjør "
                f"dem uten ny sending med «varsel campaign settle-in-doubt {self.campaign_id} "
                "--as sent» (eller «--as failed»)."
            )
        return text


def sent_words(counts: dict[str, int]) -> str:
    """E-mails the relay accepted, bounced ones included: «166 sendt, av dem 4 i retur»."""
    # A bounce moves a delivery from sent to bounced; counted apart, «sendt» would drop from
    # 166 to 162 once bounces arrive, and the reader cannot tell how many went out.
    bounced = counts.get("bounced", 0)
    text = f"{fmt_int(counts.get('sent', 0) + bounced)} sendt"
    return text + (f", av dem {fmt_int(bounced)} i retur" if bounced else "")


# A channel and a delivery state as `campaign status` names them.
CHANNEL_WORDS = {"email": "E-post", "letter": "Brev", "altinn": "Altinn"}
STATE_WORDS = {
    DeliveryState.QUEUED: "i kø",
    DeliveryState.CLAIMED: "under sending",
    DeliveryState.SENT: "sendt",
    DeliveryState.DEFERRED: "utsatt",
    DeliveryState.FAILED: "feilet",
    DeliveryState.BOUNCED: "i retur",
    DeliveryState.SUPPRESSED: "sperret",
    DeliveryState.IN_DOUBT: "usikre",
    DeliveryState.CANCELLED: "kansellert",
    DeliveryState.PRODUCED: "produsert",
    DeliveryState.POSTED: "postlagt",
    DeliveryState.RETURNED: "returnert",
    DeliveryState.SUBMITTED: "sendt inn",
    DeliveryState.DELIVERED: "levert",
}


def waiting_word(status: str, in_doubt: int) -> str | None:
    """What a finished campaign with deliveries in doubt waits for, or None."""
    if status != "done" or not in_doubt:
        return None
    return f"venter på avgjørelse: {fmt_count(in_doubt, 'usikker', 'usikre')}"


@dataclass
class StatusReport:
    """A campaign's state for `campaign status`."""

    campaign: Campaign
    counts: dict[str, int]  # the e-mail deliveries per state
    in_doubt: list[outbox.InDoubt] = field(default_factory=list)
    reasons: list[Reason] = field(default_factory=list)
    channels: dict[str, dict[str, int]] = field(default_factory=dict)  # channel -> state -> n

    @property
    def status_words(self) -> str:
        """The campaign's status in Bokmål; a finished one with deliveries in doubt waits."""
        waiting = waiting_word(self.campaign.status.value, self.counts.get("in_doubt", 0))
        return waiting or STATUS_WORDS[self.campaign.status]

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.campaign.id,
            "name": self.campaign.name,
            "status": self.campaign.status.value,
            # The e-mail counts at the top, as before there were other channels.
            **{s.value: self.counts.get(s.value, 0) for s in outbox.CHANNEL_STATES["email"]},
            # Sent as `campaign send` counted them: those bounced since included.
            "accepted": self.counts.get("sent", 0) + self.counts.get("bounced", 0),
            "channels": {
                channel: {"total": sum(states.values()), **states}
                for channel, states in self.channels.items()
            },
            "deliveries": sum(sum(states.values()) for states in self.channels.values()),
            "waiting_for_decision": self.counts.get("in_doubt", 0) > 0,
            "in_doubt_deliveries": [d.as_dict() for d in self.in_doubt],
            "reasons": [r.as_dict() for r in self.reasons],
        }

    def lines(self) -> list[str]:
        """The counts as `campaign status` prints them: e-mail always, other channels if used."""
        out = []
        for channel, states in self.channels.items():
            total = sum(states.values())
            if channel != "email" and not total:
                continue
            out.append(f"{CHANNEL_WORDS.get(channel, channel)} ({fmt_int(total)}):")
            for state, n in states.items():
                label = STATE_WORDS.get(DeliveryState(state), state)
                out.append(f"  {label:<14} {fmt_int(n):>8}")
            if channel == "email" and states.get("bounced"):
                # «sendt» above counts those not bounced; said whole, as `campaign send` did.
                out.append(f"  i alt {sent_words(states)}")
        return out


REASONS_SHOWN = 5  # per state: the most common first


def status(db: Database, campaign_id: int) -> StatusReport:
    """Counts per state, the in-doubt deliveries, and why deliveries wait or failed."""
    campaign = get_campaign(db, campaign_id)
    channels = outbox.counts_by_channel(db, campaign_id)
    return StatusReport(
        campaign,
        {**{s.value: 0 for s in DeliveryState}, **channels["email"]},
        outbox.in_doubt(db, campaign_id),
        reply_words.grouped(
            db, campaign_id, (DeliveryState.DEFERRED, DeliveryState.FAILED), REASONS_SHOWN
        ),
        channels,
    )
