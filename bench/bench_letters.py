"""Letters: pages per second through `varsel letters` against typst alone on the same data.

    .venv/bin/python -m bench.bench_letters [--letters 40000] [--runs 3] [--batch-size 500]

Builds a SQLite store from a synthetic registry (Oslo; about four units in five have no e-mail
address) and a campaign on it, trimmed so that exactly N units need a letter. Then, in rounds:
- `varsel letters CAMPAIGN --out DIR` in a fresh process on a fresh copy of the store: the
  whole job (choosing the units and their addresses, codes, the outbox rows and events, the
  letter texts, one typst compile per batch, manifest.csv), timed from start to exit, with the
  process's peak RSS;
- typst alone: a fresh process compiles the same batches with the same layout (letter.typ,
  the shipped fonts) from the JSON data varsel's first run printed (the same letters, codes and
  texts, made beforehand, untimed), timing only the compiles.
Prints a Markdown table of the medians and their ratio (target: at least 0.50).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.procs import measure
from varsel.campaign import create_campaign, get_campaign
from varsel.config import Settings
from varsel.db import connect
from varsel.letter_candidates import candidates
from varsel.letter_render import Letter, Renderer
from varsel.letters import _sort_key
from varsel.registry import import_dump
from varsel.synth import write_dump

CAMPAIGN = """
[campaign]
name = "Benchmark"
[sender]
address = "sikkerhet@nsr-org.no"
name = "Næringslivets sikkerhetsråd"
organisation = "Oslo politidistrikt og NSR"
postal_address = "Postboks 2094 Vika\\n0125 Oslo"
[document]
title = "Sikkerhetsråd for næringslivet"
url = "https://www.politiet.no/rad.pdf"
[public]
base_url = "https://www.politiet.no/varsel"
[segment]
police_district = ["oslo"]
"""
UNITS_PER_LETTER = 1.4  # in the synthetic registry ~80 % have no e-mail; some have no address
TARGET = 0.50
TYPST_ALONE = """
import json, sys, time
from pathlib import Path
import typst
from varsel.letter_render import _folder, fonts_folder
folder = _folder("templates/letter")
fonts = typst.Fonts(include_system_fonts=False, include_embedded_fonts=False,
                    font_paths=[str(fonts_folder())])
compiler = typst.Compiler(str(folder / "letter.typ"), root=str(folder), font_paths=fonts,
                          ignore_system_fonts=True)
ager = typst.Compiler(font_paths=fonts, ignore_system_fonts=True)
spent = 0.0
for path in sorted(Path(sys.argv[1]).glob("batch-*.json")):
    data = path.read_text("utf-8")
    start = time.perf_counter()
    compiler.compile(output=str(path.with_suffix(".pdf")), format="pdf", sys_inputs={"data": data})
    spent += time.perf_counter() - start
    # Not timed: what keeps typst-py's memo cache from holding every batch (as varsel does).
    for _ in range(10):
        ager.compile(input=b"#[]", format="svg")
