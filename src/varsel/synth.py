"""Synthetic Enhetsregisteret dumps in the registry's own JSON and CSV formats, at national scale.

Every record is a pure function of (seed, index) and, in area mode, of the municipalities: the
random numbers for record ``i`` come from a block of 4096 records seeded by (seed, kind, block,
area), so a record does not depend on how many records the file holds.

Parent naming rule: sub-unit ``i`` names a parent with an enhet index below
``floor(4 * (i + 1) / 3)``. An underenheter dump of M units with seed S therefore names only
parents among the first ``ceil(4 * M / 3)`` enheter of an enheter dump with seed S and the same
``municipalities``; at the registry's own ratio (1.2 M enheter, 0.9 M underenheter) every
parent exists.
"""

from __future__ import annotations

import bisect
import csv
import gc
import io
import itertools
import math
import os
import struct
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any, BinaryIO, NamedTuple

import numpy as np
import orjson
from isal import isal_zlib

from varsel.brreg_csv import ENHETER_COLUMNS, JSON_KEY, UNDERENHETER_COLUMNS
from varsel.errors import UserError
from varsel.progress import ProgressCallback

NATIONAL_UNITS = 1_200_000
"""The number of enheter in a national dump; calibration targets refer to this size."""

PILOT_AREA = ("0301", "3201", "3203")
"""Oslo, Bærum and Asker: the area of the 2023 pilot the generator is calibrated against."""

# Targets from the 2023 pilot and the registry's published counts (see registry-format.md).
_PILOT_WITH_EMPLOYEES = 50_000
_PILOT_EMAIL_SHARE = 0.20
_SHARE_WITH_COUNT = 0.06

_BLOCK = 4096
_COLS = 48
# isal's level 2 packs a little tighter than zlib's level 1 at seven times its speed; zlib's
# default level 6 would add about 20 s to a national dump (see bench/bench_synth.py).
_GZIP_LEVEL = 2
_MAX_UNITS = 8_000_000  # orgnr capacity is 18 M numbers shared by enheter and underenheter
_API = "https://data.brreg.no/enhetsregisteret/api"
_TODAY = date(2025, 12, 15)
_EPOCH = date(1850, 1, 1)


# -- public API ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class SynthResult:
    """What write_dump wrote: where, how many units, how many bytes and how long it took."""

    path: Path
    units: int
    bytes: int
    seconds: float
    kind: str = "enheter"
    fmt: str = "json"

    def summary(self) -> str:
        """One line in Norwegian Bokmål saying what was written."""
        return (
            f"Skrev {_nb_int(self.units)} syntetiske {self.kind} til {self.path.name} "
            f"({_nb_size(self.bytes)}) på {_nb_decimal(self.seconds)} s."
        )


def area_share(municipalities: Sequence[str]) -> float:
    """The share of a national dump's enheter whose business address is in the area."""
    world = _world()
    area = _area(world, municipalities)
    if not area:
        return 1.0
    return (1.0 - world.foreign) * sum(world.kommuner[k].weight for k in area) / world.weight_sum


def write_dump(
    out: Path,
    *,
    units: int,
    seed: int,
    fmt: str = "json",
    kind: str = "enheter",
    municipalities: Sequence[str] = (),
    progress: ProgressCallback | None = None,
) -> SynthResult:
    """Write a synthetic enheter or underenheter dump, gzipped when ``out`` ends in .gz."""
    started = time.perf_counter()
    if fmt not in ("json", "csv"):
        raise UserError(f"Ukjent format «{fmt}»: bruk json eller csv.")
    if kind not in ("enheter", "underenheter"):
        raise UserError(f"Ukjent type «{kind}»: bruk enheter eller underenheter.")
    if units < 0:
        raise UserError("Antall enheter kan ikke være negativt.")
    if units > _MAX_UNITS:
        raise UserError(f"For mange enheter: høyst {_nb_int(_MAX_UNITS)} per fil.")
    world = _world()
    gen = _Generator(world, seed, _area(world, municipalities))
    out = Path(out)
    fd, tmp = _open_temp(out)
    # Records hold no reference cycles, so the cyclic collector only costs time (about 30 %).
    collecting = gc.isenabled()
    gc.disable()
    try:
        with os.fdopen(fd, "wb") as raw:
            sink = _Sink(raw, gzipped=out.name.endswith(".gz"))
            _write_records(sink, gen, units, fmt, kind, progress)
            sink.close()
        os.replace(tmp, out)
    except OSError as e:
        Path(tmp).unlink(missing_ok=True)
        raise UserError(f"Kunne ikke skrive {out}: {e.strerror or e}.") from e
    except BaseException:
        # The dump is written whole or not at all: a half-written file would import as truncated.
        Path(tmp).unlink(missing_ok=True)
        raise
    finally:
        if collecting:
            gc.enable()
    size = out.stat().st_size
    if progress is not None:
        progress(size, size, units)
    return SynthResult(out, units, size, time.perf_counter() - started, kind, fmt)


# -- Norwegian number formatting ----------------------------------------------------------------


def _nb_int(n: int) -> str:
    return f"{n:,}".replace(",", " ")


def _nb_decimal(x: float) -> str:
    return f"{x:.1f}".replace(".", ",")


def _nb_size(n: int) -> str:
    if n >= 10_000_000:
        return f"{_nb_int(round(n / 1e6))} MB"
    if n >= 1_000_000:
        return f"{_nb_decimal(n / 1e6)} MB"
    return f"{_nb_int(math.ceil(n / 1e3))} kB"


# -- reference tables ---------------------------------------------------------------------------

