from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from varsel.bounce_classify import (
    BounceKind,
    Classification,
    Evidence,
    classify,
    is_auto_reply,
    is_challenge,
    message_ids,
    parse,
    quoted_codes,
    refined_status,
    status_kind,
    unsubscribe_token,
)

DATA = Path(__file__).parent / "data" / "bounces"

# Every file of flufl.bounce's corpus of real bounces: (file, kind, evidence, recipient).
# The recipients are those flufl.bounce's own tests expect; the kinds follow status_kind's rules
# (dsn_01 is a full mailbox behind 5.0.0, dsn_03 a size limit behind a bare 553, dsn_09 an
# X.400 gateway's 5.7.1 relay refusal, simple_42 Gmail's 5.7.1 behind Exim's 5.0.0). Where
# flufl.bounce calls a failure permanent, the code the bounce quotes decides as in a report:
# simple_01, simple_14 and simple_45 are full mailboxes (552, "overquota"), simple_44 and
# yahoo_01 temporary failures given up on (4.4.4, #4.4.1).
CORPUS = [
    ("aol_01.txt", "hard", "heuristic", "screenname@aol.com"),
    ("bounce_01.txt", "unrecognised", "none", None),
    ("bounce_02.txt", "hard", "heuristic", "userx@example.com"),
    ("bounce_03.txt", "hard", "heuristic", "userx@example.uk"),
    ("caiwireless_01.txt", "hard", "heuristic", "userx@example.com"),
    ("dsn_01.txt", "soft", "dsn", "userx@example.com"),
    ("dsn_02.txt", "soft", "dsn", "zzzzz@example.uk"),
    ("dsn_03.txt", "policy", "dsn", "userx@example.be"),
    ("dsn_04.txt", "hard", "dsn", "userx@example.ch"),
    ("dsn_05.txt", "soft", "dsn", "userx@example.cz"),
    ("dsn_06.txt", "soft", "dsn", "userx@example.com"),
    ("dsn_07.txt", "soft", "dsn", "userx@example.nz"),
    ("dsn_08.txt", "soft", "dsn", "userx@example.de"),
    ("dsn_09.txt", "policy", "dsn", "userx@example.com"),
    ("dsn_10.txt", "hard", "dsn", "anne.person@dom.ain"),
    ("dsn_11.txt", "hard", "dsn", "joem@example.com"),
    ("dsn_12.txt", "hard", "dsn", "userx@example.jp"),
    ("dsn_13.txt", "hard", "dsn", "userx@example.com"),
    ("dsn_14.txt", "hard", "dsn", "userx@example.com.dk"),
    ("dsn_15.txt", "hard", "dsn", "userx@example.com"),
    ("dsn_16.txt", "hard", "dsn", "userx@example.com"),
    ("dsn_17.txt", "soft", "dsn", "userx@example.fi"),
    ("dsn_18.txt", "hard", "dsn", "email@replaced.net"),
    ("dumbass_01.txt", "soft", "text", None),
    ("exim_01.txt", "hard", "heuristic", "userx@its.example.nl"),
    ("groupwise_01.txt", "hard", "heuristic", "userx@example.edu"),
    ("groupwise_02.txt", "hard", "heuristic", "userx@example.com"),
    ("groupwise_03.txt", "unrecognised", "none", None),
    ("hotpop_01.txt", "hard", "heuristic", "userx@example.com"),
    ("llnl_01.txt", "hard", "heuristic", "user1@example.gov"),
    ("microsoft_01.txt", "hard", "heuristic", "userx@example.com"),
    ("microsoft_02.txt", "hard", "heuristic", "userx@example.com"),
    ("microsoft_03.txt", "hard", "heuristic", "userx@example.com"),
    ("microsoft_04.txt", "hard", "heuristic", "userx@example.com"),
    ("netscape_01.txt", "hard", "heuristic", "aaaaa@corel.com"),
    ("newmailru_01.txt", "hard", "heuristic", "zzzzz@newmail.ru"),
    ("postfix_01.txt", "hard", "heuristic", "xxxxx@local.ie"),
    ("postfix_02.txt", "hard", "heuristic", "yyyyy@digicool.com"),
    ("postfix_03.txt", "hard", "heuristic", "ttttt@ggggg.com"),
    ("postfix_04.txt", "hard", "heuristic", "userx@mail1.example.com"),
    ("postfix_05.txt", "hard", "heuristic", "userx@example.net"),
    ("qmail_01.txt", "hard", "heuristic", "userx@example.de"),
    ("qmail_02.txt", "hard", "heuristic", "userx@example.com"),
    ("qmail_03.txt", "hard", "heuristic", "userx@example.jp"),
    ("qmail_04.txt", "hard", "heuristic", "userx@example.au"),
    ("qmail_05.txt", "hard", "heuristic", "userx@example.com"),
    ("qmail_06.txt", "hard", "heuristic", "ntl@xxx.com"),
    ("qmail_07.txt", "hard", "heuristic", "user@example.net"),
    ("qmail_08.txt", "auto_reply", "headers", "contact@example.com"),
    ("sendmail_01.txt", "hard", "heuristic", "zzzzz@nfg.nl"),
    ("simple_01.txt", "soft", "heuristic", "bbbsss@example.com"),
    ("simple_02.txt", "hard", "heuristic", "userx@example.net"),
    ("simple_03.txt", "soft", "heuristic", "userx@example.za"),
    ("simple_04.txt", "hard", "heuristic", "userx@example.com"),
    ("simple_05.txt", "hard", "heuristic", "userx@example.net"),
    ("simple_06.txt", "hard", "heuristic", "userx@example.com"),
    ("simple_07.txt", "hard", "heuristic", "userx@example.net"),
    ("simple_08.txt", "hard", "heuristic", "userx@example.de"),
    ("simple_09.txt", "hard", "heuristic", "userx@example.de"),
    ("simple_10.txt", "hard", "heuristic", "userx@example.com"),
    ("simple_11.txt", "hard", "heuristic", "userx@example.com"),
    ("simple_12.txt", "hard", "heuristic", "userx@example.ac.jp"),
    ("simple_13.txt", "hard", "heuristic", "userx@example.fr"),
    ("simple_14.txt", "soft", "heuristic", "userx@example.com"),
    ("simple_15.txt", "hard", "heuristic", "userx@example.be"),
    ("simple_16.txt", "hard", "heuristic", "userx@example.com"),
    ("simple_17.txt", "hard", "heuristic", "userx@example.com"),
    ("simple_18.txt", "hard", "heuristic", "userx@example.com"),
    ("simple_19.txt", "hard", "heuristic", "userx@example.com.ar"),
    ("simple_20.txt", "hard", "heuristic", "userx@example.com"),
    ("simple_21.txt", "soft", "heuristic", "userx@example.com"),
    ("simple_22.txt", "soft", "heuristic", "user@example.org"),
    ("simple_23.txt", "hard", "heuristic", "userx@example.it"),
    ("simple_24.txt", "hard", "heuristic", "userx@example.com"),
    ("simple_25.txt", "hard", "heuristic", "userx@example.com"),
    ("simple_26.txt", "hard", "heuristic", "userx@example.it"),
    ("simple_27.txt", "hard", "heuristic", "userx@example.net.py"),
    ("simple_28.txt", "soft", "heuristic", "userx@example.com"),
    ("simple_29.txt", "hard", "heuristic", "userx@example.com"),
    ("simple_30.txt", "hard", "heuristic", "userx@example.com"),
    ("simple_31.txt", "hard", "heuristic", "userx@example.fr"),
    ("simple_32.txt", "hard", "heuristic", "userx@example.com"),
    ("simple_33.txt", "hard", "heuristic", "userx@example.com"),
    ("simple_34.txt", "hard", "heuristic", "roland@example.com"),
    ("simple_35.txt", "soft", "heuristic", "calvin@example.com"),
    ("simple_36.txt", "hard", "heuristic", "userx@example.com"),
    ("simple_37.txt", "hard", "heuristic", "user@example.edu"),
    ("simple_38.txt", "hard", "heuristic", "userx@example.com"),
    ("simple_39.txt", "hard", "heuristic", "userx@example.ru"),
    ("simple_40.txt", "soft", "heuristic", "user@example.com"),
    ("simple_41.txt", "hard", "heuristic", "userx@example.com"),
    ("simple_42.txt", "policy", "dsn", "david...@gmail.com"),
    ("simple_43.txt", "hard", "text", None),
    ("simple_44.txt", "soft", "heuristic", "user@example.com"),
    ("simple_45.txt", "soft", "heuristic", "subscriber@earthlink.net"),
    ("sina_01.txt", "hard", "heuristic", "userx@sina.com"),
    ("smtp32_01.txt", "hard", "heuristic", "userx@example.ph"),
    ("smtp32_02.txt", "hard", "heuristic", "userx@example.com"),
    ("smtp32_03.txt", "hard", "heuristic", "userx@example.com"),
    ("smtp32_04.txt", "hard", "heuristic", "after_another@example.net"),
    ("smtp32_05.txt", "hard", "heuristic", "userx@example.com"),
    ("smtp32_06.txt", "hard", "heuristic", "absolute_garbage_addr@example.net"),
    ("smtp32_07.txt", "hard", "heuristic", "userx@example.com"),
    ("yahoo_01.txt", "soft", "heuristic", "userx@example.com"),
    ("yahoo_02.txt", "hard", "heuristic", "userx@example.es"),
    ("yahoo_03.txt", "hard", "heuristic", "userx@example.com"),
    ("yahoo_04.txt", "hard", "heuristic", "userx@example.es"),
    ("yahoo_05.txt", "hard", "heuristic", "userx@example.com"),
    ("yahoo_06.txt", "hard", "heuristic", "usera@example.com"),
    ("yahoo_07.txt", "hard", "heuristic", "userw@example.com"),
    ("yahoo_08.txt", "hard", "heuristic", "usera@example.com"),
    ("yahoo_09.txt", "hard", "heuristic", "userx@example.com"),
    ("yahoo_10.txt", "hard", "heuristic", "userx@example.com"),
    ("yahoo_11.txt", "hard", "heuristic", "bad_user@aol.com"),
    ("yahoo_12.txt", "hard", "heuristic", "user@yahoo.com"),
    ("yahoo_13.txt", "hard", "heuristic", "bogus-address@example.net"),
    ("yale_01.txt", "hard", "heuristic", "userx@cs.yale.edu"),
]


