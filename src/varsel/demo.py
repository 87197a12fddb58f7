"""`make demo`: the Oslo pilot of January 2023, end to end on embedded defaults.

Synthesises the registry for Oslo, Bærum and Asker in full, imports it into a fresh SQLite
store under ./demo, previews the pilot's segment, makes two operator accounts (demo-only
passwords; TOTP codes generated here, as an authenticator app would), creates the pilot's
campaign from examples/pilot.toml as one of them, shows that it cannot be sent before the
other approves it, has the other approve it, and sends it to a built-in SMTP server on
loopback that keeps every message as an .eml file under ./demo/mail. Nothing leaves this
machine.
"""

from __future__ import annotations

import shutil
import sys
import time
from pathlib import Path

import pyotp
from rich.console import Console
from rich.text import Text as Styled  # Text(...) is errors.Text to the catalogs

from varsel import audit, synth
from varsel.accounts import Role, User, add_user
from varsel.approval import Approval, ApprovalError, approve, require_approved
from varsel.campaign import create_campaign
from varsel.channel.smtp_relay import RelayConfig
from varsel.config import Settings
from varsel.db import Database, connect
from varsel.i18n import fmt_count, fmt_int, fmt_share
from varsel.progress import counts_bar, progress_bar
from varsel.registry import import_dump
from varsel.segment import preview
from varsel.segment_criteria import Criteria
from varsel.segment_view import render_preview
from varsel.send_gate import send_checked
from varsel.sender import SendOptions
from varsel.signin import confirm_totp, verify_credentials
from varsel.testing import SmtpSink

PILOT_AREA = ("0301", "3201", "3203")
NATIONAL_UNITS = 1_200_000
SEED = 2023
EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "pilot.toml"
# DEMO ONLY: fixed passwords for the two demo accounts in the throw-away store under ./demo.
# Never use these anywhere else; real accounts get their passwords from `varsel user add`.
DEMO_AUTHOR = ("demo-kari", "demo-passord-kari-ikke-ekte")
DEMO_APPROVER = ("demo-berit", "demo-passord-berit-ikke-ekte")


def _demo_operator(db: Database, settings: Settings, name: str, password: str, role: Role) -> str:
    """DEMO ONLY: an enrolled account; returns its TOTP secret, for codes made here."""
    enrolment = add_user(db, settings, name, role, password, actor="demo")
    confirm_totp(db, settings, name, password, pyotp.TOTP(enrolment.secret).now())
    return enrolment.secret


def _demo_sign_in(db: Database, settings: Settings, name: str, password: str, secret: str) -> User:
    # A code is accepted once; the next time step's code (one step ahead is allowed for clock
    # drift) stands in for the code the app would show half a minute later.
    code = pyotp.TOTP(secret).at(time.time() + 30)
    return verify_credentials(db, settings, name, password, code, via="demo")


def _four_eyes(
    db: Database, settings: Settings, console: Console, cid: int, author: User, secret: str
) -> Approval:
    """Show that the campaign is refused unapproved and self-approved; then approve it."""
    try:
        require_approved(db, cid)
    except ApprovalError as e:
        console.print(Styled.assemble(("Nei:", "red"), " ", e.message), soft_wrap=True)
    try:
        approve(db, settings, cid, author)
    except ApprovalError as e:
        console.print(Styled.assemble(("Nei:", "red"), " ", e.message), soft_wrap=True)
    approver = _demo_sign_in(db, settings, *DEMO_APPROVER, secret)
    approval = approve(db, settings, cid, approver)
    console.print(
        Styled.assemble(
            ("Godkjent", "green"),
            f" av {approval.approved_by}: fingeravtrykk {approval.digest[:16]}… over malene, "
            "avsender, dokument, lenkeregler, utvalg og mottakerlisten.",
        ),
        soft_wrap=True,
    )
    return approval


