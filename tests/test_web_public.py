from __future__ import annotations

import contextlib
import dataclasses
import email
import email.policy
import functools
import html
import re
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import dkim
import pytest
from starlette.testclient import TestClient

from helpers import UNKNOWN, campaign_toml, dns_for
from varsel.campaign import create_campaign
from varsel.channel.smtp_relay import RelayConfig
from varsel.config import Settings
from varsel.db import Database
from varsel.registry import import_dump
from varsel.sender import SendOptions, send_campaign
from varsel.testing import SmtpSink
from varsel.web import create_app

CAMPAIGN = campaign_toml(document='file = "rad.pdf"\n')
FAST = SendOptions(connections=2, rate_per_second=1000, retry_base_seconds=0.05, build_processes=0)
PDF = b"%PDF-1.4 sikkerhetsrad\n"
CODE = re.compile(r"\b[0-9A-Z]{4}-[0-9A-Z]{4}-[0-9A-Z]{4}\b")


def text_of(data: bytes) -> str:
    msg = email.message_from_bytes(data, policy=email.policy.default)
    return msg.get_body(("plain",)).get_content()  # type: ignore[union-attr,no-any-return]


@pytest.fixture
def settings(tmp_path: Path, db_url: str, sink: SmtpSink) -> Settings:
    return Settings.load(
        environ={},
        database_url=db_url,
        dkim_key_dir=str(tmp_path / "keys"),
        secret_key="test secret",  # noqa: S106 -- a key for this test only
        smtp_url=sink.url,
        allow_test_domains=True,
    )


@pytest.fixture
def sent(db: Database, brreg: Path, tmp_path: Path, settings: Settings, sink: SmtpSink) -> int:
    """A campaign sent to the sink; returns its id."""
    import_dump(db, brreg / "enheter-sample.json")
    (tmp_path / "rad.pdf").write_bytes(PDF)
    path = tmp_path / "c.toml"
    path.write_text(CAMPAIGN, "utf-8")
    campaign_id = create_campaign(db, settings, path).campaign.id
    send_campaign(db, settings, campaign_id, relay=RelayConfig.from_url(sink.url), options=FAST)
    return campaign_id


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    # https: the CSRF cookie is Secure and __Host- prefixed, so it only travels over HTTPS.
    with TestClient(create_app(settings), base_url="https://testserver") as c:
        yield c


def first_message(sink: SmtpSink) -> tuple[str, str, str]:
    """(recipient, code, unsubscribe URL) of the first message the sink received."""
    m = sink.messages[0]
    text = text_of(m.data)
    code = CODE.search(text)
    assert code is not None
    unsubscribe = re.search(r"https://www\.politiet\.no/varsel(/avmelding/\S+)", text)
    assert unsubscribe is not None
    return m.rcpt_tos[0], code.group(0), unsubscribe.group(1)


def csrf(client: TestClient, path: str) -> str:
    page = client.get(path)
    found = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert found is not None, page.text
    return found.group(1)


def units_of(db: Database, address: str) -> list[tuple[Any, ...]]:
    return db.query(
        "SELECT r.orgnr, r.name FROM deliveries d JOIN delivery_units du ON du.delivery_id = d.id "
        "JOIN recipients r ON r.campaign_id = d.campaign_id AND r.orgnr = du.orgnr "
        "WHERE d.address = ? ORDER BY r.orgnr",
        (address,),
    )


# -- verify ---------------------------------------------------------------------------


def test_a_real_code_typed_sloppily_shows_the_campaign_and_the_units(
    client: TestClient, sent: int, sink: SmtpSink, db: Database
) -> None:
    address, code, _ = first_message(sink)
    sloppy = " ".join(code.replace("-", "")).lower().replace("0", "o")
    page = client.get("/kontroll", params={"kode": sloppy})
    assert page.status_code == 200
    assert "E-posten er ekte" in page.text
    # The From line as the reader's mail program shows it: the sender's name and address.
    assert "<dt>Avsender</dt><dd>NSR &lt;sikkerhet@nsr-org.no&gt;</dd>" in page.text
    assert "Forebyggende sikkerhetsinformasjon fra Oslo politidistrikt og NSR" in page.text
    for orgnr, name in units_of(db, address):
        assert name in page.text
        assert " ".join(orgnr[i : i + 3] for i in range(0, 9, 3)) in page.text
    assert '<a href="https://www.politiet.no/rad.pdf">' in page.text
    kinds = db.query("SELECT kind, campaign_id FROM events WHERE kind LIKE 'verify%'")
    assert kinds == [("verify_ok", sent)]


NN_SUBJECT = "Førebyggjande tryggleiksinformasjon frå Oslo politidistrikt og NSR"


def test_a_letter_and_an_altinn_message_are_answered_as_what_they_are(
    client: TestClient, sent: int, db: Database
) -> None:
    from varsel import letters
    from varsel.codes import new_code
    from varsel.outbox import DeliveryState

    orgnr, name = db.query(
        "SELECT orgnr, name FROM recipients WHERE campaign_id = ? ORDER BY orgnr", (sent,)
    )[0]
    letter_code, altinn_code = new_code(), new_code()
    at = "2026-01-05T10:00:00.000Z"
    with db.transaction():
        letters.new_delivery(
            db, sent, orgnr, "nb", DeliveryState.POSTED, letter_code.replace("-", ""), at
        )
        letters.new_delivery(
            db,
            sent,
            orgnr,
            "nn",
            DeliveryState.DELIVERED,
            altinn_code.replace("-", ""),
            at,
            channel="altinn",
        )
    for _ in range(2):  # the first page of a shape is checked against Jinja; the next is not
        letter = client.get("/kontroll", params={"kode": letter_code.lower()})
        assert letter.status_code == 200
        assert '<h1 class="ok">Brevet er ekte</h1>' in letter.text
        assert f"Koden {letter_code} hører til et brev vi har sendt." in letter.text
        assert "<dt>Avsender</dt><dd>Oslo politidistrikt og NSR</dd>" in letter.text
        assert "<dd>5. januar 2026</dd>" in letter.text
        assert name in letter.text
        assert "Gi oss tilbakemelding om dette brevet" in letter.text
        for email_only in ("E-posten er ekte", "<dt>Emne</dt>", "sikkerhet@nsr-org.no"):
            assert email_only not in letter.text
        altinn = client.get("/kontroll", params={"kode": altinn_code})
        assert altinn.status_code == 200
        assert '<h1 class="ok">Meldingen i Altinn er ekte</h1>' in altinn.text
        assert f"Koden {altinn_code} hører til en melding vi har sendt i Altinn." in altinn.text
        assert "<dt>Avsender</dt><dd>Oslo politidistrikt og NSR</dd>" in altinn.text
        # The title as Altinn shows it: in the language the message was sent in.
        assert f'<dt>Tittel</dt><dd lang="nn">{NN_SUBJECT}</dd>' in altinn.text
        assert "Gi oss tilbakemelding om denne meldingen" in altinn.text
        assert "E-posten er ekte" not in altinn.text
        english = client.get("/kontroll", params={"kode": letter_code, "lang": "en"})
        assert "The letter is genuine" in english.text


def test_the_subject_is_shown_as_it_was_sent_on_the_page_and_in_the_register(
    client: TestClient, sent: int, sink: SmtpSink, db: Database
) -> None:
    _, code, _ = first_message(sink)
    # As a business with målform Nynorsk gets it (the sample's one such business has no e-mail).
    db.execute("UPDATE deliveries SET language = 'nn' WHERE code = ?", (code.replace("-", ""),))
    for lang in ("nb", "en"):
        page = client.get("/kontroll", params={"kode": code, "lang": lang})
        assert f'<dd lang="nn">{NN_SUBJECT}</dd>' in page.text
    nynorsk = client.get("/kontroll", params={"kode": code, "lang": "nn"})
    assert f"<dd>{NN_SUBJECT}</dd>" in nynorsk.text
    [entry] = client.get("/varsler.json").json()["campaigns"]
    nb_subject = "Forebyggende sikkerhetsinformasjon fra Oslo politidistrikt og NSR"
    assert entry["subject"] == nb_subject  # as before, for those who read it
    assert entry["subjects"] == {"nb": nb_subject, "nn": NN_SUBJECT}
    register = client.get("/varsler").text
    assert f"<li>{nb_subject} (Bokmål)</li>" in register
    assert f'<li lang="nn">{NN_SUBJECT} (Nynorsk)</li>' in register
    assert "Står ikke meldingen du har fått her, kommer den ikke fra oss." in register


@pytest.mark.parametrize("lang", ["nb", "nn", "en"])
def test_the_genuine_page_has_the_security_headers_and_no_cookie(
    client: TestClient, sent: int, sink: SmtpSink, lang: str
) -> None:
    # The page goes out with headers encoded once, past the middleware's own header work.
    from varsel.web.headers import SECURITY_HEADERS

    _, code, _ = first_message(sink)
    for _ in range(2):  # the first page of a shape is checked against Jinja; the next is not
        page = client.get("/kontroll", params={"kode": code, "lang": lang})
        assert page.status_code == 200
        assert f'<html lang="{lang}">' in page.text
        assert code in page.text
        for name, value in SECURITY_HEADERS.items():
            assert page.headers[name] == value
        assert page.headers["cache-control"] == "no-store"
        assert page.headers["content-type"] == "text/html; charset=utf-8"
        assert "set-cookie" not in page.headers
    assert client.post("/kontroll", params={"kode": code}).status_code == 405


def test_a_head_of_a_code_is_no_lookup_and_does_not_say_whether_the_code_is_genuine(
    client: TestClient, sent: int, sink: SmtpSink, db: Database
) -> None:
    # Link checkers and mail scanners send HEAD for the address in a message: no visitor.
    _, code, _ = first_message(sink)
    heads = [client.head("/kontroll", params={"kode": typed}) for typed in (code, UNKNOWN, "x")]
    assert [h.status_code for h in heads] == [200, 200, 200]
    # A genuine code and an unknown one of the same length: the same headers, byte for byte.
    assert heads[0].headers.multi_items() == heads[1].headers.multi_items()
    for head in heads:
        assert head.content == b""
        assert head.headers["content-type"] == "text/html; charset=utf-8"
        assert head.headers["cache-control"] == "no-store"
    for _ in range(10):  # more than a visitor's limit (10 a window)
        assert client.head("/kontroll", params={"kode": UNKNOWN}).status_code == 200
    assert db.query("SELECT kind FROM events WHERE kind LIKE 'verify%'") == []
    # The visitor's own lookups are all still there.
    assert client.get("/kontroll", params={"kode": code}).status_code == 200
    assert db.query("SELECT kind FROM events WHERE kind LIKE 'verify%'") == [("verify_ok",)]


