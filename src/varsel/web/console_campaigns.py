"""Console pages for campaigns: the segment builder, a new campaign, its page and its actions.

Approve, send, pause, resume and cancel are forms posted to the server, which checks the role,
the CSRF token and four eyes; htmx only refreshes the live counts (segment and progress).
"""

from __future__ import annotations

import re
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from starlette.datastructures import QueryParams
from starlette.responses import Response

from varsel import (
    approval,
    coverage,
    evaluate,
    leases,
    municipality,
    outbox,
    segment,
    send_gate,
    send_lock,
)
from varsel.accounts import Role
from varsel.campaign import (
    CampaignError,
    CampaignStatus,
    create_from_spec,
    get_campaign,
    refuse_pause,
    set_status,
)
from varsel.campaign_spec import (
    NUL_IN_TEXT,
    spec_from_data,
)
from varsel.db import Database
from varsel.digits import ascii_digits
from varsel.errors import Text, VarselError
from varsel.evaluate_render import build_view, render_html
from varsel.retention import forgotten_at
from varsel.segment_criteria import FORM_NAMES, Criteria
from varsel.snapshot import stale_warning
from varsel.unreached import export_unreached
from varsel.web import campaign_outcomes
from varsel.web.console_auth import PREFIX, Page, console, shown, translate
from varsel.web.console_send import Senders, for_console, progress
from varsel.web.console_text import (
    CHANNEL_NAMES,
    EMPLOYEE_RULE_NAMES,
    OUTCOME_NAMES,
    PART_NAMES,
    REACH_NAMES,
    STATE_NAMES,
    STATUS_NAMES,
    send_window,
)
from varsel.web.templating import N_, gettext

# -- criteria from a form -------------------------------------------------------------------

# Form field -> criterion; list fields take several values separated by commas or lines.
_LIST_FIELDS = {
    "kommuner": "municipalities",
    "fylker": "counties",
    "naering": "nace",
    "former": "forms",
    "unntatt": "exclude_forms",
    "sektorer": "sectors",
    "utelat": "exclude_reached_by",  # a follow-up: leave out what these campaigns reached
}
_FLAGS = {
    "konkurs": "include_bankrupt",
    "avvikling": "include_liquidating",
    "slettet": "include_deleted",
}
CRITERIA_FIELDS = (*_LIST_FIELDS, "politi", "ansatte", "regel", *_FLAGS)


def _split(value: str) -> list[str]:
    return [v.strip() for v in value.replace("\n", ",").split(",") if v.strip()][:50]


def criteria_table(values: Mapping[str, Any]) -> dict[str, Any]:
    """The form's criteria as a [segment] table, as a campaign file would have it."""
    table: dict[str, Any] = {}
    for name, key in _LIST_FIELDS.items():
        items = _split(str(values.get(name, ""))[:2000])
        if items:
            table[key] = items
    districts = [d for d in _getlist(values, "politi") if d][:20]
    if districts:
        table["police_districts"] = districts
    employees = str(values.get("ansatte", "")).strip()
    if employees:
        table["min_employees"] = int(employees) if ascii_digits(employees) else employees
    rule = str(values.get("regel", "")).strip()
    if rule and rule != "auto":
        table["employee_rule"] = rule
    for name, key in _FLAGS.items():
        if values.get(name):
            table[key] = True
    return table


def _getlist(values: Mapping[str, Any], name: str) -> list[str]:
    if isinstance(values, QueryParams):
        return [str(v) for v in values.getlist(name)]
    if isinstance(values, _FormValues):
        return values.lists.get(name, [])
    value = values.get(name)
    return [str(value)] if value else []


class _FormValues(dict[str, str]):
    """A posted form's fields, with every value of the repeated ones (checkboxes)."""

    def __init__(self, page: Page) -> None:
        super().__init__(page.form)
        self.lists = page.form_lists


def _criteria_context(values: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "fields": {name: str(values.get(name, "")) for name in CRITERIA_FIELDS},
        "chosen_districts": set(_getlist(values, "politi")),
        "districts": municipality.police_districts(),
        "rules": EMPLOYEE_RULE_NAMES,
    }


