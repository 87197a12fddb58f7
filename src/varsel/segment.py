"""Segments: criteria → the businesses they select, and how each of them can be reached.

A segment selects main units (enheter): the legal entities a message is addressed to. A unit
is in the area when its business address is, or when one of its sub-units is located there
(a Bergen company's Oslo branch makes the company part of an Oslo segment, counted once).
"""

from __future__ import annotations

import dataclasses
import difflib
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import idna

from varsel import industry, municipality
from varsel.contacts import Reason, explain
from varsel.db import Database
from varsel.digits import ascii_digits
from varsel.errors import N_, BadCriteriaError, Text, read_user_text, toml_problem
from varsel.i18n import fmt_int
from varsel.snapshot import Snapshot, data_age, latest_snapshot

# Organisation forms of main units (Enhetsregisteret's code list).
FORMS: dict[str, str] = {
    "ADOS": "Administrativ enhet – offentlig sektor",
    "ANNA": "Annen juridisk person",
    "ANS": "Ansvarlig selskap med solidarisk ansvar",
    "AS": "Aksjeselskap",
    "ASA": "Allmennaksjeselskap",
    "BA": "Selskap med begrenset ansvar",
    "BBL": "Boligbyggelag",
    "BO": "Andre bo",
    "BRL": "Borettslag",
    "DA": "Ansvarlig selskap med delt ansvar",
    "ENK": "Enkeltpersonforetak",
    "EOFG": "Europeisk økonomisk foretaksgruppe",
    "ESEK": "Eierseksjonssameie",
    "FKF": "Fylkeskommunalt foretak",
    "FLI": "Forening/lag/innretning",
    "FYLK": "Fylkeskommune",
    "GFS": "Gjensidig forsikringsselskap",
    "IKJP": "Andre ikke-juridiske personer",
    "IKS": "Interkommunalt selskap",
    "KBO": "Konkursbo",
    "KF": "Kommunalt foretak",
    "KIRK": "Den norske kirke",
    "KOMM": "Kommune",
    "KS": "Kommandittselskap",
    "KTRF": "Kontorfellesskap",
    "NUF": "Norskregistrert utenlandsk foretak",
    "OPMV": "Særskilt oppdelt enhet, jf. mval. § 2-2",
    "ORGL": "Organisasjonsledd",
    "PERS": "Andre enkeltpersoner som registreres i tilknyttet register",
    "PK": "Pensjonskasse",
    "PRE": "Partrederi",
    "SA": "Samvirkeforetak",
    "SAM": "Tingsrettslig sameie",
    "SE": "Europeisk selskap",
    "SF": "Statsforetak",
    "SPA": "Sparebank",
    "STAT": "Staten",
    "STI": "Stiftelse",
    "SÆR": "Annet foretak iflg. særskilt lov",
    "TVAM": "Tvangsregistrert for MVA",
    "UTLA": "Utenlandsk enhet",
    "VPFO": "Verdipapirfond",
}

EMPLOYEE_RULES = ("auto", "registered", "exact")
REACH = ("email", "phone_only", "postal_only")
FOREIGN = "utland"  # the breakdown's key for units with a foreign business address

_LIST_KEYS = {
    "municipality": "municipalities",
    "municipalities": "municipalities",
    "county": "counties",
    "counties": "counties",
    "police_district": "police_districts",
    "police_districts": "police_districts",
    "nace": "nace",
    "form": "forms",
    "forms": "forms",
    "exclude_form": "exclude_forms",
    "exclude_forms": "exclude_forms",
    "sector": "sectors",
    "sectors": "sectors",
}
# The lists that narrow the selection, and what an empty one would do: it is refused. An empty
# exclusion list (exclude_form) leaves nothing out, as it says, and is accepted.
_NARROWING = {
    "municipalities": "valgt hele landet",
    "counties": "valgt hele landet",
    "police_districts": "valgt hele landet",
    "nace": "valgt alle næringer",
    "forms": "valgt alle organisasjonsformer",
    "sectors": "valgt alle sektorer",
}
# Above any employer's count, and far below SQLite's INTEGER (a larger number overflows it).
MAX_EMPLOYEES = 10_000_000

# How the operator names a criterion where the message names it: the command's options, and
# the console's labels (its catalogs translate them); elsewhere, the TOML key.
CLI_NAMES: Mapping[str, str] = {
    "min_employees": "--min-employees",
    "employee_rule": "--employee-rule",
    "exclude_reached_by": "--exclude-reached-by",
}
FORM_NAMES: Mapping[str, str] = {
    "min_employees": Text("Minst så mange ansatte"),
    "employee_rule": Text("Regel for ansatte"),
    "exclude_reached_by": Text("Utelat dem disse kampanjene nådde"),
}

