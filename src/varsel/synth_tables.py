"""The synthetic registry's reference tables, read once from data/synth, and its calibration."""

from __future__ import annotations

import bisect
import csv
import io
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import NamedTuple

from varsel.errors import UserError

NATIONAL_UNITS = 1_200_000
"""The number of enheter in a national dump; calibration targets refer to this size."""

PILOT_AREA = ("0301", "3201", "3203")
"""Oslo, Bærum and Asker: the area of the 2023 pilot the generator is calibrated against."""

# Targets from the 2023 pilot and the registry's published counts (see registry-format.md).
_PILOT_WITH_EMPLOYEES = 50_000
_PILOT_EMAIL_SHARE = 0.20
_SHARE_WITH_COUNT = 0.06

# Businesses per inhabitant are higher in the capital: Oslo holds ~15 % of enheter, 13 % of people.
_OSLO_DENSITY = 1.18


class Form(NamedTuple):
    """A legal form and how its units are drawn (a row of organisasjonsformer.csv)."""

    code: str
    desc: str
    weight: float  # share of all enheter (normalised when loaded)
    employees: float  # P(harRegistrertAntallAnsatte), scaled by calibration
    big: float  # P(5 or more | employees registered), scaled by calibration
    sector: str  # institusjonellSektorkode, "" for none
    nace: str  # industry profile in naeringsprofiler.csv, "" for never an industry code
    foretak: float  # P(registered in Foretaksregisteret)
    mva: float  # P(registered in Merverdiavgiftsregisteret)
    email: float  # P(e-mail) without registered employees
    email_employer: float  # P(e-mail) with registered employees, scaled by calibration
    sub: str  # legal form of its sub-units, "" when it never has any
    parent: float  # weight as a parent of sub-units
    no_nace: float  # share without an industry code
    unknown_nace: float  # share with the registry's placeholder 00.000
    accounts: float  # P(annual accounts submitted)


class Kommune(NamedTuple):
    """A municipality as the generator uses it."""

    nr: str
    name: str  # SSB name
    upper: str  # as the registry writes it in addresses
    places: tuple[str, ...]  # place names usable in business names
    county: str
    streets: tuple[tuple[str, str], ...]  # (postnummer, poststed)
    boxes: tuple[str, ...]
    box_poststed: str
    weight: float
    population: int
    nynorsk: float
    phone: tuple[str, ...]


class Country(NamedTuple):
    """A country of foreign business addresses, written as the registry does."""

    code: str
    name: str  # Norwegian name
    suffix: str  # legal-form suffix in business names
    streets: tuple[str, ...]
    cities: tuple[str, ...]
    weight: float


@dataclass(frozen=True, slots=True)
class World:
    """Everything the generator draws from: municipalities, legal forms, codes and names."""

    kommuner: tuple[Kommune, ...]
    index: dict[str, int]
    cum_weight: tuple[float, ...]
    weight_sum: float
    foreign: float  # share of enheter with a business address abroad
    forms: tuple[Form, ...]  # domestic forms
    form_cum: tuple[float, ...]
    foreign_forms: tuple[Form, ...]
    foreign_cum: tuple[float, ...]
    komm: Form  # the municipality itself: one unit per municipality, never drawn
    countries: tuple[Country, ...]
    country_cum: tuple[float, ...]
    nace: dict[str, tuple[tuple[tuple[str, str], ...], tuple[float, ...]]]  # profile -> codes
    codes: dict[str, str]  # kode -> beskrivelse
    sectors: dict[str, str]  # institusjonellSektorkode -> beskrivelse
    reg_scale: float
    big_scale: float
    email_scale: float
    first: tuple[str, ...]
    last: tuple[str, ...]
    stems: tuple[str, ...]
    trade: dict[str, tuple[str, ...]]  # SN2025 division -> business words
    clubs: tuple[str, ...]
    institutions: tuple[tuple[str, str], ...]  # (name, SN2025 code)
    streets: tuple[str, ...]
    farms: tuple[str, ...]
    accountants: tuple[str, ...]
    freemail: tuple[str, ...]
    freemail_cum: tuple[float, ...]
    roles: tuple[str, ...]
    roles_cum: tuple[float, ...]


