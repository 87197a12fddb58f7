"""Postal letters for the units e-mail cannot reach: print-ready PDF batches and a manifest.

A unit of a campaign gets a letter when it has no e-mail delivery at all (no usable address)
or when every e-mail delivery naming it hard-bounced or was refused for good (the rule of
bounces.units_needing_another_channel). Each letter is a delivery of
channel `letter` (key and address: the orgnr) with its own verification code. It is written
to the store as `produced` in the same step that finishes its batch file, so a letter is never
left in a state the e-mail sender would claim, and running `varsel letters` again makes
letters only for units that have none yet: nothing is printed twice. Who needs a letter and
where it goes is letter_candidates.py's; a run's number, and clearing what a run that died left,
letter_runs.py's; the manifest's rows and the unreachable list, letter_manifest.py's.
"""

from __future__ import annotations

import csv
import dataclasses
import datetime as dt
import fcntl
import json
import os
import secrets
import signal
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from varsel import codes
from varsel.campaign import CampaignStatus, get_campaign
from varsel.clock import utcnow_iso
from varsel.config import Settings
from varsel.db import Database
from varsel.errors import UserError, os_reason
from varsel.exports import make_private_folder, private_opener
from varsel.i18n import fmt_count, fmt_int
from varsel.letter_candidates import UNREACHABLE_TEXT, Candidate, Unreachable, candidates
from varsel.letter_manifest import (
    MANIFEST_COLUMNS,
    UNREACHABLE,
    manifest_row,
    write_unreachable,
)
from varsel.letter_render import Letter, PostalAddress, Renderer
from varsel.letter_runs import MANIFEST, start_run, take_back_unfinished
from varsel.outbox import DeliveryState, record_event
from varsel.retention import forgotten_at

DEFAULT_BATCH_SIZE = 500
# A letter delivery in one of these states has been printed (or at least written to a batch
# file): it is never made again.
DONE_STATES = (DeliveryState.PRODUCED, DeliveryState.POSTED, DeliveryState.RETURNED)


class LetterError(UserError):
    """Letters cannot be made as asked."""


@dataclass(frozen=True)
class LetterRun:
    """What one `varsel letters` run did."""

    campaign_id: int
    out_dir: Path
    letters: int  # letters made in this run
    batches: tuple[str, ...]  # batch file names, in order
    unreachable: int  # units that need a letter but have no usable address
    suppressed: int  # units that asked not to be contacted
    before: int  # units whose letter was made by an earlier run
    letter_files: int = 0
    by_reason: dict[str, int] = field(default_factory=dict)
    remade: int = 0  # of `letters`: made again, their batch of a run that died never finished

    def summary(self) -> str:
        lines = [
            f"Kampanje {self.campaign_id}: {fmt_int(self.letters)} brev i "
            f"{fmt_count(len(self.batches), 'PDF-bunke', 'PDF-bunker')} i {self.out_dir} "
            f"(oversikt: {MANIFEST})."
        ]
        if self.remade:
            lines.append(
                f"{fmt_int(self.remade)} brev ble lagt tilbake i køen: en kjøring som stanset, "
                "rakk ikke å gjøre bunken deres ferdig (den uferdige .part-filen er slettet)."
            )
        if self.letter_files:
            files = "egen PDF-fil" if self.letter_files == 1 else "egne PDF-filer"
            lines.append(f"{fmt_int(self.letter_files)} brev også som {files}.")
        if self.unreachable:
            reasons = ", ".join(
                f"{fmt_int(n)} {UNREACHABLE_TEXT[Unreachable(k)]}"
                for k, n in sorted(self.by_reason.items())
            )
            lines.append(
                f"{fmt_count(self.unreachable, 'enhet', 'enheter')} kan ikke nås med brev "
                f"({reasons}); "
                f"se {UNREACHABLE}."
            )
        if self.suppressed:
            who = fmt_count(self.suppressed, "enhet", "enheter")
            lines.append(f"{who} har bedt om ikke å bli kontaktet.")
        if self.before:
            lines.append(f"{fmt_int(self.before)} brev ble laget tidligere og lages ikke på nytt.")
        return "\n".join(lines)

    def as_dict(self) -> dict[str, Any]:
        return {
            "campaign_id": self.campaign_id,
            "out_dir": str(self.out_dir),
            "letters": self.letters,
            "batches": list(self.batches),
            "unreachable": self.unreachable,
            "unreachable_by_reason": dict(self.by_reason),
            "suppressed": self.suppressed,
            "before": self.before,
            "letter_files": self.letter_files,
            "remade": self.remade,
        }


