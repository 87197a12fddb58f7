from __future__ import annotations

import csv
import datetime as dt
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from click.testing import CliRunner

from helpers import campaign_toml
from varsel.campaign import create_campaign
from varsel.cli import cli
from varsel.config import Settings
from varsel.db import Database
from varsel.registry import import_dump

CAMPAIGN = campaign_toml(public=False, segment="min_employees = 2\n")


@pytest.fixture
def campaign_id(db: Database, brreg: Path, tmp_path: Path) -> int:
    import_dump(db, brreg / "enheter-sample.json")
    path = tmp_path / "c.toml"
    path.write_text(CAMPAIGN, "utf-8")
    settings = Settings.load(environ={}, dkim_key_dir=str(tmp_path / "keys"))
    return create_campaign(db, settings, path).campaign.id


def test_letters_campaign_out_makes_the_batch_and_manifest(
    db: Database, campaign_id: int, tmp_path: Path
) -> None:
    out = tmp_path / "brev"
    result = CliRunner().invoke(
        cli, ["--db", db.url, "letters", str(campaign_id), "--out", str(out), "--no-approval"]
    )
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[0] == (
        f"Kampanje {campaign_id}: 3 brev i 1 PDF-bunke i {out} (oversikt: manifest.csv)."
    )
    assert sorted(p.name for p in out.iterdir()) == [
        f"brev-{campaign_id}-1-001.pdf",
        "manifest.csv",
        "unreachable.csv",
    ]
    with (out / "manifest.csv").open(encoding="utf-8") as f:
        assert [r["orgnr"] for r in csv.DictReader(f)] == ["920058817", "976389387", "982463718"]


def test_letters_make_is_the_long_form_and_per_letter_adds_files(
    db: Database, campaign_id: int, tmp_path: Path
) -> None:
    out = tmp_path / "brev"
    args = ["--db", db.url, "letters", "make", str(campaign_id), "--out", str(out), "--per-letter"]
    args.append("--no-approval")
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    assert "3 brev også som egne PDF-filer." in result.output
    assert len(list(out.glob("brev-*.pdf"))) == 4


def test_posted_and_returned_read_the_print_houses_csv(
    db: Database, campaign_id: int, tmp_path: Path
) -> None:
    out = tmp_path / "brev"
    runner = CliRunner()
    made = runner.invoke(
        cli, ["--db", db.url, "letters", str(campaign_id), "--out", str(out), "--no-approval"]
    )
    assert made.exit_code == 0, made.output
    posted = runner.invoke(
        cli, ["--db", db.url, "letters", "posted", str(campaign_id), str(out / "manifest.csv")]
    )
    assert posted.exit_code == 0, posted.output
    assert posted.output.strip() == f"Kampanje {campaign_id}: 3 brev registrert som postlagt."
    first = db.scalar("SELECT min(id) FROM deliveries WHERE channel = 'letter'")
    back = tmp_path / "retur.csv"
    back.write_text(f"delivery_id;reason\n{first};Ukjent adressat\n", "utf-8")
    returned = runner.invoke(
        cli, ["--db", db.url, "letters", "returned", str(campaign_id), str(back)]
    )
    assert returned.exit_code == 0, returned.output
    assert returned.output.strip() == f"Kampanje {campaign_id}: 1 brev registrert som returnert."


def test_letters_need_the_campaigns_approval_like_a_send(
    db: Database, campaign_id: int, tmp_path: Path
) -> None:
    out = tmp_path / "brev"
    result = CliRunner().invoke(
        cli, ["--db", db.url, "letters", str(campaign_id), "--out", str(out)]
    )
    assert result.exit_code == 2
    assert result.output.startswith(f"varsel: kampanje {campaign_id} er ikke godkjent")
    assert len(result.output.strip().splitlines()) == 1
    assert not out.exists()
    assert db.scalar("SELECT count(*) FROM deliveries WHERE channel = 'letter'") == 0


def test_a_bad_csv_is_one_line_and_exit_status_2(
    db: Database, campaign_id: int, tmp_path: Path
) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("delivery_id\nx1\n", "utf-8")
    result = CliRunner().invoke(
        cli, ["--db", db.url, "letters", "posted", str(campaign_id), str(bad)]
    )
    assert result.exit_code == 2
    assert result.output.strip() == f"varsel: {bad}, linje 2: «x1» er ikke et leveransenummer"