# fmt: off
# Per municipality: population (SSB, 1 January 2024, rounded), street postnumre with poststed
# (a range stands for the numbers in it; a number without a name takes the previous name) and
# postbox numbers. Postnumre are from Posten's register (postnummerregister-ansi.txt).
_PLACES = """\
0301|717700|0150-0198 OSLO;0250-0287;0350-0383;0450-0496;0550-0598;0650-0694;0750-0791;0850-0891;0950-0988;1051-1089;1150-1189;1250-1295|0101-0140;0201-0247;0301-0330;0401-0442;0501-0520;0601-0626;0801-0807;0901-0915;1001-1011;1101-1112;1201-1215
1101|15300|4370-4374 EGERSUND;4376 HELLELAND|4378
1103|149000|4005-4034 STAVANGER;4041-4049 HAFRSFJORD;4077 HUNDVÅG;4158 BRU|4001-4004
1106|38300|5514-5538 HAUGESUND|5501-5512
1108|83300|4306-4329 SANDNES;4310 HOMMERSÅK;4332 FIGGJO|4301-4302
1111|3300|4380 HAUGE I DALANE|4381
1112|3200|4460 MOI;4463 UALAND|4465
1114|2900|4389 VIKESÅ;4387 BJERKREIM|4384
1119|19500|4365 NÆRBØ;4360 VARHAUG;4362 VIGRESTAD|4367
1120|20200|4350-4352 KLEPPE;4353 KLEPP STASJON;4343 ORRE|4358
1121|19700|4340 BRYNE;4344-4346;4355 KVERNALAND|4349
1122|12200|4330 ÅLGÅRD;4333 OLTEDAL|4339
1124|28000|4050 SOLA;4056 TANANGER;4052 RØYNEBERG|4097
1127|11800|4070-4073 RANDABERG|4096
1130|13300|4100 JØRPELAND;4120 TAU|4126
1133|2600|4130 HJELMELAND;4137 ÅRDAL I RYFYLKE|4148
1134|3800|4230 SAND;4234 JELSA;4237 SULDALSOSEN|4239
1135|4600|4200 SAUDA;4208 SAUDASJØEN|4201
1144|530|4180 KVITSØY|4181
1145|880|5561 BOKN|5569
1146|11400|5570 AKSDAL;5565 TYSVÆRVÅG;5563 FØRRESFJORDEN|5575
1149|43200|4250 KOPERVIK;4270 ÅKREHAMN;4280 SKUDENESHAVN;4276 VEAVÅGEN;5542 KARMSUND|4291
1151|200|5547 UTSIRA|5547
1160|8900|5580 ØLEN;5585 SANDEID;5568 VIKEBYGD|5588
1505|24200|6507-6518 KRISTIANSUND N;6520-6525 FREI|6501-6506
1506|32800|6410-6423 MOLDE;6460 EIDSVÅG I ROMSDAL;6475 MIDSUND|6401-6405
1508|58000|6002-6020 ÅLESUND;6240 ØRSKOG;6260 SKODJE;6057 ELLINGSØY|6021-6026
1511|3100|6143 FISKÅ;6140 SYVDE;6146 ÅHEIM|6139
1514|2400|6084 LARSNES;6082 GURSKEN|6085
1515|9000|6090-6092 FOSNAVÅG;6070 TJØRVÅG|6099
1516|8900|6065 ULSTEINVIK;6064 HADDAL|6067
1517|5200|6060 HAREID;6062 BRANDAL|6069
1520|10900|6150-6156 ØRSTA;6160 HOVDEBYGDA|6151
1525|4500|6200 STRANDA;6218 HELLESYLT;6216 GEIRANGER|6201
1528|7600|6230 SYKKYLVEN;6222 IKORNNES|6239
1531|9900|6030 LANGEVÅG;6037 EIDSNES|6039
1532|8800|6050 VALDERØYA;6040 VIGRA;6052 GISKE|6058
1535|6700|6390 VESTNES;6391 TRESFJORD|6399
1539|7500|6300 ÅNDALSNES;6360 ÅFARNES|6301
1547|3700|6480 AUKRA|6481
1554|5800|6530-6533 AVERØY|6538
1557|2600|6631 BATNFJORDSØRA;6633 GJEMNES|6632
1560|3000|6630 TINGVOLL;6628 MEISINGSET|6627
1563|7000|6600 SUNNDALSØRA;6610 ØKSENDAL|6601
1566|5900|6650 SURNADAL;6653 ØVRE SURNADAL|6656
1573|2100|6570 SMØLA|6571
1576|3500|6690 AURE;6590 TUSTNA|6689
1577|11100|6100-6106 VOLDA;6763 HORNINDAL|6101
1578|2500|6210 VALLDAL;6250 STORDAL|6211
1579|13400|6440 ELNESVÅGEN;6490 EIDE;6430 BUD|6447
1580|9700|6270 BRATTVÅG;6280 SØVIK;6265 VATNE|6282
1804|53700|8003-8030 BODØ;8070-8076;8050 TVERLANDET|8001-8002
1806|21500|8514-8519 NARVIK;8530 BJERKVIK;8540 BALLANGEN;8590 KJØPSVIK|8501-8510
1811|1400|7980 TERRÅK;7982 BINDALSEIDET|7979
1812|2000|8920 SØMNA|8921
1813|7900|8900 BRØNNØYSUND;8904-8909|8901-8902
1815|1200|8982-8984 VEGA|8981
1816|470|8976 VEVELSTAD|8977
1818|1800|8850 HERØY|8851
1820|7400|8800 SANDNESSJØEN;8802-8804|8801
1822|2300|8890 LEIRFJORD|8891
1824|13400|8656-8666 MOSJØEN|8651-8655
1825|1500|8682-8685 TROFORS|8681
1826|1300|8692-8696 HATTFJELLDAL|8691
1827|1300|8820 DØNNA;8813 LØKTA|8827
1828|1800|8700 NESNA|8701
1832|4400|8640 HEMNESBERGET;8646 KORGEN;8643 BJERKA|8641
1833|26500|8610-8626 MO I RANA|8601-8609
1834|1800|8766 LURØY;8730 BRATLAND;8764 LOVUND|8766
1835|450|8770 TRÆNA|8770
1836|1100|8185 VÅGAHOLMEN;8187 JEKTVIK|8183
1837|6000|8150 ØRNES;8160 GLOMFJORD|8151
1838|1900|8140 INNDYR;8120 NYGÅRDSJØEN|8138
1839|1000|8110 MOLDJORD|8118
1840|4600|8250 ROGNAN;8255 RØKLAND|8251
1841|9800|8200 FAUSKE;8206-8211;8230 SULITJELMA|8201-8205
1845|1900|8226 STRAUMEN;8220 RØSVIK|8232
1848|2500|8283 LEINESFJORD;8289 ENGELØYA|8281
1851|2000|8410 LØDINGEN|8411
1853|1400|8533 BOGEN I OFOTEN;8536 EVENES|8539
1856|460|8064 RØST|8065
1857|700|8063 VÆRØY|8062
1859|1300|8380 RAMBERG;8382 NAPP|8388
1860|11600|8370 LEKNES;8340 STAMSUND;8372 GRAVDAL|8376
1865|9800|8300 SVOLVÆR;8310 KABELVÅG;8312 HENNINGSVÆR|8301
1866|8100|8450 STOKMARKNES;8445 MELBU|8455
1867|2500|8470 BØ I VESTERÅLEN;8475 STRAUMSJØEN|8469
1868|4500|8430 MYRE;8432 ALSVÅG|8439
1870|10800|8400 SORTLAND;8402-8407|8401
1871|4500|8480 ANDENES;8484 RISØYHAMN|8483
1874|1000|8390 REINE;8392 SØRVÅGEN|8398
1875|2700|8294 HAMARØY;8270 DRAG;8260 INNHAVET|8298
3101|31800|1763-1788 HALDEN;1791 TISTEDAL|1751-1762
3103|51000|1511-1539 MOSS;1580 RYGGE;1560 LARKOLLEN|1501-1510
3105|59000|1706-1727 SARPSBORG;1712 GRÅLUM;1718 GREÅKER;1746 SKJEBERG|1701-1705
3107|84500|1604-1619 FREDRIKSTAD;1621 GRESSVIK;1630 GAMLE FREDRIKSTAD;1661 ROLVSØY;1671 KRÅKERØY|1601-1602
3110|4800|1680 SKJÆRHALDEN;1684 VESTERØY|1682
3112|7700|1640 RÅDE;1642 SALTNES|1641
3114|6000|1592 VÅLER I ØSTFOLD;1591 SPERREBOTN|1594
3116|3900|1816 SKIPTVET|1806
3118|46500|1807-1815 ASKIM;1850 MYSEN;1820 SPYDEBERG;1860 TRØGSTAD|1801-1803
3120|8300|1890 RAKKESTAD;1892 DEGERNES|1891
3122|3600|1870 ØRJE;1875 OTTEID|1871
3124|1300|1798 AREMARK|1799
3201|130000|1336-1338 SANDVIKA;1360 FORNEBU;1366 LYSAKER;1356-1357 BEKKESTUA;1361 ØSTERÅS;1350 LOMMEDALEN;1363 HØVIK;1368 STABEKK|1300-1304
3203|98000|1383-1387 ASKER;1396 BILLINGSTAD;1394 NESBRU;3440 RØYKEN;3470 SLEMMESTAD;3430 SPIKKESTAD;1389 HEGGEDAL|1371-1373
3205|94000|2000-2004 LILLESTRØM;1465-1467 STRØMMEN;2013 SKJETTEN;2019-2020 SKEDSMOKORSET;1920 SØRUMSAND;1900 FETSUND|2001
3207|61500|1400 SKI;1406;1410 KOLBOTN;1412 SOFIEMYR;1415 OPPEGÅRD;1405 LANGHUS|1401-1402
3209|42000|2050-2053 JESSHEIM;2040 KLØFTA;2060 GARDERMOEN|2051
3212|20300|1450 NESODDTANGEN;1454 FAGERSTRAND;1453 BJØRNEMYR|1451
3214|16500|1440-1449 DRØBAK|1441
3216|19200|1540 VESTBY;1550 HØLEN;1553 SON|1541
3218|21700|1430 ÅS;1433-1435;1407 VINTERBRO|1431
3220|11400|1912 ENEBAKK;1914 YTRE ENEBAKK;1911 FLATEBY|1917
3222|48000|1470 LØRENSKOG;1473-1474;1462-1464 FJELLHAMAR;1476 RASTA|1471
3224|19000|2008 FJERDINGBY;2005 RÆLINGEN;2006 LØVENSTAD|2029
3226|17800|1940 BJØRKELANGEN;1930 AURSKOG;1960 LØKEN|1941
3228|24500|2150 ÅRNES;2160 VORMSUND;2165 HVAM|2151
3230|7300|2022 GJERDRUM|2024
3232|25500|1482 NITTEDAL;1480 SLATTUM;1481 HAGAN;1484 HAKADAL|1486
3234|9400|2730 LUNNER;2740 ROA;2743 HARESTUA;2742 GRUA|2715
3236|7000|3520 JEVNAKER|3521
3238|15800|2030 NANNESTAD;2032 MAURA|2031
3240|26800|2080 EIDSVOLL;2070 RÅHOLT;2074 EIDSVOLL VERK|2081
3242|2900|2090 HURDAL|2091
3301|104000|3011-3048 DRAMMEN;3050 MJØNDALEN;3060 SVELVIK;3057 SOLBERGELVA|3001-3010
3303|28500|3610-3617 KONGSBERG;3647 HVITTINGFOSS|3601-3607
3305|31500|3510-3519 HØNEFOSS;3533 TYRISTRAND;3534 SOKNA|3501-3504
3310|7000|3530 RØYSE;3531 KROKKLEIVA|3529
3312|28000|3402-3405 LIER;3406 TRANBY;3414 LIERSTRANDA;3410 SYLLING|3401
3314|20300|3300 HOKKSUND;3320 VESTFOSSEN;3330 SKOTSELV|3301
3316|14300|3370 VIKERSUND;3340 ÅMOT;3360 GEITHUS|3371
3318|2300|3535 KRØDEREN;3536 NORESUND|3537
3320|1100|3539 FLÅ|3545
3322|3300|3540 NESBYEN|3541
3324|4700|3550 GOL|3551
3326|2600|3560 HEMSEDAL|3561
3328|4700|3570 ÅL;3579 TORPO|3571
3330|4500|3580 GEILO;3576 HOL|3581
3332|3500|3350 PRESTFOSS;3358 NEDRE EGGEDAL|3351
3334|2800|3620 FLESBERG;3623 LAMPELAND|3621
3336|1400|3626 ROLLAG;3628 VEGGLI|3627
3338|2500|3630 RØDBERG;3632 UVDAL|3631
3401|18100|2208-2214 KONGSVINGER;2216 ROVERUD|2201-2207
3403|32500|2315-2319 HAMAR;2321;2322 RIDABU;2324 VANG PÅ HEDMARKEN|2301-2309
3405|29000|2608-2619 LILLEHAMMER;2625 FÅBERG|2601-2606
3407|30800|2815-2821 GJØVIK;2825;2827 HUNNDALEN;2836 BIRI|2801-2806
3411|35500|2380-2388 BRUMUNDDAL;2390 MOELV;2320 FURNES;2350 NES PÅ HEDMARKEN|2381
3412|7700|2340 LØTEN;2345 ÅDALSBRUK|2341
3413|21400|2335 STANGE;2312 OTTESTAD;2337 TANGEN;2334 ROMEDAL|2336
3414|5000|2120 SAGSTUA;2130 KNAPPER|2121
3415|8000|2100 SKARNES;2114 DISENÅ|2101
3416|6100|2230 SKOTTERUD;2240 MAGNOR|2231
3417|4500|2260 KIRKENÆR;2264 GRINDER|2261
3418|7000|2270 FLISA;2266 ARNEBERG|2271
3419|3600|2436 VÅLER I SOLØR;2435 BRASKEREIDFOSS|2434
3420|21700|2406-2414 ELVERUM;2410 HERNES|2401-2405
3421|6600|2420 TRYSIL;2422 NYBERGSUND|2421
3422|4400|2450 RENA;2460 OSEN|2451
3423|2400|2480 KOPPANG;2477 SOLLIA|2481
3424|1750|2485 RENDALEN|2486
3425|1250|2440 ENGERDAL;2443 DREVSJØ|2441
3426|1550|2540 TOLGA;2542 VINGELEN|2541
3427|5700|2500 TYNSET;2512 KVIKNE|2501
3428|2400|2560 ALVDAL|2561
3429|1550|2580 FOLLDAL|2581
3430|1950|2550 OS I ØSTERDALEN|2551
3431|2500|2660 DOMBÅS;2662 DOVRE|2659
3432|1950|2665 LESJA;2669 BJORLI|2671
3433|2150|2690 SKJÅK|2694
3434|2250|2686 LOM|2688
3435|3550|2680 VÅGÅ;2682 LALM|2684
3436|5700|2640 VINSTRA;2642 KVAM|2639
3437|5700|2670 OTTA;2676 HEIDAL|2675
3438|3100|2647 SØR-FRON;2646 GÅLÅ|2645
3439|4400|2630 RINGEBU;2634 FÅVANG|2631
3440|5200|2636 ØYER;2635 TRETTEN|2637
3441|6100|2651 ØSTRE GAUSDAL;2653 VESTRE GAUSDAL;2656 FOLLEBU|2649
3442|15000|2850 LENA;2848 SKREIA;2849 KAPP;2847 KOLBU|2851
3443|13500|2830 RAUFOSS;2833-2835;2846 BØVERBRU;2840 REINSVOLL|2831
3446|13700|2750 GRAN;2760 BRANDBU;2770 JAREN|2711
3447|5600|2860 HOV;2862 FLUBERG|2867
3448|6600|2870 DOKKA|2882
3449|2900|2930 BAGN;3528 HEDALEN|2929
3450|1300|2890 ETNEDAL|2893
3451|6400|2900 FAGERNES;2910 AURDAL|2901
3452|2200|2966 SLIDRE;2960 RØN|2965
3453|3300|2940 HEGGENES;2953 BEITOSTØLEN|2939
3454|1600|2975 VANG I VALDRES;2973 RYFOSS|2974
3901|27800|3181-3189 HORTEN;3179 ÅSGÅRDSTRAND;3184 BORRE|3191-3196
3903|25900|3080-3089 HOLMESTRAND;3070 SANDE I VESTFOLD;3090 HOF|3081
3905|58000|3110-3127 TØNSBERG;3150-3154 TOLVSRØD;3170 SEM;3174 REVETAL|3101-3105
3907|65500|3208-3239 SANDEFJORD;3160 STOKKE;3158 ANDEBU|3201-3207
3909|48000|3256-3274 LARVIK;3290 STAVERN;3282 KVELDE|3251-3255
3911|27000|3120-3121 NØTTERØY;3140;3145 TJØME;3132 HUSØYSUND|3106
4001|37300|3910-3949 PORSGRUNN;3950 BREVIK|3901-3906
4003|56000|3711-3747 SKIEN|3701-3705
4005|13100|3674-3684 NOTODDEN|3671-3673
4010|2300|3748 SILJAN|3749
4012|14000|3960-3962 STATHELLE;3970 LANGESUND;3965 HERRE|3995
4014|10400|3770 KRAGERØ;3772;3766 SANNIDAL;3790 HELLE|3789
4016|4100|3750 DRANGEDAL|3795
4018|6500|3830 ULEFOSS;3825 LUNDE|3831
4020|10900|3800-3804 BØ I TELEMARK;3810 GVARV|3833
4022|3000|3840 SELJORD|3835
4024|1600|3690 HJARTDAL;3692 SAULAND|3665
4026|5600|3660 RJUKAN;3650 TINN AUSTBYGD|3661
4028|2400|3850 KVITESEID;3853 VRÅDAL|3836
4030|1450|3855 TREUNGEN;3854 NISSEDAL|3883
4032|1300|3870 FYRESDAL|3885
4034|2200|3880 DALEN;3891 HØYDALSMO|3886
4036|3800|3890 VINJE;3864 RAULAND;3895 EDLAND|3887
4201|6800|4950 RISØR;4956;4990 SØNDELED|4951
4202|24500|4876-4879 GRIMSTAD;4870 FEVIK;4885-4887 GRIMSTAD|4891-4894
4203|45500|4836-4849 ARENDAL;4817 HIS;4823 NEDENES;4821 RYKENE|4801-4804
4204|116000|4608-4639 KRISTIANSAND S;4640-4644 SØGNE;4645 NODELAND;4625 FLEKKERØY|4604-4606
4205|23600|4513-4517 MANDAL;4520 LINDESNES;4534 MARNARDAL|4501-4504
4206|9800|4550 FARSUND;4560 VANSE|4551
4207|9100|4400 FLEKKEFJORD;4404-4407|4401
4211|2400|4980 GJERSTAD;4993 SUNDEBRU|4972
4212|2100|4985 VEGÅRSHEI|4973
4213|6100|4900 TVEDESTRAND;4903-4905|4901
4214|6100|4820 FROLAND;4827 FROLANDS VERK|4855
4215|11500|4790 LILLESAND;4770 HØVÅG|4791
4216|5400|4760 BIRKELAND;4766 HEREFOSS|4795
4217|1800|4865 ÅMLI;4869 DØLEMO|4864
4218|1400|4724 IVELAND;4730 VATNESTRØM|4725
4219|3800|4735 EVJE;4737 HORNNES|4733
4220|1150|4745 BYGLAND;4741 BYGLANDSFJORD|4744
4221|1200|4747 VALLE;4748 RYSSTAD|4746
4222|1000|4754 BYKLE;4755 HOVDEN I SETESDAL|4756
4223|15300|4700 VENNESLA;4706-4708;4715 ØVREBØ|4701
4224|950|4540 ÅSERAL|4541
4225|10800|4580 LYNGDAL;4525 KONSMO|4575
4226|1700|4590 SNARTEMO;4596 EIKEN|4597
4227|6000|4480 KVINESDAL;4485 FEDA|4490
4228|1850|4440 TONSTAD;4443 TJØRHOM|4441
4601|291000|5003-5019 BERGEN;5031-5043;5052-5099;5221-5228 NESTTUN;5141-5148 FYLLINGSDALEN;5160-5165 LAKSEVÅG;5253-5254 SANDSLI;5257 KOKSTAD;5115-5121 ULSET|5802-5899
4602|17000|6900 FLORØ;6905-6910;6700 MÅLØY;6940 EIKEFJORD|6901
4611|4100|5590 ETNE;5593 SKÅNEVIK|5591
4612|5800|5550 SVEIO;5554 VALEVÅG|5559
4613|12200|5430 BREMNES;5443 BØMLO;5440 MOSTERHAMN;5420 RUBBESTADNESET|5445
4614|19000|5411-5417 STORD;5410 SAGVÅG|5401-5404
4615|3200|5419 FITJAR|5418
4616|2900|5680 TYSNES;5685 UGGDAL|5696
4617|13200|5460 HUSNES;5470 ROSENDAL;5450 SUNDE I SUNNHORDLAND|5480
4618|11000|5750 ODDA;5780 KINSARVIK;5781 LOFTHUS;5627 JONDAL|5751
4619|900|5783 EIDFJORD|5786
4620|1100|5730 ULVIK|5731
4621|16000|5700 VOSS;5704-5709;5736 GRANVIN|5701-5703
4622|8500|5600 NORHEIMSUND;5610 ØYSTESE;5630 STRANDEBARM|5601
4623|2500|5650 TYSSE;5652 ÅRLAND|5651
4624|25800|5200 OS;5208-5211;5212 SØFTELAND;5641 FUSA|5201-5203
4625|5300|5392 STOREBØ;5397 BEKKJARVIK|5393
4626|39000|5353-5354 STRAUME;5355 KNARREVIK;5347 ÅGOTNES;5357 FJELL;5336 TJELDSTØ|5341-5343
4627|30000|5300-5301 KLEPPESTØ;5302 STRUSSHAMN;5305 FLORVÅG;5310 HAUGLANDSHELLA|5319
4628|3900|5722 DALEKVAM;5725 VAKSDAL;5724 STANGHELLE|5721
4629|400|5729 MODALEN|5732
4630|8200|5282 LONEVÅG;5281 VALESTRANDSFOSSEN;5286 HAUS|5293
4631|30000|5914 ISDALSTØ;5916;5918 FREKHAUG;5936 MANGER;5955 LINDÅS;5911 ALVERSUND|5902-5904
4632|2900|5943 AUSTRHEIM;5953 FONNES|5941
4633|530|5947 FEDJE|5948
4634|1700|5981 MASFJORDNES;5984 MATREDAL|5982
4635|2300|5966 EIVINDVIK;5960 DALSØYRA;5961 BREKKE|5967
4636|770|6924 HARDBAKKE;6928 KOLGROV|6921
4637|1300|6957 HYLLESTAD;6958 SØRBØVÅG|6951
4638|4000|6993 HØYANGER;6996 VADHEIM;6995 KYRKJEBØ|6991
4639|2600|6893 VIK I SOGN;6894 VANGSNES|6891
4640|12200|6856-6857 SOGNDAL;6863 LEIKANGER;6854 KAUPANGER;6899 BALESTRAND|6851-6853
4641|1800|5745 AURLAND;5743 FLÅM|5741
4642|2200|6887 LÆRDAL;6888 BORGUND|6886
4643|5200|6885 ÅRDALSTANGEN;6884 ØVRE ÅRDAL|6881
4644|5200|6868 GAUPNE;6869 HAFSLO;6876 SKJOLDEN|6866
4645|3000|6980 ASKVOLL;6982 HOLMEDAL|6988
4646|2800|6963 DALE I SUNNFJORD;6964 KORSSUND|6961
4647|22800|6800 FØRDE;6809-6815;6817 NAUSTDAL;6843 SKEI I JØLSTER|6801-6805
4648|3500|6723 SVELGEN;6727 BREMANGER;6729 KALVÅG|6721
4649|9700|6770 NORDFJORDEID;6740 SELJE;6750 STADLANDET|6771
4650|5900|6823 SANDANE;6826 BYRKJELO;6827 BREIM|6821
4651|7200|6783 STRYN;6788 OLDEN;6789 LOEN|6781
5001|214000|7010-7052 TRONDHEIM;7053 RANHEIM;7072 HEIMDAL;7075 TILLER;7080 HEIMDAL;7540 KLÆBU|7400-7498
5006|24500|7711-7718 STEINKJER;7724-7725;7710 SPARBU;7730 BEITSTAD|7701-7705
5007|15300|7800 NAMSOS;7802-7805;7750 NAMDALSEID;7820 SPILLUM|7801
5014|5400|7260 SISTRANDA;7263 HAMARVIK|7261
5020|950|7740 STEINSDALEN|7741
5021|7100|7340 OPPDAL;7344|7341
5022|2500|7391-7393 RENNEBU|7399
5025|5600|7374 RØROS;7375|7361
5026|2000|7380 ÅLEN;7383 HALTDALEN|7384
5027|6300|7290 STØREN;7288 SOKNEDAL|7291
5028|17000|7224 MELHUS;7212 KORSVEGEN;7227 GIMSE;7232 LUNDAMO|7221
5029|8600|7350 BUVIKA;7353 BØRSA;7357 SKAUN|7351
5031|14900|7550 HOMMELVIK;7560 VIKHAMMER;7563 MALVIK|7551
5032|4200|7580 SELBU|7581
5033|800|7590 TYDAL|7591
5034|2400|7530 MERÅKER|7531
5035|25000|7500 STJØRDAL;7502-7507;7517 HELL;7520 HEGRA|7501
5036|2600|7633 FROSTA|7634
5037|20700|7600 LEVANGER;7602-7609;7620 SKOGN|7601
5038|15200|7650 VERDAL;7652-7657;7660 VUKU|7651
5041|2000|7760 SNÅSA|7761
5042|1300|7882 NORDLI;7884 SØRLI|7881
5043|450|7898 LIMINGEN|7897
5044|850|7890 NAMSSKOGAN;7892 TRONES|7891
5045|2300|7870 GRONG;7873 HARRAN|7871
5046|1200|7877 HØYLANDET|7878
5047|3900|7863 OVERHALLA;7860 SKAGE I NAMDALEN|7864
5049|1100|7770 FLATANGER|7771
5052|540|7994 LEKA|7995
5053|6900|7670 INDERØY;7690 MOSVIK|7671
5054|10000|7100 RISSA;7120 LEKSVIK;7105 STADSBYGD|7101
5055|5900|7200 KYRKSÆTERØRA;6683 VÅGLAND|7201
5056|5200|7240 HITRA;7242 KNARRLAGSUND;7246 SANDSTAD|7239
5057|10400|7130 BREKSTAD;7160 BJUGN;7140 OPPHAUG|7129
5058|4200|7170 ÅFJORD;7180 ROAN|7169
5059|18600|7300 ORKANGER;7303;7320 FANNREM;7336 MELDAL;7332 LØKKEN VERK|7301
5060|9700|7900 RØRVIK;7970 KOLVEREID|7901
5061|2000|6657 RINDAL|6659
5501|78700|9006-9019 TROMSØ;9020 TROMSDALEN;9100 KVALØYSLETTA;9022 KROKELVDALEN|9251-9299
5503|25000|9402-9415 HARSTAD;9430 SANDTORG|9479-9489
5510|2800|9475 BORKENES|9476
5512|4200|9440 EVENSKJER;9442 RAMSUND;9446 GROVFJORD|9439
5514|1300|9450 HAMNVIK;9455 ENGENES|9451
5516|1050|9470 GRATANGEN|9471
5518|1000|9357 TENNEVOLL|9358
5520|4000|9360 BARDU|9365
5522|2100|9350 SJØVEGAN|9355
5524|6600|9325 BARDUFOSS;9321 MOEN;9334 ØVERBYGD|9326
5526|3500|9310 SØRREISA|9315
5528|1100|9311 BRØSTADBOTN|9316
5530|14900|9300 FINNSNES;9307-9309;9303 SILSAND;9380 GRYLLEFJORD|9305
5532|5600|9050 STORSTEINNES;9040 NORDKJOSBOTN|9059
5534|2100|9130 HANSNES;9135 VANNVÅG|9134
5536|2800|9060 LYNGSEIDET;9062 FURUFLATEN|9069
5538|1800|9046 OTEREN;9143 SKIBOTN|9142
5540|2000|9146 OLDERDALEN;9144 SAMUELSBERG|9148
5542|2800|9180 SKJERVØY|9189
5544|4900|9151 STORSLETT;9152 SØRKJOSEN|9156
5546|1150|9161 BURFJORD|9169
5601|21700|9510-9518 ALTA;9519 KVIBY|9501-9509
5603|11300|9600-9603 HAMMERFEST;9610 RYPEFJORD;9620 KVALSUND|9615
5605|10000|9900 KIRKENES;9910 BJØRNEVATN;9912 HESSENG|9915
5607|5700|9800-9804 VADSØ;9802 VESTRE JAKOBSELV|9811
5610|2600|9730-9734 KARASJOK|9735
5612|2900|9520 KAUTOKEINO;9522-9524|9521
5614|850|9550 ØKSFJORD|9550
5616|1000|9590 HASVIK|9591
5618|1150|9690 HAVØYSUND|9691
5620|3100|9750 HONNINGSVÅG;9760 NORDVÅGEN|9751
5622|3900|9700 LAKSELV;9716 BØRSELV|9711
5624|1250|9790 KJØLLEFJORD;9740 LEBESBY|9790
5626|1100|9770 MEHAMN;9775 GAMVIK|9770
5628|2800|9845 TANA;9841-9844|9846
5630|950|9980 BERLEVÅG|9981
5632|2200|9990 BÅTSFJORD|9991
5634|2000|9950 VARDØ;9960 KIBERG|9951
5636|900|9840 VARANGERBOTN|9820
"""  # noqa: E501 (Oslo's and Bergen's postnumre do not fit on one line)