@pytest.mark.parametrize(("name", "kind", "evidence", "recipient"), CORPUS)
def test_real_bounces_from_many_servers(
    name: str, kind: str, evidence: str, recipient: str | None
) -> None:
    found = classify(parse((DATA / "flufl" / name).read_bytes()))
    assert (found.kind.value, found.evidence.value, found.recipient) == (kind, evidence, recipient)


def test_the_whole_corpus_is_covered() -> None:
    assert sorted(p.name for p in (DATA / "flufl").glob("*.txt")) == sorted(c[0] for c in CORPUS)


@pytest.mark.parametrize(
    ("name", "kind", "evidence", "status"),
    [
        ("postfix-5.1.1.eml", BounceKind.HARD, Evidence.DSN, "5.1.1"),
        ("postfix-delayed-4.2.2.eml", BounceKind.SOFT, Evidence.DSN, "4.2.2"),
        ("postfix-gmail-5.7.26.eml", BounceKind.POLICY, Evidence.DSN, "5.7.26"),
        ("exim-5.0.0.eml", BounceKind.HARD, Evidence.DSN, "5.1.1"),
        ("exim-text-5.7.1.eml", BounceKind.POLICY, Evidence.HEURISTIC, "5.7.1"),
        ("exim-text-5.2.2.eml", BounceKind.SOFT, Evidence.HEURISTIC, "5.2.2"),
        ("exim-delay-24h.eml", BounceKind.SOFT, Evidence.HEURISTIC, None),
        ("isp-nb-5.1.1-qp.eml", BounceKind.HARD, Evidence.DSN, "5.1.1"),
        # The alias was reached (one of its mailboxes got it): not the address's end.
        ("postfix-alias-mixed.eml", BounceKind.SOFT, Evidence.DSN, "5.1.1"),
        ("isp-nb-text-ukjent-mottaker.eml", BounceKind.HARD, Evidence.TEXT, None),
        ("isp-nn-text-full.eml", BounceKind.SOFT, Evidence.TEXT, None),
        ("office365-5.1.10.eml", BounceKind.HARD, Evidence.DSN, "5.1.10"),
        ("gmail-5.1.1.eml", BounceKind.HARD, Evidence.DSN, "5.1.1"),
        ("arf-abuse.eml", BounceKind.COMPLAINT, Evidence.ARF, None),
        ("outlook-automatisk-svar.eml", BounceKind.AUTO_REPLY, Evidence.HEADERS, None),
        ("vacation-rfc3834.eml", BounceKind.AUTO_REPLY, Evidence.HEADERS, None),
    ],
)
def test_todays_servers(
    name: str, kind: BounceKind, evidence: Evidence, status: str | None
) -> None:
    found = classify(parse((DATA / "constructed" / name).read_bytes()))
    assert (found.kind, found.evidence, found.status) == (kind, evidence, status)
    # Words alone name no address: the envelope (VERP) or the quoted Message-ID finds it.
    address = None if evidence is Evidence.TEXT else "firmapost@example.no"
    assert found.recipient == address