@cache
def world() -> World:
    """The reference tables and calibration, loaded on first use."""
    kommuner = _kommuner()
    forms: dict[str, list[Form]] = {"innland": [], "utland": [], "kommune": []}
    for row in _rows("organisasjonsformer.csv"):
        forms[row["gruppe"]].append(_form(row))
    domestic, abroad = tuple(forms["innland"]), tuple(forms["utland"])
    (komm,) = forms["kommune"]
    foreign = sum(f.weight for f in abroad) / (
        sum(f.weight for f in domestic) + sum(f.weight for f in abroad)
    )
    codes = _read_codes()
    profiles: dict[str, list[tuple[str, float]]] = {}
    for row in _rows("naeringsprofiler.csv"):
        profiles.setdefault(row["profil"], []).append((row["kode"], float(row["vekt"])))
    nace = {name: _profile(codes, spec) for name, spec in profiles.items()}
    weight_sum = sum(k.weight for k in kommuner)
    reg, big, email = _calibrate(kommuner, weight_sum, foreign, domestic, abroad)
    countries = _countries()
    freemail = [(r["domene"], float(r["vekt"])) for r in _rows("epostverter.csv")]
    roles = [(r["lokaldel"], float(r["vekt"])) for r in _rows("epostroller.csv")]
    return World(
        kommuner=tuple(kommuner),
        index={k.nr: i for i, k in enumerate(kommuner)},
        cum_weight=cumulative([k.weight for k in kommuner]),
        weight_sum=weight_sum,
        foreign=foreign,
        forms=domestic,
        form_cum=cumulative([f.weight for f in domestic]),
        foreign_forms=abroad,
        foreign_cum=cumulative([f.weight for f in abroad]),
        komm=komm,
        countries=countries,
        country_cum=cumulative([c.weight for c in countries]),
        nace=nace,
        codes=codes,
        sectors={r["kode"]: r["beskrivelse"] for r in _rows("sektorkoder.csv")},
        reg_scale=reg,
        big_scale=big,
        email_scale=email,
        first=_lines("fornavn.txt"),
        last=_lines("etternavn.txt"),
        stems=_lines("navnestammer.txt"),
        trade=_grouped(_rows("bransjeord.csv"), "naering", "ord"),
        clubs=_lines("foreninger.txt"),
        institutions=tuple((r["navn"], r["naeringskode"]) for r in _rows("institusjoner.csv")),
        streets=_lines("gatenavn.txt"),
        farms=_lines("gardsnavn.txt"),
        accountants=_lines("regnskapskontor.txt"),
        freemail=tuple(host for host, _ in freemail),
        freemail_cum=cumulative([w for _, w in freemail]),
        roles=tuple(role for role, _ in roles),
        roles_cum=cumulative([w for _, w in roles]),
    )


def select_area(world: World, municipalities: Sequence[str]) -> tuple[int, ...]:
    """The indexes into world.kommuner of the given municipality numbers, in table order."""
    if isinstance(municipalities, str):
        municipalities = [municipalities]
    unknown = [m for m in municipalities if m not in world.index]
    if unknown:
        raise UserError(
            f"Ukjent kommunenummer: {', '.join(unknown)} (bruk 2024-nummer, f.eks. 3201 for Bærum)."
        )
    wanted = set(municipalities)
    return tuple(i for i, k in enumerate(world.kommuner) if k.nr in wanted)


def area_fraction(world: World, area: tuple[int, ...]) -> float:
    """The share of a national dump's enheter whose business address is in the area."""
    if not area:
        return 1.0
    return (1.0 - world.foreign) * sum(world.kommuner[k].weight for k in area) / world.weight_sum


