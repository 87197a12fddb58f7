from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import email
import email.policy
import re
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import dkim
import pytest
from click.testing import CliRunner

from helpers import (
    FAST,
    campaign_toml,
    dns_for,
    import_with_hostile_name,
    make_tls,
    sample_campaign,
    until,
)
from test_channel_smtp import tls  # noqa: F401 -- the tests' own CA and a certificate
from varsel import codes, outbox
from varsel.campaign import CampaignStatus, create_campaign, set_status, update_spec
from varsel.campaign_spec import load_spec
from varsel.channel.smtp_relay import RelayConfig
from varsel.config import Settings
from varsel.db import Database, connect
from varsel.registry import import_dump
from varsel.send_report import status
from varsel.sender import SendOptions, send_campaign
from varsel.suppression import SuppressionKind, SuppressionReason, add
from varsel.testing import Fault, FaultKind, FaultPlan, SmtpSink, Stage

CAMPAIGN = campaign_toml()


def defer_first_attempts() -> FaultPlan:
    """A plan that answers 451 to each recipient's first attempt, and lets retries through."""
    seen: set[str] = set()

    def first_time(rcpt: str) -> bool:
        first = rcpt not in seen
        seen.add(rcpt)
        return first

    return FaultPlan().on_rcpt(first_time, Fault.reply(451, "4.3.0 Try again later"))


def assert_all_left_waiting(db: Database, campaign_id: int) -> None:
    """A stop that was the relay's: all six deliveries queued, no attempt counted, none failed,
    deferred or claimed, and the campaign ready for the next «campaign send»."""
    counts = outbox.counts(db, campaign_id)
    assert counts["queued"] == 6
    assert counts["failed"] == counts["deferred"] == counts["claimed"] == 0
    assert db.scalar("SELECT sum(attempts) FROM deliveries") == 0
    assert status(db, campaign_id).campaign.status is CampaignStatus.READY


def test_every_delivery_sent_once_signed_and_verifiable(
    db: Database, campaign_id: int, settings: Settings
) -> None:
    with SmtpSink() as sink:
        report = send_campaign(
            db, settings, campaign_id, relay=RelayConfig.from_url(sink.url), options=FAST
        )
        received = sink.messages
    assert report.stopped == "done"
    assert report.counts["sent"] == 6
    assert len(received) == 6
    stored = {
        r[0]: r[1]
        for r in db.query(
            "SELECT address, code FROM deliveries WHERE campaign_id = ?", (campaign_id,)
        )
    }
    dnsfunc = dns_for(settings)
    for m in received:
        assert dkim.verify(m.data, dnsfunc=dnsfunc)
        msg = email.message_from_bytes(m.data, policy=email.policy.default)
        assert msg["To"] == m.rcpt_tos[0]
        assert m.mail_from.startswith("bounces+")
        text = msg.get_body(("plain",)).get_content()  # type: ignore[union-attr]
        found = re.search(r"\b[0-9A-Z]{4}-[0-9A-Z]{4}-[0-9A-Z]{4}\b", text)
        assert found is not None
        assert codes.normalise(found.group(0)) == stored[m.rcpt_tos[0]]
    status_report = status(db, campaign_id)
    assert status_report.campaign.status is CampaignStatus.DONE
    assert (
        db.scalar("SELECT count(*) FROM deliveries WHERE message_id IS NULL AND state = 'sent'")
        == 0
    )


def test_transient_failures_are_retried(db: Database, campaign_id: int, settings: Settings) -> None:
    seen: list[str] = []

    def once(rcpt: str) -> bool:
        first = rcpt == "firmapost@statnett.no" and rcpt not in seen
        seen.append(rcpt)
        return first

    plan = (
        FaultPlan()
        .on_rcpt(once, Fault.reply(451, "4.3.0 Try again later"))
        .on_message(2, Fault.reply(421, "4.7.0 Too busy", stage=Stage.MAIL))
        .on_message(4, Fault.reply(452, "4.5.3 Too many recipients", stage=Stage.DATA))
    )
    with SmtpSink(faults=plan) as sink:
        report = send_campaign(
            db, settings, campaign_id, relay=RelayConfig.from_url(sink.url), options=FAST
        )
        received = sink.messages
    assert report.counts["sent"] == 6
    assert sorted(m.rcpt_tos[0] for m in received) == sorted({m.rcpt_tos[0] for m in received})
    assert len(received) == 6
    # Three faults, each costing one delivery one more attempt; Statnett's 451 is one of them.
    assert db.scalar("SELECT sum(attempts) FROM deliveries") == 9
    assert db.scalar("SELECT attempts FROM deliveries WHERE address = 'firmapost@statnett.no'") >= 2


def test_permanent_failure_keeps_the_reason(
    db: Database, campaign_id: int, settings: Settings
) -> None:
    plan = FaultPlan().on_rcpt(
        lambda r: r == "firmapost@statnett.no", Fault.reply(550, "5.1.1 No such user")
    )
    with SmtpSink(faults=plan) as sink:
        report = send_campaign(
            db, settings, campaign_id, relay=RelayConfig.from_url(sink.url), options=FAST
        )
    assert (report.counts["sent"], report.counts["failed"]) == (5, 1)
    reply = db.scalar("SELECT last_reply FROM deliveries WHERE state = 'failed'")
    assert reply == "550 5.1.1 No such user"