def _sort_key(letter: Letter) -> tuple[int, str, str, str]:
    # Norwegian postcodes in order (what bulk-mail pricing asks for), letters abroad last.
    a = letter.address
    return (
        (1, a.country or "", a.postcode, letter.orgnr)
        if a.country
        else (0, "", a.postcode, letter.orgnr)
    )


def new_delivery(
    db: Database,
    campaign_id: int,
    orgnr: str,
    language: str,
    state: DeliveryState,
    code: str,
    now: str,
    last_reply: str | None = None,
    *,
    channel: str = "letter",
) -> int:
    """A delivery to one unit on a channel that reaches it by orgnr (letter, altinn).

    Key and address are the orgnr, so a unit has at most one per campaign and channel.
    """
    delivery_id = int(
        db.execute(
            "INSERT INTO deliveries (campaign_id, channel, key, address, language, state, code, "
            "unsubscribe_token, last_reply, created_at, updated_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
            (
                campaign_id,
                channel,
                orgnr,
                orgnr,
                language,
                state.value,
                code,
                secrets.token_urlsafe(18),
                last_reply,
                now,
                now,
            ),
        ).fetchone()[0]
    )
    db.execute(
        "INSERT INTO delivery_units (delivery_id, orgnr) VALUES (?, ?)", (delivery_id, orgnr)
    )
    return delivery_id


def _new_code() -> str:
    return codes.new_code().replace("-", "")  # the canonical form the store keeps


def _settle_unsendable(db: Database, campaign_id: int, todo: Sequence[Candidate], now: str) -> None:
    """Record suppressed and unreachable units as letter deliveries in a final state."""
    events: list[tuple[Any, ...]] = []
    with db.transaction():
        for c in todo:
            state = DeliveryState.SUPPRESSED if c.suppressed else DeliveryState.FAILED
            why = None if c.suppressed or c.unreachable is None else c.unreachable.value
            if c.letter_id is None:
                delivery_id = new_delivery(
                    db, campaign_id, c.orgnr, c.language, state, _new_code(), now, why
                )
            elif c.letter_state is state and c.letter_reply == why:
                continue
            else:
                delivery_id = c.letter_id
                db.execute(
                    "UPDATE deliveries SET state = ?, last_reply = ?, updated_at = ? WHERE id = ?",
                    (state.value, why, now, delivery_id),
                )
            kind = "letter_suppressed" if c.suppressed else "letter_unreachable"
            detail = json.dumps({"reason": why}) if why else None
            events.append((now, campaign_id, delivery_id, kind, detail))
        db.insert_rows("events", ("at", "campaign_id", "delivery_id", "kind", "detail"), events)


def _letters_to_make(todo: Sequence[tuple[Candidate, PostalAddress]]) -> list[Letter]:
    """The letters of this run, sorted by postcode; new ones get their delivery id when written."""
    letters: list[Letter] = []
    for c, address in todo:
        # A unit whose earlier letter was never printed (an unreachable one whose address has
        # since come) keeps its delivery and code; the others get new ones when written.
        letters.append(
            Letter(
                delivery_id=c.letter_id or 0,
                orgnr=c.orgnr,
                name=c.name,
                language=c.language,
                code=c.letter_code or _new_code(),
                address=address,
                reason=c.reason,
            )
        )
    return sorted(letters, key=_sort_key)


class _HeldInterrupt:
    """Ctrl-C held back from hold() until the block ends, then raised as it would have been.

    A batch is done when its rows are committed, its files renamed and its manifest rows
    written: an interrupt in between would leave letters recorded as made that no manifest
    lists, or a file that is never renamed. Signals reach only the main thread, so elsewhere
    (the console's threads) there is nothing to hold.
    """

    def __init__(self) -> None:
        self._held: list[tuple[int, Any]] = []
        self._previous: Any = None
        self.holding = False

    def hold(self) -> None:
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGINT, lambda *a: self._held.append(a))
        self.holding = True

    def __enter__(self) -> _HeldInterrupt:
        return self

    def __exit__(self, *exc: object) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)
            self._previous = None
            if self._held and callable(handler := signal.getsignal(signal.SIGINT)):
                handler(*self._held[0])


