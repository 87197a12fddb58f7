"""Registry import against DuckDB's read_json, and the pilot's segment preview.

    .venv/bin/python -m bench.bench_import [--units 1200000] [--runs 3] [--postgres URL]

Writes a synthetic national dump (enheter_alle.json.gz) unless one of that size exists in
bench/out, then, in the same run and several times each:
- DuckDB read_json loading the file's selection columns into a table (the reference);
- `varsel registry import` of the same file into a fresh SQLite store, in a subprocess whose
  peak RSS is measured;
- the same into a fresh PostgreSQL schema (when --postgres is given or the local one answers);
- `segment preview` for the pilot's criteria on the SQLite store.
Prints a Markdown table with medians of wall and CPU seconds (user + system, all threads)
and their ratios to DuckDB, and the load average at the start and the end.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from bench.procs import measure

OUT = Path(__file__).resolve().parent / "out"
VARSEL = [sys.executable, "-m", "varsel"]

ADDRESS = (
    "STRUCT(adresse VARCHAR[], postnummer VARCHAR, poststed VARCHAR, kommunenummer VARCHAR, "
    "kommune VARCHAR, land VARCHAR, landkode VARCHAR)"
)
CODE = "STRUCT(kode VARCHAR, beskrivelse VARCHAR)"
# The fields varsel keeps as columns: what DuckDB must read too for a fair comparison.
COLUMNS = {
    "organisasjonsnummer": "VARCHAR",
    "navn": "VARCHAR",
    "organisasjonsform": CODE,
    "overordnetEnhet": "VARCHAR",
    "forretningsadresse": ADDRESS,
    "postadresse": ADDRESS,
    "naeringskode1": CODE,
    "naeringskode2": CODE,
    "naeringskode3": CODE,
    "antallAnsatte": "BIGINT",
    "harRegistrertAntallAnsatte": "BOOLEAN",
    "institusjonellSektorkode": CODE,
    "konkurs": "BOOLEAN",
    "underAvvikling": "BOOLEAN",
    "underTvangsavviklingEllerTvangsopplosning": "BOOLEAN",
    "slettedato": "VARCHAR",
    "maalform": "VARCHAR",
    "epostadresse": "VARCHAR",
    "telefon": "VARCHAR",
    "mobil": "VARCHAR",
    "hjemmeside": "VARCHAR",
}


def ensure_dump(units: int) -> Path:
    path = OUT / f"enheter_{units}.json.gz"
    if not path.exists():
        OUT.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            [
                *VARSEL,
                "registry",
                "synth",
                "--out",
                str(path),
                "--units",
                str(units),
                "--seed",
                "1",
            ],
            check=True,
        )
    return path


@dataclass(frozen=True)
class Run:
    """One measured run: wall seconds, CPU seconds (user + system, all threads), peak RSS."""

    wall: float
    cpu: float
    rss: int = 0


def _cpu(usage: resource.struct_rusage) -> float:
    return usage.ru_utime + usage.ru_stime


def duckdb_load(path: Path) -> Run:
    import duckdb

    con = duckdb.connect(str(OUT / f"ref-{uuid.uuid4().hex}.duckdb"))
    columns = "{" + ", ".join(f"'{k}': '{v}'" for k, v in COLUMNS.items()) + "}"
    cpu = _cpu(resource.getrusage(resource.RUSAGE_SELF))
    start = time.perf_counter()
    con.execute(
        f"CREATE TABLE units AS SELECT * FROM read_json('{path}', format = 'array', "
        f"columns = {columns})"
    )
    seconds = time.perf_counter() - start
    cpu = _cpu(resource.getrusage(resource.RUSAGE_SELF)) - cpu
    count = con.execute("SELECT count(*) FROM units").fetchone()
    con.close()
    for f in OUT.glob("ref-*.duckdb*"):
        f.unlink()
    assert count is not None
    assert count[0] > 0
    return Run(seconds, cpu)


def varsel_import(path: Path, db_url: str) -> Run:
    """`varsel registry import` in its own process (CPU from wait4, peak RSS its VmHWM)."""
    run = measure(
        [*VARSEL, "--db", db_url, "registry", "import", str(path)], stdout=subprocess.DEVNULL
    )
    if run.status != 0:
        raise SystemExit(f"import failed with status {run.status}")
    return Run(run.seconds, run.cpu, run.peak_kb * 1024)


def fresh_sqlite() -> str:
    path = OUT / "bench.db"
    for suffix in ("", "-wal", "-shm"):
        Path(str(path) + suffix).unlink(missing_ok=True)
    return str(path)


def fresh_pg(base: str) -> str:
    import psycopg

    schema = f"bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    return f"{base}?options={quote(f'-csearch_path={schema}')}"


def drop_pg(base: str, url: str) -> None:
    import psycopg

    schema = url.split("search_path%3D", 1)[1]
    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute(f"DROP SCHEMA {schema} CASCADE")


def preview_times(db_url: str, runs: int) -> list[float]:
    from varsel.db import connect
    from varsel.segment import preview
    from varsel.segment_criteria import Criteria

    criteria = Criteria(police_districts=("oslo",), min_employees=2)
    times = []
    with connect(db_url) as db:
        preview(db, criteria)  # warm the page cache once
        for _ in range(runs):
            start = time.perf_counter()
            preview(db, criteria)
            times.append(time.perf_counter() - start)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--units", type=int, default=1_200_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--postgres", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--no-postgres", action="store_true")
    args = parser.parse_args()

    path = ensure_dump(args.units)
    size = path.stat().st_size
    load = os.getloadavg()[0]
    duck: list[Run] = []
    sqlite: list[Run] = []
    pg: list[Run] = []
    for _ in range(args.runs):
        duck.append(duckdb_load(path))
        sqlite.append(varsel_import(path, fresh_sqlite()))
    previews = preview_times(str(OUT / "bench.db"), 21)
    if not args.no_postgres:
        for _ in range(args.runs):
            url = fresh_pg(args.postgres)
            try:
                pg.append(varsel_import(path, url))
            finally:
                drop_pg(args.postgres, url)

    ref = statistics.median(r.wall for r in duck)
    ref_cpu = statistics.median(r.cpu for r in duck)
    print(
        f"Import of {args.units:,} enheter ({size / 1e6:.0f} MB json.gz), medians of "
        f"{args.runs} runs; load average {load:.1f} at the start, "
        f"{os.getloadavg()[0]:.1f} at the end:\n"
    )
    print("| what | median s | ratio to DuckDB | CPU s | CPU ratio | runs (wall s / CPU s) |")
    print("|---|---:|---:|---:|---:|---|")
    rows = [("DuckDB read_json → table (reference)", duck), ("varsel import → SQLite", sqlite)]
    if pg:
        rows.append(("varsel import → PostgreSQL", pg))
    for what, runs in rows:
        wall = statistics.median(r.wall for r in runs)
        cpu = statistics.median(r.cpu for r in runs)
        print(
            f"| {what} | {wall:.1f} | {wall / ref:.2f} | {cpu:.1f} | {cpu / ref_cpu:.2f} | "
            f"{', '.join(f'{r.wall:.1f}/{r.cpu:.1f}' for r in runs)} |"
        )
    rss = [r.rss for r in sqlite]
    print(f"\nPeak RSS of the SQLite import: {max(rss) / 2**20:.0f} MB (max of {args.runs}).")
    print(
        f"`segment preview` (Oslo police district, ≥2 employees) on that store: median "
        f"{statistics.median(previews) * 1000:.0f} ms, p90 "
        f"{sorted(previews)[int(len(previews) * 0.9)] * 1000:.0f} ms over {len(previews)} runs."
    )


if __name__ == "__main__":
    main()
