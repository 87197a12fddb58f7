"""Coverage: for every business a campaign targeted, exactly one outcome, and roll-ups of them.

A unit may have several deliveries (two e-mail addresses, a letter after a bounce, Altinn). Its
outcome is the one with the strongest evidence that the message reached the business, in the
order of `Outcome` below (see docs/reports.md). The whole computation is one SQL query grouped
in the store, so a national campaign is counted in seconds, not minutes.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from varsel import industry, municipality
from varsel.campaign import CampaignStatus, get_campaign
from varsel.db import Database
from varsel.errors import N_
from varsel.outbox import DeliveryState
from varsel.segment import FOREIGN
from varsel.segment_criteria import FORMS
from varsel.suppression import SuppressionKind, SuppressionReason


class Outcome(StrEnum):
    """Where one targeted business ended up; members are in order of precedence, best first."""

    ALTINN_DELIVERED = "altinn_delivered"  # published in the organisation's Altinn inbox
    EMAIL_ACCEPTED = "email_accepted"  # the relay accepted an e-mail and no bounce came back
    LETTER_POSTED = "letter_posted"  # the print house handed a letter to the post
    LETTER_PRODUCED = "letter_produced"  # a letter is in a print batch, not reported posted yet
    PENDING = "pending"  # still on its way: queued, deferred, being sent, in doubt; Altinn: see
    # PENDING_DETAILS
    LETTER_RETURNED = "letter_returned"  # a letter came back undelivered
    EMAIL_BOUNCED = "email_bounced"  # accepted, then a hard bounce or complaint came back
    SUPPRESSED = "suppressed"  # the unit asked not to be contacted, or an operator blocked it
    UNREACHABLE = "unreachable"  # nothing went out, or it failed for good; see `Reason`


class Reason(StrEnum):
    """Why a unit is unreachable; members are in order of precedence."""

    EMAIL_FAILED = "email_failed"  # the relay refused the e-mail for good (5xx), or retries ran out
    EMAIL_DEAD = "email_dead"  # not sent: its address hard-bounced before (suppressed for that)
    LETTER_FAILED = "letter_failed"  # the letter could not be produced, for another reason
    INCOMPLETE_ADDRESS = "incomplete_address"  # no letter: the address lacks postcode or city
    ADDRESS_TOO_LONG = "address_too_long"  # no letter: the address does not fit the window
    NOT_IN_REGISTRY = "not_in_registry"  # no letter: the unit left the registry after the freeze
    ALTINN_FAILED = "altinn_failed"  # Altinn refused or gave up on the correspondence
    CANCELLED = "cancelled"  # the campaign was cancelled before the message went out
    NOT_ENQUEUED = "not_enqueued"  # it had a usable address when frozen, but no delivery was made
    EMAIL_INVALID = "email_invalid"  # the registry's e-mail field holds no usable address
    NO_EMAIL = "no_email"  # no e-mail on record; it has a postal address, and no letter was made
    NO_ADDRESS = "no_address"  # neither e-mail nor any postal or business address


# What a unit's outcome counts as in summaries.
REACHED = (Outcome.ALTINN_DELIVERED, Outcome.EMAIL_ACCEPTED, Outcome.LETTER_POSTED)
ON_THE_WAY = (Outcome.LETTER_PRODUCED, Outcome.PENDING)
NOT_REACHED = (
    Outcome.LETTER_RETURNED,
    Outcome.EMAIL_BOUNCED,
    Outcome.SUPPRESSED,
    Outcome.UNREACHABLE,
)
# The states still in the outbox, in the order they are shown (and of precedence); "other" is
# any state this module does not know (a newer varsel's), which is not final as far as we can
# tell. An Altinn delivery is `submitted` from when it is planned: "submitted" here is one
# Altinn has accepted (it has Altinn's id), "altinn_planned" one it has not (yet): planned by a
# run with --limit or one cut short, or sent without an answer, and sent again by the next run.
PENDING_DETAILS = (
    "in_doubt",
    "claimed",
    "deferred",
    "queued",
    "submitted",
    "altinn_planned",
    "other",
)

LABELS: dict[str, str] = {
    Outcome.ALTINN_DELIVERED: N_("Levert i Altinn"),
    Outcome.EMAIL_ACCEPTED: N_("E-post levert"),
    Outcome.LETTER_POSTED: N_("Brev postlagt"),
    Outcome.LETTER_PRODUCED: N_("Brev laget, ikke postlagt ennå"),
    Outcome.PENDING: N_("Venter i utboksen"),
    Outcome.LETTER_RETURNED: N_("Brev i retur"),
    Outcome.EMAIL_BOUNCED: N_("E-post i retur"),
    Outcome.SUPPRESSED: N_("Sperret (avmeldt eller blokkert)"),
    Outcome.UNREACHABLE: N_("Ikke nådd"),
    Reason.EMAIL_FAILED: N_("e-posten ble avvist for godt"),
    Reason.EMAIL_DEAD: N_("e-postadressen virker ikke"),
    Reason.LETTER_FAILED: N_("brevet kunne ikke lages"),
    Reason.INCOMPLETE_ADDRESS: N_("ufullstendig postadresse"),
    Reason.ADDRESS_TOO_LONG: N_("adressen får ikke plass i konvoluttvinduet"),
    Reason.NOT_IN_REGISTRY: N_("ikke lenger i registeret"),
    Reason.ALTINN_FAILED: N_("Altinn avviste meldingen"),
    Reason.CANCELLED: N_("kampanjen ble stoppet før sending"),
    Reason.NOT_ENQUEUED: N_("adressen kom ikke i utboksen"),
    Reason.EMAIL_INVALID: N_("ugyldig e-postadresse i registeret"),
    Reason.NO_EMAIL: N_("ingen e-post; brev er ikke laget"),
    Reason.NO_ADDRESS: N_("verken e-post eller postadresse"),
    "in_doubt": N_("usikker (operatøren må avgjøre)"),
    "claimed": N_("under sending"),
    "deferred": N_("utsatt, prøves igjen"),
    "queued": N_("i kø"),
    "submitted": N_("tatt imot av Altinn, ikke publisert ennå"),
    "altinn_planned": N_("planlagt i Altinn, ikke tatt imot av Altinn ennå"),
    "other": N_("annen tilstand"),
}

# Employee bands: the registry hides counts of 1-4, so they are one band.
SIZE_BANDS: tuple[tuple[str, str], ...] = (
    ("0", N_("Ingen ansatte registrert")),
    ("1-4", N_("1–4 ansatte (tallet er skjult)")),
    ("5-9", N_("5–9 ansatte")),
    ("10-19", N_("10–19 ansatte")),
    ("20-49", N_("20–49 ansatte")),
    ("50-99", N_("50–99 ansatte")),
    ("100-249", N_("100–249 ansatte")),
    ("250+", N_("250 ansatte eller flere")),
)
UNKNOWN_SECTION = "?"


@dataclass(frozen=True)
class _Code:
    """One per-unit result as the SQL computes it: an integer that sorts by precedence."""

    code: int
    outcome: Outcome
    detail: str | None  # the reason (unreachable) or the outbox state (pending)


def _codes() -> list[_Code]:
    out: list[_Code] = []
    for outcome in Outcome:
        base = 100 * (list(Outcome).index(outcome) + 1)
        if outcome is Outcome.PENDING:
            details: list[str | None] = list(PENDING_DETAILS)
        elif outcome is Outcome.UNREACHABLE:
            details = list(Reason)
        else:
            details = [None]
        out += [_Code(base + i, outcome, d) for i, d in enumerate(details)]
    return out


CODES = {c.code: c for c in _codes()}
_CODE_OF = {(c.outcome, c.detail): c.code for c in CODES.values()}
_S = DeliveryState
_PENDING_STATES = (_S.QUEUED, _S.DEFERRED, _S.CLAIMED, _S.IN_DOUBT)
# (channel, state) → (outcome, detail). Anything not listed is pending/"other".
_BY_STATE: dict[tuple[str, DeliveryState], tuple[Outcome, str | None]] = {
    ("email", _S.SENT): (Outcome.EMAIL_ACCEPTED, None),
    ("email", _S.BOUNCED): (Outcome.EMAIL_BOUNCED, None),
    ("email", _S.FAILED): (Outcome.UNREACHABLE, Reason.EMAIL_FAILED),
    ("letter", _S.PRODUCED): (Outcome.LETTER_PRODUCED, None),
    ("letter", _S.POSTED): (Outcome.LETTER_POSTED, None),
    ("letter", _S.RETURNED): (Outcome.LETTER_RETURNED, None),
    ("letter", _S.FAILED): (Outcome.UNREACHABLE, Reason.LETTER_FAILED),
    ("altinn", _S.SUBMITTED): (Outcome.PENDING, "submitted"),
    ("altinn", _S.DELIVERED): (Outcome.ALTINN_DELIVERED, None),
    ("altinn", _S.FAILED): (Outcome.UNREACHABLE, Reason.ALTINN_FAILED),
}
for _channel in ("email", "letter", "altinn"):
    _BY_STATE[(_channel, _S.SUPPRESSED)] = (Outcome.SUPPRESSED, None)
    _BY_STATE[(_channel, _S.CANCELLED)] = (Outcome.UNREACHABLE, Reason.CANCELLED)
    for _state in _PENDING_STATES:
        _BY_STATE[(_channel, _state)] = (Outcome.PENDING, _state.value)

# A letter that could not be made says why in last_reply (letter_candidates.Unreachable);
# these come first in the CASE, before the rule for any failed letter.
_LETTER_FAILURES: dict[str, Reason] = {
    "no_postal_address": Reason.NO_ADDRESS,
    "incomplete_address": Reason.INCOMPLETE_ADDRESS,
    "address_too_long": Reason.ADDRESS_TOO_LONG,
    "not_in_registry": Reason.NOT_IN_REGISTRY,
}

_SAFE = re.compile(r"[a-z_]+\Z")


def _literal(text: str) -> str:
    # Only this module's own constants are written into the SQL; check, don't trust.
    if not _SAFE.match(text):
        raise ValueError(f"not a constant: {text!r}")
    return f"'{text}'"


def _delivery_code_sql() -> str:
    """A CASE expression giving each delivery row `d` its code."""
    # An e-mail held back because its address hard-bounced before did not reach a unit that
    # asked for nothing: it needs another channel (bounces.units_needing_another_channel), so
    # it is unreachable, not suppressed.
    dead = (
        f"WHEN d.channel = 'email' AND d.state = {_literal(_S.SUPPRESSED.value)} "
        "AND EXISTS (SELECT 1 FROM suppressions sa WHERE "
        f"sa.kind = {_literal(SuppressionKind.ADDRESS.value)} AND sa.value = d.address "
        f"AND sa.reason = {_literal(SuppressionReason.HARD_BOUNCE.value)}) "
        f"THEN {_CODE_OF[(Outcome.UNREACHABLE, Reason.EMAIL_DEAD)]}"
    )
    whens = [dead] + [
        f"WHEN d.channel = 'letter' AND d.state = {_literal(_S.FAILED.value)} "
        f"AND d.last_reply = {_literal(why)} THEN {_CODE_OF[(Outcome.UNREACHABLE, reason)]}"
        for why, reason in _LETTER_FAILURES.items()
    ]
    # An Altinn message without Altinn's id has not been accepted. Never sent (no stamp) in a
    # cancelled campaign, it never will be: `altinn send` refuses one. One whose request went
    # out may be in Altinn all the same, so it keeps waiting.
    unsent = (
        f"d.channel = 'altinn' AND d.state = {_literal(_S.SUBMITTED.value)} "
        "AND d.message_id IS NULL"
    )
    whens += [
        f"WHEN {unsent} AND d.data_started_at IS NULL AND EXISTS (SELECT 1 FROM campaigns c "
        f"WHERE c.id = d.campaign_id AND c.status = {_literal(CampaignStatus.CANCELLED.value)}) "
        f"THEN {_CODE_OF[(Outcome.UNREACHABLE, Reason.CANCELLED)]}",
        f"WHEN {unsent} THEN {_CODE_OF[(Outcome.PENDING, 'altinn_planned')]}",
    ]
    whens += [
        f"WHEN d.channel = {_literal(ch)} AND d.state = {_literal(st.value)} "
        f"THEN {_CODE_OF[result]}"
        for (ch, st), result in sorted(_BY_STATE.items(), key=lambda kv: _CODE_OF[kv[1]])
    ]
    return "CASE " + " ".join(whens) + f" ELSE {_CODE_OF[(Outcome.PENDING, 'other')]} END"


def _band_sql() -> str:
    return (
        "CASE WHEN r.employees IS NULL OR r.employees < 5 THEN "
        "CASE WHEN r.has_employees = ? AND coalesce(r.employees, 1) > 0 THEN '1-4' ELSE '0' END "
        "WHEN r.employees < 10 THEN '5-9' WHEN r.employees < 20 THEN '10-19' "
        "WHEN r.employees < 50 THEN '20-49' WHEN r.employees < 100 THEN '50-99' "
        "WHEN r.employees < 250 THEN '100-249' ELSE '250+' END"
    )


def _units_sql(campaign_id: int) -> tuple[str, list[Any]]:
    """One row per recipient: orgnr, municipality, form, division, band, code."""
    code = _delivery_code_sql()
    suppressed = _CODE_OF[(Outcome.SUPPRESSED, None)]
    # Letters and Altinn name their unit in `address` too; a unit reached through both paths
    # appears twice in `links`, which min() does not mind.
    sql = (
        "WITH links AS ("
        f"SELECT du.orgnr AS orgnr, {code} AS code FROM deliveries d "
        "JOIN delivery_units du ON du.delivery_id = d.id WHERE d.campaign_id = ? "
        f"UNION ALL SELECT d.address AS orgnr, {code} AS code FROM deliveries d "
        "WHERE d.campaign_id = ? AND d.channel IN ('letter', 'altinn')), "
        "best AS (SELECT orgnr, min(code) AS code FROM links GROUP BY orgnr) "
        "SELECT r.orgnr AS orgnr, r.municipality AS municipality, r.form AS form, "
        "substr(coalesce(r.nace1, ''), 1, 2) AS division, "
        f"{_band_sql()} AS band, "
        f"CASE WHEN b.code <= {suppressed} THEN b.code "
        f"WHEN s.value IS NOT NULL THEN {suppressed} "
        "WHEN b.code IS NOT NULL THEN b.code "
        f"WHEN r.reach = 'email' THEN {_CODE_OF[(Outcome.UNREACHABLE, Reason.NOT_ENQUEUED)]} "
        "WHEN EXISTS (SELECT 1 FROM contacts c WHERE c.orgnr = r.orgnr AND c.usable = ?) "
        f"THEN {_CODE_OF[(Outcome.UNREACHABLE, Reason.EMAIL_INVALID)]} "
        "WHEN EXISTS (SELECT 1 FROM units u WHERE u.orgnr = r.orgnr AND "
        "(coalesce(u.post_lines, '') <> '' OR coalesce(u.addr_lines, '') <> '')) "
        f"THEN {_CODE_OF[(Outcome.UNREACHABLE, Reason.NO_EMAIL)]} "
        f"ELSE {_CODE_OF[(Outcome.UNREACHABLE, Reason.NO_ADDRESS)]} END AS code "
        "FROM recipients r LEFT JOIN best b ON b.orgnr = r.orgnr "
        "LEFT JOIN suppressions s ON s.kind = ? AND s.value = r.orgnr "
        "WHERE r.campaign_id = ?"
    )
    params: list[Any] = [
        campaign_id,
        campaign_id,
        True,
        False,
        SuppressionKind.UNIT.value,
        campaign_id,
    ]
    return sql, params


def reached_or_on_the_way_sql(campaign_id: int) -> tuple[str, list[Any]]:
    """SQL yielding the orgnr of every unit the campaign reached or has on the way.

    Reached and on the way exactly as the report counts them (REACHED, ON_THE_WAY): a letter
    made but not reported posted, or a message still in the outbox, is on its way to the
    business. A follow-up campaign leaves these out (segment's exclude_reached_by).
    """
    sql, params = _units_sql(campaign_id)
    codes = sorted(c.code for c in CODES.values() if c.outcome in (*REACHED, *ON_THE_WAY))
    return f"SELECT x.orgnr FROM ({sql}) x WHERE x.code IN ({', '.join(map(str, codes))})", params


# -- the report ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Group:
    """The outcomes of the units in one municipality, size band, section or legal form."""

    key: str
    name: str
    units: int
    outcomes: Mapping[Outcome, int]

    @property
    def reached(self) -> int:
        return sum(self.outcomes.get(o, 0) for o in REACHED)

    def as_dict(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "name": self.name,
            "units": self.units,
            "outcomes": {o.value: self.outcomes.get(o, 0) for o in Outcome},
        }


@dataclass(frozen=True)
class Coverage:
    """Every targeted unit of a campaign counted once, by outcome and by group."""

    campaign_id: int
    campaign_name: str
    units: int
    outcomes: Mapping[Outcome, int]
    unreachable: Mapping[Reason, int]
    pending: Mapping[str, int]
    by_municipality: tuple[Group, ...]
    by_size: tuple[Group, ...]
    by_section: tuple[Group, ...]
    by_form: tuple[Group, ...]
    notes: tuple[str, ...] = field(default=())

    @property
    def reached(self) -> int:
        return sum(self.outcomes[o] for o in REACHED)

    @property
    def on_the_way(self) -> int:
        return sum(self.outcomes[o] for o in ON_THE_WAY)

    @property
    def not_reached(self) -> int:
        return sum(self.outcomes[o] for o in NOT_REACHED)

    def as_dict(self) -> dict[str, Any]:
        """One JSON-ready object; `outcomes` adds up to `units`."""
        return {
            "campaign": self.campaign_id,
            "name": self.campaign_name,
            "units": self.units,
            "outcomes": {o.value: self.outcomes[o] for o in Outcome},
            "unreachable": {r.value: self.unreachable[r] for r in Reason},
            "pending": dict(self.pending),
            "reached": self.reached,
            "on_the_way": self.on_the_way,
            "not_reached": self.not_reached,
            "by_municipality": [g.as_dict() for g in self.by_municipality],
            "by_size": [g.as_dict() for g in self.by_size],
            "by_section": [g.as_dict() for g in self.by_section],
            "by_form": [g.as_dict() for g in self.by_form],
        }


def _section(division: str) -> str:
    return (industry.section_of(division) if division and division != "00" else None) or (
        UNKNOWN_SECTION
    )


def municipality_name(number: str) -> str:
    if number == FOREIGN:
        return "Utlandet"
    return municipality.name(number) or number


def _section_names() -> dict[str, str]:
    names = dict(industry.sections())
    names[UNKNOWN_SECTION] = "Næring ikke oppgitt"
    return names


def coverage(db: Database, campaign_id: int) -> Coverage:
    """Count every targeted unit of a campaign once, by outcome, and roll the counts up."""
    campaign = get_campaign(db, campaign_id)
    sql, params = _units_sql(campaign_id)
    rows = db.query(
        f"SELECT municipality, form, division, band, code, count(*) FROM ({sql}) x "
        "GROUP BY municipality, form, division, band, code",
        params,
    )
    outcomes = dict.fromkeys(Outcome, 0)
    reasons = dict.fromkeys(Reason, 0)
    pending = dict.fromkeys(PENDING_DETAILS, 0)
    dims: dict[str, dict[str, dict[Outcome, int]]] = {
        "municipality": {},
        "size": {},
        "section": {},
        "form": {},
    }
    sections: dict[str, str] = {}
    for mun, form, division, band, code_value, n in rows:
        count = int(n)
        code = CODES[int(code_value)]
        outcomes[code.outcome] += count
        if code.outcome is Outcome.UNREACHABLE:
            reasons[Reason(str(code.detail))] += count
        elif code.outcome is Outcome.PENDING and code.detail:
            pending[code.detail] += count
        if division not in sections:
            sections[division] = _section(division)
        for dim, key in (
            ("municipality", mun or FOREIGN),
            ("size", band),
            ("section", sections[division]),
            ("form", form),
        ):
            group = dims[dim].setdefault(key, dict.fromkeys(Outcome, 0))
            group[code.outcome] += count
    section_names = _section_names()
    band_order = [k for k, _ in SIZE_BANDS]
    band_names = dict(SIZE_BANDS)

    def groups(dim: str, name: Any, order: Any) -> tuple[Group, ...]:
        made = [
            Group(key, name(key), sum(counts.values()), counts) for key, counts in dims[dim].items()
        ]
        return tuple(sorted(made, key=order))

    return Coverage(
        campaign_id=campaign_id,
        campaign_name=campaign.name,
        units=sum(outcomes.values()),
        outcomes=outcomes,
        unreachable=reasons,
        pending={k: v for k, v in pending.items() if v},
        by_municipality=groups("municipality", municipality_name, lambda g: (-g.units, g.key)),
        by_size=groups("size", band_names.get, lambda g: band_order.index(g.key)),
        by_section=groups(
            "section", lambda k: section_names.get(k, k), lambda g: (g.key == "?", g.key)
        ),
        by_form=groups("form", lambda k: FORMS.get(k, k), lambda g: (-g.units, g.key)),
    )


# -- one row per unit ---------------------------------------------------------------------


@dataclass(frozen=True)
class UnitOutcome:
    """One targeted unit's outcome, with what a follow-up by post needs."""

    orgnr: str
    name: str
    form: str
    municipality: str
    outcome: Outcome
    detail: str | None
    address_lines: tuple[str, ...]
    postcode: str | None
    city: str | None
    country: str | None
    address_kind: str | None  # "post" (postal address) or "business" (no postal address given)


def unit_outcomes(
    db: Database, campaign_id: int, only: tuple[Outcome, ...] | None = None
) -> Iterator[UnitOutcome]:
    """Every targeted unit's outcome (or only those given), in orgnr order, with its address."""
    get_campaign(db, campaign_id)
    sql, params = _units_sql(campaign_id)
    where = ""
    extra: list[Any] = []
    if only is not None:
        wanted = [c.code for c in CODES.values() if c.outcome in only]
        if not wanted:
            return
        where = f"WHERE x.code IN ({', '.join('?' for _ in wanted)}) "
        extra = wanted
    cursor = db.execute(
        "SELECT x.orgnr, r.name, r.form, r.municipality, x.code, "
        "u.post_lines, u.post_postcode, u.post_city, u.post_country, "
        "u.addr_lines, u.addr_postcode, u.addr_city, u.addr_country "
        f"FROM ({sql}) x JOIN recipients r ON r.campaign_id = ? AND r.orgnr = x.orgnr "
        f"LEFT JOIN units u ON u.orgnr = x.orgnr {where}ORDER BY x.orgnr",
        [*params, campaign_id, *extra],
    )
    while True:
        batch = cursor.fetchmany(2000)
        if not batch:
            return
        for row in batch:
            yield _unit_outcome(row)


def _unit_outcome(row: Any) -> UnitOutcome:
    code = CODES[int(row[4])]
    post = (row[5], row[6], row[7], row[8])
    business = (row[9], row[10], row[11], row[12])
    # The postal address is where the registry says letters go; the business address is
    # the fallback when none is given.
    chosen, kind = (post, "post") if post[0] or post[1] else (business, "business")
    found = bool(chosen[0] or chosen[1])
    lines = tuple(line for line in (chosen[0] or "").split("\n") if line.strip())
    return UnitOutcome(
        orgnr=row[0],
        name=row[1],
        form=row[2],
        municipality=row[3] or FOREIGN,
        outcome=code.outcome,
        detail=code.detail,
        address_lines=lines,
        postcode=chosen[1],
        city=chosen[2],
        country=chosen[3],
        address_kind=kind if found else None,
    )


def label(value: str | None) -> str:
    """The Norwegian label of an outcome, reason or pending state."""
    if value is None:
        return ""
    return LABELS.get(value, value)
