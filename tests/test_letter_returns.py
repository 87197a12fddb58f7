from __future__ import annotations

import csv
import datetime as dt
import json
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from helpers import campaign_toml
from varsel.campaign import create_campaign
from varsel.config import Settings
from varsel.db import Database
from varsel.letter_returns import ReceiptError, Report, record_report
from varsel.letters import make_letters
from varsel.registry import import_dump

CAMPAIGN = campaign_toml(public=False, segment="min_employees = 2\n")
NORDEA, EY, TELENOR = "920058817", "976389387", "982463718"


@pytest.fixture
def letters(db: Database, brreg: Path, tmp_path: Path) -> tuple[int, dict[str, int]]:
    """A campaign whose three letters are produced: (campaign id, delivery id by orgnr)."""
    import_dump(db, brreg / "enheter-sample.json")
    path = tmp_path / "c.toml"
    path.write_text(CAMPAIGN, "utf-8")
    settings = Settings.load(environ={}, dkim_key_dir=str(tmp_path / "keys"))
    cid = create_campaign(db, settings, path).campaign.id
    make_letters(db, cid, tmp_path / "out", today=dt.date(2026, 3, 3))
    ids = {
        key: int(i)
        for key, i in db.query(
            "SELECT key, id FROM deliveries WHERE channel = 'letter' AND campaign_id = ?", (cid,)
        )
    }
    return cid, ids


def write(tmp_path: Path, text: str, name: str = "report.csv") -> Path:
    path = tmp_path / name
    path.write_bytes(text.encode("utf-8"))
    return path


def states(db: Database) -> dict[str, tuple[str, str | None]]:
    return {
        key: (state, reply)
        for key, state, reply in db.query(
            "SELECT key, state, last_reply FROM deliveries WHERE channel = 'letter'"
        )
    }


def events(db: Database, kind: str) -> list[tuple[int, dict[str, Any]]]:
    return [
        (int(d), json.loads(x))
        for d, x in db.query(
            "SELECT delivery_id, detail FROM events WHERE kind = ? ORDER BY id", (kind,)
        )
    ]


def test_the_manifest_itself_reports_every_letter_posted(
    db: Database, letters: tuple[int, dict[str, int]], tmp_path: Path
) -> None:
    cid, ids = letters
    result = record_report(db, cid, Report.POSTED, tmp_path / "out" / "manifest.csv")
    assert (result.changed, result.already) == (3, 0)
    assert states(db) == dict.fromkeys([NORDEA, EY, TELENOR], ("posted", None))
    # The day a letter was posted is the campaign's own day (Europe/Oslo), not the machine's.
    today = dt.datetime.now(ZoneInfo("Europe/Oslo")).date().isoformat()
    assert sorted(events(db, "letter_posted")) == sorted(
        (i, {"date": today, "file": "manifest.csv"}) for i in ids.values()
    )
    assert result.summary() == f"Kampanje {cid}: 3 brev registrert som postlagt."


def test_reading_the_same_report_twice_changes_nothing_more(
    db: Database, letters: tuple[int, dict[str, int]], tmp_path: Path
) -> None:
    cid, ids = letters
    path = write(tmp_path, f"delivery_id,date\n{ids[EY]},2026-03-05\n")
    record_report(db, cid, Report.POSTED, path)
    again = record_report(db, cid, Report.POSTED, path)
    assert (again.changed, again.already) == (0, 1)
    assert len(events(db, "letter_posted")) == 1
    assert (
        again.summary()
        == f"Kampanje {cid}: 0 brev registrert som postlagt; 1 var registrert fra før."
    )


def test_returned_letters_keep_the_date_and_the_reason(
    db: Database, letters: tuple[int, dict[str, int]], tmp_path: Path
) -> None:
    cid, ids = letters
    posted = write(tmp_path, f"delivery_id,date\n{ids[EY]},2026-03-10\n", "p.csv")
    record_report(db, cid, Report.POSTED, posted)
    path = write(
        tmp_path,
        "\ufeffDELIVERY_ID;Orgnr;Date;Reason\n"
        f"{ids[EY]};976 389 387;2026-03-20;Adressaten er ukjent\n"
        f"{ids[TELENOR]};{TELENOR};2026-03-21;Flyttet\n",
    )
    result = record_report(db, cid, Report.RETURNED, path)
    assert (result.changed, result.already) == (2, 0)
    assert states(db) == {
        NORDEA: ("produced", None),
        EY: ("returned", "Adressaten er ukjent"),
        TELENOR: ("returned", "Flyttet"),
    }
    assert events(db, "letter_returned") == [
        (ids[EY], {"date": "2026-03-20", "file": "report.csv", "reason": "Adressaten er ukjent"}),
        (ids[TELENOR], {"date": "2026-03-21", "file": "report.csv", "reason": "Flyttet"}),
    ]


