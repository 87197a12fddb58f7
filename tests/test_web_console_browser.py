"""The console in real Chromium, served by uvicorn on loopback over a real store.

Two operators take a campaign from criteria to sent (to the in-process SMTP server), four eyes
hold, an edit voids an approval, a viewer is refused every write route, the sign-in needs the
code and locks, a tampered audit entry is caught, and axe-core finds nothing on any page.
One store, server and set of signed-in browser contexts serve the whole module: each account
can sign in only once per 30-second TOTP step.
"""

from __future__ import annotations

import email
import email.policy
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import dkim
import pyotp
import pytest
from click.testing import CliRunner

from browser import LiveServer, axe_check
from conftest import BRREG
from helpers import PASSWORD, dns_for, next_code
from test_web_browser import off_loop
from test_web_public import CAMPAIGN, FAST
from varsel import audit, feedback, segment, segment_criteria
from varsel.accounts import Role, add_user, get_user
from varsel.approval import approval_state, approve, fingerprint
from varsel.campaign import create_campaign
from varsel.channel.smtp_relay import RelayConfig
from varsel.cli import cli
from varsel.config import Settings
from varsel.db import Database, connect
from varsel.registry import import_dump
from varsel.send_gate import send_checked
from varsel.signin import confirm_totp
from varsel.suppression import SuppressionKind, add_manual
from varsel.testing import SmtpSink
from varsel.web import create_app
from varsel.web.console import console
from varsel.web.console_auth import OPEN
from varsel.web.templating import gettext

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

TIMEOUT = 10_000  # ms
# The console under a path of the authority's site, as it is deployed: every test's address,
# and every link the pages give, starts with it.
PUBLIC = "https://www.politiet.no/varsel"
ROOT = "/varsel"
ACCOUNTS = {  # name: (role, e-mail)
    "ada": ("admin", "ada@politiet.example.test"),
    "kari": ("author", "kari@politiet.example.test"),
    "berit": ("approver", "berit@politiet.example.test"),
    "vera": ("viewer", None),
    "lars": ("author", None),  # signs in wrong until locked
}


@dataclass
class World:
    """A store with the registry sample, accounts, two campaigns, and the console serving it."""

    settings: Settings
    db: Database
    sink: SmtpSink
    folder: Path
    secrets: dict[str, str]
    sent: int  # a campaign approved, sent and answered
    ready: int  # a campaign kari wrote, waiting for approval

    def campaign(self, author: str = "kari") -> int:
        """A new campaign from the test definition, written by `author`."""
        path = self.folder / "kampanje.toml"
        return create_campaign(self.db, self.settings, path, created_by=author).campaign.id


def enrolled(db: Database, settings: Settings, name: str, role: str, email: str | None) -> str:
    """An account with its app enrolled; returns the TOTP secret."""
    enrolment = add_user(db, settings, name, Role(role), PASSWORD, actor="test", email=email)
    confirm_totp(db, settings, name, PASSWORD, pyotp.TOTP(enrolment.secret).now())
    return enrolment.secret


