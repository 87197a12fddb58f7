from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from helpers import campaign_toml, sample_campaign
from reportdata import (
    bounce,
    channel_delivery,
    email_deliveries,
    import_registry,
    new_campaign,
    send,
    settings_for,
    units_without_email,
)
from varsel.cli import cli
from varsel.db import Database
from varsel.outbox import DeliveryState as S


@pytest.fixture
def campaign(db: Database, tmp_path: Path) -> int:
    settings = settings_for(tmp_path)
    import_registry(db, tmp_path, units=120, seed=13)
    cid = new_campaign(db, settings, tmp_path, "Rådene")
    send(db, settings, cid)
    bounce(db, email_deliveries(db, cid)[0], "5.1.1")
    channel_delivery(db, cid, units_without_email(db, cid)[0], "letter", S.POSTED)
    return cid


def run(db: Database, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["--db", db.url, "report", *args])
    return result.exit_code, result.output


def test_coverage_json_is_one_object_whose_outcomes_add_up(db: Database, campaign: int) -> None:
    status, output = run(db, "coverage", str(campaign), "--json")
    assert status == 0, output
    data = json.loads(output)
    units = db.scalar("SELECT count(*) FROM recipients WHERE campaign_id = ?", (campaign,))
    assert data["units"] == units
    assert sum(data["outcomes"].values()) == units
    assert (data["outcomes"]["email_bounced"], data["outcomes"]["letter_posted"]) == (1, 1)
    assert [g["name"] for g in data["by_municipality"]] == ["Oslo"]


def test_coverage_prints_tables_in_norwegian(db: Database, campaign: int) -> None:
    status, output = run(db, "coverage", str(campaign))
    assert status == 0, output
    assert f"Kampanje {campaign} «Rådene»" in output
    for heading in ("Utfall", "Per kommune", "Etter antall ansatte", "Etter organisasjonsform"):
        assert heading in output
    assert "E-post i retur" in output
    assert "Oslo" in output
    assert "(0301)" in output


def test_unknown_campaign_exits_2_with_one_line(db: Database) -> None:
    status, output = run(db, "coverage", "42")
    assert (status, output.strip()) == (2, "varsel: kampanje 42 finnes ikke")


def test_unreached_writes_the_csv(db: Database, campaign: int, tmp_path: Path) -> None:
    out = tmp_path / "ikke-naadd.csv"
    status, output = run(db, "unreached", str(campaign), "--out", str(out))
    assert status == 0, output
    with out.open(encoding="utf-8-sig", newline="") as f:
        rows = list(csv.DictReader(f, delimiter=";"))
    assert len(rows) > 1
    assert output.strip() == f"Skrev {len(rows)} ikke nådde enheter til {out} (csv)."
    assert "E-post i retur" in {r["utfall"] for r in rows}


def test_unreached_refuses_other_file_types(db: Database, campaign: int, tmp_path: Path) -> None:
    status, output = run(db, "unreached", str(campaign), "--out", str(tmp_path / "a.json"))
    assert status == 2
    assert output.strip() == f"varsel: {tmp_path / 'a.json'}: filen må slutte på .csv eller .xlsx"


def test_unreached_does_not_overwrite_a_file(db: Database, campaign: int, tmp_path: Path) -> None:
    out = tmp_path / "manifest.csv"
    out.write_text("delivery_id,orgnr\n17,976389387\n", "utf-8")
    status, output = run(db, "unreached", str(campaign), "--out", str(out))
    assert (status, output.strip()) == (
        2,
        f"varsel: {out}: filen finnes allerede; velg et nytt navn",
    )
    assert out.read_text("utf-8") == "delivery_id,orgnr\n17,976389387\n"


def test_evaluate_writes_the_html_and_a_pdf(db: Database, campaign: int, tmp_path: Path) -> None:
    out = tmp_path / "rapport.html"
    status, output = run(db, "evaluate", str(campaign), "--out", str(out), "--pdf")
    assert status == 0, output
    assert output.strip().splitlines() == [f"Skrev {out}", f"Skrev {out.with_suffix('.pdf')}"]
    assert "<h1>Evaluering av kampanjen «Rådene»</h1>" in out.read_text("utf-8")


def test_evaluate_is_logged_as_a_personal_data_export(
    db: Database, campaign: int, tmp_path: Path
) -> None:
    # The report quotes recipients' comments: who wrote it out, and where, is in the audit log.
    out = tmp_path / "rapport.html"
    status, output = run(db, "evaluate", str(campaign), "--out", str(out))
    assert status == 0, output
    rows = db.query("SELECT object, detail FROM audit_log WHERE action = 'personal_data_export'")
    assert [(o, json.loads(d)) for o, d in rows] == [
        (
            f"campaign:{campaign}",
            {"what": "evaluation", "files": [str(out.resolve())], "comments": 0, "compare": None},
        )
    ]
    # A refused report (the name is taken) wrote nothing and logs nothing.
    status, _ = run(db, "evaluate", str(campaign), "--out", str(out))
    assert status == 2
    assert db.scalar("SELECT count(*) FROM audit_log WHERE action = 'personal_data_export'") == 1


def test_evaluate_does_not_overwrite_a_file(db: Database, campaign: int, tmp_path: Path) -> None:
    # Last month's report, with the operator's notes in it.
    out = tmp_path / "rapport.html"
    out.write_text("<p>Notert: ring Kari</p>", "utf-8")
    status, output = run(db, "evaluate", str(campaign), "--out", str(out))
    assert (status, output) == (2, f"varsel: {out}: filen finnes allerede; velg et nytt navn\n")
    assert out.read_text("utf-8") == "<p>Notert: ring Kari</p>"


