"""The document requests: a signed link e-mailed to the address given, and the download.

The e-mail goes out only within the limits (per visitor, per address, for everyone together),
and a link that could not be sent is withdrawn so that the address may ask again.
"""

from __future__ import annotations

import logging
import mimetypes
from pathlib import Path
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import FileResponse, Response

from varsel import contacts, documents, ratelimit, register
from varsel.campaign import CampaignSpec
from varsel.channel.smtp_relay import RelayConfig
from varsel.config import Settings
from varsel.digits import ascii_digits
from varsel.errors import VarselError
from varsel.ratelimit import GLOBAL, Limit
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
from varsel.web.site import Site, client_ip, language_of, site_key, visitor_key
from varsel.web.templating import N_

log = logging.getLogger("varsel.web")

DOCUMENT_ALL = "document_all"  # the scope of the limit on everyone's document requests together
BUSY_DOCUMENT = N_("Mange ber om dokumenter akkurat nå. Vent et par minutter og prøv igjen.")


def _campaign_entry(db: Any, value: str) -> register.Entry | None:
    number = ascii_digits(value) and len(value) < 12
    return register.entry(db, int(value)) if number else None


def document_form(request: Request) -> Response:
    """GET /dokument?kampanje=ID: the form, or the official address when we have no file.

    Only the mailing's number is read. A code (?kode=) is not looked up here: this page has
    no limit on lookups, and what it showed would tell a guesser which codes are genuine.
    """
    site = site_of(request)
    language = language_of(request)
    with site.store.connection() as db:
        entry = _campaign_entry(db, request.query_params.get("kampanje", ""))
        entries = register.entries(db) if entry is None else []
    chosen = str(entry.campaign_id) if entry is not None else ""
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
            "switch": switch_with(request, {"kampanje": chosen}),
        },
    )


async def document_post(request: Request) -> Response:
    """POST /dokument: send a signed link to the address given, within the limits."""
    site = site_of(request)
    form = await read_form(request)
    language = language_of(request, form)
    if not site.csrf_ok(request, form):
        return forbidden(request, language)
    typed = text_field(form, "address")[:320]
    settings = site.settings
    ip = client_ip(request)

    def prepare() -> Response | tuple[register.Entry, CampaignSpec, str, documents.Issued, bytes]:
        with site.store.connection() as db:
            entry = _campaign_entry(db, text_field(form, "kampanje"))
            if entry is None or not entry.has_file:
                raise HTTPException(404)

            def again(errors: Errors, status: int = 400) -> Response:
                context = {
                    "entry": entry,
                    "entries": [],
                    "address": typed,
                    "errors": errors,
                    "lifetime": documents.lifetime(settings.document_link_hours),
                    # The form posts to /dokument without ?kampanje=: the language links
                    # open this mailing's form, not the list of every mailing.
                    "switch": switch_with(request, {"kampanje": str(entry.campaign_id)}),
                }
                return site.render(request, "document.html", language, context, status=status)

            if not typed:
                return again({"address": N_("Skriv inn e-postadressen din.")})
            parsed = contacts.normalise_address(
                typed, allow_test_domains=settings.allow_test_domains
            )
            if not parsed.usable:
                return again({"address": N_("Dette ser ikke ut som en e-postadresse.")})
            # The visitor's attempts count, as every form's do; the address's limit counts
            # only links e-mailed to it (see _count_sent), so a stranger's attempts or a
            # "link already sent" cannot use up someone else's address.
            decision = ratelimit.consume(
                db,
                [
                    (
                        Limit("document_ip", settings.document_per_ip_hour, 3600),
                        visitor_key(site, ip),
                    ),
                    (Limit(DOCUMENT_ALL, settings.document_global_per_minute, 60), GLOBAL),
                ],
            )
            if not decision.allowed:
                if decision.scope == DOCUMENT_ALL:
                    return busy(request, language, decision, BUSY_DOCUMENT)
                return limited(request, language, decision)
            pending_error = {
                "address": N_(
                    "Vi har nylig sendt en lenke til denne adressen. Bruk den, eller vent "
                    "til den går ut."
                )
            }
            address_decision = _address_allows(db, site, settings, parsed.address)
            if not address_decision.allowed:
                # A link still usable is the more useful answer: it is in the inbox already.
                if documents.pending(db, parsed.address) is not None:
                    return again(pending_error, status=409)
                domain = address_decision.scope == DOCUMENT_DOMAIN
                return address_limited(request, language, entry, address_decision, domain=domain)
            issued = documents.issue(
                db,
                site.secret,
                entry.campaign_id,
                parsed.address,
                valid_seconds=int(settings.document_link_hours * 3600),
            )
            if isinstance(issued, documents.Pending):
                return again(pending_error, status=409)
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
            url=download_url(spec.public_base_url, issued.token, language),
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
    await run_in_threadpool(_count_sent, site, settings, address)
    deadline = documents.deadline(issued.expires_at, language)
    context = {"entry": entry, "address": address, "deadline": deadline}
    return site.render(request, "document_sent.html", language, context)