def build_world(folder: Path, sink: SmtpSink) -> World:
    """The store the console tests and the screenshots run on."""
    settings = Settings.load(
        environ={},
        database_url=str(folder / "varsel.db"),
        dkim_key_dir=str(folder / "keys"),
        secret_key="console browser test secret",  # noqa: S106 -- a key for this test only
        smtp_url=sink.url,
        allow_test_domains=True,
        password_memory_kib=8192,  # real argon2id, with less memory than production's
        public_base_url=PUBLIC,
    )
    db = connect(settings.database_url)
    import_dump(db, BRREG / "enheter-sample.json")
    import_dump(db, BRREG / "underenheter-sample.json")
    secrets = {n: enrolled(db, settings, n, *ACCOUNTS[n]) for n in ACCOUNTS}
    (folder / "rad.pdf").write_bytes(b"%PDF-1.4 sikkerhetsrad\n")
    (folder / "kampanje.toml").write_text(
        CAMPAIGN.replace('name = "NSR"', 'name = "NSR"\nreply_to = "post@nsr-org.no"'), "utf-8"
    )
    world = World(settings, db, sink, folder, secrets, 0, 0)
    world.sent = world.campaign()
    approve(db, settings, world.sent, get_user(db, "berit"))
    relay = RelayConfig.from_url(sink.url)
    off_loop(
        lambda: send_checked(db, settings, world.sent, actor="kari", relay=relay, options=FAST)
    )
    feedback.store(
        db,
        feedback.Feedback(world.sent, None, 4, True, feedback.Channel.EMAIL, "Nyttig, takk.", "nb"),
    )
    world.ready = world.campaign()
    # Neither is in the registry sample: the campaigns the tests make later are unchanged.
    add_manual(db, SuppressionKind.UNIT, "971526920", actor="berit", note="ringte 3. mars")
    add_manual(db, SuppressionKind.ADDRESS, "post@xn--blbr-roah.no", actor="berit")
    return world


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    with SmtpSink() as sink:
        made = build_world(tmp_path_factory.mktemp("console"), sink)
        try:
            yield made
        finally:
            made.db.close()


@pytest.fixture(scope="module")
def server(world: World) -> Iterator[LiveServer]:
    running = LiveServer(create_app(world.settings)).start()
    try:
        yield running
    finally:
        running.stop()


def site(server: LiveServer) -> str:
    """The console's site on the live server: its address with the root."""
    return server.url + ROOT


def new_page(chromium: Browser) -> Page:
    context = chromium.new_context(locale="nb-NO", viewport={"width": 1200, "height": 900})
    context.set_default_timeout(TIMEOUT)
    return context.new_page()


def sign_in(page: Page, base: str, name: str, code: str) -> None:
    """Fill in and send the sign-in form."""
    page.goto(f"{base}/konsoll/logg-inn")
    page.get_by_label("Brukernavn").fill(name)
    page.get_by_label("Passord").fill(PASSWORD)
    page.get_by_label("Engangskode fra appen").fill(code)
    page.get_by_role("button", name="Logg inn").click()
    page.wait_for_load_state()


@pytest.fixture(scope="module")
def as_user(chromium: Browser, world: World, server: LiveServer) -> Iterator[Callable[[str], Page]]:
    """A browser page signed in as the account, one per account for the whole module."""
    pages: dict[str, Page] = {}

    def get(name: str) -> Page:
        if name not in pages:
            page = new_page(chromium)
            sign_in(page, site(server), name, next_code(world.secrets[name]))
            assert page.locator("h1").inner_text() == "Oversikt"
            pages[name] = page
        return pages[name]

    yield get
    for page in pages.values():
        page.context.close()


def text(page: Page, selector: str) -> str:
    return page.locator(selector).inner_text().strip()


# -- the story: criteria to sent ---------------------------------------------------------


