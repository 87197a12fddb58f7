"""Registry records to store rows in Python, and the import's rejected records.

The way for CSV and XLSX dumps, and for JSON records of a shape DuckDB's extraction does not
translate: batches are extracted in this process for small files, in a second process for
large ones while the importing process writes to the store.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import multiprocessing
import os
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from varsel import unit
from varsel.dump import Batch, DumpReader, Kind, open_dump
from varsel.errors import UserError, VarselError, os_reason
from varsel.i18n import fmt_int
from varsel.progress import ProgressCallback

SHOWN_REJECTS = 5
PARALLEL_FROM_BYTES = 16 << 20  # smaller dumps are parsed in-process: no start-up cost
Rows = list[tuple[Any, ...]]


@dataclass(frozen=True)
class Reject:
    """A record that was skipped: where it was and why."""

    position: int  # 1-based record number in the file
    line: int | None  # CSV line, when the dump is CSV
    orgnr: str | None
    reason: str

    def describe(self) -> str:
        where = f"post {fmt_int(self.position)}"
        if self.line is not None:
            where += f" (linje {fmt_int(self.line)})"
        who = f" {self.orgnr}" if self.orgnr else ""
        return f"{where}{who}: {self.reason}"


def start_rejects(path: Path, dumps: Sequence[Path] = ()) -> None:
    """Start the rejects file afresh (empty): the imports of one command append to it.

    Refused when it is one of the dumps: emptying it would destroy the file to import.
    """
    for dump in dumps:
        with contextlib.suppress(OSError):  # either missing: not the same file
            if path.samefile(dump):
                raise UserError(
                    f"{path}: avvisningsfilen (--rejects) er en av filene som skal importeres; "
                    "velg en annen fil"
                )
    try:
        path.write_bytes(b"")
    except OSError as e:
        raise UserError(f"{path}: kan ikke skrive avvisningsfilen ({os_reason(e)})") from None


class RejectLog:
    """Rejected records: the first few kept for display, all appended to the rejects file.

    Each line names the dump (`file`). The lines go to a temporary file first and are added
    to the rejects file when the import is over, so a file that fails leaves no lines.
    """

    def __init__(self, path: Path | None, file: str = "") -> None:
        self.path = path
        self.file = file
        self.count = 0
        self.first: list[Reject] = []
        self.orgnrs: list[str] = []  # of the rejected records that have one: still registered
        self._file: IO[str] | None = None
        self._tmp: str | None = None
        if path is not None:
            try:
                fd, self._tmp = tempfile.mkstemp(prefix=".rejects-", dir=path.parent or ".")
            except OSError as e:
                raise UserError(
                    f"{path}: kan ikke skrive avvisningsfilen ({os_reason(e)})"
                ) from None
            self._file = os.fdopen(fd, "w", encoding="utf-8")

    def add(self, reject: Reject) -> None:
        self.count += 1
        if len(self.first) < SHOWN_REJECTS:
            self.first.append(reject)
        if reject.orgnr:
            self.orgnrs.append(reject.orgnr.strip())
        if self._file is not None:
            line = {"file": self.file, **dataclasses.asdict(reject)}
            self._file.write(json.dumps(line, ensure_ascii=False) + "\n")

    def commit(self) -> None:
        if self._file is not None and self._tmp is not None and self.path is not None:
            self._file.close()
            try:
                with open(self._tmp, "rb") as lines, self.path.open("ab") as out:
                    shutil.copyfileobj(lines, out)
            except OSError as e:
                raise UserError(
                    f"{self.path}: kan ikke skrive avvisningsfilen ({os_reason(e)})"
                ) from None
            finally:
                Path(self._tmp).unlink(missing_ok=True)

    def discard(self) -> None:
        if self._file is not None and self._tmp is not None:
            self._file.close()
            Path(self._tmp).unlink(missing_ok=True)


def extract_batch(batch: Batch, kind: Kind) -> tuple[Rows, Rows, list[Reject]]:
    """Unit rows (with hash and index), contact rows (with index) and rejects of one batch."""
    rows: Rows = []
    contact_rows: Rows = []
    rejected: list[Reject] = []
    for k, record in enumerate(batch.records):
        index = batch.first_index + k
        try:
            values, addresses = unit.extract(record, kind)
        except unit.Rejected as e:
            orgnr = record.get("organisasjonsnummer")
            line = batch.lines[k] if batch.lines else None
            rejected.append(
                Reject(index + 1, line, orgnr if isinstance(orgnr, str) else None, str(e))
            )
            continue
        rows.append((*values, unit.record_hash(values), index))
        if addresses:
            contact_rows.extend(
                (*c, index) for c in unit.contact_rows(values[0], values[4], addresses)
            )
    return rows, contact_rows, rejected


def extracted(
    reader: DumpReader, rejects: RejectLog, progress: ProgressCallback
) -> Iterator[tuple[Rows, Rows]]:
    """Batches of (unit rows, contact rows), parsed in a second process for large files."""
    kind = reader.info.kind
    reader.records_read = 0
    if reader.info.size < PARALLEL_FROM_BYTES:
        results: Iterator[tuple[Rows, Rows, list[Reject], int, int]] = (
            (*extract_batch(b, kind), b.file_offset, len(b.records)) for b in reader
        )
    else:
        results = _extract_in_worker(reader.path, kind)
    for rows, contact_rows, rejected, offset, count in results:
        for r in rejected:
            rejects.add(r)
        reader.records_read += count
        yield rows, contact_rows
        progress(offset, reader.info.size, reader.records_read)


def _extract_in_worker(
    path: Path, kind: Kind
) -> Iterator[tuple[Rows, Rows, list[Reject], int, int]]:
    """Run parsing and extraction in another process while this one writes to the store."""
    ctx = multiprocessing.get_context("spawn")
    queue: Any = ctx.Queue(maxsize=4)
    worker = ctx.Process(target=_worker, args=(path, kind, queue), daemon=True)
    worker.start()
    try:
        while True:
            item = queue.get()
            if item is None:
                break
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        if worker.is_alive():
            worker.terminate()
        worker.join()
        queue.close()


def _worker(path: Path, kind: Kind, queue: Any) -> None:
    """The other process: read the dump and put extracted batches on the queue."""
    try:
        with open_dump(path) as reader:
            for batch in reader:
                queue.put((*extract_batch(batch, kind), batch.file_offset, len(batch.records)))
    except VarselError as e:
        queue.put(type(e)(e.message))
        return
    except Exception as e:  # a bug: hand it over so the importing process fails loudly
        queue.put(RuntimeError(f"import worker failed: {e!r}"))
        return
    queue.put(None)