_SCALAR_KEYS = {
    "min_employees",
    "employee_rule",
    "include_bankrupt",
    "include_liquidating",
    "include_deleted",
}
# Campaign numbers: leave out the units those campaigns reached (a follow-up campaign).
_CAMPAIGN_KEYS = {"exclude_reached_by"}
# Every key a [segment] table may have.
CRITERIA_KEYS = (*_LIST_KEYS, *sorted(_SCALAR_KEYS), *sorted(_CAMPAIGN_KEYS))


@dataclass(frozen=True)
class Criteria:
    """What a segment asks for, as the operator wrote it."""

    municipalities: tuple[str, ...] = ()
    counties: tuple[str, ...] = ()
    police_districts: tuple[str, ...] = ()
    min_employees: int | None = None
    employee_rule: str = "auto"
    nace: tuple[str, ...] = ()
    forms: tuple[str, ...] = ()
    exclude_forms: tuple[str, ...] = ()
    sectors: tuple[str, ...] = ()
    include_bankrupt: bool = False
    include_liquidating: bool = False
    include_deleted: bool = False
    exclude_reached_by: tuple[int, ...] = ()  # campaign ids: what they reached is left out

    @classmethod
    def from_mapping(
        cls,
        data: Mapping[str, Any],
        source: str = "kriteriene",
        names: Mapping[str, str] | None = None,
        *,
        whole: bool = True,
    ) -> Criteria:
        """Criteria from a dict (a TOML table); unknown keys and wrong types are refused.

        names: how the messages name a criterion (CLI_NAMES, FORM_NAMES); given, and whole
        (the mapping is all the criteria, not an addition), they are checked together.
        """
        values: dict[str, Any] = {}
        for key, value in data.items():
            name = key.replace("-", "_")
            if name in _LIST_KEYS:
                items = [value] if isinstance(value, str | int) else value
                if not isinstance(items, list | tuple) or not all(
                    isinstance(v, str | int) for v in items
                ):
                    raise BadCriteriaError(f"{source}: «{key}» skal være en liste med tekst")
                target = _LIST_KEYS[name]
                if not items and target in _NARROWING:
                    # Read as no limit, [] would select every unit: the whole country for an area.
                    raise BadCriteriaError(
                        f"{source}: «{key}» er en tom liste, som ville {_NARROWING[target]}: "
                        "skriv minst én, eller ta bort nøkkelen"
                    )
                values[target] = (*values.get(target, ()), *(str(v) for v in items))
            elif name in _SCALAR_KEYS:
                values[name] = _scalar(source, (names or {}).get(name, key), name, value)
            elif name in _CAMPAIGN_KEYS:
                values[name] = (
                    *values.get(name, ()),
                    *_campaign_ids(source, (names or {}).get(name, key), value),
                )
            else:
                known = sorted({*_LIST_KEYS, *_SCALAR_KEYS, *_CAMPAIGN_KEYS})
                hint = difflib.get_close_matches(name, known, n=1)
                more = f" (mente du «{hint[0]}»?)" if hint else ""
                raise BadCriteriaError(f"{source}: ukjent kriterium «{key}»{more}")
        criteria = cls(**values)
        if names is not None and whole:
            criteria.check_rule(names)
        return criteria

    @classmethod
    def build(cls, criteria_file: Path | None, options: Mapping[str, Any]) -> Criteria:
        """Criteria from an optional TOML file plus command-line options (which add to it)."""
        base = cls.from_file(criteria_file) if criteria_file else cls()
        extra = {k: v for k, v in options.items() if v not in (None, (), [])}
        if not extra:
            return base
        merged = base.merged(
            cls.from_mapping(extra, "valgene", CLI_NAMES, whole=False), extra.keys()
        )
        # Each named as the operator gave it, or could: an option, or the file's key.
        merged.check_rule(
            {k: v for k, v in CLI_NAMES.items() if k in extra or criteria_file is None}
        )
        return merged

    def check_rule(self, names: Mapping[str, str]) -> None:
        """Refuse the exact employee rule without a threshold, naming both as in names."""
        if self.employee_rule == "exact" and not self.min_employees:
            raise BadCriteriaError(
                Text(
                    "«%(rule)s» exact krever «%(minimum)s» på 1 eller mer",
                    rule=names.get("employee_rule", "employee_rule"),
                    minimum=names.get("min_employees", "min_employees"),
                )
            )

    @classmethod
    def from_file(cls, path: Path) -> Criteria:
        """Criteria from a TOML file: top-level keys or a [segment] table."""
        # As text first: tomllib.load would let a file that is not UTF-8 through as a traceback.
        text = read_user_text(path, BadCriteriaError)
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as e:
            raise BadCriteriaError(f"{path}: ugyldig TOML: {toml_problem(e)}") from None
        table = data.get("segment", data)
        outside = [k for k, v in data.items() if k != "segment" and not isinstance(v, dict)]
        if "segment" in data and outside:
            # Either every criterion at the top or every one in [segment]: one left outside
            # would silently not count. Other tables (a campaign file's [sender]) may be there.
            raise BadCriteriaError(
                f"{path}: «{outside[0]}» står utenfor [segment]; legg alle kriteriene i "
                "[segment] eller ingen av dem"
            )
        if not isinstance(table, dict):
            raise BadCriteriaError(
                f"{path}: «segment» skal være en tabell ([segment]), ikke én verdi"
            )
        return cls.from_mapping(table, f"{path} [segment]" if "segment" in data else str(path))

    def merged(self, other: Criteria, keys: Iterable[str]) -> Criteria:
        """This plus other: lists are joined, the scalars named in keys are taken from other."""
        changes: dict[str, Any] = {}
        for f in dataclasses.fields(self):
            mine, theirs = getattr(self, f.name), getattr(other, f.name)
            if isinstance(mine, tuple):
                changes[f.name] = mine + tuple(x for x in theirs if x not in mine)
            elif f.name in {k.replace("-", "_") for k in keys}:
                changes[f.name] = theirs
        return dataclasses.replace(self, **changes)

    def as_dict(self) -> dict[str, Any]:
        """The criteria as plain data (lists, not tuples), for storing and JSON."""
        return {
            k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(self).items()
        }