def test_an_author_and_an_approver_take_a_campaign_from_criteria_to_sent(
    as_user: Callable[[str], Page], world: World, server: LiveServer
) -> None:
    kari = as_user("kari")
    kari.goto(site(server) + "/konsoll")
    kari.get_by_role("link", name="Nytt utvalg").click()
    expected = segment.preview(world.db, segment_criteria.Criteria(police_districts=("oslo",)))
    # htmx: the count changes as the box is ticked, without sending the form.
    kari.get_by_label("Oslo politidistrikt").check()
    kari.locator("#telling h2").filter(has_text=f"{expected.units} virksomheter").wait_for()
    assert kari.url == site(server) + "/konsoll/utvalg"
    rows = kari.locator("#telling table").first.locator("tr").all_inner_texts()
    assert rows == [
        f"Brukbar e-post\t{expected.reachability['email']}",
        f"Bare telefon\t{expected.reachability['phone_only']}",
        f"Bare postadresse\t{expected.reachability['postal_only']}",
    ]

    kari.get_by_role("link", name="Lag kampanje av dette utvalget").click()
    assert kari.get_by_label("Oslo politidistrikt").is_checked()
    for label, value in {
        "Navn på kampanjen": "Innbrudd i jula",
        "Avsenderadresse": "sikkerhet@nsr-org.no",
        "Avsendernavn": "NSR",
        "Organisasjon": "Oslo politidistrikt og NSR",
        "Svaradresse (valgfri)": "post@nsr-org.no",
        "Dokumentets tittel": "Råd før jul",
        "Dokumentets adresse (https)": "https://www.politiet.no/rad.pdf",
        "Adressen til kontrollsiden (https)": "https://www.politiet.no/varsel",
    }.items():
        kari.get_by_label(label, exact=True).fill(value)
    kari.get_by_role("button", name="Lag kampanjen").click()
    match = re.fullmatch(re.escape(site(server)) + r"/konsoll/kampanjer/(\d+)\?laget=1", kari.url)
    assert match is not None, kari.url
    cid = int(match.group(1))
    assert text(kari, "h1") == f"Kampanje {cid}: Innbrudd i jula"
    deliveries = world.db.query(
        "SELECT address FROM deliveries WHERE campaign_id = ? AND state = 'queued' ORDER BY id",
        (cid,),
    )
    assert len(deliveries) > 1

    # The author alone cannot send: the button waits for an approval, and the page says why.
    assert kari.get_by_role("button", name="Send kampanjen").count() == 0
    assert text(kari, "#send-av") == (
        "«Send kampanjen» vises når en godkjenner som ikke skrev kampanjen, har godkjent den "
        "slik den er nå."
    )
    assert kari.get_by_role("button", name="Godkjenn kampanjen").count() == 0

    berit = as_user("berit")
    berit.goto(f"{site(server)}/konsoll/kampanjer/{cid}")
    digest = berit.locator("input[name=digest]").get_attribute("value")
    berit.get_by_role("button", name="Godkjenn kampanjen").click()
    assert text(berit, ".notice") == "Kampanjen er godkjent."
    assert text(berit, ".ok-text").startswith("Godkjent av berit ")

    before = len(world.sink.messages)
    kari.goto(f"{site(server)}/konsoll/kampanjer/{cid}")
    kari.get_by_role("button", name="Send kampanjen").click()
    assert text(kari, ".notice") == "Sendingen er startet."
    # The progress panel polls (htmx) until the sender is done; the page is not reloaded.
    kari.locator("#fremdrift .status").filter(has_text="Ferdig").wait_for(timeout=30_000)
    got = world.sink.wait_for(before + len(deliveries), 10)[before:]
    assert sorted(m.rcpt_tos[0] for m in got) == sorted(a for (a,) in deliveries)
    assert text(kari, "#fremdrift .count-sent dd") == str(len(deliveries))
    [send] = audit.entries(world.db, action=audit.Action.CAMPAIGN_SEND, object=f"campaign:{cid}")
    assert (send.actor, send.data["approved_by"], send.data["digest"]) == ("kari", "berit", digest)


