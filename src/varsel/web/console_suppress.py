"""The suppression list in the console (/konsoll/sperreliste): see, search, add to, lift from.

The same rules as `varsel suppress` (cli_suppress.py): the library normalises, stores and
audits, with the signed-in operator as the actor. Approvers only: the list holds sole
proprietors' addresses, and showing it is recorded as a personal-data export.
"""

from __future__ import annotations

from typing import Any

from starlette.responses import Response

from varsel import suppression
from varsel.accounts import Role
from varsel.suppression import (
    Entry,
    SuppressionError,
    SuppressionKind,
    shown_value,
    source_text,
)
from varsel.web.console_auth import Page, console, shown, translate
from varsel.web.console_text import REASON_NAMES, SUPPRESSION_KIND_NAMES
from varsel.web.templating import N_, gettext

SHOWN_LIMIT = 500  # rows on the page; the caption says how many there are in all
_FIELDS = {SuppressionKind.ADDRESS: "address", SuppressionKind.UNIT: "orgnr"}
_LIMITS = {"address": 320, "orgnr": 40, "note": 200}  # characters kept of each field
SEARCH_LIMIT = 320  # characters kept of a search: an address at most
# PostgreSQL's text cannot hold it, and no note needs it.
NOTE_HAS_NUL = N_("Notatet har et NUL-tegn (\\u0000), som ikke kan lagres; skriv det uten.")
_NOT_LISTED = {
    SuppressionKind.ADDRESS: N_("Adressen %(value)s står ikke på sperrelisten."),
    SuppressionKind.UNIT: N_("Organisasjonsnummeret %(value)s står ikke på sperrelisten."),
}


def _row(entry: Entry, language: str) -> dict[str, Any]:
    return {
        "kind": entry.kind.value,
        "kind_name": SUPPRESSION_KIND_NAMES[entry.kind],
        "value": entry.value,  # as stored: what the remove form posts back
        "shown": shown_value(entry.kind, entry.value),
        "reason": REASON_NAMES[entry.reason],
        "source": entry.source,  # what put it there: web:delivery:ID and the like
        "source_name": translate(language, source_text(entry.source)),
        "note": entry.note,  # as typed: shown as text, never through _()
        "created_at": entry.created_at,
    }


def _list_page(
    page: Page,
    *,
    search: str = "",
    errors: dict[str, str] | None = None,
    error: str | None = None,
    notice: dict[str, Any] | None = None,
    status: int = 200,
) -> Response:
    # Every showing of the list is an export of personal data, the re-rendered ones too.
    with page.db() as db:
        listing = suppression.list_for_operator(
            db,
            actor=page.user.name,
            output="console",
            search=search or None,
            limit=SHOWN_LIMIT,
        )
    errors = errors or {}
    return page.render(
        "suppressions.html",
        {
            "entries": [_row(e, page.language) for e in listing.entries],
            "matched": listing.matched,
            "total": listing.total,
            "limit": SHOWN_LIMIT,
            "search": search,
            "errors": {k: shown(page.language, v) for k, v in errors.items()},
            "error": error,
            "notice": notice,
            # After an addition the form is empty again; after a mistake it keeps what was typed.
            "form": {k: page.text(k, n) for k, n in _LIMITS.items()} if errors else {},
        },
        status=status,
    )


def _search(typed: str) -> str:
    # On one line, as the caption and the search field show it; only spaces: nothing to find.
    return " ".join(typed.split())[:SEARCH_LIMIT]


@console.route("/sperreliste", role=Role.APPROVER)
def suppressions(page: Page) -> Response:
    """The list, newest first; the forms that add and search."""
    return _list_page(page)


@console.route("/sperreliste/finn", role=Role.APPROVER, methods=("POST",))
def suppression_search(page: Page) -> Response:
    """The entries that match a search.

    Posted, never in the address: what is searched for is often an address, and a sole
    proprietor's is personal data, which an address (?finn=) would leave in the proxy's access
    log, the browser's history and the next request's Referer.
    """
    return _list_page(page, search=_search(page.form.get("finn", "")))


@console.route("/sperreliste", role=Role.APPROVER, methods=("POST",))
def suppression_add(page: Page) -> Response:
    """Put an address or an organisation number on the list (reason: an operator added it)."""
    address, orgnr = page.text("address", _LIMITS["address"]), page.text("orgnr", _LIMITS["orgnr"])
    if address and orgnr:
        message = N_("Fyll ut bare ett av feltene: adresse eller organisasjonsnummer.")
        return _list_page(page, errors={"hva": message}, status=400)
    if not (address or orgnr):
        message = N_("Skriv en e-postadresse eller et organisasjonsnummer.")
        return _list_page(page, errors={"hva": message}, status=400)
    if "\x00" in page.form.get("note", ""):
        return _list_page(page, errors={"note": NOTE_HAS_NUL}, status=400)
    kind = SuppressionKind.ADDRESS if address else SuppressionKind.UNIT
    allow = page.site.settings.allow_test_domains
    try:
        value = suppression.normalise_value(kind, address or orgnr, allow_test_domains=allow)
    except SuppressionError as e:
        return _list_page(page, errors={_FIELDS[kind]: e.message}, status=400)
    with page.db() as db:
        result = suppression.add_manual(
            db,
            kind,
            value,
            actor=page.user.name,
            note=page.text("note", _LIMITS["note"]),
            source="console",
        )
    entry = result.entry
    notice = {
        "what": "added" if result.added else "already",
        "unit": kind is SuppressionKind.UNIT,
        "value": shown_value(kind, value),
        "reason": REASON_NAMES[entry.reason],
        "created_at": entry.created_at,
    }
    return _list_page(page, notice=notice)


@console.route("/sperreliste/fjern", role=Role.APPROVER, methods=("POST",))
def suppression_remove(page: Page) -> Response:
    """Lift one entry: the next campaign may contact the address or business again."""
    search = _search(page.form.get("finn", ""))  # what the entry was found by: shown again
    try:
        kind = SuppressionKind(page.text("kind", 20))
    except ValueError:
        message = gettext(page.language, N_("Velg en oppføring i listen."))
        return _list_page(page, search=search, error=message, status=400)
    if "\x00" in page.form.get("note", ""):
        message = gettext(page.language, NOTE_HAS_NUL)
        return _list_page(page, search=search, error=message, status=400)
    typed = page.text("value", 320)
    try:
        # The form posts the stored value; normalising again also takes an IDN in either form.
        allow = page.site.settings.allow_test_domains
        value = suppression.normalise_value(kind, typed, allow_test_domains=allow)
    except SuppressionError:
        value = typed  # as stored under rules since changed; remove_manual says if it is not
    try:
        with page.db() as db:
            note = page.text("note", _LIMITS["note"])
            suppression.remove_manual(db, kind, value, actor=page.user.name, note=note)
    except SuppressionError:
        message = gettext(page.language, _NOT_LISTED[kind]) % {"value": shown_value(kind, value)}
        return _list_page(page, search=search, error=message, status=400)
    notice = {
        "what": "removed",
        "unit": kind is SuppressionKind.UNIT,
        "value": shown_value(kind, value),
    }
    return _list_page(page, search=search, notice=notice)