def test_an_unknown_code_says_it_is_not_ours_and_what_to_do(
    client: TestClient, sent: int, db: Database
) -> None:
    page = client.get("/kontroll?kode=aaaa aaaa aaa5")
    assert page.status_code == 404
    assert "Meldingen med koden AAAA-AAAA-AAA5 kommer ikke fra oss." in page.text
    assert "Ikke klikk på lenker" in page.text
    assert "Slett meldingen." in page.text
    assert page.headers["content-type"] == "text/html; charset=utf-8"
    assert "set-cookie" not in page.headers
    assert db.query(
        "SELECT kind, campaign_id, delivery_id, detail FROM events WHERE kind LIKE 'verify%'"
    ) == [("verify_unknown", None, None, '{"well_formed": true}')]


@pytest.mark.parametrize("typed", ["ABCD-2345-WXYZ", "PRH8", "<b>Ring 22 22 22 22</b>"])
def test_text_that_is_not_a_code_is_a_field_error_and_not_called_fraud(
    client: TestClient, sent: int, db: Database, typed: str
) -> None:
    # One wrong symbol (the check symbol catches it), a fragment, or anything else.
    page = client.get("/kontroll", params={"kode": typed})
    assert page.status_code == 400
    assert "Koden er ikke skrevet riktig. Sjekk at du har skrevet av alle tegnene." in page.text
    assert 'id="kode-feil"' in page.text
    assert 'aria-describedby="kode-hint kode-feil" aria-invalid="true"' in page.text
    assert 'href="#kode"' in page.text  # the summary leads to the field
    assert "kommer ikke fra oss" not in page.text
    assert "svindel" not in page.text
    assert 'name="kode" type="text" value=""' in page.text  # not shown again
    assert "Ring 22" not in page.text
    assert db.query("SELECT kind, detail FROM events WHERE kind LIKE 'verify%'") == [
        ("verify_unknown", '{"well_formed": false}')
    ]


def test_text_that_is_not_a_code_counts_against_the_limit(client: TestClient) -> None:
    statuses = [client.get("/kontroll?kode=PRH8").status_code for _ in range(10)]
    assert statuses == [400] * 10
    assert client.get(f"/kontroll?kode={UNKNOWN}").status_code == 429


def test_an_empty_code_is_a_field_error(client: TestClient) -> None:
    page = client.get("/kontroll?kode=+")
    assert 'id="kode-feil"' in page.text
    assert 'aria-describedby="kode-hint kode-feil"' in page.text


def test_guessing_from_many_addresses_hits_the_global_limit(settings: Settings) -> None:
    app = create_app(dataclasses.replace(settings, verify_global_per_minute=5))
    pages = []
    for i in range(6):
        with TestClient(app, base_url="https://testserver", client=(f"192.0.2.{i}", 4000)) as c:
            pages.append(c.get(f"/kontroll?kode={UNKNOWN}"))
    assert [p.status_code for p in pages] == [404] * 5 + [429]
    # The sixth visitor's first try: not told they tried too often.
    # A per-minute limit's sliding estimate may hold for up to two minutes.
    said = r"Mange sjekker koder akkurat nå\. Prøv igjen om (1 minutt|2 minutter)\."
    assert re.search(said, pages[5].text)
    assert "Du har gjort mange forsøk" not in pages[5].text


def test_ipv6_visitors_are_limited_by_their_64_network(settings: Settings) -> None:
    # Anyone with a /64 has 2^64 addresses: each new one must not bring a fresh limit.
    app = create_app(settings)

    def status(address: str) -> int:
        with TestClient(app, base_url="https://testserver", client=(address, 4000)) as c:
            return c.get(f"/kontroll?kode={UNKNOWN}").status_code

    assert [status(f"2001:db8:1:2::{i:x}") for i in range(1, 11)] == [404] * 10
    assert status("2001:db8:1:2:ffff:ffff:ffff:ffff") == 429
    assert status("2001:db8:1:3::1") == 404  # the next /64 is someone else
    # IPv4 as before, also when written as IPv6.
    assert [status("192.0.2.7") for _ in range(10)] == [404] * 10
    assert status("::ffff:192.0.2.7") == 429


def test_feedback_and_document_limits_count_an_ipv6_visitor_by_their_64(
    settings: Settings, sent: int
) -> None:
    app = create_app(settings)
    feedback, document = [], []
    for i in range(11):
        # A new address of the same /64 for every request, with its own form cookie.
        with TestClient(
            app, base_url="https://testserver", client=(f"2001:db8:5:6::{i + 1:x}", 4000)
        ) as c:
            token = csrf(c, "/tilbakemelding")
            form = {"csrf": token, "usefulness": "3"}
            feedback.append(c.post("/tilbakemelding", data=form).status_code)
            document.append(request_document(c, sent, f"n{i}@example.test").status_code)
    assert feedback == [200] * 10 + [429]
    assert document == [200] * 10 + [429]


def test_guessing_hits_the_limit_and_the_limit_survives_a_new_app(
    client: TestClient, settings: Settings
) -> None:
    for _ in range(10):
        assert client.get(f"/kontroll?kode={UNKNOWN}").status_code == 404
    page = client.get(f"/kontroll?kode={UNKNOWN}")
    assert page.status_code == 429
    assert "Du har gjort mange forsøk på kort tid" in page.text
    assert int(page.headers["retry-after"]) > 0
    # Refusals go out from slots, as bytes: with the security headers all the same.
    from varsel.web.headers import SECURITY_HEADERS

    for name, value in SECURITY_HEADERS.items():
        assert page.headers[name] == value
    assert page.headers["cache-control"] == "no-store"
    assert "set-cookie" not in page.headers
    with TestClient(create_app(settings), base_url="https://testserver") as again:
        assert again.get(f"/kontroll?kode={UNKNOWN}").status_code == 429


# -- register -------------------------------------------------------------------------


def test_register_lists_the_sent_campaign_in_html_and_json(client: TestClient, sent: int) -> None:
    page = client.get("/varsler")
    assert "Forebyggende sikkerhetsinformasjon fra Oslo politidistrikt og NSR" in page.text
    assert "Virksomheter i Oslo politidistrikt" in page.text
    # The From line as the reader's mail program shows it, as the genuine page shows it too.
    assert (
        "<dt>Avsender</dt><dd>NSR &lt;sikkerhet@nsr-org.no&gt;<br>på vegne av Oslo "
        "politidistrikt og NSR</dd>"
    ) in page.text
    data = client.get("/varsler.json").json()
    [entry] = data["campaigns"]
    assert entry["campaign_id"] == sent
    assert (entry["sender_name"], entry["sender_address"]) == ("NSR", "sikkerhet@nsr-org.no")
    assert entry["target"]["areas"] == ["Oslo politidistrikt"]
    assert entry["document"] == {"title": "Sikkerhetsråd", "url": "https://www.politiet.no/rad.pdf"}


@pytest.mark.parametrize(
    ("lang", "label", "day"),
    [
        ("nb", "Første melding sendt", r"\d{1,2}\. [a-zæøå]+ \d{4}"),
        ("nn", "Første melding send", r"\d{1,2}\. [a-zæøå]+ \d{4}"),
        ("en", "First message sent", r"\d{1,2} [A-Z][a-z]+ \d{4}"),  # British: 29 November 2026
    ],
)
def test_the_register_says_when_the_first_message_went_and_writes_dates_as_the_e_mail(
    client: TestClient, sent: int, lang: str, label: str, day: str
) -> None:
    page = client.get(f"/varsler?lang={lang}")
    assert re.search(f"<dt>{label}</dt><dd>{day}</dd>", page.text), page.text
    assert "Sendt fra" not in page.text
    assert "Sent from" not in page.text


def test_english_pages_and_the_english_e_mail_write_a_date_alike() -> None:
    from varsel import documents
    from varsel.web.templating import _date

    assert _date("en", "2026-11-29T10:00:00.000Z") == "29 November 2026"
    assert documents.deadline("2026-11-29T10:00:00.000Z", "en") == "29 November 2026 at 11:00"
    assert _date("nb", "2026-11-29T10:00:00.000Z") == "29. november 2026"


def test_a_campaign_not_yet_sent_is_not_in_the_register(
    client: TestClient, db: Database, brreg: Path, tmp_path: Path, settings: Settings
) -> None:
    import_dump(db, brreg / "enheter-sample.json")
    (tmp_path / "rad.pdf").write_bytes(PDF)
    (tmp_path / "c.toml").write_text(CAMPAIGN, "utf-8")
    create_campaign(db, settings, tmp_path / "c.toml")
    assert client.get("/varsler.json").json() == {"campaigns": []}


# -- feedback -------------------------------------------------------------------------


def test_feedback_with_a_code_is_stored_with_the_delivery(
    client: TestClient, sent: int, sink: SmtpSink, db: Database
) -> None:
    address, code, _ = first_message(sink)
    token = csrf(client, f"/tilbakemelding?kode={code}")
    page = client.post(
        "/tilbakemelding",
        data={
            "csrf": token,
            "kode": code,
            "usefulness": "4",
            "relevant": "ja",
            "channel": "altinn",
            "comment": "Nyttig.",
        },
    )
    assert page.status_code == 200, page.text
    assert "Takk for tilbakemeldingen" in page.text
    row = db.query_one(
        "SELECT f.campaign_id, d.address, f.usefulness, f.relevant, f.channel, f.comment "
        "FROM feedback f JOIN deliveries d ON d.id = f.delivery_id"
    )
    assert row == (sent, address, 4, True, "altinn", "Nyttig.")


def test_feedback_errors_are_tied_to_their_fields(client: TestClient, sent: int) -> None:
    token = csrf(client, "/tilbakemelding")
    page = client.post(
        "/tilbakemelding",
        data={"csrf": token, "usefulness": "9", "comment": "x" * 2001, "lang": "en"},
    )
    assert page.status_code == 400
    assert 'id="usefulness-feil"' in page.text
    assert "Choose a number from 1 to 5." in page.text
    assert "The text can be at most 2000 characters." in page.text
    assert '<html lang="en">' in page.text


def test_a_long_comment_in_norwegian_letters_within_the_limit_is_kept(
    client: TestClient, sent: int, db: Database
) -> None:
    comment = "Øvelse på brannvern, ærlig talt gått å glemme. " * 37  # 1,850 characters
    comment = comment.strip()
    assert len(comment) <= 2000
    token = csrf(client, "/tilbakemelding")
    page = client.post("/tilbakemelding", data={"csrf": token, "comment": comment})
    assert page.status_code == 200, page.text
    assert db.scalar("SELECT comment FROM feedback") == comment
    # The most a browser can send for 2,000 characters: four UTF-8 bytes each.
    page = client.post("/tilbakemelding", data={"csrf": token, "comment": "🔥" * 2000})
    assert page.status_code == 200, page.text


def test_a_comment_of_2000_characters_with_line_breaks_is_kept(
    client: TestClient, sent: int, db: Database
) -> None:
    # The textarea's maxlength counts a line break as one character, but the browser sends
    # it as CR LF: 1,990 letters in 11 lines are 2,000 characters to the reader, 2,010 sent.
    typed = "\n".join(["Brannvern er viktig for oss her. " * 6] * 10 + ["x" * 10])[:2000]
    assert len(typed) == 2000
    assert typed.count("\n") == 10
    token = csrf(client, "/tilbakemelding")
    page = client.post(
        "/tilbakemelding", data={"csrf": token, "comment": typed.replace("\n", "\r\n")}
    )
    assert page.status_code == 200, page.text
    assert db.scalar("SELECT comment FROM feedback") == typed