def test_an_edit_after_approval_voids_it(
    as_user: Callable[[str], Page], world: World, server: LiveServer
) -> None:
    cid = world.campaign()
    approve(world.db, world.settings, cid, get_user(world.db, "berit"))
    kari = as_user("kari")
    kari.goto(f"{site(server)}/konsoll/kampanjer/{cid}/maler")
    kari.get_by_label("Emne").first.fill("Viktig: sikkerhetsråd før jul")
    kari.get_by_role("button", name="Forhåndsvis uten å lagre").click()
    subject = kari.locator("article[lang=nb] .subject").text_content()
    assert subject == "Emne: Viktig: sikkerhetsråd før jul"
    kari.get_by_role("button", name="Lagre og sjekk").click()
    assert text(kari, ".notice") == (
        "Malene er lagret. En godkjenning gitt før endringen gjelder ikke lenger."
    )
    assert text(kari, "#lint-tittel") == "Sjekk før sending (lint)"

    kari.get_by_role("link", name="Tilbake til kampanjen").click()
    assert text(kari, ".warning-text") == (
        "Godkjenningen fra berit gjelder ikke lenger. Endret etter godkjenningen: Malene."
    )
    # Not offered again until someone approves; posted by hand, the server refuses it.
    assert kari.get_by_role("button", name="Send kampanjen").count() == 0
    csrf = kari.locator("input[name=csrf]").first.get_attribute("value") or ""
    assert post(kari, f"/konsoll/kampanjer/{cid}/send", {"csrf": csrf}) == 409
    assert world.db.query(
        "SELECT DISTINCT state FROM deliveries WHERE campaign_id = ?", (cid,)
    ) == [("queued",)]


def test_the_author_cannot_approve_their_own_campaign(
    world: World, server: LiveServer, as_user: Callable[[str], Page]
) -> None:
    cid = world.campaign(author="berit")
    berit = as_user("berit")
    berit.goto(f"{site(server)}/konsoll/kampanjer/{cid}")
    assert text(berit, "section[aria-labelledby=godkjenning] .hint") == (
        "Du skrev denne kampanjen og kan ikke godkjenne den selv."
    )
    assert berit.get_by_role("button", name="Godkjenn kampanjen").count() == 0
    # The form is not offered; posted by hand with the right digest, the server refuses it.
    csrf = berit.locator("input[name=csrf]").first.get_attribute("value") or ""
    digest = fingerprint(world.db, cid).digest
    assert (
        post(berit, f"/konsoll/kampanjer/{cid}/godkjenn", {"csrf": csrf, "digest": digest}) == 400
    )
    assert approval_state(world.db, cid).approval is None


def test_a_test_message_goes_signed_to_the_authors_own_address(
    as_user: Callable[[str], Page], world: World, server: LiveServer
) -> None:
    kari = as_user("kari")
    kari.goto(f"{site(server)}/konsoll/kampanjer/{world.ready}/maler")
    before = len(world.sink.messages)
    kari.get_by_label("Språk for testmeldingen").select_option("nn")
    kari.get_by_role("button", name="Send test til meg (kari@politiet.example.test)").click()
    assert text(kari, ".notice") == "Testmeldingen er sendt til kari@politiet.example.test."
    [mail] = world.sink.wait_for(before + 1, 10)[before:]
    assert mail.rcpt_tos == ("kari@politiet.example.test",)
    assert dkim.verify(mail.data, dnsfunc=dns_for(world.settings))
    message = email.message_from_bytes(mail.data, policy=email.policy.default)
    assert message["Content-Language"] == "nn"


def test_pause_resume_and_cancel_from_the_campaign_page(
    as_user: Callable[[str], Page], world: World, server: LiveServer
) -> None:
    cid = world.campaign()
    kari = as_user("kari")
    kari.goto(f"{site(server)}/konsoll/kampanjer/{cid}")
    # Pause is offered only while the campaign is sending (here: as if a sender had started).
    assert kari.get_by_role("button", name="Pause").count() == 0
    with world.db.transaction():
        world.db.execute("UPDATE campaigns SET status = 'sending' WHERE id = ?", (cid,))
    kari.goto(f"{site(server)}/konsoll/kampanjer/{cid}")
    seen = []
    for button in ("Pause", "Gjenoppta", "Avbryt for godt"):
        if button == "Avbryt for godt":
            kari.get_by_label("Jeg forstår at kampanjen ikke kan sendes igjen").check()
        kari.get_by_role("button", name=button).click()
        seen.append(text(kari, "dl.facts .status"))
    assert seen == ["Pauset", "Klar", "Avbrutt"]
    assert kari.get_by_role("button", name="Send kampanjen").count() == 0
    assert [e.action for e in audit.entries(world.db, object=f"campaign:{cid}")][-3:] == [
        "campaign_pause",
        "campaign_resume",
        "campaign_cancel",
    ]
    assert world.db.query(
        "SELECT DISTINCT state FROM deliveries WHERE campaign_id = ?", (cid,)
    ) == [("cancelled",)]