def test_evaluate_does_not_overwrite_the_pdf_beside_the_html(
    db: Database, campaign: int, tmp_path: Path
) -> None:
    out = tmp_path / "rapport.html"
    out.with_suffix(".pdf").write_bytes(b"%PDF-1.7")
    status, output = run(db, "evaluate", str(campaign), "--out", str(out), "--pdf")
    assert (status, output) == (
        2,
        f"varsel: {out.with_suffix('.pdf')}: filen finnes allerede; velg et nytt navn\n",
    )
    assert not out.exists()
    assert out.with_suffix(".pdf").read_bytes() == b"%PDF-1.7"


def test_evaluate_compares_two_campaigns(db: Database, campaign: int, tmp_path: Path) -> None:
    other = new_campaign(db, settings_for(tmp_path), tmp_path, "Andre runde")
    out = tmp_path / "rapport.html"
    status, output = run(db, "evaluate", str(campaign), "--out", str(out), "--compare", str(other))
    assert status == 0, output
    html = out.read_text("utf-8")
    assert f"Sammenlignet med kampanje {other}</h2>" in html
    assert f"{other} «Andre runde»" in html


def test_evaluate_refuses_to_compare_a_campaign_with_itself(
    db: Database, campaign: int, tmp_path: Path
) -> None:
    out = tmp_path / "rapport.html"
    args = ["evaluate", str(campaign), "--out", str(out), "--compare", str(campaign)]
    status, output = run(db, *args)
    assert (status, output) == (
        2,
        f"varsel: --compare {campaign}: det er kampanjen rapporten gjelder; oppgi en annen\n",
    )
    assert not out.exists()


def test_evaluate_writes_the_report_in_english(db: Database, campaign: int, tmp_path: Path) -> None:
    out = tmp_path / "report.html"
    status, output = run(db, "evaluate", str(campaign), "--out", str(out), "--language", "en")
    assert status == 0, output
    html = out.read_text("utf-8")
    assert html.startswith('<!DOCTYPE html>\n<html lang="en">')
    assert "<h1>Evaluation of the campaign “Rådene”</h1>" in html


def test_evaluate_refuses_an_unknown_language(db: Database, campaign: int, tmp_path: Path) -> None:
    out = tmp_path / "rapport.html"
    status, output = run(db, "evaluate", str(campaign), "--out", str(out), "--language", "de")
    assert status == 2
    assert output.strip() == "varsel: --language: «de» er ikke et av valgene (velg nb, nn eller en)"
    assert not out.exists()


def test_coverage_says_one_business_in_the_singular(
    db: Database, brreg: Path, tmp_path: Path
) -> None:
    # Komplett ASA is the sample's only unit in Sandefjord (3907).
    text = campaign_toml(segment='municipality = ["3907"]\n').replace(
        'police_district = ["oslo"]\n', ""
    )
    cid = sample_campaign(db, brreg, tmp_path, text)
    status, output = run(db, "coverage", str(cid))
    assert status == 0, output
    assert f"Kampanje {cid} «Test»: 1 virksomhet, 0 nådd (0,0" in output


def test_coverage_of_a_campaign_that_selected_no_one_claims_no_share(
    db: Database, brreg: Path, tmp_path: Path
) -> None:
    # The sample has no unit in Sandnes (1108): the segment was empty.
    text = campaign_toml(segment='municipality = ["1108"]\n').replace(
        'police_district = ["oslo"]\n', ""
    )
    cid = sample_campaign(db, brreg, tmp_path, text)
    status, output = run(db, "coverage", str(cid))
    assert status == 0, output
    assert f"Kampanje {cid} «Test»: 0 virksomheter, 0 nådd (–)," in output
    row = next(line for line in output.splitlines() if line.startswith("│ Sum "))
    assert [cell.strip() for cell in row.strip("│").split("│")] == ["Sum", "0", "–"]


def test_coverage_counts_many_businesses_in_the_plural(db: Database, campaign: int) -> None:
    units = db.scalar("SELECT count(*) FROM recipients WHERE campaign_id = ?", (campaign,))
    status, output = run(db, "coverage", str(campaign))
    assert status == 0, output
    assert f"Kampanje {campaign} «Rådene»: {units} virksomheter, " in output


def test_coverage_rollups_count_a_letter_not_yet_posted_as_waiting(
    db: Database, campaign: int
) -> None:
    # The fixture's letter is posted; one more is made but not reported posted yet. Under
    # «Brev» it looked reached while «Andel nådd» left it out, and «Venter» said 0.
    channel_delivery(db, campaign, units_without_email(db, campaign)[1], "letter", S.PRODUCED)
    oslo = json.loads(run(db, "coverage", str(campaign), "--json")[1])["by_municipality"][0]
    status, output = run(db, "coverage", str(campaign))
    assert status == 0, output
    assert ", 1 på vei, " in output.splitlines()[0]
    row = next(line for line in output.splitlines() if line.startswith("│ Oslo "))
    cells = [cell.strip() for cell in row.strip("│").split("│")]
    units, email, letters, altinn, waiting, not_reached = (int(c) for c in cells[1:7])
    o = oslo["outcomes"]
    assert (letters, waiting) == (o["letter_posted"], o["letter_produced"] + o["pending"]) == (1, 1)
    assert email + letters + altinn + waiting + not_reached == units == oslo["units"]
    assert "«Brev» er brev postlagt;" in output