def test_the_diagnostic_of_a_hard_bounce_is_the_remote_servers_words() -> None:
    found = classify(parse((DATA / "constructed" / "office365-5.1.10.eml").read_bytes()))
    assert found.diagnostic == (
        "smtp;550 5.1.10 RESOLVER.ADR.RecipientNotFound; Recipient not found by SMTP address lookup"
    )


def test_a_complaint_carries_its_feedback_type() -> None:
    found = classify(parse((DATA / "constructed" / "arf-abuse.eml").read_bytes()))
    assert (found.feedback_type, found.diagnostic) == ("abuse", "complaint: abuse")


def test_feedback_other_than_abuse_is_not_a_complaint() -> None:
    raw = (DATA / "constructed" / "arf-abuse.eml").read_bytes()
    found = classify(parse(raw.replace(b"Feedback-Type: abuse", b"Feedback-Type: not-spam")))
    assert (found.kind, found.feedback_type) == (BounceKind.UNRECOGNISED, "not-spam")


@pytest.mark.parametrize(
    ("status", "diagnostic", "action", "kind"),
    [
        ("5.1.1", "", "failed", BounceKind.HARD),
        ("5.1.10", "", "failed", BounceKind.HARD),
        ("5.1.7", "", "failed", BounceKind.POLICY),  # the sender's address, not the recipient's
        ("5.1.8", "smtp;550 5.1.8 Access denied, bad outbound sender", "failed", BounceKind.POLICY),
        ("4.4.7", "", "failed", BounceKind.SOFT),
        ("5.1.1", "", "delayed", BounceKind.SOFT),
        ("5.2.2", "", "failed", BounceKind.SOFT),
        ("5.2.1", "", "failed", BounceKind.HARD),
        ("5.2.3", "", "failed", BounceKind.POLICY),
        ("5.3.4", "", "failed", BounceKind.POLICY),
        ("5.4.1", "", "failed", BounceKind.HARD),
        ("5.4.4", "", "failed", BounceKind.HARD),
        ("5.4.6", "", "failed", BounceKind.POLICY),
        ("5.4.7", "", "failed", BounceKind.SOFT),
        ("5.5.0", "", "failed", BounceKind.POLICY),
        ("5.6.0", "", "failed", BounceKind.POLICY),
        ("5.7.1", "", "failed", BounceKind.POLICY),
        ("5.0.0", "smtp; 550-5.7.1 blocked", "failed", BounceKind.POLICY),
        ("5.0.0", "smtp; 550 mailbox full", "failed", BounceKind.SOFT),
        ("5.0.0", "smtp; 550 rejected", "failed", BounceKind.HARD),
        ("550", "Exceeded maximum inbound message size", "failed", BounceKind.POLICY),
        ("", "SMTP; 550 5.1.1 User unknown", "failed", BounceKind.HARD),
        ("2.0.0", "", "delivered", None),
        ("5.1.1", "", "relayed", None),
    ],
)
def test_status_kind(status: str, diagnostic: str, action: str, kind: BounceKind | None) -> None:
    assert status_kind(status, diagnostic, action) is kind


