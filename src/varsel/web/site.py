"""What every public page shares: store connections, languages, rendering, CSRF tokens, headers."""

from __future__ import annotations

import base64
import contextlib
import functools
import hashlib
import hmac
import io
import logging
import queue
import re
import secrets
from collections.abc import Callable, Iterator, Mapping, MutableMapping
from dataclasses import dataclass, field
from datetime import date, datetime
from importlib import resources
from typing import Any, TypeVar
from urllib.parse import urlencode, urlsplit
from zoneinfo import ZoneInfo

import jinja2
import markupsafe
from babel.dates import format_date, format_datetime
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import Translations
from jinja2.ext import Extension
from jinja2.lexer import Token, TokenStream
from markupsafe import Markup, escape
from starlette.middleware.body_limit import RequestBodyLimitMiddleware
from starlette.requests import Request
from starlette.responses import HTMLResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from varsel import documents, ratelimit
from varsel.campaign import CampaignSpec
from varsel.config import Settings
from varsel.db import Database, connect
from varsel.dkim import Signer
from varsel.erasure import is_stand_in
from varsel.web.batch import GroupCommit, Work
from varsel.web.page_slots import slot_filter

log = logging.getLogger("varsel.web")
J = TypeVar("J")
R = TypeVar("R")

LANGUAGES = ("nb", "nn", "en")
LANGUAGE_NAMES = {"nb": "Bokmål", "nn": "Nynorsk", "en": "English"}
CSRF_COOKIE = (
    "__Host-csrf"  # __Host-: only over HTTPS, for this host, path / (no subdomain sets it)
)
CSRF_FIELD = "csrf"
_OSLO = ZoneInfo("Europe/Oslo")


def N_(text: str) -> str:  # the name gettext extractors look for
    """Mark text for translation where it is defined; it is translated where it is shown."""
    return text


# -- the store ------------------------------------------------------------------------


class Store:
    """A small pool of store connections: one per worker thread at a time, reused."""

    # As many as Starlette's thread pool runs views at once (anyio's default, 40): a request
    # that finds none idle opens one, which costs ~15 ms on PostgreSQL.
    def __init__(self, url: str, size: int = 40) -> None:
        self.url = url
        # The first connection migrates, so the pages never see an old schema.
        first = connect(url)
        self._idle: queue.LifoQueue[Database] = queue.LifoQueue()
        self._idle.put(first)
        self._size = size
        self._writers: list[GroupCommit[Any, Any]] = []

    @contextlib.contextmanager
    def connection(self) -> Iterator[Database]:
        """Borrow a connection for one request."""
        try:
            db = self._idle.get_nowait()
        except queue.Empty:
            db = connect(self.url, migrate=False)
        try:
            yield db
        except BaseException:
            # A connection that failed mid-request may be in any state: do not hand it on.
            db.close()
            raise
        if self._idle.qsize() < self._size:
            self._idle.put(db)
        else:
            db.close()

    def group_commit(self, work: Work[J, R], *, durable: bool = True) -> GroupCommit[J, R]:
        """A group commit of work over this store (see varsel.web.batch); closed with it."""
        writer: GroupCommit[J, R] = GroupCommit(self.url, work, durable=durable)
        self._writers.append(writer)
        return writer

    def close(self) -> None:
        """Stop the group commits and close the idle connections."""
        for writer in self._writers:
            writer.close()
        while True:
            try:
                self._idle.get_nowait().close()
            except queue.Empty:
                return


# -- languages ------------------------------------------------------------------------


@functools.cache
def _translations(language: str) -> Translations:
    # The .po files are the source; compiling them in memory at start-up (a few ms) means no
    # build step and no .mo file that can fall out of step with its .po.
    folder = resources.files("varsel.web") / "locale" / language / "LC_MESSAGES"
    with (folder / "messages.po").open("rb") as f:
        catalog = read_po(f, locale=language)
    buffer = io.BytesIO()
    write_mo(buffer, catalog)
    buffer.seek(0)
    return Translations(buffer)


def _local(iso: str) -> datetime:
    return datetime.fromisoformat(iso.replace("Z", "+00:00")).astimezone(_OSLO)


def _orgnr(value: str) -> str:
    if is_stand_in(value):
        return "–"  # a unit removed from the registry (erased): it has no number to show
    return " ".join(value[i : i + 3] for i in range(0, len(value), 3))


def _date(language: str, iso: str) -> str:
    # By the day in Oslo: every message of a campaign has its own time stamp, but few days.
    return _long_date(language, _local(iso).date())


