"""The public pages in real Chromium, served by uvicorn on loopback over a real store.

The reader's whole story, end to end, and axe-core (WCAG 2.1 AA) on every page and state in
Bokmål, Nynorsk and English. `tour` walks the pages; scripts/screenshots.py walks it too.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import email
import email.policy
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import httpx
import pytest

from browser import LiveServer, axe_check, axe_violations
from helpers import UNKNOWN
from test_web_public import CAMPAIGN, CODE, FAST, PDF, text_of
from varsel import documents, ratelimit
from varsel.campaign import create_campaign
from varsel.channel.smtp_relay import RelayConfig
from varsel.config import Settings
from varsel.db import Database, connect
from varsel.registry import import_dump
from varsel.sender import send_campaign
from varsel.testing import ReceivedMessage, SmtpSink
from varsel.web import create_app
from varsel.web.document_views import address_limit
from varsel.web.site import secret_of
from varsel.web.templating import gettext

if TYPE_CHECKING:
    from playwright.sync_api import Page

PUBLIC = "https://www.politiet.no/varsel"  # the site's and the campaign's public address
OFFICIAL = "https://www.politiet.no"  # the authority's site: the live server stands in for it
T = TypeVar("T")


def off_loop(work: Callable[[], T]) -> T:
    """Run work on another thread: Playwright's sync API keeps an event loop on this one."""
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(work).result()


@dataclass(frozen=True)
class Story:
    """A sent campaign as the tour needs it: a real message's code and links."""

    campaign_id: int
    address: str  # the first recipient
    code: str
    unsubscribe: str  # the path of the first message's unsubscribe link
    download: str  # the path of a document link issued to tur@example.test
    document_file: Path


FULL = "full@example.test"  # an address whose links for the day are used up (publish)


def settings_for(folder: Path, database_url: str, sink: SmtpSink) -> Settings:
    """Settings for a site on loopback that sends to the sink."""
    return Settings.load(
        environ={},
        database_url=database_url,
        dkim_key_dir=str(folder / "keys"),
        secret_key="browser test secret",  # noqa: S106 -- a key for this test only
        smtp_url=sink.url,
        allow_test_domains=True,
        public_base_url=PUBLIC,  # the pages live under /varsel, as on the authority's site
    )


def received(message: ReceivedMessage) -> tuple[str, str, str]:
    """(recipient, code, unsubscribe path) of a campaign message, from its text."""
    text = text_of(message.data)
    code = CODE.search(text)
    unsubscribe = re.search(re.escape(PUBLIC) + r"(/avmelding/\S+)", text)
    assert code is not None, text
    assert unsubscribe is not None, text
    return message.rcpt_tos[0], code.group(0), unsubscribe.group(1)


def send_one(db: Database, settings: Settings, folder: Path, sink: SmtpSink) -> int:
    """Create the test campaign from its TOML file and send it to the sink; returns its id."""
    (folder / "rad.pdf").write_bytes(PDF)
    (folder / "c.toml").write_text(CAMPAIGN, "utf-8")
    campaign_id = create_campaign(db, settings, folder / "c.toml").campaign.id
    relay = RelayConfig.from_url(sink.url)
    off_loop(lambda: send_campaign(db, settings, campaign_id, relay=relay, options=FAST))
    return campaign_id


def publish(db: Database, settings: Settings, folder: Path, sink: SmtpSink, brreg: Path) -> Story:
    """Import the real registry sample, send a campaign, and collect what a reader gets."""
    import_dump(db, brreg / "enheter-sample.json")
    campaign_id = send_one(db, settings, folder, sink)
    address, code, unsubscribe = received(sink.messages[0])
    issued = documents.issue(
        db, secret_of(settings), campaign_id, "tur@example.test", valid_seconds=3600
    )
    assert isinstance(issued, documents.Issued)
    # An address that has had its links for the day, for the tour's stop at that refusal.
    key = ratelimit.hashed_key(secret_of(settings), FULL)
    for _ in range(settings.document_per_address_day):
        ratelimit.consume(db, [(address_limit(settings), key)])
    return Story(
        campaign_id,
        address,
        code,
        unsubscribe,
        f"/dokument/hent/{issued.token}",
        folder / "rad.pdf",
    )