def test_lost_reply_after_data_is_in_doubt_until_the_operator_decides(
    db: Database, campaign_id: int, settings: Settings
) -> None:
    plan = FaultPlan().on_message(3, Fault.accept_then_drop())
    with SmtpSink(faults=plan) as sink:
        relay = RelayConfig.from_url(sink.url)
        report = send_campaign(db, settings, campaign_id, relay=relay, options=FAST)
        assert (report.counts["sent"], report.counts["in_doubt"]) == (5, 1)
        assert len(sink.messages) == 6  # the sink did keep it
        doubt = status(db, campaign_id).in_doubt
        assert len(doubt) == 1
        again = send_campaign(db, settings, campaign_id, relay=relay, options=FAST)
        assert again.sent_now == 0  # never resent on its own
        outbox.resend_in_doubt(db, campaign_id)
        final = send_campaign(db, settings, campaign_id, relay=relay, options=FAST)
        assert final.counts["sent"] == 6
        assert len(sink.messages) == 7  # the operator chose the duplicate
    assert "resend-in-doubt" in report.summary()


def test_connection_dropped_mid_data_is_retried_or_in_doubt(
    db: Database, campaign_id: int, settings: Settings
) -> None:
    # The server hangs up mid-DATA. If the sender saw it before writing the final dot, the
    # delivery is retried; if the dot was already out, it cannot be told from a lost 250 and
    # is in doubt. Either way no one gets the message twice and no one is lost.
    plan = FaultPlan().on_message(2, Fault.drop_mid_data(10))
    with SmtpSink(faults=plan) as sink:
        report = send_campaign(
            db, settings, campaign_id, relay=RelayConfig.from_url(sink.url), options=FAST
        )
        rcpts = [m.rcpt_tos[0] for m in sink.messages]
    assert len(rcpts) == len(set(rcpts))
    c = report.counts
    assert (c["sent"], c["in_doubt"], len(rcpts)) in ((6, 0, 6), (5, 1, 5))


def test_suppressed_at_send_time(db: Database, campaign_id: int, settings: Settings) -> None:
    with db.transaction():
        add(db, SuppressionKind.ADDRESS, "firmapost@statnett.no", SuppressionReason.UNSUBSCRIBED)
    with SmtpSink() as sink:
        report = send_campaign(
            db, settings, campaign_id, relay=RelayConfig.from_url(sink.url), options=FAST
        )
        rcpts = {m.rcpt_tos[0] for m in sink.messages}
    assert (report.counts["sent"], report.counts["suppressed"]) == (5, 1)
    assert "firmapost@statnett.no" not in rcpts


def test_pause_reaches_a_running_sender(
    db: Database, db_url: str, campaign_id: int, settings: Settings
) -> None:
    plan = FaultPlan()
    for n in range(1, 10):
        plan.on_message(n, Fault.delay(0.4))
    options = SendOptions(connections=1, rate_per_second=1000, build_processes=0)

    def pause_soon() -> None:
        with connect(db_url) as other:
            # Once a first message is out (a busy machine may take a while to start the
            # sender), not before; the other five then take 2 s, the pause is seen within 0.5.
            while not other.scalar(
                "SELECT count(*) FROM deliveries WHERE campaign_id = ? AND state = 'sent'",
                (campaign_id,),
            ):
                time.sleep(0.02)
            set_status(other, campaign_id, CampaignStatus.PAUSED)

    with SmtpSink(faults=plan) as sink:
        t = threading.Thread(target=pause_soon)
        t.start()
        report = send_campaign(
            db, settings, campaign_id, relay=RelayConfig.from_url(sink.url), options=options
        )
        t.join()
    assert report.stopped == "paused"
    assert 1 <= report.counts["sent"] < 6
    assert report.counts["queued"] == 6 - report.counts["sent"]
    assert report.counts["claimed"] == 0


def test_a_failing_watcher_stops_the_send_instead_of_sending_on_unwatched(
    db: Database, campaign_id: int, settings: Settings
) -> None:
    # The watcher renews the lock and sees pauses; a progress callback is called from it.
    # If it fails, the send must stop (its lock would run out under it), and say why.
    plan = FaultPlan()
    for n in range(1, 10):
        plan.on_message(n, Fault.delay(0.4))
    options = SendOptions(connections=1, rate_per_second=1000, build_processes=0)

    def progress(counts: dict[str, int], rate: float) -> None:
        if counts.get("sent"):
            raise RuntimeError("en feil i fremdriftsvisningen")

    with SmtpSink(faults=plan) as sink, pytest.raises(RuntimeError, match="fremdriftsvisningen"):
        send_campaign(
            db,
            settings,
            campaign_id,
            relay=RelayConfig.from_url(sink.url),
            options=options,
            progress=progress,
        )
    counts = outbox.counts(db, campaign_id)
    assert 1 <= counts["sent"] < 6  # stopped, the message on the wire finished
    assert counts["queued"] == 6 - counts["sent"]  # the rest given back
    assert counts["claimed"] == 0
    row = db.query_one("SELECT status, sender_pid FROM campaigns WHERE id = ?", (campaign_id,))
    assert row == ("ready", None)  # the lock given up


QUICK_RELAY = {"relay_tries": 3, "relay_retry_seconds": 0.01}


