"""Municipalities, counties and police districts: numbers and names of any era to 2024 numbers.

The register uses the 2024 municipality numbers, while people and old lists still use the
numbers from before 2020 or 2024. SSB's change table holds single steps, so a number is
followed until it reaches a current one (0219 → 3024 → 3201); a split gives several.
Names and counties that no longer exist (Mandal, Vest-Agder) are read as the places they were;
a name that is also today's name of another place means today's place. A value may list
several places separated by commas ("Kristiansand, Stavanger"): no place name has a comma.
"""

from __future__ import annotations

import csv
import datetime
import difflib
import functools
import re
import unicodedata
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from importlib import resources

from varsel.digits import ascii_digits
from varsel.errors import BadCriteriaError, Text, listed

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
    old_names: dict[str, tuple[str, ...]]  # name key -> old numbers, keys of no 2024 name
    shadowed: dict[str, tuple[str, ...]]  # 2024 name key -> old numbers of other places
    old_name: dict[str, tuple[str, str]]  # old number -> (its last name, last day valid)
    old_counties: dict[str, tuple[str, str]]  # old county number -> (name, last day valid)
    number_until: dict[str, str]  # old municipality number -> the last day it was used


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
    changes: dict[str, set[str]] = {}
    number_until: dict[str, str] = {}

    def used_until(old: str, changed: str) -> str:
        """Note the day before `changed` as a last day of `old`; that day."""
        last_day = (datetime.date.fromisoformat(changed) - datetime.timedelta(days=1)).isoformat()
        number_until[old] = max(number_until.get(old, ""), last_day)
        return last_day

    for row in _rows("kommunenummer-endringer.csv"):
        changes.setdefault(row["gammelt_nummer"], set()).add(row["nytt_nummer"])
        used_until(row["gammelt_nummer"], row["gyldig_fra"])
    old_names: dict[str, set[str]] = {}
    shadowed: dict[str, set[str]] = {}
    old_name: dict[str, tuple[str, str]] = {}
    for row in _rows("kommunenavn-historiske.csv"):
        old = row["gammelt_nummer"]
        changes.setdefault(old, set()).add(row["nytt_nummer"])
        old_name[old] = (row["gammelt_navn"], used_until(old, row["endret"]))
        for key in _name_keys(row["gammelt_navn"]):
            # Today's name wins: "Sande" is 1514 Sande, not 0713 Sande (Vestfold) of old.
            (shadowed if key in names else old_names).setdefault(key, set()).add(old)
    old_counties = {
        row["fylkesnummer"]: (row["navn"], row["gyldig_til"])
        for row in _rows("fylker-historiske.csv")
    }
    for number, (county, _) in old_counties.items():
        for key in _name_keys(county):
            county_names.setdefault(key, number)  # today's county of that name wins
    return _Tables(
        old_names={k: tuple(sorted(v)) for k, v in old_names.items()},
        shadowed={k: tuple(sorted(v)) for k, v in shadowed.items()},
        old_name=old_name,
        old_counties=old_counties,
        number_until=number_until,
        by_number=by_number,
        changes={k: tuple(sorted(v)) for k, v in changes.items()},
        names={k: tuple(sorted(v)) for k, v in names.items()},
        county_names=county_names,
        counties={k: (n, tuple(sorted(v))) for k, (n, v) in counties.items()},
        districts={k: (d, tuple(sorted(v))) for k, (d, v) in districts.items()},
    )


def _number(text: str) -> str | None:
    """'301' or ' 0301 ' -> '0301'; None when the text is not a 3- or 4-digit number."""
    raw = text.strip()
    if ascii_digits(raw) and len(raw) in (3, 4):
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


def split(value: str) -> list[str]:
    """The places in a value: 'Kristiansand, Stavanger' is two, as two values are.

    No municipality, county or police district has a comma in its name, so a comma always
    separates places. Empty parts ('Oslo,,Bærum', a trailing comma) are left out.
    """
    parts = [part.strip() for part in value.split(",")]
    return [part for part in parts if part] or [value.strip()]


def _each(value: str, resolve_one: Callable[[str], list[str]]) -> list[str]:
    """resolve_one applied to every place in value; a mistake names the list it is in."""
    parts = split(value)
    found: set[str] = set()
    for part in parts:
        try:
            found.update(resolve_one(part))
        except BadCriteriaError as e:
            if len(parts) == 1:
                raise
            raise BadCriteriaError(
                Text(
                    "%(problem)s i «%(value)s» (komma skiller flere)",
                    problem=e.message,
                    value=value.strip(),
                )
            ) from None
    return sorted(found)