def test_refined_status_takes_the_quoted_code_of_an_unspecific_one() -> None:
    assert refined_status("5.0.0", "smtp; 550-5.7.1 [192.0.2.1] blocked") == "5.7.1"
    assert refined_status("5.1.1", "smtp; 550 5.7.1 blocked") == "5.1.1"
    assert refined_status("", "SMTP; 550 5.1.1 User unknown") == "5.1.1"


def test_message_ids_of_the_original_and_of_a_reply() -> None:
    raw = (DATA / "constructed" / "office365-5.1.10.eml").read_bytes()
    assert message_ids(parse(raw), raw) == ["<1.0123456789abcdef@nsr-org.no>"]
    raw = (DATA / "flufl" / "dsn_01.txt").read_bytes()
    assert message_ids(parse(raw), raw) == ["<F1218V8zDv60gxapzha000001ae@hotmail.com>"]


@pytest.mark.parametrize(
    "said",
    [
        b"    Message size 452 KB, refused by the remote server.",
        b"    Kundeservice: 415 55 555",
    ],
)
def test_a_number_that_is_no_smtp_reply_does_not_soften_a_permanent_failure(said: bytes) -> None:
    # Exim's text bounce with its reply taken out: flufl.bounce's "permanent" stands.
    raw = (DATA / "constructed" / "exim-text-5.7.1.eml").read_bytes()
    raw = raw.replace(b"    550 5.7.1 Message rejected as spam by Content Filtering.", said)
    found = classify(parse(raw))
    assert (found.kind, found.evidence, found.status) == (BounceKind.HARD, Evidence.HEURISTIC, None)


