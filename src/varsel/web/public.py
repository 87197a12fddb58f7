"""The public pages: the front page, the register, feedback, unsubscribe, and the route table.

The verify page lives in verify_views.py, the document requests in document_views.py, and what
the forms share in forms.py.

Each view parses its input, calls the library, and renders; nothing here decides anything a
test of the library could not check.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from varsel import codes, feedback, ratelimit, register, verify
from varsel.erasure import is_stand_in
from varsel.ratelimit import GLOBAL, Limit
from varsel.suppression import SuppressionKind, suppressed
from varsel.web.document_views import document_download, document_form, document_post
from varsel.web.forms import (
    Errors,
    busy,
    forbidden,
    limited,
    read_form,
    site_of,
    switch_with,
    text_field,
)
from varsel.web.site import PROOF_SHAPE, Site, client_ip, language_of, visitor_key
from varsel.web.templating import N_
from varsel.web.verify_views import (
    VERIFY_ALL,
    VerifyApp,
    lookups_of,
    verify_limits,
    with_erasure_shown,
)

log = logging.getLogger("varsel.web")

# -- health -----------------------------------------------------------------------------


def health(request: Request) -> Response:
    """GET /helse: 200 while this process and its store answer, 503 when the store does not.

    For a proxy's or a monitor's health check. The page is public: it says whether the store
    answers, never what or where it is (that goes to the log).
    """
    try:
        with site_of(request).store.connection() as db:
            db.scalar("SELECT 1")
    except Exception as e:
        log.warning("Helsesjekk: lageret svarer ikke (%s)", (str(e) or type(e).__name__).strip())
        return PlainTextResponse("lageret svarer ikke\n", status_code=503)
    # Never cached (a cached "ok" would hide an outage): SecurityHeaders says no-store.
    return PlainTextResponse("ok\n")


# -- front page -----------------------------------------------------------------------


def home(request: Request) -> Response:
    """The front page: what this site is and where to go."""
    return site_of(request).render(request, "home.html", language_of(request))


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


CODE_MALFORMED = N_(
    "Koden fra meldingen er ikke skrevet riktig, så svaret kan ikke knyttes til den. Velg "
    "utsendelsen i listen, eller la den stå tom."
)


def _code_of(typed: str) -> str | None:
    """The code a form carries, as a message prints it; "" for none, None when malformed."""
    if not typed:
        return ""
    canonical = codes.normalise(typed[:64])
    return None if canonical is None else codes.format_code(canonical)


def _feedback_context(
    db: Any, form: Mapping[str, Any], errors: Errors, request: Request
) -> dict[str, Any]:
    code = _code_of(text_field(form, "kode") or request.query_params.get("kode", "").strip())
    campaign = text_field(form, "kampanje") or request.query_params.get("kampanje", "")
    # The genuine page's proof that the code was looked up: kept for the post (Site.proven).
    proof = text_field(form, "bevis") or request.query_params.get("bevis", "").strip()
    if code is None:
        # As /kontroll: text that is not a code is not shown again; the list takes its place.
        errors = {"kampanje": CODE_MALFORMED, **errors}
    shown = {
        "code": code or "",
        "proof": proof if code and PROOF_SHAPE.fullmatch(proof) else "",  # not echoed otherwise
        "campaign": campaign[:12],
    }
    return {
        **shown,
        "form": {k: text_field(form, k) for k in ("usefulness", "relevant", "channel", "comment")},
        "campaigns": register.entries(db),
        "errors": errors,
        "channels": [c.value for c in feedback.Channel],
        # The language links carry the code and mailing as the form does (after a refused
        # form too, whose address has neither), not the address's text.
        "switch": switch_with(
            request, {"kode": shown["code"], "bevis": shown["proof"], "kampanje": shown["campaign"]}
        ),
    }


def feedback_form(request: Request) -> Response:
    """GET /tilbakemelding[?kode=…|?kampanje=…]."""
    site = site_of(request)
    with site.store.connection() as db:
        context = _feedback_context(db, {}, {}, request)
    return site.render(request, "feedback.html", language_of(request), context)


def _parse_feedback(
    db: Any, form: Mapping[str, Any], language: str, found: verify.Found | None
) -> tuple[feedback.Feedback | None, Errors]:
    """The answer a form gives, or the errors at its fields; found is what its code named."""
    errors: Errors = {}
    usefulness = text_field(form, "usefulness")
    if usefulness and usefulness not in USEFULNESS:
        errors["usefulness"] = N_("Velg et tall fra 1 til 5.")
    relevant = text_field(form, "relevant")
    if relevant and relevant not in RELEVANT:
        errors["relevant"] = N_("Velg ja eller nei.")
    channel = text_field(form, "channel")
    if channel and channel not in {c.value for c in feedback.Channel}:
        errors["channel"] = N_("Velg en av kanalene i listen.")
    comment = feedback.comment_text(text_field(form, "comment")).strip()
    if len(comment) > feedback.MAX_COMMENT:
        errors["comment"] = N_("Teksten kan være på høyst 2000 tegn.")
    if not (usefulness or relevant or channel or comment) and not errors:
        errors["usefulness"] = N_("Svar på minst ett av spørsmålene.")
    campaign_id: int | None = None
    delivery_id: int | None = None
    code = _code_of(text_field(form, "kode"))
    chosen = text_field(form, "kampanje")
    # The mailing chosen is checked whether or not the code was found: an error that came only
    # with an unknown code would tell a guesser which codes are genuine.
    if chosen and chosen not in {str(e.campaign_id) for e in register.entries(db)}:
        errors["kampanje"] = N_("Velg en av utsendelsene i listen.")
    # A well-formed code no message has is kept as no code: the thanks page must not tell
    # a guesser which codes are genuine (that is /kontroll's, within its limits).
    if code is None:
        errors["kampanje"] = CODE_MALFORMED
    elif found is not None:
        campaign_id, delivery_id = found.campaign_id, found.delivery_id
    elif chosen and not errors.get("kampanje"):
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


def _proven(site: Site, typed: str, proof: str) -> bool:
    """Whether the form's proof (Site.lookup_proof) holds for the code it carries."""
    canonical = codes.normalise(typed[:64])
    return (
        bool(proof) and canonical is not None and site.proven(codes.format_code(canonical), proof)
    )