def test_a_late_posted_report_does_not_undo_a_return(
    db: Database, letters: tuple[int, dict[str, int]], tmp_path: Path
) -> None:
    cid, ids = letters
    record_report(db, cid, Report.RETURNED, write(tmp_path, f"delivery_id\n{ids[EY]}\n", "r.csv"))
    result = record_report(db, cid, Report.POSTED, write(tmp_path, f"delivery_id\n{ids[EY]}\n"))
    assert (result.changed, result.already) == (0, 1)
    assert states(db)[EY] == ("returned", None)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("id,orgnr\n1,2\n", "{path}, linje 1: mangler kolonnen «delivery_id»"),
        ("delivery_id\n{ey}\nabc\n", "{path}, linje 3: «abc» er ikke et leveransenummer"),
        ("delivery_id\n{ey}\n²\n", "{path}, linje 3: «²» er ikke et leveransenummer"),
        (
            # More digits than any store's id holds: a column mangled in a spreadsheet.
            "delivery_id\n{ey}\n99999999999999999999\n",
            "{path}, linje 3: «99999999999999999999» er ikke et leveransenummer",
        ),
        (
            "delivery_id\n{ey}\n999999\n",
            "{path}, linje 3: leveranse 999999 er ikke et brev i kampanje {cid}",
        ),
        (
            "delivery_id,orgnr\n{ey}," + TELENOR + "\n",
            "{path}, linje 2: leveranse {ey} gjelder org.nr. " + EY + ", ikke " + TELENOR,
        ),
        (
            "delivery_id\n{ey}\n{telenor}\n{ey}\n",
            "{path}, linje 4: leveranse {ey} står også på linje 2",
        ),
        (
            "delivery_id,date\n{ey},20.03.2026\n",
            "{path}, linje 2: datoen «20.03.2026» er ikke ÅÅÅÅ-MM-DD",
        ),
        (
            # The letters were made (and dated) 2026-03-03: a date before it is a typo.
            "delivery_id,date\n{telenor},2026-03-03\n{ey},0001-01-01\n",
            "{path}, linje 3: datoen 0001-01-01 er før brev {ey} ble laget (2026-03-03); "
            "et brev kan ikke være postlagt før det er laget",
        ),
        ("delivery_id,date\n{ey}\n", "{path}, linje 2: 1 felt, men overskriften har 2"),
        ("delivery_id\n", "{path}: ingen rader under overskriften"),
        ("", "{path}: filen er tom"),
    ],
)
def test_a_bad_report_names_the_line_and_changes_nothing(
    db: Database,
    letters: tuple[int, dict[str, int]],
    tmp_path: Path,
    text: str,
    message: str,
) -> None:
    cid, ids = letters
    path = write(tmp_path, text.format(ey=ids[EY], telenor=ids[TELENOR]))
    before = states(db)
    with pytest.raises(ReceiptError) as e:
        record_report(db, cid, Report.POSTED, path)
    assert e.value.message == message.format(path=path, ey=ids[EY], cid=cid)
    assert states(db) == before
    assert events(db, "letter_posted") == []


def test_a_return_dated_before_the_letter_was_made_is_refused(
    db: Database, letters: tuple[int, dict[str, int]], tmp_path: Path
) -> None:
    cid, ids = letters
    path = write(tmp_path, f"delivery_id;date\n{ids[EY]};2026-03-02\n")
    with pytest.raises(ReceiptError) as e:
        record_report(db, cid, Report.RETURNED, path)
    assert e.value.message == (
        f"{path}, linje 2: datoen 2026-03-02 er før brev {ids[EY]} ble laget (2026-03-03); "
        "et brev kan ikke være returnert før det er laget"
    )
    assert events(db, "letter_returned") == []


def test_a_return_dated_before_the_letter_was_posted_is_refused(
    db: Database, letters: tuple[int, dict[str, int]], tmp_path: Path
) -> None:
    # Made 2026-03-03 and posted 03-10: a return dated 03-05 is a typo, not the day it came back.
    cid, ids = letters
    record_report(
        db, cid, Report.POSTED, write(tmp_path, f"delivery_id,date\n{ids[EY]},2026-03-10\n")
    )
    path = write(tmp_path, f"delivery_id;date\n{ids[EY]};2026-03-05\n", "returns.csv")
    with pytest.raises(ReceiptError) as e:
        record_report(db, cid, Report.RETURNED, path)
    assert e.value.message == (
        f"{path}, linje 2: datoen 2026-03-05 er før brev {ids[EY]} ble postlagt (2026-03-10); "
        "et brev kan ikke komme i retur før det er sendt"
    )
    assert events(db, "letter_returned") == []
    # The day it was posted is a day it may come back.
    same_day = write(tmp_path, f"delivery_id;date\n{ids[EY]};2026-03-10\n", "same.csv")
    assert record_report(db, cid, Report.RETURNED, same_day).changed == 1


