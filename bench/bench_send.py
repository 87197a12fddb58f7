"""The whole sender (`varsel campaign send`) against Postfix's smtp-sink, unsigned and signed.

    .venv/bin/python -m bench.bench_send [--deliveries 20000] [--runs 3] [--connections 16]

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
import contextlib
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.bench_message import all_cores, rate, raw_signer
from bench.bench_smtp import (
    HOST,
    RUN_TIMEOUT,
    SENDER,
    SMTP_SOURCE,
    ensure_postfix_tools,
    free_port,
    smtp_sink,
)
from bench.procs import peak_rss_kb
from varsel.builder import build_jobs, make_factory
from varsel.campaign import create_campaign, get_campaign
from varsel.channel.smtp_relay import RelayConfig
from varsel.clock import utcnow_iso
from varsel.config import Settings
from varsel.db import connect
from varsel.registry import import_dump
from varsel.send_config import message_spec
from varsel.sender import SendOptions, send_campaign
from varsel.synth import write_dump

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
class Run:
    """One measured run: messages per second and the CPU each process spent per message."""

    rate: float
    client_us: float  # smtp-source, or the sending process (all its threads)
    workers_us: float  # the sender's build processes, their start included; 0 for smtp-source
    sink_us: float
    rss_kb: int = 0  # peak RSS of the sending process
    workers_rss_kb: int = 0  # the largest peak RSS of its build processes


def build_store(directory: Path, deliveries: int) -> tuple[str, int, str]:
    """A store with a campaign of at least `deliveries` e-mails: (store, campaign id, key dir)."""
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


def message_size(store: str, campaign_id: int) -> int:
    """The mean size of the campaign's unsigned messages, over its first 200 deliveries."""
    with connect(store) as db:
        factory = make_factory(message_spec(get_campaign(db, campaign_id)), [])
        rows = db.query(
            "SELECT d.id, d.address, d.language, d.code, d.unsubscribe_token, r.orgnr, r.name, "
            "r.municipality FROM deliveries d JOIN delivery_units u ON u.delivery_id = d.id "
            "JOIN recipients r ON r.campaign_id = d.campaign_id AND r.orgnr = u.orgnr "
            "WHERE d.campaign_id = ? ORDER BY d.id LIMIT 200",
            (campaign_id,),
        )
    jobs = [
        (i, address, lang, code, token, ((orgnr, name, mun),))
        for i, address, lang, code, token, orgnr, name, mun in rows
    ]
    return round(statistics.mean(len(data) for data, _, _ in build_jobs(factory, jobs)))