def test_a_bounce_marked_auto_replied_is_still_a_bounce() -> None:
    msg = parse((DATA / "flufl" / "simple_45.txt").read_bytes())
    assert is_auto_reply(msg)
    assert classify(msg).kind is BounceKind.SOFT  # "550 … User account is overquota"


def test_a_personal_reply_is_unrecognised() -> None:
    found = classify(parse((DATA / "flufl" / "groupwise_03.txt").read_bytes()))
    assert (found.kind, found.evidence) == (BounceKind.UNRECOGNISED, Evidence.NONE)


# -- what no detector can read --------------------------------------------------------------

# A DSN whose MIME is broken: no boundary declared, a report part in base64 that is not.
BROKEN_DSN = (
    b"From: MAILER-DAEMON@relay.example.no\r\n"
    b"Subject: Undelivered Mail Returned to Sender\r\n"
    b"Content-Type: multipart/report; report-type=delivery-status\r\n\r\n"
    b"--x\r\nContent-Type: message/delivery-status\r\nContent-Transfer-Encoding: base64\r\n"
    b"\r\n%%%not base64%%%\r\n--x"
)


@pytest.mark.parametrize(
    "raw",
    [
        b"garbage\n",
        b"",
        b"\n\nonly a body, no headers\n",
        b"Subject: hello\r\n\r\nno From\r\n",
        bytes(range(256)) * 4,
        BROKEN_DSN,
        b"Message-ID: <\xff\xfe@x>\r\nSubject: \xe6\xf8\r\n\r\n8-bit headers\r\n",
    ],
    ids=["garbage", "empty", "no-headers", "no-from", "binary", "broken-dsn", "8-bit"],
)
def test_a_message_the_detectors_choke_on_is_unrecognised(raw: bytes) -> None:
    # flufl.bounce's Yale detector raises IndexError on a message without a From.
    found = classify(parse(raw))
    assert (found.kind, found.evidence) == (BounceKind.UNRECOGNISED, Evidence.NONE)


_CORPUS = [p.read_bytes() for p in sorted(DATA.rglob("*")) if p.is_file()]


@st.composite
def _damaged(draw: st.DrawFn) -> bytes:
    """A real bounce with a few spans replaced by arbitrary bytes."""
    raw = draw(st.sampled_from(_CORPUS))
    for _ in range(draw(st.integers(0, 4))):
        start = draw(st.integers(0, len(raw)))
        end = draw(st.integers(start, min(len(raw), start + 200)))
        raw = raw[:start] + draw(st.binary(max_size=30)) + raw[end:]
    return raw


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.binary(max_size=400), _damaged()))
def test_any_bytes_are_read_without_an_exception(raw: bytes) -> None:
    msg = parse(raw)
    assert isinstance(classify(msg), Classification)
    assert isinstance(message_ids(msg, raw), list)


# -- the List-Unsubscribe mailto ----------------------------------------------------------------

TOKEN = "Xy3_k-9QpL2mN8vR4tW6zA0b"  # noqa: S105  # a made-up unsubscribe token


