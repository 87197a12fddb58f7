from __future__ import annotations

import csv
import json
import os
from pathlib import Path

import openpyxl
import pytest

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
from varsel import audit
from varsel.coverage import NOT_REACHED, Outcome, unit_outcomes
from varsel.db import Database
from varsel.outbox import DeliveryState as S
from varsel.suppression import SuppressionKind, SuppressionReason, add
from varsel.unreached import EXPORT_COLUMNS, ExportError, export_unreached


@pytest.fixture
def campaign(db: Database, tmp_path: Path) -> int:
    """A sent campaign with a bounce, a letter posted, and a suppressed unit without e-mail."""
    settings = settings_for(tmp_path)
    import_registry(db, tmp_path, units=150, seed=11)
    cid = new_campaign(db, settings, tmp_path)
    send(db, settings, cid)
    bounce(db, email_deliveries(db, cid)[0], "5.1.1")
    plain = units_without_email(db, cid)
    channel_delivery(db, cid, plain[0], "letter", S.POSTED)
    with db.transaction():
        add(db, SuppressionKind.UNIT, plain[1], SuppressionReason.UNSUBSCRIBED, "test")
    return cid


def expected_orgnrs(db: Database, cid: int, *, suppressed: bool = False) -> list[str]:
    wanted = tuple(o for o in NOT_REACHED if suppressed or o is not Outcome.SUPPRESSED)
    return [u.orgnr for u in unit_outcomes(db, cid, wanted)]


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8-sig", newline="") as f:
        return list(csv.DictReader(f, delimiter=";"))


def test_csv_lists_every_unit_not_reached_with_its_address(
    db: Database, campaign: int, tmp_path: Path
) -> None:
    out = tmp_path / "ikke-naadd.csv"
    result = export_unreached(db, campaign, out, actor="cli:test")
    rows = read_csv(out)
    assert out.read_bytes().startswith(b"\xef\xbb\xbf")
    assert list(rows[0]) == list(EXPORT_COLUMNS)
    assert [r["organisasjonsnummer"] for r in rows] == expected_orgnrs(db, campaign)
    assert result.rows == len(rows)
    bounced = next(r for r in rows if r["utfall"] == "E-post i retur")
    unit = db.query_one(
        "SELECT post_postcode, addr_postcode FROM units WHERE orgnr = ?",
        (bounced["organisasjonsnummer"],),
    )
    assert unit is not None
    assert bounced["postnummer"] == (unit[0] or unit[1])
    assert bounced["kommune"] == "Oslo"


def test_suppressed_units_are_left_out_unless_asked_for(
    db: Database, campaign: int, tmp_path: Path
) -> None:
    suppressed = db.scalar("SELECT value FROM suppressions WHERE kind = 'unit'")
    export_unreached(db, campaign, tmp_path / "a.csv", actor="cli:test")
    export_unreached(db, campaign, tmp_path / "b.csv", actor="cli:test", include_suppressed=True)
    without = {r["organisasjonsnummer"] for r in read_csv(tmp_path / "a.csv")}
    with_suppressed = {r["organisasjonsnummer"] for r in read_csv(tmp_path / "b.csv")}
    assert suppressed not in without
    assert with_suppressed - without == {suppressed}


def test_a_unit_whose_address_hard_bounced_before_is_listed_but_not_one_that_complained(
    db: Database, campaign: int, tmp_path: Path
) -> None:
    # The next campaign holds both e-mails back. The dead address asked for nothing: its
    # business must be followed up another way; the one that complained is left alone.
    solo = [
        d
        for d in email_deliveries(db, campaign)
        if len(d.units) == 1
        and db.scalar("SELECT count(*) FROM contacts WHERE orgnr = ?", (d.units[0],)) == 1
    ]
    dead, complained = solo[1], solo[2]
    bounce(db, dead, "5.1.1")
    bounce(db, complained, "", "complaint")
    follow_up = new_campaign(db, settings_for(tmp_path), tmp_path, name="Oppfølging")
    export_unreached(db, follow_up, tmp_path / "a.csv", actor="cli:test")
    rows = {r["organisasjonsnummer"]: r for r in read_csv(tmp_path / "a.csv")}
    assert (rows[dead.units[0]]["utfall"], rows[dead.units[0]]["årsak"]) == (
        "Ikke nådd",
        "e-postadressen virker ikke",
    )
    assert complained.units[0] not in rows


def test_a_posted_letter_is_not_in_the_export(db: Database, campaign: int, tmp_path: Path) -> None:
    export_unreached(db, campaign, tmp_path / "a.csv", actor="cli:test")
    posted = db.scalar("SELECT address FROM deliveries WHERE channel = 'letter'")
    assert posted not in {r["organisasjonsnummer"] for r in read_csv(tmp_path / "a.csv")}