def _preview(
    db: Database, table: dict[str, Any], language: str
) -> tuple[segment.Preview | None, str | None]:
    if not table:
        return None, None
    try:
        # The criteria's messages name their source: here the page's word for the selection.
        source = gettext(language, N_("utvalget"))
        criteria = Criteria.from_mapping(table, source, FORM_NAMES)
        return segment.preview(db, criteria, top=10), None
    except VarselError as e:
        return None, translate(language, e.message)


def _preview_context(preview: segment.Preview | None, error: str | None) -> dict[str, Any]:
    return {
        "preview": preview,
        "criteria_error": error,
        "reach_names": REACH_NAMES,
        "municipality_name": coverage.municipality_name,
        "describe_reason": segment.describe_reason,
    }


# -- the segment builder ----------------------------------------------------------------------


@console.route("/utvalg", role=Role.AUTHOR)
def segment_builder(page: Page) -> Response:
    """Criteria and, once any are given, the count and how the businesses can be reached."""
    query = page.request.query_params
    table = criteria_table(query)
    with page.db() as db:
        preview, error = _preview(db, table, page.language)
    return page.render(
        "segment.html",
        {**_criteria_context(query), **_preview_context(preview, error), "query": str(query)},
    )


@console.route("/utvalg/telling", role=Role.AUTHOR)
def segment_count(page: Page) -> Response:
    """The live count (htmx): the same numbers as the builder page, as a fragment."""
    query = page.request.query_params
    with page.db() as db:
        preview, error = _preview(db, criteria_table(query), page.language)
    return page.render(
        "segment_count.html", {**_preview_context(preview, error), "query": str(query)}
    )


# -- a new campaign -------------------------------------------------------------------------

# The form's fields with their labels (as the page shows them) and the definition's table and
# key each fills, so that a mistake the definition's checks find is named at its field.
_SENDER_FIELDS = {
    "name": (N_("Navn på kampanjen"), "campaign", "name"),
    "from_address": (N_("Avsenderadresse"), "sender", "address"),
    "from_name": (N_("Avsendernavn"), "sender", "name"),
    "organisation": (N_("Organisasjon"), "sender", "organisation"),
    "reply_to": (N_("Svaradresse (valgfri)"), "sender", "reply_to"),
    "document_title": (N_("Dokumentets tittel"), "document", "title"),
    "document_url": (N_("Dokumentets adresse (https)"), "document", "url"),
    "public_base_url": (N_("Adressen til kontrollsiden (https)"), "public", "base_url"),
}
MAX_SENDER_FIELD = 300  # characters in each of the form's fields
_FIELD_OF = {(table, key): name for name, (_, table, key) in _SENDER_FIELDS.items()}
MISSING = N_("Fyll inn «%(label)s».")
HAS_NUL = N_("«%(label)s» har et NUL-tegn (\\u0000), som ikke kan lagres; skriv teksten uten det.")
TOO_LONG = N_("«%(label)s» kan ha høyst %(limit)s tegn; her er det %(length)s.")
# The definition's messages that mean "nothing usable was typed".
_MISSING_IDS = ("%(where)s: mangler «%(key)s»", "%(where)s: «%(key)s» skal være tekst")


def _last_sender(db: Database, page: Page) -> tuple[dict[str, str], int | None]:
    """The newest campaign's sender and document, to start from, and that campaign's id."""
    # Most campaigns share them; the form says where they came from.
    row = db.query_one("SELECT id FROM campaigns ORDER BY id DESC LIMIT 1")
    base = {"public_base_url": page.site.settings.public_base_url}
    if row is None:
        return base, None
    spec = get_campaign(db, int(row[0])).spec
    return {
        **base,
        "from_address": spec.from_address,
        "from_name": spec.from_name,
        "organisation": spec.organisation,
        "reply_to": spec.reply_to or "",
        "document_title": spec.document_title,
        "document_url": spec.document_url,
        "public_base_url": spec.public_base_url,
    }, int(row[0])


