# The registry_db fixture is imported from test_letters, so the tests' parameters of that name
# redefine the import, as pytest means them to.
# ruff: noqa: F811
"""Letters runs: numbered once each, and what a run that died left is cleared by the next."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from test_letters import (  # noqa: F401  # registry_db is a fixture
    TODAY,
    campaign,
    died_at_second_batch,
    email_deliveries,
    fail_at_batch,
    hard_bounce,
    manifest,
    produced_batches,
    registry_db,
)
from varsel.config import Settings
from varsel.db import Database
from varsel.letters import make_letters


def test_a_run_after_one_that_died_never_reuses_its_batch_names(
    registry_db: Database, settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The run that died recorded no letters_run: its number must not be handed out again,
    # or two runs' batches share names and one overwrites the other at the print house.
    cid = campaign(registry_db, settings, tmp_path)
    with monkeypatch.context() as m:
        fail_at_batch(m, 2)
        with pytest.raises(RuntimeError):
            make_letters(registry_db, cid, tmp_path / "one", batch_size=1, today=TODAY)
    first = produced_batches(registry_db)
    assert set(first.values()) == {f"brev-{cid}-1-001.pdf"}
    assert [r["batch_file"] for r in manifest(tmp_path / "one")] == [f"brev-{cid}-1-001.pdf"]
    kept = (tmp_path / "one" / f"brev-{cid}-1-001.pdf").read_bytes()
    run = make_letters(registry_db, cid, tmp_path / "two", batch_size=1, today=TODAY)
    assert run.batches == (f"brev-{cid}-2-001.pdf", f"brev-{cid}-2-002.pdf")
    assert (run.letters, run.before) == (2, 1)
    after = produced_batches(registry_db)
    assert {d: b for d, b in after.items() if d in first} == first
    assert len(set(after.values())) == 3  # one name, one batch
    assert (tmp_path / "one" / f"brev-{cid}-1-001.pdf").read_bytes() == kept
    started = registry_db.query(
        "SELECT detail FROM events WHERE kind = 'letters_started' ORDER BY id"
    )
    assert [json.loads(d)["run"] for (d,) in started] == [1, 2]
    third = make_letters(registry_db, cid, tmp_path / "three", today=TODAY)
    assert (
        json.loads(
            registry_db.query(
                "SELECT detail FROM events WHERE kind = 'letters_run' ORDER BY id DESC LIMIT 1"
            )[0][0]
        )["run"]
        == 3
    )
    assert third.batches == ()


def test_a_run_that_died_before_runs_were_recorded_at_their_start_is_skipped_too(
    registry_db: Database, settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A store from before letters_started: only the dead run's batch names tell its number.
    cid = campaign(registry_db, settings, tmp_path)
    make_letters(registry_db, cid, tmp_path / "one", batch_size=1, today=TODAY)
    delivery_id, _ = email_deliveries(registry_db)[0]
    hard_bounce(registry_db, delivery_id)
    delivery_id, _ = email_deliveries(registry_db)[1]
    hard_bounce(registry_db, delivery_id)
    with monkeypatch.context() as m:
        fail_at_batch(m, 2)
        with pytest.raises(RuntimeError):
            make_letters(registry_db, cid, tmp_path / "two", batch_size=1, today=TODAY)
    registry_db.execute("DELETE FROM events WHERE kind = 'letters_started'")
    assert f"brev-{cid}-2-001.pdf" in produced_batches(registry_db).values()
    run = make_letters(registry_db, cid, tmp_path / "three", batch_size=1, today=TODAY)
    assert run.batches == (f"brev-{cid}-3-001.pdf",)


def test_a_batch_recorded_but_never_named_is_made_again_by_the_next_run(
    registry_db: Database, settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Killed between the commit and the rename: batch 2's letters are recorded as made, but
    # its file is a .part no manifest lists and nobody prints. The next run makes them again.
    cid = campaign(registry_db, settings, tmp_path)
    out = tmp_path / "one"
    replace_file = os.replace
    renames: list[str] = []

    def killed(src: Any, dst: Any) -> None:
        renames.append(str(dst))
        if len(renames) == 3:  # batch 1 and its letter's file, then batch 2
            raise SystemExit("drept")
        replace_file(src, dst)

    with monkeypatch.context() as m:
        m.setattr(os, "replace", killed)
        with pytest.raises(SystemExit):
            make_letters(registry_db, cid, out, batch_size=1, per_letter=True, today=TODAY)
    stranded = produced_batches(registry_db)
    assert sorted(stranded.values()) == [f"brev-{cid}-1-001.pdf", f"brev-{cid}-1-002.pdf"]
    assert (out / f"brev-{cid}-1-002.pdf.part").exists()
    lost = next(d for d, b in stranded.items() if b == f"brev-{cid}-1-002.pdf")
    code = registry_db.scalar("SELECT code FROM deliveries WHERE id = ?", (lost,))
    run = make_letters(registry_db, cid, tmp_path / "two", batch_size=1, today=TODAY)
    assert (run.letters, run.remade, run.before) == (2, 1, 1)
    assert "1 brev ble lagt tilbake i køen" in run.summary()
    # The same delivery and code, now in a batch that was finished and listed.
    listed = {int(r["delivery_id"]): r for r in manifest(tmp_path / "two")}
    assert lost in listed
    assert registry_db.scalar("SELECT code FROM deliveries WHERE id = ?", (lost,)) == code
    assert not list(out.glob("*.part"))
    assert not (out / f"brev-{cid}-{lost}.pdf").exists()
    assert (out / f"brev-{cid}-1-001.pdf").exists()
    assert (
        registry_db.scalar("SELECT count(*) FROM events WHERE kind = 'letters_unfinished_batch'")
        == 1
    )
    # Cleared once: a third run finds nothing to take back.
    assert make_letters(registry_db, cid, tmp_path / "three", today=TODAY).remade == 0


def test_a_part_file_of_letters_never_recorded_is_deleted_by_the_next_run(
    registry_db: Database, settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Killed while rendering (kill -9, no clean-up): the .part holds letters the store never
    # recorded, whose codes the verify page would call not ours.
    cid, out = died_at_second_batch(registry_db, settings, tmp_path, monkeypatch)
    (out / f"brev-{cid}-1-002.pdf.part").write_bytes(b"%PDF-1.7 half")
    (out / f"brev-{cid}-987.pdf.part").write_bytes(b"%PDF-1.7 half")
    run = make_letters(registry_db, cid, tmp_path / "two", today=TODAY)
    assert (run.letters, run.remade) == (2, 0)
    assert sorted(p.name for p in out.iterdir()) == [f"brev-{cid}-1-001.pdf", "manifest.csv"]


def test_a_run_still_going_keeps_its_part_files(
    registry_db: Database, settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A run going on holds a lock on its manifest: another run must not take its batch away.
    import fcntl

    cid, out = died_at_second_batch(registry_db, settings, tmp_path, monkeypatch)
    part = out / f"brev-{cid}-1-002.pdf.part"
    part.write_bytes(b"%PDF-1.7 being written")
    with open(out / "manifest.csv", "rb") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        make_letters(registry_db, cid, tmp_path / "two", today=TODAY)
    assert part.exists()
