"""The verify page (/kontroll): a code looked up, counted against the limits, and answered.

The lookups of many visitors are committed together (GroupCommit); the answers are mostly
genuine pages sent as bytes (genuine.Page), through VerifyApp with no Request wrapping.
"""

from __future__ import annotations

import dataclasses
import functools

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from varsel import codes, ratelimit, verify
from varsel.db import Database
from varsel.erasure import is_stand_in
from varsel.ratelimit import GLOBAL, Decision, Limit
from varsel.web import answers, genuine
from varsel.web.batch import GroupCommit
from varsel.web.forms import limited, site_of
from varsel.web.site import Site, client_ip, language_of, page_address, visitor_key
from varsel.web.templating import N_, gettext


def verify_limits(site: Site, ip: str) -> list[tuple[Limit, str]]:
    """Per-IP, then global: a guesser is stopped by the first, a botnet by the second."""
    s = site.settings
    per_ip, everyone = _verify_limits(
        s.verify_per_ip, s.verify_window_seconds, s.verify_global_per_minute
    )
    return [(per_ip, visitor_key(site, ip)), (everyone, GLOBAL)]


VERIFY_ALL = "verify_all"  # the scope of the limit on everyone's lookups together


@functools.cache
def _verify_limits(per_ip: int, window: int, per_minute: int) -> tuple[Limit, Limit]:
    return Limit("verify_ip", per_ip, window), Limit(VERIFY_ALL, per_minute, 60)


# A lookup to count: the code as typed and the limits it counts against; and its answer.
Lookup = tuple[str, list[tuple[Limit, str]]]
Answer = tuple[Decision, verify.Found | None]


def count_lookups(db: Database, lookups: list[Lookup]) -> list[Answer]:
    """Find the codes, count each lookup against its limits and record the allowed ones.

    One transaction for a batch of lookups (see GroupCommit): a refused visitor is told
    nothing about the code, and each answer is committed before it is shown. The queries and
    the counts are sent before any answer is read: on PostgreSQL, with the batch's pipeline,
    they make one round trip, and the events and the commit a second.
    """
    finding = verify.find(db, [typed for typed, _ in lookups])
    counting = ratelimit.count(db, [checks for _, checks in lookups])
    found = finding.result()
    decisions = counting.decisions()
    verify.record_lookups(
        db,
        [
            (typed, f)
            for (typed, _), f, d in zip(lookups, found, decisions, strict=True)
            if d.allowed
        ],
    )
    return [(d, f if d.allowed else None) for d, f in zip(decisions, found, strict=True)]


def lookups_of(site: Site) -> GroupCommit[Lookup, Answer]:
    """The site's group commit for code lookups, made on first use."""
    writer = site.writers.get("lookups")
    if writer is None:
        # Not durable: a lookup's count and event are committed before the answer, but on
        # PostgreSQL the answer does not wait for the disk (see GroupCommit). Losing the last
        # fraction of a second of lookups to a crash of the database server costs a few
        # counts, where waiting for the disk would cost most of the throughput.
        writer = site.writers["lookups"] = site.store.group_commit(count_lookups, durable=False)
    return writer


async def verify_page(request: Request) -> Response | genuine.Page:
    """GET /kontroll: the form, and the answer when ?kode= is given; HEAD: the form's headers."""
    # Async: the lookup awaits its group commit on the loop, with no hop to a thread.
    site = site_of(request)
    language = language_of(request)
    typed = request.query_params.get("kode")
    if typed is None or request.method == "HEAD":
        # A HEAD comes from a link checker or a mail scanner, not a visitor: it is not a lookup
        # (no event, no count against the limits), so its answer must not tell a genuine code
        # from any other; the server sends the headers without the body.
        return site.render(request, "verify.html", language, {"typed": "", "errors": {}})
    if not typed.strip():
        errors = {
            "kode": N_("Skriv inn kontrollkoden fra e-posten, brevet eller Altinn-meldingen.")
        }
        return site.render(request, "verify.html", language, {"typed": "", "errors": errors})
    typed = typed[:64]
    # Text that is not a code is counted and recorded as any lookup (verify_unknown, not well
    # formed): a guesser gets no free tries by sending it.
    decision, found = await lookups_of(site).run((typed, verify_limits(site, client_ip(request))))
    path, here = page_address(request, site.root)
    if not decision.allowed:
        everyone = decision.scope == VERIFY_ALL
        refused = answers.limited(language, decision, path, here, site.root, everyone=everyone)
        if refused is not None:
            return refused
        return limited(request, language, decision, everyone=everyone)
    if found is None:
        canonical = codes.normalise(typed)
        if canonical is None:
            # A typo (the check symbol caught it) or a fragment: not a sign of fraud, and not
            # shown again on our page.
            page = answers.malformed(language, path, here, site.root)
            if page is not None:
                return page
            context = answers.MALFORMED_CONTEXT
            return site.render(request, answers.MALFORMED, language, context, status=400)
        # Only a well-formed code is shown, as the message would print it.
        code = codes.format_code(canonical)
        page = answers.unknown(language, code, path, here, site.root)
        if page is not None:
            return page
        return site.render(request, answers.UNKNOWN, language, {"typed": code}, status=404)
    found = with_erasure_shown(found, language)
    proof = site.lookup_proof(found.code)  # the feedback form need not count the code again
    text = genuine.page(language, found, path, here, site.root, proof)
    if text is None:
        return site.render(request, genuine.TEMPLATE, language, genuine.context(found, proof))
    return genuine.Page(text)


# erasure.ERASED_NAME, the name an erased business keeps in a campaign's rows (Bokmål).
ERASED = N_("(fjernet fra Enhetsregisteret)")
ERASED_ADDRESS = N_("(adressen er slettet)")


def with_erasure_shown(found: verify.Found, language: str) -> verify.Found:
    """A business removed from the registry (erased) named as such in the page's language,
    and an erased address (a delivery the business had alone, or a forgotten campaign's) said
    to be deleted.

    For every page that shows a message's businesses or address: the genuine page and the
    unsubscribe pages. (The orgnr filter shows no number for such a business.)
    """
    if not is_stand_in(found.address) and not any(is_stand_in(u.orgnr) for u in found.units):
        return found
    name = gettext(language, ERASED)
    units = tuple(
        dataclasses.replace(unit, name=name) if is_stand_in(unit.orgnr) else unit
        for unit in found.units
    )
    address = gettext(language, ERASED_ADDRESS) if is_stand_in(found.address) else found.address
    return dataclasses.replace(found, units=units, address=address)


class VerifyApp:
    """/kontroll as a bare ASGI app: no Request and response wrapping per request beyond
    verify_page's own (most answers are a genuine page, sent as bytes)."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        answer = await verify_page(Request(scope, receive))
        await answer(scope, receive, send)