# -- the tour of every page and state -------------------------------------------------


def tour(page: Page, base: str, lang: str, story: Story) -> Iterator[str]:
    """Walk every public page and state in one language, by the links and forms a reader uses.

    Yields a name at each stop, with the page loaded and its heading checked.
    """

    def t(text: str, **values: Any) -> str:
        return gettext(lang, text) % values if values else gettext(lang, text)

    def at(path: str) -> str:
        return f"{base}{path}{'&' if '?' in path else '?'}lang={lang}"

    def shows(heading: str, **values: Any) -> None:
        assert page.locator("h1").inner_text() == t(heading, **values), page.url
        assert page.locator("html").get_attribute("lang") == lang, page.url

    def submit() -> None:
        page.locator("main button[type=submit]").click()
        page.wait_for_load_state()

    page.goto(at("/"))
    shows("Sikkerhetsvarsel til virksomheter")
    yield "forside"

    page.get_by_role("link", name=t("Sjekk en melding"), exact=True).click()
    shows("Sjekk om en melding fra oss er ekte")
    yield "kontroll"
    submit()
    shows("Sjekk om en melding fra oss er ekte")
    assert (
        page.locator("#kode-feil")
        .inner_text()
        .endswith(t("Skriv inn kontrollkoden fra e-posten, brevet eller Altinn-meldingen."))
    )
    yield "kontroll-tom-kode"
    # A code with one symbol wrong (the check symbol catches it): a typo, not fraud.
    page.locator("#kode").fill(story.code[:-1] + ("A" if story.code[-1] != "A" else "B"))
    submit()
    wrong = t("Koden er ikke skrevet riktig. Sjekk at du har skrevet av alle tegnene.")
    assert page.locator("#kode-feil").inner_text().endswith(wrong)
    assert page.locator("#kode").get_attribute("aria-invalid") == "true"
    yield "kontroll-feil-kode"

    # Typed the way people do: no dashes, small letters, an O for a zero.
    page.locator("#kode").fill(story.code.replace("-", " ").lower().replace("0", "o"))
    submit()
    shows("E-posten er ekte")
    yield "kontroll-ekte"

    page.get_by_role("link", name=t("Gi oss tilbakemelding om denne e-posten")).click()
    shows("Gi tilbakemelding")
    yield "tilbakemelding"
    submit()
    shows("Gi tilbakemelding")
    assert page.locator("#usefulness-feil").is_visible()
    yield "tilbakemelding-feil"
    page.locator("#usefulness-4").check()
    submit()
    shows("Takk for tilbakemeldingen")
    yield "tilbakemelding-takk"

    page.goto(at(f"/kontroll?kode={UNKNOWN}"))
    shows("Vi kjenner ikke denne koden")
    yield "kontroll-ukjent"

    page.goto(at("/varsler"))
    shows("Ekte utsendelser")
    yield "varsler"

    page.get_by_role("link", name=t("Få dokumentet på e-post")).click()
    shows("Få «%(title)s»", title="Sikkerhetsråd")
    yield "dokument"
    page.locator("#address").fill("ikke en adresse")
    submit()
    assert page.locator("#address").get_attribute("aria-invalid") == "true"
    yield "dokument-feil"
    page.locator("#address").fill(f"leser-{lang}@example.test")
    submit()
    shows("Sjekk e-posten din")
    yield "dokument-sendt"
    page.goto(at(f"/dokument?kampanje={story.campaign_id}"))
    page.locator("#address").fill(f"leser-{lang}@example.test")
    submit()
    assert page.locator("#address-feil").is_visible()
    yield "dokument-venter"
    page.goto(at(f"/dokument?kampanje={story.campaign_id}"))
    page.locator("#address").fill(FULL)
    submit()
    shows("Ingen flere lenker til denne adressen nå")
    yield "dokument-adressen-full"

    page.goto(at("/dokument"))
    shows("Få dokumentet")
    yield "dokument-velg"

    page.goto(at("/dokument/hent/1.2.feil"))
    shows("Lenken virker ikke")
    yield "dokument-lenke-ugyldig"

    # A document the site has no file for: the page gives the official address to type.
    hidden = story.document_file.with_suffix(".borte")
    story.document_file.rename(hidden)
    try:
        page.goto(at(story.download))
        shows("Sikkerhetsråd")
    finally:
        hidden.rename(story.document_file)
    yield "dokument-adresse"

    page.goto(at(story.unsubscribe))
    shows("Meld av sikkerhetsråd")
    yield "avmelding"
    page.locator("#scope-organisation").check()
    submit()
    shows("Du er meldt av")
    yield "avmeldt"

    page.goto(at("/finnes-ikke"))
    shows("Siden finnes ikke")
    yield "ikke-funnet"

    page.goto(at("/tilbakemelding"))
    page.context.clear_cookies()  # as if the form came from another site or an old tab
    page.locator("#usefulness-3").check()
    submit()
    shows("Skjemaet kunne ikke sendes")
    yield "skjema-avvist"

    for _ in range(20):
        page.goto(at(f"/kontroll?kode={UNKNOWN}"))
        if page.locator("h1").inner_text() == t("For mange forsøk"):
            break
    shows("For mange forsøk")
    yield "for-mange-forsok"


