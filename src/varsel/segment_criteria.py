"""Segment criteria: what the operator asked for, read, checked and resolved into codes.

Criteria come from a campaign's [segment] table, a criteria file, the command line's options
or the console's form; resolve() turns their names, historic numbers and old codes into the
codes the store keeps, with notes saying what was read how. segment.py selects with them.
"""

from __future__ import annotations

import dataclasses
import difflib
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from varsel import industry, municipality
from varsel.digits import ascii_digits
from varsel.errors import N_, BadCriteriaError, Text, read_user_text, toml_problem
from varsel.i18n import fmt_int

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
