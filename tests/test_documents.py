from __future__ import annotations

import email
import email.policy
from pathlib import Path

import dkim
import pytest

from helpers import campaign_toml, dns_for
from varsel import documents
from varsel.campaign import CampaignSpec, create_campaign, get_campaign
from varsel.config import Settings
from varsel.db import Database
from varsel.registry import import_dump
from varsel.sender import SendError

CAMPAIGN = campaign_toml(public=False)
SECRET = b"k" * 32
HOUR = 3600


@pytest.fixture
def campaign(db: Database, brreg: Path, tmp_path: Path, settings: Settings) -> int:
    import_dump(db, brreg / "enheter-sample.json")
    (tmp_path / "c.toml").write_text(CAMPAIGN, "utf-8")
    return create_campaign(db, settings, tmp_path / "c.toml").campaign.id


def issue(db: Database, campaign: int, address: str, now: float) -> documents.Issued:
    issued = documents.issue(db, SECRET, campaign, address, valid_seconds=HOUR, now=now)
    assert isinstance(issued, documents.Issued)
    return issued


def test_a_link_checks_out_until_it_expires(db: Database, campaign: int) -> None:
    issued = issue(db, campaign, "a@example.no", now=1_000_000.0)
    assert issued.expires_at == "1970-01-12T14:46:40.000Z"
    valid = documents.Valid(issued.request_id, campaign)
    assert documents.check(db, SECRET, issued.token, now=1_000_000.0 + HOUR - 1) == valid
    assert documents.check(db, SECRET, issued.token, now=1_000_000.0 + HOUR) == (
        documents.LinkProblem.EXPIRED
    )


def test_a_changed_link_or_another_secret_is_invalid(db: Database, campaign: int) -> None:
    issued = issue(db, campaign, "a@example.no", now=1_000_000.0)
    request_id, expires, signature = issued.token.split(".")
    later = f"{request_id}.{int(expires) + HOUR}.{signature}"
    # "²" is a digit to str.isdigit and not to int(): an invalid link, not an error.
    for token in (later, issued.token[:-1], "1.2.3", "nonsense", f"²{request_id}.{expires}.x"):
        assert documents.check(db, SECRET, token, now=1_000_000.0) == documents.LinkProblem.INVALID
    assert documents.check(db, b"x" * 32, issued.token, now=1_000_000.0) == (
        documents.LinkProblem.INVALID
    )


def test_an_address_holds_one_pending_link_until_it_is_used(db: Database, campaign: int) -> None:
    first = issue(db, campaign, "a@example.no", now=1_000_000.0)
    assert documents.issue(
        db, SECRET, campaign, "a@example.no", valid_seconds=HOUR, now=1_000_100.0
    ) == documents.Pending(first.expires_at)
    issue(db, campaign, "b@example.no", now=1_000_100.0)
    documents.record_download(db, documents.Valid(first.request_id, campaign))
    issue(db, campaign, "a@example.no", now=1_000_200.0)


def test_a_withdrawn_link_lets_the_address_ask_again(db: Database, campaign: int) -> None:
    first = issue(db, campaign, "a@example.no", now=1_000_000.0)
    documents.withdraw(db, first.request_id)
    assert documents.check(db, SECRET, first.token, now=1_000_000.0) == (
        documents.LinkProblem.INVALID
    )
    issue(db, campaign, "a@example.no", now=1_000_000.0)


def test_purge_forgets_the_addresses_of_expired_links_and_keeps_the_events(
    db: Database, campaign: int
) -> None:
    old = issue(db, campaign, "old@example.no", now=1_000_000.0)
    issue(db, campaign, "new@example.no", now=1_000_000.0 + HOUR)
    assert documents.purge(db, now=1_000_000.0 + HOUR) == 1
    assert db.query("SELECT address FROM document_requests") == [("new@example.no",)]
    assert db.query("SELECT detail FROM events WHERE kind = 'document_requested' ORDER BY id") == [
        (f'{{"request": {old.request_id}}}',),
        (f'{{"request": {old.request_id + 1}}}',),
    ]