def _scalar(source: str, shown: str, name: str, value: Any) -> Any:
    """A scalar criterion's value checked; shown: the criterion as the operator named it."""
    if name == "min_employees":
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_EMPLOYEES:
            raise BadCriteriaError(
                Text(
                    "%(source)s: «%(name)s» skal være et helt tall fra 0 til %(max)s",
                    source=source,
                    name=shown,
                    max=fmt_int(MAX_EMPLOYEES),
                )
            )
        return value
    if name == "employee_rule":
        if value not in EMPLOYEE_RULES:
            raise BadCriteriaError(
                Text(
                    "%(source)s: «%(name)s» må være en av %(rules)s",
                    source=source,
                    name=shown,
                    rules=", ".join(EMPLOYEE_RULES),
                )
            )
        return value
    if not isinstance(value, bool):
        raise BadCriteriaError(f"{source}: {name} skal være true eller false")
    return value


def _campaign_ids(source: str, shown: str, value: Any) -> tuple[int, ...]:
    """Campaign numbers from a list, one number or a comma list ("1,3"), as the CLI gives them."""
    items = value if isinstance(value, list | tuple) else [value]
    ids: list[int] = []
    for item in items:
        parts = _parts(item) if isinstance(item, str) else [item]
        for part in parts:
            number = part.strip() if isinstance(part, str) else part
            if isinstance(number, str) and ascii_digits(number):
                number = int(number)
            # A campaign number is a positive int that fits the stores' id columns.
            if isinstance(number, bool) or not isinstance(number, int) or not 0 < number < 2**31:
                raise BadCriteriaError(
                    Text(
                        "%(source)s: «%(name)s» skal være kampanjenumre (hele tall, som 1,3), "
                        "ikke «%(value)s»",
                        source=source,
                        name=shown,
                        value=str(part),
                    )
                )
            if number not in ids:
                ids.append(number)
    return tuple(ids)


@dataclass(frozen=True)
class Resolved:
    """Criteria turned into codes the store understands, with notes for the operator."""

    area: tuple[str, ...] | None  # 2024 municipality numbers; None for the whole country
    nace: tuple[str, ...]
    forms: tuple[str, ...]
    exclude_forms: tuple[str, ...]
    sectors: tuple[str, ...]
    rule: str  # none | registered | exact | registered_undecided
    min_employees: int
    notes: tuple[Text, ...]  # Bokmål, translated where shown
    nace_2007: tuple[str, ...] = ()  # SN2007 codes older dumps store for the nace prefixes


