"""Campaigns: the definition (a TOML file), its frozen recipients, and its lifecycle.

Creating a campaign freezes its recipients from the current registry snapshot and resolves
one delivery per usable address (or per unit and address, when the campaign says so), each
with its own verification code. Suppressed addresses and units are marked at once.
"""

from __future__ import annotations

import dataclasses
import json
import secrets
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from varsel import codes, contacts
from varsel.clock import utcnow_iso
from varsel.config import Settings
from varsel.db import Database
from varsel.errors import UserError
from varsel.i18n import fmt_int
from varsel.outbox import DeliveryState
from varsel.segment import Criteria, resolve, selection_sql
from varsel.snapshot import latest_snapshot
from varsel.suppression import SuppressionKind, suppressed

LANGUAGES = ("nb", "nn", "en")


class CampaignStatus(StrEnum):
    """Where a campaign is in its life."""

    READY = "ready"  # created and frozen; may be linted, approved and sent
    SENDING = "sending"  # a sender is working on it
    PAUSED = "paused"  # an operator paused it; resume to go on
    CANCELLED = "cancelled"  # an operator stopped it; nothing more is sent
    DONE = "done"  # every delivery reached a final state


class CampaignError(UserError):
    """The campaign definition or the requested action is not valid."""


@dataclass(frozen=True)
class Template:
    """The subject, plain-text and HTML templates of one language."""

    subject: str
    text: str
    html: str
    letter: str = ""  # the printed letter's text (letter_render); "" in campaigns made before


@dataclass(frozen=True)
class Limits:
    """How fast and when a campaign may be sent."""

    rate_per_second: float = 50.0
    connections: int = 4
    per_domain_concurrency: int = 2
    per_domain_per_minute: int = 600
    retry_hours: float = 48.0
    window_days: tuple[str, ...] = ()  # mon..sun; empty: every day
    window_start: str | None = None  # HH:MM, local time
    window_end: str | None = None
    timezone: str = "Europe/Oslo"


