"""Synthetic enheter and underenheter records, each a pure function of the seed and its index."""

from __future__ import annotations

import bisect
import itertools
import math
from datetime import date, timedelta
from functools import cache
from typing import Any, NamedTuple

import numpy as np

from varsel.synth_contacts import (
    address,
    domain,
    email,
    forretningsadresse,
    komm_domain,
    lines,
    phone,
    postadresse,
)
from varsel.synth_names import COMPANY_FORMS, place, unit_name
from varsel.synth_orgnr import mix, orgnr
from varsel.synth_tables import (
    NATIONAL_UNITS,
    Form,
    Kommune,
    World,
    area_fraction,
    cumulative,
    pick,
)

BLOCK = 4096
"""Records per block of random numbers; each block is seeded on its own."""

_COLS = 48
_API = "https://data.brreg.no/enhetsregisteret/api"
_TODAY = date(2025, 12, 15)
_EPOCH = date(1850, 1, 1)
_DAY_1995 = (date(1995, 2, 19) - _EPOCH).days
_DAY_BULK_END = (date(1996, 6, 30) - _EPOCH).days
_DAY_TODAY = (_TODAY - _EPOCH).days
_DAY_2012 = (date(2012, 1, 1) - _EPOCH).days
_DAY_2024 = (date(2024, 1, 1) - _EPOCH).days
_DAY_2024H2 = (date(2024, 7, 1) - _EPOCH).days
_DAY_2025 = (date(2025, 1, 1) - _EPOCH).days

_SUBFORMS = {
    "BEDR": "Underenhet til næringsdrivende og offentlig forvaltning",
    "AAFY": "Underenhet til ikke-næringsdrivende",
}
_UNKNOWN = ("00.000", "Uoppgitt")
_NO_ROW = [0.0] * _COLS
_UNFOUNDED = frozenset({"ENK", "NUF", "UTLA", "KOMM", "ORGL", "KIRK", "ADOS"})
_FORCED = (
    "tvangsopplostPgaManglendeRegnskapDato",
    "tvangsopplostPgaManglendeRevisorDato",
    "tvangsopplostPgaManglendeDagligLederDato",
    "tvangsopplostPgaMangelfulltStyreDato",
)
# Share capital drawn uniformly from these lists: the legal minimum was NOK 100 000 before
# 2012 and NOK 30 000 since, and most companies register with the minimum.
_CAPITAL_NEW = (30_000, 30_000, 30_000, 50_000, 60_000, 100_000, 200_000, 1_000_000)
_CAPITAL_OLD = (100_000, 100_000, 100_000, 120_000, 250_000, 500_000, 1_000_000, 3_000_000)


class Core(NamedTuple):
    """What a sub-unit needs to know of its parent, and what the enhet itself is built from."""

    position: int  # the enhet's index in the dump
    form: Form
    kommune: int  # index into world.kommuner; -1 when the business address is abroad
    country: int
    employees: int  # -1: none registered; 0: 1-4 (hidden); else the count
    nace: tuple[str, str] | None
    name: str
    first: str
    last: str
    registered: int  # day number of registreringsdatoEnhetsregisteret


