"""`make demo`: the Oslo pilot of January 2023, end to end on embedded defaults.

Synthesises the registry for Oslo, Bærum and Asker in full, imports it into a fresh SQLite
store under ./demo, and previews the pilot's segment: at least two employees in Oslo police
district.
"""

from __future__ import annotations

import shutil
import sys
import time
from pathlib import Path

from rich.console import Console

from varsel import synth
from varsel.db import connect
from varsel.i18n import fmt_int, fmt_share
from varsel.progress import progress_bar
from varsel.registry import import_dump
from varsel.segment import Criteria, preview
from varsel.segment_view import render_preview

PILOT_AREA = ("0301", "3201", "3203")
NATIONAL_UNITS = 1_200_000
SEED = 2023


def main(folder: Path = Path("demo")) -> int:
    """Run the demo; returns the exit status."""
    console = Console(highlight=False)
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    started = time.monotonic()
    console.rule("varsel — pilotutsendelsen fra Oslo politidistrikt (januar 2023)")

    units = round(NATIONAL_UNITS * synth.area_share(PILOT_AREA))
    enheter = folder / "enheter_alle.json.gz"
    with progress_bar("Lager syntetisk register", console) as progress:
        made = synth.write_dump(
            enheter,
            units=units,
            seed=SEED,
            kind="enheter",
            municipalities=PILOT_AREA,
            progress=progress,
        )
    console.print(made.summary())

    db = connect(str(folder / "varsel.db"))
    try:
        with progress_bar("Importerer", console) as progress:
            result = import_dump(db, enheter, progress=progress)
        console.print(result.summary())

        criteria = Criteria(police_districts=("oslo",), min_employees=2)
        console.rule("Segment: Oslo politidistrikt, minst 2 ansatte")
        p = preview(db, criteria)
        render_preview(console, p)
    finally:
        db.close()

    r = p.reachability
    console.rule("Sammendrag")
    console.print(
        f"Valgt: {fmt_int(p.units)} virksomheter (artikkelen: «rundt 50 000»).\n"
        f"Kan nås på e-post: {fmt_int(r['email'])} ({fmt_share(r['email'], p.units)}; "
        "artikkelen: «rundt 10 000»).\n"
        f"Kan ikke nås på e-post: {fmt_int(p.units - r['email'])} "
        "(artikkelen: «rundt 40 000»).\n"
        f"Lageret ligger i {folder / 'varsel.db'}; prøv for eksempel\n"
        f"  .venv/bin/varsel --db {folder / 'varsel.db'} segment preview "
        "--police-district oslo --min-employees 5\n"
        f"Ferdig på {time.monotonic() - started:.0f} s."
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