# fmt: on

# Businesses per inhabitant are higher in the capital: Oslo holds ~15 % of enheter, 13 % of people.
_OSLO_DENSITY = 1.18

# Share of enheter written in Nynorsk, by county (fylkesnummer); other counties 1 %.
_NYNORSK = {"46": 0.55, "15": 0.45, "11": 0.12, "40": 0.10, "34": 0.07, "42": 0.06, "33": 0.05}

# fmt: off
# Landline prefixes by county.
_PHONE = {
    "03": ("22", "23", "21"), "31": ("69",), "32": ("67", "66", "63", "64"), "33": ("32", "31"),
    "34": ("61", "62"), "39": ("33",), "40": ("35",), "42": ("37", "38"), "11": ("51", "52"),
    "46": ("55", "56", "57"), "15": ("70", "71"), "50": ("72", "73", "74"), "18": ("75", "76"),
    "55": ("77",), "56": ("78",),
}

# fmt: on

_SECTORS = {
    "1120": "Statlig eide aksjeselskaper mv.",
    "2100": "Private aksjeselskaper mv.",
    "2300": "Personlige foretak",
    "2500": "Private produsentorienterte organisasjoner uten profittformål",
    "3200": "Banker",
    "6100": "Statsforvaltningen",
    "6500": "Kommuneforvaltningen",
    "7000": "Ideelle organisasjoner",
    "8200": "Personlig næringsdrivende",
}


class _Form(NamedTuple):
    code: str
    desc: str
    weight: float  # share of all enheter (normalised when loaded)
    employees: float  # P(harRegistrertAntallAnsatte), scaled by calibration
    big: float  # P(5 or more | employees registered), scaled by calibration
    sector: str  # institusjonellSektorkode, "" for none
    nace: str  # industry profile in _PROFILES
    foretak: float  # P(registered in Foretaksregisteret)
    mva: float  # P(registered in Merverdiavgiftsregisteret)
    email: float  # P(e-mail) without registered employees
    sub: str  # legal form of its sub-units, "" when it never has any
    parent: float  # weight as a parent of sub-units