def _evidence(db: Database, console: Console, cid: int, out: Path) -> Path:
    """Show the campaign's coverage and write its evaluation report."""
    # cli.py registers the command modules at its end, so it is imported before one of them.
    import varsel.cli  # noqa: F401
    from varsel.cli_report import render_coverage
    from varsel.coverage import coverage
    from varsel.evaluate import evaluate
    from varsel.evaluate_render import write_report

    console.rule("Dekning: ett utfall for hver valgte virksomhet")
    render_coverage(console, coverage(db, cid), rollups=False)
    write_report(evaluate(db, cid), out)
    return out


def main(folder: Path = Path("demo")) -> int:
    """Run the demo; returns the exit status."""
    console = Console(highlight=False, markup=False, emoji=False)
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

        console.rule("Operatører (bare for demoen): forfatter og godkjenner, passord + TOTP")
        # Kari may approve too, but never her own campaign: that is the point of four eyes.
        author_secret = _demo_operator(db, settings, *DEMO_AUTHOR, Role.APPROVER)
        approver_secret = _demo_operator(db, settings, *DEMO_APPROVER, Role.APPROVER)
        console.print(
            f"{DEMO_AUTHOR[0]} skriver kampanjen; {DEMO_APPROVER[0]} godkjenner den. Passordene "
            "er faste og TOTP-kodene lages av demoen selv: bare for demoen."
        )
        author = _demo_sign_in(db, settings, *DEMO_AUTHOR, author_secret)

        console.rule(f"Kampanje fra {EXAMPLE.relative_to(EXAMPLE.parents[1])}")
        created = create_campaign(db, settings, EXAMPLE, created_by=author.name)
        console.print(created.summary(), soft_wrap=True)
        cid = created.campaign.id

        console.rule("Fire øyne: ingen sender alene")
        approval = _four_eyes(db, settings, console, cid, author, approver_secret)

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
                report = send_checked(
                    db,
                    settings,
                    cid,
                    actor=author.name,
                    relay=RelayConfig.from_url(sink.url),
                    options=options,
                    progress=progress,
                )
            received = len(sink.messages)
        console.print(report.summary())

        evaluation = _evidence(db, console, cid, folder / "evaluering.html")
        chain = audit.verify(db)
    finally:
        db.close()

    sent = report.counts["sent"]
    console.rule("Sammendrag, i artikkelens tall")
    console.print(
        f"Valgt: {fmt_count(p.units, 'virksomhet', 'virksomheter')} med minst to ansatte i Oslo, "
        "Bærum og Asker (artikkelen: «rundt 50 000»).\n"
        f"Kan nås på e-post: {fmt_int(p.reachability['email'])} "
        f"({fmt_share(p.reachability['email'], p.units)}; artikkelen: «rundt 10 000»).\n"
        f"Sendt: {fmt_count(sent, 'e-post', 'e-poster')} til "
        f"{fmt_count(created.deliveries, 'adresse', 'adresser')} "
        f"(noen adresser deles av flere virksomheter: {fmt_int(created.shared_addresses)}); "
        f"SMTP-tjeneren tok imot {fmt_int(received)}.\n"
        f"Ikke nådd på e-post: {fmt_int(p.units - p.reachability['email'])} "
        "(artikkelen: «rundt 40 000»): de trenger brev eller Altinn.\n"
        f"Hver melding har en kontrollkode og er DKIM-signert; ingen lenker er klikkbare.\n"
        f"Godkjent av {approval.approved_by}, skrevet av {author.name}. {chain.summary()}\n\n"
        "Her kan du se nærmere:\n"
        f"  e-postene:     {mail}/*.eml\n"
        f"  lageret:       {store}\n"
        f"  status:        .venv/bin/varsel --db {store} campaign status {cid}\n"
        f"  revisjonslogg: .venv/bin/varsel --db {store} audit show\n"
        f"  evaluering:    {evaluation}\n"
        f"  brev:          .venv/bin/varsel --db {store} letters {cid} --out {folder}/brev\n"
        f"  segment:       .venv/bin/varsel --db {store} segment preview "
        "--police-district oslo --min-employees 5\n"
        f"Ferdig på {time.monotonic() - started:.0f} s.",
        soft_wrap=True,  # the commands and paths above are for copying: never wrapped
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
