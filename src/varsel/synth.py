"""Synthetic Enhetsregisteret dumps in the registry's own JSON and CSV formats, at national scale.

Every record is a pure function of (seed, index) and, in area mode, of the municipalities: the
random numbers for record ``i`` come from a block of 4096 records seeded by (seed, kind, block,
area), so a record does not depend on how many records the file holds.

Parent naming rule: sub-unit ``i`` names a parent with an enhet index below
``floor(4 * (i + 1) / 3)``. An underenheter dump of M units with seed S therefore names only
parents among the first ``ceil(4 * M / 3)`` enheter of an enheter dump with seed S and the same
``municipalities``; at the registry's own ratio (1.2 M enheter, 0.9 M underenheter) every
parent exists.
"""

from __future__ import annotations

import csv
import gc
import io
import math
import os
import struct
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import orjson
from isal import isal_zlib

from varsel.brreg_csv import ENHETER_COLUMNS, JSON_KEY, UNDERENHETER_COLUMNS
from varsel.errors import UserError, os_reason
from varsel.progress import ProgressCallback
from varsel.synth_orgnr import orgnrs
from varsel.synth_records import BLOCK, Generator
from varsel.synth_tables import NATIONAL_UNITS, PILOT_AREA, area_fraction, select_area, world

__all__ = ["NATIONAL_UNITS", "PILOT_AREA", "SynthResult", "area_share", "write_dump"]

# isal's level 2 packs a little tighter than zlib's level 1 at seven times its speed; zlib's
# default level 6 would add about 20 s to a national dump (see bench/bench_synth.py).
_GZIP_LEVEL = 2
_MAX_UNITS = 8_000_000  # orgnr capacity is 18 M numbers shared by enheter and underenheter


# -- public API ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class SynthResult:
    """What write_dump wrote: where, how many units, how many bytes and how long it took."""

    path: Path
    units: int
    bytes: int
    seconds: float
    kind: str = "enheter"
    fmt: str = "json"

    def summary(self) -> str:
        """One line in Norwegian Bokmål saying what was written."""
        return (
            f"Skrev {_nb_int(self.units)} syntetiske {self.kind} til {self.path.name} "
            f"({_nb_size(self.bytes)}) på {_nb_decimal(self.seconds)} s."
        )


def area_share(municipalities: Sequence[str]) -> float:
    """The share of a national dump's enheter whose business address is in the area."""
    tables = world()
    return area_fraction(tables, select_area(tables, municipalities))


def write_dump(
    out: Path,
    *,
    units: int,
    seed: int,
    fmt: str = "json",
    kind: str = "enheter",
    municipalities: Sequence[str] = (),
    progress: ProgressCallback | None = None,
) -> SynthResult:
    """Write a synthetic enheter or underenheter dump, gzipped when ``out`` ends in .gz."""
    started = time.perf_counter()
    if fmt not in ("json", "csv"):
        raise UserError(f"Ukjent format «{fmt}»: bruk json eller csv.")
    if kind not in ("enheter", "underenheter"):
        raise UserError(f"Ukjent type «{kind}»: bruk enheter eller underenheter.")
    if units < 0:
        raise UserError("Antall enheter kan ikke være negativt.")
    if units > _MAX_UNITS:
        raise UserError(f"For mange enheter: høyst {_nb_int(_MAX_UNITS)} per fil.")
    tables = world()
    gen = Generator(tables, seed, select_area(tables, municipalities))
    out = Path(out)
    fd, tmp = _open_temp(out)
    # Records hold no reference cycles, so the cyclic collector only costs time (about 30 %).
    collecting = gc.isenabled()
    gc.disable()
    try:
        with os.fdopen(fd, "wb") as raw:
            sink = _Sink(raw, gzipped=out.name.endswith(".gz"))
            _write_records(sink, gen, units, fmt, kind, progress)
            sink.close()
        os.replace(tmp, out)
    except OSError as e:
        Path(tmp).unlink(missing_ok=True)
        raise UserError(f"Kunne ikke skrive {out}: {os_reason(e)}.") from e
    except BaseException:
        # The dump is written whole or not at all: a half-written file would import as truncated.
        Path(tmp).unlink(missing_ok=True)
        raise
    finally:
        if collecting:
            gc.enable()
    size = out.stat().st_size
    if progress is not None:
        progress(size, size, units)
    return SynthResult(out, units, size, time.perf_counter() - started, kind, fmt)


# -- Norwegian number formatting ----------------------------------------------------------------


def _nb_int(n: int) -> str:
    return f"{n:,}".replace(",", " ")


def _nb_decimal(x: float) -> str:
    return f"{x:.1f}".replace(".", ",")


