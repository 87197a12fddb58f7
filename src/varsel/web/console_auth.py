"""The console's gate: every route declares its role; sessions, CSRF and signing in.

A console view is registered with `console.route(path, role=..., methods=...)`. The role is a
required argument and must be a `Role` or `OPEN` (the sign-in and enrolment pages): a route
that does not say who may use it cannot be registered. The guard around every view finds the
session from its cookie, checks the role on the server, and for every write (POST) checks the
form's CSRF token before the view runs: the session's own token when signed in, the public
site's double-submit token on the sign-in pages. The two forms that check a password (sign-in
and enrolment) are rate-limited per IP address and for everyone together, in the store, before
any password is hashed.
"""

from __future__ import annotations

import functools
import hmac
import inspect
import math
import time
from collections.abc import Awaitable, Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, cast
from urllib.parse import quote, unquote, urlencode
from zoneinfo import ZoneInfo

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from varsel import accounts, ratelimit, signin
from varsel.accounts import Forbidden, Role, User
from varsel.db import Database
from varsel.errors import StoreError, StoreLost, Text, VarselError
from varsel.i18n import fmt_int
from varsel.ratelimit import GLOBAL, Decision, Limit
from varsel.signin import Session, SignInError
from varsel.web.site import CSRF_FIELD, Site, client_ip, language_of, visitor_key
from varsel.web.templating import LANGUAGES, N_, clock, day, gettext

PREFIX = "/konsoll"
SESSION_COOKIE_HTTPS = "__Host-konsoll"  # __Host-: HTTPS only, this host, path / (RFC 6265bis)
SESSION_COOKIE_HTTP = "konsoll"  # loopback without TLS (tests, a first try-out)
# The console's largest body: the template editor's nine templates of up to MAX_TEMPLATE
# (30,000) characters each, URL-encoded (an æ is six bytes: %C3%A6). A field too long must
# reach the editor, which refuses it at the field and shows what was typed; the 413 page or a
# form that cannot be read would lose it all. Any other path takes the site's MAX_BODY.
MAX_TEMPLATES_BODY = 2 * 1024 * 1024
_OSLO = ZoneInfo("Europe/Oslo")


class Open:
    """The role of the console pages anyone may open: signing in and enrolment."""

    def __repr__(self) -> str:
        return "OPEN"


OPEN = Open()
Access = Role | Open


def cookie_name(request: Request, site: Site) -> str:
    """The session cookie's name: __Host- prefixed when served over HTTPS.

    Over HTTPS as this request came, or as the public address says the site is served: a TLS
    proxy that does not pass `X-Forwarded-Proto` on would otherwise make the cookie lose the
    prefix, and with it the rule that no other host under the domain may set it.
    """
    https = request.url.scheme == "https" or site.settings.public_base_url.startswith("https://")
    return SESSION_COOKIE_HTTPS if https else SESSION_COOKIE_HTTP


# -- what a view gets -------------------------------------------------------------------


@dataclass
class Page:
    """One console request as a view sees it: who, in which language, with what form."""

    request: Request
    site: Site
    session: Session | None
    form: Mapping[str, str]
    language: str
    form_lists: dict[str, list[str]] = field(default_factory=dict)  # every value of each field
    headers: dict[str, str] = field(default_factory=dict)

    @property
    def user(self) -> User:
        """The signed-in operator (every route but the OPEN ones has one)."""
        if self.session is None:
            raise RuntimeError("an OPEN console route has no user")
        return self.session.user

    @property
    def htmx(self) -> bool:
        """The request came from htmx and wants a fragment, not a page."""
        return self.request.headers.get("hx-request") == "true"

    @contextmanager
    def db(self) -> Iterator[Database]:
        """A store connection for this request."""
        with self.site.store.connection() as db:
            yield db

    def text(self, name: str, limit: int = 200) -> str:
        """A posted field, stripped and cut to `limit` characters."""
        return self.form.get(name, "").strip()[:limit]

    def link(self, path: str, **params: Any) -> str:
        """A console path under the site's root, with query parameters and the page's language."""
        pairs = [(k, str(v)) for k, v in params.items() if v not in (None, "")]
        if self.language != "nb":
            pairs.append(("lang", self.language))
        return self.site.root + path + ("?" + urlencode(pairs) if pairs else "")

    def redirect(self, path: str, **params: Any) -> Response:
        """See another page (303, so a reload does not post again)."""
        return RedirectResponse(self.link(path, **params), status_code=303)

    def render(
        self, template: str, context: Mapping[str, Any] | None = None, *, status: int = 200
    ) -> Response:
        """A console page (templates/console/...) with the user, CSRF token and navigation."""
        values: dict[str, Any] = {
            "user": self.session.user if self.session else None,
            "roles": ROLE_NAMES,
            "can": (lambda role: self.session is not None and self.session.user.role.allows(role)),
            "Role": Role,
            "link": self.link,
            "query": self.request.query_params,
            "number": fmt_int,
            "day": functools.partial(day, self.language),
            **(context or {}),
        }
        if self.request.method != "GET":
            # A form's answer is shown at the address it was posted to, which a link cannot
            # open (405): the language links open the page the form belongs to instead.
            values["switch"] = language_links(self.site.root, shown_at(self.request))
        if self.session is not None:
            values["csrf"] = self.session.csrf_token  # the session's own: no cookie needed
        return self.site.render(
            self.request,
            f"console/{template}",
            self.language,
            values,
            status=status,
            headers=self.headers,
        )

    def problem(self, title: str, message: str, status: int, **values: Any) -> Response:
        """The console's error page; title and message are message ids (or a library's text)."""
        context = {"title": title, "message": shown(self.language, message), **values}
        return self.render("problem.html", context, status=status)