def resolve_municipality(term: str) -> list[str]:
    """2024 numbers for municipality numbers (any era) or names, comma-separated; a split
    municipality gives all its parts."""
    return _each(term, lambda part: _resolve_municipality(part)[0])


def resolve_county(term: str) -> list[str]:
    """2024 municipality numbers of counties given by number ('32', '10') or name ('Akershus',
    'Vest-Agder'), comma-separated; a county of before 2024 gives the municipalities it had."""
    return _each(term, lambda part: _resolve_county(part)[0])


def resolve_police_district(term: str) -> list[str]:
    """2024 municipality numbers of police districts: 'oslo', 'Sør-Øst politidistrikt', …"""
    return _each(term, _resolve_police_district)


def notes(municipalities: Iterable[str], counties: Iterable[str]) -> list[Text]:
    """What a preview says about places it read: old names and counties, and what they are now."""
    found: list[Text] = []
    for value in municipalities:
        for part in split(value):
            note = _resolve_municipality(part)[1]
            if note:
                found.append(note)
    for value in counties:
        for part in split(value):
            note = _resolve_county(part)[1]
            if note:
                found.append(note)
    return found


def describe(
    municipalities: Iterable[str], counties: Iterable[str], districts: Iterable[str]
) -> list[str]:
    """Each place the values name, in words: '4205 Lindesnes', 'fylke 42 Agder', …"""
    tables = _tables()
    words: list[str] = []
    for value in districts:
        for part in split(value):
            words.append(police_district_of(_resolve_police_district(part)[0]))
    for value in counties:
        for part in split(value):
            number, name_ = county_named(part)
            words.append(f"fylke {number} {name_}")
    for value in municipalities:
        for part in split(value):
            found = _resolve_municipality(part)[0]
            words.append(", ".join(f"{n} {tables.by_number[n].name}" for n in found))
    return words


def _listed_numbers(numbers: Iterable[str]) -> str:
    tables = _tables()
    return ", ".join(f"{n} {tables.by_number[n].name}" for n in numbers)


def _day(iso: str) -> str:
    """'2019-12-31' -> '31.12.2019', as a Norwegian reader writes a date."""
    return datetime.date.fromisoformat(iso).strftime("%d.%m.%Y")


def _old_note(term: str, olds: Iterable[str], now: list[str]) -> Text:
    """The note for an old name: which municipality it was, until when, and what it is now."""
    tables = _tables()
    # The last of the numbers the name had (Klæbu was 1662, then 5030 until 2020).
    old = max(olds, key=lambda n: (tables.old_name[n][1], n))
    old_name_, last_day = tables.old_name[old]
    return Text(
        "«%(term)s» er den tidligere kommunen %(old)s %(name)s (til %(day)s); valgt: %(now)s",
        term=term,
        old=old,
        name=old_name_,
        day=_day(last_day),
        now=_listed_numbers(now),
    )


