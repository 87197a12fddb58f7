from __future__ import annotations

import email
import email.message
import email.utils
import json
import mailbox
import re
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs

import pytest

from helpers import campaign_toml
from varsel.bounce_classify import BounceKind
from varsel.bounce_sources import ingest_bytes
from varsel.bounces import BounceIntake, FoundBy, units_needing_another_channel
from varsel.campaign import create_campaign
from varsel.channel.smtp_relay import RelayConfig
from varsel.config import Settings
from varsel.db import Database
from varsel.registry import import_dump
from varsel.sender import SendOptions, send_campaign
from varsel.testing import Fault, FaultPlan, SmtpSink
from varsel.verp import Verp

ROOT = Path(__file__).resolve().parent.parent
DATA = Path(__file__).parent / "data" / "bounces"
CAMPAIGN = campaign_toml(name="Returer", organisation="NSR", title="Råd")
# The campaign reaches six addresses; Statnett's relay refuses its address for good.
STATNETT = "firmapost@statnett.no"
TOMRA = "annlaug.kloven.moe@tomra.com"
RODEKORS = "dokumentasjonssenteret@rodekors.no"
NO_EMAIL = ["920058817", "935864879", "976389387", "982463718"]


@dataclass(frozen=True)
class Sent:
    """A delivery that went out: what a bounce to it would carry."""

    id: int
    address: str
    verp: str
    message_id: str
    message: bytes = b""  # as the relay received it


@dataclass(frozen=True)
class Campaign:
    id: int
    settings: Settings
    sent: dict[str, Sent]  # by address


@pytest.fixture
def campaign(db: Database, brreg: Path, tmp_path: Path) -> Campaign:
    settings = Settings.load(environ={}, dkim_key_dir=str(tmp_path / "keys"))
    import_dump(db, brreg / "enheter-sample.json")
    path = tmp_path / "c.toml"
    path.write_text(CAMPAIGN, "utf-8")
    campaign_id = create_campaign(db, settings, path).campaign.id
    plan = FaultPlan().on_rcpt(lambda r: r == STATNETT, Fault.reply(550, "5.1.1 No such user"))
    options = SendOptions(connections=1, rate_per_second=1000, build_processes=0)
    with SmtpSink(faults=plan) as sink:
        send_campaign(
            db, settings, campaign_id, relay=RelayConfig.from_url(sink.url), options=options
        )
        received = {m.rcpt_tos[0]: m for m in sink.messages}
    sent = {
        address: Sent(
            int(delivery_id),
            address,
            received[address].mail_from,
            message_id,
            received[address].data,
        )
        for delivery_id, address, message_id in db.query(
            "SELECT id, address, message_id FROM deliveries WHERE state = 'sent'"
        )
    }
    return Campaign(campaign_id, settings, sent)


def bounce(name: str, to: Sent, *, verp: bool = True, message_id: bool = True) -> bytes:
    """A message of the test data, about the given delivery (or with its clues taken out)."""
    if "/" in name:
        path = DATA / name
    else:
        path = DATA / "constructed" / name if name.endswith(".eml") else DATA / "flufl" / name
    raw = path.read_bytes()
    raw = raw.replace(b"firmapost@example.no", to.address.encode())
    raw = raw.replace(
        b"bounces+1-aaaaaaaaaaaaaaaaaaaa@nsr-org.no",
        to.verp.encode() if verp else b"sikkerhet@nsr-org.no",
    )
    return raw.replace(
        b"<1.0123456789abcdef@nsr-org.no>",
        to.message_id.encode() if message_id else b"<other.4711@example.no>",
    )


def intake(db: Database, campaign: Campaign) -> BounceIntake:
    return BounceIntake(db, Verp.from_settings(campaign.settings))


def state(db: Database, delivery_id: int) -> tuple[str, str | None]:
    row = db.query_one("SELECT state, last_reply FROM deliveries WHERE id = ?", (delivery_id,))
    assert row is not None
    return row[0], row[1]


def events(db: Database, delivery_id: int) -> list[tuple[str, dict[str, str]]]:
    return [
        (kind, json.loads(detail))
        for kind, detail in db.query(
            "SELECT kind, detail FROM events WHERE delivery_id = ? ORDER BY id", (delivery_id,)
        )
    ]