def _write_batch(
    db: Database,
    campaign_id: int,
    renderer: Renderer,
    letters: Sequence[Letter],
    path: Path,
    day: dt.date,
    *,
    per_letter: bool,
    done: Callable[[list[Letter]], None],
) -> list[Letter]:
    """Render one batch and record its letters as produced; returns them with their ids.

    Each letter's event keeps the date printed on it: no print house report may say it was
    posted or returned before it (letter_returns). `done` writes the batch's manifest rows
    once it is committed. With per_letter, each letter's own file is made with the batch,
    before the commit, so that no failure in making them leaves a committed batch unlisted.
    """
    now = utcnow_iso()
    placed: list[Letter] = []
    parts: list[tuple[Path, Path]] = []
    with _HeldInterrupt() as interrupt:
        try:
            with db.transaction():
                _refuse_made_meanwhile(db, campaign_id, letters)
                # Ids are needed on the page (the reference), so the rows come first; if
                # rendering fails, the transaction takes them back.
                for letter in letters:
                    if letter.delivery_id:
                        db.execute(
                            "UPDATE deliveries SET state = ?, last_reply = NULL, updated_at = ? "
                            "WHERE id = ?",
                            (DeliveryState.PRODUCED.value, now, letter.delivery_id),
                        )
                        placed.append(letter)
                    else:
                        delivery_id = new_delivery(
                            db,
                            campaign_id,
                            letter.orgnr,
                            letter.language,
                            DeliveryState.PRODUCED,
                            letter.code,
                            now,
                        )
                        placed.append(dataclasses.replace(letter, delivery_id=delivery_id))
                parts.append((path.with_name(path.name + ".part"), path))
                renderer.render(placed, parts[-1][0])
                for letter in placed if per_letter else ():
                    single = path.with_name(letter_file(campaign_id, letter))
                    parts.append((single.with_name(single.name + ".part"), single))
                    renderer.render([letter], parts[-1][0])
                db.insert_rows(
                    "events",
                    ("at", "campaign_id", "delivery_id", "kind", "detail"),
                    [
                        (
                            now,
                            campaign_id,
                            letter.delivery_id,
                            "letter_produced",
                            json.dumps({"batch": path.name, "page": page, "date": day.isoformat()}),
                        )
                        for page, letter in enumerate(placed, start=1)
                    ],
                )
                # From here to the manifest rows, Ctrl-C waits: the commit is under way.
                interrupt.hold()
        except BaseException:
            if not interrupt.holding:
                # Not recorded: a file of letters the store does not know (their codes
                # would be unknown on the verify page) must not be left to be sent.
                for part, _ in parts:
                    part.unlink(missing_ok=True)
            raise
        # After the commit: a file on disk always holds letters the store knows as produced.
        # Should the process be killed just before these lines, the complete file is left
        # as .part.
        for part, final in parts:
            os.replace(part, final)
        done(placed)
    return placed


def _refuse_made_meanwhile(db: Database, campaign_id: int, letters: Sequence[Letter]) -> None:
    """LetterError if another run has made or begun a letter of the batch since this one began.

    Two runs of one campaign at once (two operators) would otherwise print the same unit's
    letter twice, or stop on the store's unique key with a traceback.
    """
    if db.dialect == "postgresql":
        # Batches of one campaign are recorded one at a time, so the check below holds.
        db.execute("SELECT id FROM campaigns WHERE id = ? FOR UPDATE", (campaign_id,))
    expected = {letter.orgnr: letter.delivery_id for letter in letters}
    rows = db.query(
        "SELECT key, id, state FROM deliveries WHERE campaign_id = ? AND channel = 'letter' "
        f"AND key IN ({', '.join('?' for _ in expected)})",
        (campaign_id, *expected),
    )
    if any(int(i) != expected[k] or state in DONE_STATES for k, i, state in rows):
        raise LetterError(
            f"kampanje {campaign_id}: en annen kjøring av «varsel letters» har laget brev til de "
            "samme enhetene i mellomtiden; denne stanset før den laget dem to ganger (bunkene "
            "den laget før, er hele); kjør igjen i en ny mappe når den andre er ferdig"
        )