class Generator:
    """Builds records for one seed and area; every record is a pure function of its index."""

    def __init__(self, world: World, seed: int, area: tuple[int, ...]) -> None:
        self.world = world
        self.seed = seed % 2**64
        self.area = area
        self.keys = tuple(mix(self.seed & 0xFFFFFFFF, (self.seed >> 32) + i) for i in range(5))
        self.dates = _dates()
        self.kommuner = area or tuple(range(len(world.kommuner)))
        self.kommune_cum = cumulative([world.kommuner[k].weight for k in self.kommuner])
        self.foreign = 0.0 if area else world.foreign
        self.counties: dict[str, tuple[tuple[int, ...], tuple[float, ...]]] = {}
        for county in sorted({world.kommuner[k].county for k in self.kommuner}):
            members = tuple(k for k in self.kommuner if world.kommuner[k].county == county)
            weights = [world.kommuner[k].weight for k in members]
            self.counties[county] = (members, cumulative(weights))
        # One KOMM per municipality in scope, spread evenly over the national-scale index range.
        share = area_fraction(world, area)
        self.komm_stride = max(1, round(NATIONAL_UNITS * share) // len(self.kommuner))
        self.komm_offset = self.komm_stride // 2
        self.komm_weights = tuple(
            itertools.accumulate(world.kommuner[k].weight for k in self.kommuner)
        )
        self._rows: dict[tuple[int, int], list[list[float]]] = {}

    # random numbers and numbers

    def rows(self, stream: int, block: int) -> list[list[float]]:
        """The random numbers of one block of records: BLOCK rows of _COLS uniforms."""
        rows = self._rows.get((stream, block))
        if rows is None:
            area = [int(self.world.kommuner[k].nr) for k in self.area]
            entropy = [self.seed & 0xFFFFFFFF, self.seed >> 32, stream, block, *area]
            bits = np.random.PCG64(np.random.SeedSequence(entropy))
            rows = np.random.Generator(bits).random((BLOCK, _COLS)).tolist()
            # Sub-units look up parents near 4/3 of their own index: a few blocks suffice.
            if len(self._rows) > 6:
                del self._rows[next(iter(self._rows))]
            self._rows[(stream, block)] = rows
        return rows

    def row(self, i: int) -> list[float]:
        """The random numbers of enhet ``i``."""
        return self.rows(0, i // BLOCK)[i % BLOCK]

    def orgnr(self, number: int) -> str:
        return orgnr(number, self.keys)

    def komm(self, index: int) -> int:
        """The municipality (index into world.kommuner) whose KOMM unit has this index, or -1."""
        j, rest = divmod(index - self.komm_offset, self.komm_stride)
        if rest or not 0 <= j < len(self.kommuner):
            return -1
        return self.kommuner[j]

    def komm_index(self, kommune: int) -> int:
        """The enhet index of a municipality's KOMM unit."""
        return self.komm_offset + self.kommuner.index(kommune) * self.komm_stride

    # what an enhet is

    def basic(self, i: int, u: list[float]) -> tuple[Form, int]:
        """Enhet ``i``'s legal form and employees: enough to weigh it as a parent."""
        if self.komm(i) >= 0:
            return self.world.komm, 1
        world = self.world
        if u[0] < self.foreign:
            form = world.foreign_forms[pick(world.foreign_cum, u[1])]
        else:
            form = world.forms[pick(world.form_cum, u[1])]
        if u[2] >= form.employees * world.reg_scale:
            return form, -1
        if u[3] < form.big * world.big_scale:
            return form, min(30_000, int(5 * (1 - u[4]) ** (-1 / 1.15)))
        return form, 0

    def core(self, i: int, u: list[float]) -> Core:
        """The parts of enhet ``i`` that its sub-units depend on."""
        world = self.world
        komm = self.komm(i)
        if komm >= 0:
            # Independent of ``u``: sub-units look KOMM parents up without their random numbers.
            k = world.kommuner[komm]
            admin = ("84.110", world.codes.get("84.110", "Generell offentlig administrasjon"))
            employees = max(5, int(k.population * 0.09))
            name = k.upper.split(" (")[0] + " KOMMUNE"
            return Core(
                i, world.komm, komm, -1, employees, admin, name, "POST", "MOTTAK", _DAY_1995
            )
        first = world.first[int(u[40] * len(world.first))]
        last = world.last[int(u[41] * len(world.last))]
        form, employees = self.basic(i, u)
        if u[0] < self.foreign:
            kommune, country = -1, pick(world.country_cum, u[42])
        else:
            spot = (u[0] - self.foreign) / (1 - self.foreign)
            kommune, country = self.kommuner[pick(self.kommune_cum, spot)], -1
        nace = self.nace(form, u[5], u[6])
        name = unit_name(world, form, kommune, country, nace, first, last, u)
        if u[11] < 0.16:
            # Units older than the register got their registration date in 1995-1996.
            day = _DAY_1995 + int(u[11] / 0.16 * (_DAY_BULK_END - _DAY_1995))
        else:
            age = -math.log(1 - (u[11] - 0.16) / 0.84) * 3300
            day = max(_DAY_1995, _DAY_TODAY - int(age))
        return Core(i, form, kommune, country, employees, nace, name, first, last, day)

    def nace(self, form: Form, u: float, v: float) -> tuple[str, str] | None:
        if u < form.no_nace or not form.nace:
            return None
        if v < form.unknown_nace:
            return _UNKNOWN
        codes, cum = self.world.nace[form.nace]
        return codes[pick(cum, (u * 7.31 + v) % 1)]

    # enheter

    def enhet(self, i: int, u: list[float], orgnr: str) -> dict[str, Any]:
        """Enhet ``i`` as the registry's v2 JSON record, keys in the API's order."""
        core = self.core(i, u)
        code = core.form.code
        kommune = self.world.kommuner[core.kommune] if core.kommune >= 0 else None
        nynorsk = kommune is not None and u[29] < kommune.nynorsk
        rec: dict[str, Any] = {
            "organisasjonsnummer": orgnr,
            "navn": core.name,
            "organisasjonsform": _form_json(code, core.form.desc),
        }
        if u[18] < (0.9 if code == "KOMM" else 0.11):
            rec["hjemmeside"] = (
                f"www.{komm_domain(self.world.kommuner[core.kommune])}/"
                if code == "KOMM"
                else "www." + domain(core.name, u[13])
            )
        post = postadresse(self.world, code, core.first, core.last, kommune, u)
        if post is not None:
            rec["postadresse"] = post
        rec["registreringsdatoEnhetsregisteret"] = self.dates[core.registered]
        self.industry_and_staff(rec, core, u)
        self.contacts(rec, core, kommune, u)
        rec["forretningsadresse"] = forretningsadresse(self.world, code, core.country, kommune, u)
        self.registers(rec, core, u)
        self.status(rec, code, u)
        if code == "ORGL":
            rec["overordnetEnhet"] = self.orgnr(2 * self.komm_index(core.kommune))
        rec["maalform"] = "Nynorsk" if nynorsk else "Bokmål"
        self.articles(rec, core, u, nynorsk)
        links: dict[str, Any] = {"self": {"href": f"{_API}/enheter/{orgnr}"}}
        if "overordnetEnhet" in rec:
            links["overordnetEnhet"] = {"href": f"{_API}/enheter/{rec['overordnetEnhet']}"}
        rec["_links"] = links
        rec["respons_klasse"] = "Enhet"
        return rec

    def industry_and_staff(self, rec: dict[str, Any], core: Core, u: list[float]) -> None:
        """VAT, industry codes and the employee fields."""
        dates, form, reg = self.dates, core.form, core.registered
        code = form.code
        mva = u[25] < form.mva
        rec["registrertIMvaregisteret"] = mva
        voluntary = u[35] < 0.015 and code in ("AS", "FLI", "STI", "NUF")
        if voluntary:
            rec["frivilligMvaRegistrertBeskrivelser"] = ["Utleier av bygg eller anlegg"]
        nace = core.nace
        if nace is not None:
            rec["naeringskode1"] = {"kode": nace[0], "beskrivelse": nace[1]}
            if u[30] < 0.05 and nace != _UNKNOWN:
                self.more_codes(rec, core.form, nace, u[30])
        codes = self.world.codes
        if code in ("AS", "ASA") and u[32] < (0.004 if code == "AS" else 0.3) and "70.100" in codes:
            rec["hjelpeenhetskode"] = {"kode": "70.100", "beskrivelse": codes["70.100"]}
        if core.employees > 0:
            rec["antallAnsatte"] = core.employees
        rec["harRegistrertAntallAnsatte"] = core.employees >= 0
        if voluntary:
            day = max(reg, _DAY_TODAY - int(u[35] * 200_000))
            rec["registreringsdatoFrivilligMerverdiavgiftsregisteret"] = dates[day]
        if mva:
            day = min(_DAY_TODAY, reg + int(u[25] * 900))
            day -= (day + 20) % 30  # VAT registration starts on (roughly) the first of a month
            rec["registreringsdatoMerverdiavgiftsregisteret"] = dates[day]
            later = min(_DAY_TODAY, day + 20 + int(u[47] * 40))
            rec["registreringsdatoMerverdiavgiftsregisteretEnhetsregisteret"] = dates[later]
        if core.employees >= 0:
            self.staff_dates(rec, u[39])

    def more_codes(self, rec: dict[str, Any], form: Form, nace: tuple[str, str], u: float) -> None:
        second = self.nace(form, (u * 20) % 1, 0.5)
        if second is None or second == nace:
            return
        rec["naeringskode2"] = {"kode": second[0], "beskrivelse": second[1]}
        third = self.nace(form, (u * 400) % 1, 0.5)
        if u < 0.008 and third is not None and third not in (nace, second):
            rec["naeringskode3"] = {"kode": third[0], "beskrivelse": third[1]}

    def staff_dates(self, rec: dict[str, Any], u: float) -> None:
        # NAV's Aa-register reports on the 10th; Enhetsregisteret records it a few days later.
        dates = self.dates
        nav = _DAY_TODAY - 5 - int(u**2 * 700)
        nav -= int(dates[nav][8:10]) - 10
        rec["registreringsdatoAntallAnsatteEnhetsregisteret"] = dates[nav + 1 + int(u * 97) % 4]
        rec["registreringsdatoAntallAnsatteNAVAaregisteret"] = dates[nav]

    def registers(self, rec: dict[str, Any], core: Core, u: list[float]) -> None:
        """Founding date, sector and the registers the unit is in."""
        dates, form, reg = self.dates, core.form, core.registered
        code = form.code
        if code not in _UNFOUNDED or (code == "ENK" and u[24] < 0.1):
            if reg <= _DAY_BULK_END:
                founded = max(0, reg - int(-math.log(1 - u[24] * 0.999) * 5500))
            else:
                founded = reg - int(u[24] * 60)
            rec["stiftelsesdato"] = dates[founded]
        if form.sector:
            sector = "1120" if code == "AS" and u[47] < 0.001 else form.sector
            rec["institusjonellSektorkode"] = {
                "kode": sector,
                "beskrivelse": self.world.sectors[sector],
            }
        rec["registrertIForetaksregisteret"] = u[26] < form.foretak
        rec["registrertIStiftelsesregisteret"] = code == "STI"
        voluntary = code in ("FLI", "STI") and u[26] < (0.5 if code == "FLI" else 0.2)
        rec["registrertIFrivillighetsregisteret"] = voluntary
        if voluntary:
            day = max(reg, _DAY_TODAY - int(u[26] * 11_000))
            rec["registreringsdatoFrivillighetsregisteret"] = dates[day]
        accounts = _accounts(form.accounts, reg, u[34])
        if accounts:
            rec["sisteInnsendteAarsregnskap"] = accounts

    def articles(self, rec: dict[str, Any], core: Core, u: list[float], nynorsk: bool) -> None:
        """Purpose and activity texts, and the company fields that follow them."""
        dates, code, reg = self.dates, core.form.code, core.registered
        company = code in COMPANY_FORMS or code in ("STI", "SPA", "BBL")
        nace = core.nace
        desc = nace[1] if nace is not None and nace != _UNKNOWN else "Annen virksomhet"
        activity, purpose = _texts(desc, nynorsk, company)
        if company and u[38] < 0.9:
            rec["vedtektsdato"] = dates[min(_DAY_TODAY, reg + int(u[38] ** 3 * 9000))]
            rec["vedtektsfestetFormaal"] = purpose
        rec["aktivitet"] = [*activity, " "] if u[38] > 0.99 else activity
        if rec["registrertIForetaksregisteret"]:
            rec["registreringsdatoForetaksregisteret"] = dates[reg]
        rec["registrertIPartiregisteret"] = code == "FLI" and u[26] > 0.995
        rec["paategninger"] = []
        if code == "AS" and core.employees <= 0 and u[33] < 0.45:
            decided = max(reg, _DAY_TODAY - int(u[33] * 9000))
            if u[33] < 0.3:
                rec["fravalgRevisjonBeslutningsDato"] = dates[decided]
            effective = min(_DAY_TODAY, decided + 20 + int(u[47] * 50))
            rec["fravalgRevisjonDato"] = dates[effective]
        rec["erIKonsern"] = u[32] < (0.6 if code == "ASA" else 0.03 if code == "AS" else 0.005)
        if code in ("AS", "ASA"):
            rec["kapital"] = self.kapital(code, reg, u[31])

    def contacts(
        self, rec: dict[str, Any], core: Core, kommune: Kommune | None, u: list[float]
    ) -> None:
        code = core.form.code
        prefixes = kommune.phone if kommune else ("22",)
        if code == "KOMM":
            local = "postmottak" if u[13] < 0.6 else "post"
            rec["epostadresse"] = f"{local}@{komm_domain(self.world.kommuner[core.kommune])}"
            rec["telefon"] = phone(prefixes, u[36], mobile=False)
            return
        if core.employees >= 0:
            rate = core.form.email_employer * self.world.email_scale
        else:
            rate = core.form.email
        if u[12] < rate:
            rec["epostadresse"] = email(
                self.world, code, core.name, core.first, core.last, kommune, u
            )
        if u[16] < (0.30 if core.employees >= 0 else 0.10):
            rec["telefon"] = phone(prefixes, u[36], mobile=False)
        if u[17] < (0.30 if code == "ENK" else 0.18):
            rec["mobil"] = phone(prefixes, (u[36] * 13) % 1, mobile=True)

    def status(self, rec: dict[str, Any], code: str, u: list[float]) -> None:
        """Bankruptcy, liquidation and forced dissolution: a few per thousand units."""
        s, when = u[27], self.dates[_DAY_TODAY - int(u[28] * 720)]
        bankrupt = s < (0.005 if code == "AS" else 0.0015 if code == "ENK" else 0.002)
        rec["konkurs"] = bankrupt
        if bankrupt:
            rec["konkursdato"] = when
        winding_up = 0.01 <= s < 0.014
        rec["underAvvikling"] = winding_up
        if winding_up:
            rec["underAvviklingDato"] = when
        forced = 0.02 <= s < (0.024 if code == "AS" else 0.0205)
        rec["underTvangsavviklingEllerTvangsopplosning"] = forced
        if forced:
            rec[_FORCED[int(u[28] * 397) % len(_FORCED)]] = when

    def kapital(self, code: str, reg: int, u: float) -> dict[str, Any]:
        if code == "ASA":
            amount = (1 + int(u * 500)) * 1_000_000
        elif reg >= _DAY_2012:
            amount = _CAPITAL_NEW[int(u * len(_CAPITAL_NEW))]
        else:
            amount = _CAPITAL_OLD[int(u * len(_CAPITAL_OLD))]
        nominal = (1, 10, 100, 1000)[int(u * 113) % 4]
        return {
            "belop": amount,
            "antallAksjer": max(1, amount // nominal),
            "innbetalt": amount,
            "fulltInnbetalt": True,
            "type": "Aksjekapital",
            "valuta": "NOK",
            "innfortDato": self.dates[min(_DAY_TODAY, reg + int(u * 47) % 3)],
        }

    # underenheter

    def parent(self, i: int, u: list[float]) -> Core:
        """The enhet that owns sub-unit ``i``: always an index below floor(4 * (i + 1) / 3)."""
        hi = 4 * (i + 1) // 3
        reachable = min(len(self.kommuner), -(-(hi - self.komm_offset) // self.komm_stride))
        if u[46] < 0.02 and reachable > 0:
            # Municipal schools, kindergartens and care homes: the KOMM units own them. A KOMM's
            # core takes nothing from its random numbers, so its (distant) block is not needed.
            j = bisect.bisect_right(self.komm_weights, u[47] * self.komm_weights[reachable - 1])
            p = self.komm_offset + min(j, reachable - 1) * self.komm_stride
            return self.core(p, _NO_ROW)
        # Four candidates among the 96 enheter below the bound, weighed by size: employers own
        # most establishments, and big employers own many.
        lo = max(0, hi - 96)
        candidates, weights = [], []
        for t in range(4):
            p = lo + int(u[40 + t] * (hi - lo))
            form, employees = self.basic(p, self.row(p))
            size = 1 if employees < 0 else 1.3 if employees == 0 else 1 + min(employees, 600) / 20
            candidates.append(p)
            weights.append(0.0 if form.code == "KOMM" else form.parent * size)
        p = candidates[pick(cumulative(weights), u[44])] if sum(weights) else candidates[0]
        return self.core(p, self.row(p))

    def underenhet(self, i: int, u: list[float], orgnr: str) -> dict[str, Any]:
        """Underenhet ``i`` as the registry's v2 JSON record, keys in the API's order."""
        dates, codes = self.dates, self.world.codes
        parent = self.parent(i, u)
        parent_orgnr = self.orgnr(2 * parent.position)
        pcode = parent.form.code
        kommune = self.world.kommuner[self.location(parent, u)]
        postnummer, poststed = kommune.streets[int(u[22] * len(kommune.streets))]
        name, nace = self.sub_name(parent, kommune, poststed, u)
        form = "AAFY" if parent.form.sub == "AAFY" else "BEDR"
        rec: dict[str, Any] = {
            "organisasjonsnummer": orgnr,
            "navn": name,
            "organisasjonsform": _form_json(form, _SUBFORMS[form]),
        }
        if u[18] < 0.05:
            rec["hjemmeside"] = "www." + domain(parent.name, u[13])
        if u[19] < 0.25:
            box = kommune.boxes[int(u[43] * len(kommune.boxes))]
            found = [f"Postboks {int(u[43] * 9000) + 1}"]
            rec["postadresse"] = address(kommune, box, kommune.box_poststed, found)
        started = max(parent.registered, _DAY_TODAY - int(-math.log(1 - u[11] * 0.999) * 2500))
        rec["registreringsdatoEnhetsregisteret"] = dates[min(_DAY_TODAY, started + int(u[24] * 60))]
        rec["registrertIMvaregisteret"] = False
        if nace is not None:
            rec["naeringskode1"] = {"kode": nace[0], "beskrivelse": nace[1]}
        head_office = pcode in ("AS", "ASA") and parent.employees > 0
        if u[30] < 0.2 and head_office and "70.100" in codes:
            rec["hjelpeenhetskode"] = {"kode": "70.100", "beskrivelse": codes["70.100"]}
        employees = _sub_employees(parent, u)
        if employees > 0:
            rec["antallAnsatte"] = employees
        rec["harRegistrertAntallAnsatte"] = employees >= 0
        if employees >= 0:
            self.staff_dates(rec, u[39])
        if u[12] < 0.08:
            rec["epostadresse"] = email(
                self.world, pcode, parent.name, parent.first, parent.last, kommune, u
            )
        if u[16] < 0.25:
            rec["telefon"] = phone(kommune.phone, u[36], mobile=False)
        if u[17] < 0.08:
            # Sub-unit mobile numbers are stored without spaces (fixture 995367114).
            rec["mobil"] = phone(kommune.phone, (u[36] * 13) % 1, mobile=True).replace(" ", "")
        rec["overordnetEnhet"] = parent_orgnr
        if u[25] < 0.9:
            rec["oppstartsdato"] = dates[started]
        if u[26] < 0.03:
            rec["datoEierskifte"] = dates[started + int(u[26] / 0.03 * (_DAY_TODAY - started))]
        found = lines(self.world, u[20], u[21], u[23], u[29] < kommune.nynorsk, box=False)
        rec["beliggenhetsadresse"] = address(kommune, postnummer, poststed, found)
        rec["_links"] = {
            "self": {"href": f"{_API}/underenheter/{orgnr}"},
            "overordnetEnhet": {"href": f"{_API}/enheter/{parent_orgnr}"},
        }
        rec["respons_klasse"] = "Underenhet"
        return rec

    def location(self, parent: Core, u: list[float]) -> int:
        """Where a sub-unit lies: mostly with its parent, some as branch offices elsewhere."""
        world = self.world
        branch = 0.35 if parent.form.code in ("AS", "ASA", "NUF", "SA") else 0.1
        if parent.kommune >= 0 and (parent.form.code == "KOMM" or u[0] >= branch):
            return parent.kommune
        if parent.kommune >= 0 and u[1] < 0.6:
            # Most branch offices lie in the parent's own county.
            members, cum = self.counties[world.kommuner[parent.kommune].county]
            return members[pick(cum, u[1] / 0.6)]
        return self.kommuner[pick(self.kommune_cum, u[1])]

    def sub_name(
        self, parent: Core, kommune: Kommune, poststed: str, u: list[float]
    ) -> tuple[str, tuple[str, str] | None]:
        world = self.world
        codes = world.codes
        if parent.form.code == "KOMM":
            label, code = world.institutions[int(u[8] * len(world.institutions))]
            nace = (code, codes[code]) if code in codes else parent.nace
            return f"{place(world, world.index[kommune.nr], u[9])} {label}", nace
        if kommune.nr != world.kommuner[parent.kommune].nr or u[7] < 0.15:
            town = poststed.removesuffix(" S").removesuffix(" N")
            return f"{parent.name.strip()} AVD {town}", parent.nace
        return parent.name, parent.nace


@cache
def _dates() -> tuple[str, ...]:
    return tuple((_EPOCH + timedelta(days=d)).isoformat() for d in range(_DAY_TODAY + 400))


@cache
def _form_json(code: str, desc: str) -> dict[str, Any]:
    # Shared between records: they are serialised, never changed.
    href = f"{_API}/organisasjonsformer/{code}".replace("Æ", "%C3%86")
    return {"kode": code, "beskrivelse": desc, "_links": {"self": {"href": href}}}


@cache
def _texts(desc: str, nynorsk: bool, company: bool) -> tuple[list[str], list[str]]:
    """The unit's activity text and, for companies, its statutory purpose."""
    lower = desc[0].lower() + desc[1:]
    if nynorsk:
        activity = f"{desc} og det som naturleg høyrer til."
        purpose = (
            f"{desc} og anna verksemd som naturleg høyrer til, medrekna å delta i andre "
            f"selskap med liknande verksemd."
        )
    else:
        activity = (
            f"{desc} og annen virksomhet i tilknytning til dette." if company else (f"{desc}.")
        )
        purpose = (
            f"Selskapets formål er {lower} og annen virksomhet som naturlig står i "
            f"forbindelse med dette, herunder å delta i andre selskaper med lignende "
            f"virksomhet."
        )
    return _wrap(activity), _wrap(purpose)


def _wrap(text: str, width: int = 70) -> list[str]:
    lines: list[str] = []
    line = ""
    for word in text.split():
        if line and len(line) + 1 + len(word) > width:
            lines.append(line)
            line = word
        else:
            line = f"{line} {word}" if line else word
    return [*lines, line] if line else lines


def _accounts(rate: float, reg: int, u: float) -> str:
    """sisteInnsendteAarsregnskap: the last year with annual accounts, or "" for none."""
    if u >= rate or reg >= _DAY_2025 or (reg >= _DAY_2024H2 and u > rate * 0.6):
        return ""
    if reg >= _DAY_2024:
        return "2024"
    v = u / rate
    return "2024" if v < 0.88 else "2023" if v < 0.96 else "2022" if v < 0.99 else "2021"


def _sub_employees(parent: Core, u: list[float]) -> int:
    """A sub-unit's employees (-1 none, 0 hidden 1-4, else the count), following its parent."""
    if parent.form.code == "KOMM":
        return 5 + int((1 - u[4]) ** (-1 / 1.3) * 10)
    if parent.employees < 0:
        return 0 if u[2] < 0.05 else -1
    if parent.employees == 0:
        return -1 if u[2] < 0.15 else 0
    count = max(1, int(parent.employees * u[3] ** 1.5))
    return count if count >= 5 else 0
