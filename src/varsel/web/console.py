"""The operators' console under /konsoll: the dashboard, accounts and the audit log.

Campaign pages are in console_campaigns.py and console_editor.py, the suppression list in
console_suppress.py, the gate (roles, sessions, CSRF, signing in) in console_auth.py. Each view
parses, calls the library, and renders.
"""

from __future__ import annotations

from datetime import UTC, datetime

from starlette.responses import Response
from starlette.routing import BaseRoute

from varsel import accounts, audit, signin
from varsel.accounts import AccountError, Role
from varsel.campaign import CampaignStatus
from varsel.clock import utcnow_iso
from varsel.errors import VarselError
from varsel.snapshot import list_snapshots
from varsel.web import (  # noqa: F401 - they register routes
    console_campaigns,
    console_editor,
    console_suppress,
)
from varsel.web.console_auth import Page, console, shown
from varsel.web.console_text import STATUS_NAMES
from varsel.web.templating import N_

AUDIT_LIMIT = 200


# -- dashboard ------------------------------------------------------------------------------


@console.route("", role=Role.VIEWER)
def dashboard(page: Page) -> Response:
    """Registry snapshots and their age; campaigns by state."""
    now = datetime.now(UTC)
    with page.db() as db:
        snapshots = list_snapshots(db)[-10:]
        rows = db.query(
            "SELECT id, name, status, created_by, created_at FROM campaigns ORDER BY id DESC"
        )
    by_status = dict.fromkeys(CampaignStatus, 0)
    for r in rows:
        by_status[CampaignStatus(r[2])] += 1
    ages = {
        s.id: (now - datetime.fromisoformat(s.imported_at.replace("Z", "+00:00"))).days
        for s in snapshots
    }
    return page.render(
        "dashboard.html",
        {
            "snapshots": list(reversed(snapshots)),
            "ages": ages,
            "campaigns": [
                {
                    "id": r[0],
                    "name": r[1],
                    "status": CampaignStatus(r[2]),
                    "author": r[3],
                    "created_at": r[4],
                }
                for r in rows
            ],
            "by_status": by_status,
            "status_names": STATUS_NAMES,
        },
    )


# -- accounts (administrators) ----------------------------------------------------------------


def _users_page(
    page: Page,
    *,
    notice: str | None = None,
    error: str | None = None,
    name: str | None = None,
    status: int = 200,
) -> Response:
    with page.db() as db:
        users = accounts.list_users(db)
    now = utcnow_iso()
    return page.render(
        "users.html",
        {
            "users": users,
            "now": now,
            "notice": notice,
            "notice_name": name,
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
    return _users_page(page, notice="added", name=enrolment.user.name)


_USER_ACTIONS = {
    "deaktiver": "disable",
    "aktiver": "enable",
    "las-opp": "unlock",
    "nullstill-totp": "reset",
    "logg-ut-overalt": "sign_out",
    "rolle": "role",
}


@console.route("/brukere/{name}/{action}", role=Role.ADMIN, methods=("POST",))
def user_change(page: Page) -> Response:
    """Disable, enable, unlock, reset TOTP, sign out everywhere, or change role."""
    name = str(page.request.path_params["name"])[:64]
    action = _USER_ACTIONS.get(str(page.request.path_params["action"]))
    if action is None:
        return page.problem(N_("Siden finnes ikke"), N_("Vi fant ikke siden du ba om."), 404)
    settings, actor = page.site.settings, page.user.name
    try:
        with page.db() as db:
            if action == "disable":
                accounts.disable_user(db, name, actor=actor)
            elif action == "enable":
                accounts.enable_user(db, name, actor=actor)
            elif action == "unlock":
                accounts.unlock_user(db, name, actor=actor)
            elif action == "reset":
                accounts.reset_totp(db, settings, name, actor=actor)
            elif action == "sign_out":
                signin.sign_out_everywhere(db, name, actor=actor)
            else:
                try:
                    role = Role(page.text("role"))
                except ValueError:
                    return _users_page(page, error=N_("Velg en rolle."), status=400)
                accounts.set_role(db, name, role, actor=actor)
    except VarselError as e:
        return _users_page(page, error=e.message, status=400)
    return _users_page(page, notice=action, name=name.strip().lower())


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
            "entries": list(reversed(found)),
            "filters": filters,
            "actions": [a.value for a in audit.Action],
            "error": shown(page.language, error) if error else None,
            "limit": AUDIT_LIMIT,
        },
        status=400 if error else 200,
    )


def routes() -> list[BaseRoute]:
    """Every console route, for the app factory."""
    return list(console.routes)
