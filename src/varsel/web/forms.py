"""What the public forms share: the site, the form read with bounds, and the refusals (403, 429).

The views of public.py, verify_views.py and document_views.py import these; public.py imports
those views for its route table, so the shared parts live here and not in public.py.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import urlencode

from starlette.datastructures import FormData
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from varsel.feedback import MAX_COMMENT
from varsel.ratelimit import Decision
from varsel.web import answers
from varsel.web.site import Site, page_address
from varsel.web.templating import LANGUAGES, N_

Errors = dict[str, str]  # field name -> message id (Bokmål), translated in the template


def site_of(request: Request) -> Site:
    """The Site the app was made with."""
    site: Site = request.app.state.site
    return site


def limited(
    request: Request, language: str, decision: Decision, *, everyone: bool = False
) -> Response:
    """The friendly 429 page (everyone: the limit of all visitors together refused)."""
    minutes = answers.minutes_to_wait(decision)
    return site_of(request).render(
        request,
        answers.LIMITED,
        language,
        answers.limited_context(minutes, minutes, everyone=everyone),
        status=429,
        headers={"Retry-After": str(decision.retry_after)},
    )


def forbidden(request: Request, language: str) -> Response:
    """A form without our token: from another site, or an old page."""
    return site_of(request).render(
        request,
        "error.html",
        language,
        {
            "title": N_("Skjemaet kunne ikke sendes"),
            "message": N_(
                "Skjemaet var for gammelt eller kom ikke fra denne siden. "
                "Gå tilbake, last siden på nytt og prøv igjen."
            ),
        },
        status=403,
    )


# The longest text a form takes (the feedback comment's characters) as a browser sends it:
# up to four UTF-8 bytes a character, each percent-encoded as three.
MAX_FIELD_BYTES = MAX_COMMENT * 4 * 3
_TOO_LONG = ("Field exceeded", "Part exceeded")  # Starlette's messages for a field over the size


async def read_form(request: Request) -> FormData:
    """The posted form, with bounds on what a hostile client can make us parse.

    A field longer than any form allows is still read, so that its view refuses it at the
    field, in the page's language, rather than the whole form being lost.
    """
    # Read first (the site's body limit bounds it) and kept, so the form can be parsed again.
    body = await request.body()
    try:
        return await request.form(max_files=0, max_fields=20, max_part_size=MAX_FIELD_BYTES)
    except HTTPException as e:
        if e.status_code != 400 or not str(e.detail).startswith(_TOO_LONG):
            raise
    # Over MAX_FIELD_BYTES: no field can be longer than the body, which is already in memory.
    return await request.form(max_files=0, max_fields=20, max_part_size=len(body))


def switch_with(request: Request, params: Mapping[str, str]) -> dict[str, str]:
    """The language links of a page that takes these query parameters and no others.

    Site.render's links repeat the whole query: a page that reads only a short value or two
    gives its own, so that text of any length in its address is not echoed on the page.
    """
    path, _ = page_address(request, site_of(request).root)
    query = urlencode([(k, v) for k, v in params.items() if v])
    here = f"{path}?{query}&lang=" if query else f"{path}?lang="
    return {other: here + other for other in LANGUAGES}


def text_field(form: Mapping[str, Any], name: str) -> str:
    """A posted field, stripped ("" when missing or not text)."""
    value = form.get(name, "")
    return value.strip() if isinstance(value, str) else ""


BUSY_TITLE = N_("Mange bruker skjemaet nå")


def busy(request: Request, language: str, decision: Decision, message: str) -> Response:
    """The 429 page when the limit of all visitors together refused: this one did no wrong."""
    # Those limits count per minute, and the sliding estimate holds one for two windows at
    # most, so the text says "a couple of minutes" and need not count; Retry-After is exact.
    return site_of(request).render(
        request,
        "error.html",
        language,
        {"title": BUSY_TITLE, "message": message},
        status=429,
        headers={"Retry-After": str(decision.retry_after)},
    )