def _form_context(
    values: Mapping[str, Any],
    preview: segment.Preview | None,
    error: str | None,
    form: dict[str, str],
) -> dict[str, Any]:
    return {
        **_criteria_context(values),
        **_preview_context(preview, error),
        "form": form,
        "labels": {name: label for name, (label, _, _) in _SENDER_FIELDS.items()},
        "error": None,
        "field_errors": {},
        "carried_from": None,
    }


@console.route("/kampanjer/ny", role=Role.AUTHOR)
def campaign_form(page: Page) -> Response:
    """Sender, document and name for a campaign of the criteria the builder passed on."""
    query = page.request.query_params
    table = criteria_table(query)
    with page.db() as db:
        preview, error = _preview(db, table, page.language)
        form, carried_from = _last_sender(db, page)
        stale = _stale(db, page.language)
    context = _form_context(query, preview, error, form)
    return page.render(
        "campaign_new.html", {**context, "carried_from": carried_from, "stale": stale}
    )


def _stale(db: Database, language: str) -> str | None:
    """`campaign create`'s warning about old registry data, in the page's language, or None."""
    warning = stale_warning(db)
    return translate(language, warning) if warning else None


def _field_error(language: str, message: str) -> tuple[str, str] | None:
    """The form field a definition's message is about, and the message in the form's words.

    The definition's checks name a table and key (`skjemaet [document] url: …`), which mean
    nothing on the form: the field's label is put in their place.
    """
    if not isinstance(message, Text):
        return None
    where = str(message.params.get("where", ""))
    found = re.search(r"\[(\w+)\](?: (\w+))?$", where)
    if found is None:
        return None
    table, key = found.group(1), found.group(2) or str(message.params.get("key", ""))
    name = _FIELD_OF.get((table, key))
    if name is None:
        return None
    label = _SENDER_FIELDS[name][0]
    if message.msgid in _MISSING_IDS:
        return name, gettext(language, MISSING) % {"label": gettext(language, label)}
    if message.msgid == NUL_IN_TEXT:
        return name, gettext(language, HAS_NUL) % {"label": gettext(language, label)}
    return name, translate(
        language, Text(message.msgid, **{**message.params, "where": Text(label)})
    )


@console.route("/kampanjer/ny", role=Role.AUTHOR, methods=("POST",))
def campaign_create(page: Page) -> Response:
    """Check the definition, freeze the recipients, fill the outbox; the author is the user."""
    values = _FormValues(page)
    table = criteria_table(values)
    # Kept whole, so that the form shows what was typed when it is refused.
    form = {k: page.form.get(k, "").strip() for k in _SENDER_FIELDS}
    field_errors = {
        k: gettext(page.language, TOO_LONG)
        % {
            "label": gettext(page.language, _SENDER_FIELDS[k][0]),
            "limit": MAX_SENDER_FIELD,
            "length": len(v),
        }
        for k, v in form.items()
        if len(v) > MAX_SENDER_FIELD
    }
    error = None
    if not field_errors:
        try:
            created = _create(page, form, table)
        except VarselError as e:
            at_field = _field_error(page.language, e.message)
            if at_field is None:
                error = translate(page.language, e.message)
            else:
                field_errors[at_field[0]] = at_field[1]
        else:
            return page.redirect(f"{PREFIX}/kampanjer/{created}", laget="1")
    with page.db() as db:
        preview, criteria_error = _preview(db, table, page.language)
        stale = _stale(db, page.language)
    context = _form_context(values, preview, criteria_error, form)
    return page.render(
        "campaign_new.html",
        {**context, "error": error, "field_errors": field_errors, "stale": stale},
        status=400,
    )


def _create(page: Page, form: dict[str, str], table: dict[str, Any]) -> int:
    """Make the campaign the form defines; its id."""
    data: dict[str, Any] = {
        "campaign": {"name": form["name"]},
        "sender": {
            "address": form["from_address"],
            "name": form["from_name"],
            "organisation": form["organisation"],
            **({"reply_to": form["reply_to"]} if form["reply_to"] else {}),
        },
        "document": {"title": form["document_title"], "url": form["document_url"]},
        "public": {"base_url": form["public_base_url"]},
        "segment": table,
    }
    # Empty text is "missing" to the definition's checks, which then name the field.
    for section in ("campaign", "sender", "document", "public"):
        data[section] = {k: v for k, v in data[section].items() if v}
    settings = page.site.settings
    # The definition's messages name their source: here the page's word for the form.
    spec = spec_from_data(data, Path(gettext(page.language, N_("skjemaet"))), settings)
    with page.db() as db:
        created = create_from_spec(db, settings, spec, source_file=None, created_by=page.user.name)
    return created.campaign.id