def cumulative(weights: Sequence[float]) -> tuple[float, ...]:
    """Cumulative shares of the weights, ending at exactly 1.0."""
    total = sum(weights)
    out, acc = [], 0.0
    for w in weights:
        acc += w / total
        out.append(acc)
    out[-1] = 1.0
    return tuple(out)


def pick(cum: Sequence[float], u: float) -> int:
    """The index that a uniform number ``u`` falls on in cumulative shares."""
    return bisect.bisect_right(cum, u) if u < cum[-1] else len(cum) - 1


# -- reading the files --------------------------------------------------------------------------


def _text(name: str) -> str:
    return resources.files("varsel").joinpath(f"data/synth/{name}").read_text("utf-8")


def _rows(name: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(_text(name))))


def _lines(name: str) -> tuple[str, ...]:
    return tuple(line for line in _text(name).splitlines() if line)


def _grouped(rows: list[dict[str, str]], key: str, value: str) -> dict[str, tuple[str, ...]]:
    # Row order is kept within a group: the generator picks from these tuples by position.
    groups: dict[str, list[str]] = {}
    for row in rows:
        groups.setdefault(row[key], []).append(row[value])
    return {k: tuple(v) for k, v in groups.items()}


def _form(row: dict[str, str]) -> Form:
    return Form(
        code=row["kode"],
        desc=row["beskrivelse"],
        weight=float(row["andel"]),
        employees=float(row["ansatte"]),
        big=float(row["store"]),
        sector=row["sektor"],
        nace=row["profil"],
        foretak=float(row["foretak"]),
        mva=float(row["mva"]),
        email=float(row["epost"]),
        email_employer=float(row["epost_ansatte"]),
        sub=row["underenhet"],
        parent=float(row["forelder"]),
        no_nace=float(row["uten_naering"]),
        unknown_nace=float(row["ukjent_naering"]),
        accounts=float(row["regnskap"]),
    )


def _kommuner() -> list[Kommune]:
    population = {r["kommunenummer"]: int(r["befolkning"]) for r in _rows("kommune-befolkning.csv")}
    streets: dict[str, list[tuple[str, str]]] = {}
    boxes: dict[str, list[str]] = {}
    box_poststed: dict[str, str] = {}
    for row in _rows("postnumre.csv"):
        nr, postnummer, poststed = row["kommunenummer"], row["postnummer"], row["poststed"]
        if row["type"] == "gate":
            streets.setdefault(nr, []).append((postnummer, poststed))
        elif row["type"] == "postboks":
            boxes.setdefault(nr, []).append(postnummer)
            # The generator writes one poststed on every postbox address of a municipality.
            if box_poststed.setdefault(nr, poststed) != poststed:
                raise ValueError(f"postnumre.csv: {nr} has postboxes in two poststeder")
        else:
            raise ValueError(f"postnumre.csv: unknown type {row['type']!r}")
    nynorsk = {r["fylkesnummer"]: float(r["nynorsk_andel"]) for r in _rows("maalform.csv")}
    phone = _grouped(_rows("retningsnumre.csv"), "fylkesnummer", "retningsnummer")
    kommuner = []
    for row in _read_kommuner():
        nr = row["kommunenummer"]
        pop, own = population[nr], tuple(streets[nr])
        name = row["navn"]
        upper = name.upper().replace(" - ", " ")
        short = upper.split(" (")[0]
        poststeder = {p.removesuffix(" S").removesuffix(" N") for _, p in own}
        kommuner.append(
            Kommune(
                nr,
                name,
                upper,
                tuple(sorted(poststeder | {short.split(" ")[0]})),
                nr[:2],
                own,
                tuple(boxes[nr]),
                box_poststed[nr],
                pop * (_OSLO_DENSITY if nr == "0301" else 1.0),
                pop,
                nynorsk[nr[:2]],
                phone[nr[:2]],
            )
        )
    return kommuner