@dataclass(frozen=True)
class CampaignSpec:
    """A campaign as defined in its TOML file."""

    name: str
    from_address: str
    from_name: str
    organisation: str
    reply_to: str | None
    document_title: str
    document_url: str
    public_base_url: str
    criteria: Criteria
    templates: Mapping[str, Template]
    allow_links: bool = False
    allowed_link_domains: tuple[str, ...] = ()
    per_unit: bool = False
    dkim_selector: str = "varsel"
    dkim_ed25519: bool = False
    limits: Limits = field(default_factory=Limits)
    fields: Mapping[str, str] = field(default_factory=dict)
    document_file: str | None = None  # absolute path of the document served to the public
    sender_postal_address: str | None = None  # lines of the sender's postal address, for letters

    @property
    def sender_domain(self) -> str:
        return self.from_address.rsplit("@", 1)[1]

    @property
    def verify_url(self) -> str:
        return self.public_base_url.rstrip("/") + "/kontroll"

    @property
    def unsubscribe_url(self) -> str:
        return self.public_base_url.rstrip("/") + "/avmelding"

    def as_json(self) -> str:
        """The definition as JSON, for the store."""
        data = dataclasses.asdict(self)
        data["criteria"] = self.criteria.as_dict()
        return json.dumps(data, ensure_ascii=False, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> CampaignSpec:
        """The definition back from the store."""
        data = json.loads(text)
        data["criteria"] = Criteria.from_mapping(
            {k: v for k, v in data["criteria"].items() if v not in (None, [], False)}
        )
        data["templates"] = {k: Template(**v) for k, v in data["templates"].items()}
        limits = data["limits"]
        limits["window_days"] = tuple(limits["window_days"])
        data["limits"] = Limits(**limits)
        data["allowed_link_domains"] = tuple(data["allowed_link_domains"])
        return cls(**data)


# -- reading a definition ---------------------------------------------------------------


def _table(data: Mapping[str, Any], key: str, where: str) -> dict[str, Any]:
    value = data.get(key, {})
    if not isinstance(value, dict):
        raise CampaignError(f"{where}: [{key}] skal være en tabell")
    return value


def _text(table: Mapping[str, Any], key: str, where: str, *, required: bool = True) -> str | None:
    value = table.get(key)
    if value is None:
        if required:
            raise CampaignError(f"{where}: mangler «{key}»")
        return None
    if not isinstance(value, str) or not value.strip():
        raise CampaignError(f"{where}: «{key}» skal være tekst")
    return value.strip()


def _address(value: str, where: str, settings: Settings) -> str:
    parsed = contacts.normalise_address(value, allow_test_domains=settings.allow_test_domains)
    if not parsed.usable:
        why = contacts.explain(parsed.reason) if parsed.reason else "ugyldig"
        raise CampaignError(f"{where}: {value!r} er ikke en brukbar e-postadresse ({why})")
    return parsed.address


def _https_url(value: str, where: str) -> str:
    parts = urlsplit(value)
    if parts.scheme != "https" or not parts.hostname:
        raise CampaignError(f"{where}: {value!r} må være en https-adresse")
    return value


def load_spec(path: Path, settings: Settings) -> CampaignSpec:
    """Read and check a campaign definition; every problem is a one-line CampaignError."""
    try:
        data = tomllib.loads(path.read_text("utf-8"))
    except FileNotFoundError:
        raise CampaignError(f"{path}: filen finnes ikke") from None
    except OSError as e:
        raise CampaignError(f"{path}: kan ikke leses ({e.strerror})") from None
    except UnicodeDecodeError:
        raise CampaignError(f"{path}: er ikke UTF-8") from None
    except tomllib.TOMLDecodeError as e:
        raise CampaignError(f"{path}: ugyldig TOML: {e}") from None
    return spec_from_data(data, path, settings)


def spec_from_data(data: Mapping[str, Any], path: Path, settings: Settings) -> CampaignSpec:
    """Check a definition given as TOML's tables (the console's form makes the same tables).

    `path` names the source in messages; files the definition names are relative to its folder.
    """
    known = {
        "campaign",
        "sender",
        "document",
        "public",
        "links",
        "segment",
        "templates",
        "limits",
        "window",
        "fields",
    }
    for key in data:
        if key not in known:
            raise CampaignError(f"{path}: ukjent tabell [{key}]")
    where = str(path)
    camp = _table(data, "campaign", where)
    sender = _table(data, "sender", where)
    document = _table(data, "document", where)
    public = _table(data, "public", where)
    links = _table(data, "links", where)
    name = _text(camp, "name", f"{where} [campaign]")
    from_address = _address(
        _text(sender, "address", f"{where} [sender]") or "", f"{where} [sender] address", settings
    )
    reply_to_raw = _text(sender, "reply_to", f"{where} [sender]", required=False)
    reply_to = (
        _address(reply_to_raw, f"{where} [sender] reply_to", settings) if reply_to_raw else None
    )
    document_url = _https_url(
        _text(document, "url", f"{where} [document]") or "", f"{where} [document] url"
    )
    document_file = _document_file(document, path)
    base = _text(public, "base_url", f"{where} [public]", required=False)
    public_base_url = _https_url(base or settings.public_base_url, f"{where} [public] base_url")
    allowed = links.get("allowed_domains")
    if allowed is None:
        allowed = sorted(
            {urlsplit(document_url).hostname or "", urlsplit(public_base_url).hostname or ""}
        )
    if not isinstance(allowed, list) or not all(isinstance(d, str) for d in allowed):
        raise CampaignError(f"{where} [links]: allowed_domains skal være en liste med domener")
    allow_links = links.get("allow_clickable", False)
    if not isinstance(allow_links, bool):
        raise CampaignError(f"{where} [links]: allow_clickable skal være true eller false")
    segment_table = _table(data, "segment", where)
    if not segment_table:
        raise CampaignError(f"{where}: mangler [segment] (hvem kampanjen skal nå)")
    criteria = Criteria.from_mapping(segment_table, f"{where} [segment]")
    per_unit = camp.get("per_unit", False)
    if not isinstance(per_unit, bool):
        raise CampaignError(f"{where} [campaign]: per_unit skal være true eller false")
    fields_table = _table(data, "fields", where)
    for key, value in fields_table.items():
        if not isinstance(value, str):
            raise CampaignError(f"{where} [fields]: «{key}» skal være tekst")
    return CampaignSpec(
        name=name or "",
        from_address=from_address,
        from_name=_text(sender, "name", f"{where} [sender]") or "",
        organisation=_text(sender, "organisation", f"{where} [sender]") or "",
        reply_to=reply_to,
        document_title=_text(document, "title", f"{where} [document]") or "",
        document_url=document_url,
        public_base_url=public_base_url,
        criteria=criteria,
        templates=_templates(data, path),
        allow_links=allow_links,
        allowed_link_domains=tuple(d.strip().lower() for d in allowed if d.strip()),
        per_unit=per_unit,
        dkim_selector=_text(sender, "dkim_selector", f"{where} [sender]", required=False)
        or "varsel",
        dkim_ed25519=bool(sender.get("dkim_ed25519", False)),
        limits=_limits(data, where),
        fields=dict(fields_table),
        document_file=document_file,
        sender_postal_address=_text(sender, "postal_address", f"{where} [sender]", required=False),
    )


def _document_file(document: Mapping[str, Any], path: Path) -> str | None:
    # Relative to the TOML file, as template files are; stored resolved so that the web
    # server finds it whatever its working folder.
    where = f"{path} [document]"
    name = _text(document, "file", where, required=False)
    if name is None:
        return None
    file = (path.parent / name).resolve()
    if not file.is_file():
        raise CampaignError(f"{where}: file {str(file)!r} finnes ikke")
    return str(file)


def _templates(data: Mapping[str, Any], path: Path) -> dict[str, Template]:
    from varsel.letter_render import default_letter_templates
    from varsel.message import default_templates

    subjects, texts, htmls = default_templates()
    letters = default_letter_templates()
    table = _table(data, "templates", str(path))
    out: dict[str, Template] = {}
    for lang in LANGUAGES:
        own = table.get(lang, {})
        if not isinstance(own, dict):
            raise CampaignError(f"{path} [templates.{lang}] skal være en tabell")
        where = f"{path} [templates.{lang}]"

        def pick(kind: str, default: str, own: dict[str, Any] = own, where: str = where) -> str:
            if f"{kind}_file" in own:
                file = path.parent / str(own[f"{kind}_file"])
                try:
                    return file.read_text("utf-8")
                except OSError as e:
                    raise CampaignError(f"{where}: {file}: kan ikke leses ({e.strerror})") from None
            value = own.get(kind, default)
            if not isinstance(value, str) or not value.strip():
                raise CampaignError(f"{where}: «{kind}» skal være tekst")
            return value

        out[lang] = Template(
            subject=pick("subject", subjects[lang]).strip(),
            text=pick("text", texts[lang]),
            html=pick("html", htmls[lang]),
            letter=pick("letter", letters[lang]),
        )
    return out


def _limits(data: Mapping[str, Any], where: str) -> Limits:
    table = _table(data, "limits", where)
    window = _table(data, "window", where)
    values: dict[str, Any] = {}
    defaults = Limits()
    for key in (
        "rate_per_second",
        "connections",
        "per_domain_concurrency",
        "per_domain_per_minute",
        "retry_hours",
    ):
        if key in table:
            value = table[key]
            kind = type(getattr(defaults, key))
            if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
                raise CampaignError(f"{where} [limits]: {key} skal være et positivt tall")
            values[key] = kind(value)
    for key in table:
        if key not in values:
            raise CampaignError(f"{where} [limits]: ukjent innstilling «{key}»")
    if window:
        days = window.get("days", [])
        valid_days = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
        if not isinstance(days, list) or any(d not in valid_days for d in days):
            raise CampaignError(
                f"{where} [window]: days skal være en liste av {', '.join(valid_days)}"
            )
        values["window_days"] = tuple(days)
        for key in ("start", "end"):
            text = window.get(key)
            if text is not None:
                if not isinstance(text, str) or len(text) != 5 or text[2] != ":":
                    raise CampaignError(f"{where} [window]: {key} skal være TT:MM")
                values[f"window_{key}"] = text
        if "timezone" in window:
            values["timezone"] = str(window["timezone"])
    return Limits(**values)


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

    def summary(self) -> str:
        r = self.reach
        lines = [
            f"Kampanje {self.campaign.id} «{self.campaign.name}» er opprettet fra snapshot "
            f"{self.campaign.snapshot_id}: {fmt_int(self.units)} enheter, "
            f"{fmt_int(r.get('email', 0))} med brukbar e-post, "
            f"{fmt_int(r.get('phone_only', 0) + r.get('postal_only', 0))} uten.",
            f"{fmt_int(self.deliveries)} e-poster i utboksen"
            + (
                f", {fmt_int(self.suppressed)} stoppet av avmelding/sperre"
                if self.suppressed
                else ""
            )
            + (
                f"; {fmt_int(self.shared_addresses)} adresser deles av flere enheter"
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

    snapshot = latest_snapshot(db, "enheter")
    if snapshot is None:
        raise CampaignError("lageret har ingen registerdata; importer en dump først")
    resolved = resolve(spec.criteria)
    key_notice = ensure_key(settings, spec.sender_domain, spec.dkim_selector)
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
        suppressed_addresses = suppressed(db, SuppressionKind.ADDRESS, groups)
        suppressed_units = suppressed(
            db, SuppressionKind.UNIT, [o for units in groups.values() for o in units]
        )
        deliveries = 0
        n_suppressed = 0
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
            n_suppressed += state is DeliveryState.SUPPRESSED
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
        raise CampaignError(f"kampanje {campaign_id} finnes ikke")
    return Campaign(
        int(row[0]),
        row[1],
        CampaignStatus(row[2]),
        CampaignSpec.from_json(row[3]),
        int(row[4]),
        row[5],
        row[6],
    )


def set_status(
    db: Database, campaign_id: int, status: CampaignStatus, *, actor: str | None = None
) -> Campaign:
    """Pause, resume or cancel: the change reaches a running sender within a second."""
    from varsel import audit

    campaign = get_campaign(db, campaign_id)
    allowed = {
        CampaignStatus.PAUSED: {CampaignStatus.READY, CampaignStatus.SENDING},
        CampaignStatus.READY: {CampaignStatus.PAUSED},
        CampaignStatus.CANCELLED: {
            CampaignStatus.READY,
            CampaignStatus.SENDING,
            CampaignStatus.PAUSED,
        },
    }
    if campaign.status not in allowed.get(status, set()):
        raise CampaignError(
            f"kampanje {campaign_id} er «{campaign.status.value}» og kan ikke settes til "
            f"«{status.value}»"
        )
    with db.transaction():
        db.execute(
            "UPDATE campaigns SET status = ?, updated_at = ? WHERE id = ?",
            (status.value, utcnow_iso(), campaign_id),
        )
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


def update_spec(db: Database, campaign_id: int, spec: CampaignSpec, *, actor: str) -> Campaign:
    """Change a ready or paused campaign's definition; an approval given before no longer holds.

    The recipients stay frozen: a change of selection criteria needs a new campaign.
    """
    from varsel import audit

    campaign = get_campaign(db, campaign_id)
    if campaign.status not in (CampaignStatus.READY, CampaignStatus.PAUSED):
        raise CampaignError(
            f"kampanje {campaign_id} er «{campaign.status.value}» og kan ikke endres"
        )
    if spec.criteria != campaign.spec.criteria or spec.per_unit != campaign.spec.per_unit:
        raise CampaignError(
            f"kampanje {campaign_id}: mottakerne er frosset; lag en ny kampanje for et annet utvalg"
        )
    old, new = json.loads(campaign.spec.as_json()), json.loads(spec.as_json())
    changed = sorted(k for k in new if old.get(k) != new[k])
    with db.transaction():
        db.execute(
            "UPDATE campaigns SET spec = ?, name = ?, sender_address = ?, updated_at = ? "
            "WHERE id = ?",
            (spec.as_json(), spec.name, spec.from_address, utcnow_iso(), campaign_id),
        )
        audit.record(
            db, actor, audit.Action.CAMPAIGN_EDIT, f"campaign:{campaign_id}", {"changed": changed}
        )
    return get_campaign(db, campaign_id)
