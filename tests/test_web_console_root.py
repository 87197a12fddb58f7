"""The operators' console under the site's root (https://www.politiet.no/varsel/konsoll).

The real app over real SQLite, a real SMTP sink for the sends: an administrator signs in under
the prefix and goes through every main page and form; every href, action, src, hx-get and
Location starts with the root, and the same flows work on a site with no root.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import cast
from urllib.parse import quote

import httpx
import pytest
from starlette.applications import Starlette
from starlette.testclient import TestClient

from helpers import PASSWORD, console_campaign, console_settings, next_code, operator
from varsel.config import Settings
from varsel.db import Database, connect
from varsel.testing import SmtpSink
from varsel.web.console_send import Senders

SITES = {"/varsel": "https://www.politiet.no/varsel", "": "https://varsel.example.no"}
# Every address a page gives the browser: links, forms, stylesheets, scripts, htmx requests.
ADDRESS = re.compile(r'\s(?:href|action|src|hx-get)="([^"]*)"')
LINK = re.compile(r'\s(?:href|src|hx-get)="([^"]*)"')
GET_FORM = re.compile(r'<form method="get" action="([^"]*)"')
HIDDEN = re.compile(r'<input type="hidden" name="([^"]+)" value="([^"]*)">')
TEXT_FIELD = re.compile(r'<input type="(?:text|email|url)" id="\w+" name="(\w+)" value="([^"]*)"')


@pytest.fixture(params=list(SITES), ids=["root", "no-root"])
def root(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def settings(tmp_path: Path, sink: SmtpSink, root: str) -> Settings:
    return console_settings(
        tmp_path, str(tmp_path / "varsel.db"), smtp_url=sink.url, public_base_url=SITES[root]
    )


@pytest.fixture
def db(settings: Settings) -> Iterator[Database]:
    with connect(settings.database_url) as database:
        yield database


@pytest.fixture
def campaign(db: Database, settings: Settings, tmp_path: Path, brreg: Path) -> int:
    """A campaign kari wrote on the registry sample; its id."""
    return console_campaign(db, settings, tmp_path, brreg, created_by="kari")


def addresses(html: str, pattern: re.Pattern[str] = ADDRESS) -> list[str]:
    """The page's addresses of the site (not in-page anchors), as the browser reads them."""
    return [a.replace("&amp;", "&") for a in pattern.findall(html) if not a.startswith("#")]


def assert_under(root: str, html: str, where: str) -> list[str]:
    """Every address the page gives starts with the root (then the console or its static files)."""
    found = addresses(html)
    assert found or "<html" not in html, where  # a whole page has some; an htmx fragment may not
    for address in found:
        assert address.startswith((f"{root}/konsoll", f"{root}/static/")), (where, address)
    return found


def form(html: str, action: str) -> dict[str, str]:
    """The hidden fields of the page's form posting to `action` (which must be there)."""
    found = re.search(
        rf'<form method="post" action="{re.escape(action)}"[^>]*>(.*?)</form>', html, re.S
    )
    assert found is not None, (action, html)
    return dict(HIDDEN.findall(found.group(1)))


def post(client: TestClient, page: str, to: str, **fields: str) -> httpx.Response:
    """Send the form of `page` that posts to `to`, with its hidden fields and `fields`."""
    html = client.get(page).text
    return client.post(to, data=form(html, to) | fields, follow_redirects=False)


def see_other(root: str, answer: httpx.Response, location: str) -> str:
    """The answer is a 303 to `location` under the root; returns it."""
    assert (answer.status_code, answer.headers.get("location")) == (303, root + location), (
        answer.text
    )
    return root + location


def sign_in(client: TestClient, root: str, secret: str, asked: str) -> None:
    """Ask for a page, get sent to the sign-in form, sign in, and come back to it."""
    first = client.get(root + asked, follow_redirects=False)
    sign_in_page = see_other(root, first, f"/konsoll/logg-inn?neste={quote(root + asked, '')}")
    page = client.get(sign_in_page).text
    assert_under(root, page, sign_in_page)
    assert f'<input type="hidden" name="next" value="{root}{asked}">' in page.replace("&amp;", "&")
    fields = form(page, f"{root}/konsoll/logg-inn")
    data = fields | {"name": "ada", "password": PASSWORD, "code": next_code(secret)}
    answer = client.post(f"{root}/konsoll/logg-inn", data=data, follow_redirects=False)
    see_other(root, answer, asked)
    # __Host-: HTTPS, this host, and Path=/ (which the prefix is under): the only path allowed.
    cookie = {part.strip() for part in answer.headers["set-cookie"].split(";")}
    assert {"Path=/", "Secure", "HttpOnly", "SameSite=strict"} <= cookie
    assert any(part.startswith("__Host-konsoll=") for part in cookie)