def test_an_unreachable_relay_stops_the_send_and_every_delivery_waits_as_it_was(
    db: Database, campaign_id: int, settings: Settings
) -> None:
    from varsel.sender import SendError

    options = SendOptions(connections=2, build_processes=0, **QUICK_RELAY)  # type: ignore[arg-type]
    relay = RelayConfig.from_url("smtp://127.0.0.1:1")
    with pytest.raises(SendError) as caught:
        send_campaign(db, settings, campaign_id, relay=relay, options=options)
    assert caught.value.message.startswith(
        "e-posttjeneren smtp://127.0.0.1:1 kan ikke brukes: kunne ikke koble til: "
    )
    assert "(3 forsøk)" in caught.value.message
    assert_all_left_waiting(db, campaign_id)
    assert db.query("SELECT status, sender_pid FROM campaigns") == [("ready", None)]


def test_implicit_tls_against_a_plain_relay_stops_with_the_tls_error(
    db: Database, campaign_id: int, settings: Settings
) -> None:
    from varsel.sender import SendError

    options = SendOptions(connections=2, build_processes=0, **QUICK_RELAY)  # type: ignore[arg-type]
    with SmtpSink() as sink:
        relay = RelayConfig.from_url(sink.url.replace("smtp://", "smtps://"))
        with pytest.raises(SendError, match=r"kan ikke brukes: .*TLS-feil: WRONG_VERSION_NUMBER"):
            send_campaign(db, settings, campaign_id, relay=relay, options=options)
        assert sink.messages == []
    assert outbox.counts(db, campaign_id)["queued"] == 6
    assert status(db, campaign_id).campaign.status is CampaignStatus.READY


def test_a_relay_without_starttls_stops_a_send_that_requires_it_in_one_line(
    db: Database, campaign_id: int, settings: Settings
) -> None:
    from varsel.sender import SendError

    options = SendOptions(connections=2, build_processes=0, **QUICK_RELAY)  # type: ignore[arg-type]
    with SmtpSink() as sink:  # offers no STARTTLS
        url = sink.url.replace("smtp://", "smtp+starttls://")
        with pytest.raises(SendError) as caught:
            send_campaign(
                db, settings, campaign_id, relay=RelayConfig.from_url(url), options=options
            )
        assert sink.messages == []
    assert caught.value.message == (
        f"e-posttjeneren {url} kan ikke brukes: tilbyr ikke STARTTLS (3 forsøk); "
        "leveransene som gjenstår, venter i køen til neste «campaign send»"
    )
    assert_all_left_waiting(db, campaign_id)


def test_a_starttls_handshake_that_fails_stops_the_send_with_the_tls_reason(
    db: Database, campaign_id: int, settings: Settings, tmp_path: Path
) -> None:
    from varsel.sender import SendError

    # A certificate from the tests' own CA, which the system does not trust.
    _, context = make_tls(tmp_path)
    options = SendOptions(connections=2, build_processes=0, **QUICK_RELAY)  # type: ignore[arg-type]
    with SmtpSink(tls_context=context) as sink:
        with pytest.raises(SendError) as caught:
            send_campaign(
                db, settings, campaign_id, relay=RelayConfig.from_url(sink.url), options=options
            )
        assert sink.messages == []
    assert caught.value.message.startswith(
        f"e-posttjeneren {sink.url} kan ikke brukes: TLS-sertifikatet ble ikke godtatt: "
    )
    assert len(caught.value.message.splitlines()) == 1
    assert_all_left_waiting(db, campaign_id)


def test_relay_refusing_login_stops_with_the_reason(
    db: Database, campaign_id: int, settings: Settings
) -> None:
    from varsel.sender import SendError

    with SmtpSink(auth=("varsel", "riktig")) as sink:
        relay = RelayConfig.from_url(sink.url.replace("smtp://", "smtp://varsel:feil@"))
        with pytest.raises(SendError) as caught:
            send_campaign(db, settings, campaign_id, relay=relay, options=FAST)
        assert sink.messages == []
    # The relay named once, then its reason.
    assert caught.value.message == (
        f"e-posttjeneren {relay.redacted()} avviser utsendelsen: godtok ikke påloggingen: "
        "535 5.7.8 Authentication credentials invalid"
    )
    counts = outbox.counts(db, campaign_id)
    assert (counts["queued"], counts["claimed"]) == (6, 0)


def every_message(fault: Fault) -> FaultPlan:
    """A plan that applies `fault` to each of the first 100 transactions."""
    plan = FaultPlan()
    for number in range(1, 101):
        plan.on_message(number, fault)
    return plan


def test_a_relay_refusing_our_sender_stops_the_send_and_fails_no_delivery(
    db: Database, campaign_id: int, settings: Settings
) -> None:
    from varsel.sender import SendError

    refusal = Fault.reply(550, "5.7.1 Sender address rejected: not owned by user", stage=Stage.MAIL)
    with SmtpSink(faults=every_message(refusal)) as sink:
        with pytest.raises(SendError) as caught:
            send_campaign(
                db, settings, campaign_id, relay=RelayConfig.from_url(sink.url), options=FAST
            )
        assert sink.messages == []
    assert caught.value.message == (
        f"e-posttjeneren {sink.url} avviser utsendelsen: "
        "550 5.7.1 Sender address rejected: not owned by user"
    )
    assert_all_left_waiting(db, campaign_id)