# -- fixtures -------------------------------------------------------------------------


@pytest.fixture
def settings(tmp_path: Path, db_url: str, sink: SmtpSink) -> Settings:
    return settings_for(tmp_path, db_url, sink)


@pytest.fixture
def story(db: Database, settings: Settings, tmp_path: Path, sink: SmtpSink, brreg: Path) -> Story:
    return publish(db, settings, tmp_path, sink, brreg)


@pytest.fixture
def server(live_server: Callable[..., LiveServer], settings: Settings) -> LiveServer:
    # As `varsel serve` runs it: behind a proxy on loopback that names the visitor.
    return live_server(create_app(settings), proxy_headers=True, forwarded_allow_ips="127.0.0.1")


def local(url: str, server: LiveServer) -> str:
    """An address from a message, its path whole, on the live server standing in for the
    official site."""
    assert url.startswith(PUBLIC), url
    return server.url + url.removeprefix(OFFICIAL)


# -- the reader's story ---------------------------------------------------------------


def test_a_reader_verifies_gives_feedback_gets_the_document_and_unsubscribes(
    page: Page,
    server: LiveServer,
    story: Story,
    sink: SmtpSink,
    db: Database,
    settings: Settings,
    tmp_path: Path,
) -> None:
    page.goto(local(PUBLIC, server))
    page.get_by_role(
        "link", name="Sjekk kontrollkoden i en e-post, et brev eller en Altinn-melding"
    ).click()
    page.get_by_label("Koden fra e-posten, brevet eller Altinn-meldingen").fill(
        " ".join(story.code.replace("-", "").lower())
    )
    page.get_by_role("button", name="Sjekk koden").click()
    assert page.locator("h1").inner_text() == "E-posten er ekte"
    units = db.query(
        "SELECT r.name, r.orgnr FROM deliveries d JOIN delivery_units du ON du.delivery_id = d.id "
        "JOIN recipients r ON r.campaign_id = d.campaign_id AND r.orgnr = du.orgnr "
        "WHERE d.code = ? ORDER BY r.orgnr",
        (story.code.replace("-", ""),),
    )
    assert units
    assert page.locator("ul.units li").all_inner_texts() == [
        f"{name} (org.nr. {orgnr[:3]} {orgnr[3:6]} {orgnr[6:]})" for name, orgnr in units
    ]
    # The From line as the reader's mail program shows it.
    assert page.locator("dd").first.inner_text() == "NSR <sikkerhet@nsr-org.no>"

    page.get_by_role("link", name="Gi oss tilbakemelding om denne e-posten").click()
    page.get_by_label("5").check()
    page.get_by_label("Ja").check()
    page.get_by_label("Hvordan vil dere helst få slik informasjon?").select_option("altinn")
    page.get_by_label("Kommentar").fill("Nyttig, men send det heller i Altinn.")
    page.get_by_role("button", name="Send tilbakemelding").click()
    assert page.locator("h1").inner_text() == "Takk for tilbakemeldingen"
    assert db.query(
        "SELECT f.usefulness, f.relevant, f.channel, f.comment, d.address FROM feedback f "
        "JOIN deliveries d ON d.id = f.delivery_id"
    ) == [(5, True, "altinn", "Nyttig, men send det heller i Altinn.", story.address)]

    page.go_back()
    page.go_back()  # back at the answer: pages are never cached, so the lookup counts again
    page.get_by_role("link", name="Få dokumentet tilsendt på e-post").click()
    page.get_by_label("E-postadressen din").fill(story.address.upper())
    before = len(sink.messages)
    page.get_by_role("button", name="Send meg lenken").click()
    assert page.locator("main p").first.inner_text() == (
        f"En e-post med lenke for å laste ned «Sikkerhetsråd» er sendt til {story.address}."
    )
    [mail] = sink.wait_for(before + 1, 10)[before:]
    link = re.search(re.escape(PUBLIC) + r"/dokument/hent/\S+", text_of(mail.data))
    assert link is not None
    with page.expect_download() as download, contextlib.suppress(Exception):
        page.goto(local(link.group(0), server))  # a download, not a page: goto gives up
    assert Path(download.value.path()).read_bytes() == PDF
    assert download.value.suggested_filename == "rad.pdf"

    # The mail provider's one-click unsubscribe (RFC 8058): a POST without cookies.
    message = email.message_from_bytes(sink.messages[0].data, policy=email.policy.default)
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    https = re.search(r"<(https://[^>]+)>", str(message["List-Unsubscribe"]))
    assert https is not None
    response = httpx.post(
        local(https.group(1), server),
        content=b"List-Unsubscribe=One-Click",
        headers={"content-type": "application/x-www-form-urlencoded"},
        follow_redirects=False,
    )
    assert (response.status_code, response.text) == (200, "Unsubscribed.\n")
    assert "set-cookie" not in response.headers

    readers = ("verify_ok", "feedback", "document_requested", "document_downloaded", "unsubscribed")
    assert db.query(f"SELECT kind FROM events WHERE kind IN {readers} ORDER BY id") == [
        ("document_requested",),  # the link the story fixture issued for the tour
        # The feedback form, opened from the genuine page, carries the code with that page's
        # proof of this lookup: no second one.
        ("verify_ok",),
        ("feedback",),
        ("verify_ok",),
        ("document_requested",),
        ("document_downloaded",),
        ("unsubscribed",),
    ]

    # The next campaign skips the address at once.
    before = len(sink.messages)
    second = send_one(db, settings, tmp_path, sink)
    assert (
        db.scalar(
            "SELECT state FROM deliveries WHERE campaign_id = ? AND address = ?",
            (second, story.address),
        )
        == "suppressed"
    )
    sent_to = [m.rcpt_tos[0] for m in sink.messages[before:]]
    assert sent_to
    assert story.address not in sent_to