# -- the campaign page ------------------------------------------------------------------------


def campaign_id(page: Page) -> int:
    """The campaign id in the path (the route only matches digits)."""
    return int(page.request.path_params["cid"])


def _senders(page: Page) -> Senders:
    senders: Senders = page.request.app.state.senders
    return senders


IN_DOUBT_SHOWN = 50  # in-doubt deliveries listed on the campaign page


def _campaign_page(
    page: Page, cid: int, *, error: str | None = None, status: int = 200
) -> Response:
    with page.db() as db:
        campaign = get_campaign(db, cid)
        state = approval.approval_state(db, cid)
        now = progress(db, cid)
        recipients = int(
            db.scalar("SELECT count(*) FROM recipients WHERE campaign_id = ?", (cid,)) or 0
        )
        forgotten = forgotten_at(db, cid)
        doubtful = outbox.in_doubt(db, cid) if now.counts["in_doubt"] else []
        workers_possible = db.dialect == "postgresql"  # `varsel worker` needs PostgreSQL
        failures = campaign_outcomes.failures(db, cid, page.language)
        channels = campaign_outcomes.other_channels(db, cid)
        # Said once more where the new campaign is shown, as `campaign create` says it.
        stale = _stale(db, page.language) if page.request.query_params.get("laget") else None
    # Why the last send stopped: the library's message or the console's own, in the page's
    # language (a relay's reply inside it stays as the relay wrote it).
    problem = _senders(page).problem(cid)
    return page.render(
        "campaign.html",
        {
            "campaign": campaign,
            "spec": campaign.spec,
            "approval": state,
            # Why the approver no longer stands behind it (disabled, demoted), in the page's words.
            "lapsed": shown(page.language, state.lapsed) if state.lapsed else None,
            "progress": now,
            "live": now.live or _senders(page).running(cid),
            "recipients": recipients,
            "workers_possible": workers_possible,
            "forgotten_at": forgotten,
            "in_doubt": doubtful[:IN_DOUBT_SHOWN],
            "in_doubt_total": len(doubtful),
            "error": shown(page.language, error) if error else None,
            "problem": shown(page.language, problem) if problem else None,
            "notice": page.request.query_params.get("melding"),
            "failures": failures,
            "channels": channels,
            "stale": stale,
            "window": send_window(campaign.spec.limits, page.language),
            **_labels(),
        },
        status=status,
    )


def _labels() -> dict[str, Any]:
    return {
        "status_names": STATUS_NAMES,
        "state_names": STATE_NAMES,
        "delivery_state_names": campaign_outcomes.DELIVERY_STATE_NAMES,
        "delivery_channel_names": campaign_outcomes.DELIVERY_CHANNEL_NAMES,
        "part_names": PART_NAMES,
        "Status": CampaignStatus,
    }


@console.route("/kampanjer/{cid:int}", role=Role.VIEWER)
def campaign_page(page: Page) -> Response:
    """Status, four eyes, actions and live progress."""
    return _campaign_page(page, campaign_id(page))


@console.route("/kampanjer/{cid:int}/fremdrift", role=Role.VIEWER)
def campaign_progress(page: Page) -> Response:
    """The progress panel alone, for htmx to poll while a sender is at work."""
    cid = campaign_id(page)
    with page.db() as db:
        now = progress(db, cid)
        channels = campaign_outcomes.other_channels(db, cid)
    live = now.live or _senders(page).running(cid)
    return page.render(
        "progress.html", {"progress": now, "live": live, "channels": channels, **_labels()}
    )


