# The settings and campaign_id fixtures are imported from test_sender, so the tests' parameters
# of those names redefine the imports, as pytest means them to.
"""Where the sender's messages are built: worker processes once started, this process otherwise."""

from __future__ import annotations

import asyncio
from typing import Any

import dkim
import pytest

from helpers import dns_for
from test_sender import defer_first_attempts
from varsel.channel.smtp_relay import RelayConfig
from varsel.config import Settings
from varsel.db import Database
from varsel.outbox_claims import Claim, Claimer
from varsel.sender import Sender, SendOptions, send_campaign
from varsel.suppression import SuppressionKind, SuppressionReason, add
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


@pytest.mark.parametrize("sign", [True, False], ids=["signed", "unsigned"])
def test_build_workers_read_the_units_and_leave_out_suppressed_ones(
    db: Database, campaign_id: int, settings: Settings, monkeypatch: pytest.MonkeyPatch, sign: bool
) -> None:
    # The last delivery names one unit, suppressed after the campaign was made: the worker
    # reads that, and the delivery is settled as suppressed without a message.
    last, address = db.query_one(
        "SELECT d.id, d.address FROM deliveries d WHERE (SELECT count(*) FROM delivery_units u "
        "WHERE u.delivery_id = d.id) = 1 ORDER BY d.id DESC LIMIT 1"
    ) or (0, "")
    unit = db.scalar("SELECT orgnr FROM delivery_units WHERE delivery_id = ?", (last,))
    with db.transaction():
        add(db, SuppressionKind.UNIT, unit, SuppressionReason.UNSUBSCRIBED)
    unread: list[int] = []
    plain_unread, plain_claim = Claimer._unread, Claimer.claim

    def spy(self: Claimer, rows: list[Any], next_due: str | None) -> Claim:
        unread.extend(int(r[0]) for r in rows)
        return plain_unread(self, rows, next_due)

    async def once_started(self: Claimer) -> Claim:
        # Every claim waits for the worker, so that all are built (and read) by it.
        while not sender.pool.ready:
            await asyncio.sleep(0.01)
        return await plain_claim(self)

    monkeypatch.setattr(Claimer, "_unread", spy)
    monkeypatch.setattr(Claimer, "claim", once_started)
    options = SendOptions(connections=1, rate_per_second=1000, build_processes=1, sign=sign)
    with SmtpSink() as sink:
        sender = Sender(db, settings, campaign_id, RelayConfig.from_url(sink.url), options)
        report = sender.run()
        received = sink.messages
    assert (report.counts["sent"], report.counts["suppressed"]) == (5, 1)
    assert address not in {m.rcpt_tos[0] for m in received}
    dnsfunc = dns_for(settings)
    assert all(dkim.verify(m.data, dnsfunc=dnsfunc) for m in received) is sign
    for m in received:  # each message names its own units, as read by the worker
        orgnrs = db.query(
            "SELECT u.orgnr FROM delivery_units u JOIN deliveries d ON d.id = u.delivery_id "
            "WHERE d.campaign_id = ? AND d.address = ?",
            (campaign_id, m.rcpt_tos[0]),
        )
        assert orgnrs
        for (o,) in orgnrs:
            assert f"org.nr. {o[:3]} {o[3:6]} {o[6:]}".encode() in m.data
    states = dict(
        db.query("SELECT id, state FROM deliveries WHERE campaign_id = ?", (campaign_id,))
    )
    assert states[last] == "suppressed"
    if db.dialect == "sqlite":
        # Built, and the suppression found, by the worker.
        assert sorted(unread) == sorted(states)
    else:
        assert unread == []  # a server's store: the sender reads the units itself
