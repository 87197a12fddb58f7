"""The whole sender (`varsel campaign send`) against Postfix's smtp-sink, unsigned and signed.

    .venv/bin/python -m bench.bench_send [--deliveries 20000] [--runs 3] [--connections 8]

Builds a SQLite store from a synthetic registry (Oslo, enough units for N e-mail deliveries),
creates a campaign on it, starts `smtp-sink` on 127.0.0.1 (as bench_smtp does), and then, in
rounds, each time with the outbox set back to N queued deliveries:
- `smtp-source -d`: K sessions in C sending N messages of the campaign's message size (the
  reference for unsigned sending);
- the RSA-2048 signing limit: os.cpu_count() processes signing a fixed payload for a fixed time
  with `cryptography` (the reference for signed sending, as bench_message measures it);
- `sender.send_campaign` unsigned (SendOptions.sign=False) and DKIM RSA-2048 signed, each in a
  fresh process that reports its own peak RSS and its build workers'.
Every message is personalised (name, code, unsubscribe link) and every outcome is committed to
the outbox as it goes. One run at N/4 of each kind shows whether memory grows with the campaign.
Prints a Markdown table of medians and their ratios to the references.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.bench_message import _raw_worker, all_cores
from bench.bench_smtp import (
    HOST,
    RUN_TIMEOUT,
    SENDER,
    SMTP_SOURCE,
    ensure_postfix_tools,
    free_port,
    smtp_sink,
)

CAMPAIGN = """
[campaign]
name = "Benchmark"
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
"""
# In the synthetic registry about one unit in five has a usable e-mail address of its own.
UNITS_PER_DELIVERY = 6
RSA_SECONDS = 2.0  # each measurement of the signing limit
UNSIGNED_TARGET = 0.50  # of smtp-source -d
SIGNED_TARGET = 0.70  # of the all-core RSA-2048 signing limit


@dataclass(frozen=True)
class SendRun:
    """One run of the sender, as its process reported it."""

    sent: int
    seconds: float
    rss_kb: int  # peak RSS of the sending process
    workers_rss_kb: int  # the largest peak RSS of its build processes

    @property
    def rate(self) -> float:
        return self.sent / self.seconds


def build_store(directory: Path, deliveries: int) -> tuple[str, int, str]:
    """A store with a campaign of at least `deliveries` e-mails: (store, campaign id, key dir)."""
    from varsel.campaign import create_campaign
    from varsel.config import Settings
    from varsel.db import connect
    from varsel.registry import import_dump
    from varsel.synth import write_dump

    dump = directory / "oslo.json.gz"
    write_dump(dump, units=deliveries * UNITS_PER_DELIVERY, seed=17, municipalities=("0301",))
    store = str(directory / "bench.db")
    keys = str(directory / "keys")
    with connect(store) as db:
        import_dump(db, dump)
        definition = directory / "campaign.toml"
        definition.write_text(CAMPAIGN, "utf-8")
        result = create_campaign(db, Settings.load(environ={}, dkim_key_dir=keys), definition)
    if result.deliveries < deliveries:
        sys.exit(f"the synthetic registry gave {result.deliveries} deliveries, not {deliveries}")
    return store, result.campaign.id, keys


def reset_outbox(store: str, campaign_id: int, count: int) -> None:
    """The first `count` deliveries queued as if never sent, the rest cancelled (not sent)."""
    from varsel.clock import utcnow_iso
    from varsel.db import connect

    now = utcnow_iso()
    with connect(store) as db:
        with db.transaction():
            last = db.scalar(
                "SELECT max(id) FROM (SELECT id FROM deliveries WHERE campaign_id = ? "
                "ORDER BY id LIMIT ?)",
                (campaign_id, count),
            )
            db.execute(
                "UPDATE deliveries SET state = CASE WHEN id <= ? THEN 'queued' ELSE 'cancelled' "
                "END, attempts = 0, next_attempt_at = ?, claimed_by = NULL, lease_until = NULL, "
                "data_started_at = NULL, sent_at = NULL, message_id = NULL, last_reply = NULL, "
                "updated_at = ? WHERE campaign_id = ?",
                (last, now, now, campaign_id),
            )
            db.execute(
                "UPDATE campaigns SET status = 'ready', sender_pid = NULL, "
                "sender_lease_until = NULL WHERE id = ?",
                (campaign_id,),
            )
        # Every run starts with an empty write-ahead log, not with the last run's.
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")


def message_size(store: str, campaign_id: int, keys: str) -> int:
    """The mean size of the campaign's unsigned messages, over its first 200 deliveries."""
    from varsel.campaign import get_campaign
    from varsel.db import connect
    from varsel.message import Recipient, UnitRef
    from varsel.sender import make_factory, message_spec

    with connect(store) as db:
        factory = make_factory(message_spec(get_campaign(db, campaign_id)), [])
        rows = db.query(
            "SELECT d.id, d.address, d.language, d.code, d.unsubscribe_token, r.orgnr, r.name "
            "FROM deliveries d JOIN delivery_units u ON u.delivery_id = d.id "
            "JOIN recipients r ON r.campaign_id = d.campaign_id AND r.orgnr = u.orgnr "
            "WHERE d.campaign_id = ? ORDER BY d.id LIMIT 200",
            (campaign_id,),
        )
    sizes = [
        len(
            factory.build(
                Recipient(i, address, (UnitRef(orgnr, name, "Oslo"),), lang, code, token)
            )
        )
        for i, address, lang, code, token, orgnr, name in rows
    ]
    return round(statistics.mean(sizes))