def test_xlsx_holds_the_same_rows_as_text(db: Database, campaign: int, tmp_path: Path) -> None:
    export_unreached(db, campaign, tmp_path / "a.csv", actor="cli:test")
    result = export_unreached(db, campaign, tmp_path / "a.xlsx", actor="cli:test")
    book = openpyxl.load_workbook(tmp_path / "a.xlsx", read_only=True)
    sheet = book["Ikke nådd"]
    rows = [list(r) for r in sheet.iter_rows(values_only=True)]
    book.close()
    assert rows[0] == list(EXPORT_COLUMNS)
    from_csv = [list(r.values()) for r in read_csv(tmp_path / "a.csv")]
    assert [[c or "" for c in r] for r in rows[1:]] == from_csv
    assert result.rows == len(from_csv)
    assert all(isinstance(r[0], str) and len(r[0]) == 9 for r in rows[1:])


def test_a_name_that_looks_like_a_formula_is_kept_as_text(
    db: Database, campaign: int, tmp_path: Path
) -> None:
    orgnr = expected_orgnrs(db, campaign)[0]
    with db.transaction():
        db.execute(
            "UPDATE recipients SET name = ? WHERE campaign_id = ? AND orgnr = ?",
            ('=HYPERLINK("http://x")', campaign, orgnr),
        )
    export_unreached(db, campaign, tmp_path / "a.csv", actor="cli:test")
    export_unreached(db, campaign, tmp_path / "a.xlsx", actor="cli:test")
    row = next(r for r in read_csv(tmp_path / "a.csv") if r["organisasjonsnummer"] == orgnr)
    assert row["navn"] == '\'=HYPERLINK("http://x")'
    book = openpyxl.load_workbook(tmp_path / "a.xlsx")
    cell = book["Ikke nådd"]["B2"]
    assert (cell.value, cell.data_type) == ('=HYPERLINK("http://x")', "s")


@pytest.mark.parametrize("name", ["a.csv", "a.xlsx"])
def test_the_export_is_readable_by_its_owner_alone(
    db: Database, campaign: int, tmp_path: Path, name: str
) -> None:
    # Names and addresses of sole proprietorships: personal data.
    old = os.umask(0o022)
    try:
        export_unreached(db, campaign, tmp_path / name, actor="cli:test")
    finally:
        os.umask(old)
    assert (tmp_path / name).stat().st_mode & 0o777 == 0o600


def test_every_export_is_in_the_audit_log(db: Database, campaign: int, tmp_path: Path) -> None:
    out = tmp_path / "a.xlsx"
    result = export_unreached(db, campaign, out, actor="cli:ola")
    entry = list(audit.entries(db))[-1]
    assert (entry.actor, entry.action, entry.object) == (
        "cli:ola",
        "personal_data_export",
        f"campaign:{campaign}",
    )
    assert entry.data == {
        "what": "unreached",
        "format": "xlsx",
        "rows": result.rows,
        "file": str(out.resolve()),
        "include_suppressed": False,
    }
    assert audit.verify(db).ok


def test_every_export_is_an_event_of_the_campaign(
    db: Database, campaign: int, tmp_path: Path
) -> None:
    export_unreached(db, campaign, tmp_path / "a.csv", actor="cli:ola", include_suppressed=True)
    row = db.query_one(
        "SELECT campaign_id, detail FROM events WHERE kind = 'export_unreached' ORDER BY id DESC"
    )
    assert row is not None
    assert row[0] == campaign
    assert json.loads(row[1])["actor"] == "cli:ola"
    assert json.loads(row[1])["include_suppressed"] is True


def test_other_file_types_are_refused(db: Database, campaign: int, tmp_path: Path) -> None:
    with pytest.raises(ExportError, match=r"a\.txt: filen må slutte på \.csv eller \.xlsx$"):
        export_unreached(db, campaign, tmp_path / "a.txt", actor="cli:test")
    assert not (tmp_path / "a.txt").exists()


def test_an_existing_file_is_never_overwritten(db: Database, campaign: int, tmp_path: Path) -> None:
    out = tmp_path / "a.xlsx"
    out.write_bytes(b"last week's list")
    entries = len(list(audit.entries(db)))
    with pytest.raises(ExportError) as e:
        export_unreached(db, campaign, out, actor="cli:test")
    assert e.value.message == f"{out}: filen finnes allerede; velg et nytt navn"
    assert out.read_bytes() == b"last week's list"
    assert len(list(audit.entries(db))) == entries
    assert not list(tmp_path.glob(".a.xlsx*"))  # no part file left behind


def test_a_missing_folder_is_a_user_error(db: Database, campaign: int, tmp_path: Path) -> None:
    with pytest.raises(ExportError, match=r"mappen .*/nope finnes ikke$"):
        export_unreached(db, campaign, tmp_path / "nope" / "a.csv", actor="cli:test")


def test_the_summary_says_one_unit_in_the_singular(tmp_path: Path) -> None:
    from varsel.unreached import ExportResult

    one = ExportResult(tmp_path / "a.csv", 1, "csv").summary()
    many = ExportResult(tmp_path / "a.csv", 2, "csv").summary()
    assert one == f"Skrev 1 ikke nådd enhet til {tmp_path / 'a.csv'} (csv)."
    assert many == f"Skrev 2 ikke nådde enheter til {tmp_path / 'a.csv'} (csv)."