def _nb_size(n: int) -> str:
    if n >= 10_000_000:
        return f"{_nb_int(round(n / 1e6))} MB"
    if n >= 1_000_000:
        return f"{_nb_decimal(n / 1e6)} MB"
    return f"{_nb_int(math.ceil(n / 1e3))} kB"


# -- writing -----------------------------------------------------------------------------------


def _open_temp(out: Path) -> tuple[int, str]:
    if out.is_dir():
        raise UserError(f"{out} er en mappe; oppgi et filnavn.")
    parent = out.parent
    if not parent.is_dir():
        raise UserError(f"Mappen {parent} finnes ikke.")
    try:
        fd, tmp = tempfile.mkstemp(dir=parent, prefix=f".{out.name}.", suffix=".part")
    except OSError as e:
        raise UserError(f"Kan ikke skrive til {parent}: {os_reason(e)}.") from e
    os.fchmod(fd, 0o644)
    return fd, tmp


class _Sink:
    """Writes bytes to a file, as one gzip member when asked; counts the bytes on disk."""

    def __init__(self, raw: BinaryIO, *, gzipped: bool) -> None:
        self.raw = raw
        self.gzipped = gzipped
        self.written = 0
        self.crc = 0
        self.size = 0
        self.deflate = isal_zlib.compressobj(_GZIP_LEVEL, isal_zlib.DEFLATED, -15)
        if gzipped:
            # A fixed header (no name, no time) keeps the file byte-identical between runs.
            self._out(b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff")

    def _out(self, data: bytes) -> None:
        if data:
            self.raw.write(data)
            self.written += len(data)

    def write(self, data: bytes) -> None:
        if not self.gzipped:
            self._out(data)
            return
        self.crc = isal_zlib.crc32(data, self.crc)
        self.size += len(data)
        self._out(self.deflate.compress(data))

    def close(self) -> None:
        if self.gzipped:
            self._out(self.deflate.flush())
            self._out(struct.pack("<II", self.crc & 0xFFFFFFFF, self.size & 0xFFFFFFFF))


def _write_records(
    sink: _Sink, gen: Generator, units: int, fmt: str, kind: str, progress: ProgressCallback | None
) -> None:
    make = gen.enhet if kind == "enheter" else gen.underenhet
    stream = 0 if kind == "enheter" else 1
    if fmt == "json":
        sink.write(b"[")
        done = 0
        for block in _blocks(gen, make, stream, units):
            body = orjson.dumps(block)[1:-1]
            sink.write(body if done == 0 else b"," + body)
            done += len(block)
            if progress is not None:
                progress(sink.written, None, done)
        sink.write(b"]")
        return
    columns = ENHETER_COLUMNS if kind == "enheter" else UNDERENHETER_COLUMNS
    specs = [_column_spec(c) for c in columns]
    text = io.StringIO()
    writer = csv.writer(text, quoting=csv.QUOTE_ALL, lineterminator="\n")
    writer.writerow(columns)
    sink.write(text.getvalue().encode())
    done = 0
    for block in _blocks(gen, make, stream, units):
        text.seek(0)
        text.truncate()
        writer.writerows([_flatten(rec, specs) for rec in block])
        sink.write(text.getvalue().encode())
        done += len(block)
        if progress is not None:
            progress(sink.written, None, done)


_Maker = Callable[[int, list[float], str], dict[str, Any]]


def _blocks(
    gen: Generator, make: _Maker, stream: int, units: int
) -> Iterator[list[dict[str, Any]]]:
    for block in range((units + BLOCK - 1) // BLOCK):
        start = block * BLOCK
        count = min(BLOCK, units - start)
        rows = gen.rows(stream, block)
        # Enheter are even unit numbers and underenheter odd ones, so no two units share a number.
        numbers = orgnrs(2 * start + stream, count, 2, gen.keys)
        yield [make(start + j, rows[j], numbers[j]) for j in range(count)]


def _column_spec(column: str) -> tuple[str, str]:
    key = JSON_KEY.get(column, column)
    top, _, sub = key.partition(".")
    return top, sub


def _flatten(rec: dict[str, Any], specs: list[tuple[str, str]]) -> list[str]:
    out = []
    for top, sub in specs:
        value = rec.get(top)
        if sub and value is not None:
            value = value.get(sub)
        if value is None:
            out.append("")
        elif value is True:
            out.append("true")
        elif value is False:
            out.append("false")
        elif isinstance(value, list):
            out.append(
                "\n".join(v if isinstance(v, str) else orjson.dumps(v).decode() for v in value)
            )
        else:
            out.append(str(value))
    return out