def test_an_unknown_campaign_is_one_line_and_exit_status_2(db: Database, tmp_path: Path) -> None:
    result = CliRunner().invoke(
        cli, ["--db", db.url, "letters", "42", "--out", str(tmp_path / "o")]
    )
    assert result.exit_code == 2
    assert result.output.strip() == "varsel: kampanje 42 finnes ikke"
    assert not (tmp_path / "o").exists()


def test_every_letters_command_has_help() -> None:
    runner = CliRunner()
    for args in (["letters"], ["letters", "make"], ["letters", "posted"], ["letters", "returned"]):
        result = runner.invoke(cli, [*args, "--help"])
        assert result.exit_code == 0
        assert "Bruk: " in result.output
    assert "varsel letters KAMPANJE --out MAPPE" in runner.invoke(cli, ["letters", "--help"]).output


def test_a_refused_letters_run_leaves_no_audit_entry(
    db: Database, campaign_id: int, tmp_path: Path
) -> None:
    from varsel import audit

    out = tmp_path / "brev"
    out.mkdir()
    (out / "manifest.csv").write_text("delivery_id\n", "utf-8")
    before = audit.entries(db)
    result = CliRunner().invoke(
        cli, ["--db", db.url, "letters", str(campaign_id), "--out", str(out), "--no-approval"]
    )
    assert result.exit_code == 2
    assert result.output.strip() == (
        f"varsel: {out} har allerede en manifest.csv fra en tidligere kjøring; velg en ny mappe"
    )
    assert audit.entries(db) == before
    assert db.scalar("SELECT count(*) FROM deliveries WHERE channel = 'letter'") == 0


def test_a_letters_run_is_audited_as_letters_make_not_as_a_send(
    db: Database, campaign_id: int, tmp_path: Path
) -> None:
    from varsel import audit

    out = tmp_path / "brev"
    result = CliRunner().invoke(
        cli, ["--db", db.url, "letters", str(campaign_id), "--out", str(out), "--no-approval"]
    )
    assert result.exit_code == 0, result.output
    actions = [e.action for e in audit.entries(db, object=f"campaign:{campaign_id}")]
    assert actions[-2:] == ["letters_make", "personal_data_export"]
    assert "campaign_send" not in actions
    (entry,) = audit.entries(db, action=audit.Action.LETTERS_MAKE)
    assert entry.object == f"campaign:{campaign_id}"
    assert entry.data == {
        "no_approval": True,
        "approval": None,
        "approved_by": None,
        "digest": None,
        "out_dir": str(out),
    }


def _today() -> str:
    """Today where the campaign is run: the day its letters are made."""
    return dt.datetime.now(ZoneInfo("Europe/Oslo")).date().isoformat()


def _made_and_posted(db: Database, campaign_id: int, tmp_path: Path) -> int:
    """Make the campaign's letters and post them; the first letter's delivery id."""
    out = tmp_path / "brev"
    runner = CliRunner()
    made = runner.invoke(
        cli, ["--db", db.url, "letters", str(campaign_id), "--out", str(out), "--no-approval"]
    )
    assert made.exit_code == 0, made.output
    posted = runner.invoke(
        cli, ["--db", db.url, "letters", "posted", str(campaign_id), str(out / "manifest.csv")]
    )
    assert posted.exit_code == 0, posted.output
    return int(db.scalar("SELECT min(id) FROM deliveries WHERE channel = 'letter'"))


