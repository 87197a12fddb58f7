"""Addresses, e-mail addresses, phone numbers and web domains of synthetic units."""

from __future__ import annotations

from typing import Any

from varsel.synth_tables import Kommune, World, pick

ASCII = str.maketrans({"æ": "ae", "ø": "o", "å": "a", "é": "e", "ü": "u", "ö": "o", "ä": "a"})
"""Folds the letters of Norwegian names to what people type in domains and e-mail addresses."""

_FORM_WORDS = frozenset(
    {"AS", "ASA", "ANS", "DA", "SA", "NUF", "KS", "BA", "IKS", "KF", "HF", "OG", "&", "-", "I"}
)
_SHARED_ACCOUNTANT = "post@regnskapskontoret.no"


# -- addresses ----------------------------------------------------------------------------------


def address(kommune: Kommune, postnummer: str, poststed: str, lines: list[str]) -> dict[str, Any]:
    """A Norwegian address as the registry writes it."""
    return {
        "land": "Norge",
        "landkode": "NO",
        "postnummer": postnummer,
        "poststed": poststed,
        "adresse": lines,
        "kommune": kommune.upper,
        "kommunenummer": kommune.nr,
    }


def street(world: World, u: float, v: float, nynorsk: bool) -> str:
    """A street address line, or now and then a farm's name."""
    if u < 0.03:
        return world.farms[int(v * len(world.farms))]
    name = world.streets[int(u * len(world.streets))]
    if nynorsk:
        name = name.replace("veien", "vegen")
    letter = "ABC"[int(v * 300) % 3] if v * 977 % 1 < 0.1 else ""
    return f"{name} {int(v**2 * 150) + 1}{letter}"


def lines(world: World, u: float, v: float, dirt: float, nynorsk: bool, box: bool) -> list[str]:
    """The adresse lines of a street address, with the registry's usual blemishes."""
    line = street(world, u, v, nynorsk)
    if dirt < 0.006:
        return [] if dirt < 0.002 else [line, ""] if dirt < 0.004 else [" ", line]
    if dirt < 0.03:
        return [line.upper()]
    if dirt < 0.06 and not box:
        return [f"{world.stems[int(v * 71) % len(world.stems)].capitalize()}gården", line]
    return [line]


def forretningsadresse(
    world: World, code: str, country: int, kommune: Kommune | None, u: list[float]
) -> dict[str, Any]:
    """An enhet's business address: in its municipality, or abroad."""
    if kommune is None:
        cc = world.countries[country]
        empty = code == "UTLA" and u[23] < 0.3
        found = [] if empty else [cc.streets[int(u[20] * len(cc.streets))]]
        city = cc.cities[int(u[22] * len(cc.cities))]
        return {"land": cc.name, "landkode": cc.code, "poststed": city, "adresse": found}
    postnummer, poststed = kommune.streets[int(u[22] * len(kommune.streets))]
    if code == "KOMM":
        found = [f"Rådhusplassen {int(u[21] * 9) + 1}"]
    else:
        found = lines(world, u[20], u[21], u[23], u[29] < kommune.nynorsk, box=False)
    return address(kommune, postnummer, poststed, found)


def postadresse(
    world: World, code: str, first: str, last: str, kommune: Kommune | None, u: list[float]
) -> dict[str, Any] | None:
    """An enhet's postal address, when it has one: a postbox, a street or c/o someone."""
    if u[19] >= (0.95 if code == "KOMM" else 0.75 if kommune is None else 0.45):
        return None
    box = f"Postboks {int(u[43] * 9000) + 1}"
    if kommune is None or u[44] < 0.12:
        # c/o an accountant, often in Oslo: the mailbox of foreign branches and small firms.
        to = kommune if kommune is not None and u[46] < 0.6 else world.kommuner[0]
        accountant = world.accountants[int(u[44] * 997) % len(world.accountants)]
        co = f"c/o {accountant}" if u[44] * 31 % 1 < 0.7 else f"C/O {accountant.upper()}"
        if code == "ENK" and u[44] * 7 % 1 < 0.5:
            co = f"c/o {first.capitalize()} {last.capitalize()}"
        found = [co, box if u[45] < 0.7 else street(world, u[45], u[43], False)]
        if u[45] > 0.97:
            found.append(to.box_poststed.capitalize())
        return address(to, to.boxes[int(u[43] * len(to.boxes))], to.box_poststed, found)
    if u[45] < 0.5 or code == "KOMM":
        if u[43] * 13 % 1 < 0.1:
            box += " Sentrum"
        postnummer = kommune.boxes[int(u[43] * len(kommune.boxes))]
        return address(kommune, postnummer, kommune.box_poststed, [box])
    postnummer, poststed = kommune.streets[int(u[46] * len(kommune.streets))]
    nynorsk = u[29] < kommune.nynorsk
    found = lines(world, u[45], u[43], u[23] * 3 % 1, nynorsk, box=True)
    return address(kommune, postnummer, poststed, found)