def test_an_approver_downloads_the_unreached_and_the_export_is_audited(
    as_user: Callable[[str], Page], world: World, server: LiveServer
) -> None:
    berit = as_user("berit")
    berit.goto(f"{site(server)}/konsoll/kampanjer/{world.sent}/dekning")
    assert text(berit, "h1") == f"Dekning for kampanje {world.sent}"
    with berit.expect_download() as download:
        berit.get_by_role("button", name="Ikke nådd som CSV").click()
    assert download.value.suggested_filename == f"ikke-naadd-{world.sent}.csv"
    assert download.value.url == f"{site(server)}/konsoll/kampanjer/{world.sent}/eksport"
    lines = Path(download.value.path()).read_text("utf-8-sig").splitlines()  # BOM for Excel
    assert lines[0].split(";")[:3] == ["organisasjonsnummer", "navn", "organisasjonsform"]
    [entry] = audit.entries(
        world.db, action=audit.Action.PERSONAL_DATA_EXPORT, actor="berit", limit=1
    )
    assert (entry.object, entry.data["rows"], entry.data["format"]) == (
        f"campaign:{world.sent}",
        len(lines) - 1,
        "csv",
    )
    with berit.expect_download() as report:
        berit.get_by_role("link", name="Evalueringsrapporten (HTML)").click()
    assert report.value.suggested_filename == f"rapport-{world.sent}.html"
    assert "Nyttig, takk." in Path(report.value.path()).read_text("utf-8")


def test_a_viewer_sees_coverage_but_no_export_or_action(
    as_user: Callable[[str], Page], world: World, server: LiveServer
) -> None:
    vera = as_user("vera")
    vera.goto(f"{site(server)}/konsoll/kampanjer/{world.ready}")
    assert vera.locator("main button").count() == 0
    vera.goto(f"{site(server)}/konsoll/kampanjer/{world.sent}/dekning")
    assert text(vera, "h1") == f"Dekning for kampanje {world.sent}"
    assert vera.locator("main button").count() == 0


# -- every route checks the role and the token ------------------------------------------------


def post(page: Page, path: str, fields: dict[str, str]) -> int:
    """POST a form from the page with fetch (same origin, the page's cookies); the status."""
    status: int = page.evaluate(
        """async ([path, fields]) => {
            const r = await fetch(path, {method: 'POST', body: new URLSearchParams(fields),
                                          redirect: 'manual'});
            return r.status;
        }""",
        [ROOT + path, fields],
    )
    return status


def get(page: Page, path: str) -> int:
    status: int = page.evaluate(
        "async path => (await fetch(path, {redirect: 'manual'})).status", ROOT + path
    )
    return status


def concrete_paths(path: str, world: World) -> list[str]:
    """The route's path with its parameters filled in: every user action, one campaign."""
    from varsel.web.console import _USER_ACTIONS

    path = path.replace("{cid:int}", str(world.ready)).replace("{name}", "kari")
    if "{action}" in path:
        return [path.replace("{action}", action) for action in _USER_ACTIONS]
    return [path]


