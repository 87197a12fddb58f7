"""Exports of the units a campaign did not reach, with postal addresses, as CSV or XLSX.

These files hold personal data (sole proprietorships are people), so every export goes into
the audit log.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from varsel import audit
from varsel.coverage import (
    NOT_REACHED,
    Outcome,
    UnitOutcome,
    label,
    municipality_name,
    unit_outcomes,
)
from varsel.db import Database
from varsel.errors import Text, UserError, os_reason
from varsel.exports import csv_cell, name_taken, private_opener, taken
from varsel.i18n import fmt_count
from varsel.outbox import DeliveryState, record_event
from varsel.segment import FOREIGN

EXPORT_COLUMNS = (
    "organisasjonsnummer",
    "navn",
    "organisasjonsform",
    "kommunenummer",
    "kommune",
    "utfall",
    "årsak",
    "adresse",
    "postnummer",
    "poststed",
    "land",
    "adressetype",
)


class ExportError(UserError):
    """The export could not be written."""


@dataclass(frozen=True)
class ExportResult:
    """What an export wrote."""

    path: Path
    rows: int
    format: str

    def summary(self) -> str:
        units = fmt_count(self.rows, "ikke nådd enhet", "ikke nådde enheter")
        return f"Skrev {units} til {self.path} ({self.format})."


def export_row(u: UnitOutcome, reason: str | None = None) -> list[str]:
    """One unit as the export's cells, in EXPORT_COLUMNS order.

    `reason` is a returned letter's reason as the print house gave it; it fills `årsak`.
    """
    kinds = {"post": "postadresse", "business": "forretningsadresse"}
    return [
        u.orgnr,
        u.name,
        u.form,
        "" if u.municipality == FOREIGN else u.municipality,
        municipality_name(u.municipality),
        label(u.outcome),
        reason or label(u.detail),
        ", ".join(u.address_lines),
        u.postcode or "",
        u.city or "",
        u.country or "",
        kinds.get(u.address_kind or "", "ingen adresse"),
    ]


def _return_reasons(db: Database, campaign_id: int) -> dict[str, str]:
    """Why each returned letter came back, by orgnr, as `letters returned` stored it."""
    return {
        str(orgnr): str(reason)
        for orgnr, reason in db.query(
            "SELECT key, last_reply FROM deliveries WHERE campaign_id = ? AND channel = 'letter' "
            "AND state = ? AND last_reply IS NOT NULL",
            (campaign_id, DeliveryState.RETURNED.value),
        )
    }


def export_unreached(
    db: Database,
    campaign_id: int,
    path: Path,
    *,
    actor: str,
    include_suppressed: bool = False,
) -> ExportResult:
    """Write the units not reached, with postal addresses, to a new CSV or XLSX file; record it.

    Suppressed units asked not to be contacted, so they are left out unless asked for.
    """
    suffix = path.suffix.lower()
    if suffix not in (".csv", ".xlsx"):
        raise ExportError(Text("%(path)s: filen må slutte på .csv eller .xlsx", path=str(path)))
    if not path.parent.is_dir():
        raise ExportError(
            Text("%(path)s: mappen %(folder)s finnes ikke", path=str(path), folder=str(path.parent))
        )
    # Never over another file (a letters manifest.csv, last week's list): as `varsel backup`.
    exists = name_taken(path)
    if taken(path):
        raise ExportError(exists)
    wanted = tuple(o for o in NOT_REACHED if include_suppressed or o is not Outcome.SUPPRESSED)
    returned = _return_reasons(db, campaign_id)
    units = (
        export_row(u, returned.get(u.orgnr) if u.outcome is Outcome.LETTER_RETURNED else None)
        for u in unit_outcomes(db, campaign_id, wanted)
    )
    tmp = path.with_name(f".{path.name}.part")
    try:
        rows = _write_csv(tmp, units) if suffix == ".csv" else _write_xlsx(tmp, units)
        # A link, not a rename: a file that appeared at the path meanwhile is not replaced.
        try:
            os.link(tmp, path)
        except FileExistsError:
            raise ExportError(exists) from None
        tmp.unlink()
    except OSError as e:
        tmp.unlink(missing_ok=True)
        raise ExportError(
            Text("%(path)s: kan ikke skrives (%(error)s)", path=str(path), error=os_reason(e))
        ) from None
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    result = ExportResult(path, rows, suffix[1:])
    _record_export(db, campaign_id, result, actor, include_suppressed)
    return result


def _write_csv(path: Path, rows: Iterator[list[str]]) -> int:
    # Semicolons and a byte-order mark: what Excel with Norwegian settings opens correctly.
    n = 0
    with open(path, "w", encoding="utf-8-sig", newline="", opener=private_opener) as f:
        writer = csv.writer(f, delimiter=";")
        writer.writerow(EXPORT_COLUMNS)
        for row in rows:
            writer.writerow([csv_cell(cell) for cell in row])
            n += 1
    return n


def _write_xlsx(path: Path, rows: Iterator[list[str]]) -> int:
    import xlsxwriter  # type: ignore[import-untyped]

    # xlsxwriter writes into the file it finds, which keeps its mode: made private first.
    os.close(private_opener(str(path), os.O_WRONLY | os.O_CREAT | os.O_TRUNC))
    # constant_memory writes each row as it comes: a national export stays small in memory.
    book = xlsxwriter.Workbook(str(path), {"constant_memory": True})
    try:
        sheet = book.add_worksheet("Ikke nådd")
        bold = book.add_format({"bold": True})
        for col, name in enumerate(EXPORT_COLUMNS):
            sheet.write_string(0, col, name, bold)
        widths = [14, 40, 8, 8, 18, 24, 30, 40, 8, 18, 14, 16]
        for col, width in enumerate(widths):
            sheet.set_column(col, col, width)
        n = 0
        for n, row in enumerate(rows, start=1):
            for col, cell in enumerate(row):
                # write_string: every cell is text, never a formula or a number (leading zeros)
                sheet.write_string(n, col, cell)
        sheet.autofilter(0, 0, n, len(EXPORT_COLUMNS) - 1)
        sheet.freeze_panes(1, 0)
    finally:
        book.close()
    return n


def _record_export(
    db: Database, campaign_id: int, result: ExportResult, actor: str, include_suppressed: bool
) -> None:
    """Log the personal-data export in the audit log: who, what, how many, where (no names)."""
    detail = {
        "what": "unreached",
        "format": result.format,
        "rows": result.rows,
        "file": str(result.path.resolve()),
        "include_suppressed": include_suppressed,
    }
    with db.transaction():
        record_event(db, campaign_id, None, "export_unreached", {**detail, "actor": actor})
        audit.record(
            db, actor, audit.Action.PERSONAL_DATA_EXPORT, f"campaign:{campaign_id}", detail
        )
