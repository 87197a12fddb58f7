"""A letters run's number, and what runs that died left half-made in their folders.

Each run of `varsel letters` is numbered (`letters_started`), and its batch files are named
after the number. A run holds a lock on its manifest while it goes on; the next run clears
what a run that died left behind: files of letters never recorded, and letters recorded as
made that no manifest lists (they go back in the queue).
"""

from __future__ import annotations

import fcntl
import json
from pathlib import Path

from varsel.clock import utcnow_iso
from varsel.db import Database
from varsel.outbox import DeliveryState, record_event

# A run's list of its letters (letters.py writes it), locked while the run goes on.
MANIFEST = "manifest.csv"


def start_run(db: Database, campaign_id: int, out_dir: Path) -> int:
    """A new run's number, recorded as started (`letters_started`): no earlier run had it.

    Batch files are named after it, so a number used twice would give two runs' batches the
    same names: at the print house one would overwrite the other, and letters recorded as made
    would never be printed. A run that dies records no `letters_run`, so counting those would
    hand its number out again; the started runs are counted instead.
    """
    if db.dialect == "postgresql":
        # Two runs of one campaign starting at once wait here for each other's number.
        db.execute("SELECT id FROM campaigns WHERE id = ? FOR UPDATE", (campaign_id,))
    started, finished = _recorded_runs(db, campaign_id)
    run = 1 + max(started.keys() | finished, default=0)
    # A run that died before runs were recorded when they start left only its batches' names.
    while db.scalar(
        "SELECT count(*) FROM events WHERE campaign_id = ? AND kind = 'letter_produced' "
        "AND detail LIKE ?",
        (campaign_id, f'%"batch": "brev-{campaign_id}-{run}-%'),
    ):
        run += 1
    record_event(db, campaign_id, None, "letters_started", {"run": run, "out_dir": str(out_dir)})
    return run


def _recorded_runs(db: Database, campaign_id: int) -> tuple[dict[int, Path | None], set[int]]:
    """The campaign's runs as recorded: those started (with their folder, where recorded) and
    those finished (`letters_run`), by run number."""
    started: dict[int, Path | None] = {}
    finished: set[int] = set()
    for kind, detail in db.query(
        "SELECT kind, detail FROM events WHERE campaign_id = ? "
        "AND kind IN ('letters_started', 'letters_run') AND detail IS NOT NULL",
        (campaign_id,),
    ):
        data = json.loads(detail)
        run = int(data.get("run") or 0)
        if not run:
            continue
        if kind == "letters_run":
            finished.add(run)
        else:
            started[run] = Path(data["out_dir"]) if data.get("out_dir") else None
    return started, finished


def take_back_unfinished(db: Database, campaign_id: int) -> int:
    """Clear what runs that died left half-made; the number of letters put back in the queue.

    A batch's PDF is written as `.part` and gets its name after its letters are committed as
    made. A run killed while rendering leaves a `.part` of letters the store never recorded:
    it is deleted (its codes would be unknown on the verify page). A run killed between the
    commit and the rename leaves a `.part` of letters recorded as made that no manifest lists
    and nobody will print: those letters go back in the queue (same delivery, same code) for
    this run to make, and the file and their own PDFs (--per-letter) are deleted. A run still
    going holds a lock on its manifest: its folder is left alone.
    """
    started, finished = _recorded_runs(db, campaign_id)
    again = 0
    for run, folder in sorted(started.items()):
        if run in finished or folder is None:
            continue
        try:
            with open(folder / MANIFEST, "rb") as manifest:
                fcntl.flock(manifest, fcntl.LOCK_EX | fcntl.LOCK_NB)
                again += _clear_folder(db, campaign_id, run, folder)
        except OSError:
            continue  # still running (locked), or the folder is gone or not ours to read
    return again


def _clear_folder(db: Database, campaign_id: int, run: int, folder: Path) -> int:
    again = 0
    for part in sorted(folder.glob(f"brev-{campaign_id}-{run}-*.pdf.part")):
        batch = part.name.removesuffix(".part")
        ids = [
            int(i)
            for (i,) in db.query(
                "SELECT e.delivery_id FROM events e JOIN deliveries d ON d.id = e.delivery_id "
                "WHERE e.campaign_id = ? AND e.kind = 'letter_produced' AND e.detail LIKE ? "
                "AND d.state = ?",
                (campaign_id, f'%"batch": "{batch}"%', DeliveryState.PRODUCED.value),
            )
        ]
        if ids:
            with db.transaction():
                now = utcnow_iso()
                for delivery_id in ids:
                    db.execute(
                        "UPDATE deliveries SET state = ?, updated_at = ? WHERE id = ?",
                        (DeliveryState.QUEUED.value, now, delivery_id),
                    )
                detail = {"run": run, "batch": batch, "letters": len(ids)}
                record_event(db, campaign_id, None, "letters_unfinished_batch", detail)
        for delivery_id in ids:
            (folder / f"brev-{campaign_id}-{delivery_id}.pdf").unlink(missing_ok=True)
        part.unlink(missing_ok=True)
        again += len(ids)
    # The letters' own files of a batch that was never committed (their ids were taken back).
    for single in folder.glob(f"brev-{campaign_id}-*.pdf.part"):
        single.unlink(missing_ok=True)
    return again
