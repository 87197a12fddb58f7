from __future__ import annotations

from varsel import outbox
from varsel.channel.smtp_relay import RelayConfig
from varsel.config import Settings
from varsel.db import Database
from varsel.send_report import status
from varsel.sender import SendOptions, send_campaign
from varsel.testing import Fault, FaultPlan, SmtpSink


def test_status_counts_the_most_common_reasons(
    db: Database, campaign_id: int, settings: Settings
) -> None:
    plan = (
        FaultPlan()
        .on_rcpt(lambda r: r.endswith(".no"), Fault.reply(550, "5.1.1 No such user"))
        .on_rcpt(lambda r: True, Fault.reply(451, "4.3.0 Try again later"))
    )
    options = SendOptions(connections=2, rate_per_second=1000, build_processes=0, linger_seconds=1)
    with SmtpSink(faults=plan) as sink:
        send_campaign(
            db, settings, campaign_id, relay=RelayConfig.from_url(sink.url), options=options
        )
    counts = outbox.counts(db, campaign_id)
    expected = []
    if counts["deferred"]:
        expected.append(("deferred", "451 4.3.0 Try again later", counts["deferred"]))
    if counts["failed"]:
        expected.append(("failed", "550 5.1.1 No such user", counts["failed"]))
    assert [(r.state, r.reason, r.count) for r in status(db, campaign_id).reasons] == expected
    assert counts["failed"] > 0