def resolve(criteria: Criteria) -> Resolved:
    """Check the criteria and translate names, historic numbers and old codes."""
    notes: list[Text] = []
    area: list[str] = []
    # Every list criterion takes "a,b" as it takes a and b: a value is split by the module
    # that knows its names (municipality, industry) or here.
    for term in criteria.municipalities:
        area += municipality.resolve_municipality(term)
    for term in criteria.counties:
        area += municipality.resolve_county(term)
    for term in criteria.police_districts:
        area += municipality.resolve_police_district(term)
    notes += municipality.notes(criteria.municipalities, criteria.counties)
    places = municipality.describe(
        criteria.municipalities, criteria.counties, criteria.police_districts
    )
    if len(places) > 1:
        # Areas add up (a district plus a municipality outside it): say so, with the sum.
        notes.append(
            Text(
                "Område: %(places)s, lagt sammen: %(count)s kommuner",
                places=" + ".join(places),
                count=fmt_int(len(set(area))),
            )
        )
    nace = industry.resolve_prefixes(criteria.nace)
    notes += industry.notes(criteria.nace)
    forms = tuple(_check_form(f, v) for v in criteria.forms for f in _parts(v))
    exclude = tuple(_check_form(f, v) for v in criteria.exclude_forms for f in _parts(v))
    sectors = tuple(c for v in criteria.sectors for c in _parts(v))
    for value in criteria.sectors:
        for code in _parts(value):
            if not ascii_digits(code) or len(code) > 4:
                raise BadCriteriaError(
                    Text(
                        "sektorkode «%(code)s»%(where)s: skriv inntil fire sifre, f.eks. 2100",
                        code=code,
                        where=_in_list(code, value),
                    )
                )
    rule, minimum, note = _employee_rule(criteria.min_employees, criteria.employee_rule)
    if note:
        notes.append(note)
    return Resolved(
        area=tuple(sorted(set(area))) if (area or _has_area(criteria)) else None,
        nace=tuple(nace),
        nace_2007=tuple(industry.sn2007_codes_under(nace)),
        forms=forms,
        exclude_forms=exclude,
        sectors=sectors,
        rule=rule,
        min_employees=minimum,
        notes=tuple(notes),
    )


def _has_area(criteria: Criteria) -> bool:
    return bool(criteria.municipalities or criteria.counties or criteria.police_districts)


def _parts(value: str) -> list[str]:
    """The codes in a value: 'ASA,AS' is two, as two values are; empty parts are left out."""
    return [part.strip() for part in value.split(",") if part.strip()] or [value.strip()]


def _in_list(part: str, value: str) -> Text | str:
    """' i «ASA,AX»' when part came from a comma list, so the message says where it was."""
    if part == value.strip():
        return ""
    return Text(" i «%(value)s» (komma skiller flere)", value=value.strip())


def _check_form(code: str, value: str | None = None) -> str:
    upper = code.strip().upper()
    if upper in FORMS:
        return upper
    if upper in ("BEDR", "AAFY"):
        raise BadCriteriaError(
            Text(
                "organisasjonsform %(form)s er en underenhet; et segment velger hovedenheter "
                "(underenheter i området tar med hovedenheten sin)",
                form=upper,
            )
        )
    # A form's name ("Aksjeselskap") suggests its code; otherwise the closest code.
    by_name = {n.casefold(): c for c, n in FORMS.items()}
    hint = [by_name[code.strip().casefold()]] if code.strip().casefold() in by_name else []
    hint = hint or difflib.get_close_matches(upper, FORMS, n=1, cutoff=0.5)
    more = Text(" (mente du %(name)s?)", name=hint[0]) if hint else ""
    raise BadCriteriaError(
        Text(
            "ukjent organisasjonsform «%(form)s»%(hint)s%(where)s",
            form=code,
            where=_in_list(code, value or code),
            hint=more,
        )
    )


def _employee_rule(minimum: int | None, rule: str) -> tuple[str, int, Text | None]:
    """(rule applied, threshold, note saying what it selects); the registry hides counts 1-4."""
    n = minimum or 0
    if rule == "exact" and n == 0:
        Criteria(employee_rule=rule).check_rule({})  # raises, naming the TOML keys
    if n == 0 and rule != "registered":
        return "none", 0, None
    if n <= 1:
        # Every unit with registered employees has at least one, hidden count or not.
        return "registered", 1, Text(_NOTE_REGISTERED)
    # From 5 up every rule is the count: a hidden count (1-4) is certainly below N.
    if rule == "exact" or n >= 5:
        return "exact", n, Text(_NOTE_EXACT if n >= 5 else _NOTE_EXACT_HIDDEN, n=fmt_int(n))
    note = _NOTE_UNDECIDED_AUTO if rule == "auto" else _NOTE_UNDECIDED
    return "registered_undecided", n, Text(note, n=fmt_int(n))


