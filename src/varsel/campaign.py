"""Campaigns: the definition (a TOML file), its frozen recipients, and its lifecycle.

Creating a campaign freezes its recipients from the current registry snapshot and resolves
one delivery per usable address (or per unit and address, when the campaign says so), each
with its own verification code. Suppressed addresses and units are marked at once.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

from varsel import codes
from varsel.campaign_spec import (
    LANGUAGES as LANGUAGES,  # noqa: PLC0414  # re-exported
)
from varsel.campaign_spec import (
    CampaignSpec as CampaignSpec,  # noqa: PLC0414  # re-exported
)
from varsel.campaign_spec import load_spec
from varsel.clock import utcnow_iso
from varsel.config import Settings
from varsel.db import Database
from varsel.errors import N_, Text
from varsel.errors import (
    CampaignError as CampaignError,  # noqa: PLC0414  # re-exported
)
from varsel.i18n import fmt_count, fmt_int
from varsel.outbox import DeliveryState
from varsel.segment import check_campaigns, selection_sql
from varsel.segment_criteria import resolve
from varsel.snapshot import latest_snapshot
from varsel.suppression import REASON_LABELS, SuppressionKind, SuppressionReason, reasons


class CampaignStatus(StrEnum):
    """Where a campaign is in its life."""

    READY = "ready"  # created and frozen; may be linted, approved and sent
    SENDING = "sending"  # a sender is working on it
    PAUSED = "paused"  # an operator paused it; resume to go on
    CANCELLED = "cancelled"  # an operator stopped it; nothing more is sent
    DONE = "done"  # every delivery reached a final state


# A status in the library's (and the command line's) words; the console has its own, translated.
STATUS_WORDS = {
    CampaignStatus.READY: N_("klar"),
    CampaignStatus.SENDING: N_("sendes"),
    CampaignStatus.PAUSED: N_("pauset"),
    CampaignStatus.CANCELLED: N_("avbrutt"),
    CampaignStatus.DONE: N_("ferdig"),
}


# -- creating: freeze recipients, resolve deliveries --------------------------------------


@dataclass(frozen=True)
class Campaign:
    """A stored campaign."""

    id: int
    name: str
    status: CampaignStatus
    spec: CampaignSpec
    snapshot_id: int
    created_at: str
    created_by: str | None = None  # the author's user name; None for campaigns made before


@dataclass(frozen=True)
class CreateResult:
    """What creating a campaign did."""

    campaign: Campaign
    units: int
    reach: dict[str, int]
    deliveries: int
    suppressed: int
    shared_addresses: int
    key_notice: str | None
    suppressed_by: dict[SuppressionReason, int] = field(default_factory=dict)  # why, per reason

    def _why(self) -> str:
        """« (1 avmeldt, 1 adressen finnes ikke)»: the suppressed deliveries by reason."""
        if not self.suppressed_by:
            return ""
        parts = [
            f"{fmt_int(n)} {REASON_LABELS[why]}"
            for why, n in sorted(self.suppressed_by.items(), key=lambda kv: (-kv[1], kv[0]))
        ]
        return f" ({', '.join(parts)})"

    def summary(self) -> str:
        r = self.reach
        lines = [
            f"Kampanje {self.campaign.id} «{self.campaign.name}» er opprettet fra snapshot "
            f"{self.campaign.snapshot_id}: {fmt_count(self.units, 'enhet', 'enheter')}, "
            f"{fmt_int(r.get('email', 0))} med brukbar e-post, "
            f"{fmt_int(r.get('phone_only', 0) + r.get('postal_only', 0))} uten.",
            f"{fmt_count(self.deliveries, 'e-post', 'e-poster')} i utboksen"
            + (
                f", {fmt_int(self.suppressed)} stoppet av avmelding/sperre{self._why()}"
                if self.suppressed
                else ""
            )
            + (
                f"; {fmt_count(self.shared_addresses, 'adresse', 'adresser')} "
                "deles av flere enheter"
                if self.shared_addresses
                else ""
            )
            + ".",
        ]
        if self.key_notice:
            lines.append(self.key_notice)
        lines.append(f"Kampanje-id: {self.campaign.id}")
        return "\n".join(lines)


def language_of(maalform: str | None, form: str, country: str | None) -> str:
    """nb or nn by the unit's målform; en for foreign units."""
    if form == "NUF" or (country and country != "NO"):
        return "en"
    if maalform and maalform.lower().startswith("nynorsk"):
        return "nn"
    return "nb"


