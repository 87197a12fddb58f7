"""Read the registry's dump files as streams of records, whatever their format.

The registry publishes a gzipped JSON array (`enheter_alle.json.gz`) and gzipped CSV, for
units and sub-units. Kind and format are told from the content, never from the file name.
Records come out in batches of JSON-shaped dicts, so one extractor serves every format.
"""

from __future__ import annotations

import codecs
import csv
import io
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import IO, Any, cast

import orjson
from isal import igzip, isal_zlib

from varsel import brreg_csv
from varsel.errors import BadFileError, json_reason, os_reason
from varsel.i18n import fmt_int

JSON_CHUNK = 4 << 20  # bytes of decompressed JSON parsed at a time
CSV_BATCH = 5000  # CSV rows per batch
SNIFF = 64 << 10
GZIP_STEP = 1 << 10  # compressed bytes per step of the integrity check: its position's precision

csv.field_size_limit(1 << 24)
# isal's own error for bad deflate data ("Invalid lookback distance"), not a zlib.error.
_IsalError = cast("type[Exception]", isal_zlib.error)


class Kind(StrEnum):
    """Which register a dump holds."""

    ENHETER = "enheter"  # main units (enheter)
    UNDERENHETER = "underenheter"  # sub-units (underenheter), located businesses


class Format(StrEnum):
    """How a dump is written."""

    JSON = "json"  # one JSON array of records
    CSV = "csv"  # the registry's CSV: quoted fields, arrays joined by newlines


@dataclass(frozen=True)
class DumpInfo:
    """What a dump file is."""

    path: Path
    kind: Kind
    fmt: Format
    compressed: bool
    size: int


@dataclass
class Batch:
    """Consecutive records of a dump: their positions, and how far into the file they end."""

    first_index: int
    records: list[dict[str, Any]]
    file_offset: int  # bytes of the (possibly compressed) file read so far
    lines: list[int] | None = None  # CSV: the line each record starts on


class CorruptGzipError(BadFileError):
    """The gzip stream itself is damaged: the data inside cannot be trusted."""


class CountingReader(io.RawIOBase):
    """Wraps a file and counts the bytes read, for progress and error positions."""

    def __init__(self, raw: IO[bytes]) -> None:
        self.raw = raw
        self.count = 0

    def readable(self) -> bool:
        return True

    def readinto(self, b: Any) -> int:
        n = self.raw.readinto(b)  # type: ignore[attr-defined]
        self.count += n or 0
        return n or 0


