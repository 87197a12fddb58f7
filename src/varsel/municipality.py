"""Municipalities, counties and police districts: numbers and names of any era to 2024 numbers.

The register uses the 2024 municipality numbers, while people and old lists still use the
numbers from before 2020 or 2024. SSB's change table holds single steps, so a number is
followed until it reaches a current one (0219 → 3024 → 3201); a split gives several.
"""

from __future__ import annotations

import csv
import difflib
import functools
import re
import unicodedata
from dataclasses import dataclass
from importlib import resources

from varsel.errors import BadCriteriaError, Text

# The counties of 2020–2023 that were split on 2024-01-01 (registry-format.md §4); their
# names are in no data file, and someone is bound to ask for "Viken".
_FORMER_COUNTIES = {"Viken": "30", "Vestfold og Telemark": "38", "Troms og Finnmark": "54"}
_SPACED_DASH = re.compile(r"\s+[-–]\s+")


@dataclass(frozen=True)
class Municipality:
    """A municipality as of 2024-01-01."""

    number: str
    name: str
    county_number: str
    county: str
    police_district: str


@dataclass(frozen=True)
class _Tables:
    by_number: dict[str, Municipality]
    changes: dict[str, tuple[str, ...]]  # old number -> next numbers, one step
    names: dict[str, tuple[str, ...]]  # name key -> municipality numbers
    county_names: dict[str, str]  # name key -> county number
    counties: dict[str, tuple[str, tuple[str, ...]]]  # county number -> (name, numbers)
    districts: dict[str, tuple[str, tuple[str, ...]]]  # slug -> (display name, numbers)


def _rows(filename: str) -> list[dict[str, str]]:
    text = resources.files("varsel").joinpath("data", filename).read_text(encoding="utf-8")
    return list(csv.DictReader(text.splitlines()))


def _key(text: str) -> str:
    """Case- and spacing-insensitive form of a name; 'A - B' and 'A-B' are the same."""
    text = unicodedata.normalize("NFC", text).casefold()
    return " ".join(re.sub(r"\s*[-–]\s*", "-", text).split())


def _fold(key: str) -> str:
    """A key with æ, ø and å spelt the way a keyboard without them spells them."""
    return key.replace("æ", "ae").replace("ø", "o").replace("å", "a")


def _name_keys(name: str) -> set[str]:
    """Every key a name answers to: whole, without '(county)', and each Sami or Kven part."""
    base = name.split(" (", maxsplit=1)[0]
    keys = {_key(name), _key(base)} | {_key(part) for part in _SPACED_DASH.split(base)}
    return keys | {_fold(k) for k in keys}


def slug(text: str) -> str:
    """'Sør-Øst politidistrikt' -> 'sor-ost': the form police districts are matched on."""
    text = _fold(unicodedata.normalize("NFC", text).casefold())
    text = re.sub(r"\bpolitidistrikt(et)?\b", " ", text)
    return re.sub(r"[\s_-]+", "-", text).strip("-")


@functools.cache
def _tables() -> _Tables:
    districts: dict[str, tuple[str, list[str]]] = {}
    district_of: dict[str, str] = {}
    for row in _rows("politidistrikter.csv"):
        display = row["politidistrikt"]
        districts.setdefault(slug(display), (display, []))[1].append(row["kommunenummer"])
        district_of[row["kommunenummer"]] = display
    by_number: dict[str, Municipality] = {}
    names: dict[str, set[str]] = {}
    county_names: dict[str, str] = {}
    counties: dict[str, tuple[str, list[str]]] = {}
    for row in _rows("kommuner-2024.csv"):
        m = Municipality(
            number=row["kommunenummer"],
            name=row["navn"],
            county_number=row["fylkesnummer"],
            county=row["fylke"],
            police_district=district_of[row["kommunenummer"]],
        )
        by_number[m.number] = m
        for key in _name_keys(m.name):
            names.setdefault(key, set()).add(m.number)
        counties.setdefault(m.county_number, (m.county, []))[1].append(m.number)
        for key in _name_keys(m.county):
            county_names[key] = m.county_number
    changes: dict[str, list[str]] = {}
    for row in _rows("kommunenummer-endringer.csv"):
        changes.setdefault(row["gammelt_nummer"], []).append(row["nytt_nummer"])
    return _Tables(
        by_number=by_number,
        changes={k: tuple(v) for k, v in changes.items()},
        names={k: tuple(sorted(v)) for k, v in names.items()},
        county_names=county_names,
        counties={k: (n, tuple(sorted(v))) for k, (n, v) in counties.items()},
        districts={k: (d, tuple(sorted(v))) for k, (d, v) in districts.items()},
    )


def _number(text: str) -> str | None:
    """'301' or ' 0301 ' -> '0301'; None when the text is not a 3- or 4-digit number."""
    raw = text.strip()
    if raw.isdigit() and raw.isascii() and len(raw) in (3, 4):
        return raw.zfill(4)
    return None


def _successors(number: str) -> list[str]:
    """The 2024 numbers a number of any era has become; empty when it is unknown."""
    tables = _tables()
    found: set[str] = set()
    todo = [number]
    while todo:
        n = todo.pop()
        if n in tables.by_number:
            found.add(n)
        else:
            todo.extend(tables.changes.get(n, ()))
    return sorted(found)


def current_number(number: str) -> str | None:
    """The 2024 number for a number of any era; None when unknown or split."""
    normal = _number(number)
    found = _successors(normal) if normal else []
    return found[0] if len(found) == 1 else None


def name(number: str) -> str | None:
    """The 2024 name of a current municipality number."""
    m = _tables().by_number.get(_number(number) or "")
    return m.name if m else None