@pytest.mark.parametrize(
    "fault",
    [
        Fault.reply(421, "4.3.2 Service shutting down", stage=Stage.MAIL),
        Fault.reply(451, "4.3.0 Queue full", stage=Stage.MAIL),
        Fault.reply(452, "4.3.1 Insufficient system storage", stage=Stage.RCPT),
        Fault.reply(451, "4.3.0 Error: queue file write error", stage=Stage.DATA),
    ],
)
def test_a_relay_in_trouble_stops_the_send_instead_of_giving_every_delivery_up(
    db: Database, campaign_id: int, settings: Settings, fault: Fault
) -> None:
    from varsel.sender import SendError

    # Retries due at once and a deadline of two seconds: without the stop, every delivery
    # would be retried until it gave up.
    options = SendOptions(
        connections=2,
        rate_per_second=1000,
        retry_base_seconds=0.05,
        deadline_hours=2 / 3600,
        build_processes=0,
        **QUICK_RELAY,  # type: ignore[arg-type]
    )
    with SmtpSink(faults=every_message(fault)) as sink, pytest.raises(SendError) as caught:
        send_campaign(
            db, settings, campaign_id, relay=RelayConfig.from_url(sink.url), options=options
        )
    assert caught.value.message == (
        f"e-posttjeneren {sink.url} kan ikke brukes: {fault.code} {fault.text} (5 forsøk); "
        "leveransene som gjenstår, venter i køen til neste «campaign send»"
    )
    counts = outbox.counts(db, campaign_id)
    assert (counts["failed"], counts["claimed"]) == (0, 0)
    assert counts["queued"] + counts["deferred"] == 6
    assert status(db, campaign_id).campaign.status is CampaignStatus.READY


@pytest.mark.parametrize(
    "fault",
    [
        Fault.reply(554, "5.7.1 Relay access denied"),
        Fault.reply(554, "5.7.1 Message rejected as spam", stage=Stage.DATA),
    ],
)
def test_the_same_refusal_at_every_domain_stops_the_send_and_fails_no_delivery(
    db: Database, campaign_id: int, settings: Settings, fault: Fault
) -> None:
    from varsel.sender import SendError

    options = dataclasses.replace(FAST, **QUICK_RELAY)  # type: ignore[arg-type]
    relay_closed = every_message(fault)
    with SmtpSink(faults=relay_closed) as sink, pytest.raises(SendError) as caught:
        send_campaign(
            db, settings, campaign_id, relay=RelayConfig.from_url(sink.url), options=options
        )
    assert caught.value.message == (
        f"e-posttjeneren {sink.url} avviser utsendelsen: {fault.code} {fault.text}"
    )
    assert_all_left_waiting(db, campaign_id)
    assert relay_closed.fired() >= 5


def test_unknown_recipients_at_every_domain_fail_each_and_the_send_goes_on(
    db: Database, campaign_id: int, settings: Settings
) -> None:
    options = dataclasses.replace(FAST, **QUICK_RELAY)  # type: ignore[arg-type]
    unknown = every_message(Fault.reply(550, "5.1.1 User unknown"))
    with SmtpSink(faults=unknown) as sink:
        report = send_campaign(
            db, settings, campaign_id, relay=RelayConfig.from_url(sink.url), options=options
        )
    assert (report.stopped, report.counts["failed"]) == ("done", 6)


def to_one_domain(db: Database, campaign_id: int, domain: str, count: int) -> list[str]:
    """Readdress the campaign's first `count` deliveries to one domain; their new addresses."""
    ids = [
        r[0]
        for r in db.query(
            "SELECT id FROM deliveries WHERE campaign_id = ? ORDER BY id LIMIT ?",
            (campaign_id, count),
        )
    ]
    with db.transaction():
        for n, delivery_id in enumerate(ids):
            db.execute(
                "UPDATE deliveries SET address = ? WHERE id = ?",
                (f"post{n}@{domain}", delivery_id),
            )
    return [f"post{n}@{domain}" for n in range(count)]


def test_a_domain_the_relay_throttles_at_rcpt_waits_and_the_other_domains_go_on(
    db: Database, campaign_id: int, settings: Settings
) -> None:
    throttled = to_one_domain(db, campaign_id, "gmail.com", 3)
    reply = "4.7.0 Try again later, closing connection. (rate limited)"
    plan = FaultPlan().on_rcpt(lambda r: r.endswith("@gmail.com"), Fault.reply(421, reply))
    # A retry base of a minute: the domain's hold outlasts the run, which ends as the rest
    # wait (linger) instead of retrying them.
    options = SendOptions(
        connections=2,
        rate_per_second=1000,
        per_domain_concurrency=1,
        build_processes=0,
        linger_seconds=1.0,
        **QUICK_RELAY,  # type: ignore[arg-type]
    )
    started = time.time()
    with SmtpSink(faults=plan) as sink:
        report = send_campaign(
            db, settings, campaign_id, relay=RelayConfig.from_url(sink.url), options=options
        )
        received = sorted(m.rcpt_tos[0] for m in sink.messages)
    assert report.stopped == "deferred"
    assert plan.fired() == 1  # one message met the throttle; its domain's others waited
    assert len(received) == 3
    assert not set(received) & set(throttled)
    rows = db.query(
        "SELECT attempts, last_reply, next_attempt_at FROM deliveries WHERE state = 'deferred' "
        "ORDER BY attempts",
    )
    assert [(r[0], r[1]) for r in rows] == [
        (0, f"421 {reply}"),
        (0, f"421 {reply}"),
        (1, f"421 {reply}"),
    ]
    # The two held back wait for the hold's end, a minute on: no attempt was spent on them.
    waits = [
        dt.datetime.fromisoformat(r[2].replace("Z", "+00:00")).timestamp() - started
        for r in rows[:2]
    ]
    assert all(50 < w < 70 for w in waits)
    assert outbox.counts(db, campaign_id)["failed"] == 0


