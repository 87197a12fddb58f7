"""`/kontroll` with a valid code under wrk, against bare Starlette routes served the same way.

    .venv/bin/python -m bench.bench_web [--runs 3] [--seconds 5] [--connections 8]
                                        [--workers 1] [--store sqlite|postgresql]
                                        [--server uvloop,httptools]

Builds a store from a synthetic registry (Oslo), creates a campaign and marks its deliveries
sent one after another over the last hour, then serves three apps on loopback, each through
varsel.web.serve as `varsel serve` does (uvicorn with uvloop and httptools, no access log,
the same number of workers; `--server asyncio,h11` for uvicorn's pure-Python loop and HTTP):
- Starlette's hello world: one async route at /kontroll returning a short text (the
  reference for the target: /kontroll is an async view too);
- the same with a sync route, run in Starlette's thread pool as /kontroll once was;
- the real public site (`varsel.web:app_from_environment`), limits raised so that no lookup is
  refused, but every lookup is still counted against both limits and recorded as an event;
- the floor: a bare ASGI app that answers every request with the real site's genuine page for
  the first code, as the fixed bytes and headers the site sends (no Starlette, no lookup, no
  page filled in). It is what uvicorn and the sockets cost for this page alone; the real
  site's cost above it is varsel's own work per lookup.
Then what guessing costs, after those runs: the real site loaded the same way with unknown
codes from as many visitors (limits raised: every answer the unknown-code page, 404), and
with one visitor past its per-IP limit (every answer the limit page, 429).
`wrk` (Debian's; installed when missing) loads each in turn, alternating, `--runs` times, each
request for the next of `--codes` genuine codes from the next of as many visitors (their
addresses in X-Forwarded-For, which uvicorn trusts from 127.0.0.1), and the medians of
requests per second and of the p50/p99 latencies are compared. Also reports the server's CPU
time per request (from /proc: steadier than wall time on a shared machine), its ratio to the
reference's, and checks that the events and limit counters account for every request wrk saw
answered.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import quote

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from bench.bench_send import CAMPAIGN  # the same campaign as the send benchmark
from varsel import codes
from varsel.campaign import create_campaign
from varsel.config import Settings
from varsel.db import connect
from varsel.registry import import_dump
from varsel.synth import write_dump

HOST = "127.0.0.1"
PRODUCTION = "uvloop,httptools"  # varsel.web.serve's defaults
TARGET = 0.50  # of the bare route's requests per second
START_TIMEOUT = 30.0
POSTGRES = os.environ.get("VARSEL_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432")


# wrk asks for each code in turn, each from another visitor: a page per recipient, as in life,
# not one page over and over. The visitor's address goes in X-Forwarded-For, which uvicorn
# trusts from 127.0.0.1 (its default --forwarded-allow-ips), so the limits count visitors.
ROTATE = """
local paths, visitors, i = {}, {}, 0
function init(args)
  for line in io.lines(args[1]) do
    local path, visitor = line:match("([^ ]+) ([^ ]+)")
    paths[#paths + 1] = path
    visitors[#visitors + 1] = visitor
  end
end
function request()
  i = i % #paths + 1
  return wrk.format(nil, paths[i], {["X-Forwarded-For"] = visitors[i]})
end
"""


def visitor(n: int) -> str:
    """The n-th visitor's address, in 198.18.0.0/15 (RFC 2544's, for benchmarks)."""
    return f"198.{18 + n // 64000}.{n // 250 % 256}.{n % 250 + 1}"


def bare_app() -> Starlette:
    """One plain (sync) Starlette route, run in the thread pool as /kontroll once was."""

    def kontroll(request: Request) -> PlainTextResponse:
        return PlainTextResponse("ok")

    return Starlette(routes=[Route("/kontroll", kontroll)])


def bare_async_app() -> Starlette:
    """The reference: Starlette's hello world, an async route (no thread pool), as /kontroll."""

    async def kontroll(request: Request) -> PlainTextResponse:
        return PlainTextResponse("ok")

    return Starlette(routes=[Route("/kontroll", kontroll)])


# Raised so that no lookup is refused; each one is still counted against both limits.
RAISED = {"VARSEL_VERIFY_PER_IP": "1000000000", "VARSEL_VERIFY_GLOBAL_PER_MINUTE": "1000000000"}


def site_env(url: str) -> dict[str, str]:
    """The real site's settings for a run: its store and a fixed secret."""
    return {"VARSEL_DATABASE_URL": url, "VARSEL_SECRET_KEY": "benchmark"}


PAGE_FILE = "VARSEL_BENCH_PAGE"  # the floor app's page, fetched from the real site


def genuine_bytes_app() -> object:
    """The floor: the genuine page as fixed bytes, with the headers the site sends with it."""
    from varsel.web.headers import html_headers

    body = Path(os.environ[PAGE_FILE]).read_bytes()
    headers = html_headers(len(body))

    async def app(scope: dict[str, object], receive: object, send: object) -> None:
        if scope["type"] != "http":
            return  # no lifespan to run
        await send({"type": "http.response.start", "status": 200, "headers": headers})  # type: ignore[operator]
        await send({"type": "http.response.body", "body": body})  # type: ignore[operator]

    return app


@dataclass(frozen=True)
class Run:
    """One wrk run against one app."""

    rate: float  # requests per second
    p50_ms: float
    p99_ms: float
    requests: int
    cpu_us: float  # the server's CPU time (all its processes) per request


def ensure_wrk() -> str:
    """The wrk binary; installs Debian's package when it is missing."""
    found = shutil.which("wrk")
    if found:
        return found
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = ["apt-get", "install", "-y", "--no-install-recommends", "wrk"]
    if subprocess.run(install, env=env, check=False).returncode != 0:
        subprocess.run(["apt-get", "update"], env=env, check=True)
        subprocess.run(install, env=env, check=True)
    found = shutil.which("wrk")
    if not found:
        sys.exit("wrk is installed but not on PATH")
    return found


@contextlib.contextmanager
def store_url(kind: str, directory: Path) -> Iterator[str]:
    """A new, empty store of the kind; a PostgreSQL schema is dropped afterwards."""
    if kind == "sqlite":
        yield str(directory / "bench.db")
        return
    import psycopg

    schema = f"bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(f"{POSTGRES}/postgres", autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    try:
        yield f"{POSTGRES}/postgres?options={quote(f'-csearch_path={schema}')}"
    finally:
        with psycopg.connect(f"{POSTGRES}/postgres", autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA {schema} CASCADE")


def build_store(url: str, directory: Path, codes_wanted: int) -> list[str]:
    """A campaign whose deliveries are all sent; returns their codes, as printed."""
    dump = directory / "oslo.json.gz"
    # About one synthetic unit in six has an e-mail address of its own.
    write_dump(dump, units=codes_wanted * 6, seed=17, municipalities=("0301",))
    definition = directory / "campaign.toml"
    definition.write_text(CAMPAIGN, "utf-8")
    settings = Settings.load(environ={}, dkim_key_dir=str(directory / "keys"))
    with connect(url) as db:
        import_dump(db, dump)
        campaign_id = create_campaign(db, settings, definition).campaign.id
        # Sent over the last hour, one message after another: each has its own time stamp.
        ids = [
            i
            for (i,) in db.query("SELECT id FROM deliveries WHERE campaign_id = ?", (campaign_id,))
        ]
        start = datetime.now(UTC) - timedelta(hours=1)
        rows = []
        for n, delivery_id in enumerate(ids):
            stamp = _iso(start + timedelta(seconds=3600 * n / len(ids)))
            rows.append((stamp, stamp, delivery_id))
        with db.transaction():
            db.executemany(
                "UPDATE deliveries SET state = 'sent', sent_at = ?, updated_at = ? WHERE id = ?",
                rows,
            )
        if db.dialect == "postgresql":
            # As autovacuum would have left the store by the time the public looks codes up:
            # with the planner's statistics (a fresh schema has none, and a sequential scan
            # looks as good as an index), and not vacuuming the import during the runs.
            db.execute("VACUUM ANALYZE")
        found = db.query(
            "SELECT code FROM deliveries WHERE campaign_id = ? ORDER BY id LIMIT ?",
            (campaign_id, codes_wanted),
        )
    return [codes.format_code(str(c)) for (c,) in found]


def _iso(moment: datetime) -> str:
    """As the store keeps time (clock.utcnow_iso): milliseconds and a Z."""
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def serve(
    factory: str, workers: int, env: dict[str, str], server: tuple[str, str]
) -> Iterator[tuple[str, int]]:
    """The app factory served as `varsel serve` serves, on a free port: (base URL, pid)."""
    port = free_port()
    loop, http = server
    command = [
        sys.executable,
        "-m",
        "bench.bench_web",
        "--serve",
        factory,
        "--port",
        str(port),
        "--workers",
        str(workers),
        "--server",
        f"{loop},{http}",
    ]
    process = subprocess.Popen(command, env={**os.environ, **env})
    base = f"http://{HOST}:{port}"
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            if process.poll() is not None:
                sys.exit(f"serving {factory} stopped with status {process.returncode}")
            with (
                contextlib.suppress(OSError),
                urllib.request.urlopen(base + "/kontroll", timeout=2),  # noqa: S310 -- http
            ):
                break
            if time.monotonic() > deadline:
                sys.exit(f"{factory} did not answer within {START_TIMEOUT:g} s")
            time.sleep(0.2)
        yield base, process.pid
    finally:
        process.terminate()
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def serve_here(factory: str, port: int, workers: int, server: tuple[str, str]) -> None:
    """This process serves the factory through varsel.web.serve, as `varsel serve` does."""
    import logging

    from varsel.web import serve as serve_app

    logging.basicConfig(level=logging.WARNING)  # uvicorn's start-up errors, if any
    loop, http = server
    serve_app(factory, host=HOST, port=port, workers=workers, loop=loop, http=http)


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a process and its live children (uvicorn's workers)."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, IndexError, ValueError):
            fields = stat.read_text().rsplit(")", 1)[1].split()
            if int(stat.parent.name) == pid or int(fields[1]) == pid:
                total += (int(fields[11]) + int(fields[12])) / ticks
    return total


_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


def _ms(text: str) -> float:
    number, unit = re.fullmatch(r"([\d.]+)(us|ms|s)", text).groups()  # type: ignore[union-attr]
    return float(number) * _UNITS[unit]


@dataclass(frozen=True)
class Load:
    """What wrk sends: the rotation script and the file of paths it goes through."""

    wrk: str
    script: Path
    paths: Path
    seconds: int
    connections: int


def load(
    how: Load, base: str, pid: int, seconds: int | None = None, *, refusals: bool = False
) -> Run:
    """One wrk run; fails if any answer was not a 2xx, unless refusals are what it measures."""
    before = cpu_seconds(pid)
    seconds = seconds or how.seconds
    done = subprocess.run(
        [
            how.wrk,
            "-t1",
            f"-c{how.connections}",
            f"-d{seconds}s",
            "--latency",
            "--timeout",
            "5s",
            "-s",
            str(how.script),
            base,
            "--",
            str(how.paths),
        ],
        capture_output=True,
        text=True,
        timeout=seconds + 30,
        check=True,
    )
    used = cpu_seconds(pid) - before
    out = done.stdout
    if ("Non-2xx" in out and not refusals) or "Socket errors" in out:
        sys.exit(f"wrk saw failures against {base}:\n{out}")
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    requests = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    p50 = _ms(re.search(r"^\s+50%\s+(\S+)$", out, re.M).group(1))  # type: ignore[union-attr]
    p99 = _ms(re.search(r"^\s+99%\s+(\S+)$", out, re.M).group(1))  # type: ignore[union-attr]
    return Run(rate, p50, p99, requests, used / requests * 1e6)


def accounted(url: str) -> tuple[int, int]:
    """(verify_ok events, hits counted by the per-IP verify limit) in the store."""
    with connect(url, migrate=False) as db:
        events = int(db.scalar("SELECT count(*) FROM events WHERE kind = 'verify_ok'"))
        hits = int(
            db.scalar("SELECT coalesce(sum(hits), 0) FROM rate_limits WHERE scope = 'verify_ip'")
        )
    return events, hits


def row(name: str, runs: list[Run]) -> str:
    rate = statistics.median(r.rate for r in runs)
    p50 = statistics.median(r.p50_ms for r in runs)
    p99 = statistics.median(r.p99_ms for r in runs)
    cpu = statistics.median(r.cpu_us for r in runs)
    each = ", ".join(f"{r.rate:,.0f}" for r in runs)
    return f"| {name} | {rate:,.0f} | {p50:.1f} | {p99:.1f} | {cpu:,.0f} | {each} |"


def report(
    args: argparse.Namespace, runs: dict[str, list[Run]], codes: int, server: tuple[str, str]
) -> int:
    """Print the table and the ratios; returns how many lookups wrk saw answered."""
    names = list(runs)
    reference, sync, real, floor = (runs[name] for name in names)
    rate = statistics.median(r.rate for r in real)
    ratio = rate / statistics.median(r.rate for r in reference)
    ratio_sync = rate / statistics.median(r.rate for r in sync)
    # Each run's ratio of server CPU per request: the rate ratio a machine to itself would show.
    cpu_ratio = statistics.median(k.cpu_us / r.cpu_us for k, r in zip(reference, real, strict=True))
    verdict = "met" if ratio >= TARGET else "**not met**"
    print(
        f"{args.store}, {args.workers} uvicorn worker(s) each ({server[0]}, {server[1]}), "
        f"wrk -t1 -c{args.connections} -d{args.seconds}s over {codes:,} codes, "
        f"{args.runs} runs each, in turn\n"
    )
    print("| app | requests/s | p50 ms | p99 ms | server CPU µs/request | runs |")
    print("|---|---:|---:|---:|---:|---|")
    for name in names:
        print(row(name, runs[name]))
    print(
        f"\nratio to the async route {ratio:.2f} (target ≥ {TARGET:.2f}: {verdict}); "
        f"of CPU per request {cpu_ratio:.2f}; to the sync route {ratio_sync:.2f}"
    )
    floor_ratio = statistics.median(r.rate for r in floor) / statistics.median(
        r.rate for r in reference
    )
    floor_cpu = statistics.median(r.cpu_us for r in floor)
    real_cpu = statistics.median(r.cpu_us for r in real)
    print(
        f"the page alone as bytes (the floor): {floor_ratio:.2f} of the async route; "
        f"varsel's own work per lookup above the floor: "
        f"{real_cpu - floor_cpu:,.0f} µs of server CPU"
    )
    return sum(r.requests for r in real)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0] if __doc__ else None)
    parser.add_argument("--runs", type=int, default=3, help="runs of each app; medians shown")
    parser.add_argument("--seconds", type=int, default=5, help="length of each wrk run")
    parser.add_argument("--connections", type=int, default=8, help="wrk connections")
    parser.add_argument("--workers", type=int, default=1, help="uvicorn workers, every app")
    parser.add_argument("--codes", type=int, default=2000, help="distinct genuine codes asked")
    parser.add_argument("--store", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument(
        "--server",
        default=PRODUCTION,
        help="uvicorn's event loop and HTTP parser, as LOOP,HTTP (default: `varsel serve`'s, "
        f"{PRODUCTION}; asyncio,h11 for uvicorn's pure-Python ones)",
    )
    parser.add_argument("--serve", metavar="FACTORY", help=argparse.SUPPRESS)  # one server
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    loop, _, http = args.server.partition(",")
    server = (loop, http)
    if args.serve:
        serve_here(args.serve, args.port, args.workers, server)
        return
    wrk = ensure_wrk()
    with tempfile.TemporaryDirectory() as tmp, store_url(args.store, Path(tmp)) as url:
        folder = Path(tmp)
        codes_sent = build_store(url, folder, args.codes)
        (folder / "rotate.lua").write_text(ROTATE, "utf-8")
        (folder / "paths").write_text(
            "".join(f"/kontroll?kode={c} {visitor(n)}\n" for n, c in enumerate(codes_sent))
        )
        how = Load(wrk, folder / "rotate.lua", folder / "paths", args.seconds, args.connections)
        env = {**site_env(url), **RAISED}
        apps = {
            "bare Starlette route, async (reference)": "bench.bench_web:bare_async_app",
            "bare Starlette route, sync": "bench.bench_web:bare_app",
            "`/kontroll?kode=…`, genuine codes": "varsel.web:app_from_environment",
            "the genuine page as bytes, bare ASGI app (floor)": "bench.bench_web:genuine_bytes_app",
        }
        runs: dict[str, list[Run]] = {name: [] for name in apps}
        with contextlib.ExitStack() as stack:
            real_name = list(apps)[2]
            served = {
                real_name: stack.enter_context(serve(apps[real_name], args.workers, env, server))
            }
            page = f"{served[real_name][0]}/kontroll?kode={codes_sent[0]}"
            with urllib.request.urlopen(page, timeout=5) as answer:  # noqa: S310 -- http
                genuine = answer.read()
            if "E-posten er ekte" not in genuine.decode("utf-8"):
                sys.exit(f"{page} does not show the genuine page")
            (folder / "page.html").write_bytes(genuine)
            env[PAGE_FILE] = str(folder / "page.html")
            for name, factory in apps.items():
                if name != real_name:
                    served[name] = stack.enter_context(serve(factory, args.workers, env, server))
            served = {name: served[name] for name in apps}  # in the table's order
            # Warm-up: imports, connection pools, compiled templates, the store's caches.
            for base, pid in served.values():
                load(how, base, pid, seconds=1)
            events_before, hits_before = accounted(url)
            for _ in range(args.runs):
                for name, (base, pid) in served.items():
                    runs[name].append(load(how, base, pid))
        events, hits = accounted(url)
        attacks = attack_runs(args, url, folder, how, server)
    answered = report(args, runs, len(codes_sent), server)
    print_attacks(attacks, runs)
    print(
        f"lookups wrk saw answered: {answered:,}; recorded as verify_ok events: "
        f"{events - events_before:,}; counted by the per-IP limit: {hits - hits_before:,}"
    )
    if min(events - events_before, hits - hits_before) < answered:
        sys.exit("some lookups were not recorded or not counted")


def unknown_codes(count: int) -> list[str]:
    """Well-formed codes (their check symbols are right) that no store has: each a 404 from
    the unknown-code page, where a mistyped code would get the form's error (400)."""
    from varsel import codes

    found: list[str] = []
    n = 0
    while len(found) < count:
        data = f"ABCD{n:04d}WXY"  # 5 in 37 of these have no check symbol in the alphabet
        found += [codes.format_code(data + c) for c in codes.ALPHABET if codes.is_valid(data + c)]
        n += 1
    return found


def attack_runs(
    args: argparse.Namespace, url: str, folder: Path, how: Load, server: tuple[str, str]
) -> dict[str, list[Run]]:
    """What guessing costs: wrk asking for unknown codes from as many visitors (every answer
    a 404 from the unknown-code page), and one visitor past its limit (every answer a 429)."""
    site = "varsel.web:app_from_environment"
    base_env = site_env(url)
    unknown = folder / "unknown"
    guesses = unknown_codes(args.codes)
    unknown.write_text("".join(f"/kontroll?kode={c} {visitor(n)}\n" for n, c in enumerate(guesses)))
    one = folder / "one_visitor"
    one.write_text("".join(f"/kontroll?kode={c} {visitor(0)}\n" for c in guesses[:50]))
    kinds = {
        "`/kontroll?kode=…`, unknown codes (404)": (unknown, {**base_env, **RAISED}),
        "`/kontroll?kode=…`, one visitor past its limit (429)": (one, base_env),
    }
    runs: dict[str, list[Run]] = {name: [] for name in kinds}
    with contextlib.ExitStack() as stack:
        served = {
            name: (stack.enter_context(serve(site, args.workers, env, server)), paths)
            for name, (paths, env) in kinds.items()
        }
        for (base, pid), paths in served.values():  # warm-up; the visitor passes its limit
            load(dataclasses.replace(how, paths=paths), base, pid, seconds=1, refusals=True)
        for _ in range(args.runs):
            for name, ((base, pid), paths) in served.items():
                runs[name].append(
                    load(dataclasses.replace(how, paths=paths), base, pid, refusals=True)
                )
    return runs


def print_attacks(attacks: dict[str, list[Run]], runs: dict[str, list[Run]]) -> None:
    reference = statistics.median(r.rate for r in next(iter(runs.values())))
    print("\nGuessing (the same site, loaded the same way, after the runs above):\n")
    print("| app | requests/s | p50 ms | p99 ms | server CPU µs/request | runs |")
    print("|---|---:|---:|---:|---:|---|")
    for name, these in attacks.items():
        print(row(name, these))
    shares = ", ".join(
        f"{name.split(', ', 1)[1]} {statistics.median(r.rate for r in these) / reference:.2f}"
        for name, these in attacks.items()
    )
    print(f"\nof the async route's requests/s: {shares}")


if __name__ == "__main__":
    main()