def smtp_source(port: int, messages: int, sessions: int, size: int) -> float:
    """Messages per second of `smtp-source -d` (one connection per session, reused)."""
    command = [str(SMTP_SOURCE), "-d", "-s", str(sessions), "-m", str(messages), "-l", str(size)]
    command += ["-M", "varsel.example", "-f", SENDER, "-t", "mottaker@varsel.example"]
    started = time.perf_counter()
    subprocess.run([*command, f"{HOST}:{port}"], check=True, timeout=RUN_TIMEOUT)
    return messages / (time.perf_counter() - started)


def send_command(store: str, campaign_id: int, keys: str, port: int, connections: int) -> list[str]:
    """The command line of one sender process (this module's --child mode)."""
    return [
        sys.executable,
        "-m",
        "bench.bench_send",
        "--child",
        json.dumps(
            {
                "store": store,
                "campaign": campaign_id,
                "keys": keys,
                "port": port,
                "connections": connections,
            }
        ),
    ]


def send(command: list[str], sign: bool, expected: int) -> SendRun:
    """One sender process; checks that it sent exactly the queued deliveries."""
    done = subprocess.run(
        [*command[:-1], json.dumps({**json.loads(command[-1]), "sign": sign})],
        check=True,
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT,
    )
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    if result["sent"] != expected or result["counts"]["sent"] != expected:
        sys.exit(f"the sender did not send all {expected} deliveries: {result}")
    return SendRun(result["sent"], result["seconds"], result["rss_kb"], result["workers_rss_kb"])


def child(arguments: str) -> None:
    """Send the campaign in this process, then print what happened as one JSON line."""
    from varsel.channel.smtp import RelayConfig
    from varsel.config import Settings
    from varsel.db import connect
    from varsel.sender import SendOptions, send_campaign

    given = json.loads(arguments)
    connections = int(given["connections"])
    options = SendOptions(
        connections=connections,
        # The benchmark measures the sender, not the limits that protect real relays.
        rate_per_second=1e9,
        per_domain_concurrency=connections,
        per_domain_per_minute=10**9,
        sign=bool(given["sign"]),
    )
    relay = RelayConfig(HOST, int(given["port"]), "none", helo_name="varsel.example")
    settings = Settings.load(environ={}, dkim_key_dir=given["keys"])
    with connect(given["store"]) as db:
        started = time.perf_counter()
        report = send_campaign(db, settings, int(given["campaign"]), relay=relay, options=options)
        seconds = time.perf_counter() - started
    result = {
        "sent": report.sent_now,
        "seconds": seconds,
        "counts": report.counts,
        "rss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
        "workers_rss_kb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss,
    }
    print(json.dumps(result))