def test_the_document_email_is_dkim_signed_by_the_campaigns_domain(
    db: Database, campaign: int, settings: Settings
) -> None:
    spec = get_campaign(db, campaign).spec
    data = documents.message(
        from_address=spec.from_address,
        from_name=spec.from_name,
        organisation=spec.organisation,
        to="leser@example.no",
        title="Sikkerhetsråd",
        url="https://www.politiet.no/varsel/dokument/hent/1.2.abc",
        expires_at="2026-11-29T12:00:00.000Z",
        language="nn",
        signed_by=documents.signer(settings, spec),
    )
    assert dkim.verify(data, dnsfunc=dns_for(settings))
    msg = email.message_from_bytes(data, policy=email.policy.default)
    assert msg["Subject"] == "Lenkje til «Sikkerhetsråd»"
    assert msg["From"] == "NSR <sikkerhet@nsr-org.no>"
    assert msg["Auto-Submitted"] == "auto-generated"  # RFC 3834: made by a program, no reply
    body = msg.get_body(("plain",))
    assert body is not None
    assert "https://www.politiet.no/varsel/dokument/hent/1.2.abc" in body.get_content()


def test_without_the_key_there_is_no_signer(tmp_path: Path, db: Database, campaign: int) -> None:
    spec: CampaignSpec = get_campaign(db, campaign).spec
    elsewhere = Settings.load(environ={}, dkim_key_dir=str(tmp_path / "empty"))
    path = tmp_path / "empty" / "varsel._domainkey.nsr-org.no.pem"
    with pytest.raises(SendError) as raised:
        documents.signer(elsewhere, spec)
    assert raised.value.message == (
        f"DKIM-nøkkelen {path} finnes ikke; lag den med «varsel keys generate --domain "
        "nsr-org.no --selector varsel» og publiser DNS-posten"
    )


@pytest.mark.parametrize(
    ("expires_at", "language", "shown"),
    [
        ("2026-11-30T09:01:00.000Z", "nb", "30. november 2026 kl. 10.01"),
        ("2026-11-30T09:01:00.000Z", "nn", "30. november 2026 kl. 10.01"),
        ("2026-11-30T09:01:00.000Z", "en", "30 November 2026 at 10:01"),
        ("2026-07-01T22:30:00.000Z", "nb", "2. juli 2026 kl. 00.30"),  # summer time, next day
        ("2026-01-15T08:05:00.000Z", "xx", "15. januar 2026 kl. 09.05"),  # unknown: Bokmål
    ],
)
def test_the_deadline_is_told_in_oslo_time_as_the_language_writes_it(
    expires_at: str, language: str, shown: str
) -> None:
    assert documents.deadline(expires_at, language) == shown


@pytest.mark.parametrize(
    ("language", "line"),
    [
        ("nb", "Last det ned her innen 30. november 2026 kl. 10.01:"),
        ("nn", "Last det ned her innan 30. november 2026 kl. 10.01:"),
        ("en", "Download it here before 30 November 2026 at 10:01 (Norwegian time):"),
    ],
)
def test_the_document_email_says_when_the_link_runs_out_in_its_language(
    language: str, line: str
) -> None:
    data = documents.message(
        from_address="sikkerhet@nsr-org.no",
        from_name="NSR",
        organisation="NSR",
        to="leser@example.no",
        title="Sikkerhetsråd",
        url="https://www.politiet.no/varsel/dokument/hent/1.2.abc",
        expires_at="2026-11-30T09:01:00.000Z",
        language=language,
    )
    body = email.message_from_bytes(data, policy=email.policy.default).get_body(("plain",))
    assert body is not None
    assert line in body.get_content().splitlines()