def test_a_letter_whose_details_were_forgotten_is_dated_by_its_event(
    db: Database, letters: tuple[int, dict[str, int]], tmp_path: Path
) -> None:
    # Erasure empties the events' details: the day the letter was recorded made is its day.
    cid, ids = letters
    with db.transaction():
        db.execute("UPDATE events SET detail = NULL WHERE kind = 'letter_produced'")
    made = dt.datetime.now(ZoneInfo("Europe/Oslo")).date()
    day_before = (made - dt.timedelta(days=1)).isoformat()
    path = write(tmp_path, f"delivery_id;date\n{ids[EY]};{day_before}\n")
    with pytest.raises(ReceiptError, match=f"ble laget \\({made.isoformat()}\\)"):
        record_report(db, cid, Report.POSTED, path)


def test_an_email_delivery_is_not_a_letter(
    db: Database, letters: tuple[int, dict[str, int]], tmp_path: Path
) -> None:
    cid, _ = letters
    email = db.scalar("SELECT min(id) FROM deliveries WHERE channel = 'email'")
    path = write(tmp_path, f"delivery_id\n{email}\n")
    with pytest.raises(ReceiptError) as e:
        record_report(db, cid, Report.RETURNED, path)
    assert e.value.message == f"{path}, linje 2: leveranse {email} er ikke et brev i kampanje {cid}"


def test_a_letter_that_was_never_made_cannot_be_posted(
    db: Database, letters: tuple[int, dict[str, int]], tmp_path: Path
) -> None:
    cid, ids = letters
    db.execute("UPDATE deliveries SET state = 'failed' WHERE id = ?", (ids[EY],))
    path = write(tmp_path, f"delivery_id\n{ids[NORDEA]}\n{ids[EY]}\n")
    with pytest.raises(ReceiptError) as e:
        record_report(db, cid, Report.POSTED, path)
    assert e.value.message == (
        f"{path}, linje 3: brev {ids[EY]} ble aldri laget (det er «feilet») og kan ikke "
        "registreres som postlagt"
    )
    assert states(db)[NORDEA] == ("produced", None)


def test_a_missing_file_is_a_one_line_error(
    db: Database, letters: tuple[int, dict[str, int]], tmp_path: Path
) -> None:
    cid, _ = letters
    with pytest.raises(ReceiptError) as e:
        record_report(db, cid, Report.POSTED, tmp_path / "nope.csv")
    assert e.value.message == f"{tmp_path / 'nope.csv'}: filen finnes ikke"


def test_a_report_that_is_not_utf8_is_refused(
    db: Database, letters: tuple[int, dict[str, int]], tmp_path: Path
) -> None:
    cid, ids = letters
    path = tmp_path / "latin1.csv"
    path.write_bytes(f"delivery_id,reason\n{ids[EY]},Ukjent adressat på Ås\n".encode("latin-1"))
    with pytest.raises(ReceiptError) as e:
        record_report(db, cid, Report.RETURNED, path)
    # The å of «på», after the header line and the delivery number on line 2.
    byte = len(f"delivery_id,reason\n{ids[EY]},Ukjent adressat p") + 1
    assert e.value.message == (
        f"{path}, linje 2: er ikke UTF-8 (byte {byte}); "
        "lagre filen som UTF-8 (i Excel: Lagre som, «CSV UTF-8 (kommadelt)»)"
    )


def test_a_tab_separated_report_is_refused_saying_so(
    db: Database, letters: tuple[int, dict[str, int]], tmp_path: Path
) -> None:
    cid, ids = letters
    path = tmp_path / "tab.csv"
    path.write_text(f"delivery_id\treason\n{ids[EY]}\tUkjent adressat\n", "utf-8")
    with pytest.raises(ReceiptError) as e:
        record_report(db, cid, Report.RETURNED, path)
    assert e.value.message == (
        f"{path}, linje 1: kolonnene er skilt med tabulator; bruk komma eller semikolon "
        "(i Excel: Lagre som, «CSV UTF-8 (kommadelt)»)"
    )


def test_the_manifest_columns_round_trip(
    db: Database, letters: tuple[int, dict[str, int]], tmp_path: Path
) -> None:
    # What a print house typically sends back: the manifest rows it handled, as it got them.
    cid, _ = letters
    with (tmp_path / "out" / "manifest.csv").open(encoding="utf-8", newline="") as f:
        rows = [r for r in csv.DictReader(f) if r["orgnr"] != NORDEA]
    with (tmp_path / "back.csv").open("w", encoding="utf-8", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=[*rows[0], "date"], delimiter=";")
        writer.writeheader()
        writer.writerows({**r, "date": "2026-03-06"} for r in rows)
    result = record_report(db, cid, Report.POSTED, tmp_path / "back.csv")
    assert result.changed == 2
    assert states(db)[NORDEA] == ("produced", None)