# -- accessibility --------------------------------------------------------------------


@pytest.fixture
def sqlite_story(tmp_path: Path, sink: SmtpSink, brreg: Path) -> Iterator[tuple[Settings, Story]]:
    settings = settings_for(tmp_path, str(tmp_path / "varsel.db"), sink)
    with connect(settings.database_url) as db:
        yield settings, publish(db, settings, tmp_path, sink, brreg)


STOPS = [
    "forside",
    "kontroll",
    "kontroll-tom-kode",
    "kontroll-feil-kode",
    "kontroll-ekte",
    "tilbakemelding",
    "tilbakemelding-feil",
    "tilbakemelding-takk",
    "kontroll-ukjent",
    "varsler",
    "dokument",
    "dokument-feil",
    "dokument-sendt",
    "dokument-venter",
    "dokument-adressen-full",
    "dokument-velg",
    "dokument-lenke-ugyldig",
    "dokument-adresse",
    "avmelding",
    "avmeldt",
    "ikke-funnet",
    "skjema-avvist",
    "for-mange-forsok",
]


@pytest.mark.parametrize("lang", ["nb", "nn", "en"])
def test_every_page_and_state_passes_axe(
    page: Page,
    live_server: Callable[..., LiveServer],
    sqlite_story: tuple[Settings, Story],
    lang: str,
) -> None:
    settings, story = sqlite_story
    server = live_server(create_app(settings))
    stops = []
    for stop in tour(page, local(PUBLIC, server), lang, story):
        axe_check(page)
        stops.append(stop)
    assert stops == STOPS


