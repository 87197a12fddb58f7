"""The headers on every response: security headers, no caching of pages, bounded request bodies."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

from starlette.middleware.body_limit import RequestBodyLimitMiddleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

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


# What an answer made outside SecurityHeaders must carry itself: Starlette's error middleware,
# which answers an exception no view caught, lies outside every middleware of the app.
OUTSIDE_HEADERS = {**SECURITY_HEADERS, "cache-control": "no-store"}

_SECURITY_HEADERS = [(k.encode(), v.encode()) for k, v in SECURITY_HEADERS.items()]
_SECURITY_NAMES = frozenset(k for k, _ in _SECURITY_HEADERS)
_NO_STORE = (b"cache-control", b"no-store")
# An HTML page's Content-Type, encoded once: site._Page sends it, html_headers with the rest.
HTML_CONTENT_TYPE = (b"content-type", b"text/html; charset=utf-8")


class SecuredHeaders(list[tuple[bytes, bytes]]):
    """A response's headers that already hold what SecurityHeaders would add: it sends them as
    they are. Made only by html_headers()."""


def html_headers(length: int) -> SecuredHeaders:
    """An HTML page's headers, with the security headers and no-store, encoded once."""
    return SecuredHeaders([(b"content-length", b"%d" % length), *_HTML_SECURED])


# What SecurityHeaders makes of site._Page's headers, after its Content-Length.
_HTML_SECURED = (HTML_CONTENT_TYPE, *_SECURITY_HEADERS, _NO_STORE)


class SecurityHeaders:
    """ASGI middleware: the security headers on every response, no caching of anything but the
    static files (pages, the register's JSON and documents name codes, tokens and who asked),
    and a bound on the size of request bodies (a 413 when a client sends more than
    max_body_size).

    A request without Content-Length or Transfer-Encoding has no body (HTTP/1.1), so only
    requests with one go through Starlette's body limit: a GET skips its work. One whose
    Content-Length is already too big gets `too_large`'s answer (the site's own page in the
    visitor's language) without its body being read; a chunked body that grows too big is
    stopped by Starlette's limit inside the app, where the site's error page answers too. A GET
    or HEAD without a body for a path in `direct` goes straight to that path's ASGI app, past
    Starlette's exception middleware and router: the same app the router would have found
    (its route must take GET), which raises no HTTPException, for the pages that answer most.
    A path matched by one of `larger`'s patterns may send up to that pattern's size instead
    (the console's template editor).
    """

    def __init__(
        self,
        app: ASGIApp,
        max_body_size: int | None = None,
        direct: Mapping[str, ASGIApp] | None = None,
        too_large: ASGIApp | None = None,
        larger: Sequence[tuple[re.Pattern[str], int]] = (),
    ) -> None:
        self.app = app
        self.max_body_size = max_body_size
        self.too_large = too_large
        self.limited = (
            app if max_body_size is None else RequestBodyLimitMiddleware(app, max_body_size)
        )
        self.larger = [
            (pattern, size, RequestBodyLimitMiddleware(app, size)) for pattern, size in larger
        ]
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
                cached = static
                for name, value in message.get("headers", []):
                    lower = name.lower()
                    if lower in _SECURITY_NAMES:
                        continue  # ours replace the app's
                    cached = cached or lower == b"cache-control"  # the app's own choice
                    headers.append((name, value))
                headers += _SECURITY_HEADERS
                if not cached:
                    headers.append(_NO_STORE)
                message["headers"] = headers
            await send(message)

        static = scope["path"].startswith("/static/")
        app = self.app
        for name, value in scope["headers"]:
            if name in _BODY_HEADERS:
                app, limit = self.limited, self.max_body_size
                for pattern, size, limited in self.larger:
                    if pattern.fullmatch(scope["path"]):
                        app, limit = limited, size
                        break
                if name == b"content-length" and self.too_large and _over(value, limit):
                    app = self.too_large
                break
        else:
            # Under a root path the router matches what follows it: leave that to the router.
            if scope["method"] in _READS and not scope.get("root_path"):
                app = self.direct.get(scope["path"], app)
        await app(scope, receive, send_with_headers)


def _over(length: bytes, limit: int | None) -> bool:
    try:
        return limit is not None and int(length) > limit
    except ValueError:
        return False  # uvicorn refuses a malformed Content-Length before the app sees it


_BODY_HEADERS = frozenset((b"content-length", b"transfer-encoding"))  # as uvicorn gives them
_READS = frozenset(("GET", "HEAD"))