def shown(language: str, message: str) -> str:
    """A message for a page, in its language, as text the template escapes like any value.

    A message id of the console's own (N_) is looked up in the catalog; a library's message
    is translated when it carries an id (a Text) and shown as written otherwise. Never passed
    through the templates' `_()`: that marks its result as safe HTML and %-formats it, and a
    library's message may hold what someone typed.
    """
    if isinstance(message, Text):
        return translate(language, message)
    return gettext(language, message) if message else message


def translate(language: str, message: str) -> str:
    """A library's message in the page's language when it carries a message id (a Text).

    Other messages are shown as the library wrote them (Bokmål).
    """
    # An empty id is no message: gettext("") is the catalog's header.
    if not isinstance(message, Text) or not message.msgid:
        return message
    params = {
        name: translate(language, value) if isinstance(value, Text) else value
        for name, value in message.params.items()
    }
    return gettext(language, message.msgid) % params


# The forms whose answer is a page of another address than their own (the template editor's).
_ANSWERED_AT = {"lint": "maler", "testsending": "maler"}


def shown_at(request: Request) -> str:
    """The console page (a GET address) a posted form's answer belongs to."""
    path = str(request.scope["path"])
    head, _, last = path.rpartition("/")
    if last in _ANSWERED_AT:
        path = f"{head}/{_ANSWERED_AT[last]}"
    while path.startswith(PREFIX):
        if any(route.readable(path) for route in console.routes):
            return path
        path = path.rpartition("/")[0]
    return PREFIX


def language_links(root: str, path: str) -> dict[str, str]:
    """The page at `path` (under the root) in each language."""
    return {code: f"{root}{path}" + ("" if code == "nb" else f"?lang={code}") for code in LANGUAGES}


ROLE_NAMES = {
    Role.VIEWER: N_("Leser"),
    Role.AUTHOR: N_("Forfatter"),
    Role.APPROVER: N_("Godkjenner"),
    Role.ADMIN: N_("Administrator"),
}

View = Callable[[Page], Response] | Callable[[Page], Awaitable[Response]]


# -- the router -------------------------------------------------------------------------


class ConsoleRoute(Route):
    """A console route: its endpoint is the guard, and it knows the role it requires."""

    def __init__(self, path: str, view: View, *, role: Access, methods: tuple[str, ...]) -> None:
        self.role = role
        self.view = view
        self.write = any(m != "GET" for m in methods)
        super().__init__(path, _guard(view, role, self.write), methods=list(methods))

    def readable(self, path: str) -> bool:
        """Whether a link (GET) to `path` opens this route."""
        return not self.write and self.path_regex.match(path) is not None


class Console:
    """Collects the console's routes; a route must say which role it requires."""

    def __init__(self) -> None:
        self.routes: list[ConsoleRoute] = []

    def route(
        self, path: str, *, role: Access, methods: tuple[str, ...] = ("GET",)
    ) -> Callable[[View], View]:
        """Register a view at PREFIX + path for users with `role` (or above), or OPEN."""
        if not isinstance(role, Role | Open):
            raise TypeError(f"console route {path!r}: role must be a Role or OPEN, not {role!r}")
        if not methods or any(m not in ("GET", "POST") for m in methods):
            raise TypeError(f"console route {path!r}: methods must be GET or POST")

        def register(view: View) -> View:
            self.routes.append(ConsoleRoute(PREFIX + path, view, role=role, methods=methods))
            return view

        return register


