"""The public pages: verify a code, the register, feedback, document requests, unsubscribe.

Each view parses its input, calls the library, and renders; nothing here decides anything a
test of the library could not check.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import mimetypes
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, PlainTextResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import Receive, Scope, Send

from varsel import codes, contacts, documents, feedback, ratelimit, register, verify
from varsel.campaign import CampaignSpec
from varsel.channel.smtp import RelayConfig
from varsel.db import Database
from varsel.erasure import is_stand_in
from varsel.errors import VarselError
from varsel.ratelimit import GLOBAL, Decision, Limit
from varsel.web import answers, genuine
from varsel.web.batch import GroupCommit
from varsel.web.site import (
    N_,
    Site,
    client_ip,
    gettext,
    language_of,
    page_address,
    site_key,
    visitor_key,
)

log = logging.getLogger("varsel.web")

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


async def read_form(request: Request) -> FormData:
    """The posted form, with bounds on what a hostile client can make us parse."""
    return await request.form(max_files=0, max_fields=20, max_part_size=8192)


def _text(form: Mapping[str, Any], name: str) -> str:
    value = form.get(name, "")
    return value.strip() if isinstance(value, str) else ""


# -- front page -----------------------------------------------------------------------


def home(request: Request) -> Response:
    """The front page: what this site is and where to go."""
    return site_of(request).render(request, "home.html", language_of(request))


# -- verify ---------------------------------------------------------------------------


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
    """GET /kontroll: the form, and the answer when ?kode= is given."""
    # Async: the lookup awaits its group commit on the loop, with no hop to a thread.
    site = site_of(request)
    language = language_of(request)
    typed = request.query_params.get("kode")
    if typed is None:
        return site.render(request, "verify.html", language, {"typed": "", "errors": {}})
    if not typed.strip():
        errors = {"kode": N_("Skriv inn koden fra e-posten eller brevet.")}
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
    text = genuine.page(language, found, path, here, site.root)
    if text is None:
        return site.render(request, genuine.TEMPLATE, language, genuine.context(found))
    return genuine.Page(text)


# erasure.ERASED_NAME, the name an erased business keeps in a campaign's rows (Bokmål).
ERASED = N_("(fjernet fra Enhetsregisteret)")
ERASED_ADDRESS = N_("(adressen er slettet)")


def with_erasure_shown(found: verify.Found, language: str) -> verify.Found:
    """A business removed from the registry (erased) named as such in the page's language,
    and the address erased with it (a delivery it had alone) said to be deleted.

    For every page that shows a message's businesses or address: the genuine page and the
    unsubscribe pages. (The orgnr filter shows no number for such a business.)
    """
    if not any(is_stand_in(unit.orgnr) for unit in found.units):
        return found  # an address is erased only with the business it was sent to alone
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


# -- register -------------------------------------------------------------------------


def register_page(request: Request) -> Response:
    """GET /varsler: every genuine campaign."""
    site = site_of(request)
    with site.store.connection() as db:
        items = register.entries(db)
    return site.render(request, "register.html", language_of(request), {"entries": items})


def register_json(request: Request) -> Response:
    """GET /varsler.json: the register as data."""
    with site_of(request).store.connection() as db:
        items = register.entries(db)
    return JSONResponse({"campaigns": [e.as_dict() for e in items]})


# -- feedback -------------------------------------------------------------------------

USEFULNESS = ("1", "2", "3", "4", "5")
RELEVANT = {"ja": True, "nei": False}


def _feedback_context(
    db: Any, form: Mapping[str, Any], errors: Errors, request: Request
) -> dict[str, Any]:
    code = _text(form, "kode") or request.query_params.get("kode", "")
    campaign = _text(form, "kampanje") or request.query_params.get("kampanje", "")
    return {
        "form": {k: _text(form, k) for k in ("usefulness", "relevant", "channel", "comment")},
        "code": code[:64],
        "campaign": campaign[:12],
        "campaigns": register.entries(db),
        "errors": errors,
        "channels": [c.value for c in feedback.Channel],
    }


def feedback_form(request: Request) -> Response:
    """GET /tilbakemelding."""
    site = site_of(request)
    with site.store.connection() as db:
        context = _feedback_context(db, {}, {}, request)
    return site.render(request, "feedback.html", language_of(request), context)


def _parse_feedback(
    db: Any, form: Mapping[str, Any], language: str
) -> tuple[feedback.Feedback | None, Errors]:
    errors: Errors = {}
    usefulness = _text(form, "usefulness")
    if usefulness and usefulness not in USEFULNESS:
        errors["usefulness"] = N_("Velg et tall fra 1 til 5.")
    relevant = _text(form, "relevant")
    if relevant and relevant not in RELEVANT:
        errors["relevant"] = N_("Velg ja eller nei.")
    channel = _text(form, "channel")
    if channel and channel not in {c.value for c in feedback.Channel}:
        errors["channel"] = N_("Velg en av kanalene i listen.")
    comment = _text(form, "comment")
    if len(comment) > feedback.MAX_COMMENT:
        errors["comment"] = N_("Teksten kan være på høyst 2000 tegn.")
    if not (usefulness or relevant or channel or comment) and not errors:
        errors["usefulness"] = N_("Svar på minst ett av spørsmålene.")
    campaign_id: int | None = None
    delivery_id: int | None = None
    found = verify.by_code(db, _text(form, "kode")) if _text(form, "kode") else None
    if found is not None:
        campaign_id, delivery_id = found.campaign_id, found.delivery_id
    elif _text(form, "kampanje"):
        chosen = _text(form, "kampanje")
        known = {str(e.campaign_id) for e in register.entries(db)}
        if chosen not in known:
            errors["kampanje"] = N_("Velg en av kampanjene i listen.")
        else:
            campaign_id = int(chosen)
    if errors:
        return None, errors
    return (
        feedback.Feedback(
            campaign_id,
            delivery_id,
            int(usefulness) if usefulness else None,
            RELEVANT[relevant] if relevant else None,
            feedback.Channel(channel) if channel else None,
            comment or None,
            language,
        ),
        {},
    )


FEEDBACK_ALL = "feedback_all"  # the scope of the limit on everyone's feedback together
DOCUMENT_ALL = "document_all"  # the scope of the limit on everyone's document requests together
BUSY_TITLE = N_("Mange bruker skjemaet nå")
BUSY_FEEDBACK = N_("Mange sender tilbakemelding akkurat nå. Vent et minutt og prøv igjen.")
BUSY_DOCUMENT = N_("Mange ber om dokumenter akkurat nå. Vent et minutt og prøv igjen.")


def busy(request: Request, language: str, decision: Decision, message: str) -> Response:
    """The 429 page when the limit of all visitors together refused: this one did no wrong."""
    # Those limits count per minute, so the wait is never longer: the text need not count.
    return site_of(request).render(
        request,
        "error.html",
        language,
        {"title": BUSY_TITLE, "message": message},
        status=429,
        headers={"Retry-After": str(decision.retry_after)},
    )


async def feedback_post(request: Request) -> Response:
    """POST /tilbakemelding: check, limit, store, thank."""
    site = site_of(request)
    form = await read_form(request)
    language = language_of(request, form)
    if not site.csrf_ok(request, form):
        return forbidden(request, language)
    ip = client_ip(request)

    def work() -> Response:
        with site.store.connection() as db:
            answer, errors = _parse_feedback(db, form, language)
            if answer is None:
                context = _feedback_context(db, form, errors, request)
                return site.render(request, "feedback.html", language, context, status=400)
            limit = Limit("feedback_ip", site.settings.feedback_per_ip_hour, 3600)
            everyone = Limit(FEEDBACK_ALL, site.settings.feedback_global_per_minute, 60)
            # Per visitor first: one visitor's flood is stopped there and leaves the rest be.
            decision = ratelimit.consume(db, [(limit, visitor_key(site, ip)), (everyone, GLOBAL)])
            if not decision.allowed:
                if decision.scope == FEEDBACK_ALL:
                    return busy(request, language, decision, BUSY_FEEDBACK)
                return limited(request, language, decision)
            feedback.store(db, answer)
        return site.render(request, "thanks.html", language)

    return await run_in_threadpool(work)


# -- document requests ----------------------------------------------------------------


def _campaign_entry(db: Any, value: str) -> register.Entry | None:
    return register.entry(db, int(value)) if value.isdigit() and len(value) < 12 else None


def document_form(request: Request) -> Response:
    """GET /dokument?kampanje=ID: the form, or the official address when we have no file."""
    site = site_of(request)
    language = language_of(request)
    with site.store.connection() as db:
        entry = _campaign_entry(db, request.query_params.get("kampanje", ""))
        entries = register.entries(db) if entry is None else []
    return site.render(
        request,
        "document.html",
        language,
        {
            "entry": entry,
            "entries": entries,
            "address": "",
            "errors": {},
            "lifetime": documents.lifetime(site.settings.document_link_hours),
        },
    )


async def document_post(request: Request) -> Response:
    """POST /dokument: send a signed link to the address given, within the limits."""
    site = site_of(request)
    form = await read_form(request)
    language = language_of(request, form)
    if not site.csrf_ok(request, form):
        return forbidden(request, language)
    typed = _text(form, "address")[:320]
    settings = site.settings
    ip = client_ip(request)

    def prepare() -> Response | tuple[register.Entry, CampaignSpec, str, documents.Issued, bytes]:
        with site.store.connection() as db:
            entry = _campaign_entry(db, _text(form, "kampanje"))
            if entry is None or not entry.has_file:
                raise HTTPException(404)

            def again(errors: Errors, status: int = 400) -> Response:
                context = {
                    "entry": entry,
                    "entries": [],
                    "address": typed,
                    "errors": errors,
                    "lifetime": documents.lifetime(settings.document_link_hours),
                }
                return site.render(request, "document.html", language, context, status=status)

            if not typed:
                return again({"address": N_("Skriv inn e-postadressen din.")})
            parsed = contacts.normalise_address(
                typed, allow_test_domains=settings.allow_test_domains
            )
            if not parsed.usable:
                return again({"address": N_("Dette ser ikke ut som en e-postadresse.")})
            decision = ratelimit.consume(
                db,
                [
                    (
                        Limit("document_ip", settings.document_per_ip_hour, 3600),
                        visitor_key(site, ip),
                    ),
                    (
                        Limit("document_address", settings.document_per_address_day, 86400),
                        site_key(site, parsed.address),
                    ),
                    (
                        Limit(DOCUMENT_ALL, settings.document_global_per_minute, 60),
                        GLOBAL,
                    ),
                ],
            )
            if not decision.allowed:
                if decision.scope == DOCUMENT_ALL:
                    return busy(request, language, decision, BUSY_DOCUMENT)
                return limited(request, language, decision)
            issued = documents.issue(
                db,
                site.secret,
                entry.campaign_id,
                parsed.address,
                valid_seconds=int(settings.document_link_hours * 3600),
            )
            if isinstance(issued, documents.Pending):
                errors = {
                    "address": N_(
                        "Vi har nylig sendt en lenke til denne adressen. Bruk den, eller vent "
                        "til den går ut."
                    )
                }
                return again(errors, status=409)
            spec = _spec(db, entry.campaign_id)
        try:
            signer = site.signer(spec)
        except VarselError as e:
            log.error("Dokument-e-post kan ikke signeres: %s", e.message)
            return cannot_send(issued)
        data = documents.message(
            from_address=spec.from_address,
            from_name=spec.from_name,
            organisation=spec.organisation,
            to=parsed.address,
            title=entry.document_title,
            url=spec.public_base_url.rstrip("/") + "/dokument/hent/" + issued.token,
            expires_at=issued.expires_at,
            language=language,
            signed_by=signer,
        )
        return entry, spec, parsed.address, issued, data

    def cannot_send(issued: documents.Issued) -> Response:
        # The link never left: forget it, so the address may ask again.
        with site.store.connection() as db:
            documents.withdraw(db, issued.request_id)
        return site.render(
            request,
            "error.html",
            language,
            {
                "title": N_("E-posten kunne ikke sendes"),
                "message": N_("Vi fikk ikke sendt e-posten akkurat nå. Prøv igjen om litt."),
            },
            status=503,
        )

    prepared = await run_in_threadpool(prepare)
    if isinstance(prepared, Response):
        return prepared
    entry, spec, address, issued, data = prepared
    problem = await documents.send(
        RelayConfig.from_url(settings.smtp_url), spec.from_address, address, data
    )
    if problem is not None:
        log.warning("Dokument-e-post til relayet feilet: %s", problem)
        return await run_in_threadpool(cannot_send, issued)
    return site.render(
        request, "document_sent.html", language, {"entry": entry, "address": address}
    )


def _spec(db: Any, campaign_id: int) -> CampaignSpec:
    from varsel.campaign import get_campaign

    return get_campaign(db, campaign_id).spec


def document_download(request: Request) -> Response:
    """GET /dokument/hent/{token}: the file, if the link is ours and still valid."""
    site = site_of(request)
    language = language_of(request)
    token = str(request.path_params["token"])
    with site.store.connection() as db:
        checked = documents.check(db, site.secret, token)
        if isinstance(checked, documents.LinkProblem):
            expired = checked is documents.LinkProblem.EXPIRED
            return site.render(
                request,
                "error.html",
                language,
                {
                    "title": N_("Lenken virker ikke"),
                    "message": N_("Lenken er gått ut. Be om en ny på siden for dokumentet.")
                    if expired
                    else N_("Lenken er ikke gyldig. Be om en ny på siden for dokumentet."),
                },
                status=410 if expired else 404,
            )
        spec = _spec(db, checked.campaign_id)
        file = Path(spec.document_file) if spec.document_file else None
        documents.record_download(db, checked)
    if file is None or not file.is_file():
        # No redirect, ever: the reader types the official address, as the e-mail taught.
        return site.render(request, "document_url.html", language, {"spec": spec})
    media_type = mimetypes.guess_type(file.name)[0] or "application/octet-stream"
    return FileResponse(file, media_type=media_type, filename=file.name)


# -- unsubscribe ----------------------------------------------------------------------


def unsubscribe_form(request: Request) -> Response:
    """GET /avmelding/{token}: the human page."""
    site = site_of(request)
    language = language_of(request)
    with site.store.connection() as db:
        found = verify.by_token(db, str(request.path_params["token"]))
    if found is None:
        raise HTTPException(404)
    context = {"found": with_erasure_shown(found, language), "errors": {}}
    return site.render(request, "unsubscribe.html", language, context)


async def unsubscribe_post(request: Request) -> Response:
    """POST /avmelding/{token}: RFC 8058 one-click, or the human form."""
    site = site_of(request)
    form = await read_form(request)
    token = str(request.path_params["token"])
    if form.get("List-Unsubscribe") == "One-Click":
        # RFC 8058: the mail provider posts this without cookies and must get a 200, not a
        # redirect or a form; the token in the URL is the secret that authorises it.
        def one_click() -> bool:
            with site.store.connection() as db:
                found = verify.by_token(db, token)
                if found is None:
                    return False
                verify.unsubscribe(db, found, verify.UnsubscribeScope.ADDRESS, one_click=True)
            return True

        if not await run_in_threadpool(one_click):
            return PlainTextResponse("Unknown unsubscribe link.\n", status_code=404)
        return PlainTextResponse("Unsubscribed.\n")
    language = language_of(request, form)
    if not site.csrf_ok(request, form):
        return forbidden(request, language)
    scope_text = _text(form, "scope")

    def human() -> Response:
        with site.store.connection() as db:
            found = verify.by_token(db, token)
            if found is None:
                raise HTTPException(404)
            try:
                scope = verify.UnsubscribeScope(scope_text)
            except ValueError:
                errors = {"scope": N_("Velg hva du vil melde av.")}
                return site.render(
                    request,
                    "unsubscribe.html",
                    language,
                    {"found": with_erasure_shown(found, language), "errors": errors},
                    status=400,
                )
            verify.unsubscribe(db, found, scope, one_click=False)
        return site.render(
            request,
            "unsubscribed.html",
            language,
            {"found": with_erasure_shown(found, language), "scope": scope.value},
        )

    return await run_in_threadpool(human)


STATIC = Path(__file__).parent / "static"
VERIFY = VerifyApp()
# Paths SecurityHeaders hands a bodiless GET or HEAD straight to (the router's app for them).
DIRECT = {"/kontroll": VERIFY}

routes = [
    Route("/", home),
    Route("/kontroll", VERIFY, methods=["GET"]),
    Route("/varsler", register_page),
    Route("/varsler.json", register_json),
    Route("/tilbakemelding", feedback_form, methods=["GET"]),
    Route("/tilbakemelding", feedback_post, methods=["POST"]),
    Route("/dokument", document_form, methods=["GET"]),
    Route("/dokument", document_post, methods=["POST"]),
    Route("/dokument/hent/{token}", document_download),
    Route("/avmelding/{token}", unsubscribe_form, methods=["GET"]),
    Route("/avmelding/{token}", unsubscribe_post, methods=["POST"]),
    Mount("/static", StaticFiles(directory=STATIC), name="static"),
]