def suppressions(db: Database) -> list[tuple[str, str, str, str]]:
    return [tuple(r) for r in db.query("SELECT kind, value, reason, source FROM suppressions")]


# -- effects in the store -----------------------------------------------------------------


def test_hard_bounce_marks_the_delivery_suppresses_the_address_and_records_an_event(
    db: Database, campaign: Campaign
) -> None:
    to = campaign.sent[TOMRA]
    outcome = intake(db, campaign).ingest(bounce("postfix-5.1.1.eml", to))
    assert (outcome.kind, outcome.delivery_id, outcome.found_by) == (
        BounceKind.HARD,
        to.id,
        FoundBy.VERP,
    )
    assert state(db, to.id) == (
        "bounced",
        f"5.1.1 smtp; 550 5.1.1 <{TOMRA}>: Recipient address rejected: User unknown in "
        "virtual mailbox table",
    )
    assert suppressions(db) == [("address", TOMRA, "hard_bounce", f"delivery:{to.id}")]
    assert events(db, to.id)[-1] == (
        "bounce_hard",
        {
            "status": "5.1.1",
            "diagnostic": f"smtp; 550 5.1.1 <{TOMRA}>: Recipient address rejected: User "
            "unknown in virtual mailbox table",
            "recipient": TOMRA,
            "evidence": "dsn",
            "found_by": "verp",
        },
    )


def forgotten(db: Database, campaign: Campaign) -> None:
    """The campaign finished and its contact data forgotten (`campaign forget`)."""
    from varsel.retention import forget_campaign

    with db.transaction():
        db.execute("UPDATE campaigns SET status = 'done' WHERE id = ?", (campaign.id,))
    forget_campaign(db, campaign.id, actor="cli:test")


def test_a_bounce_for_a_forgotten_delivery_suppresses_no_stand_in_and_keeps_no_text(
    db: Database, campaign: Campaign
) -> None:
    from varsel.erasure import is_stand_in

    forgotten(db, campaign)
    to = campaign.sent[TOMRA]
    outcome = intake(db, campaign).ingest(bounce("postfix-5.1.1.eml", to))
    assert (outcome.kind, outcome.delivery_id) == (BounceKind.HARD, to.id)
    # Still counted as a bounce, by its codes; nothing to suppress: the address is gone.
    assert state(db, to.id) == ("bounced", "5.1.1 550")
    assert suppressions(db) == []
    assert events(db, to.id)[-1] == (
        "bounce_hard",
        {"status": "5.1.1", "evidence": "dsn", "found_by": "verp"},
    )
    address = db.scalar("SELECT address FROM deliveries WHERE id = ?", (to.id,))
    assert is_stand_in(address)


def test_a_late_report_for_a_forgotten_delivery_keeps_no_recipient(
    db: Database, campaign: Campaign
) -> None:
    forgotten(db, campaign)
    to = campaign.sent[TOMRA]
    run = intake(db, campaign)
    run.ingest(bounce("postfix-5.1.1.eml", to))
    run.ingest(bounce("outlook-automatisk-svar.eml", to))
    # Forgetting erased the failed recipients of bounce reports: one that comes later keeps none.
    assert db.query(
        "SELECT kind, status, recipient FROM bounce_messages WHERE delivery_id = ? ORDER BY kind",
        (to.id,),
    ) == [("auto_reply", None, None), ("hard", "5.1.1", None)]


def test_the_same_bounce_twice_changes_nothing_the_second_time(
    db: Database, campaign: Campaign
) -> None:
    to = campaign.sent[TOMRA]
    raw = bounce("exim-5.0.0.eml", to)
    first = intake(db, campaign).ingest(raw)
    second = intake(db, campaign).ingest(raw)
    assert (first.duplicate, second.duplicate) == (False, True)
    assert (second.kind, second.delivery_id) == (BounceKind.HARD, to.id)
    assert [e[0] for e in events(db, to.id)].count("bounce_hard") == 1
    assert len(suppressions(db)) == 1