print(json.dumps({"seconds": spent}))
"""


def build_store(directory: Path, letters: int) -> tuple[str, int]:
    """A store with a campaign of exactly `letters` units needing a letter: (store, campaign)."""
    dump = directory / "oslo.json.gz"
    write_dump(dump, units=int(letters * UNITS_PER_LETTER), seed=23, municipalities=("0301",))
    store = str(directory / "bench.db")
    with connect(store) as db:
        import_dump(db, dump)
        definition = directory / "campaign.toml"
        definition.write_text(CAMPAIGN, "utf-8")
        settings = Settings.load(environ={}, dkim_key_dir=str(directory / "keys"))
        cid = create_campaign(db, settings, definition).campaign.id
        sendable = [c.orgnr for c in candidates(db, cid) if c.address is not None]
        if len(sendable) < letters:
            sys.exit(f"the synthetic registry gave {len(sendable)} letters, not {letters}")
        with db.transaction():
            # The rest are left out of the campaign, so that every run makes exactly N letters.
            extra = sendable[letters:]
            for start in range(0, len(extra), 500):
                chunk = extra[start : start + 500]
                db.execute(
                    "DELETE FROM recipients WHERE campaign_id = ? AND orgnr IN "
                    f"({', '.join('?' for _ in chunk)})",
                    [cid, *chunk],
                )
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return store, cid


def letters_command(store: Path, cid: int, out: Path, batch_size: int) -> list[str]:
    """`varsel letters` as an operator runs it (without the four-eyes approval, which the
    benchmark's store has no users for: the run is audited as such, nothing else differs)."""
    return [
        *(sys.executable, "-m", "varsel", "--db", str(store), "letters", str(cid)),
        *("--out", str(out), "--batch-size", str(batch_size), "--no-approval"),
    ]


def run_varsel(store: str, cid: int, out: Path, batch_size: int) -> tuple[float, int, int]:
    """(seconds, letters, peak RSS in KiB) of one `varsel letters` process on a copy of store."""
    copy = out.parent / f"{out.name}.db"
    shutil.copyfile(store, copy)
    command = letters_command(copy, cid, out, batch_size)
    run = measure(command, stdout=subprocess.DEVNULL)
    if run.status != 0:
        sys.exit(f"varsel letters failed with status {run.status}")
    with (out / "manifest.csv").open(encoding="utf-8") as f:
        letters = sum(1 for _ in f) - 1
    copy.unlink()
    return run.seconds, letters, run.peak_kb


def write_batches(store: str, cid: int, out: Path, data_dir: Path, batch_size: int) -> int:
    """The JSON data of every batch of varsel's run, exactly as it gave it to typst."""
    copy = out.parent / "data.db"
    shutil.copyfile(store, copy)
    subprocess.run(
        letters_command(copy, cid, out, batch_size), check=True, stdout=subprocess.DEVNULL
    )
    with connect(str(copy)) as db:
        campaign = get_campaign(db, cid)
        letters = sorted(
            (
                Letter(
                    c.letter_id or 0,
                    c.orgnr,
                    c.name,
                    c.language,
                    c.letter_code or "",
                    c.address,
                    c.reason,
                )
                for c in candidates(db, cid)
                if c.address is not None and c.letter_state == "produced"
            ),
            key=_sort_key,
        )
    day = dt.datetime.now().date()
    renderer = Renderer(cid, campaign.spec, day, campaign.spec.sender_postal_address)
    data_dir.mkdir()
    for number, start in enumerate(range(0, len(letters), batch_size), start=1):
        data = renderer.data(letters[start : start + batch_size])
        (data_dir / f"batch-{number:04d}.json").write_text(data, "utf-8")
    copy.unlink()
    return len(letters)


def run_typst(data_dir: Path) -> float:
    """Seconds typst alone spends compiling the batches, in a fresh process."""
    result = subprocess.run(
        [sys.executable, "-c", TYPST_ALONE, str(data_dir)],
        check=True,
        capture_output=True,
        text=True,
    )
    for pdf in data_dir.glob("*.pdf"):
        pdf.unlink()
    return float(json.loads(result.stdout)["seconds"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--letters", type=int, default=40_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=500)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-letters-") as tmp:
        directory = Path(tmp)
        started = time.perf_counter()
        store, cid = build_store(directory, args.letters)
        print(f"store built in {time.perf_counter() - started:.0f} s", file=sys.stderr)
        pages = write_batches(store, cid, directory / "first", directory / "data", args.batch_size)
        shutil.rmtree(directory / "first")
        varsel_rates, typst_rates, rss = [], [], []
        for run in range(args.runs):
            out = directory / f"run{run}"
            seconds, letters, peak = run_varsel(store, cid, out, args.batch_size)
            shutil.rmtree(out)
            if letters != pages:
                sys.exit(f"run {run} made {letters} letters, not {pages}")
            varsel_rates.append(letters / seconds)
            rss.append(peak)
            typst_rates.append(pages / run_typst(directory / "data"))
            print(
                f"run {run}: varsel {varsel_rates[-1]:.0f} pages/s, "
                f"typst alone {typst_rates[-1]:.0f} pages/s",
                file=sys.stderr,
            )
    ours, theirs = statistics.median(varsel_rates), statistics.median(typst_rates)
    ratio = ours / theirs
    print(f"{pages:,} letters, batches of {args.batch_size}, {args.runs} runs (medians)\n")
    print("| | pages/s | ratio |")
    print("|---|---:|---:|")
    print(f"| `varsel letters` (whole job, fresh process) | {ours:,.0f} | {ratio:.2f} |")
    print(f"| typst alone (same layout and data, compiles only) | {theirs:,.0f} | 1.00 |")
    print(
        f"\nTarget ≥ {TARGET:.2f}: {'met' if ratio >= TARGET else 'NOT met'}. "
        f"Peak RSS of `varsel letters`: {statistics.median(rss) / 1024:,.0f} MiB."
    )


if __name__ == "__main__":
    main()