def test_control_characters_in_a_comment_are_left_out_and_the_words_kept(
    client: TestClient, db: Database
) -> None:
    # PostgreSQL refuses text with a NUL in it: such a comment was a server error there.
    token = csrf(client, "/tilbakemelding")
    typed = "Nyttig\x00 råd\x1b[31m,\x7f takk\r\nHilsen\rOla\x85\u202e"
    page = client.post("/tilbakemelding", data={"csrf": token, "comment": typed})
    assert page.status_code == 200, page.text
    assert db.scalar("SELECT comment FROM feedback") == "Nyttig råd[31m, takk\nHilsen\nOla\u202e"


def test_a_comment_of_control_characters_alone_is_no_answer(
    client: TestClient, db: Database
) -> None:
    token = csrf(client, "/tilbakemelding")
    page = client.post("/tilbakemelding", data={"csrf": token, "comment": "\x00\x07"})
    assert page.status_code == 400
    assert "Svar på minst ett av spørsmålene." in page.text
    assert db.scalar("SELECT count(*) FROM feedback") == 0


@pytest.mark.parametrize("length", [2001, 6000])  # 6,000 æ: 36,000 bytes percent-encoded
def test_a_comment_longer_than_the_form_allows_is_the_fields_error(
    client: TestClient, sent: int, db: Database, length: int
) -> None:
    token = csrf(client, "/tilbakemelding?lang=en")
    page = client.post(
        "/tilbakemelding?lang=en", data={"csrf": token, "comment": "æ" * length, "lang": "en"}
    )
    assert page.status_code == 400
    assert 'id="comment-feil"' in page.text
    assert "The text can be at most 2000 characters." in page.text
    assert db.scalar("SELECT count(*) FROM feedback") == 0


@pytest.mark.parametrize(("lang", "action"), [("nb", ""), ("nn", "?lang=nn"), ("en", "?lang=en")])
def test_the_forms_post_to_an_address_that_names_the_language(
    client: TestClient, sent: int, sink: SmtpSink, lang: str, action: str
) -> None:
    # A body too large to read still gets its page in the visitor's language.
    _, _, unsubscribe = first_message(sink)
    for path, posted in [
        ("/tilbakemelding", "/tilbakemelding"),
        (f"/dokument?kampanje={sent}", "/dokument"),
        (unsubscribe, unsubscribe),
    ]:
        page = client.get(path + ("&" if "?" in path else "?") + f"lang={lang}")
        assert f'<form method="post" action="{posted}{action}"' in page.text, path


@pytest.mark.parametrize(
    ("lang", "said"),
    [
        ("nb", "Velg en av utsendelsene i listen."),
        ("nn", "Vel ei av utsendingane i lista."),
        ("en", "Choose one of the mailings in the list."),
    ],
)
def test_an_unknown_mailing_is_called_a_mailing_not_a_campaign(
    client: TestClient, sent: int, lang: str, said: str
) -> None:
    token = csrf(client, "/tilbakemelding")
    page = client.post(
        "/tilbakemelding", data={"csrf": token, "kampanje": "999", "usefulness": "3", "lang": lang}
    )
    assert page.status_code == 400
    assert said in page.text
    assert "kampanjene" not in page.text
    assert "campaigns" not in page.text


MALFORMED_CODE = (
    "Koden fra meldingen er ikke skrevet riktig, så svaret kan ikke knyttes til den. Velg "
    "utsendelsen i listen, eller la den stå tom."
)


def test_a_long_text_in_the_feedback_address_is_not_echoed(client: TestClient, sent: int) -> None:
    page = client.get("/tilbakemelding", params={"kode": "Q" * 20_000})
    assert page.status_code == 200
    assert "QQQQ" not in page.text
    assert len(page.content) < 10_000
    assert MALFORMED_CODE in page.text  # said as the form would say it when sent
    assert 'name="kode"' not in page.text  # the list of mailings instead


def test_a_code_in_the_feedback_address_is_carried_as_printed(
    client: TestClient, sent: int, sink: SmtpSink
) -> None:
    _, code, _ = first_message(sink)
    page = client.get("/tilbakemelding", params={"kode": code.lower().replace("-", " ")})
    assert f'<input type="hidden" name="kode" value="{code}">' in page.text
    assert f'href="/tilbakemelding?kode={code}&amp;lang=en"' in page.text


def test_feedback_with_a_malformed_code_is_a_field_error_and_not_stored(
    client: TestClient, sent: int, db: Database
) -> None:
    token = csrf(client, "/tilbakemelding")
    page = client.post(
        "/tilbakemelding", data={"csrf": token, "kode": "garbage", "usefulness": "4"}
    )
    assert page.status_code == 400
    assert 'id="kampanje-feil"' in page.text
    assert MALFORMED_CODE in page.text
    assert "garbage" not in page.text
    assert 'value="4" checked' in page.text  # the answers are kept
    assert db.scalar("SELECT count(*) FROM feedback") == 0


def test_feedback_with_a_well_formed_unknown_code_is_thanked_as_any_other(
    client: TestClient, sent: int, db: Database
) -> None:
    # The thanks page must not tell a guesser which codes are genuine.
    token = csrf(client, "/tilbakemelding")
    page = client.post("/tilbakemelding", data={"csrf": token, "kode": UNKNOWN, "usefulness": "4"})
    assert page.status_code == 200
    assert "Takk for tilbakemeldingen" in page.text
    assert db.query("SELECT campaign_id, delivery_id FROM feedback") == [(None, None)]


def test_the_document_page_does_not_look_codes_up(
    client: TestClient, sent: int, sink: SmtpSink
) -> None:
    _, code, _ = first_message(sink)
    genuine = client.get("/dokument", params={"kode": code})
    unknown = client.get("/dokument", params={"kode": UNKNOWN})
    assert genuine.status_code == unknown.status_code == 200
    assert genuine.text.replace(code, "") == unknown.text.replace(UNKNOWN, "")
    assert code not in genuine.text  # not even in the language links
    assert "Velg utsendelsen du vil ha dokumentet fra:" in genuine.text


def test_feedback_without_the_csrf_token_is_refused(client: TestClient, db: Database) -> None:
    client.get("/tilbakemelding")
    page = client.post("/tilbakemelding", data={"usefulness": "3"})
    assert page.status_code == 403
    assert db.scalar("SELECT count(*) FROM feedback") == 0


def test_feedback_is_flood_limited(client: TestClient, sent: int) -> None:
    token = csrf(client, "/tilbakemelding")
    codes = [
        client.post("/tilbakemelding", data={"csrf": token, "usefulness": "3"}).status_code
        for _ in range(11)
    ]
    assert codes == [200] * 10 + [429]


def test_the_feedback_limit_holds_across_two_sites_on_one_store_and_a_restart(
    settings: Settings, sent: int, db: Database
) -> None:
    with (
        TestClient(create_app(settings), base_url="https://testserver") as one,
        TestClient(create_app(settings), base_url="https://testserver") as two,
    ):
        answers = []
        for number in range(10):
            site = (one, two)[number % 2]  # a visitor's forms spread over two workers
            form = {"csrf": csrf(site, "/tilbakemelding"), "usefulness": "3"}
            answers.append(site.post("/tilbakemelding", data=form).status_code)
        assert answers == [200] * 10
        form = {"csrf": csrf(one, "/tilbakemelding"), "usefulness": "3"}
        assert one.post("/tilbakemelding", data=form).status_code == 429
    with TestClient(create_app(settings), base_url="https://testserver") as restarted:
        form = {"csrf": csrf(restarted, "/tilbakemelding"), "usefulness": "3"}
        assert restarted.post("/tilbakemelding", data=form).status_code == 429
    assert db.scalar("SELECT count(*) FROM feedback") == 10


# -- document requests ----------------------------------------------------------------


def request_document(client: TestClient, campaign_id: int, address: str) -> Any:
    token = csrf(client, f"/dokument?kampanje={campaign_id}")
    return client.post(
        "/dokument", data={"csrf": token, "kampanje": str(campaign_id), "address": address}
    )


def test_document_request_sends_a_link_that_downloads_the_file(
    client: TestClient, sent: int, sink: SmtpSink, db: Database, settings: Settings
) -> None:
    from varsel import documents

    before = len(sink.messages)
    page = request_document(client, sent, "Leser@Example.test")
    assert page.status_code == 200, page.text
    assert (
        "En e-post med lenke for å laste ned «Sikkerhetsråd» er sendt til leser@example.test."
        in page.text
    )
    expires = str(db.scalar("SELECT expires_at FROM document_requests"))
    assert f"Lenken virker til {documents.deadline(expires, 'nb')}." in page.text
    [mail] = sink.wait_for(before + 1, 5)[before:]
    assert mail.rcpt_tos == ("leser@example.test",)
    assert dkim.verify(mail.data, dnsfunc=dns_for(settings))
    link = re.search(r"https://www\.politiet\.no/varsel(/dokument/hent/\S+)", text_of(mail.data))
    assert link is not None
    download = client.get(link.group(1))
    assert download.status_code == 200
    assert download.content == PDF
    assert "attachment" in download.headers["content-disposition"]
    assert db.scalar("SELECT count(*) FROM events WHERE kind = 'document_downloaded'") == 1
    tampered = link.group(1)[:-2] + ("AA" if not link.group(1).endswith("AA") else "BB")
    assert client.get(tampered).status_code == 404


def test_a_download_is_counted_once_not_for_a_head_or_the_rest_of_a_file(
    client: TestClient, sent: int, sink: SmtpSink, db: Database
) -> None:
    before = len(sink.messages)
    assert request_document(client, sent, "leser@example.test").status_code == 200
    [mail] = sink.wait_for(before + 1, 5)[before:]
    link = re.search(r"https://www\.politiet\.no/varsel(/dokument/hent/\S+)", text_of(mail.data))
    assert link is not None

    def downloads() -> tuple[Any, ...]:
        return (
            db.scalar("SELECT count(*) FROM events WHERE kind = 'document_downloaded'"),
            db.scalar("SELECT downloaded_at FROM document_requests") is not None,
        )

    # A link checker's HEAD, or a download manager's second part of the file, is no download.
    head = client.head(link.group(1))
    assert (head.status_code, head.content) == (200, b"")
    assert downloads() == (0, False)
    start = client.get(link.group(1), headers={"range": "bytes=0-3"})
    assert (start.status_code, start.content) == (206, PDF[:4])
    rest = client.get(link.group(1), headers={"range": "bytes=4-"})
    assert (rest.status_code, rest.content) == (206, PDF[4:])
    assert downloads() == (1, True)
    assert client.get(link.group(1)).content == PDF
    assert downloads() == (2, True)