def test_complaint_bounces_the_delivery_and_suppresses_for_complaint(
    db: Database, campaign: Campaign
) -> None:
    to = campaign.sent[RODEKORS]
    outcome = intake(db, campaign).ingest(bounce("arf-abuse.eml", to))
    assert outcome.kind is BounceKind.COMPLAINT
    assert state(db, to.id) == ("bounced", "complaint: abuse")
    assert suppressions(db) == [("address", RODEKORS, "complaint", f"delivery:{to.id}")]
    assert events(db, to.id)[-1][0] == "complaint"
    assert events(db, to.id)[-1][1]["feedback_type"] == "abuse"


@pytest.mark.parametrize(
    ("name", "kind", "event"),
    [
        ("postfix-delayed-4.2.2.eml", BounceKind.SOFT, "bounce_soft"),
        ("postfix-gmail-5.7.26.eml", BounceKind.POLICY, "bounce_policy"),
        ("outlook-automatisk-svar.eml", BounceKind.AUTO_REPLY, "auto_reply"),
        # Without a report, read by flufl.bounce, which called each of these permanent.
        ("exim-text-5.7.1.eml", BounceKind.POLICY, "bounce_policy"),
        ("exim-text-5.2.2.eml", BounceKind.SOFT, "bounce_soft"),
        ("exim-delay-24h.eml", BounceKind.SOFT, "bounce_soft"),
        # An alias: one of its mailboxes got the message, another is gone.
        ("postfix-alias-mixed.eml", BounceKind.SOFT, "bounce_soft"),
    ],
)
def test_soft_policy_and_auto_reply_are_events_only(
    db: Database, campaign: Campaign, name: str, kind: BounceKind, event: str
) -> None:
    to = campaign.sent[TOMRA]
    outcome = intake(db, campaign).ingest(bounce(name, to))
    assert (outcome.kind, outcome.delivery_id) == (kind, to.id)
    assert state(db, to.id)[0] == "sent"
    assert suppressions(db) == []
    assert events(db, to.id)[-1][0] == event


def test_a_spam_refusal_without_a_report_keeps_the_code_and_words_it_quotes(
    db: Database, campaign: Campaign
) -> None:
    to = campaign.sent[TOMRA]
    letters = units_needing_another_channel(db, campaign.id)
    intake(db, campaign).ingest(bounce("exim-text-5.7.1.eml", to))
    assert events(db, to.id)[-1] == (
        "bounce_policy",
        {
            "status": "5.7.1",
            "diagnostic": "550 5.7.1 Message rejected as spam by Content Filtering.",
            "recipient": TOMRA,
            "evidence": "heuristic",
            "found_by": "verp",
        },
    )
    assert units_needing_another_channel(db, campaign.id) == letters  # the address works


@pytest.mark.parametrize(
    ("name", "challenge"),
    [
        ("autoreply/fravaerende-report-nb.eml", False),
        ("autoreply/out-of-office-en.eml", False),
        ("autoreply/boxbe-challenge.eml", True),
        ("autoreply/challenge-as-dsn-nb.eml", True),
    ],
)
def test_an_auto_reply_or_challenge_that_looks_like_a_bounce_suppresses_nothing(
    db: Database, campaign: Campaign, name: str, challenge: bool
) -> None:
    # The address works: a filter's "verify you are human" or an out-of-office that says
    # "mailbox unavailable" used to suppress it as a hard bounce.
    to = campaign.sent[TOMRA]
    before = state(db, to.id)
    outcome = intake(db, campaign).ingest(bounce(name, to))
    assert (outcome.kind, outcome.delivery_id, outcome.found_by) == (
        BounceKind.AUTO_REPLY,
        to.id,
        FoundBy.VERP,
    )
    assert before[0] == "sent"
    assert state(db, to.id) == before
    assert suppressions(db) == []
    kind, detail = events(db, to.id)[-1]
    assert (kind, detail.get("challenge", False)) == ("auto_reply", challenge)
    assert db.scalar("SELECT kind FROM bounce_messages WHERE delivery_id = ?", (to.id,)) == (
        "auto_reply"
    )


def test_a_bounce_quoting_our_whole_message_is_no_challenge(
    db: Database, campaign: Campaign
) -> None:
    # Many servers quote the original in their text: varsel's own words (type the address,
    # the page confirms, reply if you like) and links must not read as a filter's challenge.
    to = campaign.sent[TOMRA]
    original = email.message_from_bytes(to.message)
    text = next(
        p.get_payload(decode=True) for p in original.walk() if p.get_content_type() == "text/plain"
    )
    assert isinstance(text, bytes)
    assert b"http" in text
    raw = bounce("postfix-5.1.1.eml", to).replace(
        b"For further assistance", text + b"\n\nFor further assistance"
    )
    outcome = intake(db, campaign).ingest(raw)
    assert (outcome.kind, outcome.delivery_id) == (BounceKind.HARD, to.id)
    assert "challenge" not in events(db, to.id)[-1][1]