@pytest.mark.parametrize(
    ("language", "line"),
    [
        (
            "nb",
            "Ba du ikke om dette? Da kan du se bort fra e-posten; lenken slutter å virke av seg "
            "selv.",
        ),
        (
            "nn",
            "Bad du ikkje om dette? Då kan du sjå bort frå e-posten; lenkja sluttar å verke av "
            "seg sjølv.",
        ),
        (
            "en",
            "If you did not ask for this, you can ignore this e-mail; the link stops working by "
            "itself.",
        ),
    ],
)
def test_the_document_email_promises_nothing_it_cannot_keep(language: str, line: str) -> None:
    # Anyone may ask for another link to the address: the e-mail does not say none will come.
    data = documents.message(
        from_address="sikkerhet@nsr-org.no",
        from_name="NSR",
        organisation="NSR",
        to="leser@example.no",
        title="Sikkerhetsråd",
        url="https://www.politiet.no/varsel/dokument/hent/1.2.abc",
        expires_at="2026-11-30T09:01:00.000Z",
        language=language,
    )
    body = email.message_from_bytes(data, policy=email.policy.default).get_body(("plain",))
    assert body is not None
    text = body.get_content()
    assert text.splitlines()[-1] == line
    assert "flere blir sendt" not in text
    assert "fleire blir sende" not in text


def test_a_title_that_looks_like_an_encoded_word_stays_the_text_it_is() -> None:
    # The standard library decoded it into the subject, CR LF and all (CVE-2024-6923).
    title = "=?utf-8?q?x=0D=0ABcc:_evil@x.test?= Sikkerhetsråd"
    data = documents.message(
        from_address="sikkerhet@nsr-org.no",
        from_name="NSR",
        organisation="NSR",
        to="leser@example.no",
        title=title,
        url="https://www.politiet.no/varsel/dokument/hent/1.2.abc",
        expires_at="2026-11-30T09:01:00.000Z",
        language="nb",
    )
    msg = email.message_from_bytes(data, policy=email.policy.default)
    assert msg["Subject"] == f"Lenke til «{title}»"
    assert msg.keys() == [
        "From",
        "To",
        "Subject",
        "Date",
        "Message-ID",
        "Auto-Submitted",
        "MIME-Version",
        "Content-Type",
        "Content-Transfer-Encoding",
    ]
    assert msg["Message-ID"].endswith("@nsr-org.no>")
    assert all(len(line) <= 78 for line in data.split(b"\r\n"))


@pytest.mark.parametrize(
    ("hours", "told"),
    [
        (24.0, (documents.Unit.DAYS, 1)),
        (168.0, (documents.Unit.DAYS, 7)),
        (36.0, (documents.Unit.HOURS, 36)),
        (1.0, (documents.Unit.HOURS, 1)),
        (1.5, (documents.Unit.MINUTES, 90)),
    ],
)
def test_a_links_lifetime_is_told_in_the_largest_whole_unit(
    hours: float, told: tuple[documents.Unit, int]
) -> None:
    assert documents.lifetime(hours) == told


@pytest.mark.parametrize(
    ("typed", "box"),
    [
        ("victim+1@Example.NO", "victim@example.no"),
        ("victim@example.no", "victim@example.no"),
        ("v.ictim@example.no", "v.ictim@example.no"),  # dots matter outside gmail
        ("V.ic.tim+nyhet@gmail.com", "victim@gmail.com"),
        ("vic.tim@googlemail.com", "victim@gmail.com"),  # one mailbox under either name
        ("+tag@example.no", "+tag@example.no"),
    ],
)
def test_the_mailbox_of_an_address_has_no_tag_and_no_gmail_dots(typed: str, box: str) -> None:
    assert documents.mailbox(typed) == box


def test_sub_addresses_share_one_pending_link(db: Database, campaign: int) -> None:
    first = issue(db, campaign, "victim@example.no", now=1_000_000.0)
    for other in ("victim+1@example.no", "victim+a_b%@example.no"):
        assert documents.issue(
            db, SECRET, campaign, other, valid_seconds=HOUR, now=1_000_100.0
        ) == documents.Pending(first.expires_at)
    assert documents.pending(db, "victimfoo@example.no", now=1_000_100.0) is None
    assert documents.pending(db, "victim@example.com", now=1_000_100.0) is None
    gmail = issue(db, campaign, "v.ictim+x@gmail.com", now=1_000_100.0)
    assert documents.pending(db, "victim@googlemail.com", now=1_000_200.0) == documents.Pending(
        gmail.expires_at
    )
    # The row keeps the address as typed: erasure and the report match it, and the e-mail
    # went to it.
    assert db.scalar("SELECT address FROM document_requests WHERE id = ?", (gmail.request_id,)) == (
        "v.ictim+x@gmail.com"
    )
