"""Report generation (`report coverage` and `report evaluate`) for a pilot-sized campaign.

    .venv/bin/python -m bench.bench_report [--runs 5] [--db sqlite|postgresql] [--keep DIR]

Builds the pilot: a synthetic registry of Oslo, Bærum and Asker at the national density
(`registry synth`, seed 2023), imported into a fresh store, and the pilot's campaign (Oslo
police district, at least 2 employees: about 50,000 businesses). Then the outcomes a real
campaign gets, written to the store as the channels and public pages record them: the e-mails
accepted, bounced (with bounce reports), refused, in doubt; letters produced, posted, returned
or impossible; Altinn; code checks, document downloads, feedback with comments; suppressions.

Measured, median of N runs in this process: coverage (the query and its roll-ups) alone, and
the whole report (coverage + every count of the evaluation + the HTML file written). The PDF
(Typst) is timed once. Target: the whole report under 10 s.
"""

from __future__ import annotations

import argparse
import datetime as dt
import random
import secrets
import statistics
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import psycopg

from varsel import synth
from varsel.campaign import create_campaign
from varsel.clock import utcnow, utcnow_iso
from varsel.config import Settings
from varsel.coverage import coverage
from varsel.db import Database, connect
from varsel.evaluate import evaluate
from varsel.evaluate_render import build_view, render_pdf, write_report
from varsel.registry import import_dump

PILOT_AREA = ("0301", "3201", "3203")
NATIONAL_UNITS = 1_200_000
SEED = 2023
TARGET_SECONDS = 10.0
POSTGRES = "postgresql://postgres@127.0.0.1:5432/varsel_test"
CAMPAIGN = """
[campaign]
name = "Pilot: sikkerhetsråd til næringslivet"
[sender]
address = "sikkerhet@nsr-org.no"
name = "Næringslivets sikkerhetsråd"
organisation = "Oslo politidistrikt og NSR"
[document]
title = "Sikkerhetsråd for næringslivet"
url = "https://www.politiet.no/rad.pdf"
[public]
base_url = "https://www.politiet.no/varsel"
[segment]
police_district = ["oslo"]
min_employees = 2
"""
COMMENTS = (
    "Nyttig, takk!",
    "Fint at vi kunne sjekke koden først. Vi trodde det var svindel.",
    "Send heller brev neste gang.",
    "For lang tekst.",
    "Godt tiltak – del gjerne mer om falske fakturaer.",
)


def build(directory: Path, url: str) -> tuple[Database, int, float]:
    """The pilot's campaign with realistic outcomes; returns the store, its id and seconds."""
    started = time.monotonic()
    dump = directory / "enheter.json.gz"
    units = round(NATIONAL_UNITS * synth.area_share(PILOT_AREA))
    synth.write_dump(dump, units=units, seed=SEED, municipalities=PILOT_AREA)
    db = connect(url)
    import_dump(db, dump)
    toml = directory / "pilot.toml"
    toml.write_text(CAMPAIGN, "utf-8")
    settings = Settings.load(environ={}, dkim_key_dir=str(directory / "keys"))
    cid = create_campaign(db, settings, toml).campaign.id
    outcomes(db, cid, random.Random(SEED))
    return db, cid, time.monotonic() - started


