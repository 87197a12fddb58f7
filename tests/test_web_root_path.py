"""The public pages under a path of the authority's site (https://www.politiet.no/varsel).

The real app over real SQLite with a campaign sent to a real SMTP sink: every link, form and
the stylesheet start with the root, and a request answers the same whether the proxy passes the
prefix on or strips it.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from helpers import UNKNOWN
from test_web_public import CAMPAIGN, CODE, FAST, PDF, text_of
from varsel.campaign import create_campaign
from varsel.channel.smtp_relay import RelayConfig
from varsel.config import Settings
from varsel.db import connect
from varsel.registry import import_dump
from varsel.sender import send_campaign
from varsel.testing import SmtpSink
from varsel.web import create_app
from varsel.web.site import root_of

PUBLIC = "https://www.politiet.no/varsel"  # the settings' and the campaign's public address
ROOT = "/varsel"
# Every address a page gives the browser: links, forms, the stylesheet, scripts, images.
ADDRESS = re.compile(r'\b(?:href|action|src)="([^"]*)"')
TOKEN = re.compile(r'name="csrf" value="[^"]+"')


def settings_for(tmp_path: Path, sink: SmtpSink, **changes: object) -> Settings:
    values: dict[str, object] = {
        "database_url": str(tmp_path / "varsel.db"),
        "dkim_key_dir": str(tmp_path / "keys"),
        "secret_key": "test secret",  # a key for this test only
        "smtp_url": sink.url,
        "allow_test_domains": True,
        "public_base_url": PUBLIC,
    }
    return Settings.load(environ={}, **(values | changes))


@pytest.fixture
def settings(tmp_path: Path, sink: SmtpSink) -> Settings:
    return settings_for(tmp_path, sink, verify_per_ip=1000)


@pytest.fixture
def sent(settings: Settings, tmp_path: Path, sink: SmtpSink, brreg: Path) -> int:
    """A campaign sent to the sink; returns its id."""
    (tmp_path / "rad.pdf").write_bytes(PDF)
    (tmp_path / "c.toml").write_text(CAMPAIGN, "utf-8")
    with connect(settings.database_url) as db:
        import_dump(db, brreg / "enheter-sample.json")
        campaign_id = create_campaign(db, settings, tmp_path / "c.toml").campaign.id
        relay = RelayConfig.from_url(sink.url)
        send_campaign(db, settings, campaign_id, relay=relay, options=FAST)
    return campaign_id


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings), base_url="https://testserver") as c:
        yield c


def message_text(sink: SmtpSink) -> str:
    return text_of(sink.messages[0].data)


def code_of(sink: SmtpSink) -> str:
    found = CODE.search(message_text(sink))
    assert found is not None
    return found.group(0)


def unsubscribe_path(sink: SmtpSink) -> str:
    found = re.search(re.escape(PUBLIC) + r"(/avmelding/\S+)", message_text(sink))
    assert found is not None
    return ROOT + found.group(1)


def pages(sent: int, sink: SmtpSink) -> list[str]:
    """A path of every kind of page (under the root, as the links give them)."""
    return [
        "/",
        "/kontroll",
        "/kontroll?kode=",
        f"/kontroll?kode={code_of(sink)}",
        f"/kontroll?kode={UNKNOWN}",
        "/varsler",
        "/tilbakemelding",
        f"/tilbakemelding?kode={code_of(sink)}",
        "/dokument",
        f"/dokument?kampanje={sent}",
        "/dokument/hent/1.2.feil",
        unsubscribe_path(sink).removeprefix(ROOT),
        "/finnes-ikke",
    ]


def addresses(html: str) -> list[str]:
    return [a for a in ADDRESS.findall(html) if not a.startswith(("#", "https://"))]


def test_the_root_is_the_path_of_the_public_base_url() -> None:
    assert root_of("https://www.politiet.no/varsel") == "/varsel"
    assert root_of("https://www.politiet.no/varsel/") == "/varsel"
    assert root_of("https://www.politiet.no/a/b/") == "/a/b"
    assert root_of("https://varsel.example.no") == ""
    assert root_of("https://varsel.example.no/") == ""


@pytest.mark.parametrize("lang", ["nb", "nn", "en"])
def test_every_link_form_and_stylesheet_starts_with_the_root(
    client: TestClient, sent: int, sink: SmtpSink, lang: str
) -> None:
    for path in pages(sent, sink):
        page = client.get(ROOT + path, params={"lang": lang})
        assert page.headers["content-type"].startswith("text/html"), path
        found = addresses(page.text)
        assert f'<link rel="stylesheet" href="{ROOT}/static/site.css">' in page.text, path
        assert f'action="{ROOT}/' in page.text or "<form" not in page.text, path
        assert found, path
        for address in found:
            assert address.startswith(ROOT + "/"), (path, address)
        # The language links lead back to this page, under the root.
        for other in {"nb", "nn", "en"} - {lang}:
            assert re.search(
                rf'href="{ROOT}{re.escape(path.split("?")[0])}\?[^"]*lang={other}"',
                page.text.replace("&amp;", "&"),
            ), (path, other)


def test_every_address_a_page_gives_answers(client: TestClient, sent: int, sink: SmtpSink) -> None:
    seen: set[str] = set()
    for path in pages(sent, sink):
        for written in addresses(client.get(ROOT + path).text):
            address = written.replace("&amp;", "&")
            if address in seen or "/dokument/hent/" in address:
                continue
            seen.add(address)
            assert client.get(address).status_code in (200, 404), address
    assert f"{ROOT}/static/site.css" in seen
    assert f"{ROOT}/varsler.json" in seen
    assert client.get(f"{ROOT}/static/site.css").headers["content-type"].startswith("text/css")


def test_a_request_answers_the_same_with_the_prefix_or_without(
    client: TestClient, sent: int, sink: SmtpSink
) -> None:
    client.get(ROOT + "/tilbakemelding")  # the form cookie, so both get the same token
    for path in [*pages(sent, sink), "/varsler.json"]:
        prefixed, stripped = client.get(ROOT + path), client.get(path)
        assert prefixed.status_code == stripped.status_code, path
        assert prefixed.headers == stripped.headers, path
        assert TOKEN.sub("", prefixed.text) == TOKEN.sub("", stripped.text), path
    assert client.get(ROOT).text == client.get(ROOT + "/").text
    assert client.get(ROOT + "x/kontroll").status_code == 404  # /varselx is not under the root


def test_a_real_code_is_verified_under_the_prefix(
    client: TestClient, sent: int, sink: SmtpSink
) -> None:
    # The message tells the reader the address to type: it is the one that answers.
    assert f"{PUBLIC}/kontroll" in message_text(sink)
    form = client.get(ROOT + "/kontroll")
    assert f'<form method="get" action="{ROOT}/kontroll">' in form.text
    page = client.get(ROOT + "/kontroll", params={"kode": code_of(sink).lower()})
    assert page.status_code == 200
    assert "E-posten er ekte" in page.text
    # With the page's proof of this lookup, so that answering does not count the code again.
    assert f'href="{ROOT}/tilbakemelding?kode={code_of(sink)}&amp;bevis=' in page.text
    assert f'href="{ROOT}/dokument?kampanje={sent}"' in page.text
    assert f'href="{ROOT}/kontroll?kode={code_of(sink).lower()}&amp;lang=en"' in page.text
    # The second lookup of the shape comes from the compiled slots: the same page.
    again = client.get(ROOT + "/kontroll", params={"kode": code_of(sink).lower()})
    assert again.text == page.text


def test_the_unknown_and_limit_pages_from_slots_carry_the_root(
    tmp_path: Path, sink: SmtpSink, sent: int
) -> None:
    settings = settings_for(tmp_path, sink, verify_per_ip=2)
    with TestClient(create_app(settings), base_url="https://testserver") as client:
        answers = [client.get(f"{ROOT}/kontroll?kode={UNKNOWN}&lang=nn") for _ in range(4)]
    assert [a.status_code for a in answers] == [404, 404, 429, 429]
    for answer in answers:
        assert f'<link rel="stylesheet" href="{ROOT}/static/site.css">' in answer.text
        assert f'href="{ROOT}/kontroll?kode={UNKNOWN}&amp;lang=en"' in answer.text
        assert all(a.startswith(ROOT + "/") for a in addresses(answer.text)), answer.text
    assert answers[0].text == answers[1].text
    # Each refused try counts too, so the second refusal may name a longer wait.
    assert re.sub(r"\d+", "N", answers[2].text) == re.sub(r"\d+", "N", answers[3].text)


def test_the_forms_post_under_the_prefix_and_the_mailed_links_work(
    client: TestClient, sent: int, sink: SmtpSink
) -> None:
    form = client.get(f"{ROOT}/dokument?kampanje={sent}")
    assert f'<form method="post" action="{ROOT}/dokument" novalidate>' in form.text
    token = re.search(r'name="csrf" value="([^"]+)"', form.text)
    assert token is not None
    before = len(sink.messages)
    sent_page = client.post(
        f"{ROOT}/dokument",
        data={"csrf": token.group(1), "lang": "nb", "kampanje": str(sent), "address": "a@b.test"},
    )
    assert sent_page.status_code == 200, sent_page.text
    [mail] = sink.wait_for(before + 1, 10)[before:]
    link = re.search(re.escape(PUBLIC) + r"(/dokument/hent/\S+)", text_of(mail.data))
    assert link is not None
    download = client.get(ROOT + link.group(1))
    assert (download.status_code, download.content) == (200, PDF)

    feedback = client.get(f"{ROOT}/tilbakemelding")
    assert f'<form method="post" action="{ROOT}/tilbakemelding" novalidate>' in feedback.text
    thanks = client.post(
        f"{ROOT}/tilbakemelding",
        data={"csrf": token.group(1), "lang": "nb", "usefulness": "4"},
    )
    assert "Takk for tilbakemeldingen" in thanks.text

    # The human unsubscribe form posts to its own address; one-click posts to the mailed URL.
    unsubscribe = client.get(unsubscribe_path(sink))
    assert f'<form method="post" action="{unsubscribe_path(sink)}" novalidate>' in unsubscribe.text
    one_click = client.post(
        unsubscribe_path(sink),
        content=b"List-Unsubscribe=One-Click",
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert (one_click.status_code, one_click.text) == (200, "Unsubscribed.\n")


def test_a_site_without_a_path_keeps_its_links_at_the_top(tmp_path: Path, sink: SmtpSink) -> None:
    settings = settings_for(tmp_path, sink, public_base_url="https://varsel.example.no/")
    with TestClient(create_app(settings), base_url="https://testserver") as client:
        page = client.get("/kontroll?lang=en")
        assert client.get(ROOT + "/kontroll").status_code == 404
    assert '<link rel="stylesheet" href="/static/site.css">' in page.text
    assert '<form method="get" action="/kontroll">' in page.text
    assert 'href="/kontroll?lang=nn"' in page.text