def create_campaign(
    db: Database, settings: Settings, path: Path, *, created_by: str | None = None
) -> CreateResult:
    """Create a campaign from its TOML file: check it, freeze recipients, fill the outbox."""
    spec = load_spec(path, settings)
    return create_from_spec(
        db, settings, spec, source_file=str(path.resolve()), created_by=created_by
    )


def check_definition(spec: CampaignSpec, where: str) -> None:
    """Refuse a definition that lint would refuse on its own, whatever the store holds.

    Templates that cannot be rendered, links elsewhere, a message without the code: the checks
    that need no DKIM key and no recipients, so that nothing is frozen that can never be sent.
    """
    from varsel.lint import definition_findings
    from varsel.lint_report import Severity

    errors = [f for f in definition_findings(spec) if f.severity is Severity.ERROR]
    if not errors:
        return
    message = Text("%(where)s: %(why)s", where=where, why=errors[0].message)
    if len(errors) > 1:
        message = Text("%(error)s (og %(more)s feil til)", error=message, more=len(errors) - 1)
    raise CampaignError(message)


def create_from_spec(
    db: Database,
    settings: Settings,
    spec: CampaignSpec,
    *,
    source_file: str | None,
    created_by: str | None = None,
) -> CreateResult:
    """Create a campaign from a checked definition (a file's, or the console's form)."""
    from varsel import audit
    from varsel.keys import ensure_key

    check_definition(spec, source_file or f"«{spec.name}»")

    snapshot = latest_snapshot(db, "enheter")
    if snapshot is None:
        raise CampaignError(Text("lageret har ingen registerdata; importer en dump først"))
    resolved = resolve(spec.criteria)
    check_campaigns(db, spec.criteria)  # a follow-up's earlier campaigns must exist
    key_notice = ensure_key(
        settings, spec.sender_domain, spec.dkim_selector, ed25519=spec.dkim_ed25519
    )
    sql, params = selection_sql(spec.criteria, resolved)
    now = utcnow_iso()
    with db.transaction():
        campaign_id = int(
            db.execute(
                "INSERT INTO campaigns (name, status, spec, source_file, criteria, snapshot_id, "
                "sender_address, per_unit, created_at, updated_at, created_by) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
                (
                    spec.name,
                    CampaignStatus.READY.value,
                    spec.as_json(),
                    source_file,
                    json.dumps(spec.criteria.as_dict(), ensure_ascii=False),
                    snapshot.id,
                    spec.from_address,
                    spec.per_unit,
                    now,
                    now,
                    created_by,
                ),
            ).fetchone()[0]
        )
        rows = db.query(
            "SELECT u.orgnr, u.name, u.form, sel.municipality, u.employees, u.has_employees, "
            "u.nace1, u.sector, u.maalform, u.country, sel.reach "
            f"FROM ({sql}) sel JOIN units u ON u.orgnr = sel.orgnr ORDER BY u.orgnr",
            params,
        )
        recipients = [
            (
                campaign_id,
                r[0],
                r[1],
                r[2],
                r[3],
                r[4],
                bool(r[5]),
                r[6],
                r[7],
                language_of(r[8], r[2], r[9]),
                r[10],
            )
            for r in rows
        ]
        db.insert_rows(
            "recipients",
            (
                "campaign_id",
                "orgnr",
                "name",
                "form",
                "municipality",
                "employees",
                "has_employees",
                "nace1",
                "sector",
                "language",
                "reach",
            ),
            recipients,
        )
        language = {r[1]: r[9] for r in recipients}
        addresses = db.query(
            "SELECT c.address, c.orgnr FROM contacts c JOIN recipients r "
            "ON r.orgnr = c.orgnr AND r.campaign_id = ? WHERE c.usable = ? "
            "ORDER BY c.address, c.orgnr",
            (campaign_id, True),
        )
        groups: dict[str, list[str]] = {}
        for address, orgnr in addresses:
            groups.setdefault(address, []).append(orgnr)
        shared = sum(1 for units in groups.values() if len(units) > 1)
        suppressed_addresses = reasons(db, SuppressionKind.ADDRESS, groups)
        suppressed_units = reasons(
            db, SuppressionKind.UNIT, [o for units in groups.values() for o in units]
        )
        deliveries = 0
        n_suppressed = 0
        suppressed_by: dict[SuppressionReason, int] = {}
        plan: list[tuple[str, str, list[str]]] = []
        for address, units in groups.items():
            if spec.per_unit:
                plan += [(f"{address}|{orgnr}", address, [orgnr]) for orgnr in units]
            else:
                plan.append((address, address, units))
        for key, address, units in plan:
            blocked = address in suppressed_addresses or all(u in suppressed_units for u in units)
            live_units = units if blocked else [u for u in units if u not in suppressed_units]
            langs = [language[u] for u in live_units]
            lang = (
                max(set(langs), key=langs.count)
                if len(set(langs)) == 1
                else ("nb" if "nb" in langs or "nn" in langs else langs[0])
            )
            state = DeliveryState.SUPPRESSED if blocked else DeliveryState.QUEUED
            delivery_id = int(
                db.execute(
                    "INSERT INTO deliveries (campaign_id, channel, key, address, language, state, "
                    "code, unsubscribe_token, next_attempt_at, created_at, updated_at) "
                    "VALUES (?, 'email', ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
                    (
                        campaign_id,
                        key,
                        address,
                        lang,
                        state.value,
                        codes.normalise(codes.new_code()),
                        secrets.token_urlsafe(18),
                        now,
                        now,
                        now,
                    ),
                ).fetchone()[0]
            )
            db.insert_rows(
                "delivery_units", ("delivery_id", "orgnr"), [(delivery_id, u) for u in live_units]
            )
            deliveries += 1
            if blocked:
                n_suppressed += 1
                why = suppressed_addresses.get(address) or suppressed_units[units[0]]
                suppressed_by[why] = suppressed_by.get(why, 0) + 1
        audit.record(
            db,
            created_by or audit.SYSTEM,
            audit.Action.CAMPAIGN_CREATE,
            f"campaign:{campaign_id}",
            {
                "name": spec.name,
                "file": source_file,
                "snapshot": snapshot.id,
                "recipients": len(recipients),
                "deliveries": deliveries,
            },
        )
    reach: dict[str, int] = {}
    for r in recipients:
        reach[r[10]] = reach.get(r[10], 0) + 1
    return CreateResult(
        get_campaign(db, campaign_id),
        len(recipients),
        reach,
        deliveries,
        n_suppressed,
        shared,
        key_notice,
        suppressed_by,
    )