class DumpReader:
    """An open dump: `info` says what it is, iterating yields batches of records."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            self._file: IO[bytes] = path.open("rb")
        except FileNotFoundError:
            raise BadFileError(f"{path}: filen finnes ikke") from None
        except IsADirectoryError:
            raise BadFileError(f"{path}: er en mappe, ikke en fil") from None
        except OSError as e:
            raise BadFileError(f"{path}: kan ikke leses ({os_reason(e)})") from None
        self.size = path.stat().st_size
        magic = self._file.read(2)
        self._file.seek(0)
        self.compressed = magic == b"\x1f\x8b"
        self._counter = CountingReader(self._file)
        buffered = io.BufferedReader(self._counter, 1 << 20)
        self._stream: IO[bytes] = (
            igzip.GzipFile(fileobj=buffered, mode="rb")  # type: ignore[no-untyped-call,assignment]
            if self.compressed
            else buffered
        )
        self.records_read = 0  # maintained by the importer, for its summary
        self._pending: Iterator[Batch] | None = None
        self._first: Batch | None = None
        try:
            self._head = self._read(SNIFF)
            self.info = self._sniff()
        except BadFileError as e:
            self.close()
            raise self._diagnosed(e) from None
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        self._stream.close()
        self._file.close()

    def __enter__(self) -> DumpReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def offset(self) -> int:
        """Bytes of the file read so far."""
        return self._counter.count

    def _read(self, n: int) -> bytes:
        try:
            return self._stream.read(n)
        except (OSError, EOFError, zlib.error, _IsalError) as e:
            # The check reads the file again to find where the stream breaks: this reader
            # only knows how far its buffer has read.
            problem = gzip_problem(self.path)
            if problem is None:
                detail = str(e) or type(e).__name__
                problem = f"ødelagt gzip ved byte {fmt_int(self._counter.count)}: {detail}"
            raise CorruptGzipError(f"{self.path}: {problem}") from None

    def _diagnosed(self, error: BadFileError) -> BadFileError:
        """The error, or a damaged gzip stream behind it: garbage unpacked is no JSON or CSV."""
        if not self.compressed or isinstance(error, CorruptGzipError):
            return error
        problem = gzip_problem(self.path)
        return error if problem is None else CorruptGzipError(f"{self.path}: {problem}")

    # -- what is it? ------------------------------------------------------------------

    def _sniff(self) -> DumpInfo:
        head = self._head.removeprefix(codecs.BOM_UTF8).lstrip()
        if head.startswith(b"["):
            # The first record tells the kind; parse it now and hand it out first later.
            self._pending = self._json_batches()
            self._first = next(self._pending, None)
            if self._first is None:
                raise BadFileError(f"{self.path}: dumpen inneholder ingen enheter")
            kind = record_kind(self._first.records[0])
            if kind is None:
                raise BadFileError(
                    f"{self.path}: ikke en registerdump (første post har ikke "
                    "organisasjonsnummer og navn)"
                )
            return DumpInfo(self.path, kind, Format.JSON, self.compressed, self.size)
        if head.startswith(b"{"):
            if b"oppdaterte" in head[:4096] or b'"oppdateringsid"' in head[:4096]:
                raise BadFileError(
                    f"{self.path}: dette er en side fra endringsloggen (oppdateringer), "
                    "ikke en dump; bruk «varsel registry update»"
                )
            raise BadFileError(f"{self.path}: ikke en registerdump (et JSON-objekt, ikke en liste)")
        first_line = head.split(b"\n", 1)[0]
        if first_line.startswith((b'"organisasjonsnummer"', b"organisasjonsnummer")):
            header = self._csv_header(first_line)
            if len(header) == 1 and (";" in header[0] or "\t" in header[0]):
                # Excel in Norwegian saves CSV with semicolons: the header is then one column.
                separator = "semikolon" if ";" in header[0] else "tabulator"
                raise BadFileError(
                    f"{self.path}: CSV-filen skiller feltene med {separator}, ikke med komma "
                    "som registerets CSV (lagret på nytt i et regneark?); bruk filen slik "
                    "registeret laget den"
                )
            if "beliggenhetsadresse.kommunenummer" in header:
                kind = Kind.UNDERENHETER
            elif "forretningsadresse.kommunenummer" in header:
                kind = Kind.ENHETER
            else:
                raise BadFileError(
                    f"{self.path}: CSV-filen mangler adressekolonnene "
                    "(forretningsadresse.* eller beliggenhetsadresse.*)"
                )
            return DumpInfo(self.path, kind, Format.CSV, self.compressed, self.size)
        raise BadFileError(
            f"{self.path}: ikke en registerdump fra Enhetsregisteret "
            "(forventet en JSON-liste med enheter eller registerets CSV)"
        )

    def _csv_header(self, first_line: bytes) -> list[str]:
        try:
            text = first_line.decode("utf-8").rstrip("\r")
        except UnicodeDecodeError:
            raise BadFileError(f"{self.path}: CSV-overskriften er ikke UTF-8") from None
        return next(csv.reader([text]))

    # -- records ----------------------------------------------------------------------

    def __iter__(self) -> Iterator[Batch]:
        if self.info.fmt is Format.JSON:
            return self._checked(self._json_pending())
        return self._checked(self._csv_batches())

    def _checked(self, batches: Iterator[Batch]) -> Iterator[Batch]:
        try:
            yield from batches
        except BadFileError as e:
            raise self._diagnosed(e) from None

    def _json_pending(self) -> Iterator[Batch]:
        if self._first is None or self._pending is None:
            raise RuntimeError("a dump can be read only once")
        first, self._first = self._first, None
        yield first
        yield from self._pending

    def _json_batches(self) -> Iterator[Batch]:
        buf = self._head.removeprefix(codecs.BOM_UTF8).lstrip()[1:]  # past the opening [
        consumed = len(self._head) - len(buf)  # decompressed bytes before buf
        index = 0
        eof = False
        while True:
            if not eof:
                data = self._read(JSON_CHUNK)
                eof = not data
                buf += data
            stripped = buf.lstrip()
            consumed += len(buf) - len(stripped)
            buf = stripped
            if eof:
                records = self._parse_tail(buf, consumed)
                if records:
                    yield Batch(index, records, self.offset)
                return
            cut, records = self._parse_head(buf, consumed)
            if cut == 0:
                continue  # no complete record yet: read more
            yield Batch(index, records, self.offset)
            index += len(records)
            rest = buf[cut:].lstrip()
            if not rest.startswith(b","):
                raise BadFileError(f"{self.path}: ugyldig JSON ved byte {fmt_int(consumed + cut)}")
            consumed += len(buf) - len(rest) + 1
            buf = rest[1:]

    def _parse_head(self, buf: bytes, consumed: int) -> tuple[int, list[dict[str, Any]]]:
        """Parse the longest run of whole records at the start of buf; (end, records)."""
        end = len(buf)
        while True:
            cut = _last_boundary(buf, end)
            if cut <= 0:
                return 0, []
            try:
                records = orjson.loads(b"[" + buf[:cut] + b"]")
            except orjson.JSONDecodeError as e:
                # A cut inside a nested array or a string leaves the text unfinished, so the
                # parser runs out of data; any other error is a real error in the file.
                if e.pos < cut and "end of data" not in e.msg:
                    where = fmt_int(consumed + e.pos - 1)
                    raise BadFileError(_bad_json(self.path, where, e.msg)) from None
                end = cut - 1
                continue
            if not isinstance(records, list) or not all(isinstance(r, dict) for r in records):
                raise BadFileError(
                    f"{self.path}: ikke en registerdump (listen inneholder ikke objekter)"
                )
            return cut, records

    def _parse_tail(self, buf: bytes, consumed: int) -> list[dict[str, Any]]:
        text = buf.rstrip()
        if not text.endswith(b"]"):
            raise BadFileError(
                f"{self.path}: filen slutter midt i en post ved byte "
                f"{fmt_int(consumed + len(buf))} "
                "(avkortet?)"
            )
        try:
            records = orjson.loads(b"[" + text)
        except orjson.JSONDecodeError as e:
            where = fmt_int(consumed + e.pos - 1)
            if e.pos >= len(text):
                raise BadFileError(
                    f"{self.path}: filen slutter midt i en post ved byte {where} (avkortet?)"
                ) from None
            raise BadFileError(_bad_json(self.path, where, e.msg)) from None
        if not isinstance(records, list) or not all(isinstance(r, dict) for r in records):
            raise BadFileError(
                f"{self.path}: ikke en registerdump (listen inneholder ikke objekter)"
            )
        return records

    def _first_non_utf8(self) -> tuple[int, int]:
        """Read the file again, line by line, for the first byte that is not UTF-8."""
        with self.path.open("rb") as raw:
            stream: IO[bytes] = (
                igzip.GzipFile(fileobj=raw, mode="rb")  # type: ignore[no-untyped-call,assignment]
                if self.compressed
                else raw
            )
            return _first_non_utf8_line(iter(stream))

    def _csv_batches(self) -> Iterator[Batch]:
        rest = _ChainedReader(self._head, self._read)
        text = io.TextIOWrapper(io.BufferedReader(rest, 1 << 20), encoding="utf-8-sig", newline="")
        reader = csv.reader(text)
        try:
            header = next(reader)
            convert = _csv_converter(self.path, header, self.info.kind)
            index = 0
            records: list[dict[str, Any]] = []
            lines: list[int] = []
            line = reader.line_num + 1
            last: list[str] | None = None
            last_line = 0
            for row in reader:
                if not row:  # a blank line (an editor's, at the end) is no record
                    line = reader.line_num + 1
                    continue
                records.append(convert(row, line))
                lines.append(line)
                last, last_line = row, line
                line = reader.line_num + 1
                if len(records) >= CSV_BATCH:
                    yield Batch(index, records, self.offset, lines)
                    index += len(records)
                    records, lines = [], []
            if last is None:
                raise BadFileError(f"{self.path}: dumpen inneholder ingen enheter")
            if len(last) < len(header) and not rest.ended_line:
                # A short last row without its line's end is where a cut file ends: importing
                # the rest would mark every unit after the cut gone. A short row that ends its
                # line is a rejected record.
                raise BadFileError(
                    f"{self.path}: filen slutter midt i en post på linje {fmt_int(last_line)} "
                    f"({len(last)} av {len(header)} felt; avkortet?)"
                )
            if records:
                yield Batch(index, records, self.offset, lines)
        except UnicodeDecodeError:
            # The decoder reads ahead of the CSV reader: its line is not where the byte is.
            line, byte = self._first_non_utf8()
            raise BadFileError(
                f"{self.path}: ikke UTF-8 på linje {fmt_int(line)} (byten 0x{byte:02x} hører "
                "ikke hjemme i UTF-8; er filen lagret som Latin-1 eller Windows-1252?)"
            ) from None
        except csv.Error as e:
            raise BadFileError(
                f"{self.path}: ugyldig CSV ved linje {fmt_int(reader.line_num)}: {e}"
            ) from None


def _first_non_utf8_line(lines: Iterator[bytes]) -> tuple[int, int]:
    """(line number, byte) of the first line that is not UTF-8; (0, 0) if every one is."""
    for number, raw in enumerate(lines, start=1):
        try:
            raw.decode("utf-8")
        except UnicodeDecodeError as e:
            return number, raw[e.start]
    return 0, 0


def _last_boundary(buf: bytes, end: int) -> int:
    """Index just past the last `}` before end that is followed by `,` and `{`."""
    while True:
        i = buf.rfind(b"}", 0, end)
        if i < 0:
            return 0
        j = i + 1
        n = len(buf)
        while j < n and buf[j] in b" \t\r\n":
            j += 1
        if j < n and buf[j] == 0x2C:  # ","
            j += 1
            while j < n and buf[j] in b" \t\r\n":
                j += 1
            if j < n and buf[j] == 0x7B:  # "{"
                return i + 1
        end = i


class _ChainedReader(io.RawIOBase):
    """The sniffed head of the stream followed by the rest of it."""

    def __init__(self, head: bytes, read: Any) -> None:
        self._head = head
        self._read = read
        self.ended_line = True  # whether the bytes so far end with a line's end

    def readinto(self, b: Any) -> int:
        n = self._readinto(b)
        if n:
            self.ended_line = b[n - 1] in b"\r\n"
        return n

    def readable(self) -> bool:
        return True

    def _readinto(self, b: Any) -> int:
        if self._head:
            n = min(len(b), len(self._head))
            b[:n] = self._head[:n]
            self._head = self._head[n:]
            return n
        data = self._read(len(b))
        b[: len(data)] = data
        return len(data)


# -- CSV rows into JSON-shaped records -------------------------------------------------


def _csv_converter(path: Path, header: list[str], kind: Kind) -> Any:
    known = set(
        brreg_csv.ENHETER_COLUMNS if kind is Kind.ENHETER else brreg_csv.UNDERENHETER_COLUMNS
    )
    plan: list[tuple[int, str, str | None, str]] = []  # (column, key, subkey, type)
    for i, column in enumerate(header):
        name = column
        if kind is Kind.UNDERENHETER:
            name = brreg_csv.UNDERENHETER_ALIASES.get(column, column)
        if name not in known:
            raise BadFileError(
                f"{path}: ukjent kolonne «{name}» i CSV-overskriften (kolonne {i + 1})"
            )
        key = brreg_csv.JSON_KEY.get(name, name)
        top, _, sub = key.partition(".")
        leaf = sub or top
        if key in brreg_csv.BOOLEAN_FIELDS:
            typ = "bool"
        elif key in brreg_csv.NUMBER_FIELDS:
            typ = "number"
        elif leaf in brreg_csv.ARRAY_FIELDS:
            typ = "array"
        else:
            typ = "text"
        plan.append((i, top, sub or None, typ))
    for required in ("organisasjonsnummer", "navn", "organisasjonsform.kode"):
        if required not in header:
            raise BadFileError(f"{path}: CSV-filen mangler kolonnen «{required}»")
    width = len(header)

    def convert(row: list[str], line: int) -> dict[str, Any]:
        if len(row) != width:
            # The number as written, if any: its unit is not marked gone for a broken row.
            error = f"linje {fmt_int(line)} har {len(row)} felt, overskriften har {width}"
            return {
                "_csv_error": error,
                **({"organisasjonsnummer": row[0]} if row else {}),
            }
        rec: dict[str, Any] = {}
        for i, top, sub, typ in plan:
            text = row[i]
            if text == "":
                continue
            value: Any
            if typ == "text":
                value = text
            elif typ == "bool":
                value = text == "true"
            elif typ == "array":
                value = text.split("\n")
            else:
                try:
                    number = float(text)
                    value = int(number) if number.is_integer() else number
                except ValueError:
                    value = text
            if sub is None:
                rec[top] = value
            else:
                rec.setdefault(top, {})[sub] = value
        return rec

    return convert


def record_kind(record: dict[str, Any]) -> Kind | None:
    """The kind of one JSON record, or None when it does not look like a unit at all."""
    klass = record.get("respons_klasse")
    if klass == "Underenhet":
        return Kind.UNDERENHETER
    if klass == "Enhet":
        return Kind.ENHETER
    if "organisasjonsnummer" not in record or "navn" not in record:
        return None
    form = record.get("organisasjonsform")
    code = form.get("kode") if isinstance(form, dict) else None
    if "beliggenhetsadresse" in record or code in ("BEDR", "AAFY"):
        return Kind.UNDERENHETER
    return Kind.ENHETER


def gzip_problem(source: Path | bytes) -> str | None:
    """Where and how a gzip file is damaged ("ødelagt gzip ved byte N: ..."), or None if whole.

    The one diagnosis for every reader of gzip files (dumps and change-feed pages): a file's
    path, or its bytes when already read. Reads the whole stream, as only its end tells whether
    the CRC and length match; the position is where the decoder gave up, to GZIP_STEP bytes;
    damage that only the CRC shows has no position.
    """
    with source.open("rb") if isinstance(source, Path) else io.BytesIO(source) as f:
        return _gzip_stream_problem(f)


def _gzip_stream_problem(f: IO[bytes]) -> str | None:
    decoder = zlib.decompressobj(wbits=31)
    position = 0  # of the current step
    while block := f.read(1 << 20):
        for start in range(0, len(block), GZIP_STEP):
            step = block[start : start + GZIP_STEP]
            data = step
            while data:
                try:
                    decoder.decompress(data)
                except zlib.error as e:
                    return _gzip_error(e, position + len(step) - len(data))
                if not decoder.eof:
                    break
                # Another member may follow (the format allows several); zeros may pad.
                data = decoder.unused_data
                if not data.strip(b"\0"):
                    break
                decoder = zlib.decompressobj(wbits=31)
            position += len(step)
    if not decoder.eof:
        return (
            f"ødelagt gzip ved byte {fmt_int(position)}: filen slutter før gzip-strømmen er "
            "ferdig (avkortet nedlasting?)"
        )
    return None


def _gzip_error(error: zlib.error, position: int) -> str:
    """zlib's (English) error in Bokmål; position is where the data it was given began."""
    reason = str(error).rpartition(": ")[2]
    if reason in ("incorrect data check", "incorrect length check"):
        # Found only at the stream's end: where the damage is, is unknown.
        return (
            "ødelagt gzip: kontrollsummen (CRC) stemmer ikke, så innholdet er skadet et sted "
            "i filen"
        )
    if reason == "incorrect header check" and position == 0:
        return "ødelagt gzip: ikke en gzip-fil likevel"
    if reason == "incorrect header check":
        # No gzip header where a member ends and another could begin: something was appended.
        return (
            f"ødelagt gzip ved byte {fmt_int(position)}: data som ikke er gzip, etter slutten "
            "av gzip-strømmen"
        )
    return f"ødelagt gzip ved byte {fmt_int(position)}: ugyldige komprimerte data ({reason})"


def open_dump(path: Path) -> DumpReader:
    """Open a dump file and tell what it is; raises BadFileError for anything else."""
    return DumpReader(path)


def _bad_json(path: Path, where: str, reason: str) -> str:
    said = json_reason(reason)
    return f"{path}: ugyldig JSON ved byte {where}" + (f": {said}" if said else "")
