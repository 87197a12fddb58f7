from __future__ import annotations

from click.testing import CliRunner

from varsel import outbox
from varsel.channel.smtp_relay import RelayConfig
from varsel.cli import cli
from varsel.config import Settings
from varsel.db import Database
from varsel.send_report import SendReport, status
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


def _letters(db: Database, campaign_id: int, states: list[str]) -> None:
    """Letter deliveries in these states, as letters and the print house's reports leave them."""
    with db.transaction():
        for n, state in enumerate(states):
            db.execute(
                "INSERT INTO deliveries (campaign_id, channel, key, address, language, state, "
                "code, unsubscribe_token, created_at, updated_at) "
                "VALUES (?, 'letter', ?, ?, 'nb', ?, ?, 'x', '2026-01-01', '2026-01-01')",
                (campaign_id, f"9{n:08}", f"9{n:08}", state, f"CODE{n}"),
            )


def _email_states(db: Database, campaign_id: int, states: list[str]) -> None:
    ids = [
        r[0]
        for r in db.query(
            "SELECT id FROM deliveries WHERE campaign_id = ? ORDER BY id", (campaign_id,)
        )
    ]
    with db.transaction():
        for delivery_id, state in zip(ids, states, strict=False):
            db.execute("UPDATE deliveries SET state = ? WHERE id = ?", (state, delivery_id))


def test_status_counts_every_channel_and_state(db: Database, campaign_id: int) -> None:
    _email_states(db, campaign_id, ["sent", "sent", "sent", "sent", "bounced", "bounced"])
    _letters(db, campaign_id, ["posted", "posted", "posted", "returned"])
    found = status(db, campaign_id).as_dict()
    assert (found["sent"], found["bounced"], found["accepted"]) == (4, 2, 6)
    assert "posted" not in found  # the top level is e-mail's, as before letters
    assert found["channels"]["letter"] == {
        "total": 4,
        "queued": 0,
        "produced": 0,
        "posted": 3,
        "returned": 1,
        "failed": 0,
        "suppressed": 0,
        "cancelled": 0,
    }
    assert found["channels"]["email"]["total"] == 6
    assert found["channels"]["altinn"]["total"] == 0
    assert (
        found["deliveries"]
        == 10
        == db.scalar("SELECT count(*) FROM deliveries WHERE campaign_id = ?", (campaign_id,))
    )


def test_status_counts_an_altinn_message_altinn_has_not_taken_as_waiting(
    db: Database, campaign_id: int
) -> None:
    # Stored as submitted when planned (altinn send --limit, or a run cut short): until
    # Altinn's id is stored, it is in the queue, not «sendt inn».
    with db.transaction():
        for n, message_id in enumerate([None, None, "a1b2"]):
            db.execute(
                "INSERT INTO deliveries (campaign_id, channel, key, address, language, state, "
                "code, unsubscribe_token, message_id, created_at, updated_at) "
                "VALUES (?, 'altinn', ?, ?, 'nb', 'submitted', ?, 'x', ?, '2026-01-01', "
                "'2026-01-01')",
                (campaign_id, f"9{n:08}", f"9{n:08}", f"CODE{n}", message_id),
            )
    altinn = status(db, campaign_id).as_dict()["channels"]["altinn"]
    assert (altinn["total"], altinn["queued"], altinn["submitted"]) == (3, 2, 1)
    result = CliRunner().invoke(cli, ["--db", db.url, "campaign", "status", str(campaign_id)])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    start = lines.index("Altinn (3):")
    assert lines[start + 1 : start + 3] == [
        "  i kø                  2",
        "  sendt inn             1",
    ]


def test_status_prints_bounced_emails_and_the_letters(db: Database, campaign_id: int) -> None:
    _email_states(db, campaign_id, ["sent", "sent", "sent", "sent", "bounced", "bounced"])
    _letters(db, campaign_id, ["posted", "posted", "returned"])
    result = CliRunner().invoke(cli, ["--db", db.url, "campaign", "status", str(campaign_id)])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    # Under the campaign's line, the one on its approval (a campaign never approved here).
    assert lines[1].startswith(f"Kampanje {campaign_id} er ikke godkjent")
    assert lines[2:14] == [
        "E-post (6):",
        "  i kø                  0",
        "  under sending         0",
        "  sendt                 4",
        "  utsatt                0",
        "  feilet                0",
        "  i retur               2",
        "  sperret               0",
        "  usikre                0",
        "  kansellert            0",
        "  i alt 6 sendt, av dem 2 i retur",
        "Brev (3):",
    ]
    assert "  postlagt              2" in lines
    assert "  returnert             1" in lines
    assert not any(line.startswith("Altinn") for line in lines)  # a channel not used


def test_the_send_summary_counts_bounced_emails_as_sent() -> None:
    # `campaign send` said «166 sendt»; run again after 4 bounces, it must not say 162.
    counts = {"sent": 162, "bounced": 4, "deferred": 0, "failed": 0, "suppressed": 0}
    text = SendReport(1, {**counts, "in_doubt": 0, "queued": 0}, 0, 1.0, "done", 0).summary()
    assert text.startswith("Kampanje 1 ferdig: 166 sendt, av dem 4 i retur, 0 utsatt, 0 feilet,")


def test_status_says_nothing_more_when_no_email_bounced(db: Database, campaign_id: int) -> None:
    _email_states(db, campaign_id, ["sent", "sent"])
    result = CliRunner().invoke(cli, ["--db", db.url, "campaign", "status", str(campaign_id)])
    assert result.exit_code == 0, result.output
    assert "  sendt                 2" in result.output.splitlines()
    assert " i alt " not in result.output
    assert status(db, campaign_id).as_dict()["accepted"] == 2