@console.route("/kampanjer/{cid:int}/godkjenn", role=Role.APPROVER, methods=("POST",))
def campaign_approve(page: Page) -> Response:
    """Approve the campaign as the approver saw it: the digest shown must still be current."""
    cid = campaign_id(page)
    with page.db() as db:
        try:
            # The digest is checked in the transaction that stores the approval.
            approval.approve(
                db, page.site.settings, cid, page.user, expected_digest=page.text("digest", 80)
            )
        except approval.StaleDigest:
            return _campaign_page(
                page,
                cid,
                error=N_("Kampanjen er endret siden du åpnet siden. Se over den på nytt."),
                status=409,
            )
        except VarselError as e:
            return _campaign_page(page, cid, error=e.message, status=400)
    return page.redirect(f"{PREFIX}/kampanjer/{cid}", melding="approved")


NOT_APPROVED = N_(
    "Kampanjen er ikke godkjent ennå. En godkjenner som ikke skrev den, må godkjenne den under "
    "«Godkjenning (fire øyne)» på denne siden før den kan sendes."
)


def _unapproved(page: Page, db: Database, cid: int) -> Response | None:
    """The campaign page saying why, when no approval holds for the campaign; else None."""
    try:
        approval.require_approved(db, cid)
    except approval.NotApproved as e:
        # The library's words name the command line's way to approve; here it is this page.
        never = approval.approval_state(db, cid).approval is None
        return _campaign_page(page, cid, error=NOT_APPROVED if never else e.message, status=409)
    return None


@console.route("/kampanjer/{cid:int}/send", role=Role.AUTHOR, methods=("POST",))
def campaign_send(page: Page) -> Response:
    """Start sending in the background, if an approval holds; the console never skips it."""
    cid = campaign_id(page)
    with page.db() as db:
        if (refused := _unapproved(page, db, cid)) is not None:
            return refused
        try:
            # The command line's rule (send_lock): a campaign the workers send is theirs
            # until it is paused; then Send takes it back.
            send_lock.refuse_holder(db, cid)
        except VarselError as e:
            return _campaign_page(page, cid, error=for_console(e.message), status=409)
    _senders(page).start(cid, page.user.name)
    return page.redirect(f"{PREFIX}/kampanjer/{cid}", melding="sending")


@console.route("/kampanjer/{cid:int}/arbeidere", role=Role.AUTHOR, methods=("POST",))
def campaign_to_workers(page: Page) -> Response:
    """Hand an approved campaign to `varsel worker` (PostgreSQL), as `campaign start` does."""
    cid = campaign_id(page)
    with page.db() as db:
        if db.dialect != "postgresql":
            return _campaign_page(page, cid, error=WORKERS_NEED_POSTGRESQL, status=409)
        if (refused := _unapproved(page, db, cid)) is not None:
            return refused
        if _senders(page).running(cid):
            return _campaign_page(page, cid, error=SENDING_HERE, status=409)
        try:
            # The same gate, audit entry and hand-over as `varsel campaign start`.
            send_gate.authorise_send(db, page.site.settings, cid, actor=page.user.name)
            leases.start_campaign(db, cid, page.site.settings.worker_lease_seconds)
        except VarselError as e:
            return _campaign_page(page, cid, error=e.message, status=409)
    return page.redirect(f"{PREFIX}/kampanjer/{cid}", melding="arbeidere")


WORKERS_NEED_POSTGRESQL = N_(
    "Arbeiderne («varsel worker») finnes bare når varsel bruker PostgreSQL. Send kampanjen med "
    "«Send kampanjen». Ingenting er endret."
)
SENDING_HERE = N_("Konsollen sender denne kampanjen nå. Ingenting er endret.")


_STATUS_ACTIONS = {
    "pause": CampaignStatus.PAUSED,
    "gjenoppta": CampaignStatus.READY,
    "avbryt": CampaignStatus.CANCELLED,
}


@console.route("/kampanjer/{cid:int}/pause", role=Role.AUTHOR, methods=("POST",))
def campaign_pause(page: Page) -> Response:
    """Pause a campaign that is sending: its sender stops within a second."""
    cid = campaign_id(page)
    with page.db() as db:
        campaign = get_campaign(db, cid)
    try:
        refuse_pause(campaign)
    except CampaignError:
        # The library's words name the campaign and its status; here it is this page's.
        return _campaign_page(page, cid, error=PAUSE_ONLY_SENDING, status=409)
    return _set_status(page, "pause")