# fmt: off
# Shares follow the registry's 2025-2026 counts: ENK ~38 %, AS ~36 %, then FLI, ESEK, NUF ...
_FORMS = (
    _Form("ENK", "Enkeltpersonforetak", .370, .10, .08, "8200", "ENK", .35, .45, .22, "BEDR", .9),
    _Form("AS", "Aksjeselskap", .350, .38, .33, "2100", "AS", 1, .55, .20, "BEDR", 1),
    _Form("FLI", "Forening/lag/innretning", .075, .12, .20, "7000", "FLI", .02, .10, .35, "AAFY",
          .25),
    _Form("ESEK", "Eierseksjonssameie", .045, .01, .05, "", "BOLIG", 0, .02, .25, "AAFY", .05),
    _Form("SAM", "Tingsrettslig sameie", .011, .01, .10, "", "BOLIG", 0, .05, .12, "AAFY", .05),
    _Form("NUF", "Norskregistrert utenlandsk foretak", .009, .25, .40, "2100", "NUF", .9, .6,
          .12, "BEDR", .8),
    _Form("ANS", "Ansvarlig selskap med solidarisk ansvar", .018, .22, .20, "2300", "ANS", 1, .5,
          .18, "BEDR", 1),
    _Form("DA", "Ansvarlig selskap med delt ansvar", .016, .22, .20, "2300", "ANS", 1, .5, .18,
          "BEDR", 1),
    _Form("SA", "Samvirkeforetak", .005, .35, .50, "2100", "SA", 1, .5, .30, "BEDR", 1.2),
    _Form("STI", "Stiftelse", .005, .35, .40, "2500", "STI", .3, .3, .30, "AAFY", .6),
    _Form("BRL", "Borettslag", .005, .06, .20, "", "BOLIG", 1, .05, .30, "AAFY", .2),
    _Form("ORGL", "Organisasjonsledd", .005, .90, .80, "6500", "ORGL", 0, .2, .40, "BEDR", 1),
    _Form("ANNA", "Annen juridisk person", .004, .10, .30, "", "ANNA", 0, .2, .15, "AAFY", .3),
    _Form("KS", "Kommandittselskap", .0015, .10, .30, "2100", "KS", 1, .4, .10, "BEDR", .5),
    _Form("PRE", "Partrederi", .001, .05, .30, "2300", "PRE", 1, .5, .08, "BEDR", .3),
    _Form("KBO", "Konkursbo", .0015, 0, 0, "", "", 0, 0, 0, "", 0),
    _Form("BO", "Andre bo", .0015, 0, 0, "", "", 0, 0, 0, "", 0),
    _Form("VPFO", "Verdipapirfond", .0008, 0, 0, "", "VPFO", 0, 0, 0, "", 0),
    _Form("KIRK", "Den norske kirke", .0011, .70, .50, "7000", "KIRK", 0, .1, .50, "AAFY", 1),
    _Form("ASA", "Allmennaksjeselskap", .0002, .80, .90, "2100", "AS", 1, .9, .50, "BEDR", 3),
    _Form("BA", "Selskap med begrenset ansvar", .0003, .40, .30, "2100", "ANS", 1, .5, .20,
          "BEDR", 1),
    _Form("IKS", "Interkommunalt selskap", .0002, .80, .80, "6500", "IKS", 1, .5, .60, "BEDR", 2),
    _Form("KF", "Kommunalt foretak", .0003, .80, .70, "6500", "KF", 1, .5, .60, "BEDR", 2),
    _Form("SÆR", "Annet foretak iflg. særskilt lov", .0001, .90, .90, "6100", "SÆR", 1, .6, .60,
          "BEDR", 3),
    _Form("ADOS", "Administrativ enhet - offentlig sektor", .0003, .90, .80, "6500", "ADOS", 0,
          .1, .60, "BEDR", 1),
    _Form("OPMV", "Særskilt oppdelt enhet, jf. mval. § 2-2", .0004, .50, .30, "", "OPMV", 0, 1,
          .10, "BEDR", .5),
    _Form("KTRF", "Kontorfellesskap", .0003, .20, .30, "", "KTRF", 0, .3, .20, "BEDR", .5),
    _Form("PERS", "Andre enkeltpersoner som registreres i tilknyttet register", .0003, .05, .1,
          "", "PERS", 0, .3, .05, "BEDR", .3),
    _Form("PK", "Pensjonskasse", .0001, .10, .30, "", "PK", 1, 0, .30, "", 0),
    _Form("SPA", "Sparebank", .00008, .95, .95, "3200", "SPA", 1, .5, .80, "BEDR", 3),
    _Form("BBL", "Boligbyggelag", .00004, .60, .80, "2100", "BBL", 1, .5, .60, "BEDR", 2),
)
# Units with a business address abroad: most foreign-registered branches (NUF) and all UTLA.
_FOREIGN_FORMS = (
    _Form("NUF", "Norskregistrert utenlandsk foretak", .0145, .25, .40, "2100", "NUF", .8, .6,
          .10, "BEDR", .8),
    _Form("UTLA", "Utenlandsk enhet", .003, .02, .30, "", "", 0, 0, .05, "AAFY", .02),
)
_KOMM = _Form("KOMM", "Kommune", 0, 1, 1, "6500", "KOMM", 0, 0, 1, "BEDR", 0)
_SUBFORMS = {
    "BEDR": "Underenhet til næringsdrivende og offentlig forvaltning",
    "AAFY": "Underenhet til ikke-næringsdrivende",
}

# Industry profiles: (code or division prefix, weight). Codes missing from the code list are
# skipped, so the profiles work with the full SN2025 list and with the fixture fallback.
_PROFILES: dict[str, tuple[tuple[str, float], ...]] = {
    "ENK": (("01.410", 2.5), ("01.451", 2), ("01.420", 1), ("01.110", 1.2), ("01.130", .5),
            ("02.100", 1.5), ("02.200", .8), ("03.110", 1.5), ("41.000", 4), ("43.320", 4),
            ("43.210", 1.5), ("43.221", 1), ("43.340", 2), ("43.120", 1.5), ("43", 2),
            ("47", 3), ("49.330", 2.5), ("49.410", 2), ("56.110", 1.5), ("62.100", 1.5),
            ("62.200", 1.5), ("68.200", 3), ("69.202", 1.5), ("70.200", 3), ("71", 1.5),
            ("74.200", 1.5), ("74.1", 1.5), ("74.990", 1.5), ("85.5", 1.5), ("86.950", 1.2),
            ("86.930", .6), ("86.960", 1), ("90", 5), ("93.190", 1), ("96.210", 3),
            ("96.220", 2.5), ("96.990", 1.5), ("81.210", 2), ("95.310", 1.5), ("16", .8),
            ("25", .6), ("33", .8), ("73", .8), ("77", .5), ("79", .5), ("82.990", .5),
            ("59", 1), ("58", .4), ("10.710", .3), ("33.190", .3), ("93.130", .3)),
    "AS": (("41.000", 4), ("42", 1), ("43", 6), ("43.210", 1.5), ("43.221", 1), ("46", 4),
           ("47", 5), ("49.410", 2), ("49.330", 1), ("52", 1), ("55", 1.2), ("56.110", 2),
           ("56", 1), ("58", .5), ("59", .8), ("62.100", 2.5), ("62.200", 2.5), ("62.900", 1),
           ("63", .4), ("64.220", 6), ("70.100", 3), ("66", .8), ("68.200", 8), ("68.110", 2),
           ("68.120", 2), ("68.320", 1), ("68.310", .5), ("69.100", 1), ("69.202", 1.5),
           ("70.200", 5), ("71.110", .8), ("71.121", 1), ("71.129", 1.5), ("71.200", .3),
           ("72", .5), ("73", 1), ("74", 1.5), ("77", 1), ("78", 1), ("79", .5), ("80", .3),
           ("81.210", 1.5), ("82.990", .8), ("85", 1), ("86.210", .6), ("86.230", .6),
           ("86.950", .6), ("86.993", .5), ("88", .5), ("90", 1), ("93", 1), ("95.310", 1),
           ("96.210", 1.2), ("96.220", .6), ("01", 1), ("02", .3), ("03", .8), ("10", .8),
           ("16", .4), ("25", 1), ("28", .5), ("33", 1), ("35", .5), ("38", .3), ("50", .6),
           ("06.100", .02), ("13.940", .05), ("61.100", .1), ("79.902", .2)),
    "FLI": (("94.992", 40), ("94.910", 6), ("94.920", 3), ("94.110", 1), ("94.120", 1),
            ("94.200", 2), ("93.120", 22), ("93.190", 3), ("93.110", 2), ("85.529", 2),
            ("85.521", 1), ("88.996", 2), ("88.994", 1), ("90.201", 3), ("90.202", 1), ("91", 1.5),
            ("68.200", 1), ("55.300", .5), ("93.130", .2)),
    "STI": (("94.991", 25), ("88", 10), ("85", 10), ("91", 8), ("72", 3), ("68.200", 15),
            ("90", 6), ("87", 5), ("86", 3), ("93.110", 2), ("72.100", .5)),
    "BOLIG": (("68.200", 70), ("68.320", 20), ("68.110", 10)),
    "NUF": (("41.000", 6), ("43", 10), ("42", 4), ("46", 4), ("47", 2), ("49.410", 5), ("52", 2),
            ("62", 6), ("64", 2), ("66", 1), ("68.200", 3), ("70.200", 3), ("71", 8), ("74", 2),
            ("78.200", 6), ("81.210", 3), ("82", 2), ("33", 3), ("09", 1), ("06", 1), ("30", 1),
            ("85", 1), ("86", 1), ("42.130", .5), ("62.200", 1)),
    "ANS": (("01", 4), ("68.200", 10), ("68.110", 2), ("43", 5), ("41.000", 3), ("47", 3),
            ("56", 2), ("69.202", 2), ("69.100", 1), ("70.200", 2), ("71", 2), ("86.230", 1),
            ("86.210", 1), ("96.210", 1.5), ("62", 2), ("74", 1), ("90", 1.5), ("02", 1),
            ("03", 1), ("71.200", .2)),
    "SA": (("47.110", 8), ("46", 5), ("01", 5), ("10.510", 3), ("10", 3), ("68.200", 8),
           ("94.992", 6), ("35.140", 2), ("36.000", 4), ("61", 3), ("64", 2), ("55", 1),
           ("93", 1), ("88", 1), ("47.120", 1)),
    "KOMM": (("84.110", 1),),
    "ORGL": (("85.201", 5), ("85.100", 6), ("87", 4), ("88.101", 2), ("86.942", 2),
             ("84.110", 3), ("84.120", 2), ("91", 1)),
    "KIRK": (("94.910", 1),),
    "IKS": (("38.110", 3), ("36.000", 2), ("84.120", 2), ("69.201", 1), ("84.110", .5)),
    "KF": (("68.200", 3), ("68.320", 2), ("84.110", 1), ("38", 1), ("52.220", 1)),
    "ADOS": (("84.110", 1),),
    "SÆR": (("86.101", 3), ("86.102", 1), ("84.120", 1)),
    "SPA": (("64.190", 1),),
    "BBL": (("68.320", 1), ("68.200", .2)),
    "PRE": (("50.202", 2), ("50.201", 1), ("03.110", 2)),
    "KS": (("68.200", 3), ("64", 3), ("70.200", 1)),
    "VPFO": (("66.300", 1), ("64.300", 1)),
    "ANNA": (("68.200", 2), ("94.992", 2), ("01", 1)),
    "OPMV": (("68.200", 3), ("35", 1)),
    "KTRF": (("69.100", 1), ("86.210", 1), ("71.110", 1)),
    "PERS": (("01", 1), ("90", 1)),
    "PK": (("65", 1),),
}
# Share of units without an industry code, and with the registry's placeholder 00.000.
_NO_NACE = {"ESEK": .7, "SAM": .5, "BRL": .05, "UTLA": .9, "KBO": 1, "BO": 1, "VPFO": .5}
_UNKNOWN_NACE = {"AS": .03, "ENK": .015, "NUF": .03, "FLI": .01}
_UNKNOWN = ("00.000", "Uoppgitt")

# SN2025 codes seen in the fixture records: the fallback when data/sn2025.csv is missing.
_FIXTURE_CODES = (
    ("06.100", "Utvinning av råolje"), ("06.200", "Utvinning av naturgass"),
    ("13.940", "Produksjon av tauverk, rep, hyssing og nett"),
    ("19.200", "Produksjon av raffinerte petroleumsprodukter og fossile brenselsprodukter"),
    ("28.990", "Produksjon av andre spesialmaskiner ikke nevnt annet sted"),
    ("33.190", "Reparasjon og vedlikehold av annet utstyr"), ("41.000", "Oppføring av bygninger"),
    ("42.130", "Bygging av broer og tunneler"), ("43.210", "Elektrisk installasjonsarbeid"),
    ("47.120", "Detaljhandel med bredt vareutvalg ellers"), ("47.710", "Detaljhandel med klær"),
    ("49.410", "Godstransport på vei"), ("55.200", "Drift av vandrerhjem og ferieleiligheter"),
    ("61.100", "Kabelbasert, satellittbasert og trådløs telekommunikasjon"),
    ("62.200", "Konsulentvirksomhet tilknyttet informasjonsteknologi og forvaltning og drift av "
               "it-systemer"),
    ("64.190", "Banker og kredittforetak"), ("68.200", "Utleie av egen eller leid fast eiendom"),
    ("70.100", "Hovedkontortjenester"), ("71.129", "Annen teknisk konsulentvirksomhet"),
    ("71.200", "Teknisk prøving og analyse"),
    ("72.100", "Forskning og eksperimentell utvikling innenfor naturvitenskap og teknikk"),
    ("79.902", "Guide- og reiseledervirksomhet"), ("81.210", "Rengjøring av bygninger"),
    ("84.110", "Generell offentlig administrasjon"), ("86.101", "Somatiske sykehustjenester"),
    ("88.996", "Andre sosialtjenester uten botilbud ellers"),
    ("93.130", "Treningssentervirksomhet"),
)