def test_the_print_houses_return_reason_is_the_reason_in_report_unreached(
    db: Database, campaign_id: int, tmp_path: Path
) -> None:
    first = _made_and_posted(db, campaign_id, tmp_path)
    orgnr = db.scalar("SELECT key FROM deliveries WHERE id = ?", (first,))
    back = tmp_path / "returned.csv"
    back.write_text(f"delivery_id;date;reason\n{first};{_today()};Adressaten er ukjent\n", "utf-8")
    runner = CliRunner()
    returned = runner.invoke(
        cli, ["--db", db.url, "letters", "returned", str(campaign_id), str(back)]
    )
    assert returned.exit_code == 0, returned.output
    export = tmp_path / "ikke-naadd.csv"
    result = runner.invoke(
        cli, ["--db", db.url, "report", "unreached", str(campaign_id), "--out", str(export)]
    )
    assert result.exit_code == 0, result.output
    with export.open(encoding="utf-8-sig", newline="") as f:
        rows = {r["organisasjonsnummer"]: r for r in csv.DictReader(f, delimiter=";")}
    assert (rows[orgnr]["utfall"], rows[orgnr]["årsak"]) == (
        "Brev i retur",
        "Adressaten er ukjent",
    )


def test_a_return_dated_in_the_future_is_refused_and_nothing_stored(
    db: Database, campaign_id: int, tmp_path: Path
) -> None:
    first = _made_and_posted(db, campaign_id, tmp_path)
    back = tmp_path / "returned.csv"
    back.write_text(
        f"delivery_id;date;reason\n{first};{_today()};Flyttet\n{first + 1};2030-12-01;Ukjent\n",
        "utf-8",
    )
    before = db.query("SELECT id, state, last_reply FROM deliveries ORDER BY id")
    result = CliRunner().invoke(
        cli, ["--db", db.url, "letters", "returned", str(campaign_id), str(back)]
    )
    assert result.exit_code == 2
    (line,) = result.output.strip().splitlines()
    assert line.startswith(f"varsel: {back}, linje 3: datoen 2030-12-01 er etter i dag (")
    assert line.endswith("); et brev kan ikke være returnert fram i tid")
    assert db.query("SELECT id, state, last_reply FROM deliveries ORDER BY id") == before
    assert db.scalar("SELECT count(*) FROM events WHERE kind = 'letter_returned'") == 0


def test_a_return_dated_before_the_letter_was_made_is_refused_and_nothing_stored(
    db: Database, campaign_id: int, tmp_path: Path
) -> None:
    first = _made_and_posted(db, campaign_id, tmp_path)
    back = tmp_path / "returned.csv"
    back.write_text(f"delivery_id;date\n{first};{_today()}\n{first + 1};0001-01-01\n", "utf-8")
    before = db.query("SELECT id, state, last_reply FROM deliveries ORDER BY id")
    result = CliRunner().invoke(
        cli, ["--db", db.url, "letters", "returned", str(campaign_id), str(back)]
    )
    assert result.exit_code == 2
    assert result.output.strip().splitlines() == [
        f"varsel: {back}, linje 3: datoen 0001-01-01 er før brev {first + 1} ble laget "
        f"({_today()}); et brev kan ikke være returnert før det er laget"
    ]
    assert db.query("SELECT id, state, last_reply FROM deliveries ORDER BY id") == before
    assert db.scalar("SELECT count(*) FROM events WHERE kind = 'letter_returned'") == 0


def test_ctrl_c_says_how_many_letters_were_made_and_how_to_make_the_rest(
    db: Database, campaign_id: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from varsel.letter_render import Renderer

    render = Renderer.render
    calls: list[Path] = []

    def interrupted(self: Renderer, letters: object, out_path: Path) -> None:
        calls.append(out_path)
        if len(calls) == 3:  # Ctrl-C while the third batch is rendered
            raise KeyboardInterrupt
        render(self, letters, out_path)  # type: ignore[arg-type]

    monkeypatch.setattr(Renderer, "render", interrupted)
    out = tmp_path / "brev"
    args = ["--db", db.url, "letters", str(campaign_id), "--out", str(out), "--batch-size", "1"]
    result = CliRunner().invoke(cli, [*args, "--no-approval"])
    assert result.exit_code == 130, result.output
    assert result.output == (
        f"varsel: avbrutt: 2 brev til kampanje {campaign_id} er laget i {out} (manifest.csv); "
        f"resten lages med «varsel letters {campaign_id} --out NY_MAPPE»\n"
    )
    again = CliRunner().invoke(cli, [*args[:4], "--out", str(tmp_path / "resten"), "--no-approval"])
    assert again.exit_code == 0, again.output
    assert again.output.startswith(f"Kampanje {campaign_id}: 1 brev i 1 PDF-bunke")