def test_throttles_at_one_domain_after_another_stop_the_send_as_a_relay_in_trouble(
    db: Database, campaign_id: int, settings: Settings
) -> None:
    from varsel.sender import SendError

    reply = "4.7.0 Too many connections, closing"
    options = dataclasses.replace(FAST, linger_seconds=1.0, **QUICK_RELAY)  # type: ignore[arg-type]
    with (
        SmtpSink(faults=every_message(Fault.reply(421, reply))) as sink,
        pytest.raises(SendError) as caught,
    ):
        send_campaign(
            db, settings, campaign_id, relay=RelayConfig.from_url(sink.url), options=options
        )
    # Five domains in a row (relay_tries 3 and 2 connections), none taking a message.
    assert caught.value.message == (
        f"e-posttjeneren {sink.url} kan ikke brukes: 421 {reply} (5 forsøk); "
        "leveransene som gjenstår, venter i køen til neste «campaign send»"
    )
    counts = outbox.counts(db, campaign_id)
    assert (counts["failed"], counts["claimed"], counts["sent"]) == (0, 0, 0)
    assert counts["queued"] + counts["deferred"] == 6


def test_fault_kinds_exist() -> None:
    assert {k.value for k in FaultKind} >= {"reply", "delay", "drop_mid_data", "accept_then_drop"}


def test_sigkill_at_random_moments_loses_nothing_and_sends_nothing_twice(
    db: Database, db_url: str, tmp_path: Path
) -> None:
    import collections
    import os
    import random
    import signal
    import subprocess
    import sys

    from varsel.synth import write_dump

    dump = tmp_path / "oslo.json.gz"
    write_dump(dump, units=3000, seed=11, municipalities=("0301",))
    import_dump(db, dump)
    path = tmp_path / "c.toml"
    path.write_text(
        CAMPAIGN.replace(
            "[segment]", "[limits]\nconnections = 4\nper_domain_concurrency = 4\n[segment]"
        ),
        "utf-8",
    )
    env = {**os.environ, "VARSEL_DKIM_KEY_DIR": str(tmp_path / "keys")}
    settings = Settings.load(environ=env)
    cid = create_campaign(db, settings, path).campaign.id
    total = outbox.counts(db, cid)["queued"]
    assert total > 300
    plan = FaultPlan().on_rcpt(lambda r: True, Fault.delay(0.004))
    rng = random.Random(5)
    kills = 0
    with SmtpSink(faults=plan) as sink:
        command = [
            sys.executable,
            "-m",
            "varsel",
            "--db",
            db_url,
            "campaign",
            "send",
            str(cid),
            "--smtp",
            sink.url,
            "--no-approval",  # the crash-safety test is about sending, not four-eyes approval
        ]
        for _ in range(4):
            proc = subprocess.Popen(
                command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
            )
            time.sleep(rng.uniform(0.8, 2.5))
            if proc.poll() is None:
                proc.send_signal(signal.SIGKILL)
                kills += 1
            proc.wait()
        done = subprocess.run(
            command, env=env, capture_output=True, text=True, timeout=120, check=False
        )
        assert done.returncode == 0, done.stderr
        received = sink.messages
    counts = outbox.counts(db, cid)
    assert kills >= 2
    assert counts["queued"] == counts["claimed"] == counts["deferred"] == 0
    assert counts["sent"] + counts["in_doubt"] == total
    assert counts["in_doubt"] <= 4 * kills  # at most one per open connection per crash
    # The envelope sender names the delivery: bounces+<id>-<mac>@domain (VERP).
    copies = collections.Counter(int(m.mail_from.split("+")[1].split("-")[0]) for m in received)
    assert max(copies.values()) == 1  # nothing was sent twice
    states = dict(db.query("SELECT id, state FROM deliveries WHERE campaign_id = ?", (cid,)))
    for delivery_id, state in states.items():
        if state == "sent":
            assert copies[delivery_id] == 1
        else:
            assert state == "in_doubt"
            assert copies[delivery_id] <= 1


def send_command(db_url: str, cid: int, url: str) -> list[str]:
    import sys

    return [
        *(sys.executable, "-m", "varsel", "--db", db_url, "campaign", "send", str(cid)),
        *("--smtp", url, "--no-approval"),
    ]


@contextlib.contextmanager
def writes_held(db_url: str) -> Iterator[None]:
    """Hold the store's write lock on a connection of the test's own: writers wait."""
    with connect(db_url) as other:
        raw = other.raw_connection()
        if other.dialect == "sqlite":
            raw.execute("BEGIN IMMEDIATE")
        else:
            raw.execute("BEGIN")
            raw.execute("LOCK TABLE deliveries IN EXCLUSIVE MODE")
        try:
            yield
        finally:
            raw.rollback()