def crawl(client: TestClient, root: str, start: list[str]) -> set[str]:
    """Every page reachable from `start` by links, htmx requests and GET forms; each must
    answer and give only addresses under the root. Returns the addresses seen."""
    seen: set[str] = set()
    todo = list(start)
    while todo:
        address = todo.pop()
        if address in seen:
            continue
        seen.add(address)
        answer = client.get(address, follow_redirects=False)
        assert answer.status_code == 200, (address, answer.status_code)
        if not answer.headers["content-type"].startswith("text/html"):
            continue
        if "content-disposition" in answer.headers:  # the report: a file, not a page
            continue
        assert_under(root, answer.text, address)
        todo += addresses(answer.text, LINK)
        todo += [a.replace("&amp;", "&") for a in GET_FORM.findall(answer.text)]
    return seen


def test_an_administrator_goes_through_the_console_under_the_root(
    client: TestClient, db: Database, settings: Settings, root: str, campaign: int, sink: SmtpSink
) -> None:
    secret = operator(db, settings, "ada", "admin")
    with db.transaction():
        db.execute("UPDATE users SET email = 'ada@politiet.example.test' WHERE name = 'ada'")
    sign_in(client, root, secret, "/konsoll/utvalg?politi=oslo")
    k = f"{root}/konsoll"
    seen = crawl(client, root, [k, f"{k}/utvalg?politi=oslo", f"{k}/kampanjer/ny?politi=oslo"])
    for page in (
        k,
        f"{k}/utvalg",
        f"{k}/utvalg/telling",  # the count's htmx request (htmx adds the form's fields)
        f"{k}/kampanjer/ny?politi=oslo",  # the count's link to a new campaign
        f"{k}/kampanjer/{campaign}",
        f"{k}/kampanjer/{campaign}/maler",
        f"{k}/kampanjer/{campaign}/dekning",
        f"{k}/kampanjer/{campaign}/rapport",
        f"{k}/brukere",
        f"{k}/logg",
        f"{k}?lang=nn",
        f"{k}?lang=en",
        f"{root}/static/site.css",
        f"{root}/static/console.css",
        f"{root}/static/htmx.min.js",
    ):
        assert page in seen, (page, sorted(seen))

    # A new campaign from the builder's criteria, as the form has it.
    new = client.get(f"{k}/kampanjer/ny?politi=oslo").text
    fields = dict(TEXT_FIELD.findall(new)) | {"name": "Innbrudd i jula", "politi": "oslo"}
    answer = post(client, f"{k}/kampanjer/ny?politi=oslo", f"{k}/kampanjer/ny", **fields)
    assert answer.status_code == 303, answer.text
    made = re.fullmatch(rf"{re.escape(k)}/kampanjer/(\d+)\?laget=1", answer.headers["location"])
    assert made is not None, answer.headers["location"]

    # The editor: a preview is a page, a test message a redirect, lint a page.
    editor = f"{k}/kampanjer/{campaign}/maler"
    preview = post(client, editor, editor, action="preview")
    assert preview.status_code == 200
    assert_under(root, preview.text, "preview")
    saved = post(client, editor, editor, action="save")
    assert (saved.status_code, "Malene er lagret." in saved.text) == (200, True)
    assert_under(root, saved.text, "save")
    lint = post(client, editor, f"{k}/kampanjer/{campaign}/lint")
    assert_under(root, lint.text, "lint")
    tested = post(client, editor, f"{k}/kampanjer/{campaign}/testsending", language="nn")
    see_other(root, tested, f"/konsoll/kampanjer/{campaign}/maler?melding=test")
    sink.wait_for(1, 10)

    # Four eyes, send; cancel the other one (pause is offered only while a send runs, see
    # test_web_console_campaigns).
    page = f"{k}/kampanjer/{campaign}"
    approved = post(client, page, f"{page}/godkjenn")
    see_other(root, approved, f"/konsoll/kampanjer/{campaign}?melding=approved")
    assert_under(root, client.get(approved.headers["location"]).text, "approved")
    answer = post(client, page, f"{page}/send")
    see_other(root, answer, f"/konsoll/kampanjer/{campaign}?melding=sending")
    senders: Senders = cast(Starlette, client.app).state.senders
    senders.join(30)
    assert_under(root, client.get(page).text, "sent")
    other = f"{k}/kampanjer/{made.group(1)}"
    cancelled = post(client, other, f"{other}/avbryt", bekreft="ja")
    see_other(root, cancelled, f"/konsoll/kampanjer/{made.group(1)}?melding=avbryt")
    export = post(client, f"{page}/dekning", f"{page}/eksport", format="csv")
    assert export.headers["content-type"] == "text/csv; charset=utf-8"

    # Accounts: the page that tells where a new account is taken into use names it.
    added = post(
        client,
        f"{k}/brukere",
        f"{k}/brukere",
        name="kari",
        role="author",
        password="et langt passord 1",  # noqa: S106
    )
    shown = client.get(see_other(root, added, "/konsoll/brukere?endret=ny&bruker=kari")).text
    assert f"«Ta kontoen i bruk» ({k}/ta-i-bruk)." in shown
    assert_under(root, shown, "added")
    role = post(client, f"{k}/brukere", f"{k}/brukere/kari/rolle", role="viewer")
    shown = client.get(see_other(root, role, "/konsoll/brukere?endret=rolle&bruker=kari")).text
    assert "kari har nå rollen Leser." in shown
    assert_under(root, shown, "role")

    # Signing out lands on the sign-in page under the root, and the cookie is gone.
    out = post(client, k, f"{k}/logg-ut")
    see_other(root, out, "/konsoll/logg-inn?ut=1")
    assert "Path=/" in out.headers["set-cookie"]
    assert "__Host-konsoll" not in client.cookies
    assert_under(root, client.get(out.headers["location"]).text, "signed out")