def test_an_expired_link_is_refused(client: TestClient, sent: int, db: Database) -> None:
    from varsel import documents

    site = client.app.state.site  # type: ignore[attr-defined]
    issued = documents.issue(db, site.secret, sent, "a@example.test", valid_seconds=60, now=1000.0)
    assert isinstance(issued, documents.Issued)
    page = client.get(f"/dokument/hent/{issued.token}")
    assert page.status_code == 410
    assert "<p>Lenken er gått ut.</p>" in page.text
    assert '<a href="/dokument">Be om en ny lenke</a>' in page.text


@pytest.mark.parametrize(
    ("lang", "said", "again"),
    [
        ("nn", "Lenkja er ikkje gyldig.", '<a href="/dokument?lang=nn">Be om ei ny lenkje</a>'),
        ("en", "The link is not valid.", '<a href="/dokument?lang=en">Ask for a new link</a>'),
    ],
)
def test_the_emailed_link_carries_its_language_to_the_pages_it_leads_to(
    settings: Settings, sent: int, sink: SmtpSink, lang: str, said: str, again: str
) -> None:
    before = len(sink.messages)
    with TestClient(create_app(settings), base_url="https://testserver") as c:
        token = csrf(c, f"/dokument?kampanje={sent}&lang={lang}")
        data = {"csrf": token, "kampanje": str(sent), "address": "a@example.test", "lang": lang}
        sent_page = c.post(f"/dokument?lang={lang}", data=data)
        assert sent_page.status_code == 200
        [mail] = sink.wait_for(before + 1, 5)[before:]
        link = re.search(
            r"https://www\.politiet\.no/varsel(/dokument/hent/\S+)", text_of(mail.data)
        )
        assert link is not None
        assert link.group(1).endswith(f"?lang={lang}")
        tampered = link.group(1).replace(".", ".9", 1)
        page = c.get(tampered)
    assert page.status_code == 404
    assert f'<html lang="{lang}">' in page.text
    assert said in page.text
    assert again in page.text


def test_the_sent_page_says_how_long_the_link_works_in_english(
    client: TestClient, sent: int, db: Database
) -> None:
    from varsel import documents

    token = csrf(client, f"/dokument?kampanje={sent}&lang=en")
    data = {"csrf": token, "kampanje": str(sent), "address": "b@example.test", "lang": "en"}
    page = client.post("/dokument?lang=en", data=data)
    assert "An e-mail with a link to download “Sikkerhetsråd” has been sent to b@example.test." in (
        page.text
    )
    expires = str(db.scalar("SELECT expires_at FROM document_requests"))
    assert f"The link works until {documents.deadline(expires, 'en')} (Norwegian time)." in (
        page.text
    )


def test_the_document_form_cannot_bomb_a_third_party(
    client: TestClient, sent: int, sink: SmtpSink
) -> None:
    before = len(sink.messages)
    assert request_document(client, sent, "offer@example.test").status_code == 200
    second = request_document(client, sent, "offer@example.test")
    assert second.status_code == 409
    assert "Vi har nylig sendt en lenke til denne adressen" in second.text
    assert len(sink.messages) == before + 1


def test_an_address_gets_at_most_three_links_a_day(
    client: TestClient, sent: int, db: Database
) -> None:
    for _ in range(3):
        assert request_document(client, sent, "offer@example.test").status_code == 200
        db.execute("UPDATE document_requests SET downloaded_at = 'x'")  # used: no longer pending
    refused = request_document(client, sent, "offer@example.test")
    assert refused.status_code == 429
    assert "Vi har sendt så mange lenker til denne adressen det siste døgnet" in refused.text
    assert "forsøk" not in refused.text  # about the address, not the visitor
    assert re.search(r"ikke sender flere før (\d+\. \w+ )?kl\. \d\d\.\d\d\.", refused.text)
    assert int(refused.headers["retry-after"]) > 3600
    assert db.scalar("SELECT count(*) FROM document_requests") == 3


def test_a_link_already_on_its_way_does_not_use_up_the_address(
    client: TestClient, sent: int, db: Database
) -> None:
    assert request_document(client, sent, "offer@example.test").status_code == 200
    for _ in range(4):  # "already sent": nothing e-mailed, nothing counted
        assert request_document(client, sent, "offer@example.test").status_code == 409
    for _ in range(2):
        db.execute("UPDATE document_requests SET downloaded_at = 'x'")
        assert request_document(client, sent, "offer@example.test").status_code == 200


def test_a_link_that_could_not_be_sent_does_not_count_against_the_address(
    settings: Settings, sent: int, db: Database
) -> None:
    app = create_app(dataclasses.replace(settings, document_per_address_day=1))
    keys = Path(settings.dkim_key_dir)
    with TestClient(app, base_url="https://testserver") as c:
        keys.rename(keys.with_name("away"))
        assert request_document(c, sent, "leser@example.test").status_code == 503
        keys.with_name("away").rename(keys)
        assert request_document(c, sent, "leser@example.test").status_code == 200
        db.execute("UPDATE document_requests SET downloaded_at = 'x'")
        assert request_document(c, sent, "leser@example.test").status_code == 429


def test_an_address_at_its_limit_with_a_link_still_usable_is_told_to_use_it(
    settings: Settings, sent: int
) -> None:
    app = create_app(dataclasses.replace(settings, document_per_address_day=1))
    with TestClient(app, base_url="https://testserver") as c:
        assert request_document(c, sent, "leser@example.test").status_code == 200
        again = request_document(c, sent, "leser@example.test")
    assert again.status_code == 409
    assert "Vi har nylig sendt en lenke til denne adressen. Bruk den" in again.text


@pytest.mark.parametrize(
    ("lang", "said"),
    [
        (
            "nb",
            "Vi har sendt så mange lenker til denne adressen det siste døgnet at vi ikke "
            "sender flere før ",
        ),
        (
            "nn",
            "Vi har sendt så mange lenkjer til denne adressa det siste døgnet at vi ikkje "
            "sender fleire før ",
        ),
        (
            "en",
            "We have sent so many links to this address in the last 24 hours that we will "
            "not send more until ",
        ),
    ],
)
def test_the_address_limit_says_until_when_in_the_visitors_language(
    settings: Settings, sent: int, db: Database, lang: str, said: str
) -> None:
    app = create_app(dataclasses.replace(settings, document_per_address_day=1))
    with TestClient(app, base_url="https://testserver") as c:
        for status in (200, 429):
            token = csrf(c, f"/dokument?kampanje={sent}&lang={lang}")
            data = {"csrf": token, "kampanje": str(sent), "address": "a@example.test", "lang": lang}
            page = c.post("/dokument", data=data)
            assert page.status_code == status
            db.execute("UPDATE document_requests SET downloaded_at = 'x'")
    assert said in page.text
    assert f'<html lang="{lang}">' in page.text
    assert "https://www.politiet.no/rad.pdf" in page.text  # where to read it meanwhile


def test_the_address_limit_tells_a_clock_time_and_a_date_on_another_day() -> None:
    from varsel import documents

    now = 1_796_040_000.0  # 30 November 2026 13:00 in Oslo
    assert documents.next_link_at(3600, "nb", now=now) == "kl. 14.00"
    assert documents.next_link_at(3600, "en", now=now) == "14:00"
    assert documents.next_link_at(86400, "nn", now=now) == "1. desember kl. 13.00"
    assert documents.next_link_at(86400, "en", now=now) == "1 December at 13:00"


def test_an_ip_gets_at_most_ten_links_an_hour(client: TestClient, sent: int) -> None:
    codes = [request_document(client, sent, f"n{i}@example.test").status_code for i in range(11)]
    assert codes == [200] * 10 + [429]


def test_without_a_dkim_key_no_link_is_sent_and_the_address_may_ask_again(
    client: TestClient, sent: int, sink: SmtpSink, settings: Settings, db: Database
) -> None:
    keys = Path(settings.dkim_key_dir)
    keys.rename(keys.with_name("away"))
    before = len(sink.messages)
    page = request_document(client, sent, "leser@example.test")
    assert page.status_code == 503
    assert "Vi fikk ikke sendt e-posten akkurat nå" in page.text
    assert db.scalar("SELECT count(*) FROM document_requests") == 0
    assert len(sink.messages) == before
    keys.with_name("away").rename(keys)
    assert request_document(client, sent, "leser@example.test").status_code == 200


# -- unsubscribe ----------------------------------------------------------------------


def test_one_click_unsubscribe_suppresses_the_address_for_the_next_campaign(
    client: TestClient, sent: int, sink: SmtpSink, db: Database, tmp_path: Path, settings: Settings
) -> None:
    address, _, path = first_message(sink)
    client.cookies.clear()
    response = client.post(
        path,
        content=b"List-Unsubscribe=One-Click",
        headers={"content-type": "application/x-www-form-urlencoded"},
        follow_redirects=False,
    )
    assert response.status_code == 200
    assert "set-cookie" not in response.headers
    assert db.query("SELECT kind, value, reason FROM suppressions") == [
        ("address", address, "unsubscribed")
    ]
    second = create_campaign(db, settings, tmp_path / "c.toml").campaign.id
    assert (
        db.scalar(
            "SELECT state FROM deliveries WHERE campaign_id = ? AND address = ?", (second, address)
        )
        == "suppressed"
    )


def test_one_click_unsubscribe_stops_a_campaign_already_queued_before_it_is_sent(
    client: TestClient, sent: int, sink: SmtpSink, db: Database, tmp_path: Path, settings: Settings
) -> None:
    address, _, path = first_message(sink)
    # The next campaign's deliveries are made (queued) before the reader unsubscribes.
    second = create_campaign(db, settings, tmp_path / "c.toml").campaign.id
    queued = "SELECT state FROM deliveries WHERE campaign_id = ? AND address = ?"
    assert db.scalar(queued, (second, address)) == "queued"
    client.cookies.clear()
    one_click = client.post(path, data={"List-Unsubscribe": "One-Click"})
    assert (one_click.status_code, one_click.text) == (200, "Unsubscribed.\n")
    before = len(sink.messages)
    send_campaign(db, settings, second, relay=RelayConfig.from_url(sink.url), options=FAST)
    assert db.scalar(queued, (second, address)) == "suppressed"
    assert address not in [m.rcpt_tos[0] for m in sink.messages[before:]]
    assert len(sink.messages) > before  # the others still got theirs


def test_the_unsubscribe_page_can_stop_the_whole_organisation(
    client: TestClient, sent: int, sink: SmtpSink, db: Database
) -> None:
    address, _, path = first_message(sink)
    token = csrf(client, path)
    page = client.post(path, data={"csrf": token, "scope": "organisation"})
    assert page.status_code == 200
    assert "Du er meldt av" in page.text
    orgnrs = [r[0] for r in units_of(db, address)]
    assert db.query("SELECT value FROM suppressions WHERE kind = 'unit' ORDER BY value") == [
        (o,) for o in orgnrs
    ]


