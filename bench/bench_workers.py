"""`varsel worker` on PostgreSQL with 1, 2 and 4 workers, against the single SQLite sender.

    .venv/bin/python -m bench.bench_workers [--deliveries 20000] [--runs 3] [--connections 16]

Builds two stores from the same synthetic registry (Oslo, enough units for N e-mail
deliveries): a SQLite file for `campaign send` (the reference, as bench_send runs it) and a
PostgreSQL schema on the local server for the workers. Starts Postfix's `smtp-sink` on
127.0.0.1 and then, in rounds, each time with the outbox set back to N queued deliveries:
the single sender in one process, and K = 1, 2, 4 worker processes (`worker.run_worker`, each
with the given connections and its own build processes), unsigned and DKIM RSA-2048 signed.
A worker run's time runs from the first worker's start to the last one's end, both measured
inside the worker processes after their imports (as the single sender's is). The campaign's
limits are lifted (as in bench_send): the shared buckets are not consulted then, so this
measures claiming, leases, building, signing, SMTP and the outbox. Prints a Markdown table of
medians and their ratios to the single sender with the same signing.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import quote

import psycopg

from bench.bench_send import CAMPAIGN, UNITS_PER_DELIVERY, reset_outbox, send, send_command
from bench.bench_smtp import HOST, RUN_TIMEOUT, ensure_postfix_tools, free_port, smtp_sink
from varsel.campaign import create_campaign
from varsel.channel.smtp_relay import RelayConfig
from varsel.config import Settings
from varsel.db import connect
from varsel.leases import start_campaign
from varsel.registry import import_dump
from varsel.synth import write_dump

POSTGRES = os.environ.get("VARSEL_BENCH_POSTGRES", "postgresql://postgres@127.0.0.1:5432")
DATABASE = "varsel_bench"
WORKERS = (1, 2, 4)
LIFTED = """
[limits]
rate_per_second = 1000000000
per_domain_per_minute = 1000000000
per_domain_concurrency = {connections}
connections = {connections}
"""


def build_stores(directory: Path, deliveries: int, connections: int) -> tuple[str, int, str, str]:
    """(SQLite store, PostgreSQL URL, campaign id in both, key dir) with >= N deliveries."""
    dump = directory / "oslo.json.gz"
    write_dump(dump, units=deliveries * UNITS_PER_DELIVERY, seed=17, municipalities=("0301",))
    keys = str(directory / "keys")
    settings = Settings.load(environ={}, dkim_key_dir=keys)
    definition = directory / "campaign.toml"
    limits = LIFTED.format(connections=connections)
    definition.write_text(CAMPAIGN.replace("[segment]", limits + "[segment]"), "utf-8")
    with psycopg.connect(f"{POSTGRES}/postgres", autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (DATABASE,)).fetchone():
            conn.execute(f"CREATE DATABASE {DATABASE}")
    schema = f"bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(f"{POSTGRES}/{DATABASE}", autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    pg_url = f"{POSTGRES}/{DATABASE}?options={quote(f'-csearch_path={schema}')}"
    store = str(directory / "bench.db")
    ids = []
    for url in (store, pg_url):
        with connect(url) as db:
            import_dump(db, dump)
            result = create_campaign(db, settings, definition)
            if result.deliveries < deliveries:
                sys.exit(f"the registry gave {result.deliveries} deliveries, not {deliveries}")
            ids.append(result.campaign.id)
    if ids[0] != ids[1]:
        sys.exit("the two stores numbered the campaign differently")
    return store, pg_url, ids[0], keys


def drop_schema(pg_url: str) -> None:
    schema = pg_url.rsplit("search_path%3D", 1)[-1]
    with psycopg.connect(f"{POSTGRES}/{DATABASE}", autocommit=True) as conn:
        conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")


def reset_pg(pg_url: str, campaign_id: int, count: int) -> None:
    """The first `count` deliveries queued as new, the rest cancelled, handed to the workers."""
    with connect(pg_url) as db, db.transaction():
        last = db.scalar(
            "SELECT max(id) FROM (SELECT id FROM deliveries WHERE campaign_id = ? "
            "ORDER BY id LIMIT ?) AS first",
            (campaign_id, count),
        )
        db.execute(
            "UPDATE deliveries SET state = CASE WHEN id <= ? THEN 'queued' ELSE 'cancelled' "
            "END, attempts = 0, next_attempt_at = '2000-01-01T00:00:00.000Z', claimed_by = NULL, "
            "lease_until = NULL, data_started_at = NULL, sent_at = NULL, message_id = NULL, "
            "last_reply = NULL WHERE campaign_id = ?",
            (last, campaign_id),
        )
        db.execute(
            "UPDATE campaigns SET status = 'ready', sender_pid = NULL, sender_lease_until = NULL "
            "WHERE id = ?",
            (campaign_id,),
        )
        db.execute("DELETE FROM workers")
        db.execute("DELETE FROM send_buckets")
    with connect(pg_url) as db:
        db.execute("VACUUM ANALYZE deliveries")
        start_campaign(db, campaign_id)  # as `campaign start` does, past the approval gate


def workers_run(
    pg_url: str, campaign_id: int, keys: str, port: int, k: int, connections: int, sign: bool
) -> float:
    """K worker processes send the campaign; messages per second (and checks all were sent)."""
    given = {
        "url": pg_url,
        "campaign": campaign_id,
        "keys": keys,
        "port": port,
        "connections": connections,
        "sign": sign,
    }
    # -c rather than -m, as bench_send does: build workers do not import this module then.
    code = "import sys; from bench.bench_workers import child; child(sys.argv[1])"
    command = [sys.executable, "-c", code, json.dumps(given)]
    procs = [subprocess.Popen(command, stdout=subprocess.PIPE, text=True) for _ in range(k)]
    results = []
    for proc in procs:
        stdout, _ = proc.communicate(timeout=RUN_TIMEOUT)
        if proc.returncode != 0:
            sys.exit(f"a worker failed (exit status {proc.returncode})")
        results.append(json.loads(stdout.strip().splitlines()[-1]))
    with connect(pg_url) as db:
        sent, last = db.query_one(
            "SELECT count(*), max(sent_at) FROM deliveries WHERE campaign_id = ? "
            "AND state = 'sent'",
            (campaign_id,),
        ) or (0, None)
    if sent != sum(r["sent"] for r in results) or last is None:
        sys.exit(f"the workers reported {[r['sent'] for r in results]}, the store {sent}")
    # Until the last message was accepted: a worker with nothing left to claim waits (for the
    # others' retries) until the campaign is done, and that wait is not sending.
    end = dt.datetime.fromisoformat(last.replace("Z", "+00:00")).timestamp()
    return int(sent) / (end - min(r["start"] for r in results))


def child(arguments: str) -> None:
    """One worker in this process, until the campaign is done; prints one JSON line."""
    from varsel.worker import WorkerOptions, run_worker

    given = json.loads(arguments)
    settings = Settings.load(environ={}, database_url=given["url"], dkim_key_dir=given["keys"])
    relay = RelayConfig(HOST, int(given["port"]), "none", helo_name="varsel.example")
    options = WorkerOptions(
        campaign_id=int(given["campaign"]),
        connections=int(given["connections"]),
        sign=bool(given["sign"]),
    )
    start = time.time()
    report = run_worker(settings, relay, options)
    print(json.dumps({"sent": report.counts["sent"], "start": start, "end": time.time()}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0] if __doc__ else None)
    parser.add_argument("--deliveries", type=int, default=20_000, help="messages per run (N)")
    parser.add_argument("--runs", type=int, default=3, help="runs of each kind; medians shown")
    parser.add_argument("--connections", type=int, default=16, help="SMTP connections each")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child)
        return
    n, runs, c = args.deliveries, args.runs, args.connections
    if not 100 <= n <= 200_000 or not 1 <= runs <= 20 or not 1 <= c <= 64:
        sys.exit("--deliveries must be 100..200000, --runs 1..20 and --connections 1..64")
    ensure_postfix_tools()
    results: dict[str, list[float]] = {}
    with tempfile.TemporaryDirectory(prefix="bench_workers.") as folder:
        started = time.perf_counter()
        store, pg_url, cid, keys = build_stores(Path(folder), n, c)
        setup = time.perf_counter() - started
        port = free_port()
        single = send_command(store, cid, keys, port, c)
        try:
            with smtp_sink(port) as sink:
                reset_outbox(store, cid, 200)  # not timed: first connections and imports
                send(single, False, 200, sink.pid)
                for _ in range(runs):
                    for sign in (False, True):
                        kind = "signed" if sign else "unsigned"
                        reset_outbox(store, cid, n)
                        rate = send(single, sign, n, sink.pid).rate
                        results.setdefault(f"single {kind}", []).append(rate)
                        for k in WORKERS:
                            reset_pg(pg_url, cid, n)
                            rate = workers_run(pg_url, cid, keys, port, k, c, sign)
                            results.setdefault(f"{k} {kind}", []).append(rate)
        finally:
            drop_schema(pg_url)
    report(n, c, runs, setup, results)


def report(n: int, c: int, runs: int, setup: float, results: dict[str, Any]) -> None:
    cores = os.cpu_count() or 1
    print(
        f"{n:,} personalised messages to Postfix smtp-sink on loopback, {c} SMTP connections "
        f"per sender process, medians of {runs} runs on {cores} cores (load average "
        f"{os.getloadavg()[0]:.2f} at the end; stores built in {setup:.0f} s).\n"
    )
    print("| sender | unsigned msg/s | ratio | signed msg/s | ratio | runs (unsigned; signed) |")
    print("|---|---:|---:|---:|---:|---|")
    base = {kind: statistics.median(results[f"single {kind}"]) for kind in ("unsigned", "signed")}
    for name, key in [("`campaign send`, SQLite (reference)", "single")] + [
        (f"{k} × `varsel worker`, PostgreSQL", str(k)) for k in WORKERS
    ]:
        cells = []
        for kind in ("unsigned", "signed"):
            rate = statistics.median(results[f"{key} {kind}"])
            cells += [f"{rate:,.0f}", f"{rate / base[kind]:.2f}"]
        shown = "; ".join(
            ", ".join(f"{r:,.0f}" for r in results[f"{key} {kind}"])
            for kind in ("unsigned", "signed")
        )
        print(f"| {name} | {' | '.join(cells)} | {shown} |")
    print(
        f"\nCommand: `.venv/bin/python -m bench.bench_workers --deliveries {n} --runs {runs} "
        f"--connections {c}`."
    )


if __name__ == "__main__":
    main()