def process_cpu(pid: int) -> float:
    """User and system seconds a running process has used (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def smtp_source(port: int, sink: int, messages: int, sessions: int, size: int) -> Run:
    """`smtp-source -d`: K sessions, each one connection reused for its messages."""
    command = [str(SMTP_SOURCE), "-d", "-s", str(sessions), "-m", str(messages), "-l", str(size)]
    command += ["-M", "varsel.example", "-f", SENDER, "-t", "mottaker@varsel.example"]
    cpu, sink_cpu = _children_cpu(), process_cpu(sink)
    started = time.perf_counter()
    subprocess.run([*command, f"{HOST}:{port}"], check=True, timeout=RUN_TIMEOUT)
    elapsed = time.perf_counter() - started
    return Run(
        messages / elapsed,
        (_children_cpu() - cpu) / messages * 1e6,
        0.0,
        (process_cpu(sink) - sink_cpu) / messages * 1e6,
    )


def send_command(store: str, campaign_id: int, keys: str, port: int, connections: int) -> list[str]:
    """The command line of one sender process (this module's --child mode)."""
    # -c rather than -m: a worker that multiprocessing spawns imports the parent's __main__
    # module unless it is a package's __main__ (as `python -m varsel` is), and this module
    # would bring the whole store and registry code into every build worker.
    return [
        sys.executable,
        "-c",
        "import sys; from bench.bench_send import child; child(sys.argv[1])",
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


def send(command: list[str], sign: bool, expected: int, sink: int) -> Run:
    """One sender process; checks that it sent exactly the queued deliveries."""
    sink_cpu = process_cpu(sink)
    done = subprocess.run(
        [*command[:-1], json.dumps({**json.loads(command[-1]), "sign": sign})],
        check=True,
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT,
    )
    sink_us = (process_cpu(sink) - sink_cpu) / expected * 1e6
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    if result["sent"] != expected or result["counts"]["sent"] != expected:
        sys.exit(f"the sender did not send all {expected} deliveries: {result}")
    return Run(
        expected / result["seconds"],
        result["cpu"] / expected * 1e6,
        result["workers_cpu"] / expected * 1e6,
        sink_us,
        result["rss_kb"],
        result["workers_rss_kb"],
    )


def child(arguments: str) -> None:
    """Send the campaign in this process, then print what happened as one JSON line."""
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
    workers_peak = [0]
    done = threading.Event()

    def watch_workers() -> None:
        # The build workers are gone when the send returns: their peaks are read as they run.
        while not done.wait(0.1):
            for pid in child_pids():
                workers_peak[0] = max(workers_peak[0], peak_rss_kb(pid))

    watcher = threading.Thread(target=watch_workers, daemon=True)
    watcher.start()
    with connect(given["store"]) as db:
        started, cpu = time.perf_counter(), time.process_time()
        report = send_campaign(db, settings, int(given["campaign"]), relay=relay, options=options)
        seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    done.set()
    watcher.join()
    workers = resource.getrusage(resource.RUSAGE_CHILDREN)
    result = {
        "sent": report.sent_now,
        "counts": report.counts,
        "seconds": seconds,
        "cpu": cpu,  # every thread of this process, during the send only
        "workers_cpu": workers.ru_utime + workers.ru_stime,
        "rss_kb": peak_rss_kb(os.getpid()),
        "workers_rss_kb": workers_peak[0],
    }
    print(json.dumps(result))


def child_pids() -> list[int]:
    """The processes this one started and that still run (Linux /proc)."""
    pids = []
    for children in Path("/proc/self/task").glob("*/children"):
        with contextlib.suppress(OSError):
            pids += [int(pid) for pid in children.read_text().split()]
    return pids


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _signatures(pem: bytes, seconds: float) -> float:
    return rate(raw_signer(pem), seconds)


def rsa_limit(key_file: Path) -> tuple[float, float]:
    """RSA-2048 signatures per second on all cores (bench_message's measurement), and the CPU
    µs one signature takes (this process, one core)."""
    pem = key_file.read_bytes()
    limit = all_cores(_signatures, pem, RSA_SECONDS)
    sign, count = raw_signer(pem), 0
    started = time.thread_time()
    while (spent := time.thread_time() - started) < RSA_SECONDS / 4:
        sign()
        count += 1
    return limit, spent / count * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0] if __doc__ else None)
    parser.add_argument("--deliveries", type=int, default=20_000, help="messages per run (N)")
    parser.add_argument("--runs", type=int, default=3, help="runs of each kind; medians shown")
    parser.add_argument("--connections", type=int, default=16, help="SMTP connections (K)")
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
    results: dict[str, list[Run]] = {"source": [], "unsigned": [], "signed": []}
    limits: list[float] = []
    rsa_cpu: list[float] = []  # CPU µs per RSA-2048 signature
    small: dict[bool, Run] = {}
    with tempfile.TemporaryDirectory(prefix="bench_send.") as folder:
        directory = Path(folder)
        started = time.perf_counter()
        store, campaign_id, keys = build_store(directory, n)
        setup = time.perf_counter() - started
        size = message_size(store, campaign_id)
        key_file = next(Path(keys).glob("*.pem"))  # the campaign's RSA-2048 DKIM key
        port = free_port()
        command = send_command(store, campaign_id, keys, port, k)
        with smtp_sink(port) as sink:
            # Not timed: the sink's first connections, the first imports of the sender.
            reset_outbox(store, campaign_id, 200)
            send(command, False, 200, sink.pid)
            # Rounds rather than one kind after another: whatever else the machine does then
            # falls on every row alike, and the ratios stay fair.
            for _ in range(runs):
                results["source"].append(smtp_source(port, sink.pid, n, k, size))
                limit, cpu = rsa_limit(key_file)
                limits.append(limit)
                rsa_cpu.append(cpu)
                for sign in (False, True):
                    reset_outbox(store, campaign_id, n)
                    run = send(command, sign, n, sink.pid)
                    results["signed" if sign else "unsigned"].append(run)
            for sign in (False, True):
                reset_outbox(store, campaign_id, quarter)
                small[sign] = send(command, sign, quarter, sink.pid)
    report(n, quarter, k, size, setup, results, limits, rsa_cpu, small)