@functools.lru_cache(maxsize=4096)
def _long_date(language: str, day: date) -> str:
    return format_date(day, "long", locale=language)


@functools.lru_cache(maxsize=4096)
def _datetime(language: str, iso: str) -> str:
    pattern = "d. MMMM y 'kl.' HH:mm" if language != "en" else "d MMMM y, HH:mm"
    return format_datetime(_local(iso), pattern, locale=language)


def _with_lang(language: str, path: str, root: str = "") -> str:
    return root + path if language == "nb" else f"{root}{path}?lang={language}"


def root_of(base_url: str) -> str:
    """The site's root: the path of its public base URL, without a trailing slash ("" if none).

    Every link, form and stylesheet of the pages starts with it, so that the site can live
    under a path of the authority's own site (https://www.politiet.no/varsel).
    """
    return urlsplit(base_url).path.rstrip("/")


def _translated(translation: str, **values: Any) -> Markup:
    # What newstyle gettext does with a translation and values, as a filter: a template calls
    # a filter directly, where a function goes through the context's call machinery.
    if _only_text_fields(translation):
        # Markup's % wraps every value in a helper; for %(name)s fields escaping them first
        # gives the same text at a fraction of the cost.
        escaped = {name: _fast_escape(value) for name, value in values.items()}
        # Markup's constructor, without its Python-level __new__ (as _fast_escape does).
        return str.__new__(Markup, translation % escaped)
    return Markup(translation) % values  # noqa: S704 -- our own catalog, trusted as gettext does


_FIELD = re.compile(r"%(?:\([^)]*\))?[^%(]*?[a-zA-Z%]")


@functools.lru_cache(maxsize=1024)
def _only_text_fields(translation: str) -> bool:
    return all(
        f == "%%" or (f.startswith("%(") and f.endswith(")s")) for f in _FIELD.findall(translation)
    )


class TranslateLiterals(Extension):
    """Translates `_("literal")` once, when a template is compiled, instead of on every render.

    Each language has its own environment and its catalog never changes while the process runs,
    so a literal's translation is a constant. `_("literal", name=value)` becomes the translation
    with a filter that fills in the values (escaped, as newstyle gettext does), and
    `with_lang("/path")` the path under the site's root in the environment's language. Calls
    with a variable
    (`_(title)`) are left to the i18n extension at render time.
    """

    def filter_stream(self, stream: TokenStream) -> Iterator[Token]:
        tokens = list(stream)  # a template's tokens: a few thousand at most
        translations: Translations = self.environment.literal_translations  # type: ignore[attr-defined]
        language = str(self.environment.globals["lang"])
        root = str(self.environment.globals["root"])
        i = 0
        while i < len(tokens):
            token = tokens[i]
            window = tokens[i : i + 4]
            shape = [t.type for t in window]
            if shape[:3] == ["name", "lparen", "string"] and len(shape) == 4:
                literal, line = window[2].value, token.lineno
                if token.value == "_" and shape[3] == "rparen":
                    # As newstyle gettext does: the translation is a %-format with no values.
                    yield Token(line, "string", translations.gettext(literal) % {})
                    i += 4
                    continue
                if token.value == "_" and shape[3] == "comma":
                    # _("…", a=x) → "translation"|translated(a=x): the rest of the call stays.
                    yield Token(line, "string", translations.gettext(literal))
                    yield Token(line, "pipe", "|")
                    yield Token(line, "name", "translated")
                    yield Token(line, "lparen", "(")
                    i += 4
                    continue
                if token.value == "with_lang" and shape[3] == "rparen":
                    yield Token(line, "string", _with_lang(language, literal, root))
                    i += 4
                    continue
            yield token
            i += 1


# markupsafe's C escaping, as markupsafe.escape uses it; escape() then wraps the result with
# Markup's constructor in Python, which costs more than the escaping itself.
_escape_inner: Callable[[str], str] | None = getattr(markupsafe, "_escape_inner", None)


def _fast_escape(value: Any) -> Markup:
    """markupsafe.escape(value), without Markup's Python constructor for text and Markup."""
    kind = type(value)
    if kind is str and _escape_inner is not None:
        return str.__new__(Markup, _escape_inner(value))
    if kind is Markup:
        return value  # type: ignore[no-any-return]
    return escape(value)