# -- reading and changing ---------------------------------------------------------------


def get_campaign(db: Database, campaign_id: int) -> Campaign:
    """One campaign by id; a user error if there is none."""
    row = db.query_one(
        "SELECT id, name, status, spec, snapshot_id, created_at, created_by FROM campaigns "
        "WHERE id = ?",
        (campaign_id,),
    )
    if row is None:
        raise CampaignError(Text("kampanje %(campaign)s finnes ikke", campaign=campaign_id))
    return Campaign(
        int(row[0]),
        row[1],
        CampaignStatus(row[2]),
        CampaignSpec.from_json(row[3]),
        int(row[4]),
        row[5],
        row[6],
    )


@dataclass(frozen=True)
class Summary:
    """One campaign in the list of campaigns: what it is and how far it has come."""

    id: int
    name: str
    status: CampaignStatus
    created_at: str
    created_by: str | None
    units: int  # businesses selected (the frozen recipients)
    emails: int  # e-mail deliveries (one per usable address, or per unit)
    sent: int  # e-mail deliveries the relay accepted (those that bounced later too)
    forgotten_at: str | None  # when its contact data was erased (retention), or None

    def as_dict(self) -> dict[str, object]:
        """For --json: the fields, the status as its value."""
        return {
            "id": self.id,
            "name": self.name,
            "status": self.status.value,
            "created_at": self.created_at,
            "created_by": self.created_by,
            "units": self.units,
            "emails": self.emails,
            "sent": self.sent,
            "forgotten_at": self.forgotten_at,
        }


