"""SN2025 industry codes (næringskoder): check, expand and translate codes from SN2007.

The register serves SN2025 codes only; a filter on an SN2007 code that no longer exists silently
selects nothing. So every code given as a criterion is checked here: SN2025 codes pass, SN2007
codes are translated when SSB's correspondence gives one answer and refused otherwise.
"""

from __future__ import annotations

import csv
import functools
import re
from collections.abc import Iterable
from dataclasses import dataclass
from importlib import resources

from varsel.errors import N_, BadCriteriaError, Text
from varsel.i18n import fmt_int

# Brønnøysund's placeholder for "no industry given"; it is not an SN2025 code.
UNSPECIFIED = "00.000"
SHOWN_CANDIDATES = 6

_DOTTED = re.compile(r"\d{2}(?:\.\d{1,3})?")
_UNDOTTED = re.compile(r"\d{2,5}")
_FORMAT_HINT = N_("skriv 2–5 sifre (62, 62.1, 62.10, 62.100) eller en seksjonsbokstav (C)")


@dataclass(frozen=True)
class Code:
    """One SN2025 code: a section letter or a dotted division, group or subgroup."""

    code: str
    level: str
    name: str
    parent: str  # empty for a section


@dataclass(frozen=True)
class _Tables:
    codes: dict[str, Code]
    children: dict[str, tuple[str, ...]]
    # SN2007 subgroup -> SN2025 subgroups, only for codes whose content moved (Klass table 2919)
    successors: dict[str, tuple[str, ...]]
    # SN2007 section letter -> (name, its divisions)
    sections_2007: dict[str, tuple[str, tuple[str, ...]]]


def _rows(filename: str) -> list[dict[str, str]]:
    text = resources.files("varsel").joinpath("data", filename).read_text(encoding="utf-8")
    return list(csv.DictReader(text.splitlines()))


@functools.cache
def _tables() -> _Tables:
    codes: dict[str, Code] = {}
    children: dict[str, list[str]] = {}
    for row in _rows("sn2025.csv"):
        code = Code(row["kode"], row["niva"], row["navn"], row["forelder"])
        codes[code.code] = code
        children.setdefault(code.parent, []).append(code.code)
    successors: dict[str, list[str]] = {}
    for row in _rows("sn2007-sn2025.csv"):
        successors.setdefault(row["sn2007"], []).append(row["sn2025"])
    sections_2007: dict[str, tuple[str, list[str]]] = {}
    letter = ""
    for row in _rows("naering-sn2007-seksjoner.csv"):
        # Divisions follow their section in this file; the file has no parent column.
        if row["niva"] == "seksjon":
            letter = row["kode"]
            sections_2007[letter] = (row["navn"], [])
        else:
            sections_2007[letter][1].append(row["kode"])
    return _Tables(
        codes=codes,
        children={k: tuple(sorted(v)) for k, v in children.items()},
        successors={k: tuple(sorted(v)) for k, v in successors.items()},
        sections_2007={k: (n, tuple(d)) for k, (n, d) in sections_2007.items()},
    )


def normalise_prefix(text: str) -> str:
    """Turn '62', '6210', ' 62.10 ' or 'c' into a canonical prefix ('62.10', 'C')."""
    raw = text.strip()
    if len(raw) == 1 and raw.isalpha() and raw.isascii():
        return raw.upper()
    if _DOTTED.fullmatch(raw):
        return raw
    if _UNDOTTED.fullmatch(raw):
        return raw if len(raw) == 2 else f"{raw[:2]}.{raw[2:]}"
    raise BadCriteriaError(
        Text("Ugyldig næringskode «%(code)s»: %(hint)s", code=text.strip(), hint=Text(_FORMAT_HINT))
    )