console = Console()


# -- the guard ----------------------------------------------------------------------------


async def read_form(request: Request) -> tuple[dict[str, str], dict[str, list[str]]]:
    """The posted form's text fields (the last and every value of each), bounded in size."""
    # No field is longer than the body, which the app bounds per path.
    form = await request.form(max_files=0, max_fields=60, max_part_size=MAX_TEMPLATES_BODY)
    last: dict[str, str] = {}
    every: dict[str, list[str]] = {}
    for k, v in form.multi_items():
        if isinstance(v, str):
            last[k] = v
            every.setdefault(k, []).append(v)
    return last, every


def _session(site: Site, request: Request) -> Session | None:
    token = request.cookies.get(cookie_name(request, site))
    if not token or len(token) > 200:
        return None
    with site.store.connection() as db:
        return signin.session_for_token(db, site.settings, token)


def _guard(view: View, role: Access, write: bool) -> Callable[[Request], Awaitable[Response]]:
    async def endpoint(request: Request) -> Response:
        site: Site = request.app.state.site
        form, lists = await read_form(request) if write else ({}, {})
        language = language_of(request, form)
        session = await run_in_threadpool(_session, site, request)
        page = Page(request, site, session, form, language, lists)
        if isinstance(role, Role):
            if session is None:
                return _sign_in_first(page)
            try:
                accounts.require_role(session.user, role)
            except Forbidden:
                return page.problem(
                    N_("Ikke tilgang"),
                    N_("Rollen din gir ikke tilgang til dette. Spør en administrator."),
                    403,
                )
            if write and not _session_token(session, form):
                return _stale_form(page)
        elif write and not (site.csrf_ok(request, form) or _session_token(session, form)):
            # A signed-in operator's sign-in page carries the session's token (Page.render),
            # as every console page does: signing in as someone else must not be refused.
            return _stale_form(page)
        cid = request.path_params.get("cid")
        if isinstance(cid, int) and not 0 < cid < _LARGEST_ID:
            # No campaign has it, and the store could not even be asked (SQLite's integers).
            text = Text("kampanje %(campaign)s finnes ikke", campaign=cid)
            return page.problem(N_("Siden finnes ikke"), text, 404)
        try:
            if inspect.iscoroutinefunction(view):
                response: Response = await view(page)
            else:
                response = await run_in_threadpool(cast(Callable[[Page], Response], view), page)
        except Forbidden as e:
            return page.problem(N_("Ikke tilgang"), e.message, 403)
        except (StoreLost, StoreError):
            # The store went away or refused a connection (PostgreSQL restarting): not the
            # operator's mistake; the site's StoreOutage answers 503 "try again shortly".
            raise
        except VarselError as e:
            if await run_in_threadpool(_no_such_campaign, page):
                return page.problem(N_("Siden finnes ikke"), e.message, 404)
            # A user error no view turned into a form message: one line, as the CLI shows it.
            return page.problem(N_("Det gikk ikke"), e.message, 400)
        return response

    endpoint.__name__ = getattr(view, "__name__", "console_view")
    return endpoint


def _session_token(session: Session | None, form: Mapping[str, str]) -> bool:
    """The form carries the session's own CSRF token."""
    if session is None:
        return False
    return hmac.compare_digest(form.get(CSRF_FIELD, "").encode(), session.csrf_token.encode())


_LARGEST_ID = 2**63  # above the largest integer a store's id column holds


def _no_such_campaign(page: Page) -> bool:
    """The page is a campaign's (/kampanjer/N/...) and campaign N does not exist."""
    cid = page.request.path_params.get("cid")
    if not isinstance(cid, int):
        return False
    with page.db() as db:
        return db.query_one("SELECT 1 FROM campaigns WHERE id = ?", (cid,)) is None


async def error_page(
    request: Request, status: int, title: str, message: str, headers: Mapping[str, str] | None
) -> Response:
    """The site's error page (404, 405, 500, 503) for an address under /konsoll, in the console's
    layout: the operator's menu when signed in, and a link back into the console."""
    site: Site = request.app.state.site
    session = None
    if status < 500:  # after a failure the store may be what failed: no menu then
        session = await run_in_threadpool(_session, site, request)
    page = Page(request, site, session, {}, language_of(request))
    page.headers.update(headers or {})
    return page.problem(title, message, status, to_console=True)