def _countries() -> tuple[Country, ...]:
    rows = _rows("land-adresser.csv")
    streets = _grouped([r for r in rows if r["type"] == "gate"], "landkode", "tekst")
    cities = _grouped([r for r in rows if r["type"] == "poststed"], "landkode", "tekst")
    return tuple(
        Country(
            r["landkode"],
            r["navn"],
            r["selskapsform"],
            streets[r["landkode"]],
            cities[r["landkode"]],
            float(r["vekt"]),
        )
        for r in _rows("land.csv")
    )


def _read_kommuner() -> list[dict[str, str]]:
    text = resources.files("varsel").joinpath("data/kommuner-2024.csv").read_text("utf-8")
    return list(csv.DictReader(io.StringIO(text)))


def _read_codes() -> dict[str, str]:
    source = resources.files("varsel").joinpath("data/sn2025.csv")
    if not source.is_file():
        return _fallback_codes()
    rows = csv.DictReader(io.StringIO(source.read_text("utf-8")))
    # Division 45 (motor vehicle trade) exists only in SN2007; it must never be emitted.
    codes = {
        r["kode"]: r["navn"]
        for r in rows
        if r.get("niva") == "undergruppe" and len(r["kode"]) == 6 and not r["kode"].startswith("45")
    }
    return codes or _fallback_codes()


def _fallback_codes() -> dict[str, str]:
    # The SN2025 codes seen in the fixture records, for when data/sn2025.csv is missing.
    return {r["kode"]: r["navn"] for r in _rows("naeringskoder-reserve.csv")}


def _profile(
    codes: dict[str, str], spec: Sequence[tuple[str, float]]
) -> tuple[tuple[tuple[str, str], ...], tuple[float, ...]]:
    # A profile names codes or prefixes; codes missing from the code list are skipped, so the
    # profiles work with the full SN2025 list and with the fixture fallback.
    picked: dict[str, float] = {}
    for prefix, weight in spec:
        if len(prefix) == 6:
            if prefix in codes:
                picked[prefix] = picked.get(prefix, 0) + weight
            continue
        members = [c for c in codes if c.startswith(prefix)]
        for c in members:
            picked[c] = picked.get(c, 0) + weight / len(members)
    if not picked:
        picked = {next(iter(codes)): 1.0}
    items = sorted(picked.items())
    return tuple((c, codes[c]) for c, _ in items), cumulative([w for _, w in items])


# -- calibration --------------------------------------------------------------------------------


def _calibrate(
    kommuner: list[Kommune],
    weight_sum: float,
    foreign: float,
    domestic: tuple[Form, ...],
    abroad: tuple[Form, ...],
) -> tuple[float, float, float]:
    """Scale employee and e-mail rates so the 2023 pilot reappears at national scale."""
    share = sum(f.weight for f in domestic)
    pilot = sum(k.weight for k in kommuner if k.nr in PILOT_AREA) / weight_sum * (1 - foreign)
    reg = _solve(
        lambda s: sum(f.weight * min(1.0, f.employees * s) for f in domestic) / share,
        _PILOT_WITH_EMPLOYEES / (NATIONAL_UNITS * pilot),
    )
    everyone = (*domestic, *abroad)
    total = sum(f.weight for f in everyone)
    big = _solve(
        lambda s: (
            sum(f.weight * min(1.0, f.employees * reg) * min(1.0, f.big * s) for f in everyone)
            / total
        ),
        _SHARE_WITH_COUNT,
    )
    # E-mail among units with employees: scale the per-form rates to the pilot's mean.
    employers = [(f.weight * min(1.0, f.employees * reg), f.email_employer) for f in domestic]
    mean = sum(w * rate for w, rate in employers) / sum(w for w, _ in employers)
    return reg, big, _PILOT_EMAIL_SHARE / mean


def _solve(share: Callable[[float], float], target: float) -> float:
    """The scale at which an increasing share function reaches its target (bisection)."""
    lo, hi = 0.1, 10.0
    for _ in range(60):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if share(mid) < target else (lo, mid)
    return lo