class _Template(jinja2.Template):
    """A template whose {{ values }} are escaped by _fast_escape: the same text, sooner."""

    @classmethod
    def _from_namespace(
        cls,
        environment: jinja2.Environment,
        namespace: MutableMapping[str, Any],
        globals: MutableMapping[str, Any],
    ) -> jinja2.Template:
        # A compiled template's module imports escape from jinja2.runtime and calls it for
        # every value; this is its namespace before any of it runs. (Jinja is pinned.)
        namespace["escape"] = _fast_escape
        return super()._from_namespace(environment, namespace, globals)


class _Environment(jinja2.Environment):
    """An environment whose templates are looked up once, by name.

    The templates are package files that never change while the site runs, but a child
    template asks for its parent on every render, and Jinja's lookup makes a weak reference
    and takes its cache's lock each time (~10 µs a page).
    """

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.found: dict[tuple[str, str | None], jinja2.Template] = {}

    def get_template(
        self,
        name: str | jinja2.Template,
        parent: str | None = None,
        globals: MutableMapping[str, Any] | None = None,
    ) -> jinja2.Template:
        if globals or not isinstance(name, str):
            return super().get_template(name, parent, globals)
        found = self.found.get((name, parent))
        if found is None:
            found = self.found[(name, parent)] = super().get_template(name, parent)
        return found


