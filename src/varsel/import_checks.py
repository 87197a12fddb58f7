"""The registry import's safety checks: what the store already holds of a file, and the shrink.

A file imported before is not imported again while it is the newest, and a dump older than
the newest is refused. A file that would mark more than MAX_GONE_SHARE of the kind's units
gone, or whose records are rejected more than MAX_REJECTED_SHARE, is refused unless the
operator allows it: a wrong or cut file must not quietly throw the registry away.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from dataclasses import dataclass
from pathlib import Path

from varsel.db import Database
from varsel.dump import Kind
from varsel.errors import UserError
from varsel.i18n import fmt_int, fmt_share
from varsel.registry_extract import RejectLog
from varsel.snapshot import Snapshot, latest_snapshot, norway_today

# Shares above which an import is refused without --allow-shrink. A real nightly dump marks
# far less than 1 % of the units gone and rejects next to nothing.
MAX_GONE_SHARE = 0.05  # of the store's current units of the dump's kind
MAX_REJECTED_SHARE = 0.10  # of the dump's records


class ShrinkRefused(UserError):
    """The import would mark too many units gone or reject too many records; nothing changed."""


@dataclass(frozen=True)
class EarlierImports:
    """What the store already holds of a dump file about to be imported."""

    same: int | None  # the newest dump's snapshot when it is this very file: nothing to do
    prior: int | None  # an earlier snapshot of this file, replaced since: applied again
    date: str  # the dump's date (as stored when same, "" if the store has none)
    guessed: bool = False  # the date is the file's modification time: nothing said otherwise
    corrected_from: str | None = None  # same, and its guessed date is to become date
    guessed_from: str = ""  # a new import's guessed date: where it came from, in Bokmål


def _newest(db: Database, kind: Kind) -> Snapshot | None:
    """The newest dump of the kind applied (feed pages aside)."""
    return latest_snapshot(db, kind.value, "dump")


def is_newest(db: Database, kind: Kind, sha: str) -> bool:
    """Whether the file (by its SHA-256) is the newest dump of its kind applied: nothing to do."""
    newest = _newest(db, kind)
    return newest is not None and newest.sha256 == sha


def earlier_imports(
    db: Database, path: Path, kind: Kind, sha: str, given_date: str | None
) -> EarlierImports:
    """The file among the dumps imported before; a dump older than the newest is refused."""
    # A date given is checked whatever happens next: a wrong one is never quietly ignored.
    given = check_given_date(given_date) if given_date is not None else None
    # The store holds the newest dump applied (feed pages aside), whatever its date.
    newest = _newest(db, kind)
    if newest is not None and newest.sha256 == sha:
        if given is not None and given == newest.dump_date and newest.dump_date_guessed:
            # The guessed date confirmed: no longer a guess, nothing else changes.
            return EarlierImports(newest.id, None, given, False, newest.dump_date)
        if given is not None and given != newest.dump_date:
            _check_correction(db, path, kind, newest, given)
            return EarlierImports(newest.id, None, given, False, newest.dump_date)
        return EarlierImports(newest.id, None, newest.dump_date or "", newest.dump_date_guessed)
    prior = db.query_one(
        "SELECT id, dump_date, dump_date_guessed FROM snapshots WHERE sha256 = ? AND kind = ? "
        "AND source = 'dump' ORDER BY id DESC LIMIT 1",
        (sha, kind.value),
    )
    if prior is not None:
        # Applied before and since replaced: applying it again undoes what came after.
        if given is not None:
            return EarlierImports(None, prior[0], given)
        return EarlierImports(None, prior[0], prior[1], bool(prior[2]))
    date, guessed_from = dump_date(path, given_date)
    if newest and newest.dump_date and date < newest.dump_date:
        guess = f" (gjettet {guessed_from.partition(' (')[0]})" if guessed_from else ""
        raise UserError(
            f"{path}: dumpen er fra {date}{guess}, "
            f"men lageret har allerede en nyere ({newest.dump_date}, snapshot {newest.id}); "
            "importer den nyeste dumpen"
            + ("" if given is not None else ", eller oppgi riktig dato med --dump-date")
        )
    return EarlierImports(None, None, date, bool(guessed_from), guessed_from=guessed_from)


def _check_correction(db: Database, path: Path, kind: Kind, newest: Snapshot, given: str) -> None:
    """Refuse to change the date of the dump applied last unless it is safe: see below.

    Only a guessed date is corrected: a date given before (--dump-date, .meta.json) is the
    operator's or the registry's word. And only before any change-feed page of the kind was
    applied after it: the feed skipped the entries dated before the stored date and moved its
    watermark past them, so a corrected date would not bring them back, only hide why.
    """
    snapshot_id, stored, guessed = newest.id, newest.dump_date, newest.dump_date_guessed
    head = (
        f"{path}: allerede importert som snapshot {snapshot_id} med dumpdato {stored}; "
        f"--dump-date {given} er ikke brukt"
    )
    if not guessed:
        raise UserError(
            f"{head}: den datoen ble oppgitt ved importen (--dump-date eller .meta.json), "
            "og bare en gjettet dato kan rettes"
        )
    feed = db.scalar(
        "SELECT min(id) FROM snapshots WHERE kind = ? AND source = 'feed' AND id > ?",
        (kind.value, snapshot_id),
    )
    if feed is not None:
        raise UserError(
            f"{head}: endringssider er lagt inn etter den (snapshot {feed}) og har hoppet over "
            f"endringer eldre enn {stored}; de kommer ikke tilbake om datoen rettes. Last ned "
            "og importer en ny dump (varsel registry download), så endringssidene etter den"
        )
    before = db.query_one(
        "SELECT id, dump_date FROM snapshots WHERE kind = ? AND source = 'dump' AND id < ? "
        "AND sha256 <> ? AND dump_date > ? ORDER BY dump_date DESC LIMIT 1",
        (kind.value, snapshot_id, newest.sha256, given),
    )
    if before is not None:
        raise UserError(
            f"{head}: lageret hadde en nyere dump før denne ({before[1]}, snapshot {before[0]})"
        )


# Enhetsregisteret began in 1995: no dump of it is older (a typo, such as 1800 for 2025).
FIRST_DUMP_DATE = dt.date(1995, 1, 1)


_DATE_FORM = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


def check_given_date(given: str) -> str:
    """A --dump-date as ÅÅÅÅ-MM-DD, from 1995 and not after today: else a one-line error."""
    # fromisoformat takes 20251215 and 2025-W50-1 too: the form is checked first, so that a
    # date in the right form that does not exist (2026-02-30) is called just that.
    if not _DATE_FORM.fullmatch(given):
        raise UserError(f"--dump-date «{given}»: skriv datoen som ÅÅÅÅ-MM-DD")
    try:
        date = dt.date.fromisoformat(given)
    except ValueError:
        raise UserError(f"--dump-date «{given}»: den datoen finnes ikke") from None
    # A date after today would make every real dump after it look older.
    if date > norway_today():
        raise UserError(f"--dump-date «{given}»: datoen er etter i dag")
    if date < FIRST_DUMP_DATE:
        raise UserError(
            f"--dump-date «{given}»: datoen er før 1995, da Enhetsregisteret ble opprettet"
        )
    return date.isoformat()


# Where a guessed dump date came from, as the import's summary says it.
FROM_FILE_TIME = "fra filens endringstid (en kopi har kopieringens tid)"
FROM_DOWNLOAD_DAY = "fra nedlastingsdagen (registeret sendte ingen Last-Modified)"


def dump_date(path: Path, given: str | None) -> tuple[str, str]:
    """The dump's date and, when guessed, where from: as given, its .meta.json, the file's time.

    A date after today is refused: it would make every real dump after it look older. A
    .meta.json whose dump_date is the day of a download without Last-Modified says so
    (dump_date_guessed); one without that key is the registry's word, as before.
    """
    if given is not None:
        return check_given_date(given), ""
    sidecar = path.with_name(path.name + ".meta.json")
    if sidecar.exists():
        try:
            meta = json.loads(sidecar.read_text("utf-8"))
            if isinstance(meta, dict) and isinstance(meta.get("dump_date"), str):
                date = dt.date.fromisoformat(meta["dump_date"])
                guessed = meta.get("dump_date_guessed") is True
            else:
                date = None
        except (OSError, ValueError):
            date = None  # a broken sidecar only loses the date; the file's time is the fallback
        if date is not None and date > norway_today():
            # Taken as the registry's word, it would skip every change after it, for good.
            raise UserError(
                f"{sidecar}: dumpdatoen {date.isoformat()} er etter i dag; oppgi riktig dato "
                "med --dump-date ÅÅÅÅ-MM-DD"
            )
        if date is not None:
            return date.isoformat(), FROM_DOWNLOAD_DAY if guessed else ""
    return dt.date.fromtimestamp(path.stat().st_mtime).isoformat(), FROM_FILE_TIME


class ShrinkCheck:
    """Refuses a merge that marks too many units gone or rejected too many records."""

    def __init__(self, path: Path, kind: Kind, rejects: RejectLog, allowed: bool) -> None:
        self.path = path
        self.kind = kind
        self.rejects = rejects
        self.allowed = allowed
        self.records = 0

    def __call__(self, counts: dict[str, int], current: int) -> None:
        """Raise ShrinkRefused past a limit; current: the kind's units not gone before."""
        if self.allowed or current == 0:  # nothing to lose in an empty store
            return
        gone, rejected = counts["gone"], self.rejects.count
        problems = []
        if gone > MAX_GONE_SHARE * current:
            problems.append(
                f"{fmt_int(gone)} av {fmt_int(current)} {self.kind.value} i lageret ville blitt "
                f"merket som borte ({fmt_share(gone, current)}; grensen er "
                f"{MAX_GONE_SHARE * 100:g}\u00a0%)"
            )
        if rejected > MAX_REJECTED_SHARE * self.records:
            problems.append(
                f"{fmt_int(rejected)} av {fmt_int(self.records)} poster ville blitt avvist "
                f"({fmt_share(rejected, self.records)}; grensen er "
                f"{MAX_REJECTED_SHARE * 100:g}\u00a0%)"
            )
        if not problems:
            return
        raise ShrinkRefused(
            f"{self.path}: ikke importert: {' og '.join(problems)}. Importen ville gitt "
            f"{fmt_int(counts['new'])} nye, {fmt_int(counts['changed'])} endret, "
            f"{fmt_int(counts['unchanged'])} uendret, {fmt_int(gone)} borte, "
            f"{fmt_int(rejected)} avvist; lageret er ikke endret. Er filen riktig, "
            "importer den med --allow-shrink."
        )