def test_the_tour_covers_every_template() -> None:
    templates = Path(__file__).resolve().parent.parent / "src" / "varsel" / "web" / "templates"
    pages = {p.stem for p in templates.glob("*.html") if not p.stem.startswith("_")} - {"base"}
    # Which template each stop shows is checked by its heading; this keeps the list honest.
    shown_by_tour = {
        "home", "verify", "genuine", "unknown", "feedback", "thanks", "register", "document",
        "document_sent", "document_url", "document_link", "document_limited", "unsubscribe",
        "unsubscribed", "error", "limited",
    }  # fmt: skip
    assert pages == shown_by_tour


def test_the_browser_follows_no_redirect_and_loads_nothing_from_elsewhere(
    page: Page, server: LiveServer, story: Story
) -> None:
    requests: list[str] = []
    page.on("request", lambda r: requests.append(r.url))
    site = local(PUBLIC, server)
    for path in ("/", "/kontroll", f"/kontroll?kode={story.code}", "/varsler", "/tilbakemelding"):
        response = page.goto(site + path)
        assert response is not None
        assert response.request.redirected_from is None
    assert requests
    # The stylesheet too: everything comes from under the site's root.
    assert all(url.startswith(site + "/") for url in requests), requests
    assert f"{site}/static/site.css" in requests


def test_limits_count_the_visitor_the_proxy_names(server: LiveServer, story: Story) -> None:
    def lookup(visitor: str) -> int:
        return httpx.get(
            f"{local(PUBLIC, server)}/kontroll?kode={UNKNOWN}", headers={"x-forwarded-for": visitor}
        ).status_code

    assert [lookup("192.0.2.1") for _ in range(11)] == [404] * 10 + [429]
    assert lookup("192.0.2.2") == 404
    # IPv6: by the visitor's /64, whichever of its addresses the proxy names.
    assert [lookup(f"2001:db8:7:8::{i:x}") for i in range(1, 12)] == [404] * 10 + [429]
    assert lookup("2001:db8:7:9::1") == 404


def test_axe_check_fails_on_a_page_with_violations(page: Page) -> None:
    page.set_content('<html><body><input type="text"><p style="color:#bbb">grå</p></body></html>')
    found = {v["id"] for v in axe_violations(page)}
    assert {"html-has-lang", "label", "color-contrast"} <= found
    with pytest.raises(AssertionError, match="label"):
        axe_check(page)


def test_the_keyboard_goes_skip_link_menus_then_the_form(page: Page, server: LiveServer) -> None:
    page.goto(local(PUBLIC, server) + "/kontroll?lang=en")
    order = []
    for _ in range(9):
        page.keyboard.press("Tab")
        order.append(page.evaluate("document.activeElement.id || document.activeElement.innerText"))
    assert order == [
        "Skip to content",
        "Security notices to businesses",
        "Bokmål",
        "Nynorsk",
        "Check a message",
        "Genuine mailings",
        "Give feedback",
        "kode",
        "Check the code",
    ]
    page.goto(local(PUBLIC, server) + "/kontroll?lang=en")
    page.keyboard.press("Tab")
    page.keyboard.press("Enter")
    assert page.evaluate("document.activeElement.id") == "innhold"