_FIRST = (
    "OLA", "PER", "JAN", "LARS", "KNUT", "HANS", "ARNE", "BJØRN", "TOR", "ODD", "GEIR", "TROND",
    "RUNE", "STEIN", "ESPEN", "MORTEN", "ANDERS", "MAGNUS", "KRISTIAN", "MARTIN", "HENRIK",
    "JONAS", "SINDRE", "EIRIK", "ØYVIND", "ERLEND", "HÅKON", "SVEIN", "TERJE", "KJETIL", "VIDAR",
    "AHMED", "PIOTR", "TOMASZ", "ALI", "DANIEL", "THOMAS", "ANDREAS", "KARI", "ANNE", "INGER",
    "LIV", "MARIT", "RANDI", "HEGE", "TONE", "SILJE", "INGRID", "IDA", "NORA", "EMMA", "HANNE",
    "LINE", "KRISTIN", "CAMILLA", "MARIANNE", "ELISABETH", "SOLVEIG", "GURO", "TURID", "ASTRID",
    "SIGRID", "MARTE", "JULIE", "MARIA", "AGNIESZKA", "FATIMA", "ELIN", "HILDE", "TORUNN",
    "BERIT", "SISSEL", "MONA", "TRINE", "VIGDIS", "ÅSE",
)
_LAST = (
    "HANSEN", "JOHANSEN", "OLSEN", "LARSEN", "ANDERSEN", "PEDERSEN", "NILSEN", "KRISTIANSEN",
    "JENSEN", "KARLSEN", "JOHNSEN", "PETTERSEN", "ERIKSEN", "BERG", "HAUGEN", "HAGEN",
    "JOHANNESSEN", "ANDREASSEN", "JACOBSEN", "DAHL", "JØRGENSEN", "HALVORSEN", "HENRIKSEN", "LUND",
    "SØRENSEN", "JAKOBSEN", "MOEN", "GUNDERSEN", "IVERSEN", "STRAND", "SOLBERG", "SVENDSEN",
    "MARTINSEN", "PAULSEN", "KNUTSEN", "EIDE", "BAKKE", "KRISTENSEN", "MATHISEN", "LIE",
    "AMUNDSEN", "NGUYEN", "RASMUSSEN", "BERGE", "LUNDE", "SOLHEIM", "MOE", "NYGÅRD", "BAKKEN",
    "KOLSTAD", "NORDMANN", "EGE", "SÆTHER", "AAS", "FOSS", "VIK", "HOLM", "RUUD", "TVEIT",
    "BRATTLI", "HAUGLAND", "SKOGLUND", "KOWALSKI", "NOWAK", "KHAN", "ØSTBY", "ÅSEN", "RØNNING",
)
_STEMS = (
    "NORD", "SØR", "VEST", "ØST", "FJORD", "FJELL", "VIKING", "NORDLYS", "POLAR", "ARKTIS",
    "KYST", "HAV", "BØLGE", "STORM", "LYNG", "FURU", "BJØRK", "EIK", "GRAN", "LIND", "SOL",
    "STJERNE", "TOPP", "TIND", "BERG", "STEIN", "ELV", "BEKK", "SJØ", "VIK", "NES", "HOLM",
    "DAL", "ÅS", "HAUG", "VOLL", "TUN", "GARD", "KILDE", "FOSS", "BRU", "ANKER", "KOMPASS",
    "PILOT", "PRIMA", "OPTIMA", "SMART", "NOVA", "ALFA", "DELTA", "OMEGA", "ZENIT", "FOKUS",
    "IMPULS", "PRESISJON", "SOLID", "TRYGG", "EKTE", "FRISK", "GRØNN", "BLÅ", "GYLDEN", "SØLV",
    "NORSK", "NORDISK", "FRAM", "ROS", "MÅKE", "ØRN", "ULV", "BJØRN", "REV", "LAKS", "TORSK",
)
# Business words by SN2025 division, for names like "FJORD BYGG AS".
_TRADE = {
    "01": ("GÅRD", "GARDSBRUK", "LANDBRUK"), "02": ("SKOG", "SKOGSDRIFT"),
    "03": ("FISKE", "HAVBRUK", "SJØMAT"), "10": ("BAKERI", "MAT", "SLAKTERI"),
    "16": ("SAG", "TRELAST"), "25": ("MEKANISKE", "SVEIS", "STÅL"), "33": ("SERVICE", "TEKNIKK"),
    "41": ("BYGG", "ENTREPRENØR", "BOLIGBYGG"), "42": ("ANLEGG", "MASKIN"),
    "43": ("BYGGSERVICE", "ELEKTRO", "RØR", "MALER", "TØMRER", "SNEKKERI", "TAK", "MUR"),
    "46": ("AGENTUR", "IMPORT", "ENGROS"), "47": ("HANDEL", "BUTIKK", "INTERIØR"),
    "49": ("TRANSPORT", "TAXI", "FRAKT"), "55": ("HOTELL", "HYTTEUTLEIE"),
    "56": ("RESTAURANT", "KAFÉ", "PIZZA"), "62": ("IT", "DATA", "TECH", "SOFTWARE"),
    "64": ("HOLDING", "INVEST", "KAPITAL"), "68": ("EIENDOM", "EIENDOMMER", "UTLEIE"),
    "69": ("REGNSKAP", "ADVOKATFIRMA", "ØKONOMI"), "70": ("RÅDGIVNING", "KONSULT", "HOLDING"),
    "71": ("ARKITEKTER", "INGENIØR", "PROSJEKT"), "74": ("DESIGN", "FOTO", "KREATIV"),
    "81": ("RENHOLD", "VASK"), "85": ("KURS", "LÆRING"),
    "86": ("TANNLEGE", "FYSIOTERAPI", "HELSE", "KLINIKK"), "90": ("MUSIKK", "KUNST", "PRODUKSJON"),
    "93": ("SPORT", "TRENING"), "95": ("BILSERVICE", "VERKSTED"),
    "96": ("FRISØR", "HUDPLEIE", "VELVÆRE"),
}
_CLUBS = (
    "IDRETTSLAG", "IL", "SKOLEKORPS", "MUSIKKORPS", "VELFORENING", "VEL", "HISTORIELAG",
    "SANITETSFORENING", "BYGDEKVINNELAG", "JEGER- OG FISKERFORENING", "SKYTTERLAG",
    "SPELEMANNSLAG", "MANNSKOR", "KVINNEKOR", "SJAKKLUBB", "MOTORKLUBB", "FOTBALLKLUBB",
    "SKIKLUBB", "TURLAG", "HUSFLIDSLAG", "PENSJONISTFORENING", "BÅTFORENING", "GRENDELAG",
    "UNGDOMSLAG", "VENNEFORENING", "FAU",
)
_INSTITUTIONS = (
    ("SKOLE", "85.201"), ("BARNEHAGE", "85.100"), ("SYKEHJEM", "87.100"),
    ("HELSESTASJON", "86.942"), ("BIBLIOTEK", "91.110"), ("KULTURSKOLE", "85.521"),
    ("HJEMMETJENESTE", "88.101"), ("BRANNSTASJON", "84.250"),
)
_STREETS = (
    "Storgata", "Kirkegata", "Strandgata", "Jernbanegata", "Torggata", "Kongens gate",
    "Dronningens gate", "Parkveien", "Industriveien", "Sentrumsveien", "Hovedveien",
    "Skoleveien", "Kirkeveien", "Fjordveien", "Havnegata", "Bryggegata", "Sjøgata",
    "Fabrikkveien", "Bjørkeveien", "Granveien", "Furuveien", "Solveien", "Bakkeveien", "Åsveien",
    "Lienveien", "Myrveien", "Elveveien", "Stasjonsveien", "Nyveien", "Gamleveien",
    "Prestegårdsveien", "Skogveien", "Markveien", "Løkkeveien", "Haugeveien", "Eikeveien",
    "Lindeveien", "Rosenvei", "Tunveien", "Gardsveien", "Kongsveien", "Dalsveien", "Fjellveien",
    "Brugata", "Tollbugata", "Verkstedveien", "Næringsveien", "Håndverkerveien", "Rådhusgata",
    "Bekkeveien", "Sandveien", "Utsikten", "Idrettsveien", "Mølleveien", "Smedveien",
)
_FARMS = ("Nordre Berg", "Søndre Haug", "Øvre Bakken", "Nedre Li", "Vestre Moen", "Østre Vik")
_ACCOUNTANTS = (
    "Regnskapskontoret AS", "Athene Registerservice AS", "EconPartner AS", "Økonomihuset AS",
    "Regnskapsservice AS", "Azets Insight AS", "Accountor AS", "Tall og Tekst AS",
)
_FREEMAIL = (
    ("gmail.com", 45), ("hotmail.com", 14), ("online.no", 12), ("outlook.com", 6),
    ("icloud.com", 5), ("live.no", 4), ("yahoo.no", 3), ("lyse.net", 2), ("altibox.no", 2),
    ("getmail.no", 2), ("hotmail.no", 2), ("frisurf.no", 1), ("me.com", 1), ("broadpark.no", 1),
)
_ROLES = (("post", 45), ("kontakt", 12), ("info", 15), ("firmapost", 8), ("faktura", 2),
          ("admin", 3), ("postmottak", 2), ("office", 1))
_SHARED_ACCOUNTANT = "post@regnskapskontoret.no"
# Country: (Norwegian name, legal-form suffix, streets, cities written as the registry does).
_COUNTRIES = (
    ("SE", "Sverige", "AB", ("Storgatan 12", "Kungsgatan 5", "Drottninggatan 44"),
     ("111 22 STOCKHOLM", "411 01 GÖTEBORG", "211 20 MALMÖ", "721 10 VÄSTERÅS"), 22),
    ("DK", "Danmark", "APS", ("Vesterbrogade 10", "Strandvejen 101"),
     ("1050 København K", "8000 Aarhus C", "5000 Odense C"), 12),
    ("DE", "Tyskland", "GMBH", ("Hauptstraße 5", "Neustädter 17", "Bahnhofstraße 22"),
     ("DE-10115 Berlin", "DE-20095 Hamburg", "DE-80331 München", "DE-92711 Parkstein"), 10),
    ("GB", "Storbritannia", "LTD", ("1 High Street", "22 Union Street"),
     ("LONDON EC1A 1BB", "ABERDEEN AB10 1XG", "MANCHESTER M1 1AE"), 14),
    ("PL", "Polen", "SP. Z O.O.", ("ul. Długa 5", "ul. Portowa 12"),
     ("00-001 Warszawa", "80-001 Gdańsk", "70-001 Szczecin"), 12),
    ("LT", "Litauen", "UAB", ("Gedimino pr. 9", "Taikos pr. 20"),
     ("LT-01100 Vilnius", "LT-91001 Klaipėda"), 8),
    ("FI", "Finland", "OY", ("Mannerheimintie 12",), ("00100 HELSINKI", "33100 TAMPERE"), 4),
    ("NL", "Nederland", "B.V.", ("Damrak 1", "Coolsingel 40"),
     ("1012 AB Amsterdam", "3011 AA Rotterdam"), 4),
    ("EE", "Estland", "OÜ", ("Narva mnt 5",), ("10111 Tallinn",), 3),
    ("LV", "Latvia", "SIA", ("Brīvības iela 10",), ("LV-1050 Rīga",), 3),
    ("US", "USA", "INC", ("100 Main Street",), ("NEW YORK, NY 10001", "HOUSTON, TX 77002"), 3),
    ("SK", "Slovakia", "S.R.O.", ("Krajna 29",), ("821 09 BRATISLAVA",), 1),
    ("ES", "Spania", "S.L.", ("Calle Mayor 3",), ("28001 MADRID", "29600 MARBELLA"), 2),
    ("IS", "Island", "EHF", ("Laugavegur 15",), ("101 REYKJAVÍK",), 1),
    ("CY", "Kypros", "LIMITED", ("Makariou Avenue 8",), ("3036 LIMASSOL",), 1),
)


# fmt: on


# -- the world: tables loaded once -----------------------------------------------------------


class _Kommune(NamedTuple):
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


@dataclass(frozen=True)
class _World:
    kommuner: tuple[_Kommune, ...]
    index: dict[str, int]
    cum_weight: tuple[float, ...]
    weight_sum: float
    foreign: float  # share of enheter with a business address abroad
    forms: tuple[_Form, ...]  # domestic forms
    form_cum: tuple[float, ...]
    foreign_forms: tuple[_Form, ...]
    foreign_cum: tuple[float, ...]
    country_cum: tuple[float, ...]
    nace: dict[str, tuple[tuple[tuple[str, str], ...], tuple[float, ...]]]  # profile -> codes
    codes: dict[str, str]  # kode -> beskrivelse
    reg_scale: float
    big_scale: float
    email_scale: float


def _expand(spec: str) -> list[str]:
    if "-" not in spec:
        return [spec]
    lo, hi = spec.split("-")
    return [f"{n:04d}" for n in range(int(lo), int(hi) + 1)]


def _parse_places() -> dict[str, tuple[int, tuple[tuple[str, str], ...], tuple[str, ...]]]:
    places = {}
    for line in _PLACES.splitlines():
        nr, pop, street_spec, box_spec = line.split("|")
        streets: list[tuple[str, str]] = []
        name = ""
        for item in street_spec.split(";"):
            code, _, poststed = item.partition(" ")
            name = poststed or name
            streets += [(c, name) for c in _expand(code)]
        boxes = tuple(c for item in box_spec.split(";") for c in _expand(item))
        places[nr] = (int(pop), tuple(streets), boxes)
    return places


def _read_kommuner() -> list[dict[str, str]]:
    text = resources.files("varsel").joinpath("data/kommuner-2024.csv").read_text("utf-8")
    return list(csv.DictReader(io.StringIO(text)))


