"""The other answers of /kontroll, from slots: an unknown code, text that is not a code, and
a visitor over the limit.

Someone guessing codes gets these pages over and over: the unknown-code page (or the form
again, with its field's error, for text that is not a code) while the limits let them in,
then the "too many attempts" page. Each is the same text in a language but for the code (or
the minutes to wait) and the page's own address, so each is compiled once per language (and
for the limit page, per limit and plural form) into fixed text and slots
(varsel.web.page_slots), checked against Jinja on its first use, and sent as bytes with its
headers encoded once, as the genuine page is. A refusal then costs the store's count and
little else, instead of a Jinja render per guess.
"""

from __future__ import annotations

from collections.abc import Hashable
from typing import Any

from varsel.ratelimit import Decision
from varsel.web.genuine import Page
from varsel.web.page_slots import Compiled, Pages, Refuse, Stand, compile_page
from varsel.web.templating import LANGUAGES, N_, environment, render_text

_pages = Pages()
_TEMPLATES = object()  # the pages' source: the templates, which do not change while serving

UNKNOWN = "unknown.html"
MALFORMED = "verify.html"  # the form again, with the error at its field
LIMITED = "limited.html"


def ngettext_noop(singular: str, plural: str) -> tuple[str, str]:
    """A message with a plural form, marked for the catalogs; the template picks the form."""
    return singular, plural


LIMITED_TITLE = N_("For mange forsøk")
LIMITED_MESSAGE = ngettext_noop(
    "Du har gjort mange forsøk på kort tid. Vent %(minutes)s minutt og prøv igjen.",
    "Du har gjort mange forsøk på kort tid. Vent %(minutes)s minutter og prøv igjen.",
)
# The limit for everyone together: the visitor may not have tried anything before.
BUSY_TITLE = N_("Prøv igjen om litt")
BUSY_MESSAGE = ngettext_noop(
    "Mange sjekker koder akkurat nå. Prøv igjen om %(minutes)s minutt.",
    "Mange sjekker koder akkurat nå. Prøv igjen om %(minutes)s minutter.",
)
MALFORMED_ERROR = N_("Koden er ikke skrevet riktig. Sjekk at du har skrevet av alle tegnene.")
# Text that is not a code is not shown again: only a well-formed code appears on our pages.
MALFORMED_CONTEXT: dict[str, Any] = {"typed": "", "errors": {"kode": MALFORMED_ERROR}}


def minutes_to_wait(decision: Decision) -> int:
    """The whole minutes the limit page asks a visitor to wait (at least one)."""
    return max(1, (decision.retry_after + 59) // 60)


def limited_context(minutes: object, count: int, *, everyone: bool = False) -> dict[str, Any]:
    """limited.html's context: minutes is shown, count picks the plural form.

    everyone: the limit that counts every visitor together refused, not the visitor's own.
    """
    title, (singular, plural) = (
        (BUSY_TITLE, BUSY_MESSAGE) if everyone else (LIMITED_TITLE, LIMITED_MESSAGE)
    )
    return {
        "title": title,
        "singular": singular,
        "plural": plural,
        "minutes": minutes,
        "count": count,
    }


def unknown(language: str, code: str, path: str, here: str, root: str = "") -> Page | None:
    """The unknown-code page (404) for a well-formed code, or None: render it with Jinja."""
    text = _page(UNKNOWN, language, {"typed": code}, path, here, root)
    return None if text is None else Page(text, 404)


def malformed(language: str, path: str, here: str, root: str = "") -> Page | None:
    """The form again with its field's error (400), for text that is not a code, or None."""
    text = _page(MALFORMED, language, {}, path, here, root)
    return None if text is None else Page(text, 400)


def limited(
    language: str,
    decision: Decision,
    path: str,
    here: str,
    root: str = "",
    *,
    everyone: bool = False,
) -> Page | None:
    """The "too many attempts" page (429, Retry-After), or None: render it with Jinja."""
    minutes = minutes_to_wait(decision)
    text = _page(LIMITED, language, {"minutes": minutes}, path, here, root, everyone=everyone)
    if text is None:
        return None
    return Page(text, 429, ((b"retry-after", b"%d" % decision.retry_after),))


def plural_form(language: str, n: int) -> int:
    """Which plural form the language's catalog gives n (0 for one in nb, nn and en)."""
    translations = environment(language).literal_translations  # type: ignore[attr-defined]
    return int(translations.plural(n))


def _page(
    template: str,
    language: str,
    filled: dict[str, Any],
    path: str,
    here: str,
    root: str,
    *,
    everyone: bool = False,
) -> str | None:
    values: dict[Hashable, Any] = {"path": path, "here": here}
    values.update(filled)
    # The limit page's fixed text depends on the limit and on the plural form of the minutes
    # (the first page of each compiles with its own minutes, which pick that form).
    count = filled.get("minutes", 1)
    form = plural_form(language, count) if template == LIMITED else 0
    return _pages.page(
        (template, language, root, everyone, form),
        _TEMPLATES,
        lambda: compiled(template, language, list(filled), root, everyone=everyone, count=count),
        lambda: values,
        lambda: render_text(
            language, template, context(template, filled, path, here, everyone=everyone), root
        ),
    )


def compiled(
    template: str,
    language: str,
    keys: list[str],
    root: str = "",
    *,
    everyone: bool = False,
    count: int = 1,
) -> Compiled:
    """The template compiled with stand-ins for keys, the page's path and its address.

    count: the minutes the limit page's plural form is chosen by (the page is the same for
    every number of that form).
    """

    def render(outputs: list[Stand]) -> str:
        stands = {key: Stand(key, outputs) for key in keys}
        here = Stand("here", outputs)
        page_context = context(
            template, stands, Stand("path", outputs), here, everyone=everyone, count=count
        )
        return render_text(language, template, page_context, root)

    return compile_page(render)


def context(
    template: str,
    filled: dict[str, Any],
    path: str,
    here: str,
    *,
    everyone: bool = False,
    count: int | None = None,
) -> dict[str, Any]:
    """The page's context as Site.render makes it (for a page without a form token)."""
    switch = {other: here + other for other in LANGUAGES}
    own: dict[str, Any]
    if template == LIMITED:
        minutes = filled["minutes"]
        own = limited_context(minutes, minutes if count is None else count, everyone=everyone)
    elif template == MALFORMED:
        own = MALFORMED_CONTEXT
    else:
        own = filled
    return {"csrf": Refuse(), "switch": switch, "path": path, **own}