PAUSE_ONLY_SENDING = N_("Kampanjen kan bare pauses mens den sendes.")
CANCEL_UNCONFIRMED = N_(
    "Kryss av for at du forstår at kampanjen ikke kan sendes igjen, og trykk «Avbryt for godt» "
    "på nytt. Ingenting er endret."
)


@console.route("/kampanjer/{cid:int}/gjenoppta", role=Role.AUTHOR, methods=("POST",))
def campaign_resume(page: Page) -> Response:
    """Resume a paused campaign (then send it again)."""
    return _set_status(page, "gjenoppta")


@console.route("/kampanjer/{cid:int}/avbryt", role=Role.AUTHOR, methods=("POST",))
def campaign_cancel(page: Page) -> Response:
    """Cancel for good, once confirmed: what has not gone out is cancelled."""
    if page.form.get("bekreft") != "ja":
        return _campaign_page(page, campaign_id(page), error=CANCEL_UNCONFIRMED, status=400)
    return _set_status(page, "avbryt")


def _set_status(page: Page, action: str) -> Response:
    cid = campaign_id(page)
    with page.db() as db:
        try:
            set_status(db, cid, _STATUS_ACTIONS[action], actor=page.user.name)
        except VarselError as e:
            return _campaign_page(page, cid, error=e.message, status=409)
        leases.status_changed(db, cid)  # the workers', as from the command line
    # A sender, here or anywhere, reads the status every half second and stops.
    return page.redirect(f"{PREFIX}/kampanjer/{cid}", melding=action)


# -- coverage, feedback, exports ------------------------------------------------------------------


@console.route("/kampanjer/{cid:int}/dekning", role=Role.VIEWER)
def campaign_coverage(page: Page) -> Response:
    """Who was reached and how, what recipients thought, and the downloads."""
    cid = campaign_id(page)
    with page.db() as db:
        ev = evaluate.evaluate(db, cid)
    return page.render(
        "coverage.html",
        {
            "campaign": ev.campaign,
            "ev": ev,
            "cov": ev.coverage,
            "outcome_names": OUTCOME_NAMES,
            "channel_names": CHANNEL_NAMES,
            "reached": coverage.REACHED,
        },
    )


@console.route("/kampanjer/{cid:int}/eksport", role=Role.APPROVER, methods=("POST",))
def campaign_export(page: Page) -> Response:
    """The businesses not reached, with postal addresses: personal data, so audited."""
    cid = campaign_id(page)
    kind = page.text("format")
    if kind not in ("csv", "xlsx"):
        return page.problem(N_("Det gikk ikke"), N_("Velg CSV eller XLSX."), 400)
    name = f"ikke-naadd-{cid}.{kind}"
    with tempfile.TemporaryDirectory(prefix="varsel-export-") as folder, page.db() as db:
        get_campaign(db, cid)
        path = Path(folder) / name
        export_unreached(db, cid, path, actor=page.user.name)
        data = path.read_bytes()
    media = (
        "text/csv; charset=utf-8"
        if kind == "csv"
        else "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    )
    return Response(data, media_type=media, headers=_download(name))


@console.route("/kampanjer/{cid:int}/rapport", role=Role.VIEWER)
def campaign_report(page: Page) -> Response:
    """The evaluation report (HTML, everything inline) as a file to keep or send on, in the
    language the operator reads the console in."""
    cid = campaign_id(page)
    with page.db() as db:
        html = render_html(build_view(evaluate.evaluate(db, cid), language=page.language))
    return Response(
        html.encode("utf-8"),
        media_type="text/html; charset=utf-8",
        headers=_download(f"rapport-{cid}.html"),
    )


def _download(name: str) -> dict[str, str]:
    # Personal data and feedback: a file to save, kept out of every cache on the way (the
    # security headers add no-store to HTML themselves).
    headers = {"content-disposition": f'attachment; filename="{name}"'}
    if not name.endswith(".html"):
        headers["cache-control"] = "no-store"
    return headers