def test_a_real_dsn_marked_auto_generated_still_suppresses(
    db: Database, campaign: Campaign
) -> None:
    to = campaign.sent[TOMRA]
    outcome = intake(db, campaign).ingest(bounce("autoreply/dsn-auto-generated-5.1.1.eml", to))
    assert (outcome.kind, outcome.delivery_id) == (BounceKind.HARD, to.id)
    assert state(db, to.id)[0] == "bounced"
    assert suppressions(db) == [("address", TOMRA, "hard_bounce", f"delivery:{to.id}")]


@pytest.mark.parametrize("verp", [True, False])
def test_a_norwegian_bounce_without_a_report_is_a_hard_bounce(
    db: Database, campaign: Campaign, verp: bool
) -> None:
    # Its words are Norwegian only («ukjent mottaker»): it was unrecognised, kept aside.
    to = campaign.sent[TOMRA]
    raw = bounce("isp-nb-text-ukjent-mottaker.eml", to, verp=verp)
    outcome = intake(db, campaign).ingest(raw)
    assert (outcome.kind, outcome.delivery_id, outcome.found_by) == (
        BounceKind.HARD,
        to.id,
        FoundBy.VERP if verp else FoundBy.MESSAGE_ID,
    )
    assert state(db, to.id) == (
        "bounced",
        "Årsak: mottakerens postkasse finnes ikke (ukjent mottaker).",
    )
    assert suppressions(db) == [("address", TOMRA, "hard_bounce", f"delivery:{to.id}")]


def test_without_verp_the_returned_message_id_names_the_delivery(
    db: Database, campaign: Campaign
) -> None:
    to = campaign.sent[TOMRA]
    outcome = intake(db, campaign).ingest(bounce("office365-5.1.10.eml", to, verp=False))
    assert (outcome.delivery_id, outcome.found_by) == (to.id, FoundBy.MESSAGE_ID)
    assert state(db, to.id)[0] == "bounced"
    assert suppressions(db) == [("address", TOMRA, "hard_bounce", f"delivery:{to.id}")]


def test_an_auto_reply_without_verp_is_found_by_in_reply_to(
    db: Database, campaign: Campaign
) -> None:
    to = campaign.sent[TOMRA]
    outcome = intake(db, campaign).ingest(bounce("vacation-rfc3834.eml", to, verp=False))
    assert (outcome.kind, outcome.found_by) == (BounceKind.AUTO_REPLY, FoundBy.MESSAGE_ID)


def test_without_verp_or_message_id_the_failed_address_names_the_delivery_but_stops_nothing(
    db: Database, campaign: Campaign
) -> None:
    # Anyone can send such a report to the reply mailbox: the delivery counts as bounced, but
    # the address stays open to other campaigns.
    to = campaign.sent[TOMRA]
    raw = bounce("gmail-5.1.1.eml", to, verp=False, message_id=False)
    outcome = intake(db, campaign).ingest(raw)
    assert (outcome.delivery_id, outcome.found_by) == (to.id, FoundBy.ADDRESS)
    assert state(db, to.id)[0] == "bounced"
    assert suppressions(db) == []
    kind, detail = events(db, to.id)[-1]
    assert (kind, detail["found_by"], detail["suppressed"]) == ("bounce_hard", "address", False)


def test_a_complaint_found_by_the_address_alone_stops_nothing(
    db: Database, campaign: Campaign
) -> None:
    to = campaign.sent[RODEKORS]
    outcome = intake(db, campaign).ingest(bounce("arf-abuse.eml", to, verp=False, message_id=False))
    assert (outcome.kind, outcome.found_by) == (BounceKind.COMPLAINT, FoundBy.ADDRESS)
    assert state(db, to.id)[0] == "bounced"
    assert suppressions(db) == []
    assert events(db, to.id)[-1][1]["suppressed"] is False