def test_a_redirect_keeps_the_root_and_the_language(
    client: TestClient, db: Database, settings: Settings, root: str
) -> None:
    k = f"{root}/konsoll"
    htmx = client.get(
        f"{k}/utvalg/telling?politi=oslo", headers={"HX-Request": "true"}, follow_redirects=False
    )
    assert htmx.headers["hx-redirect"] == (
        f"{k}/logg-inn?neste={quote(f'{k}/utvalg/telling?politi=oslo', '')}"
    )
    secret = operator(db, settings, "ada", "admin")
    token = form(client.get(f"{k}/logg-inn?lang=nn").text, f"{k}/logg-inn")
    answer = client.post(
        f"{k}/logg-inn",
        data=token | {"name": "ada", "password": PASSWORD, "code": next_code(secret)},
        follow_redirects=False,
    )
    see_other(root, answer, "/konsoll?lang=nn")
    for page in (k, f"{k}/brukere"):
        assert_under(root, client.get(page, params={"lang": "en"}).text, page)
    out = post(client, f"{k}?lang=en", f"{k}/logg-ut")
    see_other(root, out, "/konsoll/logg-inn?ut=1&lang=en")


@pytest.mark.parametrize(
    "asked", ["//evil.example/konsoll", "https://evil.example/", "/konsoll\\..", "/annet"]
)
def test_the_next_page_is_a_console_page_under_the_root_or_the_overview(
    client: TestClient, db: Database, settings: Settings, root: str, asked: str
) -> None:
    secret = operator(db, settings, "ada", "admin")
    fields = form(client.get(f"{root}/konsoll/logg-inn").text, f"{root}/konsoll/logg-inn")
    data = {"name": "ada", "password": PASSWORD, "code": next_code(secret), "next": asked}
    answer = client.post(f"{root}/konsoll/logg-inn", data=fields | data, follow_redirects=False)
    see_other(root, answer, "/konsoll")


def test_the_console_answers_the_same_when_the_proxy_strips_the_root(
    client: TestClient, db: Database, settings: Settings, root: str, campaign: int
) -> None:
    if not root:
        pytest.skip("a site with no root has no prefix to strip")
    secret = operator(db, settings, "ada", "admin")
    sign_in(client, root, secret, "/konsoll")
    for path in ("/konsoll", f"/konsoll/kampanjer/{campaign}", "/konsoll/utvalg?politi=oslo"):
        prefixed, stripped = client.get(root + path), client.get(path)
        assert (prefixed.status_code, prefixed.text) == (stripped.status_code, stripped.text)
        assert_under(root, stripped.text, path)
    answer = client.get("/konsoll/logg", follow_redirects=False)
    assert answer.status_code == 200


def test_the_live_progress_panel_polls_under_the_root(
    client: TestClient, db: Database, settings: Settings, root: str, campaign: int
) -> None:
    secret = operator(db, settings, "ada", "admin")
    sign_in(client, root, secret, "/konsoll")
    with db.transaction():  # as a sender at work leaves it
        db.execute("UPDATE campaigns SET status = 'sending' WHERE id = ?", (campaign,))
    page = client.get(f"{root}/konsoll/kampanjer/{campaign}", params={"lang": "nn"}).text
    poll = f"{root}/konsoll/kampanjer/{campaign}/fremdrift?lang=nn"
    assert f'hx-get="{poll}"' in page
    assert_under(root, page, "sending")
    panel = client.get(poll)
    assert (panel.status_code, f'hx-get="{poll}"' in panel.text) == (200, True)
    assert_under(root, panel.text, "panel")
