"""The other answers of /kontroll, from slots: an unknown code, and a visitor over the limit.

Someone guessing codes gets these two pages over and over: the unknown-code page while the
limits let them in, then the "too many attempts" page. Each is the same text in a language but
for the code typed (or the minutes to wait) and the page's own address, so each is compiled
once per language into fixed text and slots (varsel.web.page_slots), checked against Jinja on
its first use, and sent as bytes with its headers encoded once, as the genuine page is. A
refusal then costs the store's count and little else, instead of a Jinja render per guess.
"""

from __future__ import annotations

from collections.abc import Hashable
from typing import Any

from varsel.ratelimit import Decision
from varsel.web.genuine import Page
from varsel.web.page_slots import Compiled, Pages, Refuse, Stand, compile_page
from varsel.web.site import LANGUAGES, N_, render_text

_pages = Pages()
_TEMPLATES = object()  # the pages' source: the templates, which do not change while serving

UNKNOWN = "unknown.html"
LIMITED = "error.html"
LIMITED_TITLE = N_("For mange forsøk")
LIMITED_MESSAGE = N_(
    "Du har gjort mange forsøk på kort tid. Vent %(minutes)s minutter og prøv igjen."
)


def minutes_to_wait(decision: Decision) -> int:
    """The whole minutes the limit page asks a visitor to wait (at least one)."""
    return max(1, (decision.retry_after + 59) // 60)


def limited_context(minutes: object) -> dict[str, Any]:
    """error.html's context for a visitor over a limit."""
    return {"title": LIMITED_TITLE, "message": LIMITED_MESSAGE, "minutes": minutes}


def unknown(language: str, typed: str, path: str, here: str, root: str = "") -> Page | None:
    """The unknown-code page (404) for a typed text, or None: render it with Jinja."""
    text = _page(UNKNOWN, language, {"typed": typed}, path, here, root)
    return None if text is None else Page(text, 404)


def limited(language: str, decision: Decision, path: str, here: str, root: str = "") -> Page | None:
    """The "too many attempts" page (429, Retry-After), or None: render it with Jinja."""
    text = _page(LIMITED, language, {"minutes": minutes_to_wait(decision)}, path, here, root)
    if text is None:
        return None
    return Page(text, 429, ((b"retry-after", b"%d" % decision.retry_after),))


def _page(
    template: str, language: str, filled: dict[str, object], path: str, here: str, root: str
) -> str | None:
    values: dict[Hashable, Any] = {"path": path, "here": here}
    values.update(filled)
    return _pages.page(
        (template, language, root),
        _TEMPLATES,
        lambda: compiled(template, language, list(filled), root),
        lambda: values,
        lambda: render_text(language, template, context(template, filled, path, here), root),
    )


def compiled(template: str, language: str, keys: list[str], root: str = "") -> Compiled:
    """The template compiled with stand-ins for keys, the page's path and its address."""

    def render(outputs: list[Stand]) -> str:
        stands = {key: Stand(key, outputs) for key in keys}
        here = Stand("here", outputs)
        return render_text(
            language, template, context(template, stands, Stand("path", outputs), here), root
        )

    return compile_page(render)


def context(template: str, filled: dict[str, Any], path: str, here: str) -> dict[str, Any]:
    """The page's context as Site.render makes it (for a page without a form token)."""
    switch = {other: here + other for other in LANGUAGES}
    own = limited_context(filled["minutes"]) if template == LIMITED else filled
    return {"csrf": Refuse(), "switch": switch, "path": path, **own}