# The employee rule's notes, one whole message each so that a translation can order it freely.
_NOTE_REGISTERED = N_(
    "Ansatte: enheter med registrerte ansatte (minst 1), også de der registeret skjuler "
    "antallet (1–4)."
)
_NOTE_EXACT = N_(
    "Ansatte: minst %(n)s etter oppgitt antall. Enheter med skjult antall (1–4) har færre "
    "enn %(n)s og er ikke med."
)
_NOTE_EXACT_HIDDEN = N_(
    "Ansatte: minst %(n)s etter oppgitt antall. Registeret skjuler antall under 5, så bare "
    "enheter med 5 eller flere er med. Enheter med skjult antall (1–4) kan ha %(n)s eller "
    "flere, men er utelatt og telt som uavgjort."
)
_NOTE_UNDECIDED = N_(
    "Ansatte: minst %(n)s kan ikke avgjøres fra åpne data, fordi registeret skjuler antall "
    "under 5. Regel brukt: enheter med minst %(n)s etter oppgitt antall, pluss enheter med "
    "registrerte ansatte der antallet er skjult (1–4); de er tatt med og telt som uavgjort."
)
_NOTE_UNDECIDED_AUTO = N_(
    "Ansatte: minst %(n)s kan ikke avgjøres fra åpne data, fordi registeret skjuler antall "
    "under 5. Regel brukt: enheter med minst %(n)s etter oppgitt antall, pluss enheter med "
    "registrerte ansatte der antallet er skjult (1–4); de er tatt med og telt som uavgjort. "
    "Regelen exact (bare oppgitt antall) tar bare med enheter med 5 eller flere."
)


# -- SQL ---------------------------------------------------------------------------------


def _filters(r: Resolved) -> tuple[str, list[Any]]:
    """WHERE conditions on units u (a main unit) for everything but the area."""
    where = ["u.kind = 'enhet'", "u.gone_snapshot_id IS NULL"]
    params: list[Any] = []
    if r.rule == "registered":
        where.append("u.has_employees = ?")
        params.append(True)
    elif r.rule == "registered_undecided":
        # A known count must reach the threshold; a hidden one (1-4) is taken as undecided.
        where.append("u.has_employees = ? AND (u.employees IS NULL OR u.employees >= ?)")
        params += [True, r.min_employees]
    elif r.rule == "hidden":
        where.append("u.has_employees = ? AND u.employees IS NULL")
        params.append(True)
    elif r.rule == "exact":
        where.append("u.employees >= ?")
        params.append(r.min_employees)
    if r.nace:
        match = ["u.nace1 LIKE ?" for _ in r.nace]
        if r.nace_2007:
            match.append(f"u.nace1 IN ({', '.join('?' for _ in r.nace_2007)})")
        where.append("(" + " OR ".join(match) + ")")
        params += [f"{p}%" for p in r.nace]
        params += list(r.nace_2007)
    if r.forms:
        where.append(f"u.form IN ({', '.join('?' for _ in r.forms)})")
        params += r.forms
    if r.exclude_forms:
        where.append(f"u.form NOT IN ({', '.join('?' for _ in r.exclude_forms)})")
        params += r.exclude_forms
    if r.sectors:
        where.append("(" + " OR ".join("u.sector LIKE ?" for _ in r.sectors) + ")")
        params += [f"{s}%" for s in r.sectors]
    return " AND ".join(where), params


def _status_filters(criteria: Criteria) -> list[str]:
    where = []
    if not criteria.include_bankrupt:
        where.append("u.bankrupt = ?")
    if not criteria.include_liquidating:
        where += ["u.liquidating = ?", "u.forced_dissolution = ?"]
    if not criteria.include_deleted:
        where.append("u.deleted_date IS NULL")
    return where


