"""The operators' console under /konsoll: the dashboard, accounts and the audit log.

Campaign pages are in console_campaigns.py (what failed and why: campaign_outcomes.py) and
console_editor.py, the suppression list in
console_suppress.py, the gate (roles, sessions, CSRF, signing in) in console_auth.py. Each view
parses, calls the library, and renders.
"""

from __future__ import annotations

import dataclasses
import functools
from datetime import date

from starlette.responses import Response
from starlette.routing import BaseRoute

from varsel import accounts, audit, signin
from varsel.accounts import AccountError, Role
from varsel.campaign import CampaignStatus
from varsel.clock import utcnow_iso
from varsel.errors import VarselError
from varsel.i18n import fmt_int
from varsel.snapshot import STALE_DAYS, data_age, list_snapshots, norway_today
from varsel.web import (  # noqa: F401 - they register routes
    console_campaigns,
    console_editor,
    console_suppress,
)
from varsel.web.console_auth import PREFIX, Page, console, shown
from varsel.web.console_text import STATUS_NAMES
from varsel.web.templating import N_, gettext

AUDIT_LIMIT = 200

# The audit log's actions (audit.Action's values) as the console names them. Keyed by the
# stored value: an entry of an action this table lacks is shown by its code name.
ACTION_NAMES = {
    "sign_in": N_("Innlogging"),
    "sign_in_failed": N_("Mislykket innlogging"),
    "account_locked": N_("Konto låst etter for mange feil"),
    "sign_out": N_("Utlogging"),
    "sign_out_everywhere": N_("Logget ut på alle enheter"),
    "user_add": N_("Konto laget"),
    "user_totp_confirmed": N_("Konto tatt i bruk"),
    "user_totp_reset": N_("Ny TOTP-nøkkel"),
    "user_role": N_("Rolle endret"),
    "user_password": N_("Passord endret"),
    "user_disable": N_("Konto deaktivert"),
    "user_enable": N_("Konto aktivert"),
    "user_unlock": N_("Konto låst opp"),
    "registry_import": N_("Registerdata importert"),
    "registry_update": N_("Registerdata oppdatert"),
    "campaign_create": N_("Kampanje laget"),
    "campaign_edit": N_("Kampanje endret"),
    "campaign_lint": N_("Kampanje sjekket"),
    "campaign_approve": N_("Kampanje godkjent"),
    "campaign_send": N_("Sending startet"),
    "campaign_send_end": N_("Sending stoppet"),
    "letters_make": N_("Brev laget"),
    "campaign_pause": N_("Kampanje pauset"),
    "campaign_resume": N_("Kampanje gjenopptatt"),
    "campaign_cancel": N_("Kampanje avbrutt"),
    "campaign_resend_in_doubt": N_("Usikre sendinger lagt i kø igjen"),
    "campaign_settle_in_doubt": N_("Usikre sendinger avgjort uten ny sending"),
    "campaign_forget": N_("Kontaktdata slettet"),
    "personal_data_export": N_("Personopplysninger hentet ut"),
    "suppression_add": N_("Satt på sperrelisten"),
    "suppression_remove": N_("Tatt av sperrelisten"),
}


def detail_lines(language: str, entry: audit.Entry) -> list[tuple[str, str]]:
    """An entry's detail as (field, value) lines in the language, instead of its JSON."""
    return [
        (audit.printable(key), audit.printable(_value(language, value)))
        for key, value in entry.data.items()
    ]


def _value(language: str, value: object) -> str:
    if value is None:
        return "–"
    if isinstance(value, bool):
        return gettext(language, N_("Ja") if value else N_("Nei"))
    if isinstance(value, int):
        return fmt_int(value)
    if isinstance(value, list):
        return ", ".join(_value(language, v) for v in value) or "–"
    if isinstance(value, dict):
        return ", ".join(f"{k}: {_value(language, v)}" for k, v in value.items()) or "–"
    return str(value)