def test_stopping_the_businesses_lists_them_and_says_letters_and_altinn_stop_too(
    client: TestClient, sent: int, sink: SmtpSink, db: Database
) -> None:
    address, _, path = first_message(sink)
    units = units_of(db, address)
    form = client.get(path)
    token = csrf(client, path)
    page = client.post(path, data={"csrf": token, "scope": "organisation"})
    assert page.status_code == 200
    if len(units) == 1:
        assert "Virksomheten over, på alle adresser: e-post, brev og Altinn" in form.text
        said = "Vi sender ikke flere slike meldinger, verken på e-post, brev eller i Altinn, til "
        assert said + "denne virksomheten, uansett adresse:" in page.text
    else:
        assert "Virksomhetene over, på alle adresser: e-post, brev og Altinn" in form.text
        assert "til disse virksomhetene, uansett adresse:" in page.text
    for orgnr, name in units:
        assert name in page.text  # listed on the page that speaks of them
        assert f"{orgnr[:3]} {orgnr[3:6]} {orgnr[6:]}" in page.text
    assert "over, uansett adresse" not in page.text


def test_one_business_is_spoken_of_in_the_singular_and_several_in_the_plural() -> None:
    from varsel.web.templating import environment

    def label(n: int, language: str) -> str:
        template = environment(language).from_string(
            '{{ ngettext("Virksomheten over, på alle adresser: e-post, brev og Altinn", '
            '"Virksomhetene over, på alle adresser: e-post, brev og Altinn", n) }}'
        )
        return template.render(n=n)

    assert label(1, "nb") == "Virksomheten over, på alle adresser: e-post, brev og Altinn"
    assert label(2, "nn") == "Verksemdene over, på alle adresser: e-post, brev og Altinn"
    assert label(1, "en") == "The business above, at every address: e-mail, letters and Altinn"