def _sign_in_first(page: Page) -> Response:
    request = page.request
    if request.method != "GET":
        return page.problem(
            N_("Du er ikke logget inn"),
            N_("Økten er utløpt eller avsluttet. Logg inn igjen og prøv på nytt."),
            401,
        )
    # The page's address as the browser has it: the routed path under the site's root.
    target = page.site.root + request.url.path
    target += f"?{request.url.query}" if request.url.query else ""
    location = page.link(f"{PREFIX}/logg-inn", neste=target)
    if page.htmx:
        # htmx would swap the sign-in page into a fragment; make it load the whole page.
        return Response(status_code=204, headers={"HX-Redirect": location})
    return RedirectResponse(location, status_code=303)


def _stale_form(page: Page) -> Response:
    return page.problem(
        N_("Skjemaet kunne ikke sendes"),
        N_(
            "Skjemaet var for gammelt eller kom ikke fra denne siden. "
            "Gå tilbake, last siden på nytt og prøv igjen."
        ),
        403,
    )


def safe_next(value: str | None, root: str) -> str:
    """Where to go after signing in: a console address under the root, never another site.

    Nor another service on the same host: a path that climbs out of the console with `..`
    (or its percent-encoded form), or holds a control character, goes to the console's home.
    """
    home = root + PREFIX
    if not value or value.startswith("//") or "\\" in value:
        return home
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in value):
        return home
    path = unquote(value.split("?", 1)[0].split("#", 1)[0])
    if any(segment in (".", "..") for segment in path.split("/")):
        return home
    if path == home or path.startswith(home + "/"):
        return value
    return home


# -- limits and refusals on the forms that check a password ---------------------------------

# One message for a wrong password or code, an unknown name and a locked account: a stranger
# cannot tell which (the audit log keeps the reason). The owner of a locked account is told
# that it may be locked, and for how long.
WRONG = N_(
    "Feil brukernavn, passord eller engangskode – eller kontoen er låst etter %(failures)s feil "
    "på rad. En låst konto kan brukes igjen etter %(minutes)s minutter, eller når en "
    "administrator låser den opp."
)
TOO_MANY_FROM_YOU = N_(
    "For mange innloggingsforsøk fra IP-adressen din. Prøv igjen kl. %(time)s (om %(minutes)s min)."
)
TOO_MANY_FROM_ALL = N_(
    "Konsollen får for mange innloggingsforsøk akkurat nå. Prøv igjen kl. %(time)s (om "
    "%(minutes)s min)."
)


def sign_in_limits(site: Site, ip: str) -> list[tuple[Limit, str]]:
    """Per IP, then for everyone: a guesser is stopped by the first, a botnet by the second.

    Sign-in and enrolment count against the same limits, since both check a password.
    """
    s = site.settings
    return [
        (
            Limit("sign_in_ip", s.sign_in_per_ip, s.sign_in_window_seconds),
            visitor_key(site, ip),
        ),
        (Limit("sign_in_all", s.sign_in_global_per_minute, 60), GLOBAL),
    ]


def _admitted(page: Page, db: Database) -> Decision:
    """Count this attempt against the limits (refused ones count too, so hammering keeps out)."""
    return ratelimit.consume(db, sign_in_limits(page.site, client_ip(page.request)))


def _too_many(page: Page, decision: Decision) -> str:
    """The refusal of a limited attempt, saying when to try again; sets Retry-After."""
    page.headers["Retry-After"] = str(decision.retry_after)
    # Rounded up to the minute shown, so that trying at that time is never too early.
    at = datetime.fromtimestamp(math.ceil((time.time() + decision.retry_after) / 60) * 60, _OSLO)
    text = TOO_MANY_FROM_YOU if decision.scope == "sign_in_ip" else TOO_MANY_FROM_ALL
    minutes = math.ceil(decision.retry_after / 60)
    time_of_day = clock(page.language, at.hour, at.minute)
    return gettext(page.language, text) % {"time": time_of_day, "minutes": minutes}


def _refusal(page: Page, error: SignInError) -> str:
    """What the page says about a refused attempt (the library's words say more)."""
    if not error.before_password:
        # Only the account's owner, with the right password, gets here.
        return translate(page.language, error.message)
    settings = page.site.settings
    values = {"failures": settings.lockout_failures, "minutes": f"{settings.lockout_minutes:g}"}
    return gettext(page.language, WRONG) % values


# -- signing in and out -------------------------------------------------------------------