# The registry's two registers, as the dashboard names its snapshots' kinds.
SNAPSHOT_KIND_NAMES = {"enheter": N_("Enheter"), "underenheter": N_("Underenheter")}


# -- dashboard ------------------------------------------------------------------------------


@console.route("", role=Role.VIEWER)
def dashboard(page: Page) -> Response:
    """Registry snapshots and the age of the data they hold; campaigns by state."""
    today = norway_today()
    with page.db() as db:
        snapshots = list_snapshots(db, newest=10)
        # The age that matters is the registry's state (the dump's date, or the newest change
        # applied since), not when it was imported: a year-old dump imported today is old.
        current = [age for kind in SNAPSHOT_KIND_NAMES if (age := data_age(db, kind, today))]
        rows = db.query(
            "SELECT id, name, status, created_by, created_at, forgotten_at FROM campaigns "
            "ORDER BY id DESC"
        )
    by_status = dict.fromkeys(CampaignStatus, 0)
    for r in rows:
        by_status[CampaignStatus(r[2])] += 1
    # A snapshot's own date: a dump's date, a feed page's newest entry, else when it came in.
    ages = {
        s.id: max(0, (today - date.fromisoformat((s.dump_date or s.imported_at)[:10])).days)
        for s in snapshots
    }
    return page.render(
        "dashboard.html",
        {
            "snapshots": list(reversed(snapshots)),
            "ages": ages,
            "current": current,
            "stale_days": STALE_DAYS,
            "campaigns": [
                {
                    "id": r[0],
                    "name": r[1],
                    "status": CampaignStatus(r[2]),
                    "author": r[3],
                    "created_at": r[4],
                    "forgotten_at": r[5],  # varsel campaign forget erased its contact data
                }
                for r in rows
            ],
            "by_status": by_status,
            "status_names": STATUS_NAMES,
            "kind_names": SNAPSHOT_KIND_NAMES,
        },
    )


# -- accounts (administrators) ----------------------------------------------------------------


def _users_page(
    page: Page,
    *,
    error: str | None = None,
    status: int = 200,
) -> Response:
    query = page.request.query_params
    with page.db() as db:
        users = accounts.list_users(db)
        # What the last change did (after its redirect), about an account that is there to show.
        changed = query.get("endret", "") if error is None else ""
        named = [u for u in users if u.name == query.get("bruker")]
        notice = changed if changed in _NOTICES and named else None
        # A disabled account, or one that may no longer approve, leaves its approvals void: the
        # campaigns are named, as `varsel user disable` and `user set-role` name them.
        voiding = notice == "deaktiver" or (
            notice == "rolle" and not named[0].role.allows(Role.APPROVER)
        )
        lapsed = accounts.lapsed_approvals(db, named[0].name) if voiding else []
    return page.render(
        "users.html",
        {
            "users": users,
            "now": utcnow_iso(),
            "notice": notice,
            "notice_user": named[0] if notice else None,
            "lapsed": lapsed,
            "error": shown(page.language, error) if error else None,
            "form": {k: page.text(k) for k in ("name", "email", "role")},
        },
        status=status,
    )


@console.route("/brukere", role=Role.ADMIN)
def users(page: Page) -> Response:
    """Every account, its state, and the forms that change it."""
    return _users_page(page)


@console.route("/brukere", role=Role.ADMIN, methods=("POST",))
def user_add(page: Page) -> Response:
    """Make an account; its owner enrols the app on /konsoll/ta-i-bruk with the password."""
    try:
        role = Role(page.text("role"))
    except ValueError:
        return _users_page(page, error=N_("Velg en rolle."), status=400)
    try:
        with page.db() as db:
            enrolment = accounts.add_user(
                db,
                page.site.settings,
                page.text("name", 64),
                role,
                page.form.get("password", "")[:1024],
                actor=page.user.name,
                email=page.text("email", 320) or None,
            )
    except AccountError as e:
        return _users_page(page, error=e.message, status=400)
    return page.redirect(f"{PREFIX}/brukere", endret="ny", bruker=enrolment.user.name)