def _read_codes() -> dict[str, str]:
    source = resources.files("varsel").joinpath("data/sn2025.csv")
    if not source.is_file():
        return dict(_FIXTURE_CODES)
    rows = csv.DictReader(io.StringIO(source.read_text("utf-8")))
    # Division 45 (motor vehicle trade) exists only in SN2007; it must never be emitted.
    codes = {
        r["kode"]: r["navn"]
        for r in rows
        if r.get("niva") == "undergruppe" and len(r["kode"]) == 6 and not r["kode"].startswith("45")
    }
    return codes or dict(_FIXTURE_CODES)


def _profile(
    codes: dict[str, str], spec: tuple[tuple[str, float], ...]
) -> tuple[tuple[tuple[str, str], ...], tuple[float, ...]]:
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
    return tuple((c, codes[c]) for c, _ in items), _cumulative([w for _, w in items])


def _cumulative(weights: Sequence[float]) -> tuple[float, ...]:
    total = sum(weights)
    out, acc = [], 0.0
    for w in weights:
        acc += w / total
        out.append(acc)
    out[-1] = 1.0
    return tuple(out)


def _pick(cum: Sequence[float], u: float) -> int:
    return bisect.bisect_right(cum, u) if u < cum[-1] else len(cum) - 1


@cache
def _world() -> _World:
    places = _parse_places()
    kommuner = []
    for row in _read_kommuner():
        nr = row["kommunenummer"]
        pop, streets, boxes = places[nr]
        name = row["navn"]
        upper = name.upper().replace(" - ", " ")
        short = upper.split(" (")[0]
        poststeder = {p.removesuffix(" S").removesuffix(" N") for _, p in streets}
        kommuner.append(
            _Kommune(
                nr,
                name,
                upper,
                tuple(sorted(poststeder | {short.split(" ")[0]})),
                nr[:2],
                streets,
                boxes,
                streets[0][1],
                pop * (_OSLO_DENSITY if nr == "0301" else 1.0),
                pop,
                _NYNORSK.get(nr[:2], 0.01),
                _PHONE.get(nr[:2], ("22",)),
            )
        )
    forms = _FORMS
    foreign = sum(f.weight for f in _FOREIGN_FORMS) / (
        sum(f.weight for f in forms) + sum(f.weight for f in _FOREIGN_FORMS)
    )
    codes = _read_codes()
    nace = {name: _profile(codes, spec) for name, spec in _PROFILES.items()}
    weight_sum = sum(k.weight for k in kommuner)
    reg, big, email = _calibrate(kommuner, weight_sum, foreign)
    return _World(
        tuple(kommuner),
        {k.nr: i for i, k in enumerate(kommuner)},
        _cumulative([k.weight for k in kommuner]),
        weight_sum,
        foreign,
        forms,
        _cumulative([f.weight for f in forms]),
        _FOREIGN_FORMS,
        _cumulative([f.weight for f in _FOREIGN_FORMS]),
        _cumulative([c[5] for c in _COUNTRIES]),
        nace,
        codes,
        reg,
        big,
        email,
    )


def _calibrate(
    kommuner: list[_Kommune], weight_sum: float, foreign: float
) -> tuple[float, float, float]:
    """Scale employee and e-mail rates so the 2023 pilot reappears at national scale."""
    domestic = sum(f.weight for f in _FORMS)
    pilot = sum(k.weight for k in kommuner if k.nr in PILOT_AREA) / weight_sum * (1 - foreign)
    reg = _solve(
        lambda s: sum(f.weight * min(1.0, f.employees * s) for f in _FORMS) / domestic,
        _PILOT_WITH_EMPLOYEES / (NATIONAL_UNITS * pilot),
    )
    everyone = (*_FORMS, *_FOREIGN_FORMS)
    total = sum(f.weight for f in everyone)
    big = _solve(
        lambda s: (
            sum(f.weight * min(1.0, f.employees * reg) * min(1.0, f.big * s) for f in everyone)
            / total
        ),
        _SHARE_WITH_COUNT,
    )
    # E-mail among units with employees: scale the per-form rates to the pilot's mean.
    employers = [(f.weight * min(1.0, f.employees * reg), f.code) for f in _FORMS]
    mean = sum(w * _EMAIL_EMPLOYER.get(c, 0.22) for w, c in employers) / sum(
        w for w, _ in employers
    )
    return reg, big, _PILOT_EMAIL_SHARE / mean


def _solve(share: Callable[[float], float], target: float) -> float:
    """The scale at which an increasing share function reaches its target (bisection)."""
    lo, hi = 0.1, 10.0
    for _ in range(60):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if share(mid) < target else (lo, mid)
    return lo


# E-mail rates for units with registered employees, before calibration.
_EMAIL_EMPLOYER = {"ENK": 0.17, "AS": 0.20, "FLI": 0.24, "NUF": 0.15, "ORGL": 0.35, "KIRK": 0.5}


def _area(world: _World, municipalities: Sequence[str]) -> tuple[int, ...]:
    if isinstance(municipalities, str):
        municipalities = [municipalities]
    unknown = [m for m in municipalities if m not in world.index]
    if unknown:
        raise UserError(
            f"Ukjent kommunenummer: {', '.join(unknown)} (bruk 2024-nummer, f.eks. 3201 for Bærum)."
        )
    wanted = set(municipalities)
    return tuple(i for i, k in enumerate(world.kommuner) if k.nr in wanted)


@cache
def _dates() -> tuple[str, ...]:
    return tuple((_EPOCH + timedelta(days=d)).isoformat() for d in range(_DAY_TODAY + 400))


_DAY_1995 = (date(1995, 2, 19) - _EPOCH).days
_DAY_BULK_END = (date(1996, 6, 30) - _EPOCH).days
_DAY_TODAY = (_TODAY - _EPOCH).days
_DAY_2024 = (date(2024, 1, 1) - _EPOCH).days
_DAY_2024H2 = (date(2024, 7, 1) - _EPOCH).days
_DAY_2025 = (date(2025, 1, 1) - _EPOCH).days


# -- organisation numbers ----------------------------------------------------------------------

_WEIGHTS = (3, 2, 7, 6, 5, 4, 3, 2)


def _mix(x: int, key: int) -> int:
    x = (x * 0x9E3779B1 + key) & 0xFFFFFFFF
    x ^= x >> 15
    x = (x * 0x85EBCA6B) & 0xFFFFFFFF
    return x ^ (x >> 13)


def _orgnr(number: int, keys: tuple[int, ...]) -> str:
    """The organisation number of unit number ``number``: unique, valid MOD11, 8xx or 9xx."""
    # A keyed Feistel permutation of 2 M seven-digit prefixes; each prefix has 9 or 10 valid
    # eighth digits, so numbers below 18 M map to distinct prefix/digit pairs.
    q, k = number % 2_000_000, number // 2_000_000
    a, b = divmod(q, 1000)
    a = (a + _mix(b, keys[0])) % 2000
    b = (b + _mix(a, keys[1])) % 1000
    a = (a + _mix(b, keys[2])) % 2000
    b = (b + _mix(a, keys[3])) % 1000
    prefix = 8_000_000 + a * 1000 + b
    digits = [int(c) for c in str(prefix)]
    s7 = sum(d * w for d, w in zip(digits, _WEIGHTS, strict=False))
    valid = [d for d in range(10) if (s7 + 2 * d) % 11 != 1]
    d8 = valid[(_mix(prefix, keys[4]) + k) % len(valid)]
    r = (s7 + 2 * d8) % 11
    return f"{prefix}{d8}{0 if r == 0 else 11 - r}"


def _vmix(x: np.ndarray, key: int) -> np.ndarray:
    x = (x * np.uint64(0x9E3779B1) + np.uint64(key)) & np.uint64(0xFFFFFFFF)
    x ^= x >> np.uint64(15)
    x = (x * np.uint64(0x85EBCA6B)) & np.uint64(0xFFFFFFFF)
    return x ^ (x >> np.uint64(13))