def summaries(db: Database) -> list[Summary]:
    """Every campaign, newest first, with its counts (index lookups per campaign)."""
    rows = db.query(
        "SELECT c.id, c.name, c.status, c.created_at, c.created_by, "
        "(SELECT count(*) FROM recipients r WHERE r.campaign_id = c.id), "
        "(SELECT count(*) FROM deliveries d WHERE d.campaign_id = c.id AND d.channel = ?), "
        "(SELECT count(*) FROM deliveries d WHERE d.campaign_id = c.id AND d.state IN (?, ?) "
        "AND d.channel = ?), c.forgotten_at "
        "FROM campaigns c ORDER BY c.id DESC",
        ("email", DeliveryState.SENT.value, DeliveryState.BOUNCED.value, "email"),
    )
    return [
        Summary(
            int(r[0]), r[1], CampaignStatus(r[2]), r[3], r[4], int(r[5]), int(r[6]), int(r[7]), r[8]
        )
        for r in rows
    ]


def refuse_pause(campaign: Campaign) -> None:
    """Refuse to pause a campaign no sender works on; the console offers Pause only then.

    A ready campaign has nothing to stop: paused, it would only need resuming before it can
    be sent.
    """
    if campaign.status is not CampaignStatus.SENDING:
        raise CampaignError(
            Text(
                "kampanje %(campaign)s er «%(status)s»; bare en kampanje som sendes, kan pauses",
                campaign=campaign.id,
                status=STATUS_WORDS[campaign.status],
            )
        )


STATUS_ATTEMPTS = 3  # a status changed by another between check and update: checked again


def set_status(
    db: Database, campaign_id: int, status: CampaignStatus, *, actor: str | None = None
) -> Campaign:
    """Pause, resume or cancel: the change reaches a running sender within a second."""
    from varsel import audit

    allowed = {
        CampaignStatus.PAUSED: {CampaignStatus.READY, CampaignStatus.SENDING},
        CampaignStatus.READY: {CampaignStatus.PAUSED},
        CampaignStatus.CANCELLED: {
            CampaignStatus.READY,
            CampaignStatus.SENDING,
            CampaignStatus.PAUSED,
        },
    }
    for _ in range(STATUS_ATTEMPTS):
        campaign = get_campaign(db, campaign_id)
        if status is CampaignStatus.READY and campaign.status is not CampaignStatus.PAUSED:
            # Resume: "«klar» kan ikke settes til «klar»" said nothing an operator could use.
            raise CampaignError(
                Text(
                    "kampanje %(campaign)s er «%(status)s»; bare en pauset kampanje kan gjenopptas",
                    campaign=campaign_id,
                    status=STATUS_WORDS[campaign.status],
                )
            )
        if campaign.status not in allowed.get(status, set()):
            raise CampaignError(
                Text(
                    "kampanje %(campaign)s er «%(status)s» og kan ikke settes til «%(new)s»",
                    campaign=campaign_id,
                    status=STATUS_WORDS[campaign.status],
                    new=STATUS_WORDS[status],
                )
            )
        with db.transaction():
            # Only from the status checked: a sender that finished in between made it done,
            # which a cancel must not overwrite. Changed otherwise, it is checked again.
            if not db.execute(
                "UPDATE campaigns SET status = ?, updated_at = ? WHERE id = ? AND status = ?",
                (status.value, utcnow_iso(), campaign_id, campaign.status.value),
            ).rowcount:
                continue
            if status is CampaignStatus.READY:
                # A workers' campaign resumed is theirs to send at once, without a send to
                # pass the four-eyes gate again: an edit made while it was paused is refused
                # here until someone approves it again (in this transaction: no edit slips in).
                from varsel.send_gate import check_resume

                check_resume(db, campaign_id)
            if status is CampaignStatus.CANCELLED:
                db.execute(
                    "UPDATE deliveries SET state = ?, updated_at = ? WHERE campaign_id = ? "
                    "AND state IN (?, ?)",
                    (
                        DeliveryState.CANCELLED.value,
                        utcnow_iso(),
                        campaign_id,
                        DeliveryState.QUEUED.value,
                        DeliveryState.DEFERRED.value,
                    ),
                )
            action = {
                CampaignStatus.PAUSED: audit.Action.CAMPAIGN_PAUSE,
                CampaignStatus.READY: audit.Action.CAMPAIGN_RESUME,
                CampaignStatus.CANCELLED: audit.Action.CAMPAIGN_CANCEL,
            }[status]
            audit.record(
                db,
                actor or audit.SYSTEM,
                action,
                f"campaign:{campaign_id}",
                {"from": campaign.status.value},
            )
        return get_campaign(db, campaign_id)
    raise CampaignError(
        Text(
            "kampanje %(campaign)s ble endret av noen andre samtidig; prøv igjen",
            campaign=campaign_id,
        )
    )