def test_a_real_bounce_without_a_report_is_read_by_heuristics_and_found_by_address(
    db: Database, campaign: Campaign
) -> None:
    # Postfix's old plain-text bounce from flufl.bounce's corpus, about one of our addresses.
    to = campaign.sent[TOMRA]
    raw = (
        (DATA / "flufl" / "postfix_01.txt").read_bytes().replace(b"xxxxx@local.ie", TOMRA.encode())
    )
    outcome = intake(db, campaign).ingest(raw)
    assert (outcome.kind, outcome.delivery_id, outcome.found_by) == (
        BounceKind.HARD,
        to.id,
        FoundBy.ADDRESS,
    )
    assert events(db, to.id)[-1][1]["evidence"] == "heuristic"


def test_a_forged_verp_address_names_nothing_and_is_kept_aside(
    db: Database, campaign: Campaign
) -> None:
    to = campaign.sent[TOMRA]
    verp = f"bounces+{to.id}-{'a' * 20}@nsr-org.no"
    forged = Sent(to.id, "someone@example.org", verp, "")
    outcome = intake(db, campaign).ingest(bounce("postfix-5.1.1.eml", forged, message_id=False))
    assert (outcome.kind, outcome.delivery_id, outcome.kept_aside) == (BounceKind.HARD, None, True)
    assert outcome.forged
    assert state(db, to.id)[0] == "sent"
    assert suppressions(db) == []


def test_a_forged_verp_address_is_not_overruled_by_the_failed_address(
    db: Database, campaign: Campaign, tmp_path: Path
) -> None:
    # The audit's case: a report to a VERP address whose mac fails, naming one of our
    # recipients as the failed one. Without the mac the address lookup would believe it.
    to = campaign.sent[TOMRA]
    forged = Sent(8848, TOMRA, f"bounces+8848-{'0' * 20}@asker.kommune.no", "")
    raw = bounce("postfix-5.1.1.eml", forged, message_id=False)
    summary = ingest_bytes(intake(db, campaign), raw, keep=tmp_path / "aside")
    assert summary.as_dict()["forged"] == 1
    assert summary.summary() == (
        "1 melding: 0 harde returer, 0 myke, 0 avvist av mottakers regler, 0 klager, "
        "0 autosvar, 0 avmeldinger, 0 ukjente, 1 forfalsket, 0 uten kjent levering, "
        "0 tatt inn før."
    )
    assert state(db, to.id)[0] == "sent"
    assert suppressions(db) == []
    assert [k for k, _ in events(db, to.id) if k.startswith("bounce")] == []
    assert db.scalar("SELECT count(*) FROM bounce_messages") == 0
    assert len(mailbox.Maildir(tmp_path / "aside")) == 1


def test_a_genuine_message_id_still_names_the_delivery_beside_a_failing_mac(
    db: Database, campaign: Campaign
) -> None:
    # The Message-ID is as secret as the mac (only the message's reader saw it): this is a
    # bounce of an earlier message after the VERP secret was changed.
    to = campaign.sent[TOMRA]
    stale = Sent(to.id, TOMRA, f"bounces+{to.id}-{'0' * 20}@nsr-org.no", to.message_id)
    outcome = intake(db, campaign).ingest(bounce("office365-5.1.10.eml", stale))
    assert (outcome.delivery_id, outcome.found_by, outcome.forged) == (
        to.id,
        FoundBy.MESSAGE_ID,
        False,
    )
    assert suppressions(db) == [("address", TOMRA, "hard_bounce", f"delivery:{to.id}")]


@pytest.mark.parametrize(
    "raw",
    [
        b"garbage\n",
        b"",
        b"\n\nonly a body\n",
        b"Subject: Undelivered Mail Returned to Sender\r\n\r\nno From\r\n",
        bytes(range(256)) * 4,
        b"From: MAILER-DAEMON@x.no\r\nContent-Type: multipart/report; report-type=delivery-"
        b"status\r\n\r\n--b\r\nContent-Type: message/delivery-status\r\n\r\nStatus: 5.1",
        b"Message-ID: <\xff\xfe@x>\r\nSubject: \xe6\xf8\r\n\r\n8-bit headers\r\n",
    ],
    ids=["garbage", "empty", "no-headers", "no-from", "binary", "broken-dsn", "8-bit"],
)
def test_a_malformed_message_is_unrecognised_and_kept_aside(
    db: Database, campaign: Campaign, tmp_path: Path, raw: bytes
) -> None:
    outcome = intake(db, campaign).ingest(raw)
    assert (outcome.kind, outcome.kept_aside) == (BounceKind.UNRECOGNISED, True)
    assert db.scalar("SELECT count(*) FROM bounce_messages") == 0
    assert suppressions(db) == []