def test_every_write_route_refuses_a_viewer_and_a_form_without_its_token(
    as_user: Callable[[str], Page], world: World, server: LiveServer
) -> None:
    writes = [r for r in console.routes if r.write and r.role is not OPEN]
    assert len(writes) == 18  # the enumeration found them (a new one is checked below too)
    vera, ada = as_user("vera"), as_user("ada")
    vera.goto(site(server) + "/konsoll")
    ada.goto(site(server) + "/konsoll")
    vera_token = vera.locator("input[name=csrf]").first.get_attribute("value") or ""
    last = audit.entries(world.db, limit=1)[-1].seq
    refused = []
    for route in writes:
        for path in concrete_paths(route.path, world):
            if route.role is not Role.VIEWER:  # sign-out is every role's own business
                refused.append((path, post(vera, path, {"csrf": vera_token})))
            refused.append((path, post(ada, path, {})))
            refused.append((path, post(ada, path, {"csrf": vera_token})))
    assert refused
    assert [r for r in refused if r[1] != 403] == []
    assert [e for e in audit.entries(world.db) if e.seq > last and e.actor in ("ada", "vera")] == []
    assert get_user(world.db, "kari").active


def test_every_page_a_viewer_may_not_see_answers_403(
    as_user: Callable[[str], Page], world: World, server: LiveServer
) -> None:
    reads = [r for r in console.routes if not r.write and r.role is not OPEN]
    vera = as_user("vera")
    vera.goto(site(server) + "/konsoll")
    answers = {path: get(vera, path) for r in reads for path in concrete_paths(r.path, world)}
    allowed = {path: 200 for r in reads if r.role is Role.VIEWER for path in
               concrete_paths(r.path, world)}  # fmt: skip
    assert answers == {path: allowed.get(path, 403) for path in answers}


# -- signing in --------------------------------------------------------------------------------


def test_sign_in_needs_the_code_and_five_wrong_codes_lock_the_account(
    page: Page, world: World, server: LiveServer
) -> None:
    page.set_default_timeout(TIMEOUT)
    # One answer for a wrong code, a lock and an unknown name (the audit log tells them apart).
    wrong = (
        "Feil brukernavn, passord eller engangskode – eller kontoen er låst etter 5 feil på rad. "
        "En låst konto kan brukes igjen etter 15 minutter, eller når en administrator låser den "
        "opp."
    )
    for _ in range(5):
        sign_in(page, site(server), "lars", "123456")
        assert text(page, "#innlogging-feil") == wrong
    sign_in(page, site(server), "lars", next_code(world.secrets["lars"]))
    assert text(page, "#innlogging-feil") == wrong
    assert text(page, "h1") == "Logg inn"
    failed = audit.entries(world.db, action=audit.Action.SIGN_IN_FAILED, object="user:lars")
    reasons = [e.data["reason"] for e in failed]
    assert reasons[-6:] == ["code"] * 5 + ["locked"]


def test_enrolment_shows_the_qr_code_in_the_browser(
    page: Page, world: World, server: LiveServer
) -> None:
    enrolment = add_user(world.db, world.settings, "nora", Role.VIEWER, PASSWORD, actor="ada")
    page.goto(site(server) + "/konsoll/logg-inn")
    page.get_by_role("link", name="Ny konto? Registrer autentiseringsappen først").click()
    page.get_by_label("Brukernavn").fill("nora")
    page.get_by_label("Passord").fill(PASSWORD)
    page.get_by_role("button", name="Vis koden").click()
    assert page.locator("figure.qr svg").is_visible()
    assert text(page, "code.secret") == enrolment.secret
    axe_check(page)
    page.get_by_label("Passord").fill(PASSWORD)
    page.get_by_label("Engangskode fra appen").fill(pyotp.TOTP(enrolment.secret).now())
    page.get_by_role("button", name="Bekreft").click()
    assert text(page, ".notice") == (
        "Appen er registrert. Logg inn med passordet og en ny kode fra appen."
    )
    assert get_user(world.db, "nora").enrolled


# -- the audit log -------------------------------------------------------------------------------