def update_spec(db: Database, campaign_id: int, spec: CampaignSpec, *, actor: str) -> Campaign:
    """Change a ready or paused campaign's definition; an approval given before no longer holds.

    The recipients stay frozen: a change of selection criteria needs a new campaign.
    """
    from varsel import audit

    campaign = get_campaign(db, campaign_id)
    if campaign.status not in (CampaignStatus.READY, CampaignStatus.PAUSED):
        raise CampaignError(
            Text(
                "kampanje %(campaign)s er «%(status)s» og kan ikke endres",
                campaign=campaign_id,
                status=STATUS_WORDS[campaign.status],
            )
        )
    if spec.criteria != campaign.spec.criteria or spec.per_unit != campaign.spec.per_unit:
        raise CampaignError(
            Text(
                "kampanje %(campaign)s: mottakerne er frosset; lag en ny kampanje for et annet "
                "utvalg",
                campaign=campaign_id,
            )
        )
    old, new = json.loads(campaign.spec.as_json()), json.loads(spec.as_json())
    changed = sorted(k for k in new if old.get(k) != new[k])
    from varsel.leases import WORKERS

    with db.transaction():
        # Only while still ready or paused, and not a ready campaign the workers hold (resumed:
        # theirs to send at once, reading the definition as they go): a send or a resume that
        # came after the check above must not have an unapproved change slip under it.
        if not db.execute(
            "UPDATE campaigns SET spec = ?, name = ?, sender_address = ?, updated_at = ? "
            "WHERE id = ? AND (status = ? OR (status = ? AND coalesce(sender_pid, '') <> ?))",
            (
                spec.as_json(),
                spec.name,
                spec.from_address,
                utcnow_iso(),
                campaign_id,
                CampaignStatus.PAUSED.value,
                CampaignStatus.READY.value,
                WORKERS,
            ),
        ).rowcount:
            now = CampaignStatus(
                db.scalar("SELECT status FROM campaigns WHERE id = ?", (campaign_id,))
            )
            if now is CampaignStatus.READY:
                raise CampaignError(
                    Text(
                        "kampanje %(campaign)s er gitt til arbeiderne, som sender den nå; "
                        "sett den på pause før du endrer den",
                        campaign=campaign_id,
                    )
                )
            raise CampaignError(
                Text(
                    "kampanje %(campaign)s er «%(status)s» og kan ikke endres",
                    campaign=campaign_id,
                    status=STATUS_WORDS[now],
                )
            )
        audit.record(
            db, actor, audit.Action.CAMPAIGN_EDIT, f"campaign:{campaign_id}", {"changed": changed}
        )
    return get_campaign(db, campaign_id)
