"""What every public page shares: the store pool, the secret and visitor keys, the Site, and
rendering a page with its CSRF token."""

from __future__ import annotations

import base64
import contextlib
import functools
import hashlib
import hmac
import logging
import queue
import re
import secrets
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar
from urllib.parse import quote, urlencode, urlsplit

from starlette.requests import Request
from starlette.responses import HTMLResponse

from varsel import documents, ratelimit
from varsel.campaign import CampaignSpec
from varsel.config import Settings
from varsel.db import Database, connect, lost
from varsel.dkim import Signer
from varsel.web.batch import GroupCommit, Work
from varsel.web.headers import HTML_CONTENT_TYPE
from varsel.web.templating import LANGUAGES, render_text

log = logging.getLogger("varsel.web")
J = TypeVar("J")
R = TypeVar("R")

CSRF_COOKIE = (
    "__Host-csrf"  # __Host-: only over HTTPS, for this host, path / (no subdomain sets it)
)
CSRF_FIELD = "csrf"


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
        db = self._borrow()
        try:
            yield db
        except BaseException as e:
            # A connection that failed mid-request may be in any state: do not hand it on.
            db.close()
            if lost(e, self.url) is not None:
                # The server went away (a restart, a failover): the idle connections went
                # with it, and each would fail one more visitor's request. New ones instead.
                self._close_idle()
            raise
        if self._idle.qsize() < self._size:
            self._idle.put(db)
        else:
            db.close()

    def _borrow(self) -> Database:
        """An idle connection that is still there, else a new one."""
        while True:
            try:
                db = self._idle.get_nowait()
            except queue.Empty:
                return connect(self.url, migrate=False)
            if not db.gone():
                return db
            # Ended by the server while it lay idle (PostgreSQL restarted, an administrator):
            # the visitor's request goes to another, rather than failing on this one.
            with contextlib.suppress(Exception):
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
        self._close_idle()

    def _close_idle(self) -> None:
        while True:
            try:
                db = self._idle.get_nowait()
            except queue.Empty:
                return
            with contextlib.suppress(Exception):  # a dead connection may refuse to close
                db.close()


# -- the visitor and the keys -----------------------------------------------------------


def root_of(base_url: str) -> str:
    """The site's root: the path of its public base URL, without a trailing slash ("" if none).

    Every link, form and stylesheet of the pages starts with it, so that the site can live
    under a path of the authority's own site (https://www.politiet.no/varsel).
    """
    return urlsplit(base_url).path.rstrip("/")


# The shape of Site.lookup_proof's proofs: the day (days since 1970, UTC), a dot, the MAC in hex.
PROOF_SHAPE = re.compile(r"([0-9]{1,6})\.([0-9a-f]{32})")


def _utc_day() -> int:
    """Today's number of days since 1970-01-01 (UTC)."""
    return int(time.time() // 86400)


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
    # The keyed hash a genuine page's proof of lookup starts from (lookup_proof).
    _proof_mac: hashlib.blake2b = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.root = root_of(self.settings.public_base_url)
        self._proof_mac = hashlib.blake2b(key=self.secret, digest_size=16)

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

    # -- a genuine page's proof that its code was looked up, for the feedback form -------

    def lookup_proof(self, code: str, day: int | None = None) -> str:
        """A proof, carried by the genuine page's link to the feedback form, that this code
        (as the message prints it) was found genuine by a counted lookup; it holds for the
        day it was made (UTC) and the next."""
        when = _utc_day() if day is None else day
        return f"{when}.{self._proof_signature(code, when)}"

    def proven(self, code: str, proof: str) -> bool:
        """True if the proof is one of this site's, for this code, and not too old: then the
        feedback form that carries both need not look the code up (and count it) again."""
        shaped = PROOF_SHAPE.fullmatch(proof)
        if shaped is None:
            return False
        day, signature = int(shaped[1]), shaped[2]
        today = _utc_day()
        if day not in (today, today - 1):
            return False
        return hmac.compare_digest(signature, self._proof_signature(code, day))

    def _proof_signature(self, code: str, day: int) -> str:
        # BLAKE2b keyed with the site's secret is a MAC (RFC 7693) in one call, and a copy of
        # the keyed state saves even its start: a genuine page must cost little.
        mac = self._proof_mac.copy()
        mac.update(f"looked-up:{code}:{day}".encode())
        return mac.hexdigest()  # URL-safe as it is

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
    # The path is the one routed (StripRoot has taken the root off, if the proxy left it on).
    routed = request.scope["path"]
    path = root + (routed if _PLAIN_PATH.fullmatch(routed) else _link_path(routed))
    query = request.query_params
    params = urlencode(_kept(query.multi_items())) if query else ""
    return path, (f"{path}?{params}&lang=" if params else f"{path}?lang=")


# A path of plain segments, each one character or more: every page's own (/kontroll,
# /avmelding/<token>) is one, and needs no escaping in a link.
_PLAIN_PATH = re.compile(r"(?:/[A-Za-z0-9._~!$&'()*+,;=:@-]+)*/?")


def _link_path(path: str) -> str:
    """Any other path (a page that does not exist) as a link that stays on this site."""
    # Escaped as a URL path (a control character, a space, ?, #, \\, % and letters beyond
    # ASCII), and one slash for several at its start: "//evil.example/x" as a link is another
    # host's page, and so is "/\t/evil.example/x", since a browser drops tabs from a URL.
    return "/" + quote(path, safe="/!$&'()*+,;=:@~").lstrip("/")


# The language links carry the query on (a code, a filter), but not whatever a visitor typed:
# no page reads a value this long or this many, and each would be echoed into every link.
_LINK_VALUE_MAX = 2000
_LINK_PARAMS_MAX = 40


def _kept(items: list[tuple[str, str]]) -> list[tuple[str, str]]:
    kept = [(k, v) for k, v in items if k != "lang" and len(k) <= 64 and len(v) <= _LINK_VALUE_MAX]
    return kept[:_LINK_PARAMS_MAX]


class _Page(HTMLResponse):
    """HTMLResponse(html, status, headers), made without its generality when no headers."""

    def __init__(self, html: str, status: int, headers: Mapping[str, str] | None) -> None:
        if headers or status < 200 or status in (204, 304):
            super().__init__(html, status, headers)
            return
        self.status_code = status
        self.background = None
        self.body = body = html.encode()
        self.raw_headers = [(b"content-length", str(len(body)).encode()), HTML_CONTENT_TYPE]


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