def county_of(number: str) -> tuple[str, str]:
    """(fylkesnummer, fylke) of a municipality number of any era."""
    m = _municipality(number)
    return m.county_number, m.county


def police_district_of(number: str) -> str:
    """The police district of a municipality number of any era, e.g. 'Oslo politidistrikt'."""
    return _municipality(number).police_district


def all_numbers() -> list[str]:
    """Every 2024 municipality number, sorted."""
    return sorted(_tables().by_number)


def police_districts() -> list[tuple[str, str]]:
    """All police districts as (slug, display name), in the order of the data file."""
    return [(s, display) for s, (display, _) in _tables().districts.items()]


def resolve_municipality(term: str) -> list[str]:
    """2024 numbers for a municipality number (any era) or name; a split gives all parts."""
    tables = _tables()
    number = _number(term)
    if number is not None:
        found = _successors(number)
        if not found:
            raise BadCriteriaError(Text("Ukjent kommunenummer %(number)s", number=number))
        return found
    if term.strip().isdigit():
        raise BadCriteriaError(
            Text(
                "Ugyldig kommunenummer «%(term)s»: skriv fire sifre, f.eks. 0301",
                term=term.strip(),
            )
        )
    found = _match_name(term, tables.names)
    if len(found) > 1:
        listed = ", ".join(f"{n} {tables.by_number[n].name}" for n in found)
        raise BadCriteriaError(
            Text(
                "Kommunenavnet «%(term)s» er tvetydig (%(found)s); bruk kommunenummeret",
                term=term.strip(),
                found=listed,
            )
        )
    if not found:
        choices = {n: m.name for n, m in tables.by_number.items()}
        raise BadCriteriaError(
            Text("Ukjent kommune «%(term)s»%(hint)s", term=term.strip(), hint=_hint(term, choices))
        )
    return found


def resolve_county(term: str) -> list[str]:
    """2024 municipality numbers of a county given by number ('32') or name ('Akershus')."""
    tables = _tables()
    raw = term.strip()
    number = raw.zfill(2) if raw.isdigit() and raw.isascii() and len(raw) <= 2 else None
    if number is None:
        key = _key(re.sub(r"\s+fylke(skommune)?$", "", raw, flags=re.IGNORECASE))
        number = tables.county_names.get(key) or tables.county_names.get(_fold(key))
        former = {_key(n): c for n, c in _FORMER_COUNTIES.items()}
        number = number or former.get(key)
    if number in tables.counties:
        return list(tables.counties[number][1])
    if number is not None:
        # A county number from before 2024: say where its municipalities are now.
        now = sorted(
            {
                tables.by_number[s].county_number
                for old in tables.changes
                if old[:2] == number
                for s in _successors(old)
            }
        )
        if now:
            listed = ", ".join(f"{c} {tables.counties[c][0]}" for c in now)
            raise BadCriteriaError(
                Text(
                    "Fylke %(number)s finnes ikke lenger; kommunene ligger nå i %(now)s",
                    number=number,
                    now=listed,
                )
            )
        raise BadCriteriaError(Text("Ukjent fylkesnummer %(number)s", number=number))
    choices = {c: county for c, (county, _) in tables.counties.items()}
    choices.update({c: n for n, c in _FORMER_COUNTIES.items()})
    raise BadCriteriaError(
        Text("Ukjent fylke «%(term)s»%(hint)s", term=raw, hint=_hint(raw, choices))
    )


def resolve_police_district(term: str) -> list[str]:
    """2024 municipality numbers of a police district: 'oslo', 'Sør-Øst politidistrikt', …"""
    # Matched without dashes too, as names are: "sorvest", "sør vest" and "Sør-Vest" are one.
    districts = {s.replace("-", ""): found for s, found in _tables().districts.items()}
    key = slug(term).replace("-", "")
    found = districts.get(key)
    if found is None:
        choices = {s: display for s, (display, _) in districts.items()}
        match = difflib.get_close_matches(key, list(choices), n=1)
        hint = Text(" (mente du %(name)s?)", name=choices[match[0]]) if match else ""
        raise BadCriteriaError(
            Text("Ukjent politidistrikt «%(term)s»%(hint)s", term=term.strip(), hint=hint)
        )
    return list(found[1])


def _municipality(number: str) -> Municipality:
    tables = _tables()
    normal = _number(number)
    found = _successors(normal) if normal else []
    if len(found) == 1:
        return tables.by_number[found[0]]
    if len(found) > 1:
        raise BadCriteriaError(f"Kommunenummer {normal} er delt på {', '.join(found)}")
    raise BadCriteriaError(f"Ukjent kommunenummer {number.strip()}")


def _match_name(term: str, index: dict[str, tuple[str, ...]]) -> list[str]:
    """Numbers whose name matches the term whole, or (for 'Oslo - Oslove') one of its parts."""
    for key in (_key(term), _fold(_key(term))):
        if key in index:
            return list(index[key])
    found: set[str] = set()
    for part in _SPACED_DASH.split(term.strip()):
        found.update(index.get(_fold(_key(part)), ()))
    return sorted(found)


def _hint(term: str, choices: dict[str, str]) -> Text | str:
    """' (mente du Bergen?)' for the closest display name, or '' when nothing is close."""
    # A Text, so that the console says it in its language too.
    by_key = {_fold(_key(display)): display for display in choices.values()}
    for display in choices.values():
        for part in _SPACED_DASH.split(display.split(" (")[0]):
            by_key.setdefault(_fold(_key(part)), display)
    match = difflib.get_close_matches(_fold(_key(term)), list(by_key), n=1)
    return Text(" (mente du %(name)s?)", name=by_key[match[0]]) if match else ""