# -- e-mail, phone and web ----------------------------------------------------------------------


def email(
    world: World,
    code: str,
    name: str,
    first: str,
    last: str,
    kommune: Kommune | None,
    u: list[float],
) -> str:
    """The e-mail address a unit gave the registry, typos and shared addresses included."""
    kind, dirt = u[13], u[14]
    if dirt < 0.003:
        return _SHARED_ACCOUNTANT
    if dirt < 0.012 and kommune is not None:
        # Regional accounting firms keep their own address on dozens of clients.
        town = kommune.places[0].lower().translate(ASCII).replace(" ", "")
        return f"post@{town}regnskap.no"
    if code in ("ENK", "PERS", "BO") or kind < 0.12:
        # Sole proprietors mostly give their private address, often at a free-mail host.
        local = local_part(first, last, kind * 3 % 1)
        if kind * 7 % 1 < 0.75:
            host = world.freemail[pick(world.freemail_cum, kind * 11 % 1)]
        else:
            host = domain(name, kind)
    else:
        if kind * 3 % 1 < 0.8:
            local = world.roles[pick(world.roles_cum, kind * 5 % 1)]
        else:
            local = local_part(first, last, kind * 17 % 1)
        host = domain(name, kind)
    found = f"{local}@{host}"
    return _dirty(found, first, last, u[15]) if dirt < 0.05 else found


def domain(name: str, u: float) -> str:
    """A web domain made from a business name: fjordbygg.no, fjord-bygg.no."""
    words = [w for w in name.split() if w not in _FORM_WORDS][:3] or ["firma"]
    if u < 0.7:
        words = words[:2]
    label = ("-" if u > 0.85 else "").join(words).lower()
    label = "".join(c for c in label if c.isalnum() or c == "-")
    # A few firms with æ, ø or å keep them: an IDN domain such as bærumbakeri.no.
    if not (u * 97 % 1 < 0.05 and label != label.translate(ASCII)):
        label = label.translate(ASCII)
    tld = ".com" if u * 31 % 1 < 0.08 else ".no"
    return (label or "firma") + tld


def komm_domain(kommune: Kommune) -> str:
    """A municipality's web domain: baerum.kommune.no."""
    name = kommune.name.split(" (")[0].split(" - ")[0].lower()
    return name.translate(ASCII).replace(" ", "-") + ".kommune.no"


def phone(prefixes: tuple[str, ...], u: float, mobile: bool) -> str:
    """A landline number with one of the county's prefixes, or a mobile number."""
    n = int(u * 1e9)
    if mobile:
        digits = ("9" if n % 5 < 3 else "4") + f"{n % 10_000_000:07d}"
        if n % 10 < 7:
            return f"{digits[:3]} {digits[3:5]} {digits[5:]}"
        return digits
    digits = prefixes[n % len(prefixes)] + f"{(n // 7) % 1_000_000:06d}"
    if n % 20 < 17:
        return f"{digits[:2]} {digits[2:4]} {digits[4:6]} {digits[6:]}"
    return digits


def local_part(first: str, last: str, u: float) -> str:
    """A personal e-mail local part: ola.hansen, olahansen, ola.hansen72, ohansen."""
    f, la = first.lower().translate(ASCII), last.lower().translate(ASCII)
    year = str(50 + int(u * 7919) % 50)
    if u < 0.40:
        return f"{f}.{la}"
    if u < 0.60:
        return f + la
    if u < 0.70:
        return f"{f}.{la}{year}"
    if u < 0.75:
        return f + year
    if u < 0.85:
        return f[0] + la
    if u < 0.90:
        return f"{f}_{la}"
    return f


def _dirty(address: str, first: str, last: str, u: float) -> str:
    """The mistakes people make when they type an e-mail address into the registry."""
    other = local_part(first, last, u * 7 % 1)
    if u < 0.16:
        return f" {address}" if u < 0.04 else f"{address} "
    if u < 0.26:
        return f"{address};{other}@gmail.com"
    if u < 0.32:
        return f"{address}, {other}@online.no"
    if u < 0.35:
        return f"{address} {other}@hotmail.com"
    if u < 0.45:
        local, _, host = address.partition("@")
        return f"{local}@{host.replace('.', '')}"
    if u < 0.55:
        return address.upper()
    if u < 0.65:
        return address.capitalize()
    if u < 0.72:
        return phone(("22",), u * 17 % 1, mobile=True)
    if u < 0.75:
        return address.replace("@", ".", 1)
    return address
