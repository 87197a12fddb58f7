# The settings and campaign_id fixtures are imported from test_sender, so the tests' parameters
# of those names redefine the imports, as pytest means them to.
"""Where the sender's messages are built: worker processes once started, this process otherwise."""

from __future__ import annotations

import dkim

from helpers import dns_for
from test_sender import defer_first_attempts
from varsel.channel.smtp_relay import RelayConfig
from varsel.config import Settings
from varsel.db import Database
from varsel.sender import Sender, SendOptions, send_campaign
from varsel.testing import Fault, FaultPlan, SmtpSink


def test_build_workers_take_over_once_started(
    db: Database, campaign_id: int, settings: Settings
) -> None:
    # Slow enough that the one worker has started before the last deliveries are claimed;
    # until it has, the first ones are built in this process.
    plan = FaultPlan()
    for n in range(1, 7):
        plan.on_message(n, Fault.delay(0.25))
    options = SendOptions(connections=1, rate_per_second=1000, batch=1, build_processes=1)
    with SmtpSink(faults=plan) as sink:
        sender = Sender(db, settings, campaign_id, RelayConfig.from_url(sink.url), options)
        report = sender.run()
        received = sink.messages
    assert sender.pool.ready
    assert report.counts["sent"] == 6
    dnsfunc = dns_for(settings)
    assert all(dkim.verify(m.data, dnsfunc=dnsfunc) for m in received)
    assert sorted(m.rcpt_tos[0] for m in received) == sorted({m.rcpt_tos[0] for m in received})


def test_retries_after_the_build_workers_stopped_are_built_here(
    db: Database, campaign_id: int, settings: Settings
) -> None:
    # Every first attempt is deferred; by then the outbox looked empty and the workers stopped.
    plan = defer_first_attempts()
    options = SendOptions(
        connections=2, rate_per_second=1000, retry_base_seconds=0.05, build_processes=1
    )
    with SmtpSink(faults=plan) as sink:
        report = send_campaign(
            db, settings, campaign_id, relay=RelayConfig.from_url(sink.url), options=options
        )
        assert len(sink.messages) == 6
    assert report.counts["sent"] == 6
    assert db.scalar("SELECT sum(attempts) FROM deliveries") == 12