def selection_sql(criteria: Criteria, resolved: Resolved | None = None) -> tuple[str, list[Any]]:
    """SQL yielding (orgnr, municipality, reach, undecided) for every selected unit."""
    r = resolved or resolve(criteria)
    where, params = _filters(r)
    status = _status_filters(criteria)
    status_params: list[Any] = [False] * sum(1 for s in status if "?" in s)
    if criteria.exclude_reached_by:
        reached, reached_params = reached_sql(criteria.exclude_reached_by)
        status.append(f"u.orgnr NOT IN ({reached})")
        status_params += reached_params
    where_all = " AND ".join([where, *status])
    undecided = (
        "CASE WHEN u.employees IS NULL AND u.has_employees = ? THEN 1 ELSE 0 END"
        if r.rule == "registered_undecided"
        else "0"
    )
    undecided_params: list[Any] = [True] if undecided != "0" else []
    if r.area is None:
        sql = (
            f"SELECT u.orgnr AS orgnr, coalesce(u.municipality, '{FOREIGN}') AS municipality, "
            f"u.reach AS reach, {undecided} AS undecided, "
            "CASE WHEN u.email IS NULL THEN 0 ELSE 1 END AS has_email "
            f"FROM units u WHERE {where_all}"
        )
        return sql, undecided_params + params + status_params
    marks = ", ".join("?" for _ in r.area)
    # Units whose own address is in the area, plus (disjoint) units outside it with a sub-unit
    # inside, counted once under the lowest such municipality. Both halves run on covering
    # partial indexes, so neither needs to group the whole area by organisation number.
    own = (
        f"SELECT u.orgnr AS orgnr, u.municipality AS municipality, u.reach AS reach, "
        f"{undecided} AS undecided, CASE WHEN u.email IS NULL THEN 0 ELSE 1 END AS has_email "
        "FROM units u "
        f"WHERE {where_all} AND u.municipality IN ({marks})"
    )
    via = (
        f"SELECT u.orgnr, b.municipality, u.reach, {undecided}, "
        "CASE WHEN u.email IS NULL THEN 0 ELSE 1 END FROM ("
        "SELECT parent_orgnr AS orgnr, min(municipality) AS municipality FROM units "
        "WHERE kind = 'underenhet' AND gone_snapshot_id IS NULL AND deleted_date IS NULL "
        f"AND municipality IN ({marks}) AND parent_orgnr IS NOT NULL GROUP BY parent_orgnr"
        f") b JOIN units u ON u.orgnr = b.orgnr WHERE {where_all} "
        f"AND (u.municipality IS NULL OR u.municipality NOT IN ({marks}))"
    )
    filter_params = [*params, *status_params]
    return (
        f"{own} UNION ALL {via}",
        [
            *undecided_params,
            *filter_params,
            *r.area,
            *undecided_params,
            *r.area,
            *filter_params,
            *r.area,
        ],
    )


def reached_sql(campaign_ids: Iterable[int]) -> tuple[str, list[Any]]:
    """SQL yielding the orgnr of every unit one of the campaigns reached or has on the way."""
    # Coverage's own definition, not a second one; imported here because coverage imports
    # this module.
    from varsel.coverage import reached_or_on_the_way_sql

    parts = [reached_or_on_the_way_sql(c) for c in campaign_ids]
    return " UNION ".join(sql for sql, _ in parts), [p for _, params in parts for p in params]


def check_campaigns(db: Database, criteria: Criteria) -> None:
    """Refuse campaign numbers in exclude_reached_by that no campaign has."""
    for campaign_id in criteria.exclude_reached_by:
        if db.scalar("SELECT count(*) FROM campaigns WHERE id = ?", (campaign_id,)) == 0:
            raise BadCriteriaError(
                Text(
                    "kampanje %(campaign)s finnes ikke (utelat dem kampanje %(campaign)s nådde)",
                    campaign=campaign_id,
                )
            )


def _campaigns_named(ids: tuple[int, ...]) -> Text | str:
    """'1', or '1, 2 eller 3': the campaigns as the note names them."""
    if len(ids) == 1:
        return str(ids[0])
    return Text("%(first)s eller %(last)s", first=", ".join(str(i) for i in ids[:-1]), last=ids[-1])


# Letters made and messages still in the outbox count as reached: a business whose letter is
# in the post, or whose e-mail is queued, would otherwise get the follow-up as well.
_NOTE_LEFT_OUT = N_(
    "Utelatt: %(n)s virksomheter som kampanje %(campaigns)s nådde (e-post levert, brev "
    "postlagt eller på vei, Altinn levert)."
)