@console.route("/logg-inn", role=OPEN)
def sign_in_form(page: Page) -> Response:
    """The sign-in form: name, password and the code from the app."""
    return page.render(
        "sign_in.html",
        {
            "name": "",
            "error": None,
            "next": safe_next(page.request.query_params.get("neste"), page.site.root),
        },
    )


@console.route("/logg-inn", role=OPEN, methods=("POST",))
def sign_in(page: Page) -> Response:
    """Check password and code; on success a session cookie and the page asked for."""
    name = page.text("name", 64)
    target = safe_next(page.form.get("next"), page.site.root)
    user_agent = page.request.headers.get("user-agent", "")[:120]
    try:
        with page.db() as db:
            decision = _admitted(page, db)
            if not decision.allowed:
                context = {"name": name, "error": _too_many(page, decision), "next": target}
                return page.render("sign_in.html", context, status=429)
            session = signin.authenticate(
                db,
                page.site.settings,
                name,
                page.form.get("password", "")[:1024],
                page.text("code", 12),
                client=f"{user_agent} {client_ip(page.request)}",
            )
            if page.session is not None:
                # The session this browser had (another operator's, on a shared machine, or
                # the same one's) ends on the server too: its cookie is replaced below, and
                # a copy of it must not outlive the sign-in that took its place.
                signin.sign_out(db, page.session)
    except SignInError as e:
        return page.render(
            "sign_in.html", {"name": name, "error": _refusal(page, e), "next": target}, status=401
        )
    if page.language != "nb" and "lang=" not in target:
        target += ("&" if "?" in target else "?") + f"lang={quote(page.language)}"
    response = RedirectResponse(target, status_code=303)
    response.set_cookie(
        cookie_name(page.request, page.site),
        session.token,
        secure=True,
        httponly=True,
        samesite="strict",
        path="/",
    )
    return response


@console.route("/logg-ut", role=Role.VIEWER, methods=("POST",))
def sign_out(page: Page) -> Response:
    """End this session."""
    assert page.session is not None  # noqa: S101 - the guard let a signed-in user through
    with page.db() as db:
        signin.sign_out(db, page.session)
    return _signed_out(page)


@console.route("/logg-ut-overalt", role=Role.VIEWER, methods=("POST",))
def sign_out_everywhere(page: Page) -> Response:
    """End every session of the signed-in operator, on every device."""
    with page.db() as db:
        signin.sign_out_everywhere(db, page.user.name, actor=page.user.name)
    return _signed_out(page)


def _signed_out(page: Page) -> Response:
    response = page.redirect(f"{PREFIX}/logg-inn", ut="1")
    response.delete_cookie(
        cookie_name(page.request, page.site),
        secure=True,
        httponly=True,
        samesite="strict",
        path="/",
    )
    return response


# -- enrolment: the authenticator app -------------------------------------------------------


@console.route("/ta-i-bruk", role=OPEN)
def enrol_form(page: Page) -> Response:
    """First step of enrolment: who you are (name and password)."""
    return page.render("enrol.html", {"name": "", "error": None, "enrolment": None})


@console.route("/ta-i-bruk", role=OPEN, methods=("POST",))
def enrol(page: Page) -> Response:
    """Show the QR code for a password that matches; confirm it with a code from the app."""
    settings = page.site.settings
    name = page.text("name", 64)
    password = page.form.get("password", "")[:1024]
    code = page.text("code", 12)
    with page.db() as db:
        decision = _admitted(page, db)
        if not decision.allowed:
            context = {"name": name, "error": _too_many(page, decision), "enrolment": None}
            return page.render("enrol.html", context, status=429)
        try:
            if code:
                signin.confirm_totp(db, settings, name, password, code)
                return page.redirect(f"{PREFIX}/logg-inn", klar="1")
            enrolment = signin.pending_enrolment(db, settings, name, password)
        except (SignInError, accounts.AccountError) as e:
            shown = None
            if isinstance(e, SignInError) and e.reason == "code":
                # Wrong code (so the password was right): show the QR again, so the operator
                # can try the next one. Not after any other refusal: that would check the
                # password a second time, and count a wrong one twice.
                try:
                    shown = signin.pending_enrolment(db, settings, name, password)
                except VarselError:
                    shown = None
            if isinstance(e, SignInError):
                error = _refusal(page, e)
            else:
                error = translate(page.language, e.message)
            return page.render(
                "enrol.html", {"name": name, "error": error, "enrolment": shown}, status=400
            )
    return page.render("enrol.html", {"name": name, "error": None, "enrolment": enrolment})