@pytest.mark.parametrize(
    ("lang", "said"),
    [
        ("nb", "Du er allerede meldt av: vi sender ingen flere e-poster til {}."),
        ("nn", "Du er allereie meld av: vi sender ingen fleire e-postar til {}."),
        ("en", "You have already unsubscribed: we will not send any more e-mails to {}."),
    ],
)
def test_the_link_of_an_address_already_unsubscribed_says_so(
    client: TestClient, sent: int, sink: SmtpSink, lang: str, said: str
) -> None:
    address, _, path = first_message(sink)
    assert "allerede" not in client.get(path).text
    client.post(
        path,
        content=b"List-Unsubscribe=One-Click",
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    page = client.get(f"{path}?lang={lang}")
    assert page.status_code == 200
    assert said.format(address) in page.text
    assert "for e-post, brev og Altinn." not in page.text  # the businesses are not stopped


def test_the_link_of_businesses_already_stopped_says_so(
    client: TestClient, sent: int, sink: SmtpSink
) -> None:
    _, _, path = first_message(sink)
    token = csrf(client, path)
    client.post(path, data={"csrf": token, "scope": "organisation"})
    page = client.get(path)
    assert re.search(
        r"Virksomhete(n|ne) under er allerede meldt av, for e-post, brev og Altinn\.", page.text
    )
    assert "Du er allerede meldt av" not in page.text


def test_the_unsubscribe_form_needs_the_csrf_token(
    client: TestClient, sent: int, sink: SmtpSink, db: Database
) -> None:
    _, _, path = first_message(sink)
    assert client.post(path, data={"scope": "address"}).status_code == 403
    assert db.scalar("SELECT count(*) FROM suppressions") == 0


@pytest.mark.parametrize("token", ["%00", "abc%00def", "%C3%A6%E2%80%AE", "a%0Ab"])
def test_an_unsubscribe_link_that_is_no_token_of_ours_is_not_found(
    client: TestClient, db: Database, token: str
) -> None:
    # PostgreSQL refuses text with a NUL in it: looked up, such a link was a server error.
    page = client.get(f"/avmelding/{token}")
    assert page.status_code == 404
    assert "<h1>Siden finnes ikke</h1>" in page.text
    one_click = client.post(f"/avmelding/{token}", data={"List-Unsubscribe": "One-Click"})
    assert (one_click.status_code, one_click.text) == (404, "Unknown unsubscribe link.\n")
    human = client.post(
        f"/avmelding/{token}", data={"csrf": csrf(client, "/tilbakemelding"), "scope": "address"}
    )
    assert human.status_code == 404
    assert db.scalar("SELECT count(*) FROM suppressions") == 0


# -- every page -----------------------------------------------------------------------

PAGES = ["/", "/kontroll", "/varsler", "/tilbakemelding", "/dokument", "/finnes-ikke"]


@pytest.mark.parametrize("lang", ["nb", "nn", "en"])
def test_every_page_has_its_language_and_the_security_headers(
    client: TestClient, lang: str
) -> None:
    for path in PAGES:
        page = client.get(path, params={"lang": lang})
        assert f'<html lang="{lang}">' in page.text, path
        assert page.headers["x-content-type-options"] == "nosniff"
        assert page.headers["referrer-policy"] == "no-referrer"
        assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
        assert "default-src 'self'" in page.headers["content-security-policy"]
        assert page.headers["strict-transport-security"].startswith("max-age=")
        assert "<script" not in page.text
        assert ' style="' not in page.text
        assert 'href="#innhold"' in page.text


def test_a_form_larger_than_the_site_takes_is_refused(client: TestClient) -> None:
    form = client.get("/tilbakemelding")
    token = re.search(r'name="csrf" value="([^"]+)"', form.text).group(1)  # type: ignore[union-attr]
    posted = client.post(
        "/tilbakemelding", data={"csrf": token, "usefulness": "4", "comment": "x" * 70_000}
    )
    assert posted.status_code == 413  # Starlette's own answer, before the body is read
    assert posted.headers["x-frame-options"] == "DENY"


def test_a_chunked_body_too_large_is_refused(client: TestClient) -> None:
    def body() -> Iterator[bytes]:  # no Content-Length: sent chunked
        yield b"usefulness=4&comment=" + b"x" * 70_000

    posted = client.post(
        "/tilbakemelding",
        content=body(),
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert posted.status_code == 413
    assert "For mye tekst" in posted.text  # read up to the limit: the site's own page
    assert posted.headers["content-security-policy"].startswith("default-src 'self'")


def test_a_form_too_large_gets_the_sites_page_in_the_visitors_language(
    client: TestClient,
) -> None:
    token = csrf(client, "/tilbakemelding?lang=nn")
    posted = client.post(  # the form's own action: the language is in its address
        "/tilbakemelding?lang=nn", data={"csrf": token, "comment": "x" * 70_000, "lang": "nn"}
    )
    assert posted.status_code == 413
    assert '<html lang="nn">' in posted.text
    assert "For mykje tekst" in posted.text


def test_a_chunked_body_too_large_is_refused_in_the_visitors_language(
    client: TestClient,
) -> None:
    def body() -> Iterator[bytes]:
        yield b"usefulness=4&lang=en&comment=" + b"x" * 70_000

    posted = client.post(
        "/tilbakemelding?lang=en",
        content=body(),
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert posted.status_code == 413
    assert '<html lang="en">' in posted.text
    assert "Too much text" in posted.text


def test_the_csrf_cookie_is_secure_httponly_and_strict(client: TestClient) -> None:
    cookie = client.get("/tilbakemelding").headers["set-cookie"].lower()
    assert cookie.startswith("__host-csrf=")
    for part in ("secure", "httponly", "samesite=strict", "path=/"):
        assert part in cookie


def test_the_site_purges_expired_limits_and_links_when_it_starts(
    settings: Settings, db: Database, sent: int
) -> None:
    from varsel import documents, ratelimit

    ratelimit.consume(db, [(ratelimit.Limit("old", 10, 60), "k")], now=1000.0)
    ratelimit.consume(db, [(ratelimit.Limit("new", 10, 60), "k")])
    documents.issue(db, b"s" * 32, sent, "old@example.test", valid_seconds=60, now=1000.0)
    documents.issue(db, b"s" * 32, sent, "new@example.test", valid_seconds=60)
    with TestClient(create_app(settings), base_url="https://testserver"):
        assert db.query("SELECT scope FROM rate_limits") == [("new",)]
        assert db.query("SELECT address FROM document_requests") == [("new@example.test",)]


@pytest.mark.parametrize(
    ("lang", "said", "feedback"),
    [
        (
            "nb",
            "Offentlige myndigheter sender forebyggende sikkerhetsråd til virksomheter på "
            "e-post, i brev og i Altinn.",
            "Gi tilbakemelding",
        ),
        (
            "nn",
            "Offentlege styresmakter sender førebyggjande tryggleiksråd til verksemder på "
            "e-post, i brev og i Altinn.",
            "Gi tilbakemelding",
        ),
        (
            "en",
            "Public authorities send preventive security advice to businesses by e-mail, "
            "letter and Altinn.",
            "Give feedback",
        ),
    ],
)
def test_the_front_page_names_no_authority_and_every_channel(
    client: TestClient, lang: str, said: str, feedback: str
) -> None:
    page = client.get(f"/?lang={lang}")
    assert said in page.text
    assert "politi" not in page.text.lower()
    # The front page's link to the form says what the menu says.
    link = "/tilbakemelding" + ("" if lang == "nb" else f"?lang={lang}")
    assert page.text.count(f'<a href="{link}">{feedback}</a>') == 2


def test_languages_switch(client: TestClient) -> None:
    assert "Sjekk om ei melding frå oss er ekte" in client.get("/kontroll?lang=nn").text
    assert "Check whether a message from us is genuine" in client.get("/kontroll?lang=en").text
    assert '<html lang="nb">' in client.get("/kontroll?lang=xx").text


def language_links(page: str) -> dict[str, str]:
    """The language links at the top of a page, by language, as the browser follows them."""
    found = re.findall(r'<a href="([^"]+)" lang="(\w+)" hreflang', page)
    return {lang: html.unescape(href) for href, lang in found}


def test_after_a_refused_form_the_language_links_keep_the_code_and_the_mailing(
    client: TestClient, sent: int, sink: SmtpSink
) -> None:
    _, code, _ = first_message(sink)
    token = csrf(client, "/tilbakemelding")
    page = client.post(
        "/tilbakemelding?lang=en",
        data={"csrf": token, "kode": code, "comment": "x" * 2001, "lang": "en"},
    )
    assert page.status_code == 400
    # Read in another language, the form is still about the message the code names.
    assert language_links(page.text)["nn"] == f"/tilbakemelding?kode={code}&lang=nn"
    page = client.post(
        "/tilbakemelding", data={"csrf": token, "kampanje": str(sent), "usefulness": "9"}
    )
    assert page.status_code == 400
    assert language_links(page.text)["en"] == f"/tilbakemelding?kampanje={sent}&lang=en"
    page = client.post(
        "/dokument", data={"csrf": token, "kampanje": str(sent), "address": "ikke en adresse"}
    )
    assert page.status_code == 400
    # The form for this mailing's document, not the list of every mailing.
    assert language_links(page.text)["en"] == f"/dokument?kampanje={sent}&lang=en"


def test_a_code_of_a_unit_removed_from_the_registry_shows_no_trace_of_it(
    client: TestClient, sent: int, sink: SmtpSink, db: Database
) -> None:
    from varsel.erasure import ERASED_NAME, erase_unit

    address, code, unsubscribe = first_message(sink)
    [(orgnr, name), *others] = units_of(db, address)
    with db.transaction():
        erase_unit(db, orgnr)
    shown = {
        "nb": (f"{ERASED_NAME} (org.nr. –)", "(adressen er slettet)"),
        "nn": ("(fjerna frå Einingsregisteret) (org.nr. –)", "(adressa er sletta)"),
        "en": (
            "(removed from the Central Coordinating Register) (org. no. –)",
            "(the address has been deleted)",
        ),
    }
    for lang, (text, deleted) in shown.items():
        for _ in range(2):  # the page from slots too, after Jinja's first
            page = client.get("/kontroll", params={"kode": code, "lang": lang})
            assert page.status_code == 200
            assert name not in page.text
            assert orgnr not in page.text
            assert "fjernet-" not in page.text
            assert text in page.text
            for _, other in others:
                assert other in page.text
        page = client.get(unsubscribe, params={"lang": lang})
        assert page.status_code == 200
        assert name not in page.text
        assert orgnr not in page.text
        assert "fjernet-" not in page.text
        assert text in page.text
        assert deleted in page.text


def forget(db: Database, campaign_id: int) -> None:
    from varsel.retention import forget_campaign

    with db.transaction():
        db.execute("UPDATE campaigns SET status = 'done' WHERE id = ?", (campaign_id,))
    forget_campaign(db, campaign_id, actor="cli:test")


def test_a_code_of_a_forgotten_campaign_is_still_genuine_with_its_address_deleted(
    client: TestClient, sent: int, sink: SmtpSink, db: Database
) -> None:
    address, code, unsubscribe = first_message(sink)
    units = units_of(db, address)
    forget(db, sent)
    page = client.get("/kontroll", params={"kode": code})
    assert page.status_code == 200
    assert "E-posten er ekte" in page.text
    for orgnr, name in units:
        assert name in page.text
        assert " ".join(orgnr[i : i + 3] for i in range(0, 9, 3)) in page.text
    page = client.get(unsubscribe)
    assert page.status_code == 200
    assert address not in page.text
    assert "fjernet-" not in page.text
    assert "(adressen er slettet)" in page.text
    assert "Adressen er slettet hos oss, så vi kan bare melde av virksomhetene." in page.text
    assert 'value="address"' not in page.text
    english = client.get(unsubscribe, params={"lang": "en"})
    assert "We have deleted the address, so only the businesses can be unsubscribed." in (
        english.text
    )


def test_one_click_unsubscribe_of_a_forgotten_delivery_stops_its_businesses(
    client: TestClient, sent: int, sink: SmtpSink, db: Database
) -> None:
    address, _, path = first_message(sink)
    orgnrs = [r[0] for r in units_of(db, address)]
    forget(db, sent)
    client.cookies.clear()
    response = client.post(
        path,
        content=b"List-Unsubscribe=One-Click",
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert response.status_code == 200
    assert db.query("SELECT kind, value FROM suppressions ORDER BY value") == [
        ("unit", o) for o in orgnrs
    ]


def test_the_unsubscribe_page_of_a_forgotten_delivery_says_it_stopped_the_businesses(
    client: TestClient, sent: int, sink: SmtpSink, db: Database
) -> None:
    address, _, path = first_message(sink)
    orgnrs = [r[0] for r in units_of(db, address)]
    forget(db, sent)
    token = csrf(client, path)
    # An old copy of the form may still offer the address: the businesses are stopped instead.
    page = client.post(path, data={"csrf": token, "scope": "address"})
    assert page.status_code == 200
    assert "verken på e-post, brev eller i Altinn, til denne virksomheten, uansett adresse:" in (
        page.text
    ) or "verken på e-post, brev eller i Altinn, til disse virksomhetene, uansett adresse:" in (
        page.text
    )
    assert db.query("SELECT kind, value FROM suppressions ORDER BY value") == [
        ("unit", o) for o in orgnrs
    ]


# -- global caps on the forms, and what the document form and e-mail say (H3) ---------------


def visitor(app: Any, number: int) -> TestClient:
    """A client from an address of its own: the per-visitor limits never stop it."""
    return TestClient(app, base_url="https://testserver", client=(f"198.51.100.{number}", 4000))


def test_feedback_from_many_addresses_hits_the_global_limit_and_says_so(
    settings: Settings, sent: int, db: Database
) -> None:
    app = create_app(dataclasses.replace(settings, feedback_global_per_minute=3))
    pages = []
    for i in range(4):
        with visitor(app, i) as c:
            token = csrf(c, "/tilbakemelding")
            pages.append(c.post("/tilbakemelding", data={"csrf": token, "usefulness": "3"}))
    assert [p.status_code for p in pages] == [200, 200, 200, 429]
    refused = pages[-1]
    assert "Mange bruker skjemaet nå" in refused.text
    assert (
        "Mange sender tilbakemelding akkurat nå. Vent et par minutter og prøv igjen."
        in refused.text
    )
    # The sliding estimate may hold a per-minute limit up to two windows.
    assert 1 <= int(refused.headers["retry-after"]) <= 120
    assert db.scalar("SELECT count(*) FROM feedback") == 3


def test_the_global_feedback_limit_speaks_the_visitors_language(
    settings: Settings, sent: int
) -> None:
    app = create_app(dataclasses.replace(settings, feedback_global_per_minute=1))
    statuses, texts = [], []
    for i, lang in enumerate(["nb", "nn", "en"]):
        with visitor(app, i) as c:
            token = csrf(c, f"/tilbakemelding?lang={lang}")
            page = c.post("/tilbakemelding", data={"csrf": token, "usefulness": "3", "lang": lang})
            statuses.append(page.status_code)
            texts.append(page.text)
    assert statuses == [200, 429, 429]
    assert "Mange sender tilbakemelding akkurat no. Vent eit par minutt og prøv igjen." in texts[1]
    assert (
        "Many people are sending feedback right now. Wait a couple of minutes and try again."
        in texts[2]
    )


def test_document_requests_from_many_addresses_hit_the_global_limit_and_say_so(
    settings: Settings, sent: int, sink: SmtpSink, db: Database
) -> None:
    app = create_app(dataclasses.replace(settings, document_global_per_minute=2))
    before = len(sink.messages)
    pages = []
    for i in range(3):
        with visitor(app, i) as c:
            pages.append(request_document(c, sent, f"leser{i}@example.test"))
    assert [p.status_code for p in pages] == [200, 200, 429]
    assert (
        "Mange ber om dokumenter akkurat nå. Vent et par minutter og prøv igjen." in pages[-1].text
    )
    assert 1 <= int(pages[-1].headers["retry-after"]) <= 120
    sink.wait_for(before + 2, 5)
    assert len(sink.messages) == before + 2
    assert db.scalar("SELECT count(*) FROM document_requests") == 2


@pytest.mark.parametrize(
    ("hours", "lang", "said"),
    [
        (24.0, "nb", "Lenken virker i 1 døgn."),
        (48.0, "nb", "Lenken virker i 2 døgn."),
        (1.0, "nb", "Lenken virker i 1 time."),
        (6.0, "nn", "Lenkja verkar i 6 timar."),
        (1.5, "en", "The link works for 90 minutes."),
        (72.0, "en", "The link works for 3 days."),
    ],
)
def test_the_document_form_says_how_long_the_link_works_as_set(
    settings: Settings, sent: int, hours: float, lang: str, said: str
) -> None:
    app = create_app(dataclasses.replace(settings, document_link_hours=hours))
    with TestClient(app, base_url="https://testserver") as c:
        page = c.get(f"/dokument?kampanje={sent}&lang={lang}")
        assert page.status_code == 200
        assert said in page.text
        assert "et døgn" not in page.text
        # The form shown again with an error says it too.
        token = csrf(c, f"/dokument?kampanje={sent}&lang={lang}")
        again = c.post(
            "/dokument", data={"csrf": token, "kampanje": str(sent), "address": "", "lang": lang}
        )
        assert again.status_code == 400
        assert said in again.text


def test_the_document_email_gives_the_deadline_in_oslo_time(
    client: TestClient, sent: int, sink: SmtpSink, db: Database
) -> None:
    from varsel import documents

    before = len(sink.messages)
    assert request_document(client, sent, "leser@example.test").status_code == 200
    [mail] = sink.wait_for(before + 1, 5)[before:]
    expires = str(db.scalar("SELECT expires_at FROM document_requests"))
    text = text_of(mail.data)
    assert f"Last det ned her innen {documents.deadline(expires, 'nb')}:" in text
    assert "UTC" not in text


def sent_to(page: str) -> str:
    """The register's «Sent to» line, its whitespace as one space."""
    found = re.search(r"<dt>(?:Sendt til|Sent to)</dt><dd>(.*?)</dd>", page, re.DOTALL)
    assert found is not None, page
    return " ".join(found.group(1).split())


def restate(db: Database, campaign_id: int, **criteria: Any) -> None:
    """The campaign's stored definition with other criteria, as an older campaign stored it."""
    import json  # only these appended register tests need it

    spec = json.loads(db.scalar("SELECT spec FROM campaigns WHERE id = ?", (campaign_id,)))
    spec["criteria"] = {**spec["criteria"], **criteria}
    with db.transaction():
        db.execute("UPDATE campaigns SET spec = ? WHERE id = ?", (json.dumps(spec), campaign_id))


@pytest.mark.parametrize(
    ("lang", "sentence"),
    [
        ("nb", "Virksomheter i Sør-Vest politidistrikt, Agder politidistrikt, Rogaland, Oslo"),
        ("nn", "Verksemder i Sør-Vest politidistrikt, Agder politidistrikt, Rogaland, Oslo"),
        ("en", "Businesses in Sør-Vest politidistrikt, Agder politidistrikt, Rogaland, Oslo"),
    ],
)
def test_the_register_names_places_as_the_segment_read_them_in_every_language(
    client: TestClient, sent: int, db: Database, lang: str, sentence: str
) -> None:
    # As typed in campaign files: the docs' spelling, a slug, a county number, an old number.
    restate(
        db, sent, police_districts=["Sør-Vest", "agder"], counties=["11"], municipalities=["301"]
    )
    assert sent_to(client.get(f"/varsler?lang={lang}").text) == sentence
    [entry] = client.get("/varsler.json").json()["campaigns"]
    assert entry["target"]["areas"] == [
        "Sør-Vest politidistrikt",
        "Agder politidistrikt",
        "Rogaland",
        "Oslo",
    ]


@pytest.mark.parametrize(
    ("minimum", "rule", "lang", "words"),
    [
        (
            2,
            "auto",
            "nb",
            "Virksomheter i Oslo politidistrikt med minst 2 ansatte, og virksomheter med 1–4 "
            "ansatte der registeret ikke viser det nøyaktige antallet",
        ),
        (
            2,
            "auto",
            "en",
            "Businesses in Oslo politidistrikt with at least 2 employees, and businesses with "
            "1–4 employees whose exact number the registry does not show",
        ),
        (1, "auto", "nb", "Virksomheter i Oslo politidistrikt med registrerte ansatte"),
        (1, "auto", "nn", "Verksemder i Oslo politidistrikt med registrerte tilsette"),
        (5, "auto", "nb", "Virksomheter i Oslo politidistrikt med minst 5 ansatte"),
        (
            2,
            "exact",
            "nb",
            "Virksomheter i Oslo politidistrikt med minst 5 ansatte (registeret viser ikke "
            "antall under 5)",
        ),
        (None, "auto", "nb", "Virksomheter i Oslo politidistrikt"),
    ],
)
def test_the_register_states_the_employee_rule_the_campaign_used(
    client: TestClient,
    sent: int,
    db: Database,
    minimum: int | None,
    rule: str,
    lang: str,
    words: str,
) -> None:
    restate(db, sent, min_employees=minimum, employee_rule=rule)
    assert sent_to(client.get(f"/varsler?lang={lang}").text) == words
    [entry] = client.get("/varsler.json").json()["campaigns"]
    assert entry["target"]["min_employees"] == minimum


def test_the_register_json_names_the_employee_rule_applied(
    client: TestClient, sent: int, db: Database
) -> None:
    restate(db, sent, min_employees=2, employee_rule="auto")
    [entry] = client.get("/varsler.json").json()["campaigns"]
    assert entry["target"]["employee_rule"] == "registered_undecided"


# -- the security audit's findings ----------------------------------------------------


def test_feedback_answers_a_genuine_and_an_unknown_code_alike_when_the_mailing_is_wrong(
    client: TestClient, sent: int, sink: SmtpSink, db: Database
) -> None:
    # The form must not be an oracle: the mailing is checked whatever the code named.
    _, code, _ = first_message(sink)
    token = csrf(client, "/tilbakemelding")
    pages = [
        client.post(
            "/tilbakemelding",
            data={"csrf": token, "kode": typed, "kampanje": "999999", "usefulness": "3"},
        )
        for typed in (code, UNKNOWN)
    ]
    assert [p.status_code for p in pages] == [400, 400]
    assert "Velg en av utsendelsene i listen." in pages[0].text
    assert pages[0].text.replace(code, "KODE") == pages[1].text.replace(UNKNOWN, "KODE")
    assert db.scalar("SELECT count(*) FROM feedback") == 0


def test_feedback_with_a_code_counts_as_a_lookup_against_the_verify_limits(
    client: TestClient, sent: int, db: Database
) -> None:
    token = csrf(client, "/tilbakemelding")
    data = {"csrf": token, "kode": UNKNOWN, "kampanje": "999999", "usefulness": "3"}
    statuses = [client.post("/tilbakemelding", data=data).status_code for _ in range(11)]
    assert statuses == [400] * 10 + [429]
    # Recorded as /kontroll's lookups are; the 429 is not, and says nothing about the code.
    assert db.scalar("SELECT count(*) FROM events WHERE kind = 'verify_unknown'") == 10
    # One limit for both: the visitor's lookups on /kontroll are used up too.
    assert client.get("/kontroll", params={"kode": UNKNOWN}).status_code == 429
    refused = client.post("/tilbakemelding", data={**data, "kampanje": ""})
    assert refused.status_code == 429
    assert "retry-after" in refused.headers
    assert db.scalar("SELECT count(*) FROM feedback") == 0


def feedback_link(page: str) -> str:
    """The genuine page's link to the feedback form, as a browser follows it."""
    found = re.search(r'href="([^"]*/tilbakemelding\?kode=[^"]*)"', page)
    assert found is not None, page
    return html.unescape(found.group(1))


def answer_by_link(client: TestClient, link: str, **changed: str) -> Any:
    """Fill in and send the feedback form the link opens (its hidden fields as they are)."""
    form = client.get(link).text
    fields = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', form))
    return client.post("/tilbakemelding", data={**fields, "usefulness": "5", **changed})


def test_feedback_by_the_genuine_pages_link_is_not_a_second_lookup(
    client: TestClient, sent: int, sink: SmtpSink, db: Database
) -> None:
    address, code, _ = first_message(sink)
    link = feedback_link(client.get("/kontroll", params={"kode": code}).text)
    assert "bevis=" in link
    answer = answer_by_link(client, link)
    assert answer.status_code == 200, answer.text
    row = db.query_one(
        "SELECT d.address, f.usefulness FROM feedback f JOIN deliveries d ON d.id = f.delivery_id"
    )
    assert row == (address, 5)
    # The check on /kontroll was the one lookup: counted and recorded once, not twice.
    assert db.scalar("SELECT count(*) FROM events WHERE kind LIKE 'verify%'") == 1
    for _ in range(9):
        assert client.get("/kontroll", params={"kode": code}).status_code == 200
    assert client.get("/kontroll", params={"kode": code}).status_code == 429


def test_a_proof_for_another_code_or_an_old_one_is_a_lookup_as_any_other(
    client: TestClient, sent: int, sink: SmtpSink, db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    from varsel.web import site

    _, code, _ = first_message(sink)
    other = text_of(sink.messages[1].data)
    other_code = CODE.search(other)
    assert other_code is not None
    link = feedback_link(client.get("/kontroll", params={"kode": code}).text)
    proof = re.search(r"bevis=([^&]+)", link)
    assert proof is not None
    # Text that is not a proof is not echoed by the form.
    form = client.get("/tilbakemelding", params={"kode": code, "bevis": "<b>20000.x</b>"}).text
    assert 'name="bevis"' not in form
    assert "20000.x" not in form
    # The proof of one code does not stand for another, nor made up.
    made_up = ("20000.AAAA", "²." + "0" * 32)  # the second: a digit int() does not read
    for kode, bevis in ((other_code.group(0), proof.group(1)), *((code, m) for m in made_up)):
        token = csrf(client, "/tilbakemelding")
        data = {"csrf": token, "kode": kode, "bevis": bevis, "usefulness": "3"}
        assert client.post("/tilbakemelding", data=data).status_code == 200
    assert db.scalar("SELECT count(*) FROM events WHERE kind LIKE 'verify%'") == 4
    # Two days on, the page's own proof is too old: the answer is a lookup again.
    today = site._utc_day()
    monkeypatch.setattr(site, "_utc_day", lambda: today + 2)
    assert answer_by_link(client, link).status_code == 200
    assert db.scalar("SELECT count(*) FROM events WHERE kind LIKE 'verify%'") == 5
    assert db.scalar("SELECT count(*) FROM feedback") == 4


def test_numbers_a_visitor_writes_with_other_digits_are_refused_not_errors(
    client: TestClient, sent: int
) -> None:
    # "²" is a digit to str.isdigit but not to int(): once a 500, now as any other bad value.
    assert client.get("/dokument", params={"kampanje": "²"}).status_code in (200, 400, 404)
    assert client.get("/dokument/hent/²1.2.abc").status_code in (400, 404, 410)


def test_feedback_without_a_code_is_no_lookup(client: TestClient, sent: int, db: Database) -> None:
    token = csrf(client, "/tilbakemelding")
    for _ in range(10):
        page = client.post("/tilbakemelding", data={"csrf": token, "usefulness": "3"})
        assert page.status_code == 200
    assert db.scalar("SELECT count(*) FROM events WHERE kind LIKE 'verify%'") == 0
    assert client.get("/kontroll", params={"kode": UNKNOWN}).status_code == 404


def test_sub_addresses_share_one_pending_link_and_one_limit(
    client: TestClient, sent: int, sink: SmtpSink, db: Database
) -> None:
    before = len(sink.messages)
    assert request_document(client, sent, "offer@example.test").status_code == 200
    for typed in ("offer+1@example.test", "Offer+2@EXAMPLE.test"):
        page = request_document(client, sent, typed)
        assert page.status_code == 409, typed
        assert "Vi har nylig sendt en lenke til denne adressen" in page.text
    assert len(sink.messages) == before + 1
    for typed in ("offer+3@example.test", "offer+4@example.test"):
        db.execute("UPDATE document_requests SET downloaded_at = 'x'")
        assert request_document(client, sent, typed).status_code == 200
    # The e-mail goes to the address as typed.
    assert list(sink.messages[-1].rcpt_tos) == ["offer+4@example.test"]
    db.execute("UPDATE document_requests SET downloaded_at = 'x'")
    refused = request_document(client, sent, "offer+5@example.test")
    assert refused.status_code == 429
    assert "Vi har sendt så mange lenker til denne adressen det siste døgnet" in refused.text
    assert len(sink.messages) == before + 3


@pytest.mark.parametrize(
    ("lang", "said"),
    [
        ("nb", "Vi har sendt så mange lenker til adresser hos dette e-postdomenet den siste timen"),
        (
            "nn",
            "Vi har sendt så mange lenkjer til adresser hos dette e-postdomenet den siste timen",
        ),
        ("en", "We have sent so many links to addresses at this e-mail domain in the last hour"),
    ],
)
def test_an_e_mail_domain_gets_a_limited_number_of_links_an_hour(
    settings: Settings, sent: int, sink: SmtpSink, lang: str, said: str
) -> None:
    app = create_app(dataclasses.replace(settings, document_per_domain_hour=2))
    with TestClient(app, base_url="https://testserver") as c:
        for i, status in enumerate((200, 200, 429)):
            token = csrf(c, f"/dokument?kampanje={sent}&lang={lang}")
            data = {"csrf": token, "kampanje": str(sent), "address": f"n{i}@example.test"}
            page = c.post(f"/dokument?lang={lang}", data={**data, "lang": lang})
            assert page.status_code == status, page.text
        assert said in page.text
        assert f'<html lang="{lang}">' in page.text
        assert int(page.headers["retry-after"]) > 0
        # Another domain is not held up by it.
        assert request_document(c, sent, "n@annet.test").status_code == 200
    assert sorted(m.rcpt_tos[0] for m in sink.messages[-3:]) == [
        "n0@example.test",
        "n1@example.test",
        "n@annet.test",
    ]


@pytest.mark.parametrize(
    ("lang", "title", "said"),
    [
        ("nb", "Skjemaet kunne ikke leses", "Gå tilbake og send skjemaet på nytt."),
        ("nn", "Skjemaet kunne ikkje lesast", "Gå tilbake og send skjemaet på nytt."),
        ("en", "The form could not be read", "Go back and send the form again."),
    ],
)
def test_a_form_the_site_cannot_read_is_the_visitors_400_not_the_sites_error(
    client: TestClient, lang: str, title: str, said: str
) -> None:
    fields = {f"f{i}": "x" for i in range(21)}  # one more than a form may have
    page = client.post(f"/tilbakemelding?lang={lang}", data=fields)
    assert page.status_code == 400
    assert title in page.text
    assert said in page.text
    assert f'<html lang="{lang}">' in page.text
    assert "hos oss" not in page.text
    broken = client.post(
        f"/dokument?lang={lang}",
        content=b"--x\r\nnot a part",
        headers={"content-type": "multipart/form-data; boundary=x"},
    )
    assert broken.status_code == 400
    assert title in broken.text


# -- hostile input: every public route answers it, never with a server error ------------------

HOSTILE = (
    "²",  # a digit to str.isdigit, not to int()
    "١٢٣",  # Arabic-Indic digits, which int() does read
    "0" * 200,
    "9" * 40,
    "-1",
    "1e9",
    " ",
    "\x00",
    "<script>alert(1)</script>",
    "a" * 5000,
    "../../etc/passwd",
    "ÆØÅ",
    "1.2.3",
    "²1.2.3",
    "null",
    "\u202e",
    "\r\nX-Injected: 1",
)
HOSTILE_QUERY = ("kode", "kampanje", "lang", "bevis", "next", "epost")
HOSTILE_PAGES = ("/", "/kontroll", "/varsler", "/varsler.json", "/tilbakemelding", "/dokument")
HOSTILE_FORMS = {
    "/tilbakemelding": (
        "kode",
        "kampanje",
        "usefulness",
        "relevant",
        "channel",
        "comment",
        "bevis",
    ),
    "/dokument": ("kampanje", "address", "lang"),
}
# Limits off, as the benchmarks set them: every hostile value reaches the checks and the store,
# not the 429 page the tenth form of a visitor gets.
NO_LIMITS = dict.fromkeys(
    (
        "verify_per_ip",
        "verify_global_per_minute",
        "feedback_per_ip_hour",
        "feedback_global_per_minute",
        "document_per_ip_hour",
        "document_global_per_minute",
    ),
    1_000_000_000,
)


def answered(client: TestClient, method: str, url: str, **kwargs: object) -> int:
    """The status of the answer to a request."""
    return int(client.request(method, url, **kwargs).status_code)  # type: ignore[arg-type]


def test_every_page_answers_hostile_query_values(
    client: TestClient, sent: int, sink: SmtpSink
) -> None:
    errors = [
        (page, name, value, status)
        for page in HOSTILE_PAGES
        for name in HOSTILE_QUERY
        for value in HOSTILE
        if (status := answered(client, "GET", page, params={name: value})) >= 500
    ]
    # In the path, percent-encoded as a client sends it there (a NUL and a line break too).
    for value in map(functools.partial(quote, safe=""), HOSTILE):
        for path in (f"/dokument/hent/{value}", f"/avmelding/{value}"):
            status = answered(client, "GET", path)
            if status >= 500:
                errors.append((path, "", value, status))
    assert errors == []


def test_every_form_answers_hostile_field_values(
    settings: Settings, sent: int, sink: SmtpSink
) -> None:
    app = create_app(dataclasses.replace(settings, **NO_LIMITS))
    with TestClient(app, base_url="https://testserver") as client:
        assert hostile_answers(client, sent) == []


def hostile_answers(client: TestClient, sent: int) -> list[tuple[str, str, str, int]]:
    """Every form field and one-click path, hostile: those answered with a server error."""
    # Each field hostile in a form that is otherwise good, so that it is the one checked.
    good = {
        "/tilbakemelding": {"usefulness": "3"},
        "/dokument": {"kampanje": str(sent), "address": "ola@firma.test"},
    }
    errors = []
    for page, fields in HOSTILE_FORMS.items():
        token = csrf(client, f"{page}?kampanje={sent}")
        for name in fields:
            for value in HOSTILE:
                data = {**good[page], "csrf": token, name: value}
                status = answered(client, "POST", page, data=data)
                if status >= 500:
                    errors.append((page, name, value, status))
    for value in map(functools.partial(quote, safe=""), HOSTILE):
        one_click = {"List-Unsubscribe": "One-Click"}
        status = answered(client, "POST", f"/avmelding/{value}", data=one_click)
        if status >= 500:
            errors.append(("/avmelding", "", value, status))
    return errors


# -- /helse --------------------------------------------------------------------------------


def test_the_health_check_says_ok_while_the_store_answers(client: TestClient) -> None:
    answer = client.get("/helse")
    assert (answer.status_code, answer.text) == (200, "ok\n")
    assert answer.headers["cache-control"] == "no-store"
    assert answer.headers["content-type"].startswith("text/plain")
    assert client.head("/helse").status_code == 200
    assert client.post("/helse").status_code == 405


@pytest.mark.postgres
def test_the_health_check_says_503_when_the_store_went_away_and_ok_once_it_is_back(
    postgres_base: str, tmp_path: Path
) -> None:
    import uuid

    import psycopg

    # A database of this test's own, whose connections the server then refuses and ends: the
    # store is gone for the site as when PostgreSQL is down, and no other test is touched.
    name = f"varsel_health_{uuid.uuid4().hex[:8]}"
    server = postgres_base.rsplit("/", 1)[0]
    with psycopg.connect(postgres_base, autocommit=True) as admin:
        admin.execute(f"CREATE DATABASE {name}")
    try:
        settings = Settings.load(
            environ={},
            database_url=f"{server}/{name}",
            dkim_key_dir=str(tmp_path / "keys"),
            secret_key="test secret",  # noqa: S106 -- a key for this test only
        )
        with TestClient(create_app(settings), base_url="https://testserver") as client:
            assert client.get("/helse").status_code == 200
            with psycopg.connect(postgres_base, autocommit=True) as admin:
                admin.execute(f"ALTER DATABASE {name} WITH ALLOW_CONNECTIONS false")
                admin.execute(
                    "SELECT pg_terminate_backend(pid, 5000) FROM pg_stat_activity "
                    "WHERE datname = %s",
                    (name,),
                )
            down = client.get("/helse")
            with psycopg.connect(postgres_base, autocommit=True) as admin:
                admin.execute(f"ALTER DATABASE {name} WITH ALLOW_CONNECTIONS true")
            # The store is back: the next check opens a new connection.
            again = client.get("/helse")
    finally:
        with psycopg.connect(postgres_base, autocommit=True) as admin:
            admin.execute(f"DROP DATABASE {name} WITH (FORCE)")
    assert (down.status_code, down.text) == (503, "lageret svarer ikke\n")
    assert "postgresql" not in down.text
    assert (again.status_code, again.text) == (200, "ok\n")


# -- a store that goes away under a request ---------------------------------------------


@contextlib.contextmanager
def own_database(postgres_base: str, tmp_path: Path) -> Iterator[tuple[str, Settings]]:
    """A PostgreSQL database of the test's own (its name, and settings for a site on it):
    its connections can be refused and ended with no other test touched."""
    import psycopg

    name = f"varsel_outage_{uuid.uuid4().hex[:8]}"
    server = postgres_base.rsplit("/", 1)[0]
    with psycopg.connect(postgres_base, autocommit=True) as admin:
        admin.execute(f"CREATE DATABASE {name}")
    try:
        yield (
            name,
            Settings.load(
                environ={},
                database_url=f"{server}/{name}",
                dkim_key_dir=str(tmp_path / "keys"),
                secret_key="test secret",  # noqa: S106 -- a key for this test only
            ),
        )
    finally:
        with psycopg.connect(postgres_base, autocommit=True) as admin:
            admin.execute(f"DROP DATABASE {name} WITH (FORCE)")


def assert_try_again_shortly(page: Any, title: str) -> None:
    assert page.status_code == 503
    assert int(page.headers["retry-after"]) > 0
    assert f"<h1>{title}</h1>" in page.text
    assert page.headers["cache-control"] == "no-store"
    assert page.headers["x-frame-options"] == "DENY"
    assert "postgresql" not in page.text.lower()
    assert "varsel_outage" not in page.text


@pytest.mark.postgres
def test_a_request_whose_store_connection_is_ended_under_it_gets_503_and_the_next_one_works(
    postgres_base: str, tmp_path: Path
) -> None:
    import psycopg

    with (
        own_database(postgres_base, tmp_path) as (name, settings),
        TestClient(create_app(settings), base_url="https://testserver") as client,
    ):
        assert client.get("/varsler").status_code == 200
        store = f"{postgres_base.rsplit('/', 1)[0]}/{name}"
        with psycopg.connect(store) as locker, psycopg.connect(store, autocommit=True) as admin:
            # The register's query waits for this lock: the request is in flight on its
            # connection when the server ends it, as a restart of PostgreSQL does.
            locker.execute("LOCK TABLE campaigns IN ACCESS EXCLUSIVE MODE")
            answers: list[Any] = []
            request = threading.Thread(
                target=lambda: answers.append(client.get("/varsler", params={"lang": "en"}))
            )
            request.start()
            waiting: list[tuple[Any, ...]] = []
            for _ in range(500):
                waiting = admin.execute(
                    "SELECT pid FROM pg_stat_activity WHERE datname = %s "
                    "AND wait_event_type = 'Lock'",
                    (name,),
                ).fetchall()
                if waiting:
                    break
                time.sleep(0.01)
            assert len(waiting) == 1
            admin.execute("SELECT pg_terminate_backend(%s, 5000)", waiting[0])
            request.join(timeout=10)
            locker.rollback()
        assert_try_again_shortly(answers[0], "Try again shortly")
        assert '<html lang="en">' in answers[0].text
        # The store is there: the next request works, on a new connection.
        assert client.get("/varsler").status_code == 200


@pytest.mark.postgres
def test_while_the_store_is_down_pages_say_503_in_the_visitors_language_and_work_once_it_is_back(
    postgres_base: str, tmp_path: Path
) -> None:
    import psycopg

    with (
        own_database(postgres_base, tmp_path) as (name, settings),
        TestClient(create_app(settings), base_url="https://testserver") as client,
    ):
        assert client.get(f"/kontroll?kode={UNKNOWN}").status_code == 404
        with psycopg.connect(postgres_base, autocommit=True) as admin:
            admin.execute(f"ALTER DATABASE {name} WITH ALLOW_CONNECTIONS false")
            admin.execute(
                "SELECT pg_terminate_backend(pid, 5000) FROM pg_stat_activity WHERE datname = %s",
                (name,),
            )
        try:
            lookup = client.get(f"/kontroll?kode={UNKNOWN}&lang=nn")  # the group commit's
            register = client.get("/varsler")  # a pooled connection's
            client.cookies.set("__Host-konsoll", "x" * 43)  # a session to look up
            console = client.get("/konsoll/kampanjer")
            client.cookies.clear()
        finally:
            with psycopg.connect(postgres_base, autocommit=True) as admin:
                admin.execute(f"ALTER DATABASE {name} WITH ALLOW_CONNECTIONS true")
        assert_try_again_shortly(lookup, "Prøv igjen om litt")
        assert '<html lang="nn">' in lookup.text
        assert_try_again_shortly(register, "Prøv igjen om litt")
        assert "Tenesta er mellombels utilgjengeleg." in lookup.text
        assert "Tjenesten er midlertidig utilgjengelig." in register.text
        assert_try_again_shortly(console, "Prøv igjen om litt")
        # Back: the site finds the store again by itself.
        assert client.get(f"/kontroll?kode={UNKNOWN}").status_code == 404
        assert client.get("/varsler").status_code == 200
