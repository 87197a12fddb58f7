"""The answer to a genuine code: its page from slots compiled once per campaign version.

Most answers of /kontroll are this page, and it is the same text for every code of a campaign
version, channel (e-mail, letter, Altinn) and language of the message, in a language of the
page, but for the code, the date sent, the businesses and the page's own address. It is
compiled once per shape (see varsel.web.page_slots) and goes out as bytes with headers encoded
once; a page the slots cannot make is rendered by Jinja as any other.
"""

from __future__ import annotations

import functools
from collections.abc import Hashable
from typing import Any

from starlette.types import Receive, Scope, Send

from varsel import register
from varsel.verify import Found
from varsel.web.headers import html_headers
from varsel.web.page_slots import Compiled, Pages, Refuse, Stand, compile_page
from varsel.web.templating import LANGUAGES, render_text

TEMPLATE = "genuine.html"
_pages = Pages()


class _FoundStand:
    """What the template reads of a Found: the campaign's number and the message's channel,
    and stand-ins for the rest."""

    __slots__ = ("campaign_id", "channel", "language", "sent_at", "units")

    def __init__(self, found: Found, outputs: list[Stand]) -> None:
        self.campaign_id = found.campaign_id
        self.channel = found.channel
        self.language = found.language
        self.sent_at = Stand("sent", outputs) if found.sent_at else None
        self.units = tuple(_UnitStand(i, outputs) for i in range(len(found.units)))


class _UnitStand:
    __slots__ = ("name", "orgnr")

    def __init__(self, position: int, outputs: list[Stand]) -> None:
        self.name = Stand((position, "name"), outputs)
        self.orgnr = Stand((position, "orgnr"), outputs)


def context(found: Found, proof: str = "") -> dict[str, Any]:
    """The template's context for a found code (beside what every page gets); proof is
    Site.lookup_proof's, which its link to the feedback form carries."""
    return {
        "found": found,
        "spec": found.spec,
        "code": found.code,  # as the message prints it
        "proof": proof,
        "subject": register.subject(found.spec, found.language),  # as it was sent
    }


def compiled(language: str, found: Found, root: str = "") -> Compiled:
    """The page for the found code's shape, compiled; NotCompilable if slots cannot make it."""

    def render(outputs: list[Stand]) -> str:
        here = Stand("here", outputs)
        stand = _FoundStand(found, outputs)
        values = {
            "csrf": Refuse(),
            "switch": {other: here + other for other in LANGUAGES},
            "path": Stand("path", outputs),
            "found": stand,
            "spec": found.spec,
            "code": Stand("code", outputs),
            "proof": Stand("proof", outputs),
            "subject": register.subject(found.spec, found.language),
        }
        return render_text(language, TEMPLATE, values, root)

    return compile_page(render)


def values(found: Found, path: str, here: str, proof: str = "") -> dict[Hashable, Any]:
    """The values the compiled page's slots take for a found code."""
    filled: dict[Hashable, Any] = {
        "code": found.code,
        "proof": proof,
        "sent": found.sent_at,
        "here": here,
        "path": path,
    }
    for i, unit in enumerate(found.units):
        filled[(i, "name")] = unit.name
        filled[(i, "orgnr")] = unit.orgnr
    return filled


def jinja_text(
    language: str, found: Found, path: str, here: str, root: str = "", proof: str = ""
) -> str:
    """The page as Site.render makes it (a page that shows no form token)."""
    switch = {other: here + other for other in LANGUAGES}
    page_values = {"csrf": Refuse(), "switch": switch, "path": path, **context(found, proof)}
    return render_text(language, TEMPLATE, page_values, root)


def page(
    language: str, found: Found, path: str, here: str, root: str = "", proof: str = ""
) -> str | None:
    """The genuine page's text, or None when it must be rendered as other pages are."""
    # What decides the fixed text beside the campaign version (found.spec, the source).
    shape = (
        language,
        root,
        found.campaign_id,
        found.channel,
        found.language,
        bool(found.sent_at),
        len(found.units),
    )
    return _pages.page(
        shape,
        found.spec,
        functools.partial(compiled, language, found, root),
        functools.partial(values, found, path, here, proof),
        functools.partial(jinja_text, language, found, path, here, root, proof),
    )


class Page:
    """An HTML page sent as bytes, its headers (security headers included) encoded once; an
    ASGI app, as Starlette's responses are. Status 200 unless given, and any extra headers."""

    __slots__ = ("body", "headers", "status")

    def __init__(
        self, text: str, status: int = 200, extra: tuple[tuple[bytes, bytes], ...] = ()
    ) -> None:
        self.body = text.encode()
        self.status = status
        self.headers = html_headers(len(self.body))
        self.headers.extend(extra)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": self.status, "headers": self.headers})
        await send({"type": "http.response.body", "body": self.body})