def terms(values: Iterable[str]) -> list[str]:
    """The codes in the values as written: '62,63' is two codes, as two values '62', '63' are.

    A comma always separates codes, as in the console's field; a code's decimals take a dot.
    Read as a decimal comma, '10,11' would silently select 10.11 instead of two industries.
    """
    found: list[str] = []
    for value in values:
        if "," not in value:
            found.append(value)
            continue
        parts = [p.strip() for p in value.split(",") if p.strip()]
        if not parts:
            raise BadCriteriaError(
                Text(
                    "Ugyldig næringskode «%(code)s»: %(hint)s",
                    code=value.strip(),
                    hint=Text(_FORMAT_HINT),
                )
            )
        for part in parts:
            try:
                normalise_prefix(part)
            except BadCriteriaError:
                raise BadCriteriaError(
                    Text(
                        "Ugyldig næringskode «%(code)s» i «%(value)s»: %(hint)s; "
                        "komma skiller flere koder",
                        code=part,
                        value=value.strip(),
                        hint=Text(_FORMAT_HINT),
                    )
                ) from None
        found += parts
    return found


def notes(values: Iterable[str]) -> list[Text]:
    """The notes a preview shows for these criteria: codes translated, and '47,11' read as two."""
    found: list[Text] = []
    for value in values:
        parts = [p.strip() for p in value.split(",")]
        if len(parts) == 2 and _a_code(".".join(parts)):
            found.append(
                Text(
                    "«%(value)s» er lest som to næringskoder, %(first)s og %(second)s; mente du "
                    "koden %(dotted)s, skriv den med punktum",
                    value=value.strip(),
                    first=parts[0],
                    second=parts[1],
                    dotted=".".join(parts),
                )
            )
    for term in terms(values):
        note = explain_mapping(term)
        if note:
            found.append(note)
    return found


def _a_code(text: str) -> bool:
    """Whether text is a dotted code that can be selected on (SN2025, or SN2007 translated)."""
    if not _DOTTED.fullmatch(text) or "." not in text:
        return False
    try:
        _resolve_one(text)
    except BadCriteriaError:
        return False
    return True


def resolve_prefixes(texts: Iterable[str]) -> list[str]:
    """SN2025 prefixes to select on: checked, SN2007 codes translated, sections expanded.

    A text may hold several codes separated by commas (`terms`).
    """
    prefixes: set[str] = set()
    for text in terms(texts):
        prefixes.update(_resolve_one(normalise_prefix(text))[0])
    # A prefix inside another adds nothing to the selection ('62' already covers '62.1').
    return sorted(p for p in prefixes if not any(p != q and p.startswith(q) for q in prefixes))


def sn2007_codes_under(prefixes: Iterable[str]) -> list[str]:
    """SN2007 subgroups, no longer SN2025 codes, whose successor lies under one of prefixes.

    Units from older dumps keep their SN2007 code (62.010); a filter on its SN2025 successor
    (62.1) must find them too. A code SN2025 still has is read as SN2025.
    """
    tables = _tables()
    wanted = tuple(prefixes)
    return sorted(
        old
        for old, new in tables.successors.items()
        if old not in tables.codes and any(n.startswith(wanted) for n in new)
    )


def explain_mapping(text: str) -> Text | None:
    """The note a preview shows for this criterion, or None when it means what it says."""
    try:
        return _resolve_one(normalise_prefix(text))[1]
    except BadCriteriaError:
        return None  # resolve_prefixes reports the refusal itself


def name(code: str) -> str | None:
    """The SN2025 name of a code at any level, or None when it is not an SN2025 code."""
    codes = _tables().codes
    if code in codes:
        return codes[code].name
    if code.strip() == UNSPECIFIED:
        return "Uoppgitt"
    try:
        found = codes.get(normalise_prefix(code))
    except BadCriteriaError:
        return None
    return found.name if found else None


def section_of(code: str) -> str | None:
    """The SN2025 section letter a code belongs to, e.g. 'K' for '62.100'."""
    codes = _tables().codes
    try:
        found = codes.get(normalise_prefix(code))
    except BadCriteriaError:
        return None
    while found is not None and found.parent:
        found = codes.get(found.parent)
    return found.code if found else None


def sections() -> list[tuple[str, str]]:
    """All SN2025 sections as (letter, name), A to V."""
    tables = _tables()
    return [(c, tables.codes[c].name) for c in tables.children[""]]