def report(
    n: int,
    quarter: int,
    k: int,
    size: int,
    setup: float,
    results: dict[str, list[Run]],
    limits: list[float],
    rsa_cpu: list[float],
    small: dict[bool, Run],
) -> None:
    """Print the Markdown tables."""
    cores = os.cpu_count() or 1
    source = statistics.median(r.rate for r in results["source"])
    limit = statistics.median(limits)
    print(
        f"{n:,} personalised messages (~{size:,} bytes unsigned) over {k} connections to Postfix "
        f"smtp-sink on loopback, the outbox in SQLite committed as it goes; medians of "
        f"{len(limits)} runs on {cores} cores (load average {os.getloadavg()[0]:.2f} at the end; "
        f"store built in {setup:.0f} s).\n"
    )
    print(
        "| measure | per second | ratio | target | CPU µs/message: client, build workers, "
        "sink | CPU ratio | runs (per second) |"
    )
    print("|---|---:|---:|---|---:|---:|---|")
    rows = [
        (f"`smtp-source -d -s {k}` (reference)", "source", source, None),
        ("varsel send, unsigned", "unsigned", source, UNSIGNED_TARGET),
        ("varsel send, DKIM RSA-2048", "signed", limit, SIGNED_TARGET),
    ]
    parts = ("client_us", "workers_us", "sink_us")
    cpu_of = {
        key: [statistics.median(getattr(r, part) for r in runs) for part in parts]
        for key, runs in results.items()
    }
    signature_cpu = statistics.median(rsa_cpu)
    # What the rates would be if every process only ever waited for a core: the reference's
    # CPU per message over ours (all processes, the sink's included).
    reference_cpu = {"source": sum(cpu_of["source"]), "signed": signature_cpu}
    for name, key, reference, target in rows:
        runs = results[key]
        rate = statistics.median(r.rate for r in runs)
        cpu = ", ".join(f"{value:.0f}" for value in cpu_of[key])
        cpu_ratio = reference_cpu.get(key, reference_cpu["source"]) / sum(cpu_of[key])
        goal = (
            ""
            if target is None
            else f"≥ {target:.0%}: {'met' if rate >= target * reference else 'NOT met'}"
        )
        print(
            f"| {name} | {rate:,.0f} | {rate / reference:.2f} | {goal} | {cpu} | "
            f"{cpu_ratio:.2f} | {', '.join(f'{r.rate:,.0f}' for r in runs)} |"
        )
        if key == "unsigned":
            print(
                f"| RSA-2048 signatures, {cores} processes (reference) | {limit:,.0f} | 1.00 | | "
                f"{signature_cpu:.0f} per signature | 1.00 | "
                f"{', '.join(f'{v:,.0f}' for v in limits)} |"
            )
    print("\n| peak RSS, MB | sender at N/4 | sender at N | build worker at N/4 | at N |")
    print("|---|---:|---:|---:|---:|")
    for name, sign in (("unsigned", False), ("signed", True)):
        full = results["signed" if sign else "unsigned"]
        print(
            f"| {name} ({quarter:,} / {n:,}) | {small[sign].rss_kb / 1024:.0f} | "
            f"{max(r.rss_kb for r in full) / 1024:.0f} | {small[sign].workers_rss_kb / 1024:.0f} | "
            f"{max(r.workers_rss_kb for r in full) / 1024:.0f} |"
        )
    print(
        f"\nCommand: `.venv/bin/python -m bench.bench_send --deliveries {n} --runs {len(limits)} "
        f"--connections {k}`. Each send is `sender.send_campaign` in a new process, as "
        "`varsel campaign send` runs it, with the rate and per-domain limits lifted; its time "
        "is the whole call (lease, build workers' start, claims, building, SMTP, last commit). "
        "Its CPU is every thread of the sending process during the call; the build workers' "
        "includes their start. smtp-source waits for each reply and sends a fixed message. "
        "CPU ratio: the reference's CPU per message (smtp-source and sink; one RSA signature) "
        "over the send's (sender, build workers and sink): the rate ratio a machine would show "
        "if all of them only ever waited for a core."
    )


if __name__ == "__main__":
    main()