@pytest.mark.parametrize(
    "subject",
    [
        f"unsubscribe-{TOKEN}",
        f"Re: unsubscribe-{TOKEN}",
        f"SV: SV:unsubscribe-{TOKEN}",
        f"  aw :  unsubscribe-{TOKEN}  ",
        f"RE: Unsubscribe-{TOKEN}",
        "=?utf-8?q?SV=3A_unsubscribe-" + TOKEN.replace("_", "=5F") + "?=",
    ],
)
def test_the_unsubscribe_subject_a_mail_program_sends(subject: str) -> None:
    msg = parse(f"From: Ann <ann@firma.no>\r\nSubject: {subject}\r\n\r\n".encode())
    assert unsubscribe_token(msg) == TOKEN
    assert classify(msg) == Classification(
        BounceKind.UNSUBSCRIBE, Evidence.HEADERS, recipient="ann@firma.no", token=TOKEN
    )


@pytest.mark.parametrize(
    "subject",
    [
        "unsubscribe-",
        f"unsubscribe-{TOKEN} please",
        f"Fwd: unsubscribe-{TOKEN}",
        f"unsubscribe {TOKEN}",
        f"unsubscribe-{'a' * 65}",
    ],
)
def test_other_subjects_are_no_unsubscribe(subject: str) -> None:
    msg = parse(f"From: ann@firma.no\r\nSubject: {subject}\r\n\r\n".encode())
    assert unsubscribe_token(msg) is None
    assert classify(msg).kind is BounceKind.UNRECOGNISED


@pytest.mark.parametrize(
    "subject",
    ["Fraværsmelding: Sikkerhetsråd".encode(), "Fraværsmelding: Sikkerhetsråd".encode("latin-1")],
    ids=["utf-8", "latin-1"],
)
def test_an_auto_reply_subject_in_raw_8_bit_is_read(subject: bytes) -> None:
    # Sent without encoded words (RFC 6532, or an old mail program's Latin-1): the parser kept
    # the bytes as unknown-8bit, and the subject read "Frav�rsmelding", no auto-reply.
    raw = b"From: ola@firma.no\r\nSubject: " + subject + b"\r\n\r\nJeg er p\xc3\xa5 ferie.\r\n"
    found = classify(parse(raw))
    assert (found.kind, found.diagnostic) == (
        BounceKind.AUTO_REPLY,
        "Fraværsmelding: Sikkerhetsråd",
    )


# -- automatic replies and challenges that look like bounces -------------------------------------


@pytest.mark.parametrize(
    ("name", "kind", "evidence", "challenge"),
    [
        ("fravaerende-report-nb.eml", BounceKind.AUTO_REPLY, Evidence.HEADERS, False),
        ("out-of-office-en.eml", BounceKind.AUTO_REPLY, Evidence.HEADERS, False),
        ("boxbe-challenge.eml", BounceKind.AUTO_REPLY, Evidence.TEXT, True),
        ("challenge-as-dsn-nb.eml", BounceKind.AUTO_REPLY, Evidence.TEXT, True),
        ("dsn-auto-generated-5.1.1.eml", BounceKind.HARD, Evidence.DSN, False),
    ],
)
def test_auto_replies_and_challenges_dressed_as_bounces(
    name: str, kind: BounceKind, evidence: Evidence, challenge: bool
) -> None:
    found = classify(parse((DATA / "autoreply" / name).read_bytes()))
    assert (found.kind, found.evidence, found.challenge) == (kind, evidence, challenge)


def test_a_real_dsn_marked_auto_generated_is_a_hard_bounce_with_its_status() -> None:
    msg = parse((DATA / "autoreply" / "dsn-auto-generated-5.1.1.eml").read_bytes())
    assert not is_auto_reply(msg)
    found = classify(msg)
    assert (found.kind, found.status, found.recipient) == (
        BounceKind.HARD,
        "5.1.1",
        "firmapost@example.no",
    )


def test_a_real_soft_bounce_marked_auto_generated_stays_soft() -> None:
    raw = (DATA / "constructed" / "postfix-delayed-4.2.2.eml").read_bytes()
    raw = raw.replace(b"Auto-Submitted: auto-replied", b"Auto-Submitted: auto-generated")
    found = classify(parse(raw))
    assert (found.kind, found.evidence, found.status) == (BounceKind.SOFT, Evidence.DSN, "4.2.2")


