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


def readdress(db: Database, campaign_id: int, domain: str, count: int) -> list[int]:
    """Readdress the campaign's first `count` deliveries to one domain; their ids."""
    ids = [
        int(r[0])
        for r in db.query(
            "SELECT id FROM deliveries WHERE campaign_id = ? ORDER BY id LIMIT ?",
            (campaign_id, count),
        )
    ]
    with db.transaction():
        for n, delivery_id in enumerate(ids):
            db.execute(
                "UPDATE deliveries SET address = ? WHERE id = ?", (f"post{n}@{domain}", delivery_id)
            )
    return ids


def test_a_resumed_send_keeps_a_domains_rate_and_a_pause_does_not_wait_for_its_turn(
    db: Database, db_url: str, campaign_id: int, settings: Settings
) -> None:
    # Two a minute to one domain: its second message may go 30 s after the first.
    first, *later = readdress(db, campaign_id, "bedrift.example", 3)
    options = SendOptions(
        connections=2, rate_per_second=1000, per_domain_per_minute=2, build_processes=0
    )

    def queued(state: str) -> None:
        with db.transaction():
            for delivery_id in later:
                db.execute("UPDATE deliveries SET state = ? WHERE id = ?", (state, delivery_id))

    with SmtpSink() as sink:
        relay = RelayConfig.from_url(sink.url)
        # The first run sends one message to the domain (and the other domains' three) ...
        queued("cancelled")
        assert send_campaign(db, settings, campaign_id, relay=relay, options=options).stopped == (
            "done"
        )
        queued("queued")
        with db.transaction():
            db.execute("UPDATE campaigns SET status = 'ready' WHERE id = ?", (campaign_id,))
        # ... and the next, started at once, must not send the domain another for 30 s.
        reports = []
        resumed = threading.Thread(
            target=lambda: reports.append(
                send_campaign(db, settings, campaign_id, relay=relay, options=options)
            )
        )
        resumed.start()
        time.sleep(2.0)
        with connect(db_url) as other:
            set_status(other, campaign_id, CampaignStatus.PAUSED)
        paused_at = time.monotonic()
        resumed.join(10)
        stopped_after = time.monotonic() - paused_at
        received = [m.rcpt_tos[0] for m in sink.messages]
    assert not resumed.is_alive()
    assert stopped_after < 2.0  # the pause did not wait for the domain's turn
    assert received.count("post0@bedrift.example") == 1
    assert not {"post1@bedrift.example", "post2@bedrift.example"} & set(received)
    assert reports[0].stopped == "paused"
    # Both went back to the queue as they were: never sent, so not in doubt either.
    rows = db.query(
        "SELECT state, attempts, data_started_at FROM deliveries WHERE id IN (?, ?)", tuple(later)
    )
    assert rows == [("queued", 0, None), ("queued", 0, None)]
    assert db.scalar("SELECT state FROM deliveries WHERE id = ?", (first,)) == "sent"