def _found_again(site: Site, typed: str) -> verify.Found | None:
    with site.store.connection() as db:
        return verify.by_code(db, typed)


FEEDBACK_ALL = "feedback_all"  # the scope of the limit on everyone's feedback together
BUSY_FEEDBACK = N_("Mange sender tilbakemelding akkurat nå. Vent et par minutter og prøv igjen.")


async def feedback_post(request: Request) -> Response:
    """POST /tilbakemelding: check, limit, store, thank."""
    site = site_of(request)
    form = await read_form(request)
    language = language_of(request, form)
    if not site.csrf_ok(request, form):
        return forbidden(request, language)
    ip = client_ip(request)
    found: verify.Found | None = None
    typed = text_field(form, "kode")
    if typed and _proven(site, typed, text_field(form, "bevis")):
        # The genuine page's link carried a proof that this code was found by a lookup that
        # was counted and recorded then: found again, but not counted or recorded twice (a
        # recipient who checks a code and then answers uses one lookup, not two).
        found = await run_in_threadpool(_found_again, site, typed[:64])
    elif typed:
        # A form that carries a code looks it up, so it is counted and recorded as a lookup on
        # /kontroll is, against the same limits and before anything is decided: otherwise the
        # form would be a way round them to try codes.
        decision, found = await lookups_of(site).run((typed[:64], verify_limits(site, ip)))
        if not decision.allowed:
            return limited(request, language, decision, everyone=decision.scope == VERIFY_ALL)

    def work() -> Response:
        with site.store.connection() as db:
            answer, errors = _parse_feedback(db, form, language, found)
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


# -- unsubscribe ----------------------------------------------------------------------


def _unsubscribe_context(
    db: Any, found: verify.Found, language: str, errors: Errors
) -> dict[str, Any]:
    """The unsubscribe page's context: what it was sent for, and what is stopped already."""
    erased = is_stand_in(found.address)
    address_done = not erased and bool(suppressed(db, SuppressionKind.ADDRESS, [found.address]))
    orgnrs = [u.orgnr for u in found.units if not is_stand_in(u.orgnr)]
    units_done = bool(orgnrs) and len(suppressed(db, SuppressionKind.UNIT, orgnrs)) == len(
        set(orgnrs)
    )
    return {
        "found": with_erasure_shown(found, language),
        "errors": errors,
        "address_erased": erased,
        "address_done": address_done,
        "units_done": units_done,
    }


def unsubscribe_form(request: Request) -> Response:
    """GET /avmelding/{token}: the human page."""
    site = site_of(request)
    language = language_of(request)
    with site.store.connection() as db:
        found = verify.by_token(db, str(request.path_params["token"]))
        if found is None:
            raise HTTPException(404)
        context = _unsubscribe_context(db, found, language, {})
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
    scope_text = text_field(form, "scope")

    def human() -> Response:
        with site.store.connection() as db:
            found = verify.by_token(db, token)
            if found is None:
                raise HTTPException(404)
            try:
                scope = verify.UnsubscribeScope(scope_text)
            except ValueError:
                errors = {"scope": N_("Velg hva du vil melde av.")}
                context = _unsubscribe_context(db, found, language, errors)
                return site.render(request, "unsubscribe.html", language, context, status=400)
            verify.unsubscribe(db, found, scope, one_click=False)
        # Said as done: an erased address's unsubscribe stopped the businesses instead.
        done = verify.unsubscribe_scope(found, scope)
        return site.render(
            request,
            "unsubscribed.html",
            language,
            {"found": with_erasure_shown(found, language), "scope": done.value},
        )

    return await run_in_threadpool(human)


STATIC = Path(__file__).parent / "static"
VERIFY = VerifyApp()
# Paths SecurityHeaders hands a bodiless GET or HEAD straight to (the router's app for them).
DIRECT = {"/kontroll": VERIFY}

routes = [
    Route("/", home),
    Route("/helse", health, methods=["GET"]),
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
