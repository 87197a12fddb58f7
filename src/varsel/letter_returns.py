"""What the print house reports back: letters handed to the post, and letters returned.

The report is a CSV file with a header row. Columns, by name (case does not matter, others are
ignored, so the manifest itself will do): `delivery_id` (required: the manifest's first
column), `orgnr` (optional; when given it must be the letter's), `date` (optional, YYYY-MM-DD:
when it was posted or came back; today if missing, never later than today nor earlier than the
day the letter was made) and `reason` (optional, returns only: why the post brought it back).
Comma or semicolon separated, UTF-8 with or without BOM.

The whole file is checked before anything changes: one bad row stops it with a message naming
the line, and the store is left as it was. Reading the same file twice changes nothing more.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from zoneinfo import ZoneInfo

from varsel.campaign import get_campaign
from varsel.clock import utcnow_iso
from varsel.db import Database
from varsel.digits import ascii_digits
from varsel.errors import UserError, read_user_text
from varsel.i18n import fmt_int
from varsel.message_fields import clean_text
from varsel.outbox import DeliveryState
from varsel.send_report import STATE_WORDS

MAX_REASON = 200


class ReceiptError(UserError):
    """The print house's report cannot be read."""


class Report(StrEnum):
    """What a print house report says about its letters."""

    POSTED = "posted"  # handed to the post
    RETURNED = "returned"  # came back undelivered


# From which states each report moves a letter, and the states in which it is already done.
_FROM = {
    Report.POSTED: (DeliveryState.PRODUCED,),
    Report.RETURNED: (DeliveryState.PRODUCED, DeliveryState.POSTED),
}
_DONE = {
    # A returned letter was posted first: a late "posted" report for it changes nothing.
    Report.POSTED: (DeliveryState.POSTED, DeliveryState.RETURNED),
    Report.RETURNED: (DeliveryState.RETURNED,),
}
_STATE = {Report.POSTED: DeliveryState.POSTED, Report.RETURNED: DeliveryState.RETURNED}
_WORD = {Report.POSTED: "postlagt", Report.RETURNED: "returnert"}


@dataclass(frozen=True)
class Row:
    """One checked row of a report."""

    line: int
    delivery_id: int
    date: str
    reason: str | None


@dataclass(frozen=True)
class ReceiptResult:
    """What reading one report did."""

    campaign_id: int
    report: Report
    changed: int  # letters moved to the reported state
    already: int  # letters that were in it (or past it) already

    def summary(self) -> str:
        text = (
            f"Kampanje {self.campaign_id}: {fmt_int(self.changed)} brev registrert som "
            f"{_WORD[self.report]}"
        )
        if self.already:
            text += f"; {fmt_int(self.already)} var registrert fra før"
        return text + "."


# How a user saves a CSV file this module reads, in the program print houses send them from.
EXCEL_UTF8 = "i Excel: Lagre som, «CSV UTF-8 (kommadelt)»"


def _read(path: Path) -> list[tuple[int, dict[str, str]]]:
    """(line number, row by lower-case column name) for every data row."""
    text = read_user_text(path, ReceiptError, "utf-8-sig", EXCEL_UTF8)
    head = text.split("\n", 1)[0]
    if "\t" in head and "," not in head and ";" not in head:
        raise ReceiptError(
            f"{path}, linje 1: kolonnene er skilt med tabulator; bruk komma eller semikolon "
            f"({EXCEL_UTF8})"
        )
    delimiter = ";" if head.count(";") > head.count(",") else ","
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    try:
        header = [h.strip().lower() for h in next(reader)]
    except StopIteration:
        raise ReceiptError(f"{path}: filen er tom") from None
    if "delivery_id" not in header:
        raise ReceiptError(f"{path}, linje 1: mangler kolonnen «delivery_id»")
    rows = []
    try:
        for values in reader:
            if not any(v.strip() for v in values):
                continue
            if len(values) != len(header):
                raise ReceiptError(
                    f"{path}, linje {reader.line_num}: {len(values)} felt, men overskriften har "
                    f"{len(header)}"
                )
            rows.append(
                (reader.line_num, dict(zip(header, (v.strip() for v in values), strict=True)))
            )
    except csv.Error as e:
        raise ReceiptError(f"{path}, linje {reader.line_num}: ugyldig CSV ({e})") from None
    if not rows:
        raise ReceiptError(f"{path}: ingen rader under overskriften")
    return rows


def _made_on(db: Database, delivery_id: int, zone: ZoneInfo) -> dt.date | None:
    """The day a letter was made: the date printed on it, else its event's day; None if unmade."""
    return _event_day(db, delivery_id, "letter_produced", zone)


def _posted_on(db: Database, delivery_id: int, zone: ZoneInfo) -> dt.date | None:
    """The day the print house's report said the letter was posted; None if not reported."""
    return _event_day(db, delivery_id, "letter_posted", zone)