def download_url(base_url: str, token: str, language: str) -> str:
    """The link the e-mail carries: its language too, so a problem is told in it."""
    url = base_url.rstrip("/") + "/dokument/hent/" + token
    return url if language == "nb" else f"{url}?lang={language}"


def address_limit(settings: Settings) -> Limit:
    """The limit on links e-mailed to one mailbox a day (counted by its keyed hash)."""
    return Limit("document_address", settings.document_per_address_day, 86400)


DOCUMENT_DOMAIN = "document_domain"  # the scope of the limit on links to one e-mail domain


def domain_limit(settings: Settings) -> Limit:
    """The limit on links e-mailed to addresses of one domain an hour (by its keyed hash)."""
    return Limit(DOCUMENT_DOMAIN, settings.document_per_domain_hour, 3600)


def _address_checks(site: Site, settings: Settings, address: str) -> list[tuple[Limit, str]]:
    """The mailbox's limit, then its domain's: victim+1@ and v.ictim@gmail.com count as one."""
    # Keyed by the mailbox, not the address as typed: sub-addresses (victim+1@, victim+2@, …)
    # all land in one inbox and would otherwise each bring a fresh limit.
    box = documents.mailbox(address)
    domain = box.rpartition("@")[2]
    return [
        (address_limit(settings), site_key(site, box)),
        (domain_limit(settings), site_key(site, "@" + domain)),
    ]


class _Peeked(Exception):
    """Carries a decision out of a transaction rolled back so that nothing was counted."""

    def __init__(self, decision: ratelimit.Decision) -> None:
        self.decision = decision


def _address_allows(db: Any, site: Site, settings: Settings, address: str) -> ratelimit.Decision:
    """Whether the mailbox's and its domain's limits would let one more link go, uncounted."""
    # The limit's own judgement, on a count rolled back at once: a refusal must not count
    # (nothing was sent), and a link is counted only once it has left (_count_sent).
    try:
        with db.transaction():
            raise _Peeked(ratelimit.consume(db, _address_checks(site, settings, address)))
    except _Peeked as peeked:
        return peeked.decision


def _count_sent(site: Site, settings: Settings, address: str) -> None:
    """Count a link the relay accepted against its mailbox's and its domain's limits."""
    with site.store.connection() as db:
        ratelimit.consume(db, _address_checks(site, settings, address))


def address_limited(
    request: Request,
    language: str,
    entry: register.Entry,
    decision: ratelimit.Decision,
    *,
    domain: bool = False,
) -> Response:
    """The 429 page when the address (or its domain) has had its links: it says until when."""
    # About the address, not the visitor: whoever asks may have done nothing wrong.
    when = documents.next_link_at(decision.retry_after, language)
    return site_of(request).render(
        request,
        "document_limited.html",
        language,
        {"entry": entry, "when": when, "domain": domain},
        status=429,
        headers={"Retry-After": str(decision.retry_after)},
    )


def _spec(db: Any, campaign_id: int) -> CampaignSpec:
    from varsel.campaign import get_campaign

    return get_campaign(db, campaign_id).spec


def _is_download(request: Request) -> bool:
    """Whether a request for the file is one download: a GET of it from its first byte.

    A HEAD (a mail filter checking the link) fetches nothing, and a range that does not start
    at 0 is the rest of a download already counted (a download manager resuming, a viewer
    fetching its parts).
    """
    if request.method != "GET":
        return False
    ranges = request.headers.get("range")
    if ranges is None:
        return True
    # Starlette's FileResponse refuses a range in another unit than bytes (400): no download.
    unit, _, sets = ranges.partition("=")
    return unit.strip().lower() == "bytes" and any(
        p.strip().startswith("0-") for p in sets.split(",")
    )


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
                "document_link.html",
                language,
                {"expired": expired},
                status=410 if expired else 404,
            )
        spec = _spec(db, checked.campaign_id)
        file = Path(spec.document_file) if spec.document_file else None
        if _is_download(request):
            documents.record_download(db, checked)
    if file is None or not file.is_file():
        # No redirect, ever: the reader types the official address, as the e-mail taught.
        return site.render(request, "document_url.html", language, {"spec": spec})
    media_type = mimetypes.guess_type(file.name)[0] or "application/octet-stream"
    return FileResponse(file, media_type=media_type, filename=file.name)