def rsa_limit(key_file: Path) -> float:
    """RSA-2048 signatures per second on all cores (bench_message's measurement)."""
    return all_cores(_raw_worker, key_file.read_bytes(), RSA_SECONDS)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0] if __doc__ else None)
    parser.add_argument("--deliveries", type=int, default=20_000, help="messages per run (N)")
    parser.add_argument("--runs", type=int, default=3, help="runs of each kind; medians shown")
    parser.add_argument("--connections", type=int, default=8, help="SMTP connections (K)")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child)
        return
    n, runs, k = args.deliveries, args.runs, args.connections
    if not 100 <= n <= 200_000 or not 1 <= runs <= 20 or not 1 <= k <= 64:
        sys.exit("--deliveries must be 100..200000, --runs 1..20 and --connections 1..64")
    ensure_postfix_tools()
    quarter = max(1, n // 4)
    with tempfile.TemporaryDirectory(prefix="bench_send.") as folder:
        directory = Path(folder)
        started = time.perf_counter()
        store, campaign_id, keys = build_store(directory, n)
        setup = time.perf_counter() - started
        size = message_size(store, campaign_id, keys)
        key_file = next(Path(keys).glob("*.pem"))  # the campaign's RSA-2048 DKIM key
        port = free_port()
        command = send_command(store, campaign_id, keys, port, k)
        source: list[float] = []
        limit: list[float] = []
        unsigned: list[SendRun] = []
        signed: list[SendRun] = []
        small: dict[bool, SendRun] = {}
        with smtp_sink(port):
            # Not timed: the sink's first connections, the first imports of the sender.
            reset_outbox(store, campaign_id, 200)
            send(command, False, 200)
            # Rounds rather than one kind after another: whatever else the machine does then
            # falls on every row alike, and the ratios stay fair.
            for _ in range(runs):
                source.append(smtp_source(port, n, k, size))
                limit.append(rsa_limit(key_file))
                for sign, into in ((False, unsigned), (True, signed)):
                    reset_outbox(store, campaign_id, n)
                    into.append(send(command, sign, n))
            for sign in (False, True):
                reset_outbox(store, campaign_id, quarter)
                small[sign] = send(command, sign, quarter)
    report(n, quarter, k, size, setup, source, limit, unsigned, signed, small)


def report(
    n: int,
    quarter: int,
    k: int,
    size: int,
    setup: float,
    source: list[float],
    limit: list[float],
    unsigned: list[SendRun],
    signed: list[SendRun],
    small: dict[bool, SendRun],
) -> None:
    """Print the Markdown table."""
    source_rate, limit_rate = statistics.median(source), statistics.median(limit)
    unsigned_rate = statistics.median(r.rate for r in unsigned)
    signed_rate = statistics.median(r.rate for r in signed)
    cores = os.cpu_count() or 1

    def runs(values: list[float]) -> str:
        return ", ".join(f"{v:,.0f}" for v in values)

    def verdict(ratio: float, target: float) -> str:
        return f"{'met' if ratio >= target else 'NOT met'} (≥ {target:.0%})"

    print(
        f"{n:,} personalised messages (~{size:,} bytes unsigned) over {k} connections to Postfix "
        f"smtp-sink on loopback, outbox in SQLite committed as it goes; medians of "
        f"{len(source)} runs; {cores} cores; load average {os.getloadavg()[0]:.2f} at the end; "
        f"store built in {setup:.0f} s.\n"
    )
    print("| measure | per second | ratio | target | runs (per second) |")
    print("|---|---:|---:|---|---|")
    print(f"| `smtp-source -d -s {k}` (reference) | {source_rate:,.0f} | 1.00 | | {runs(source)} |")
    print(
        f"| varsel send, unsigned | {unsigned_rate:,.0f} | {unsigned_rate / source_rate:.2f} | "
        f"{verdict(unsigned_rate / source_rate, UNSIGNED_TARGET)} | "
        f"{runs([r.rate for r in unsigned])} |"
    )
    print(
        f"| RSA-2048 signatures, {cores} cores (reference) | {limit_rate:,.0f} | 1.00 | | "
        f"{runs(limit)} |"
    )
    print(
        f"| varsel send, DKIM RSA-2048 | {signed_rate:,.0f} | {signed_rate / limit_rate:.2f} | "
        f"{verdict(signed_rate / limit_rate, SIGNED_TARGET)} | {runs([r.rate for r in signed])} |"
    )
    print("\n| peak RSS (MB) | sender at N/4 | sender at N | build worker at N/4 | at N |")
    print("|---|---:|---:|---:|---:|")
    for name, sign, full in (("unsigned", False, unsigned), ("signed", True, signed)):
        big = max(r.rss_kb for r in full) / 1024
        big_workers = max(r.workers_rss_kb for r in full) / 1024
        print(
            f"| {name} ({quarter:,} / {n:,}) | {small[sign].rss_kb / 1024:.0f} | {big:.0f} | "
            f"{small[sign].workers_rss_kb / 1024:.0f} | {big_workers:.0f} |"
        )
    print(
        f"\nCommand: `.venv/bin/python -m bench.bench_send --deliveries {n} --runs {len(source)} "
        f"--connections {k}`. The sender runs `sender.send_campaign` in a fresh process (as "
        "`varsel campaign send` does) with rate and per-domain limits lifted; its time is the "
        "whole call: lease, pool start, claims, building, SMTP and the final commit."
    )


if __name__ == "__main__":
    main()