def _resolve_municipality(term: str) -> tuple[list[str], Text | None]:
    """2024 numbers for one municipality number or name, and a note when it is an old name."""
    tables = _tables()
    # "Oslo kommune", as people write it (a county takes "fylke", a district "politidistrikt").
    term = re.sub(r"\s+kommune$", "", term.strip(), flags=re.IGNORECASE)
    # "0301 Oslo", as the preview names a municipality: the number, when the name agrees.
    both = re.fullmatch(r"(\d{4})\s+(\D.*)", term)
    if both:
        found, note = _resolve_municipality(both[1])
        named = {*_match_name(both[2], tables.names)}
        named |= {s for old in _match_name(both[2], tables.old_names) for s in _successors(old)}
        if not named & set(found):
            raise BadCriteriaError(
                Text(
                    "«%(term)s»: %(number)s er %(now)s, ikke %(name)s",
                    term=term,
                    number=both[1],
                    now=", ".join(tables.by_number[n].name for n in found),
                    name=both[2].strip(),
                )
            )
        return found, note
    number = _number(term)
    if number is not None:
        found = _successors(number)
        if not found:
            raise BadCriteriaError(Text("Ukjent kommunenummer %(number)s", number=number))
        if number in tables.by_number:
            return found, None
        # A number of old (the pilot's 3024 Bærum and 3025 Asker, say): what it selects now.
        return found, Text(
            "%(old)s er et tidligere kommunenummer (brukt til %(day)s); valgt: %(now)s",
            old=number,
            day=_day(tables.number_until[number]),
            now=_listed_numbers(found),
        )
    if term.strip().isdigit():
        raise BadCriteriaError(
            Text(
                "Ugyldig kommunenummer «%(term)s»: skriv fire sifre, f.eks. 0301",
                term=term.strip(),
            )
        )
    found = _match_name(term, tables.names)
    if len(found) > 1:
        raise BadCriteriaError(
            Text(
                "Kommunenavnet «%(term)s» er tvetydig (%(found)s); bruk kommunenummeret",
                term=term.strip(),
                found=_listed_numbers(found),
            )
        )
    if found:
        return found, _shadow_note(term, found)
    olds = _match_name(term, tables.old_names)
    if olds:
        now = sorted({s for old in olds for s in _successors(old)})
        return now, _old_note(term.strip(), olds, now)
    choices = {n: m.name for n, m in tables.by_number.items()}
    # Old names too, shown with what they are now, so that "Mandall" suggests "Mandal".
    for old, (old_name_, _) in tables.old_name.items():
        now = _successors(old)
        choices.setdefault(f"old:{old}", f"{old_name_} ({_listed_numbers(now)})")
    raise BadCriteriaError(
        Text("Ukjent kommune «%(term)s»%(hint)s", term=term.strip(), hint=_hint(term, choices))
    )


def _shadow_note(term: str, found: list[str]) -> Text | None:
    """A note when today's name was also an old name of another place (Sande in Vestfold)."""
    tables = _tables()
    keys = (_key(term), _fold(_key(term)))
    olds = [o for k in keys for o in tables.shadowed.get(k, ()) if _successors(o) != found]
    if not olds:
        return None
    old = olds[0]
    return Text(
        "«%(term)s» er lest som %(now)s; den tidligere kommunen %(old)s %(name)s er nå %(then)s "
        "(skriv %(old)s for den)",
        term=term.strip(),
        now=_listed_numbers(found),
        old=old,
        name=tables.old_name[old][0],
        then=_listed_numbers(_successors(old)),
    )


def county_named(term: str) -> tuple[str, str]:
    """(number, name) of the county a term names, today's or an old one; refused if none."""
    tables = _tables()
    raw = term.strip()
    if ascii_digits(raw) and len(raw) <= 2:
        number = raw.zfill(2)
    else:
        key = _key(re.sub(r"\s+fylke(skommune)?$", "", raw, flags=re.IGNORECASE))
        found = tables.county_names.get(key) or tables.county_names.get(_fold(key))
        if found is None:
            choices = {c: county for c, (county, _) in tables.counties.items()}
            choices.update({c: county for c, (county, _) in tables.old_counties.items()})
            raise BadCriteriaError(
                Text("Ukjent fylke «%(term)s»%(hint)s", term=raw, hint=_hint(raw, choices))
            )
        number = found
    if number in tables.counties:
        return number, tables.counties[number][0]
    if number in tables.old_counties:
        return number, tables.old_counties[number][0]
    raise BadCriteriaError(Text("Ukjent fylkesnummer %(number)s", number=number))


def _resolve_county(term: str) -> tuple[list[str], Text | None]:
    """2024 municipality numbers of one county, and a note when it is a county of old."""
    tables = _tables()
    number, county = county_named(term)
    if number in tables.counties:
        return list(tables.counties[number][1]), None
    # A county of before 2024: the municipalities it had, by their numbers' first two digits.
    found = sorted({s for old in tables.changes if old[:2] == number for s in _successors(old)})
    now = sorted({tables.by_number[n].county_number for n in found})
    return found, Text(
        "Fylke %(number)s %(county)s fantes til %(day)s; valgt: dagens %(count)s kommuner med "
        "områder som lå i det, i %(now)s",
        number=number,
        county=county,
        day=_day(tables.old_counties[number][1]),
        count=len(found),
        now=listed([f"{c} {tables.counties[c][0]}" for c in now]),
    )


def _resolve_police_district(term: str) -> list[str]:
    """2024 municipality numbers of one police district."""
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