def test_an_unrecognised_message_changes_nothing_and_is_kept_aside(
    db: Database, campaign: Campaign
) -> None:
    raw = (DATA / "flufl" / "groupwise_03.txt").read_bytes()
    outcome = intake(db, campaign).ingest(raw)
    assert (outcome.kind, outcome.kept_aside) == (BounceKind.UNRECOGNISED, True)
    assert db.scalar("SELECT count(*) FROM bounce_messages") == 0


def test_an_address_is_looked_for_in_the_given_campaign_only(
    db: Database, campaign: Campaign
) -> None:
    raw = bounce("gmail-5.1.1.eml", campaign.sent[TOMRA], verp=False, message_id=False)
    other = BounceIntake(db, Verp.from_settings(campaign.settings), campaign_id=campaign.id + 1)
    assert other.ingest(raw).delivery_id is None
    same = BounceIntake(db, Verp.from_settings(campaign.settings), campaign_id=campaign.id)
    assert same.ingest(raw).delivery_id == campaign.sent[TOMRA].id


def test_the_headers_postfix_pipe_prepends_with_flags_dor_name_the_delivery(
    db: Database, campaign: Campaign
) -> None:
    # docs/delivery.md's master.cf: flags=DOR. An auto-reply whose own headers name only the
    # sender's address (its To is the From, not the envelope) is found by the VERP address
    # Postfix put in Delivered-To and X-Original-To, not by the replying address.
    to = campaign.sent[TOMRA]
    reply = bounce("vacation-rfc3834.eml", to, verp=False, message_id=False)
    assert to.verp.encode() not in reply
    piped = f"Delivered-To: {to.verp}\nX-Original-To: {to.verp}\nReturn-Path: <>\n".encode() + reply
    outcome = intake(db, campaign).ingest(piped)
    assert (outcome.kind, outcome.delivery_id, outcome.found_by) == (
        BounceKind.AUTO_REPLY,
        to.id,
        FoundBy.VERP,
    )


# -- the verification code a bounce quotes -------------------------------------------------

CODE = re.compile(rb"\b[0-9A-Z]{4}-[0-9A-Z]{4}-[0-9A-Z]{4}\b")


def code_of(sent: Sent) -> str:
    """The verification code the delivery's message printed."""
    original = email.message_from_bytes(sent.message)
    for part in original.walk():
        if part.get_content_type() == "text/plain":
            found = CODE.search(part.get_payload(decode=True))
            assert found is not None
            return found.group(0).decode()
    raise AssertionError("no text part")


def returning_original(sent: Sent, recipient: str) -> bytes:
    """Postfix's report that recipient failed, with the whole original message returned, and
    neither the VERP address nor the original's Message-ID in it (a gateway rewrote both)."""
    stripped = b"".join(
        line
        for line in sent.message.splitlines(keepends=True)
        if not line.lower().startswith((b"message-id:", b"return-path:"))
    )
    assert sent.verp.encode() not in stripped
    raw = bounce("postfix-5.1.1.eml", Sent(sent.id, recipient, sent.verp, ""), verp=False)
    headers = raw.partition(b"Content-Type: text/rfc822-headers")[0]
    boundary = b"\n--4PGQ1m2Yd1z9sTQ.1676362324/relay.nsr-org.no--"
    return headers + b"Content-Type: message/rfc822\n\n" + stripped + boundary + b"\n"


def test_a_bounce_with_neither_verp_nor_message_id_is_found_by_the_code_it_quotes(
    db: Database, campaign: Campaign
) -> None:
    to = campaign.sent[TOMRA]
    outcome = intake(db, campaign).ingest(returning_original(to, TOMRA))
    assert (outcome.kind, outcome.delivery_id, outcome.found_by) == (
        BounceKind.HARD,
        to.id,
        FoundBy.CODE,
    )
    # The report names the delivery's own address as the failed one: a real bounce of it.
    assert state(db, to.id)[0] == "bounced"
    assert suppressions(db) == [("address", TOMRA, "hard_bounce", f"delivery:{to.id}")]
    kind, detail = events(db, to.id)[-1]
    assert (kind, detail["found_by"], "suppressed" in detail) == ("bounce_hard", "code", False)


