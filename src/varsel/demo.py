"""`make demo`: the Oslo pilot of January 2023, end to end on embedded defaults.

Synthesises the registry for Oslo, Bærum and Asker in full, imports it into a fresh SQLite
store under ./demo, previews the pilot's segment, creates the pilot's campaign from
examples/pilot.toml, and sends it to a built-in SMTP server on loopback that keeps every
message as an .eml file under ./demo/mail. Nothing leaves this machine.
"""

from __future__ import annotations

import shutil
import sys
import time
from pathlib import Path

from rich.console import Console

from varsel import synth
from varsel.campaign import create_campaign
from varsel.channel.smtp import RelayConfig
from varsel.config import Settings
from varsel.db import connect
from varsel.i18n import fmt_int, fmt_share
from varsel.progress import counts_bar, progress_bar
from varsel.registry import import_dump
from varsel.segment import Criteria, preview
from varsel.segment_view import render_preview
from varsel.sender import SendOptions, send_campaign
from varsel.testing import SmtpSink

PILOT_AREA = ("0301", "3201", "3203")
NATIONAL_UNITS = 1_200_000
SEED = 2023
EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "pilot.toml"


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

    store = folder / "varsel.db"
    settings = Settings.load(database_url=str(store))
    db = connect(str(store))
    try:
        with progress_bar("Importerer", console) as progress:
            result = import_dump(db, enheter, progress=progress)
        console.print(result.summary())

        console.rule("Segment: Oslo politidistrikt, minst 2 ansatte")
        p = preview(db, Criteria(police_districts=("oslo",), min_employees=2))
        render_preview(console, p)

        console.rule(f"Kampanje fra {EXAMPLE.relative_to(EXAMPLE.parents[1])}")
        created = create_campaign(db, settings, EXAMPLE)
        console.print(created.summary())
        cid = created.campaign.id

        console.rule("Utsending til den innebygde SMTP-tjeneren på 127.0.0.1")
        mail = folder / "mail"
        with SmtpSink(maildir=mail) as sink:
            # The example limits itself to 100 messages a second, as a real relay would want;
            # the demo's own sink can take more.
            options = SendOptions.for_campaign(
                created.campaign.spec,
                rate_per_second=5000,
                connections=8,
                per_domain_concurrency=8,
                per_domain_per_minute=600_000,
            )
            with counts_bar("Sender", created.deliveries, console) as progress:
                report = send_campaign(
                    db,
                    settings,
                    cid,
                    relay=RelayConfig.from_url(sink.url),
                    options=options,
                    progress=progress,
                )
            received = len(sink.messages)
        console.print(report.summary())
    finally:
        db.close()

    sent = report.counts["sent"]
    console.rule("Sammendrag, i artikkelens tall")
    console.print(
        f"Valgt: {fmt_int(p.units)} virksomheter med minst to ansatte i Oslo, Bærum og Asker "
        "(artikkelen: «rundt 50 000»).\n"
        f"Kan nås på e-post: {fmt_int(p.reachability['email'])} "
        f"({fmt_share(p.reachability['email'], p.units)}; artikkelen: «rundt 10 000»).\n"
        f"Sendt: {fmt_int(sent)} e-poster til {fmt_int(created.deliveries)} adresser "
        f"(noen adresser deles av flere virksomheter: {fmt_int(created.shared_addresses)}); "
        f"SMTP-tjeneren tok imot {fmt_int(received)}.\n"
        f"Ikke nådd på e-post: {fmt_int(p.units - p.reachability['email'])} "
        "(artikkelen: «rundt 40 000»): de trenger brev eller Altinn.\n"
        f"Hver melding har en kontrollkode og er DKIM-signert; ingen lenker er klikkbare.\n\n"
        "Her kan du se nærmere:\n"
        f"  e-postene:     {mail}/*.eml\n"
        f"  lageret:       {store}\n"
        f"  status:        .venv/bin/varsel --db {store} campaign status {cid}\n"
        f"  segment:       .venv/bin/varsel --db {store} segment preview "
        "--police-district oslo --min-employees 5\n"
        f"Ferdig på {time.monotonic() - started:.0f} s."
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