# -- preview -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Preview:
    """How many businesses a segment selects and how they can be reached."""

    criteria: Criteria
    snapshot: Snapshot | None
    units: int
    undecided: int
    rule: str
    notes: tuple[Text, ...]  # Bokmål, translated where shown
    by_municipality: dict[str, int]  # 2024 municipality numbers only
    by_municipality_reach: dict[str, dict[str, int]]
    foreign: int  # units with a foreign business address (no municipality)
    foreign_reach: dict[str, int]
    reachability: dict[str, int]
    unusable: dict[str, int]  # units with only unusable e-mail, by reason
    top_domains: list[tuple[str, int]]  # A-labels, as the store keeps them
    shared_addresses: list[tuple[str, int]]  # role and business addresses, no person's own
    shared_personal: int  # shared addresses a sole proprietor gave as its own: left out
    personal_addresses: int  # selected sole proprietors with a usable e-mail
    role_addresses: int
    area: tuple[str, ...] | None = field(default=None)
    left_out_reached: int = 0  # units left out: a campaign in exclude_reached_by reached them
    dump: Snapshot | None = None  # the newest dump of enheter: its date is the data's date
    feed: Snapshot | None = None  # the newest change-feed page applied after it
    # The day of the newest change the pages since the dump applied (not the day they were
    # applied: that says nothing about how old the data is), or None.
    feed_updated: str | None = None

    def as_dict(self) -> dict[str, Any]:
        """The preview as one JSON-ready object."""
        return {
            "units": self.units,
            "undecided": self.undecided,
            "employee_rule": self.rule,
            "notes": list(self.notes),
            "snapshot": self.snapshot.id if self.snapshot else None,
            "dump_date": self.dump.dump_date if self.dump else None,
            "feed_updated": self.feed_updated,
            "criteria": self.criteria.as_dict(),
            "area": list(self.area) if self.area is not None else None,
            "by_municipality": self.by_municipality,
            "by_municipality_reach": self.by_municipality_reach,
            "foreign_address": self.foreign,
            "foreign_address_reach": self.foreign_reach,
            "reachability": self.reachability,
            "unusable_email": self.unusable,
            "top_domains": [
                {"domain": d, "domain_unicode": u_label(d), "units": n} for d, n in self.top_domains
            ],
            "shared_addresses": [
                {"address": a, "address_unicode": u_label(a), "units": n}
                for a, n in self.shared_addresses
            ],
            "shared_personal_not_shown": self.shared_personal,
            "personal_addresses": self.personal_addresses,
            "role_addresses": self.role_addresses,
            "left_out_reached": self.left_out_reached,
        }


def preview(db: Database, criteria: Criteria, *, top: int = 10) -> Preview:
    """Count what a segment selects: units, undecided, by municipality and reachability."""
    resolved = resolve(criteria)
    check_campaigns(db, criteria)
    # The selection before leaving out what earlier campaigns reached: the note counts those.
    sql, params = selection_sql(dataclasses.replace(criteria, exclude_reached_by=()), resolved)
    # The selection is computed once into a temporary table; every breakdown reads from it.
    db.execute("DROP TABLE IF EXISTS segment_preview")
    db.execute(f"CREATE TEMP TABLE segment_preview AS {sql}", params)
    left_out = 0
    if criteria.exclude_reached_by:
        reached, reached_params = reached_sql(criteria.exclude_reached_by)
        where = f"WHERE orgnr IN ({reached})"
        left_out = int(db.scalar(f"SELECT count(*) FROM segment_preview {where}", reached_params))
        db.execute(f"DELETE FROM segment_preview {where}", reached_params)
        note = Text(
            _NOTE_LEFT_OUT,
            n=fmt_int(left_out),
            campaigns=_campaigns_named(criteria.exclude_reached_by),
        )
        resolved = dataclasses.replace(resolved, notes=(*resolved.notes, note))
    db.execute("DROP TABLE IF EXISTS segment_contacts")
    db.execute(
        "CREATE TEMP TABLE segment_contacts AS SELECT c.orgnr AS orgnr, c.address AS address, "
        "c.usable AS usable, c.reason AS reason, c.domain AS domain, c.role AS role, "
        "c.personal AS personal, s.reach AS reach FROM segment_preview s "
        "JOIN contacts c ON c.orgnr = s.orgnr WHERE s.has_email = 1"
    )
    try:
        result = _preview_from_table(db, criteria, resolved, top)
        return dataclasses.replace(result, left_out_reached=left_out)
    finally:
        db.execute("DROP TABLE IF EXISTS segment_preview")
        db.execute("DROP TABLE IF EXISTS segment_contacts")