def test_a_tampered_audit_entry_is_caught_by_the_command_and_shown_in_the_console(
    as_user: Callable[[str], Page], world: World, server: LiveServer
) -> None:
    seq, detail = world.db.query_one(
        "SELECT seq, detail FROM audit_log WHERE action = 'user_add' ORDER BY seq LIMIT 1"
    ) or (0, "")
    with world.db.transaction():
        world.db.execute(
            "UPDATE audit_log SET detail = ? WHERE seq = ?", ('{"role":"viewer"}', seq)
        )
    try:
        result = CliRunner().invoke(cli, ["--db", world.settings.database_url, "audit", "verify"])
        assert result.exit_code == 1
        assert result.output.strip() == (
            f"Revisjonsloggen er brutt ved oppføring {seq}: innholdet er endret etter at det "
            "ble skrevet."
        )
        berit = as_user("berit")
        berit.goto(site(server) + "/konsoll/logg")
        assert text(berit, "#kjede h2") == "Revisjonsloggen er brutt"
        assert berit.locator("#kjede p").first.inner_text() == (
            f"Oppføring {seq} stemmer ikke: innholdet er endret etter at det ble skrevet"
        )
        axe_check(berit)
    finally:
        with world.db.transaction():
            world.db.execute("UPDATE audit_log SET detail = ? WHERE seq = ?", (detail, seq))
    assert audit.verify(world.db).ok


# -- accessibility ---------------------------------------------------------------------------------


def tour(page: Page, base: str, lang: str, world: World) -> Iterator[str]:
    """Every console page an administrator sees, in one language; yields a name at each stop."""

    def t(message: str, **values: Any) -> str:
        return gettext(lang, message) % values if values else gettext(lang, message)

    def go(path: str, heading: str, **values: Any) -> None:
        page.goto(f"{base}{path}{'&' if '?' in path else '?'}lang={lang}")
        assert page.locator("h1").inner_text() == t(heading, **values), page.url
        assert page.locator("html").get_attribute("lang") == lang

    go("/konsoll", "Oversikt")
    yield "oversikt"
    go("/konsoll/utvalg", "Nytt utvalg")
    yield "utvalg"
    go("/konsoll/utvalg?politi=oslo&ansatte=2", "Nytt utvalg")
    page.locator("#telling h2").wait_for()
    yield "utvalg-telling"
    go("/konsoll/kampanjer/ny?politi=oslo", "Ny kampanje")
    yield "kampanje-ny"
    go(f"/konsoll/kampanjer/{world.ready}", "Kampanje %(id)s: %(name)s", id=world.ready,
       name="Test")  # fmt: skip
    yield "kampanje"
    go(f"/konsoll/kampanjer/{world.sent}", "Kampanje %(id)s: %(name)s", id=world.sent, name="Test")
    yield "kampanje-sendt"
    go(f"/konsoll/kampanjer/{world.ready}/maler", "Maler for kampanje %(id)s", id=world.ready)
    page.get_by_role("button", name=t("Kjør sjekken (lint)")).click()
    page.locator("#lint-tittel").wait_for()
    yield "maler"
    go(f"/konsoll/kampanjer/{world.sent}/dekning", "Dekning for kampanje %(id)s", id=world.sent)
    yield "dekning"
    go("/konsoll/brukere", "Brukere")
    yield "brukere"
    go("/konsoll/logg", "Revisjonslogg")
    yield "logg"
    go("/konsoll/sperreliste", "Sperrelisten")
    yield "sperreliste"
    page.locator("#finn").fill("blåbær")  # stored as post@xn--blbr-roah.no
    page.get_by_role("button", name=t("Søk")).click()
    page.wait_for_url("**/sperreliste/finn**")
    shown = t("%(num)s av %(total)s passer til «%(search)s», nyeste først", num=1, total=2,
              search="blåbær")  # fmt: skip
    assert page.locator("caption").inner_text() == shown
    assert page.locator("tbody td").nth(1).inner_text() == "post@blåbær.no"
    yield "sperreliste-sok"
    page.locator("#address").fill("post@firma,no")  # refused: nothing is added
    page.get_by_role("button", name=t("Sett på sperrelisten"), exact=True).click()
    page.locator("#address-feil").wait_for()
    yield "sperreliste-feil"
    go("/konsoll/kampanjer/999999", "Siden finnes ikke")
    yield "feil"