def test_a_code_with_another_failed_address_is_recorded_but_stops_nothing(
    db: Database, campaign: Campaign
) -> None:
    # A forger who holds one message (its code) names someone else's address as the failed
    # one; or the business forwarded the message on, and the forward failed. Either way the
    # delivery's own address is not shown dead.
    to = campaign.sent[RODEKORS]
    outcome = intake(db, campaign).ingest(returning_original(to, TOMRA))
    assert (outcome.kind, outcome.delivery_id, outcome.found_by) == (
        BounceKind.HARD,
        to.id,
        FoundBy.CODE,
    )
    assert state(db, to.id)[0] == "sent"
    assert state(db, campaign.sent[TOMRA].id)[0] == "sent"
    assert suppressions(db) == []
    kind, detail = events(db, to.id)[-1]
    assert (kind, detail["found_by"], detail["recipient"], detail["suppressed"]) == (
        "bounce_hard",
        "code",
        TOMRA,
        False,
    )


def test_a_code_no_delivery_of_the_campaign_has_names_nothing(
    db: Database, campaign: Campaign
) -> None:
    to = campaign.sent[RODEKORS]
    raw = returning_original(to, "videresendt@example.org")
    other = BounceIntake(db, Verp.from_settings(campaign.settings), campaign_id=campaign.id + 1)
    assert other.ingest(raw).delivery_id is None
    # A well-formed code no message has (its check symbol right) names nothing either.
    unknown = raw.replace(code_of(to).encode(), b"AAAA-AAAA-AAA5")
    outcome = intake(db, campaign).ingest(unknown)
    assert (outcome.delivery_id, outcome.kept_aside) == (None, True)
    assert state(db, to.id)[0] == "sent"
    assert suppressions(db) == []


def test_a_code_beside_a_forged_verp_address_names_nothing(
    db: Database, campaign: Campaign
) -> None:
    to = campaign.sent[TOMRA]
    forged = f"bounces+{to.id}-{'0' * 20}@nsr-org.no".encode()
    raw = returning_original(to, TOMRA).replace(b"sikkerhet@nsr-org.no", forged)
    outcome = intake(db, campaign).ingest(raw)
    assert (outcome.delivery_id, outcome.forged) == (None, True)
    assert suppressions(db) == []


def test_an_auto_reply_quoting_the_message_is_found_by_its_code(
    db: Database, campaign: Campaign
) -> None:
    to = campaign.sent[TOMRA]
    raw = bounce("vacation-rfc3834.eml", to, verp=False, message_id=False)
    raw += f"\n> 2. Skriv inn kontrollkoden {code_of(to)}\n".encode()
    outcome = intake(db, campaign).ingest(raw)
    assert (outcome.kind, outcome.delivery_id, outcome.found_by) == (
        BounceKind.AUTO_REPLY,
        to.id,
        FoundBy.CODE,
    )
    assert events(db, to.id)[-1][0] == "auto_reply"


# -- the List-Unsubscribe mailto ------------------------------------------------------------


def unsubscribe_mail(sent: Sent, prefix: str = "SV: ") -> bytes:
    """What a mail program sends for the mailto of the message's List-Unsubscribe."""
    header = email.message_from_bytes(sent.message)["List-Unsubscribe"]
    found = re.search(r"<mailto:([^>]+)>", " ".join(header.split()))
    assert found is not None, header
    to, _, query = found.group(1).partition("?")
    mail = email.message.EmailMessage()
    mail["From"] = sent.address
    mail["To"] = to
    mail["Subject"] = prefix + parse_qs(query)["subject"][0]
    mail["Date"] = email.utils.formatdate()
    mail["Message-ID"] = email.utils.make_msgid(domain=sent.address.partition("@")[2])
    mail.set_content("Meld meg av.\n")
    return mail.as_bytes()