def test_auto_generated_alone_is_no_auto_reply() -> None:
    msg = parse(
        b"From: varsling@firma.no\r\nAuto-Submitted: auto-generated\r\nSubject: Hei\r\n\r\n"
    )
    assert not is_auto_reply(msg)
    assert classify(msg).kind is BounceKind.UNRECOGNISED


@pytest.mark.parametrize(
    "headers",
    [
        b"Auto-Submitted: auto-replied (vacation)",
        b"X-Autoreply: yes",
        b"X-Autorespond: Out of Office",
        b"X-Autogenerated: Reply",
        b"X-Apple-Action: vacation",
        b"Precedence: auto_reply",
        b"Subject: [Sak #2024-1187] Vi har mottatt henvendelsen din",
        b"Subject: Re: [Ticket #88123] We have received your request",
        b"Subject: =?utf-8?q?Frav=C3=A6rende=3A_Sikkerhetsr=C3=A5d?=",
    ],
)
def test_the_marks_of_an_auto_reply(headers: bytes) -> None:
    raw = b"From: post@firma.no\r\n" + headers + b"\r\n\r\nTakk for e-posten.\r\n"
    found = classify(parse(raw))
    assert (found.kind, found.challenge) == (BounceKind.AUTO_REPLY, False)


def test_a_challenge_needs_a_link_or_a_reply_to_send() -> None:
    asks = b"From: filter@firma.no\r\nSubject: Hei\r\n\r\nBekreft at du er et menneske.\r\n"
    assert not is_challenge(parse(asks))
    linked = asks.replace(b"menneske.", b"menneske: https://filter.firma.no/b?id=1")
    assert is_challenge(parse(linked))
    replied = asks.replace(b"menneske.", b"menneske. Svar p\xc3\xa5 denne e-posten.")
    assert is_challenge(parse(replied))


def test_our_own_message_quoted_in_a_bounce_is_no_challenge() -> None:
    # varsel's text asks the reader to type an address and a code, with links beside it.
    raw = (
        (DATA / "constructed" / "postfix-5.1.1.eml")
        .read_bytes()
        .replace(
            b"For further assistance",
            "Siden bekrefter at e-posten kommer fra oss. Ikke klikk på lenker: skriv "
            "https://nsr-org.no/kontroll selv. Svar gjerne på denne e-posten.\n"
            "For further assistance".encode(),
        )
    )
    assert not is_challenge(parse(raw))
    assert classify(parse(raw)).kind is BounceKind.HARD


def test_a_real_sender_verify_refusal_is_no_challenge() -> None:
    raw = (
        b"From: Mail Delivery System <Mailer-Daemon@mx.firma.no>\r\n"
        b"Subject: Mail delivery failed: returning message to sender\r\n\r\n"
        b"A message that you sent could not be delivered to one or more of its recipients.\r\n"
        b"  post@firma.no\r\n    550 Sender verify failed, see https://mx.firma.no/help\r\n"
    )
    assert not is_challenge(parse(raw))
    assert classify(parse(raw)).kind is not BounceKind.AUTO_REPLY


def test_quoted_codes_are_read_from_every_text_part_decoded_and_checked() -> None:
    # A returned original in quoted-printable (its soft line break inside the code), a code
    # in the report's own text, one with its check symbol wrong, and one twice.
    raw = (
        b"From: MAILER-DAEMON@relay.example\r\nContent-Type: multipart/mixed; boundary=b\r\n"
        b"\r\n--b\r\nContent-Type: text/plain\r\n\r\nYour message 7BCC-RCS5-QJ8P failed;"
        b" 7BCC-RCS5-QJ8Q is not ours.\r\n"
        b"--b\r\nContent-Type: message/rfc822\r\n\r\nSubject: x\r\nContent-Type: text/plain"
        b"\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\nKontrollkode: YXR0-0P=\r\n"
        b"T9-WQW9 og 7BCC-RCS5-QJ8P\r\n--b--\r\n"
    )
    assert quoted_codes(parse(raw)) == ["7BCCRCS5QJ8P", "YXR00PT9WQW9"]


def test_quoted_codes_are_only_codes_as_a_message_prints_them() -> None:
    raw = b"Subject: x\r\n\r\nyxr0-0pt9-wqw9 YXR00PT9WQW9 X-YXR0-0PT9-WQW9 YXR0-0PT9-WQW9-X\r\n"
    assert quoted_codes(parse(raw)) == []