def _orgnrs(first: int, count: int, step: int, keys: tuple[int, ...]) -> list[str]:
    """The organisation numbers of units first, first + step, ...; the same as _orgnr."""
    numbers = first + step * np.arange(count, dtype=np.uint64)
    q, k = numbers % np.uint64(2_000_000), numbers // np.uint64(2_000_000)
    a, b = q // np.uint64(1000), q % np.uint64(1000)
    a = (a + _vmix(b, keys[0])) % np.uint64(2000)
    b = (b + _vmix(a, keys[1])) % np.uint64(1000)
    a = (a + _vmix(b, keys[2])) % np.uint64(2000)
    b = (b + _vmix(a, keys[3])) % np.uint64(1000)
    prefix = np.uint64(8_000_000) + a * np.uint64(1000) + b
    s7 = np.zeros(count, dtype=np.int64)
    for place, weight in enumerate(_WEIGHTS[:7]):
        s7 += weight * ((prefix // np.uint64(10 ** (6 - place))) % np.uint64(10)).astype(np.int64)
    valid = (s7[:, None] + 2 * np.arange(10)) % 11 != 1
    slot = ((_vmix(prefix, keys[4]) + k) % valid.sum(1).astype(np.uint64)).astype(np.int64)
    d8 = np.argmax((valid.cumsum(1) == slot[:, None] + 1) & valid, axis=1)
    r = (s7 + 2 * d8) % 11
    full = prefix.astype(np.int64) * 100 + d8 * 10 + np.where(r == 0, 0, 11 - r)
    return [str(x) for x in full.tolist()]


# -- text helpers ------------------------------------------------------------------------------

_ASCII = str.maketrans({"æ": "ae", "ø": "o", "å": "a", "é": "e", "ü": "u", "ö": "o", "ä": "a"})
_FORM_WORDS = frozenset(
    {"AS", "ASA", "ANS", "DA", "SA", "NUF", "KS", "BA", "IKS", "KF", "HF", "OG", "&", "-", "I"}
)


def _domain(name: str, u: float) -> str:
    words = [w for w in name.split() if w not in _FORM_WORDS][:3] or ["firma"]
    if u < 0.7:
        words = words[:2]
    label = ("-" if u > 0.85 else "").join(words).lower()
    label = "".join(c for c in label if c.isalnum() or c == "-")
    # A few firms with æ, ø or å keep them: an IDN domain such as bærumbakeri.no.
    if not (u * 97 % 1 < 0.05 and label != label.translate(_ASCII)):
        label = label.translate(_ASCII)
    tld = ".com" if u * 31 % 1 < 0.08 else ".no"
    return (label or "firma") + tld


def _local(first: str, last: str, u: float) -> str:
    f, la = first.lower().translate(_ASCII), last.lower().translate(_ASCII)
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


def _phone(prefixes: tuple[str, ...], u: float, mobile: bool) -> str:
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


# -- generation --------------------------------------------------------------------------------


class _Core(NamedTuple):
    """What a sub-unit needs to know of its parent, and what the enhet itself is built from."""

    position: int  # the enhet's index in the dump
    form: _Form
    kommune: int  # index into world.kommuner; -1 when the business address is abroad
    country: int
    employees: int  # -1: none registered; 0: 1-4 (hidden); else the count
    nace: tuple[str, str] | None
    name: str
    first: str
    last: str
    registered: int  # day number of registreringsdatoEnhetsregisteret


class _Generator:
    """Builds records for one seed and area; every record is a pure function of its index."""

    def __init__(self, world: _World, seed: int, area: tuple[int, ...]) -> None:
        self.world = world
        self.seed = seed % 2**64
        self.area = area
        self.keys = tuple(_mix(self.seed & 0xFFFFFFFF, (self.seed >> 32) + i) for i in range(5))
        self.dates = _dates()
        self.kommuner = area or tuple(range(len(world.kommuner)))
        self.kommune_cum = _cumulative([world.kommuner[k].weight for k in self.kommuner])
        self.foreign = 0.0 if area else world.foreign
        self.counties: dict[str, tuple[tuple[int, ...], tuple[float, ...]]] = {}
        for county in sorted({world.kommuner[k].county for k in self.kommuner}):
            members = tuple(k for k in self.kommuner if world.kommuner[k].county == county)
            weights = [world.kommuner[k].weight for k in members]
            self.counties[county] = (members, _cumulative(weights))
        # One KOMM per municipality in scope, spread evenly over the national-scale index range.
        share = area_share([world.kommuner[k].nr for k in area]) if area else 1.0
        self.komm_stride = max(1, round(NATIONAL_UNITS * share) // len(self.kommuner))
        self.komm_offset = self.komm_stride // 2
        self.komm_weights = tuple(
            itertools.accumulate(world.kommuner[k].weight for k in self.kommuner)
        )
        self._rows: dict[tuple[int, int], list[list[float]]] = {}

    # random numbers and numbers

    def rows(self, stream: int, block: int) -> list[list[float]]:
        """The random numbers of one block of records: _BLOCK rows of _COLS uniforms."""
        rows = self._rows.get((stream, block))
        if rows is None:
            area = [int(self.world.kommuner[k].nr) for k in self.area]
            entropy = [self.seed & 0xFFFFFFFF, self.seed >> 32, stream, block, *area]
            bits = np.random.PCG64(np.random.SeedSequence(entropy))
            rows = np.random.Generator(bits).random((_BLOCK, _COLS)).tolist()
            # Sub-units look up parents near 4/3 of their own index: a few blocks suffice.
            if len(self._rows) > 6:
                del self._rows[next(iter(self._rows))]
            self._rows[(stream, block)] = rows
        return rows

    def row(self, i: int) -> list[float]:
        """The random numbers of enhet ``i``."""
        return self.rows(0, i // _BLOCK)[i % _BLOCK]

    def orgnr(self, number: int) -> str:
        return _orgnr(number, self.keys)

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

    def basic(self, i: int, u: list[float]) -> tuple[_Form, int]:
        """Enhet ``i``'s legal form and employees: enough to weigh it as a parent."""
        if self.komm(i) >= 0:
            return _KOMM, 1
        world = self.world
        if u[0] < self.foreign:
            form = world.foreign_forms[_pick(world.foreign_cum, u[1])]
        else:
            form = world.forms[_pick(world.form_cum, u[1])]
        if u[2] >= form.employees * world.reg_scale:
            return form, -1
        if u[3] < form.big * world.big_scale:
            return form, min(30_000, int(5 * (1 - u[4]) ** (-1 / 1.15)))
        return form, 0

    def core(self, i: int, u: list[float]) -> _Core:
        """The parts of enhet ``i`` that its sub-units depend on."""
        world = self.world
        komm = self.komm(i)
        if komm >= 0:
            # Independent of ``u``: sub-units look KOMM parents up without their random numbers.
            k = world.kommuner[komm]
            admin = ("84.110", world.codes.get("84.110", "Generell offentlig administrasjon"))
            employees = max(5, int(k.population * 0.09))
            name = k.upper.split(" (")[0] + " KOMMUNE"
            return _Core(i, _KOMM, komm, -1, employees, admin, name, "POST", "MOTTAK", _DAY_1995)
        first, last = _FIRST[int(u[40] * len(_FIRST))], _LAST[int(u[41] * len(_LAST))]
        form, employees = self.basic(i, u)
        if u[0] < self.foreign:
            kommune, country = -1, _pick(world.country_cum, u[42])
        else:
            spot = (u[0] - self.foreign) / (1 - self.foreign)
            kommune, country = self.kommuner[_pick(self.kommune_cum, spot)], -1
        nace = self.nace(form, u[5], u[6])
        name = self.name(form, kommune, country, nace, first, last, u)
        if u[11] < 0.16:
            # Units older than the register got their registration date in 1995-1996.
            day = _DAY_1995 + int(u[11] / 0.16 * (_DAY_BULK_END - _DAY_1995))
        else:
            age = -math.log(1 - (u[11] - 0.16) / 0.84) * 3300
            day = max(_DAY_1995, _DAY_TODAY - int(age))
        return _Core(i, form, kommune, country, employees, nace, name, first, last, day)

    def nace(self, form: _Form, u: float, v: float) -> tuple[str, str] | None:
        if u < _NO_NACE.get(form.code, 0.0) or not form.nace:
            return None
        if v < _UNKNOWN_NACE.get(form.code, 0.005):
            return _UNKNOWN
        codes, cum = self.world.nace[form.nace]
        return codes[_pick(cum, (u * 7.31 + v) % 1)]

    def place(self, kommune: int, u: float) -> str:
        places = self.world.kommuner[kommune].places if kommune >= 0 else ("NORDIC",)
        return places[int(u * len(places))]

    def name(
        self,
        form: _Form,
        kommune: int,
        country: int,
        nace: tuple[str, str] | None,
        first: str,
        last: str,
        u: list[float],
    ) -> str:
        """The unit's name, built the way each legal form is usually named."""
        code, pattern, a, c = form.code, u[7], u[8], u[10]
        trade = _TRADE.get(nace[0][:2] if nace else "", ("SERVICE", "DRIFT", "GRUPPEN"))
        word = trade[int(a * len(trade))]
        stem = _STEMS[int(u[9] * len(_STEMS))]
        if c < 0.2:
            stem += _STEMS[int(c * 5 * len(_STEMS))]
        place = self.place(kommune, c)
        if code == "ENK":
            # A sole proprietorship's name must hold the owner's surname.
            name = _enk_name(pattern, word, first, last)
        elif country >= 0 or code == "NUF":
            cc = _COUNTRIES[country if country >= 0 else int(c * len(_COUNTRIES))]
            suffix = (
                ""
                if code == "UTLA"
                else (" NUF" if a < 0.8 else ", FILIAL I NORGE" if a < 0.9 else " NORWEGIAN BRANCH")
            )
            name = f"{stem} {word} {cc[2]}{suffix}"
        elif code in _COMPANY_FORMS:
            name = f"{_company_base(code, pattern, stem, word, place, first, last, a, c)} {code}"
        else:
            nynorsk = kommune >= 0 and u[29] < self.world.kommuner[kommune].nynorsk
            name = self.other_name(code, pattern, stem, word, place, first, last, u, nynorsk)
        # A few names carry stray spaces, as typed into Altinn.
        if u[37] < 0.002:
            name = name + " " if u[37] < 0.001 else " " + name
        return name

    def other_name(
        self,
        code: str,
        pattern: float,
        stem: str,
        word: str,
        place: str,
        first: str,
        last: str,
        u: list[float],
        nynorsk: bool,
    ) -> str:
        """Names of associations, condominiums, estates and public bodies."""
        if code == "FLI":
            club = _CLUBS[int(u[8] * len(_CLUBS))]
            return f"FAU {place} SKOLE" if club == "FAU" else f"{place} {club}"
        if code == "ESEK":
            # An owner-section condominium is named after the building it owns.
            street = self.street(u[20], u[21], nynorsk).upper()
            if pattern < 0.5:
                return f"SAMEIET {street}"
            return f"{street} BOLIGSAMEIE" if pattern < 0.85 else f"EIERSEKSJONSSAMEIET {street}"
        named = {
            "BRL": f"{stem if pattern < 0.6 else place} BORETTSLAG",
            "SAM": f"SAMEIET {stem}" if pattern < 0.5 else f"{last} SAMEIE",
            "STI": f"STIFTELSEN {stem if pattern < 0.5 else place}",
            "ORGL": f"{place} {_INSTITUTIONS[int(u[8] * len(_INSTITUTIONS))][0]}",
            "KIRK": f"{place} SOKN",
            "KBO": f"{stem} {word} AS KONKURSBO",
            "BO": f"DØDSBO ETTER {first} {last}",
            "SPA": f"SPAREBANKEN {place}",
            "IKS": f"{place} {word} IKS",
            "KF": f"{place} {word} KF",
            "PK": f"{stem} {word} PENSJONSKASSE",
        }
        return named.get(code, f"{stem} {word}")

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
                f"www.{self.komm_domain(core.kommune)}/"
                if code == "KOMM"
                else "www." + _domain(core.name, u[13])
            )
        postadresse = self.postadresse(core, kommune, u)
        if postadresse is not None:
            rec["postadresse"] = postadresse
        rec["registreringsdatoEnhetsregisteret"] = self.dates[core.registered]
        self.industry_and_staff(rec, core, u)
        self.contacts(rec, core, kommune, u)
        rec["forretningsadresse"] = self.forretningsadresse(core, kommune, u)
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

    def industry_and_staff(self, rec: dict[str, Any], core: _Core, u: list[float]) -> None:
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

    def more_codes(self, rec: dict[str, Any], form: _Form, nace: tuple[str, str], u: float) -> None:
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

    def registers(self, rec: dict[str, Any], core: _Core, u: list[float]) -> None:
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
            rec["institusjonellSektorkode"] = {"kode": sector, "beskrivelse": _SECTORS[sector]}
        rec["registrertIForetaksregisteret"] = u[26] < form.foretak
        rec["registrertIStiftelsesregisteret"] = code == "STI"
        voluntary = code in ("FLI", "STI") and u[26] < (0.5 if code == "FLI" else 0.2)
        rec["registrertIFrivillighetsregisteret"] = voluntary
        if voluntary:
            day = max(reg, _DAY_TODAY - int(u[26] * 11_000))
            rec["registreringsdatoFrivillighetsregisteret"] = dates[day]
        accounts = _accounts(code, reg, u[34])
        if accounts:
            rec["sisteInnsendteAarsregnskap"] = accounts

    def articles(self, rec: dict[str, Any], core: _Core, u: list[float], nynorsk: bool) -> None:
        """Purpose and activity texts, and the company fields that follow them."""
        dates, code, reg = self.dates, core.form.code, core.registered
        company = code in _COMPANY_FORMS or code in ("STI", "SPA", "BBL")
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

    def komm_domain(self, kommune: int) -> str:
        name = self.world.kommuner[kommune].name.split(" (")[0].split(" - ")[0].lower()
        return name.translate(_ASCII).replace(" ", "-") + ".kommune.no"

    def contacts(
        self, rec: dict[str, Any], core: _Core, kommune: _Kommune | None, u: list[float]
    ) -> None:
        code = core.form.code
        prefixes = kommune.phone if kommune else ("22",)
        if code == "KOMM":
            local = "postmottak" if u[13] < 0.6 else "post"
            rec["epostadresse"] = f"{local}@{self.komm_domain(core.kommune)}"
            rec["telefon"] = _phone(prefixes, u[36], mobile=False)
            return
        if core.employees >= 0:
            rate = _EMAIL_EMPLOYER.get(code, 0.22) * self.world.email_scale
        else:
            rate = core.form.email
        if u[12] < rate:
            rec["epostadresse"] = self.email(core, kommune, u)
        if u[16] < (0.30 if core.employees >= 0 else 0.10):
            rec["telefon"] = _phone(prefixes, u[36], mobile=False)
        if u[17] < (0.30 if code == "ENK" else 0.18):
            rec["mobil"] = _phone(prefixes, (u[36] * 13) % 1, mobile=True)

    def email(self, core: _Core, kommune: _Kommune | None, u: list[float]) -> str:
        kind, dirt = u[13], u[14]
        if dirt < 0.003:
            return _SHARED_ACCOUNTANT
        if dirt < 0.012 and kommune is not None:
            # Regional accounting firms keep their own address on dozens of clients.
            town = kommune.places[0].lower().translate(_ASCII).replace(" ", "")
            return f"post@{town}regnskap.no"
        if core.form.code in ("ENK", "PERS", "BO") or kind < 0.12:
            # Sole proprietors mostly give their private address, often at a free-mail host.
            local = _local(core.first, core.last, kind * 3 % 1)
            if kind * 7 % 1 < 0.75:
                host = _FREEMAIL[_pick(_FREEMAIL_CUM, kind * 11 % 1)][0]
            else:
                host = _domain(core.name, kind)
        else:
            if kind * 3 % 1 < 0.8:
                local = _ROLES[_pick(_ROLES_CUM, kind * 5 % 1)][0]
            else:
                local = _local(core.first, core.last, kind * 17 % 1)
            host = _domain(core.name, kind)
        address = f"{local}@{host}"
        return _dirty(address, core, u[15]) if dirt < 0.05 else address

    @staticmethod
    def street(u: float, v: float, nynorsk: bool) -> str:
        if u < 0.03:
            return _FARMS[int(v * len(_FARMS))]
        name = _STREETS[int(u * len(_STREETS))]
        if nynorsk:
            name = name.replace("veien", "vegen")
        letter = "ABC"[int(v * 300) % 3] if v * 977 % 1 < 0.1 else ""
        return f"{name} {int(v**2 * 150) + 1}{letter}"

    def lines(self, u: float, v: float, dirt: float, nynorsk: bool, box: bool) -> list[str]:
        """The adresse lines of a street address, with the registry's usual blemishes."""
        street = self.street(u, v, nynorsk)
        if dirt < 0.006:
            return [] if dirt < 0.002 else [street, ""] if dirt < 0.004 else [" ", street]
        if dirt < 0.03:
            return [street.upper()]
        if dirt < 0.06 and not box:
            return [f"{_STEMS[int(v * 71) % len(_STEMS)].capitalize()}gården", street]
        return [street]

    def forretningsadresse(
        self, core: _Core, kommune: _Kommune | None, u: list[float]
    ) -> dict[str, Any]:
        if kommune is None:
            cc = _COUNTRIES[core.country]
            empty = core.form.code == "UTLA" and u[23] < 0.3
            lines = [] if empty else [cc[3][int(u[20] * len(cc[3]))]]
            city = cc[4][int(u[22] * len(cc[4]))]
            return {"land": cc[1], "landkode": cc[0], "poststed": city, "adresse": lines}
        postnummer, poststed = kommune.streets[int(u[22] * len(kommune.streets))]
        if core.form.code == "KOMM":
            lines = [f"Rådhusplassen {int(u[21] * 9) + 1}"]
        else:
            lines = self.lines(u[20], u[21], u[23], u[29] < kommune.nynorsk, box=False)
        return _address(kommune, postnummer, poststed, lines)

    def postadresse(
        self, core: _Core, kommune: _Kommune | None, u: list[float]
    ) -> dict[str, Any] | None:
        code = core.form.code
        if u[19] >= (0.95 if code == "KOMM" else 0.75 if kommune is None else 0.45):
            return None
        box = f"Postboks {int(u[43] * 9000) + 1}"
        if kommune is None or u[44] < 0.12:
            # c/o an accountant, often in Oslo: the mailbox of foreign branches and small firms.
            to = kommune if kommune is not None and u[46] < 0.6 else self.world.kommuner[0]
            accountant = _ACCOUNTANTS[int(u[44] * 997) % len(_ACCOUNTANTS)]
            co = f"c/o {accountant}" if u[44] * 31 % 1 < 0.7 else f"C/O {accountant.upper()}"
            if code == "ENK" and u[44] * 7 % 1 < 0.5:
                co = f"c/o {core.first.capitalize()} {core.last.capitalize()}"
            lines = [co, box if u[45] < 0.7 else self.street(u[45], u[43], False)]
            if u[45] > 0.97:
                lines.append(to.box_poststed.capitalize())
            return _address(to, to.boxes[int(u[43] * len(to.boxes))], to.box_poststed, lines)
        if u[45] < 0.5 or code == "KOMM":
            if u[43] * 13 % 1 < 0.1:
                box += " Sentrum"
            postnummer = kommune.boxes[int(u[43] * len(kommune.boxes))]
            return _address(kommune, postnummer, kommune.box_poststed, [box])
        postnummer, poststed = kommune.streets[int(u[46] * len(kommune.streets))]
        nynorsk = u[29] < kommune.nynorsk
        lines = self.lines(u[45], u[43], u[23] * 3 % 1, nynorsk, box=True)
        return _address(kommune, postnummer, poststed, lines)

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

    def parent(self, i: int, u: list[float]) -> _Core:
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
        p = candidates[_pick(_cumulative(weights), u[44])] if sum(weights) else candidates[0]
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
            rec["hjemmeside"] = "www." + _domain(parent.name, u[13])
        if u[19] < 0.25:
            box = kommune.boxes[int(u[43] * len(kommune.boxes))]
            lines = [f"Postboks {int(u[43] * 9000) + 1}"]
            rec["postadresse"] = _address(kommune, box, kommune.box_poststed, lines)
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
            rec["epostadresse"] = self.email(parent, kommune, u)
        if u[16] < 0.25:
            rec["telefon"] = _phone(kommune.phone, u[36], mobile=False)
        if u[17] < 0.08:
            # Sub-unit mobile numbers are stored without spaces (fixture 995367114).
            rec["mobil"] = _phone(kommune.phone, (u[36] * 13) % 1, mobile=True).replace(" ", "")
        rec["overordnetEnhet"] = parent_orgnr
        if u[25] < 0.9:
            rec["oppstartsdato"] = dates[started]
        if u[26] < 0.03:
            rec["datoEierskifte"] = dates[started + int(u[26] / 0.03 * (_DAY_TODAY - started))]
        lines = self.lines(u[20], u[21], u[23], u[29] < kommune.nynorsk, box=False)
        rec["beliggenhetsadresse"] = _address(kommune, postnummer, poststed, lines)
        rec["_links"] = {
            "self": {"href": f"{_API}/underenheter/{orgnr}"},
            "overordnetEnhet": {"href": f"{_API}/enheter/{parent_orgnr}"},
        }
        rec["respons_klasse"] = "Underenhet"
        return rec

    def location(self, parent: _Core, u: list[float]) -> int:
        """Where a sub-unit lies: mostly with its parent, some as branch offices elsewhere."""
        world = self.world
        branch = 0.35 if parent.form.code in ("AS", "ASA", "NUF", "SA") else 0.1
        if parent.kommune >= 0 and (parent.form.code == "KOMM" or u[0] >= branch):
            return parent.kommune
        if parent.kommune >= 0 and u[1] < 0.6:
            # Most branch offices lie in the parent's own county.
            members, cum = self.counties[world.kommuner[parent.kommune].county]
            return members[_pick(cum, u[1] / 0.6)]
        return self.kommuner[_pick(self.kommune_cum, u[1])]

    def sub_name(
        self, parent: _Core, kommune: _Kommune, poststed: str, u: list[float]
    ) -> tuple[str, tuple[str, str] | None]:
        codes = self.world.codes
        if parent.form.code == "KOMM":
            label, code = _INSTITUTIONS[int(u[8] * len(_INSTITUTIONS))]
            nace = (code, codes[code]) if code in codes else parent.nace
            return f"{self.place(self.world.index[kommune.nr], u[9])} {label}", nace
        if kommune.nr != self.world.kommuner[parent.kommune].nr or u[7] < 0.15:
            town = poststed.removesuffix(" S").removesuffix(" N")
            return f"{parent.name.strip()} AVD {town}", parent.nace
        return parent.name, parent.nace


_NO_ROW = [0.0] * _COLS
_COMPANY_FORMS = frozenset({"AS", "ASA", "KS", "BA", "SA", "ANS", "DA"})
_UNFOUNDED = frozenset({"ENK", "NUF", "UTLA", "KOMM", "ORGL", "KIRK", "ADOS"})
_FORCED = (
    "tvangsopplostPgaManglendeRegnskapDato",
    "tvangsopplostPgaManglendeRevisorDato",
    "tvangsopplostPgaManglendeDagligLederDato",
    "tvangsopplostPgaMangelfulltStyreDato",
)
_CAPITAL_NEW = (30_000, 30_000, 30_000, 50_000, 60_000, 100_000, 200_000, 1_000_000)
_CAPITAL_OLD = (100_000, 100_000, 100_000, 120_000, 250_000, 500_000, 1_000_000, 3_000_000)
_DAY_2012 = (date(2012, 1, 1) - _EPOCH).days
# fmt: off
_ACCOUNTS_RATE = {
    "AS": 0.97, "ASA": 1, "NUF": 0.8, "SA": 0.9, "STI": 0.9, "BRL": 0.95, "ESEK": 0.3,
    "ANS": 0.2, "DA": 0.2, "FLI": 0.08, "KS": 0.5, "BBL": 1, "SPA": 1, "IKS": 1, "KF": 1,
    "BA": 0.5, "SAM": 0.05, "PRE": 0.5,
}
# fmt: on


def _company_base(
    code: str,
    pattern: float,
    stem: str,
    word: str,
    place: str,
    first: str,
    last: str,
    a: float,
    c: float,
) -> str:
    """The name of a company before its legal-form suffix: "FJORD BYGG", "HANSEN HOLDING"."""
    if code in ("ANS", "DA") and pattern < 0.3:
        return f"{last} & {_LAST[int(c * len(_LAST))]}"
    if pattern < 0.45:
        return f"{stem} {word}"
    if pattern < 0.65:
        return f"{last} {word}"
    if pattern < 0.80:
        return f"{place} {word}"
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


@cache
def _form_json(code: str, desc: str) -> dict[str, Any]:
    # Shared between records: they are serialised, never changed.
    href = f"{_API}/organisasjonsformer/{code}".replace("Æ", "%C3%86")
    return {"kode": code, "beskrivelse": desc, "_links": {"self": {"href": href}}}


def _address(kommune: _Kommune, postnummer: str, poststed: str, lines: list[str]) -> dict[str, Any]:
    return {
        "land": "Norge",
        "landkode": "NO",
        "postnummer": postnummer,
        "poststed": poststed,
        "adresse": lines,
        "kommune": kommune.upper,
        "kommunenummer": kommune.nr,
    }


def _dirty(address: str, core: _Core, u: float) -> str:
    """The mistakes people make when they type an e-mail address into the registry."""
    other = _local(core.first, core.last, u * 7 % 1)
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
        return _phone(("22",), u * 17 % 1, mobile=True)
    if u < 0.75:
        return address.replace("@", ".", 1)
    return address


def _accounts(code: str, reg: int, u: float) -> str:
    """sisteInnsendteAarsregnskap: the last year with annual accounts, or "" for none."""
    rate = _ACCOUNTS_RATE.get(code, 0.0)
    if u >= rate or reg >= _DAY_2025 or (reg >= _DAY_2024H2 and u > rate * 0.6):
        return ""
    if reg >= _DAY_2024:
        return "2024"
    v = u / rate
    return "2024" if v < 0.88 else "2023" if v < 0.96 else "2022" if v < 0.99 else "2021"


def _sub_employees(parent: _Core, u: list[float]) -> int:
    """A sub-unit's employees (-1 none, 0 hidden 1-4, else the count), following its parent."""
    if parent.form.code == "KOMM":
        return 5 + int((1 - u[4]) ** (-1 / 1.3) * 10)
    if parent.employees < 0:
        return 0 if u[2] < 0.05 else -1
    if parent.employees == 0:
        return -1 if u[2] < 0.15 else 0
    count = max(1, int(parent.employees * u[3] ** 1.5))
    return count if count >= 5 else 0


_FREEMAIL_CUM = _cumulative([w for _, w in _FREEMAIL])
_ROLES_CUM = _cumulative([w for _, w in _ROLES])


# -- writing -----------------------------------------------------------------------------------


def _open_temp(out: Path) -> tuple[int, str]:
    if out.is_dir():
        raise UserError(f"{out} er en mappe; oppgi et filnavn.")
    parent = out.parent
    if not parent.is_dir():
        raise UserError(f"Mappen {parent} finnes ikke.")
    try:
        fd, tmp = tempfile.mkstemp(dir=parent, prefix=f".{out.name}.", suffix=".part")
    except OSError as e:
        raise UserError(f"Kan ikke skrive til {parent}: {e.strerror}.") from e
    os.fchmod(fd, 0o644)
    return fd, tmp


class _Sink:
    """Writes bytes to a file, as one gzip member when asked; counts the bytes on disk."""

    def __init__(self, raw: BinaryIO, *, gzipped: bool) -> None:
        self.raw = raw
        self.gzipped = gzipped
        self.written = 0
        self.crc = 0
        self.size = 0
        self.deflate = isal_zlib.compressobj(_GZIP_LEVEL, isal_zlib.DEFLATED, -15)
        if gzipped:
            # A fixed header (no name, no time) keeps the file byte-identical between runs.
            self._out(b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff")

    def _out(self, data: bytes) -> None:
        if data:
            self.raw.write(data)
            self.written += len(data)

    def write(self, data: bytes) -> None:
        if not self.gzipped:
            self._out(data)
            return
        self.crc = isal_zlib.crc32(data, self.crc)
        self.size += len(data)
        self._out(self.deflate.compress(data))

    def close(self) -> None:
        if self.gzipped:
            self._out(self.deflate.flush())
            self._out(struct.pack("<II", self.crc & 0xFFFFFFFF, self.size & 0xFFFFFFFF))


def _write_records(
    sink: _Sink, gen: _Generator, units: int, fmt: str, kind: str, progress: ProgressCallback | None
) -> None:
    make = gen.enhet if kind == "enheter" else gen.underenhet
    stream = 0 if kind == "enheter" else 1
    if fmt == "json":
        sink.write(b"[")
        done = 0
        for block in _blocks(gen, make, stream, units):
            body = orjson.dumps(block)[1:-1]
            sink.write(body if done == 0 else b"," + body)
            done += len(block)
            if progress is not None:
                progress(sink.written, None, done)
        sink.write(b"]")
        return
    columns = ENHETER_COLUMNS if kind == "enheter" else UNDERENHETER_COLUMNS
    specs = [_column_spec(c) for c in columns]
    text = io.StringIO()
    writer = csv.writer(text, quoting=csv.QUOTE_ALL, lineterminator="\n")
    writer.writerow(columns)
    sink.write(text.getvalue().encode())
    done = 0
    for block in _blocks(gen, make, stream, units):
        text.seek(0)
        text.truncate()
        writer.writerows([_flatten(rec, specs) for rec in block])
        sink.write(text.getvalue().encode())
        done += len(block)
        if progress is not None:
            progress(sink.written, None, done)


_Maker = Callable[[int, list[float], str], dict[str, Any]]


def _blocks(
    gen: _Generator, make: _Maker, stream: int, units: int
) -> Iterator[list[dict[str, Any]]]:
    for block in range((units + _BLOCK - 1) // _BLOCK):
        start = block * _BLOCK
        count = min(_BLOCK, units - start)
        rows = gen.rows(stream, block)
        # Enheter are even unit numbers and underenheter odd ones, so no two units share a number.
        orgnrs = _orgnrs(2 * start + stream, count, 2, gen.keys)
        yield [make(start + j, rows[j], orgnrs[j]) for j in range(count)]


def _column_spec(column: str) -> tuple[str, str]:
    key = JSON_KEY.get(column, column)
    top, _, sub = key.partition(".")
    return top, sub


def _flatten(rec: dict[str, Any], specs: list[tuple[str, str]]) -> list[str]:
    out = []
    for top, sub in specs:
        value = rec.get(top)
        if sub and value is not None:
            value = value.get(sub)
        if value is None:
            out.append("")
        elif value is True:
            out.append("true")
        elif value is False:
            out.append("false")
        elif isinstance(value, list):
            out.append(
                "\n".join(v if isinstance(v, str) else orjson.dumps(v).decode() for v in value)
            )
        else:
            out.append(str(value))
    return out
