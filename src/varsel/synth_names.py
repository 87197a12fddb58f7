"""Names of synthetic units, built the way each legal form is usually named."""

from __future__ import annotations

from varsel.synth_contacts import street
from varsel.synth_tables import Form, World

COMPANY_FORMS = frozenset({"AS", "ASA", "KS", "BA", "SA", "ANS", "DA"})
"""Legal forms named like companies, with the form as a suffix: FJORD BYGG AS."""


def place(world: World, kommune: int, u: float) -> str:
    """A place name in the municipality (an index into world.kommuner; -1 for abroad)."""
    places = world.kommuner[kommune].places if kommune >= 0 else ("NORDIC",)
    return places[int(u * len(places))]


def unit_name(
    world: World,
    form: Form,
    kommune: int,
    country: int,
    nace: tuple[str, str] | None,
    first: str,
    last: str,
    u: list[float],
) -> str:
    """The unit's name, built the way each legal form is usually named."""
    code, pattern, a, c = form.code, u[7], u[8], u[10]
    trade = world.trade.get(nace[0][:2] if nace else "", ("SERVICE", "DRIFT", "GRUPPEN"))
    word = trade[int(a * len(trade))]
    stems = world.stems
    stem = stems[int(u[9] * len(stems))]
    if c < 0.2:
        stem += stems[int(c * 5 * len(stems))]
    where = place(world, kommune, c)
    if code == "ENK":
        # A sole proprietorship's name must hold the owner's surname.
        name = _enk_name(pattern, word, first, last)
    elif country >= 0 or code == "NUF":
        countries = world.countries
        cc = countries[country if country >= 0 else int(c * len(countries))]
        suffix = (
            ""
            if code == "UTLA"
            else (" NUF" if a < 0.8 else ", FILIAL I NORGE" if a < 0.9 else " NORWEGIAN BRANCH")
        )
        name = f"{stem} {word} {cc.suffix}{suffix}"
    elif code in COMPANY_FORMS:
        base = _company_base(code, pattern, stem, word, where, first, last, a, c, world.last)
        name = f"{base} {code}"
    else:
        nynorsk = kommune >= 0 and u[29] < world.kommuner[kommune].nynorsk
        name = _other_name(world, code, pattern, stem, word, where, first, last, u, nynorsk)
    # A few names carry stray spaces, as typed into Altinn.
    if u[37] < 0.002:
        name = name + " " if u[37] < 0.001 else " " + name
    return name


def _other_name(
    world: World,
    code: str,
    pattern: float,
    stem: str,
    word: str,
    where: str,
    first: str,
    last: str,
    u: list[float],
    nynorsk: bool,
) -> str:
    """Names of associations, condominiums, estates and public bodies."""
    if code == "FLI":
        club = world.clubs[int(u[8] * len(world.clubs))]
        return f"FAU {where} SKOLE" if club == "FAU" else f"{where} {club}"
    if code == "ESEK":
        # An owner-section condominium is named after the building it owns.
        building = street(world, u[20], u[21], nynorsk).upper()
        if pattern < 0.5:
            return f"SAMEIET {building}"
        return f"{building} BOLIGSAMEIE" if pattern < 0.85 else f"EIERSEKSJONSSAMEIET {building}"
    institution = world.institutions[int(u[8] * len(world.institutions))][0]
    named = {
        "BRL": f"{stem if pattern < 0.6 else where} BORETTSLAG",
        "SAM": f"SAMEIET {stem}" if pattern < 0.5 else f"{last} SAMEIE",
        "STI": f"STIFTELSEN {stem if pattern < 0.5 else where}",
        "ORGL": f"{where} {institution}",
        "KIRK": f"{where} SOKN",
        "KBO": f"{stem} {word} AS KONKURSBO",
        "BO": f"DØDSBO ETTER {first} {last}",
        "SPA": f"SPAREBANKEN {where}",
        "IKS": f"{where} {word} IKS",
        "KF": f"{where} {word} KF",
        "PK": f"{stem} {word} PENSJONSKASSE",
    }
    return named.get(code, f"{stem} {word}")


def _company_base(
    code: str,
    pattern: float,
    stem: str,
    word: str,
    where: str,
    first: str,
    last: str,
    a: float,
    c: float,
    surnames: tuple[str, ...],
) -> str:
    """The name of a company before its legal-form suffix: "FJORD BYGG", "HANSEN HOLDING"."""
    if code in ("ANS", "DA") and pattern < 0.3:
        return f"{last} & {surnames[int(c * len(surnames))]}"
    if pattern < 0.45:
        return f"{stem} {word}"
    if pattern < 0.65:
        return f"{last} {word}"
    if pattern < 0.80:
        return f"{where} {word}"
    if pattern < 0.92:
        return stem
    if pattern < 0.97:
        return f"{first} {last} HOLDING" if code == "AS" else f"{last} & {stem}"
    return f"{int(a * 9000) + 1000} {word}"


def _enk_name(pattern: float, word: str, first: str, last: str) -> str:
    if pattern < 0.4:
        return f"{first} {last}"
    if pattern < 0.65:
        return f"{word} {first} {last}"
    if pattern < 0.85:
        return f"{first} {last} {word}"
    return f"{last} {word}"