def outcomes(db: Database, cid: int, rnd: random.Random) -> None:
    """What a sent campaign looks like a few weeks later."""
    now = utcnow_iso()
    email = db.query(
        "SELECT id, address, code FROM deliveries WHERE campaign_id = ? AND channel = 'email' "
        "AND state = 'queued' ORDER BY id",
        (cid,),
    )
    states: dict[str, list[int]] = {}
    for delivery_id, _, _ in email:
        r = rnd.random()
        state = (
            "bounced"
            if r < 0.04
            else "failed"
            if r < 0.055
            else "in_doubt"
            if r < 0.057
            else "sent"
        )
        states.setdefault(state, []).append(int(delivery_id))
    with db.transaction():
        for state, ids in states.items():
            for start in range(0, len(ids), 500):
                chunk = ids[start : start + 500]
                db.execute(
                    f"UPDATE deliveries SET state = ?, sent_at = ?, last_reply = ? "
                    f"WHERE id IN ({', '.join('?' for _ in chunk)})",
                    (state, now, "550 5.1.1 User unknown" if state == "failed" else None, *chunk),
                )
        bounces = [
            (
                f"mid:<{uuid.uuid4().hex}@mx>",
                now,
                rnd.choice(("hard", "hard", "hard", "complaint")),
                d,
                rnd.choice(("5.1.1", "5.1.1", "5.1.2", "5.2.1")),
                None,
                "imap",
            )
            for d in states.get("bounced", [])
        ]
        bounces += [
            (f"mid:<{uuid.uuid4().hex}@mx>", now, kind, d, status, None, "imap")
            for d in rnd.sample(states["sent"], len(states["sent"]) // 25)
            for kind, status in [rnd.choice((("soft", "4.2.2"), ("auto_reply", None)))]
        ]
        db.insert_rows(
            "bounce_messages",
            ("key", "received_at", "kind", "delivery_id", "status", "recipient", "source"),
            bounces,
        )
        _letters_and_altinn(db, cid, rnd, now)
        _engagement(db, cid, rnd, email, set(states["sent"]))


def _letters_and_altinn(db: Database, cid: int, rnd: random.Random, now: str) -> None:
    need = [
        r[0]
        for r in db.query(
            "SELECT r.orgnr FROM recipients r WHERE r.campaign_id = ? AND NOT EXISTS ("
            "SELECT 1 FROM delivery_units du JOIN deliveries d ON d.id = du.delivery_id "
            "WHERE d.campaign_id = r.campaign_id AND du.orgnr = r.orgnr AND d.state = 'sent')",
            (cid,),
        )
    ]
    rows: list[tuple[Any, ...]] = []
    for orgnr in need:
        r = rnd.random()
        if r < 0.05:
            channel, state, why = "altinn", rnd.choice(("delivered", "delivered", "failed")), None
        elif r < 0.85:
            channel, why = "letter", None
            state = rnd.choice(("posted",) * 8 + ("returned", "produced"))
        elif r < 0.87:
            channel, state, why = "letter", "failed", "no_postal_address"
        else:
            continue
        rows.append(
            (cid, channel, orgnr, orgnr, "nb", state, secrets.token_hex(8), "t", why, now, now)
        )
    db.insert_rows(
        "deliveries",
        (
            "campaign_id",
            "channel",
            "key",
            "address",
            "language",
            "state",
            "code",
            "unsubscribe_token",
            "last_reply",
            "created_at",
            "updated_at",
        ),
        rows,
    )
    db.execute(
        "INSERT INTO delivery_units (delivery_id, orgnr) SELECT id, address FROM deliveries "
        "WHERE campaign_id = ? AND channel IN ('letter', 'altinn')",
        (cid,),
    )
    db.insert_rows(
        "suppressions",
        ("kind", "value", "reason", "source", "created_at"),
        [("unit", o, "manual", "bench", now) for o in rnd.sample(need, len(need) // 200)],
    )


def _engagement(
    db: Database, cid: int, rnd: random.Random, email: list[Any], sent: set[int]
) -> None:
    now = utcnow_iso()
    # An hour after the checks: these downloads came after a check.
    later = (utcnow() + dt.timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%S.000Z")
    events: list[tuple[Any, ...]] = []
    requests: list[tuple[Any, ...]] = []
    feedback: list[tuple[Any, ...]] = []
    for delivery_id, address, _ in email:
        if delivery_id not in sent or rnd.random() > 0.22:
            continue
        events.append((now, cid, delivery_id, "verify_ok", None))
        if rnd.random() < 0.4:
            requests.append((cid, address, now, later, later if rnd.random() < 0.8 else now))
        if rnd.random() < 0.15:
            comment = rnd.choice(COMMENTS) if rnd.random() < 0.4 else None
            feedback.append(
                (now, cid, delivery_id, rnd.randint(1, 5), rnd.random() < 0.8, None, comment, "nb")
            )
    db.insert_rows("events", ("at", "campaign_id", "delivery_id", "kind", "detail"), events)
    db.insert_rows(
        "document_requests",
        ("campaign_id", "address", "created_at", "expires_at", "downloaded_at"),
        requests,
    )
    db.insert_rows(
        "feedback",
        (
            "at",
            "campaign_id",
            "delivery_id",
            "usefulness",
            "relevant",
            "channel",
            "comment",
            "language",
        ),
        feedback,
    )


def timed(runs: int, work: Any) -> list[float]:
    out = []
    for _ in range(runs):
        started = time.perf_counter()
        work()
        out.append(time.perf_counter() - started)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--db", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument(
        "--keep",
        type=Path,
        help="Build in this folder and keep it; a SQLite store kept there is reused.",
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench_report") as tmp:
        directory = args.keep or Path(tmp)
        directory.mkdir(parents=True, exist_ok=True)
        schema = None
        if args.db == "postgresql":
            schema = f"bench_{uuid.uuid4().hex[:10]}"
            with psycopg.connect(POSTGRES, autocommit=True) as conn:
                conn.execute(f"CREATE SCHEMA {schema}")
            url = f"{POSTGRES}?options=-csearch_path%3D{schema}"
        else:
            url = str(directory / "varsel.db")
        try:
            if args.db == "sqlite" and (directory / "varsel.db").exists():
                db, cid, build_s = connect(url), 1, 0.0
            else:
                db, cid, build_s = build(directory, url)
            run(db, cid, directory, args, build_s)
            db.close()
        finally:
            if schema:
                with psycopg.connect(POSTGRES, autocommit=True) as conn:
                    conn.execute(f"DROP SCHEMA {schema} CASCADE")


def run(db: Database, cid: int, directory: Path, args: Any, build_s: float) -> None:
    cov = coverage(db, cid)
    html = directory / "rapport.html"

    def whole() -> None:
        write_report(evaluate(db, cid), html)

    cov_runs = timed(args.runs, lambda: coverage(db, cid))
    report_runs = timed(args.runs, whole)
    ev = evaluate(db, cid)
    started = time.perf_counter()
    pdf = render_pdf(build_view(ev))
    pdf_s = time.perf_counter() - started
    median = statistics.median(report_runs)
    print(
        f"Campaign {cid} on {args.db}: {cov.units:,} units, "
        f"{ev.funnel.valid:,} with e-mail, {ev.letters.units:,} letters, "
        f"{ev.checks.lookups:,} code checks, {ev.feedback.answers:,} answers "
        f"(built in {build_s:.0f} s)\n"
    )
    print("| what | median s | runs (s) |")
    print("|---|---:|---|")
    print(f"| coverage | {statistics.median(cov_runs):.2f} | {_runs(cov_runs)} |")
    print(f"| whole report, HTML | {median:.2f} | {_runs(report_runs)} |")
    print(f"| PDF (Typst), once | {pdf_s:.2f} | {len(pdf) / 1e3:.0f} kB |")
    print(
        f"\nHTML {html.stat().st_size / 1e3:.0f} kB. Target whole report < {TARGET_SECONDS:.0f} s: "
        f"{'met' if median < TARGET_SECONDS else 'NOT met'}."
    )


def _runs(values: list[float]) -> str:
    return ", ".join(f"{v:.2f}" for v in values)


if __name__ == "__main__":
    main()