def test_a_mail_to_the_unsubscribe_mailto_stops_the_address_once(
    db: Database, campaign: Campaign, tmp_path: Path
) -> None:
    to = campaign.sent[TOMRA]
    raw = unsubscribe_mail(to)
    assert b"To: avmelding@nsr-org.no" in raw
    outcome = intake(db, campaign).ingest(raw, "imap")
    assert (outcome.kind, outcome.delivery_id, outcome.found_by, outcome.kept_aside) == (
        BounceKind.UNSUBSCRIBE,
        to.id,
        FoundBy.TOKEN,
        False,
    )
    assert suppressions(db) == [("address", TOMRA, "unsubscribed", f"mail:delivery:{to.id}")]
    assert events(db, to.id)[-1] == (
        "unsubscribed",
        {"scope": "address", "one_click": False, "added": 1, "via": "mail"},
    )
    assert state(db, to.id)[0] == "sent"  # it arrived: it was read
    again = intake(db, campaign).ingest(raw, "imap")
    assert (again.duplicate, again.kind) == (True, BounceKind.UNSUBSCRIBE)
    assert [k for k, _ in events(db, to.id)].count("unsubscribed") == 1
    # The next campaign leaves the address out.
    path = tmp_path / "c2.toml"
    path.write_text(CAMPAIGN, "utf-8")
    second = create_campaign(db, campaign.settings, path).campaign.id
    states = db.query(
        "SELECT state FROM deliveries WHERE campaign_id = ? AND address = ?", (second, TOMRA)
    )
    assert [s for (s,) in states] == ["suppressed"]


def test_an_unsubscribe_mail_with_an_unknown_token_is_unrecognised(
    db: Database, campaign: Campaign, tmp_path: Path
) -> None:
    raw = unsubscribe_mail(campaign.sent[TOMRA]).replace(b"unsubscribe-", b"unsubscribe-x")
    summary = ingest_bytes(intake(db, campaign), raw, keep=tmp_path / "aside")
    assert (summary.as_dict()["unrecognised"], summary.as_dict()["unsubscribe"]) == (1, 0)
    assert suppressions(db) == []
    assert len(mailbox.Maildir(tmp_path / "aside")) == 1


def test_an_unsubscribe_mail_for_a_forgotten_delivery_stops_its_businesses(
    db: Database, campaign: Campaign
) -> None:
    from varsel.retention import forget_campaign

    to = campaign.sent[TOMRA]
    raw = unsubscribe_mail(to)
    with db.transaction():
        db.execute("UPDATE campaigns SET status = 'done' WHERE id = ?", (campaign.id,))
    forget_campaign(db, campaign.id, actor="cli:test")
    outcome = intake(db, campaign).ingest(raw)
    assert outcome.kind is BounceKind.UNSUBSCRIBE
    units = [
        u for (u,) in db.query("SELECT orgnr FROM delivery_units WHERE delivery_id = ?", (to.id,))
    ]
    assert suppressions(db) == [
        ("unit", u, "unsubscribed", f"mail:delivery:{to.id}") for u in sorted(units)
    ]
    assert events(db, to.id)[-1][1]["scope"] == "organisation"


# -- the units for letters and Altinn -------------------------------------------------------


def test_units_needing_another_channel(db: Database, campaign: Campaign) -> None:
    run = intake(db, campaign)
    run.ingest(bounce("postfix-5.1.1.eml", campaign.sent[TOMRA]))  # hard: letter
    run.ingest(bounce("arf-abuse.eml", campaign.sent[RODEKORS]))  # complaint: reached
    # Statnett's relay said 550 5.1.1 at once (failed); the four without e-mail never had any.
    assert units_needing_another_channel(db, campaign.id) == sorted(
        [*NO_EMAIL, "927124238", "962986633"]
    )


def test_units_needing_another_channel_include_those_suppressed_for_an_earlier_bounce(
    db: Database, campaign: Campaign, tmp_path: Path
) -> None:
    intake(db, campaign).ingest(bounce("postfix-5.1.1.eml", campaign.sent[TOMRA]))
    path = tmp_path / "c2.toml"
    path.write_text(CAMPAIGN, "utf-8")
    second = create_campaign(db, campaign.settings, path).campaign.id
    assert "927124238" in units_needing_another_channel(db, second)
    assert "864139442" not in units_needing_another_channel(db, second)