def anonymous_tour(page: Page, base: str, lang: str) -> Iterator[str]:
    """The pages before signing in."""
    page.goto(f"{base}/konsoll/logg-inn?lang={lang}")
    assert page.locator("h1").inner_text() == gettext(lang, "Logg inn")
    yield "logg-inn"
    page.goto(f"{base}/konsoll/logg-inn?lang={lang}")
    page.locator("#name").fill("ingen")
    page.locator("#password").fill("feil passord her")
    page.locator("#code").fill("123456")
    page.locator("main button[type=submit]").click()
    page.locator("#innlogging-feil").wait_for()
    yield "logg-inn-feil"
    page.goto(f"{base}/konsoll/ta-i-bruk?lang={lang}")
    assert page.locator("h1").inner_text() == gettext(lang, "Ta kontoen i bruk")
    yield "ta-i-bruk"


STOPS = [
    "oversikt",
    "utvalg",
    "utvalg-telling",
    "kampanje-ny",
    "kampanje",
    "kampanje-sendt",
    "maler",
    "dekning",
    "brukere",
    "logg",
    "sperreliste",
    "sperreliste-sok",
    "sperreliste-feil",
    "feil",
]
MAIN_STOPS = {"oversikt", "utvalg-telling", "kampanje", "maler", "dekning"}


@pytest.mark.parametrize("lang", ["nb", "nn", "en"])
def test_every_console_page_passes_axe(
    as_user: Callable[[str], Page], world: World, server: LiveServer, page: Page, lang: str
) -> None:
    ada = as_user("ada")
    stops = []
    for stop in tour(ada, site(server), lang, world):
        if lang == "nb" or stop in MAIN_STOPS:
            axe_check(ada)
        stops.append(stop)
    assert stops == STOPS
    for _ in anonymous_tour(page, site(server), lang):
        axe_check(page)


def test_the_tours_cover_every_console_template() -> None:
    folder = Path(__file__).resolve().parent.parent / "src/varsel/web/templates/console"
    pages = {p.stem for p in folder.glob("*.html") if not p.stem.startswith("_")}
    shown = {
        "base", "dashboard", "segment", "segment_count", "campaign_new", "campaign", "progress",
        "editor", "coverage", "users", "audit", "suppressions", "problem", "sign_in", "enrol",
    }  # fmt: skip
    assert pages == shown


def test_the_console_loads_nothing_from_elsewhere_and_runs_no_inline_script(
    as_user: Callable[[str], Page], world: World, server: LiveServer
) -> None:
    ada = as_user("ada")
    requests: list[str] = []
    errors: list[str] = []
    ada.on("request", lambda r: requests.append(r.url))
    ada.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    ada.goto(f"{site(server)}/konsoll/utvalg?politi=oslo")
    ada.get_by_label("Sør-Øst politidistrikt").check()
    ada.wait_for_load_state("networkidle")
    assert all(url.startswith(site(server) + "/") for url in requests), requests
    assert f"{site(server)}/static/htmx.min.js" in requests
    assert any(url.startswith(f"{site(server)}/konsoll/utvalg/telling?") for url in requests)
    assert errors == []  # a CSP refusal (inline style or script) would show here


def test_htmx_is_the_pinned_release() -> None:
    import hashlib

    static = Path(__file__).resolve().parent.parent / "src/varsel/web/static/htmx.min.js"
    # htmx.org 2.0.11 from npm (dist/htmx.min.js); see docs/operators.md.
    assert hashlib.sha256(static.read_bytes()).hexdigest() == (
        "d6fdc75f204e6bdefa99b69bf1e6d4ac69b8a364f77929f45c13476b4000f717"
    )