# The forms' addresses (/brukere/NAME/ACTION); each is also the notice's key after the change.
_USER_ACTIONS = ("deaktiver", "aktiver", "las-opp", "nullstill-totp", "logg-ut-overalt", "rolle")
_NOTICES = ("ny", *_USER_ACTIONS)


@console.route("/brukere/{name}/{action}", role=Role.ADMIN, methods=("POST",))
def user_change(page: Page) -> Response:
    """Disable, enable, unlock, reset TOTP, sign out everywhere, or change role."""
    name = str(page.request.path_params["name"])[:64]
    action = str(page.request.path_params["action"])
    if action not in _USER_ACTIONS:
        return page.problem(N_("Siden finnes ikke"), N_("Vi fant ikke siden du ba om."), 404)
    settings, actor = page.site.settings, page.user.name
    try:
        with page.db() as db:
            if action == "deaktiver":
                user = accounts.disable_user(db, name, actor=actor)
            elif action == "aktiver":
                user = accounts.enable_user(db, name, actor=actor)
            elif action == "las-opp":
                user = accounts.unlock_user(db, name, actor=actor)
            elif action == "nullstill-totp":
                # A new password too: the old one may be known to whoever took the phone.
                password = page.form.get("password", "")[:1024]
                user = accounts.reset_totp(db, settings, name, password, actor=actor).user
            elif action == "logg-ut-overalt":
                signin.sign_out_everywhere(db, name, actor=actor)
                user = accounts.get_user(db, name)
            else:
                try:
                    role = Role(page.text("role"))
                except ValueError:
                    return _users_page(page, error=N_("Velg en rolle."), status=400)
                user = accounts.set_role(db, name, role, actor=actor)
    except VarselError as e:
        return _users_page(page, error=e.message, status=400)
    # See the page again (303), so that a reload does not post the change a second time.
    return page.redirect(f"{PREFIX}/brukere", endret=action, bruker=user.name)


# -- the audit log (approvers) ------------------------------------------------------------------


@console.route("/logg", role=Role.APPROVER)
def audit_log(page: Page) -> Response:
    """The chain's state, and the entries filtered by action, actor and date."""
    query = page.request.query_params
    filters = {
        "action": query.get("handling", "")[:40],
        "actor": query.get("aktor", "").strip()[:70],
        "since": query.get("fra", "").strip()[:10],
    }
    error = None
    action = None
    if filters["action"]:
        try:
            action = audit.Action(filters["action"])
        except ValueError:
            error = N_("Velg en handling fra listen.")
    with page.db() as db:
        verification = audit.verify(db)
        found: list[audit.Entry] = []
        if error is None:
            try:
                found = audit.entries(
                    db,
                    action=action,
                    actor=filters["actor"] or None,
                    since=filters["since"] or None,
                    limit=AUDIT_LIMIT,
                )
            except audit.AuditError:
                error = N_("Skriv datoen som ÅÅÅÅ-MM-DD, for eksempel 2025-03-01.")
    return page.render(
        "audit.html",
        {
            "verification": verification,
            # An actor or object may be what a stranger typed at the sign-in: shown escaped.
            "entries": [
                dataclasses.replace(
                    e,
                    actor=audit.printable(e.actor),
                    object=audit.printable(e.object) if e.object else e.object,
                )
                for e in reversed(found)
            ],
            "filters": filters,
            "actions": [a.value for a in audit.Action],
            "action_names": ACTION_NAMES,
            "details": functools.partial(detail_lines, page.language),
            "error": shown(page.language, error) if error else None,
            "limit": AUDIT_LIMIT,
        },
        status=400 if error else 200,
    )


def routes() -> list[BaseRoute]:
    """Every console route, for the app factory."""
    return list(console.routes)