def _preview_from_table(db: Database, criteria: Criteria, resolved: Resolved, top: int) -> Preview:
    rows = db.query(
        "SELECT municipality, reach, count(*), sum(undecided) FROM segment_preview "
        "GROUP BY municipality, reach"
    )
    by_mun: dict[str, int] = {}
    by_mun_reach: dict[str, dict[str, int]] = {}
    reach = dict.fromkeys(REACH, 0)
    total = undecided = 0
    foreign = dict.fromkeys(REACH, 0)
    for mun, how, n, und in rows:
        count = int(n)
        if not mun or mun == FOREIGN:
            foreign[how] += count
        else:
            by_mun[mun] = by_mun.get(mun, 0) + count
            by_mun_reach.setdefault(mun, dict.fromkeys(REACH, 0))[how] += count
        reach[how] += count
        total += count
        undecided += int(und or 0)
    if resolved.rule == "exact" and resolved.min_employees < 5:
        # Left out, but only because their hidden count (1-4) cannot be compared.
        hidden_sql, hidden_params = selection_sql(
            criteria, dataclasses.replace(resolved, rule="hidden")
        )
        undecided = int(db.scalar(f"SELECT count(*) FROM ({hidden_sql}) h", hidden_params))
    joined = "FROM segment_contacts c"
    top_domains = [
        (str(d), int(n))
        for d, n in db.query(
            f"SELECT c.domain, count(DISTINCT c.orgnr) {joined} WHERE c.usable = ? "
            "GROUP BY c.domain ORDER BY 2 DESC, 1 LIMIT ?",
            (True, top),
        )
    ]
    # The table is for accountants' and shared role addresses. A person's own address, one a
    # sole proprietor gave (marte.eriksen@gmail.com, for her ENK and her NUF), is counted, not
    # shown; an accountant's post@ stays even when its clients here are sole proprietors.
    shared_sql = (
        f"SELECT c.address, count(DISTINCT c.orgnr) {joined} WHERE c.usable = ? "
        "GROUP BY c.address HAVING count(DISTINCT c.orgnr) > 1 "
        "AND max(CASE WHEN c.personal = ? AND c.role = ? THEN 1 ELSE 0 END) = ?"
    )
    flags = (True, True, False)
    shared = [
        (str(a), int(n))
        for a, n in db.query(f"{shared_sql} ORDER BY 2 DESC, 1 LIMIT ?", (*flags, 0, top))
    ]
    shared_personal = int(db.scalar(f"SELECT count(*) FROM ({shared_sql}) p", (*flags, 1)))
    unusable_rows = db.query(
        f"SELECT c.reason, count(DISTINCT c.orgnr) {joined} WHERE c.usable = ? "
        "AND c.reach <> 'email' GROUP BY c.reason ORDER BY 2 DESC, 1",
        (False,),
    )
    kinds = db.query_one(
        "SELECT sum(CASE WHEN c.personal = ? THEN 1 ELSE 0 END), "
        f"sum(CASE WHEN c.role = ? THEN 1 ELSE 0 END) {joined} WHERE c.usable = ?",
        (True, True, True),
    ) or (0, 0)
    dump = latest_snapshot(db, "enheter", "dump")
    feed = latest_snapshot(db, "enheter", "feed")
    age = data_age(db, "enheter")
    return Preview(
        dump=dump,
        feed=feed if feed and (dump is None or feed.id > dump.id) else None,
        feed_updated=age.as_of if age is not None and age.from_feed else None,
        criteria=criteria,
        snapshot=latest_snapshot(db, "enheter"),
        units=total,
        undecided=undecided,
        rule=resolved.rule,
        notes=resolved.notes,
        by_municipality=dict(sorted(by_mun.items())),
        by_municipality_reach=dict(sorted(by_mun_reach.items())),
        foreign=sum(foreign.values()),
        foreign_reach=foreign,
        reachability=reach,
        unusable={str(reason): int(n) for reason, n in unusable_rows},
        top_domains=top_domains,
        shared_addresses=shared,
        shared_personal=shared_personal,
        personal_addresses=int(kinds[0] or 0),
        role_addresses=int(kinds[1] or 0),
        area=resolved.area,
    )


def u_label(text: str) -> str:
    """A domain, or an address's, as people write it: xn--oslofrisr-s8a.no → oslofrisør.no."""
    local, at, domain = text.rpartition("@")
    if "xn--" not in domain:
        return text
    try:
        return f"{local}{at}{idna.decode(domain)}"
    except UnicodeError:  # idna.IDNAError and its kin: not a valid A-label, shown as stored
        return text


def describe_reason(reason: str) -> str:
    """Norwegian text for an unusable-address reason code."""
    try:
        return explain(Reason(reason))
    except ValueError:
        return reason


def summary_line(p: Preview) -> str:
    """One line for logs and the demo, naming the area (every area given, added up)."""
    r = p.reachability
    c = p.criteria
    places = municipality.describe(c.municipalities, c.counties, c.police_districts)
    where = f" i {' + '.join(places)}" if places else " i hele landet"
    return (
        f"{fmt_int(p.units)} enheter valgt{where}: {fmt_int(r['email'])} med brukbar e-post, "
        f"{fmt_int(r['phone_only'])} bare telefon, {fmt_int(r['postal_only'])} bare postadresse."
    )