def _event_day(db: Database, delivery_id: int, kind: str, zone: ZoneInfo) -> dt.date | None:
    """The day its latest event of this kind gives: the date in its detail, else its own day."""
    row = db.query_one(
        "SELECT at, detail FROM events WHERE delivery_id = ? AND kind = ? ORDER BY id DESC LIMIT 1",
        (delivery_id, kind),
    )
    if row is None:
        return None
    # The detail goes when the campaign forgets its contact data (erasure); and letters made
    # before the date was kept in it have none: the day the event was recorded, where the
    # campaign is run, is the same day.
    given = json.loads(row[1]).get("date") if row[1] else None
    if given:
        return dt.date.fromisoformat(given)
    return dt.datetime.fromisoformat(str(row[0]).replace("Z", "+00:00")).astimezone(zone).date()


def _check(
    db: Database, campaign_id: int, report: Report, path: Path, today: dt.date, zone: ZoneInfo
) -> tuple[list[Row], int]:
    """Every row checked against the store: (rows to apply, rows already done)."""
    seen: dict[int, int] = {}
    todo: list[Row] = []
    already = 0
    for line, values in _read(path):
        where = f"{path}, linje {line}"
        raw = values["delivery_id"]
        # A number past the stores' 64-bit ids (a column mangled in a spreadsheet) is none.
        if not ascii_digits(raw) or int(raw) >= 2**63:
            raise ReceiptError(f"{where}: «{raw[:40]}» er ikke et leveransenummer")
        delivery_id = int(raw)
        if delivery_id in seen:
            raise ReceiptError(
                f"{where}: leveranse {delivery_id} står også på linje {seen[delivery_id]}"
            )
        seen[delivery_id] = line
        row = db.query_one(
            "SELECT key, state FROM deliveries WHERE id = ? AND campaign_id = ? "
            "AND channel = 'letter'",
            (delivery_id, campaign_id),
        )
        if row is None:
            raise ReceiptError(
                f"{where}: leveranse {delivery_id} er ikke et brev i kampanje {campaign_id}"
            )
        orgnr, state = str(row[0]), DeliveryState(row[1])
        given = values.get("orgnr", "").replace(" ", "")
        if given and given != orgnr:
            raise ReceiptError(
                f"{where}: leveranse {delivery_id} gjelder org.nr. {orgnr}, ikke {given[:20]}"
            )
        date = values.get("date", "") or today.isoformat()
        try:
            day = dt.date.fromisoformat(date)
        except ValueError:
            raise ReceiptError(f"{where}: datoen «{date[:20]}» er ikke ÅÅÅÅ-MM-DD") from None
        if day > today:
            # A typo (2030 for 2026) would otherwise stand as the day it was posted or returned.
            raise ReceiptError(
                f"{where}: datoen {date} er etter i dag ({today.isoformat()}); et brev kan ikke "
                f"være {_WORD[report]} fram i tid"
            )
        made = _made_on(db, delivery_id, zone)
        if made is not None and day < made:
            # A typo (2025 for 2026, or 0001-01-01) would otherwise stand as the day it happened.
            raise ReceiptError(
                f"{where}: datoen {date} er før brev {delivery_id} ble laget "
                f"({made.isoformat()}); et brev kan ikke være {_WORD[report]} før det er laget"
            )
        posted = _posted_on(db, delivery_id, zone) if report is Report.RETURNED else None
        if posted is not None and day < posted:
            raise ReceiptError(
                f"{where}: datoen {date} er før brev {delivery_id} ble postlagt "
                f"({posted.isoformat()}); et brev kan ikke komme i retur før det er sendt"
            )
        reason = clean_text(values.get("reason", ""))[:MAX_REASON] or None
        if state in _DONE[report]:
            already += 1
        elif state in _FROM[report]:
            todo.append(Row(line, delivery_id, date, reason if report is Report.RETURNED else None))
        else:
            # Failed (no usable address) or suppressed: the letter was never printed.
            raise ReceiptError(
                f"{where}: brev {delivery_id} ble aldri laget (det er «{STATE_WORDS[state]}») "
                f"og kan ikke registreres som {_WORD[report]}"
            )
    return todo, already


def record_report(db: Database, campaign_id: int, report: Report, path: Path) -> ReceiptResult:
    """Read a print house report and move its letters to posted or returned, with events."""
    campaign = get_campaign(db, campaign_id)
    # Today where the campaign is run, as make_letters dates its letters.
    zone = ZoneInfo(campaign.spec.limits.timezone)
    today = dt.datetime.now(zone).date()
    todo, already = _check(db, campaign_id, report, path, today, zone)
    now = utcnow_iso()
    state = _STATE[report]
    with db.transaction():
        for row in todo:
            db.execute(
                "UPDATE deliveries SET state = ?, last_reply = ?, updated_at = ? WHERE id = ?",
                (state.value, row.reason, now, row.delivery_id),
            )
        db.insert_rows(
            "events",
            ("at", "campaign_id", "delivery_id", "kind", "detail"),
            [
                (
                    now,
                    campaign_id,
                    row.delivery_id,
                    f"letter_{report.value}",
                    json.dumps(
                        {"date": row.date, "file": path.name}
                        | ({"reason": row.reason} if row.reason else {}),
                        ensure_ascii=False,
                    ),
                )
                for row in todo
            ],
        )
    return ReceiptResult(campaign_id, report, len(todo), already)
