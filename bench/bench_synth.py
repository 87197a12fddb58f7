"""How fast write_dump writes a national-scale dump, and what plain gzip would cost instead.

Run: .venv/bin/python -m bench.bench_synth [--units N] [--runs R] [--format json|csv]
Prints a Markdown snippet to stdout.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Protocol

from isal import isal_zlib

from varsel.synth import _GZIP_LEVEL, NATIONAL_UNITS, write_dump

CHUNK = 8 << 20


class Compressor(Protocol):
    """What zlib's and isal's compress objects have in common."""

    def compress(self, data: bytes, /) -> bytes: ...

    def flush(self) -> bytes: ...


def uncompressed(path: Path) -> Iterator[bytes]:
    """The dump's uncompressed bytes, in chunks, so memory stays flat."""
    inflate = isal_zlib.decompressobj(wbits=31)
    with path.open("rb") as source:
        while chunk := source.read(CHUNK):
            yield inflate.decompress(chunk)
    yield inflate.flush()


def compress_time(path: Path, make: Callable[[], Compressor]) -> tuple[float, int]:
    """Seconds spent compressing the dump's uncompressed bytes, and the compressed size."""
    compressor = make()
    seconds, size = 0.0, 0
    for chunk in uncompressed(path):
        started = time.perf_counter()
        size += len(compressor.compress(chunk))
        seconds += time.perf_counter() - started
    started = time.perf_counter()
    size += len(compressor.flush())
    return seconds + time.perf_counter() - started, size


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--units", type=int, default=NATIONAL_UNITS)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--format", dest="fmt", choices=("json", "csv"), default="json")
    parser.add_argument("--kind", choices=("enheter", "underenheter"), default="enheter")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="bench-synth-") as folder:
        path = Path(folder) / f"{args.kind}.{args.fmt}.gz"
        runs = [
            write_dump(path, units=args.units, seed=run, fmt=args.fmt, kind=args.kind)
            for run in range(args.runs)
        ]
        median = statistics.median(r.seconds for r in runs)
        raw = sum(len(chunk) for chunk in uncompressed(path))
        zlib6, zlib6_size = compress_time(path, lambda: zlib.compressobj(6, wbits=31))
        isal, isal_size = compress_time(path, lambda: isal_zlib.compressobj(_GZIP_LEVEL, wbits=31))

    units = f"{args.units:,}".replace(",", " ")
    print(f"### write_dump: {units} {args.kind}, {args.fmt}.gz, runs: {args.runs}\n")
    print("| run | seconds | units/s | file |")
    print("|---|---:|---:|---:|")
    for number, r in enumerate(runs, 1):
        print(
            f"| {number} | {r.seconds:.1f} | {r.units / r.seconds:,.0f} | {r.bytes / 1e6:.0f} MB |"
        )
    print(f"| **median** | **{median:.1f}** | **{args.units / median:,.0f}** | |\n")
    print(f"Compressing the same {raw / 1e6:,.0f} MB of uncompressed output (compression only):\n")
    print("| method | seconds | MB/s | compressed | write_dump with it |")
    print("|---|---:|---:|---:|---:|")
    for name, seconds, size in (
        ("gzip level 6 (zlib, Python's default)", zlib6, zlib6_size),
        (f"isal level {_GZIP_LEVEL} (write_dump)", isal, isal_size),
    ):
        total = median - isal + seconds
        print(
            f"| {name} | {seconds:.1f} | {raw / 1e6 / seconds:,.0f} | {size / 1e6:.0f} MB "
            f"| ~{total:.0f} s |"
        )


if __name__ == "__main__":
    main()
