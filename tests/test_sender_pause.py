"""A pause that races the end of a send (real SMTP on loopback, SQLite and PostgreSQL)."""

from __future__ import annotations

import threading
import time

from varsel.campaign import CampaignStatus, get_campaign, set_status
from varsel.channel.smtp_relay import RelayConfig
from varsel.config import Settings
from varsel.db import Database, connect
from varsel.sender import SendOptions, send_campaign
from varsel.testing import Fault, FaultPlan, SmtpSink


def test_a_pause_while_the_last_email_is_on_the_wire_ends_the_campaign_done(
    db: Database, db_url: str, campaign_id: int, settings: Settings
) -> None:
    total = int(
        db.scalar(
            "SELECT count(*) FROM deliveries WHERE campaign_id = ? AND channel = 'email'",
            (campaign_id,),
        )
        or 0
    )
    seen: set[str] = set()
    last = threading.Event()

    def is_last(rcpt: str) -> bool:
        seen.add(rcpt)
        if len(seen) == total:
            last.set()
            return True
        return False

    # The last message's reply comes a second late: the pause lands while it is on the wire.
    plan = FaultPlan().on_rcpt(is_last, Fault.delay(1.5))

    def pause_then() -> None:
        last.wait(30)
        set_status(other, campaign_id, CampaignStatus.PAUSED, actor="kari")

    options = SendOptions(connections=1, rate_per_second=1000, build_processes=0)
    # Connected before the send starts: a new connection may take seconds (PostgreSQL).
    with connect(db_url, migrate=False) as other, SmtpSink(faults=plan) as sink:
        t = threading.Thread(target=pause_then)
        t.start()
        report = send_campaign(
            db, settings, campaign_id, relay=RelayConfig.from_url(sink.url), options=options
        )
        t.join()
    assert report.counts["sent"] == total
    assert get_campaign(db, campaign_id).status is CampaignStatus.DONE


def test_a_pause_with_emails_left_stays_paused(
    db: Database, db_url: str, campaign_id: int, settings: Settings
) -> None:
    plan = FaultPlan()
    for n in range(1, 10):
        plan.on_message(n, Fault.delay(0.4))

    def pause_soon() -> None:
        while other.scalar("SELECT status FROM campaigns WHERE id = ?", (campaign_id,)) != (
            CampaignStatus.SENDING.value
        ):
            time.sleep(0.05)
        time.sleep(0.6)
        set_status(other, campaign_id, CampaignStatus.PAUSED, actor="kari")

    options = SendOptions(connections=1, rate_per_second=1000, build_processes=0)
    # Connected before the send starts: a new connection may take seconds (PostgreSQL).
    with connect(db_url, migrate=False) as other, SmtpSink(faults=plan) as sink:
        t = threading.Thread(target=pause_soon)
        t.start()
        report = send_campaign(
            db, settings, campaign_id, relay=RelayConfig.from_url(sink.url), options=options
        )
        t.join()
    assert report.stopped == "paused"
    assert report.counts["queued"] > 0
    assert get_campaign(db, campaign_id).status is CampaignStatus.PAUSED