def letter_file(campaign_id: int, letter: Letter) -> str:
    """The name of a letter's own PDF (--per-letter)."""
    return f"brev-{campaign_id}-{letter.delivery_id}.pdf"


def _check_run(
    db: Database, campaign_id: int, status: CampaignStatus, out_dir: Path, batch_size: int
) -> None:
    """LetterError unless the campaign can have letters and out_dir can take a new run."""
    if status is CampaignStatus.CANCELLED:
        raise LetterError(f"kampanje {campaign_id} er kansellert; det lages ingen brev")
    if forgotten_at(db, campaign_id) is not None:
        # Who needs a letter is read from the e-mail replies and addresses forget erased.
        raise LetterError(
            f"kampanje {campaign_id} har glemt kontaktopplysningene sine, så det kan ikke "
            "lenger avgjøres hvem som trenger brev; brevene må lages før «campaign forget»"
        )
    if batch_size < 1:
        raise LetterError("bunkestørrelsen må være minst 1")
    if (out_dir / MANIFEST).exists():
        raise LetterError(
            f"{out_dir} har allerede en {MANIFEST} fra en tidligere kjøring; velg en ny mappe"
        )
    try:
        # The letters and their lists name businesses: personal data (exports.py).
        make_private_folder(out_dir)
    except OSError as e:
        raise LetterError(f"{out_dir}: mappen kan ikke lages ({os_reason(e)})") from None


def make_letters(
    db: Database,
    campaign_id: int,
    out_dir: Path,
    *,
    per_letter: bool = False,
    batch_size: int = DEFAULT_BATCH_SIZE,
    actor: str | None = None,
    today: dt.date | None = None,
    progress: Callable[[int], None] | None = None,
    on_start: Callable[[Database], None] | None = None,
) -> LetterRun:
    """Make the letters of a campaign that have not been made: batch PDFs and manifest.csv.

    `on_start` runs once every check has passed, before anything is stored or printed, in the
    transaction that records the run as started: make_letters_checked's gate, which audits
    the run there.
    """
    campaign = get_campaign(db, campaign_id)
    _check_run(db, campaign_id, campaign.status, out_dir, batch_size)
    manifest_path = out_dir / MANIFEST
    remade = take_back_unfinished(db, campaign_id)

    found = candidates(db, campaign_id)
    before = int(
        db.scalar(
            "SELECT count(*) FROM deliveries WHERE campaign_id = ? AND channel = 'letter' "
            f"AND state IN ({', '.join('?' for _ in DONE_STATES)})",
            (campaign_id, *(s.value for s in DONE_STATES)),
        )
        or 0
    )
    open_ = [c for c in found if c.letter_state not in DONE_STATES]
    sendable = [(c, c.address) for c in open_ if not c.suppressed and c.address is not None]
    unsendable = [c for c in open_ if c.suppressed or c.address is None]
    letters = _letters_to_make(sendable)
    day = today or dt.datetime.now(ZoneInfo(campaign.spec.limits.timezone)).date()
    renderer = Renderer(campaign_id, campaign.spec, day, campaign.spec.sender_postal_address)
    # A template that cannot make a letter is found before anything is stored or written.
    for language in sorted({letter.language for letter in letters}):
        renderer.texts.render(next(x for x in letters if x.language == language))
    # So is an address the envelope window cannot take: that one letter is left out, listed
    # and recorded as unreachable like a missing address, and every other letter is made.
    too_long = {letter.orgnr for letter in renderer.misfits(letters)}
    if too_long:
        letters = [letter for letter in letters if letter.orgnr not in too_long]
        unsendable += [
            dataclasses.replace(c, unreachable=Unreachable.TOO_LONG)
            for c, _ in sendable
            if c.orgnr in too_long
        ]
    unreachable = [
        (c, c.unreachable or Unreachable.NO_ADDRESS)
        for c in sorted(unsendable, key=lambda c: c.orgnr)
        if not c.suppressed
    ]
    with db.transaction():
        if on_start is not None:
            on_start(db)
        run = start_run(db, campaign_id, out_dir)
    _settle_unsendable(db, campaign_id, unsendable, utcnow_iso())
    batches: list[str] = []
    files = 0
    with open(manifest_path, "w", encoding="utf-8", newline="", opener=private_opener) as manifest:
        # Held while the run goes on: a run started meanwhile clears only dead runs' folders.
        fcntl.flock(manifest, fcntl.LOCK_EX)
        writer = csv.writer(manifest)
        writer.writerow(MANIFEST_COLUMNS)
        for number, start in enumerate(range(0, len(letters), batch_size), start=1):
            name = f"brev-{campaign_id}-{run}-{number:03d}.pdf"

            def listed(placed: list[Letter], name: str = name) -> None:
                for page, letter in enumerate(placed, start=1):
                    single = letter_file(campaign_id, letter) if per_letter else ""
                    writer.writerow(manifest_row(letter, name, page, single))
                manifest.flush()

            placed = _write_batch(
                db,
                campaign_id,
                renderer,
                letters[start : start + batch_size],
                out_dir / name,
                day,
                per_letter=per_letter,
                done=listed,
            )
            batches.append(name)
            files += len(placed) if per_letter else 0
            if progress is not None:
                progress(len(placed))
    write_unreachable(out_dir / UNREACHABLE, unreachable)
    by_reason: dict[str, int] = {}
    for _, why in unreachable:
        by_reason[why.value] = by_reason.get(why.value, 0) + 1
    result = LetterRun(
        campaign_id,
        out_dir,
        len(letters),
        tuple(batches),
        len(unreachable),
        sum(1 for c in unsendable if c.suppressed),
        before,
        files,
        by_reason,
        remade,
    )
    _record_run(db, campaign_id, run, result, actor)
    return result