def _resolve_one(prefix: str) -> tuple[list[str], Text | None]:
    """(SN2025 prefixes, note) for one canonical prefix; raises when it cannot be used."""
    tables = _tables()
    if prefix.isalpha():
        if prefix not in tables.codes:
            raise BadCriteriaError(
                Text("Ukjent næringsseksjon %(code)s (SN2025 har seksjonene A–V)", code=prefix)
            )
        return list(tables.children[prefix]), _section_note(prefix)
    if prefix in tables.codes:
        return [prefix], _moved_out_note(prefix)
    old = [c for c in tables.successors if c.startswith(prefix)]
    if not old:
        raise BadCriteriaError(Text("Ukjent næringskode %(code)s (SN2025)", code=prefix))
    new = _collapse({s for c in old for s in tables.successors[c]}, len(prefix))
    if len(new) == 1:
        note = Text(
            "%(old)s (SN2007) er tolket som %(new)s (SN2025): %(name)s",
            old=prefix,
            new=new[0],
            name=tables.codes[new[0]].name,
        )
        return new, note
    shown = ", ".join(f"{c} ({tables.codes[c].name})" for c in new[:SHOWN_CANDIDATES])
    extra = len(new) - SHOWN_CANDIDATES
    more = Text(" og %(count)s til", count=extra) if extra > 0 else ""
    raise BadCriteriaError(
        Text(
            "Næringskode %(code)s er fra SN2007 og finnes ikke i SN2025; velg blant "
            "%(codes)s%(more)s",
            code=prefix,
            codes=shown,
            more=more,
        )
    )


def _collapse(codes: set[str], min_length: int) -> list[str]:
    """Replace complete sets of siblings by their parent, no coarser than the input's level."""
    tables = _tables()
    result = set(codes)
    changed = True
    while changed:
        changed = False
        for parent in {tables.codes[c].parent for c in result}:
            # A section is not a usable prefix, and a broader answer than the question misleads.
            if parent.isalpha() or len(parent) < min_length:
                continue
            kids = tables.children[parent]
            if all(k in result for k in kids):
                result.difference_update(kids)
                result.add(parent)
                changed = True
    return sorted(result)


def _moved_out_note(prefix: str) -> Text | None:
    """A warning when SN2007 used this valid SN2025 prefix for activities now elsewhere."""
    tables = _tables()
    moved = {
        old: new
        for old, new in tables.successors.items()
        if old.startswith(prefix) and not any(s.startswith(prefix) for s in new)
    }
    if not moved:
        return None
    name = tables.codes[prefix].name
    if list(moved) == [prefix]:
        return Text(
            "%(code)s er tolket etter SN2025 (%(name)s); i SN2007 betydde %(code)s noe annet, "
            "som nå er %(now)s",
            code=prefix,
            name=name,
            now=" / ".join(moved[prefix]),
        )
    olds = sorted(moved)
    listed = ", ".join(f"{o} → {' / '.join(moved[o])}" for o in olds[:3])
    if len(olds) <= 3:
        return Text(
            "%(code)s er tolket etter SN2025 (%(name)s); SN2007-koder under %(code)s som nå "
            "ligger andre steder: %(moved)s",
            code=prefix,
            name=name,
            moved=listed,
        )
    return Text(
        "%(code)s er tolket etter SN2025 (%(name)s); SN2007-koder under %(code)s som nå "
        "ligger andre steder: %(moved)s og %(more)s til",
        code=prefix,
        name=name,
        moved=listed,
        more=fmt_int(len(olds) - 3),
    )


def _section_note(letter: str) -> Text | None:
    """A warning when the letter meant other divisions in SN2007 (letters moved from J on)."""
    tables = _tables()
    old = tables.sections_2007.get(letter)
    new = tables.children[letter]
    if old is not None and old[1] == new:
        return None
    name = tables.codes[letter].name
    if old is None:
        return Text(
            "Seksjon %(letter)s er tolket etter SN2025: %(name)s (%(span)s); bokstaven fantes "
            "ikke i SN2007",
            letter=letter,
            name=name,
            span=_span(new),
        )
    return Text(
        "Seksjon %(letter)s er tolket etter SN2025: %(name)s (%(span)s); i SN2007 var "
        "%(letter)s %(old_name)s (%(old_span)s)",
        letter=letter,
        name=name,
        span=_span(new),
        old_name=old[0],
        old_span=_span(old[1]),
    )


def _span(divisions: tuple[str, ...]) -> str:
    return divisions[0] if len(divisions) == 1 else f"{divisions[0]}–{divisions[-1]}"