@functools.cache
def environment(language: str, root: str = "") -> jinja2.Environment:
    """The templates in one language under a root (built once per process: they never change)."""
    env = _Environment(
        loader=jinja2.PackageLoader("varsel.web", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        extensions=["jinja2.ext.i18n", TranslateLiterals],
        trim_blocks=True,
        lstrip_blocks=True,
        auto_reload=False,  # the templates are package files: no need to stat them per page
    )
    env.template_class = _Template
    env.extend(literal_translations=_translations(language))
    env.install_gettext_translations(_translations(language), newstyle=True)  # type: ignore[attr-defined]
    # The filters a compiled page applies to per-request values (see varsel.web.page_slots).
    env.filters["date"] = slot_filter(functools.partial(_date, language))
    env.filters["datetime"] = functools.partial(_datetime, language)
    env.filters["orgnr"] = slot_filter(_orgnr)
    env.filters["urlencode"] = slot_filter(env.filters["urlencode"])
    env.filters["translated"] = _translated
    env.globals["lang"] = language
    env.globals["root"] = root  # the site's path prefix (see root_of), before every link
    env.globals["languages"] = LANGUAGE_NAMES
    env.globals["language_list"] = tuple(LANGUAGE_NAMES.items())
    # A link to a page of the site in this language (folded into the templates for literals).
    env.globals["with_lang"] = functools.partial(_with_lang, language, root=root)
    return env


def gettext(language: str, text: str) -> str:
    """The text in the language (the msgid is Bokmål)."""
    return _translations(language).gettext(text)


def secret_of(settings: Settings) -> bytes:
    """The key for signed links, form tokens and hashed addresses; random when not configured."""
    if settings.secret_key:
        return hashlib.sha256(settings.secret_key.encode("utf-8")).digest()
    log.warning(
        "VARSEL_SECRET_KEY er ikke satt: bruker en tilfeldig nøkkel for denne prosessen. "
        "Lenker og skjema virker da ikke på tvers av arbeidere eller etter omstart."
    )
    return secrets.token_bytes(32)


def language_of(request: Request, form: Mapping[str, Any] | None = None) -> str:
    """The page's language: ?lang= or the form's lang field; Bokmål when absent or unknown."""
    value = (form or {}).get("lang") or request.query_params.get("lang")
    return value if value in LANGUAGES else "nb"


def client_ip(request: Request) -> str:
    """The visitor's address (uvicorn puts the proxy's X-Forwarded-For here when trusted)."""
    client = request.scope.get("client")  # as request.client.host, without its named tuple
    return str(client[0]) if client else "unknown"


def site_key(site: Site, value: str) -> str:
    """A keyed hash of a value (an e-mail address), for rate-limit rows."""
    return ratelimit.hashed_key(site.secret, value)


def visitor_key(site: Site, ip: str) -> str:
    """A keyed hash of a visitor's address, for per-visitor limits: for IPv6, of its /64."""
    return ratelimit.hashed_key(site.secret, ratelimit.visitor_network(ip))


# -- the site -------------------------------------------------------------------------


@dataclass
class Site:
    """The settings, secret and store one app instance serves with."""

    settings: Settings
    secret: bytes
    store: Store
    # DKIM signers by (domain, selector, ed25519): keys are read once, not per request.
    signers: dict[tuple[str, str, bool], Signer] = field(default_factory=dict)
    # Group commits by name, made by the views that use them (closed with the store).
    writers: dict[str, GroupCommit[Any, Any]] = field(default_factory=dict)
    # The path every link of the pages starts with (root_of the public base URL).
    root: str = field(init=False)

    def __post_init__(self) -> None:
        self.root = root_of(self.settings.public_base_url)

    @classmethod
    def from_settings(cls, settings: Settings) -> Site:
        """Open the store and pick the secret; warns when none is configured."""
        return cls(settings, secret_of(settings), Store(settings.database_url))

    def signer(self, spec: CampaignSpec) -> Signer:
        """The campaign's DKIM signer, for mail the site sends on its behalf."""
        key = (spec.sender_domain, spec.dkim_selector, spec.dkim_ed25519)
        found = self.signers.get(key)
        if found is None:
            found = self.signers[key] = documents.signer(self.settings, spec)
        return found

    def purge(self) -> tuple[int, int]:
        """Delete expired rate-limit counters and document links: (counters, links)."""
        with self.store.connection() as db:
            return ratelimit.purge(db), documents.purge(db)

    # -- CSRF: a signed random token, in a cookie and in every form (double submit) ------

    def _csrf_signature(self, nonce: str) -> str:
        mac = hmac.new(self.secret, f"csrf:{nonce}".encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(mac[:18]).decode("ascii")

    def new_csrf(self) -> str:
        """A fresh token: random nonce and its signature."""
        nonce = secrets.token_urlsafe(18)
        return f"{nonce}.{self._csrf_signature(nonce)}"

    def csrf_valid(self, token: str | None) -> bool:
        """True if the token is one this site signed."""
        if not token or len(token) > 100 or "." not in token:
            return False
        nonce, signature = token.split(".", 1)
        return hmac.compare_digest(signature, self._csrf_signature(nonce))

    def csrf_ok(self, request: Request, form: Mapping[str, Any]) -> bool:
        """The form's token is ours and matches the cookie: it came from our own page."""
        cookie = request.cookies.get(CSRF_COOKIE)
        field = form.get(CSRF_FIELD)
        return (
            isinstance(field, str)
            and cookie is not None
            and hmac.compare_digest(field, cookie)
            and self.csrf_valid(cookie)
        )

    # -- rendering ---------------------------------------------------------------------

    def render(
        self,
        request: Request,
        template: str,
        language: str,
        context: Mapping[str, Any] | None = None,
        *,
        status: int = 200,
        headers: Mapping[str, str] | None = None,
    ) -> HTMLResponse:
        """A page in the language, with a CSRF token for its forms and links to the others."""
        token = _Token(self, request)
        path, here = page_address(request, self.root)
        switch = {other: here + other for other in LANGUAGES}
        body = render_text(
            language,
            template,
            {"csrf": token, "switch": switch, "path": path, **(context or {})},
            self.root,
        )
        response = _Page(body, status, headers)
        if token.used and token.value != token.cookie:
            response.set_cookie(
                CSRF_COOKIE, token.value, secure=True, httponly=True, samesite="strict", path="/"
            )
        return response


def page_address(request: Request, root: str) -> tuple[str, str]:
    """The page's path under the root, and its address with the query but lang, to add one to."""
    # As request.url.path has it, without parsing the whole URL. The path is the one routed
    # (StripRoot has taken the root off, if the proxy left it on).
    path = root + request.scope["path"].replace("?", "%3F").replace("#", "%23").replace("\\", "%5C")
    query = request.query_params
    params = urlencode([(k, v) for k, v in query.multi_items() if k != "lang"]) if query else ""
    return path, (f"{path}?{params}&lang=" if params else f"{path}?lang=")


class _Page(HTMLResponse):
    """HTMLResponse(html, status, headers), made without its generality when no headers."""

    def __init__(self, html: str, status: int, headers: Mapping[str, str] | None) -> None:
        if headers or status < 200 or status in (204, 304):
            super().__init__(html, status, headers)
            return
        self.status_code = status
        self.background = None
        self.body = body = html.encode()
        self.raw_headers = [(b"content-length", str(len(body)).encode()), _HTML]


_HTML = (b"content-type", b"text/html; charset=utf-8")


@functools.cache
def _template(language: str, name: str, root: str) -> tuple[jinja2.Template, dict[str, Any]]:
    page = environment(language, root).get_template(name)
    return page, dict(page.globals)


def render_text(language: str, name: str, values: Mapping[str, Any], root: str = "") -> str:
    """Template.render(values) under the site's root, without its per-call copy of the globals.

    Template.render makes its context from a ChainMap of the template's and the environment's
    globals, which costs ~10 µs a page by itself; they never change here, so they are copied
    to a plain dict once per template. (Jinja is pinned: this is how 3.1 makes a context.)
    """
    page, globals_ = _template(language, name, root)
    env = page.environment
    context = env.context_class(env, {**globals_, **values}, page.name, page.blocks, globals_)
    try:
        return env.concat(page.root_render_func(context))
    except Exception:
        env.handle_exception()


class _Token:
    """A page's CSRF token: the visitor's own if valid, else a new one, made only when shown.

    Pages without a form then neither read the cookie, nor sign a token, nor set a cookie.
    """

    def __init__(self, site: Site, request: Request) -> None:
        self._site = site
        self._request = request
        self.used = False

    @functools.cached_property
    def cookie(self) -> str | None:
        """The token the visitor's cookie holds, if any."""
        return self._request.cookies.get(CSRF_COOKIE)

    @functools.cached_property
    def value(self) -> str:
        cookie = self.cookie
        return cookie if cookie and self._site.csrf_valid(cookie) else self._site.new_csrf()

    def __str__(self) -> str:
        self.used = True
        return self.value

    def __html__(self) -> str:  # autoescape: the token is URL-safe base64 and a dot
        return str(self)


# -- headers on every response ---------------------------------------------------------

SECURITY_HEADERS = {
    # Everything from our own origin; no inline script or style, no frames, forms post home.
    "content-security-policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; "
        "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    ),
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "x-frame-options": "DENY",
    "strict-transport-security": "max-age=31536000; includeSubDomains",
    "cross-origin-opener-policy": "same-origin",
    "permissions-policy": "camera=(), microphone=(), geolocation=(), interest-cohort=()",
}


_SECURITY_HEADERS = [(k.encode(), v.encode()) for k, v in SECURITY_HEADERS.items()]
_SECURITY_NAMES = frozenset(k for k, _ in _SECURITY_HEADERS)
_NO_STORE = (b"cache-control", b"no-store")


class SecuredHeaders(list[tuple[bytes, bytes]]):
    """A response's headers that already hold what SecurityHeaders would add: it sends them as
    they are. Made only by html_headers()."""


def html_headers(length: int) -> SecuredHeaders:
    """An HTML page's headers, with the security headers and no-store, encoded once."""
    return SecuredHeaders([(b"content-length", b"%d" % length), *_HTML_SECURED])


# What SecurityHeaders makes of _Page's headers, after its Content-Length.
_HTML_SECURED = (_HTML, *_SECURITY_HEADERS, _NO_STORE)


class SecurityHeaders:
    """ASGI middleware: the security headers on every response, no caching of HTML, and a
    bound on the size of request bodies (a 413 when a client sends more than max_body_size).

    A request without Content-Length or Transfer-Encoding has no body (HTTP/1.1), so only
    requests with one go through Starlette's body limit: a GET skips its work. A GET or HEAD
    without a body for a path in `direct` goes straight to that path's ASGI app, past
    Starlette's exception middleware and router: the same app the router would have found
    (its route must take GET), which raises no HTTPException, for the pages that answer most.
    """

    def __init__(
        self,
        app: ASGIApp,
        max_body_size: int | None = None,
        direct: Mapping[str, ASGIApp] | None = None,
    ) -> None:
        self.app = app
        self.limited = (
            app if max_body_size is None else RequestBodyLimitMiddleware(app, max_body_size)
        )
        self.direct = dict(direct or {})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                if type(message.get("headers")) is SecuredHeaders:
                    await send(message)
                    return
                headers = []
                html = False
                for name, value in message.get("headers", []):
                    lower = name.lower()
                    if lower in _SECURITY_NAMES:
                        continue  # ours replace the app's
                    # Pages carry form tokens and lookup results: keep them out of caches.
                    html = html or (lower == b"content-type" and value.startswith(b"text/html"))
                    headers.append((name, value))
                headers += _SECURITY_HEADERS
                if html:
                    headers.append(_NO_STORE)
                message["headers"] = headers
            await send(message)

        app = self.app
        for name, _ in scope["headers"]:
            if name in _BODY_HEADERS:
                app = self.limited
                break
        else:
            # Under a root path the router matches what follows it: leave that to the router.
            if scope["method"] in _READS and not scope.get("root_path"):
                app = self.direct.get(scope["path"], app)
        await app(scope, receive, send_with_headers)


_BODY_HEADERS = frozenset((b"content-length", b"transfer-encoding"))  # as uvicorn gives them
_READS = frozenset(("GET", "HEAD"))