def make_letters_checked(
    db: Database,
    settings: Settings,
    campaign_id: int,
    out_dir: Path,
    *,
    actor: str,
    no_approval: bool = False,
    per_letter: bool = False,
    batch_size: int = DEFAULT_BATCH_SIZE,
    progress: Callable[[int], None] | None = None,
) -> LetterRun:
    """Make the letters after the four-eyes gate that `campaign send` passes; audited.

    The run is audited (`letters_make`, with the approval it relied on) only once every check
    has passed: a run refused for its folder, its campaign or its templates leaves no entry.
    """
    from varsel import audit
    from varsel.send_gate import check_send, gate_detail

    check_send(db, settings, campaign_id, no_approval=no_approval)  # refuse at once

    def gate(db: Database) -> None:
        approval = check_send(db, settings, campaign_id, no_approval=no_approval)
        audit.record(
            db,
            actor,
            audit.Action.LETTERS_MAKE,
            f"campaign:{campaign_id}",
            {**gate_detail(no_approval, approval), "out_dir": str(out_dir)},
        )

    return make_letters(
        db,
        campaign_id,
        out_dir,
        per_letter=per_letter,
        batch_size=batch_size,
        actor=actor,
        progress=progress,
        on_start=gate,
    )


def _record_run(
    db: Database, campaign_id: int, run: int, result: LetterRun, actor: str | None
) -> None:
    # The manifest and the unreachable list name businesses and, for sole proprietorships,
    # people with their addresses: a personal-data export, so it goes into the audit log.
    # Only counts are recorded, never names or addresses.
    from varsel import audit

    detail = {"run": run, **result.as_dict()}
    with db.transaction():
        record_event(db, campaign_id, None, "letters_run", detail)
        audit.record(
            db,
            actor or audit.SYSTEM,
            audit.Action.PERSONAL_DATA_EXPORT,
            f"campaign:{campaign_id}",
            {
                "what": "letters",
                "files": [MANIFEST, UNREACHABLE, *result.batches],
                "out_dir": str(result.out_dir),
                "letters": result.letters,
                "unreachable": result.unreachable,
            },
        )


def letter_counts(db: Database, campaign_id: int) -> dict[str, int]:
    """Letter deliveries of a campaign in each state that letters use."""
    out = {s.value: 0 for s in (*DONE_STATES, DeliveryState.FAILED, DeliveryState.SUPPRESSED)}
    for state, n in db.query(
        "SELECT state, count(*) FROM deliveries WHERE campaign_id = ? AND channel = 'letter' "
        "GROUP BY state",
        (campaign_id,),
    ):
        out[state] = int(n)
    return out