def test_sigkill_between_the_relays_250_and_its_commit_leaves_that_message_in_doubt_only(
    db: Database, db_url: str, brreg: Path, tmp_path: Path
) -> None:
    import os
    import signal
    import subprocess

    text = campaign_toml(limits="connections = 1\n")
    cid = sample_campaign(db, brreg, tmp_path, text)
    env = {**os.environ, "VARSEL_DKIM_KEY_DIR": str(tmp_path / "keys")}
    # The first message's reply comes a second after its dot: time to stop the store's writes.
    plan = FaultPlan().on_message(1, Fault.delay(1.0))
    with SmtpSink(faults=plan) as sink:
        command = send_command(db_url, cid, sink.url)
        proc = subprocess.Popen(
            command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        try:
            until(lambda: plan.fired() == 1, 30)  # its dot is out, so its mark is durable
            with writes_held(db_url):
                sink.wait_for(1, 5)  # the relay has it and said 250 ...
                time.sleep(0.3)  # ... which the sender read, and cannot commit
                proc.send_signal(signal.SIGKILL)
                proc.wait(10)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        (first,) = sink.messages
        left = db.query_one(
            "SELECT state, data_started_at IS NOT NULL FROM deliveries WHERE address = ?",
            (first.rcpt_tos[0],),
        )
        assert left == ("claimed", True)
        done = subprocess.run(
            command, env=env, capture_output=True, text=True, timeout=60, check=False
        )
        received = [m.rcpt_tos[0] for m in sink.messages]
    assert done.returncode == 0, done.stderr
    assert sorted(received) == sorted(set(received))  # nothing sent twice
    counts = outbox.counts(db, cid)
    assert (counts["sent"], counts["in_doubt"]) == (5, 1)
    assert sum(counts.values()) == len(received) == 6
    states = dict(db.query("SELECT address, state FROM deliveries WHERE campaign_id = ?", (cid,)))
    assert states[first.rcpt_tos[0]] == "in_doubt"
    # `campaign status` adds up, names the one in doubt and waits for an operator's decision.
    report = status(db, cid)
    assert sum(report.counts.values()) == 6
    assert [d.address for d in report.in_doubt] == [first.rcpt_tos[0]]
    assert report.status_words == "venter på avgjørelse: 1 usikker"


def test_sigkill_while_a_message_waits_for_its_domains_turn_leaves_it_queued_not_in_doubt(
    db: Database, db_url: str, brreg: Path, tmp_path: Path
) -> None:
    import os
    import signal
    import subprocess

    from test_sender_pause import readdress

    # One message a minute to one domain: of its two, one goes, the other waits for its turn.
    text = campaign_toml(limits="connections = 2\nper_domain_per_minute = 1\n")
    cid = sample_campaign(db, brreg, tmp_path, text)
    ids = readdress(db, cid, "bedrift.example", 2)
    env = {**os.environ, "VARSEL_DKIM_KEY_DIR": str(tmp_path / "keys")}
    # Fires as each of the domain's messages passes RCPT TO; nothing else changes.
    plan = FaultPlan().on_rcpt(
        lambda rcpt: rcpt.endswith("@bedrift.example"), Fault.delay(0.0, stage=Stage.RCPT)
    )
    with SmtpSink(faults=plan) as sink:
        proc = subprocess.Popen(
            send_command(db_url, cid, sink.url),
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            sink.wait_for(5, 30)  # the other domains' four and one of the domain's two
            until(lambda: plan.fired() == 2, 10)  # the second is past RCPT TO and DATA ...
            time.sleep(1.0)  # ... and waits for the domain's turn, a minute away
            proc.send_signal(signal.SIGKILL)
            proc.wait(10)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        received = [m.rcpt_tos[0] for m in sink.messages]
    assert len(received) == 5
    rows = dict(
        db.query(
            "SELECT id, state || ':' || CASE WHEN data_started_at IS NULL THEN 'unmarked' "
            "ELSE 'marked' END FROM deliveries WHERE id IN (?, ?)",
            tuple(ids),
        )
    )
    # The one that waited has no mark: its dot was never written, so it is not in doubt.
    assert sorted(rows.values()) == ["claimed:unmarked", "sent:marked"]
    assert outbox.recover(db, cid) == (0, 1)  # what the next send does first
    counts = outbox.counts(db, cid)
    assert (counts["sent"], counts["queued"], counts["in_doubt"]) == (5, 1, 0)


def test_sigkill_during_a_retry_wait_then_pause_and_resume_loses_nothing(
    db: Database, db_url: str, brreg: Path, tmp_path: Path
) -> None:
    import os
    import signal
    import subprocess

    from varsel.cli import cli

    cid = sample_campaign(db, brreg, tmp_path)
    env = {**os.environ, "VARSEL_DKIM_KEY_DIR": str(tmp_path / "keys")}
    full = "4.2.2 Mailbox full, try again later"
    plan = FaultPlan().on_message(1, Fault.reply(452, full))
    with SmtpSink(faults=plan) as sink:
        command = send_command(db_url, cid, sink.url)
        proc = subprocess.Popen(
            command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        try:
            # Five sent, one deferred for a minute: the sender waits for its retry.
            until(lambda: outbox.counts(db, cid)["sent"] == 5, 30)
            until(lambda: outbox.counts(db, cid)["deferred"] == 1, 5)
            proc.send_signal(signal.SIGKILL)
            proc.wait(10)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        # Paused while no sender runs (its lease left behind); send refuses until resumed.
        runner = CliRunner()
        paused = runner.invoke(cli, ["--db", db_url, "campaign", "pause", str(cid)], env=env)
        assert paused.exit_code == 0, paused.output
        refused = subprocess.run(
            command, env=env, capture_output=True, text=True, timeout=60, check=False
        )
        assert refused.returncode == 2
        assert len(refused.stderr.splitlines()) == 1
        resumed = runner.invoke(cli, ["--db", db_url, "campaign", "resume", str(cid)], env=env)
        assert resumed.exit_code == 0, resumed.output
        # The retry came due while no sender ran.
        with db.transaction():
            db.execute(
                "UPDATE deliveries SET next_attempt_at = '2000-01-01T00:00:00.000Z' "
                "WHERE campaign_id = ? AND state = 'deferred'",
                (cid,),
            )
        done = subprocess.run(
            command, env=env, capture_output=True, text=True, timeout=60, check=False
        )
        received = [m.rcpt_tos[0] for m in sink.messages]
    assert done.returncode == 0, done.stderr
    assert sorted(received) == sorted(set(received))
    counts = outbox.counts(db, cid)
    assert counts["sent"] == len(received) == sum(counts.values()) == 6
    assert db.scalar("SELECT sum(attempts) FROM deliveries WHERE campaign_id = ?", (cid,)) == 7
    assert status(db, cid).campaign.status is CampaignStatus.DONE


def test_unsigned_send_for_benchmarks_has_no_dkim_signature(
    db: Database, campaign_id: int, settings: Settings
) -> None:
    options = SendOptions(connections=2, rate_per_second=1000, build_processes=0, sign=False)
    with SmtpSink() as sink:
        report = send_campaign(
            db, settings, campaign_id, relay=RelayConfig.from_url(sink.url), options=options
        )
        received = sink.messages
    assert report.counts["sent"] == 6
    assert [m for m in received if b"DKIM-Signature:" in m.data] == []


@pytest.mark.parametrize("build_processes", [0, 1])
def test_a_template_error_stops_the_send_and_gives_every_delivery_back(
    db: Database, brreg: Path, tmp_path: Path, settings: Settings, build_processes: int
) -> None:
    from varsel.message import MessageError

    import_dump(db, brreg / "enheter-sample.json")
    path = tmp_path / "c.toml"
    path.write_text(CAMPAIGN, "utf-8")
    cid = create_campaign(db, settings, path).campaign.id
    # A template that only fails when it is rendered: create refuses what it can see, so the
    # definition is changed afterwards, as the console's editor may.
    broken = "".join(
        f'[templates.{lang}]\ntext = "{{{{ 1 / 0 }}}}"\n' for lang in ("nb", "nn", "en")
    )
    path.write_text(CAMPAIGN + broken, "utf-8")
    update_spec(db, cid, load_spec(path, settings), actor="kari")
    options = SendOptions(connections=2, rate_per_second=1000, build_processes=build_processes)
    with SmtpSink() as sink:
        with pytest.raises(MessageError, match="ZeroDivisionError"):
            send_campaign(db, settings, cid, relay=RelayConfig.from_url(sink.url), options=options)
        assert sink.messages == []
    counts = outbox.counts(db, cid)
    assert (counts["queued"], counts["claimed"], counts["in_doubt"]) == (6, 0, 0)
    assert status(db, cid).campaign.status is CampaignStatus.READY


def test_group_commit_keeps_the_order_of_one_deliverys_statements(
    db: Database, campaign_id: int, settings: Settings
) -> None:
    from varsel.sender import Sender

    sender = Sender(db, settings, campaign_id, RelayConfig.from_url("smtp://127.0.0.1:1"))
    one, other = (r[0] for r in db.query("SELECT id FROM deliveries ORDER BY id LIMIT 2"))
    append = "UPDATE deliveries SET last_reply = coalesce(last_reply, '') || ? WHERE id = ?"
    mark = "UPDATE deliveries SET data_started_at = ? WHERE id = ?"
    sender._apply_writes([(append, ("a", one)), (mark, ("x", one)), (append, ("b", one))])
    sender._apply_writes([(append, ("a", other)), (mark, ("x", one)), (append, ("b", one))])
    replies = dict(
        db.query("SELECT id, last_reply FROM deliveries WHERE id IN (?, ?)", (one, other))
    )
    assert replies == {one: "abb", other: "a"}


def test_a_deferral_still_waiting_for_its_commit_does_not_end_the_run(
    db: Database, campaign_id: int, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    import varsel.outbox_commits

    # Outcomes wait long for a commit here: when the last transaction ends, the store still
    # says "claimed" for the deliveries it just deferred.
    monkeypatch.setattr(varsel.outbox_commits, "COMMIT_LINGER", 0.5)
    plan = defer_first_attempts()
    options = SendOptions(
        connections=6, rate_per_second=1000, retry_base_seconds=0.05, build_processes=0
    )
    with SmtpSink(faults=plan) as sink:
        report = send_campaign(
            db, settings, campaign_id, relay=RelayConfig.from_url(sink.url), options=options
        )
        assert len(sink.messages) == 6
    assert (report.stopped, report.counts["sent"]) == ("done", 6)


def test_sigterm_stops_the_send_gracefully_and_releases_the_campaign(
    db: Database, db_url: str, campaign_id: int, tmp_path: Path
) -> None:
    import os
    import signal
    import subprocess
    import sys

    plan = FaultPlan().on_rcpt(lambda r: True, Fault.delay(0.5))
    env = {**os.environ, "VARSEL_DKIM_KEY_DIR": str(tmp_path / "keys")}
    with SmtpSink(faults=plan) as sink:
        command = [sys.executable, "-m", "varsel", "--db", db_url, "campaign", "send"]
        command += [str(campaign_id), "--smtp", sink.url, "--no-approval", "--connections", "1"]
        proc = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 30
        while not sink.messages and time.monotonic() < deadline:
            time.sleep(0.05)
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert out.decode().startswith(f"Kampanje {campaign_id} stoppet: ")
    counts = outbox.counts(db, campaign_id)
    assert 1 <= counts["sent"] < 6
    assert (counts["claimed"], counts["in_doubt"]) == (0, 0)
    assert counts["queued"] == 6 - counts["sent"]
    assert db.query("SELECT status, sender_pid FROM campaigns") == [("ready", None)]


def test_a_unit_whose_name_cannot_stand_in_the_subject_fails_alone(
    db: Database, brreg: Path, tmp_path: Path, settings: Settings
) -> None:

    statnett = import_with_hostile_name(db, brreg, tmp_path)
    path = tmp_path / "c.toml"
    subjects = "".join(
        f'[templates.{lang}]\nsubject = "Til {{{{ unit.name }}}}"\n' for lang in ("nb", "nn", "en")
    )
    path.write_text(CAMPAIGN + subjects, "utf-8")
    cid = create_campaign(db, settings, path).campaign.id
    with SmtpSink() as sink:
        report = send_campaign(
            db, settings, cid, relay=RelayConfig.from_url(sink.url), options=FAST
        )
        received = sink.messages
    assert (report.stopped, report.counts["sent"], report.counts["failed"]) == ("done", 5, 1)
    assert "firmapost@statnett.no" not in [m.rcpt_tos[0] for m in received]
    orgnr = statnett["organisasjonsnummer"]
    reason = db.scalar("SELECT last_reply FROM deliveries WHERE state = 'failed'")
    assert reason.startswith(f"org.nr. {orgnr}: registerdata kan ikke stå i meldingen: emne: ")
    # `campaign status` says it without the address the name carried.
    assert status(db, cid).reasons[0].as_dict() == {
        "channel": "email",
        "state": "failed",
        "reason": reason.replace("_evil@x.test", "(adresse)"),
        "count": 1,
    }


@pytest.mark.postgres
def test_a_send_whose_store_goes_away_stops_in_one_line_and_goes_on_when_run_again(
    pg_url: str, postgres_base: str, tmp_path: Path
) -> None:
    # The server ends the sender's connections mid-send, as a restart of PostgreSQL does:
    # one line naming the store, exit status 75, no traceback from the connections still
    # sending (their errors too are the lost store's); run again, it finishes the campaign.
    import os
    import subprocess
    import sys
    import uuid

    import psycopg

    from varsel.synth import write_dump

    dump = tmp_path / "oslo.json.gz"
    write_dump(dump, units=2000, seed=17, municipalities=("0301",))
    settings = Settings.load(environ={}, dkim_key_dir=str(tmp_path / "keys"))
    path = tmp_path / "c.toml"
    path.write_text(campaign_toml(limits="connections = 3\nrate_per_second = 1000\n"), "utf-8")
    with connect(pg_url) as db:
        import_dump(db, dump)
        cid = create_campaign(db, settings, path).campaign.id
        total = outbox.counts(db, cid)["queued"]
    name = f"varsel-test-{uuid.uuid4().hex[:8]}"
    env = {**os.environ, "VARSEL_DKIM_KEY_DIR": str(tmp_path / "keys"), "PGAPPNAME": name}
    plan = FaultPlan().on_rcpt(lambda r: True, Fault.delay(0.02))
    with SmtpSink(faults=plan) as sink, connect(pg_url) as db:
        command = [sys.executable, "-m", "varsel", "--db", pg_url, "campaign", "send"]
        command += [str(cid), "--smtp", sink.url, "--no-approval"]
        proc = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 60
        while outbox.counts(db, cid)["sent"] < 20 and proc.poll() is None:
            assert time.monotonic() < deadline, "the send did not start"
            time.sleep(0.05)
        with psycopg.connect(postgres_base, autocommit=True) as admin:
            admin.execute(
                "SELECT pg_terminate_backend(pid, 5000) FROM pg_stat_activity "
                "WHERE application_name = %s",
                (name,),
            )
        _, error = proc.communicate(timeout=120)
        again = subprocess.run(command, env=env, capture_output=True, timeout=300, check=False)
        received = sink.messages
        counts = outbox.counts(db, cid)
    lines = error.decode().splitlines()
    assert proc.returncode == 75, lines
    assert len(lines) == 1, lines
    assert lines[0].startswith("varsel: lageret postgresql://")
    assert again.returncode == 0, again.stderr.decode()
    assert counts["sent"] + counts["in_doubt"] == total  # nothing lost
    assert counts["in_doubt"] <= 3  # one per connection at most
    copies: dict[str, int] = {}
    for m in received:
        copies[m.mail_from] = copies.get(m.mail_from, 0) + 1
    assert max(copies.values()) == 1  # nothing sent twice
