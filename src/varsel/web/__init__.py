"""The public web site: a Starlette app over the library, rendered on the server, no JavaScript."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import re
import socket
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from urllib.parse import unquote

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Match, Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from varsel.config import Settings
from varsel.db import lost
from varsel.errors import StoreError, StoreLost, UserError, os_reason
from varsel.metrics import metrics_view
from varsel.web.console import routes as console_routes
from varsel.web.console_auth import MAX_TEMPLATES_BODY, PREFIX
from varsel.web.console_auth import error_page as console_error_page
from varsel.web.console_send import Senders
from varsel.web.headers import OUTSIDE_HEADERS, SecurityHeaders
from varsel.web.public import DIRECT, routes
from varsel.web.site import Site, language_of
from varsel.web.templating import N_

log = logging.getLogger("varsel.web")

MAX_BODY = 64 * 1024  # the largest public form is feedback: 2000 characters and a few fields
# The template editor's path may send more (console_auth.MAX_TEMPLATES_BODY says why).
LARGER_BODIES = ((re.compile(re.escape(PREFIX) + r"/kampanjer/[0-9]+/maler"), MAX_TEMPLATES_BODY),)

_ERRORS = {
    # A body Starlette cannot read as a form (too many fields, a file, broken multipart):
    # the visitor's request, not the site, went wrong, and sending the form again may do.
    400: (
        N_("Skjemaet kunne ikke leses"),
        N_("Vi kunne ikke lese det som ble sendt. Gå tilbake og send skjemaet på nytt."),
    ),
    404: (N_("Siden finnes ikke"), N_("Vi fant ikke siden du ba om. Sjekk adressen.")),
    405: (N_("Det går ikke an"), N_("Siden kan ikke brukes på den måten.")),
    413: (N_("For mye tekst"), N_("Skjemaet inneholdt mer enn siden tar imot.")),
    500: (N_("Noe gikk galt"), N_("Det oppstod en feil hos oss. Prøv igjen om litt.")),
    # The store failed under the request (PostgreSQL restarting, a failover): not a bug, and
    # over in seconds; the pool finds the store again by itself (see StoreOutage).
    503: (
        N_("Prøv igjen om litt"),
        N_("Tjenesten er midlertidig utilgjengelig. Prøv igjen om litt."),
    ),
}
# Seconds a 503 for a store that went away asks the client to wait: a restart of PostgreSQL.
STORE_RETRY_AFTER = 10


async def _error(request: Request, exc: Exception) -> Response:
    # One handler for every error page: it picks the text, the base template does the rest.
    site: Site = request.app.state.site
    outage = isinstance(exc, StoreOutageError)
    status = exc.status_code if isinstance(exc, HTTPException) else 503 if outage else 500
    title, message = _ERRORS.get(status, _ERRORS[500])
    # An HTTPException's own headers stay (a 429's Retry-After); a 405's Allow names them all.
    # Any other exception is answered outside SecurityHeaders (by Starlette's error middleware,
    # or StoreOutage): this page then brings the headers every other answer gets.
    headers = exc.headers if isinstance(exc, HTTPException) else OUTSIDE_HEADERS
    if outage:
        headers = {**OUTSIDE_HEADERS, "Retry-After": str(STORE_RETRY_AFTER)}
    if status == 405 and (allowed := _allowed(request)):
        headers = {**(headers or {}), "Allow": allowed}
    if request.scope["path"] == PREFIX or request.scope["path"].startswith(PREFIX + "/"):
        return await console_error_page(request, status, title, message, headers)
    return site.render(
        request,
        "error.html",
        language_of(request),
        {"title": title, "message": message},
        status=status,
        headers=headers,
    )


def _allowed(request: Request) -> str:
    """Every method the request's path takes ("" if no route says).

    A page whose GET and POST are routes of their own (/tilbakemelding) gets Starlette's 405
    from the first route the path matched, whose Allow names only that route's methods.
    """
    methods: set[str] = set()
    for route in request.app.router.routes:
        if isinstance(route, Route) and route.matches(request.scope)[0] is not Match.NONE:
            methods |= route.methods or set()
    return ", ".join(sorted(methods))


async def _too_large(scope: Scope, receive: Receive, send: Send) -> None:
    """The 413 page for a request whose Content-Length is over the limit; its body is unread."""
    response = await _error(Request(scope, receive), HTTPException(413))
    await response(scope, receive, send)


class StoreOutageError(Exception):
    """The store failed under a request: it went away, or could not be reached."""


class StoreOutage:
    """ASGI middleware: a request the store failed under gets the 503 page, not the 500's.

    A restart of PostgreSQL or a failover ends the connections of the requests in flight, and
    the store refuses new ones for a few seconds: the visitor is told to try again shortly
    (Retry-After, in the page's language), the log gets one line rather than a traceback, and
    the next request borrows a new connection (Store.connection drops what the server ended).
    Outside SecurityHeaders, so that a page handed straight to its app (/kontroll) gets it too.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def send_noting_start(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, send_noting_start)
        except Exception as e:
            request = Request(scope, receive)
            why = _outage(e, request.app.state.site.store.url)
            if why is None or started:  # half an answer cannot become another
                raise
            log.warning("Lageret svarte ikke; svarer 503 på %s (%s)", scope["path"], why)
            response = await _error(request, StoreOutageError(why))
            await response(scope, receive, send)


def _outage(error: Exception, url: str) -> str | None:
    """Why the store failed under a request (one line), or None if the error is not that."""
    if isinstance(error, StoreLost | StoreError):
        return str(error)  # a new connection refused, or a SQLite store locked too long
    failure = lost(error, url)
    # A damaged SQLite file (not StoreLost) will not mend by waiting: a 500 and its traceback.
    return str(failure) if isinstance(failure, StoreLost) else None


class StripRoot:
    """ASGI middleware: a path under the site's root is routed as the path after it.

    The pages live at the path of the public base URL (/varsel), and their links start with it;
    a proxy may pass /varsel/kontroll on as it is or strip the prefix first. Either way the app
    sees /kontroll, so the routes, SecurityHeaders' direct paths and page_address need no
    prefix of their own.
    """

    def __init__(self, app: ASGIApp, root: str) -> None:
        self.app = app
        self.path = unquote(root)  # scope["path"] is decoded; raw_path is as the client sent it
        self.under = self.path + "/"
        self.raw = root.encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path")
        if path == self.path or (path and path.startswith(self.under)):
            scope = {**scope, "path": path[len(self.path) :] or "/"}
            raw = scope.pop("raw_path", None)
            if raw is not None and raw.startswith(self.raw):
                scope["raw_path"] = raw[len(self.raw) :] or b"/"
            # A raw path escaped otherwise than the root is dropped: raw_path is optional.
        await self.app(scope, receive, send)


PURGE_EVERY = 600.0  # seconds between purges of expired limits and links, in each worker


async def _housekeeping(site: Site) -> None:
    # Every worker purges; the DELETEs are idempotent, so overlapping purges do no harm.
    while True:
        await asyncio.sleep(PURGE_EVERY)
        try:
            await run_in_threadpool(site.purge)
        except Exception:
            log.exception("Opprydding i lagret feilet; prøver igjen om %s s", PURGE_EVERY)


def create_app(settings: Settings) -> Starlette:
    """The public site for these settings (store, secret, limits, relay)."""
    site = Site.from_settings(settings)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await run_in_threadpool(site.purge)  # at start-up, so a restart also cleans up
        task = asyncio.create_task(_housekeeping(site))
        yield
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        site.store.close()

    app = Starlette(
        routes=[
            *routes,
            *console_routes(),
            Route("/metrics", metrics_view),  # off unless VARSEL_METRICS_TOKEN
        ],
        middleware=[
            *([Middleware(StripRoot, root=site.root)] if site.root else []),  # outermost
            Middleware(StoreOutage),
            Middleware(
                SecurityHeaders,
                max_body_size=MAX_BODY,
                direct=DIRECT,
                too_large=_too_large,
                larger=LARGER_BODIES,
            ),
        ],
        exception_handlers={HTTPException: _error, Exception: _error},
        lifespan=lifespan,
    )
    # No redirect from /kontroll/ to /kontroll: Starlette's would build its Location from the
    # Host header and drop the root path (/varsel), sending a reader off the site. A path with
    # a slash too many gets the site's own 404 page instead.
    app.router.redirect_slashes = False
    app.state.site = site
    app.state.senders = Senders(settings)  # the console's background sends
    return app


def app_from_environment() -> Starlette:
    """The public site with settings from the environment (VARSEL_*, VARSEL_CONFIG).

    For uvicorn's own command line and several worker processes:
    `uvicorn --factory varsel.web:app_from_environment --workers 4`.
    """
    return create_app(Settings.load())


def listening_socket(host: str, port: int) -> socket.socket:
    """A bound TCP socket for uvicorn to listen on, whose connections send without delay.

    uvicorn's own socket for several workers is made with protocol 0, so asyncio does not set
    TCP_NODELAY on the connections it accepts, and every answer waited ~40 ms (Nagle's
    algorithm against the client's delayed ACK). Made with IPPROTO_TCP, the accepted sockets
    get TCP_NODELAY from asyncio; it is set on the listening socket too, which Linux passes on
    to them, for event loops that do not set it themselves.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.bind((host, port))
    except OSError as e:
        sock.close()
        raise ListenError(f"Kan ikke lytte på {host}:{port}: {_why(e)}") from None
    sock.set_inheritable(True)  # the workers are processes of their own
    return sock


class ListenError(UserError):
    """The site cannot listen on the address it was given."""


_WHY = {
    errno.EADDRINUSE: "porten er i bruk av et annet program",
    errno.EADDRNOTAVAIL: "adressen finnes ikke på denne maskinen",
    errno.EACCES: "ikke tilgang (porter under 1024 krever særskilte rettigheter)",
}


def _why(error: OSError) -> str:
    if isinstance(error, socket.gaierror):
        return "finner ikke vertsnavnet"
    return _WHY.get(error.errno or 0, os_reason(error))


def serve(
    factory: str,
    *,
    host: str,
    port: int,
    workers: int = 1,
    forwarded_allow_ips: str = "127.0.0.1",
    sock: socket.socket | None = None,
    loop: str = "uvloop",
    http: str = "httptools",
) -> None:
    """Serve an app factory ("module:function") under uvicorn, as `varsel serve` does.

    uvloop and httptools (uvicorn's fast event loop and HTTP parser, as `uvicorn[standard]`
    has them), proxy headers from the trusted proxies, no Server header, no access log (its
    lines would hold every visitor's address and every code and unsubscribe token asked),
    and the listening socket from listening_socket(). The benchmark serves its reference
    apps through this too, so they are compared as production runs (loop and http name
    uvicorn's alternatives, for comparing them).
    """
    import uvicorn
    from uvicorn.config import STARTUP_FAILURE
    from uvicorn.supervisors import Multiprocess

    config = uvicorn.Config(
        factory,
        factory=True,
        host=host,
        port=port,
        workers=workers,
        loop=loop,
        http=http,
        proxy_headers=True,
        forwarded_allow_ips=forwarded_allow_ips,
        server_header=False,
        access_log=False,
    )
    listening = sock if sock is not None else listening_socket(host, port)
    server = uvicorn.Server(config)
    try:
        if workers > 1:
            Multiprocess(config, sockets=[listening]).run()
        else:
            server.run(sockets=[listening])
    finally:
        listening.close()
    if workers == 1 and not server.started:
        sys.exit(STARTUP_FAILURE)  # as uvicorn.run: the app did not start (its error is logged)
