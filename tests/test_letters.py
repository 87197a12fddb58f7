from __future__ import annotations

import csv
import datetime as dt
import json
import os
import re
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from pypdf import PdfReader

from helpers import campaign_toml
from varsel import codes, verify
from varsel.bounces import EVENT_KINDS, BounceKind
from varsel.campaign import CampaignStatus, create_campaign, set_status
from varsel.config import Settings
from varsel.db import Database
from varsel.letter_candidates import Unreachable
from varsel.letter_manifest import MANIFEST_COLUMNS
from varsel.letter_render import ADDRESS_AREA, WINDOW, LetterTemplateError
from varsel.letters import (
    LetterError,
    LetterRun,
    letter_counts,
    make_letters,
)
from varsel.outbox import record_event
from varsel.registry import import_dump
from varsel.suppression import SuppressionKind, SuppressionReason, add

CAMPAIGN = campaign_toml(
    sender='postal_address = """\nPostboks 2094 Vika\n0125 Oslo"""\n', segment="min_employees = 2\n"
)
NORDEA, EY, TELENOR = "920058817", "976389387", "982463718"  # the sample's units without e-mail
TODAY = dt.date(2026, 3, 3)
MM = 72 / 25.4  # PDF points per millimetre

Edit = Callable[[dict[str, Any]], None]


def load_registry(db: Database, brreg: Path, tmp_path: Path, edits: dict[str, Edit]) -> None:
    """The sample registry, with some records changed first."""
    records = json.loads((brreg / "enheter-sample.json").read_text("utf-8"))
    for record in records:
        edit = edits.get(record["organisasjonsnummer"])
        if edit is not None:
            edit(record)
    path = tmp_path / f"enheter-{len(list(tmp_path.glob('enheter-*')))}.json"
    path.write_text(json.dumps(records, ensure_ascii=False), "utf-8")
    import_dump(db, path)


@pytest.fixture
def registry_db(db: Database, brreg: Path) -> Database:
    import_dump(db, brreg / "enheter-sample.json")
    import_dump(db, brreg / "underenheter-sample.json")
    return db


def campaign(db: Database, settings: Settings, tmp_path: Path, text: str = CAMPAIGN) -> int:
    path = tmp_path / "campaign.toml"
    path.write_text(text, "utf-8")
    return create_campaign(db, settings, path).campaign.id


def manifest(out: Path) -> list[dict[str, str]]:
    with (out / "manifest.csv").open(encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f))


def unreachable(out: Path) -> list[dict[str, str]]:
    with (out / "unreachable.csv").open(encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f))


def page_runs(pdf: Path, page: int) -> list[tuple[float, float, float, str]]:
    """(x mm from the left, baseline mm from the top, size in mm, text) of each text run."""
    p = PdfReader(pdf).pages[page - 1]
    height = float(p.mediabox.height)
    runs: list[tuple[float, float, float, str]] = []

    def visit(text: str, cm: list[float], tm: list[float], font: Any, size: float) -> None:
        if text.strip():
            x = tm[4] * cm[0] + tm[5] * cm[2] + cm[4]
            y = tm[4] * cm[1] + tm[5] * cm[3] + cm[5]
            runs.append((x / MM, (height - y) / MM, size / MM, text.strip()))

    p.extract_text(visitor_text=visit)
    return runs


def page_items(pdf: Path, page: int) -> list[tuple[float, float, str]]:
    """(x mm from the left, baseline y mm from the top, text) of every text run on a page."""
    return [(x, y, text) for x, y, _, text in page_runs(pdf, page)]


def font_extents(pdf: Path, page: int) -> tuple[float, float, float]:
    """(ascent, descent, highest glyph top) in em, the most of any font on the page."""
    ascent = descent = top = 0.0
    for ref in PdfReader(pdf).pages[page - 1]["/Resources"]["/Font"].values():
        font = ref.get_object()["/DescendantFonts"][0].get_object()
        descriptor = font["/FontDescriptor"].get_object()
        ascent = max(ascent, float(descriptor["/Ascent"]) / 1000)
        descent = max(descent, -float(descriptor["/Descent"]) / 1000)
        top = max(top, float(descriptor["/FontBBox"][3]) / 1000)
    return ascent, descent, top


def address_runs(pdf: Path, page: int) -> list[tuple[float, float, float, float, str]]:
    """The address block's runs, left of the date and above the text: (x, top, bottom, glyph top).

    top and bottom are the line's ascender and descender; glyph top is as high as any glyph of
    the font reaches (Å's ring rises above the ascender).
    """
    ascent, descent, highest = font_extents(pdf, page)
    return [
        (x, y - ascent * s, y + descent * s, y - highest * s, t)
        for x, y, s, t in page_runs(pdf, page)
        if x < WINDOW.x + WINDOW.width and y < 90
    ]


def page_text(pdf: Path, page: int) -> str:
    return " ".join(t for _, _, t in page_items(pdf, page))


def letter_rows(db: Database, campaign_id: int) -> dict[str, tuple[Any, ...]]:
    return {
        r[0]: tuple(r[1:])
        for r in db.query(
            "SELECT key, id, address, state, code, last_reply FROM deliveries "
            "WHERE campaign_id = ? AND channel = 'letter' ORDER BY key",
            (campaign_id,),
        )
    }


def hard_bounce(db: Database, delivery_id: int) -> None:
    """What taking in a 5.1.1 bounce does to a delivery (bounces.BounceIntake)."""
    cid = db.scalar("SELECT campaign_id FROM deliveries WHERE id = ?", (delivery_id,))
    db.execute("UPDATE deliveries SET state = 'bounced' WHERE id = ?", (delivery_id,))
    record_event(db, cid, delivery_id, EVENT_KINDS[BounceKind.HARD], {"status": "5.1.1"})


def email_deliveries(db: Database) -> list[tuple[int, str]]:
    """(delivery id, orgnr) of the e-mails to units with one unit each, by orgnr."""
    return [
        (int(d), o)
        for d, o in db.query(
            "SELECT d.id, du.orgnr FROM deliveries d JOIN delivery_units du "
            "ON du.delivery_id = d.id WHERE d.channel = 'email' ORDER BY du.orgnr"
        )
    ]


# -- who gets a letter -------------------------------------------------------------------


def test_units_without_email_get_one_letter_each(
    registry_db: Database, settings: Settings, tmp_path: Path
) -> None:
    cid = campaign(registry_db, settings, tmp_path)
    run = make_letters(registry_db, cid, tmp_path / "out", today=TODAY)
    rows = manifest(tmp_path / "out")
    assert sorted(r["orgnr"] for r in rows) == [NORDEA, EY, TELENOR]
    assert (run.letters, run.batches, run.unreachable, run.before) == (
        3,
        (f"brev-{cid}-1-001.pdf",),
        0,
        0,
    )
    stored = letter_rows(registry_db, cid)
    assert {k: v[2] for k, v in stored.items()} == dict.fromkeys([NORDEA, EY, TELENOR], "produced")
    for row in rows:
        delivery_id, address, _, code, _ = stored[row["orgnr"]]
        assert (row["delivery_id"], address) == (str(delivery_id), row["orgnr"])
        assert row["code"] == codes.format_code(code)
    assert registry_db.query(
        "SELECT d.key, du.orgnr FROM deliveries d JOIN delivery_units du ON du.delivery_id = d.id "
        "WHERE d.channel = 'letter' ORDER BY d.key"
    ) == [(NORDEA, NORDEA), (EY, EY), (TELENOR, TELENOR)]


def test_the_manifest_has_one_row_per_letter_with_its_batch_page(
    registry_db: Database, settings: Settings, tmp_path: Path
) -> None:
    cid = campaign(registry_db, settings, tmp_path)
    make_letters(registry_db, cid, tmp_path / "out", today=TODAY)
    with (tmp_path / "out" / "manifest.csv").open(encoding="utf-8") as f:
        assert next(csv.reader(f)) == list(MANIFEST_COLUMNS)
    rows = manifest(tmp_path / "out")
    assert [(r["postcode"], r["city"], r["page"], r["language"]) for r in rows] == [
        ("0107", "OSLO", "1", "en"),  # Nordea: a Norwegian branch of a foreign company
        ("0107", "OSLO", "2", "nb"),
        ("1331", "FORNEBU", "3", "nb"),
    ]
    assert [r["name"] for r in rows] == [
        "NORDEA BANK ABP, FILIAL I NORGE",
        "ERNST & YOUNG AS",
        "TELENOR ASA",
    ]
    assert {r["batch_file"] for r in rows} == {f"brev-{cid}-1-001.pdf"}
    assert {r["letter_file"] for r in rows} == {""}


def test_a_name_that_looks_like_a_formula_is_kept_as_text_in_the_csv_files(
    db: Database, brreg: Path, settings: Settings, tmp_path: Path
) -> None:
    # CSV injection: a spreadsheet runs a cell that starts with = + - @ as a formula.
    load_registry(db, brreg, tmp_path, {TELENOR: no_address})
    cid = campaign(db, settings, tmp_path)
    with db.transaction():
        for orgnr, name in ((EY, '=HYPERLINK("http://x")'), (TELENOR, "@SUM(1+1)")):
            db.execute(
                "UPDATE recipients SET name = ? WHERE campaign_id = ? AND orgnr = ?",
                (name, cid, orgnr),
            )
    make_letters(db, cid, tmp_path / "out", today=TODAY)
    names = {r["orgnr"]: r["name"] for r in manifest(tmp_path / "out")}
    assert names[EY] == '\'=HYPERLINK("http://x")'
    assert [r["name"] for r in unreachable(tmp_path / "out")] == ["'@SUM(1+1)"]


def test_units_whose_email_hard_bounced_or_was_refused_get_letters(
    registry_db: Database, settings: Settings, tmp_path: Path
) -> None:
    cid = campaign(registry_db, settings, tmp_path)
    (bounced, bounced_unit), (refused, refused_unit), (sent, _) = email_deliveries(registry_db)[:3]
    hard_bounce(registry_db, bounced)
    registry_db.execute(
        "UPDATE deliveries SET state = 'failed', last_reply = ? WHERE id = ?",
        ("550 5.1.1 <post@example.no>: Recipient address rejected: User unknown", refused),
    )
    registry_db.execute("UPDATE deliveries SET state = 'sent' WHERE id = ?", (sent,))
    make_letters(registry_db, cid, tmp_path / "out", today=TODAY)
    orgnrs = {r["orgnr"] for r in manifest(tmp_path / "out")}
    assert orgnrs == {NORDEA, EY, TELENOR, bounced_unit, refused_unit}


def test_a_unit_whose_address_hard_bounced_in_an_earlier_campaign_gets_a_letter(
    registry_db: Database, settings: Settings, tmp_path: Path
) -> None:
    # Its e-mail is held back, but nobody asked not to be contacted: unlike an unsubscribe.
    (dead, dead_unit), (stopped, _) = registry_db.query(
        "SELECT address, orgnr FROM contacts WHERE usable = ? AND address IN (SELECT address "
        "FROM contacts GROUP BY address HAVING count(*) = 1) ORDER BY orgnr LIMIT 2",
        (True,),
    )
    with registry_db.transaction():
        add(registry_db, SuppressionKind.ADDRESS, dead, SuppressionReason.HARD_BOUNCE, "test")
        add(registry_db, SuppressionKind.ADDRESS, stopped, SuppressionReason.UNSUBSCRIBED, "test")
    cid = campaign(registry_db, settings, tmp_path)
    make_letters(registry_db, cid, tmp_path / "out", today=TODAY)
    assert {r["orgnr"] for r in manifest(tmp_path / "out")} == {NORDEA, EY, TELENOR, dead_unit}


def test_the_letter_says_why_it_is_a_letter(
    registry_db: Database, settings: Settings, tmp_path: Path
) -> None:
    cid = campaign(registry_db, settings, tmp_path)
    (delivery_id, orgnr) = registry_db.query(
        "SELECT d.id, du.orgnr FROM deliveries d JOIN delivery_units du ON du.delivery_id = d.id "
        "JOIN recipients r ON r.orgnr = du.orgnr AND r.language = 'nb' "
        "WHERE d.channel = 'email' ORDER BY du.orgnr LIMIT 1"
    )[0]
    hard_bounce(registry_db, int(delivery_id))
    make_letters(registry_db, cid, tmp_path / "out", today=TODAY)
    pages = {r["orgnr"]: int(r["page"]) for r in manifest(tmp_path / "out")}
    pdf = tmp_path / "out" / f"brev-{cid}-1-001.pdf"
    assert "E-post til virksomheten kommer ikke fram" in page_text(pdf, pages[orgnr])
    assert "Virksomheten har ingen e-postadresse" in page_text(pdf, pages[EY])


def test_a_unit_that_asked_not_to_be_contacted_gets_no_letter(
    registry_db: Database, settings: Settings, tmp_path: Path
) -> None:
    registry_db.execute(
        "INSERT INTO suppressions (kind, value, reason, created_at) "
        "VALUES ('unit', ?, 'unsubscribed', '2026-01-01T00:00:00Z')",
        (EY,),
    )
    cid = campaign(registry_db, settings, tmp_path)
    run = make_letters(registry_db, cid, tmp_path / "out", today=TODAY)
    assert {r["orgnr"] for r in manifest(tmp_path / "out")} == {NORDEA, TELENOR}
    assert run.suppressed == 1
    assert letter_rows(registry_db, cid)[EY][2] == "suppressed"


# -- addresses ---------------------------------------------------------------------------


def no_address(record: dict[str, Any]) -> None:
    # The municipality stays: it is what puts the unit in the segment.
    record.pop("postadresse", None)
    business = record["forretningsadresse"]
    record["forretningsadresse"] = {k: business[k] for k in ("kommune", "kommunenummer")}


def test_the_postal_address_is_used_before_the_business_address(
    registry_db: Database, settings: Settings, tmp_path: Path
) -> None:
    cid = campaign(registry_db, settings, tmp_path)
    make_letters(registry_db, cid, tmp_path / "out", today=TODAY)
    rows = {r["orgnr"]: r for r in manifest(tmp_path / "out")}
    # EY: postadresse Postboks 1156 Sentrum, 0107 OSLO; forretningsadresse Stortorvet 7, 0155.
    assert rows[EY]["postcode"] == "0107"
    text = page_text(tmp_path / "out" / rows[EY]["batch_file"], int(rows[EY]["page"]))
    assert "Postboks 1156 Sentrum" in text
    assert "Stortorvet 7" not in text


def test_without_a_postal_address_the_business_address_is_used(
    db: Database, brreg: Path, settings: Settings, tmp_path: Path
) -> None:
    load_registry(db, brreg, tmp_path, {EY: lambda r: r.pop("postadresse")})
    cid = campaign(db, settings, tmp_path)
    make_letters(db, cid, tmp_path / "out", today=TODAY)
    rows = {r["orgnr"]: r for r in manifest(tmp_path / "out")}
    assert (rows[EY]["postcode"], rows[EY]["city"]) == ("0155", "OSLO")


def test_a_unit_without_any_address_is_listed_as_unreachable(
    db: Database, brreg: Path, settings: Settings, tmp_path: Path
) -> None:
    load_registry(db, brreg, tmp_path, {EY: no_address})
    cid = campaign(db, settings, tmp_path)
    run = make_letters(db, cid, tmp_path / "out", today=TODAY)
    assert {r["orgnr"] for r in manifest(tmp_path / "out")} == {NORDEA, TELENOR}
    assert unreachable(tmp_path / "out") == [
        {
            "orgnr": EY,
            "name": "ERNST & YOUNG AS",
            "reason": "no_postal_address",
            "explanation": "ingen postadresse eller forretningsadresse i registeret",
        }
    ]
    assert (run.unreachable, run.by_reason) == (1, {"no_postal_address": 1})
    row = letter_rows(db, cid)[EY]
    assert (row[2], row[4]) == ("failed", "no_postal_address")
    assert "1 enhet kan ikke nås med brev (1 ingen postadresse" in run.summary()


def test_an_address_without_a_postcode_is_incomplete(
    db: Database, brreg: Path, settings: Settings, tmp_path: Path
) -> None:
    def no_postcode(record: dict[str, Any]) -> None:
        record["postadresse"].pop("postnummer")
        record["forretningsadresse"].pop("postnummer")

    load_registry(db, brreg, tmp_path, {EY: no_postcode})
    cid = campaign(db, settings, tmp_path)
    make_letters(db, cid, tmp_path / "out", today=TODAY)
    assert [(r["orgnr"], r["reason"]) for r in unreachable(tmp_path / "out")] == [
        (EY, Unreachable.INCOMPLETE.value)
    ]


def test_a_unit_without_an_address_of_its_own_gets_its_sub_units(
    db: Database, brreg: Path, settings: Settings, tmp_path: Path
) -> None:
    load_registry(db, brreg, tmp_path, {TELENOR: no_address})
    import_dump(db, brreg / "underenheter-sample.json")  # 982476089 TELENOR ASA AVD HOVEDKONTOR
    cid = campaign(db, settings, tmp_path)
    make_letters(db, cid, tmp_path / "out", today=TODAY)
    rows = {r["orgnr"]: r for r in manifest(tmp_path / "out")}
    assert (rows[TELENOR]["postcode"], rows[TELENOR]["city"]) == ("1331", "FORNEBU")
    text = page_text(tmp_path / "out" / rows[TELENOR]["batch_file"], int(rows[TELENOR]["page"]))
    assert "TELENOR ASA Postboks 800 1331 FORNEBU" in text


def test_letters_abroad_carry_the_country_and_come_last(
    db: Database, brreg: Path, settings: Settings, tmp_path: Path
) -> None:
    def swedish(record: dict[str, Any]) -> None:
        record["postadresse"] = {
            "adresse": ["Box 7000"],
            "land": "Sverige",
            "landkode": "SE",
            "postnummer": "103 86",
            "poststed": "STOCKHOLM",
        }

    load_registry(db, brreg, tmp_path, {NORDEA: swedish})
    cid = campaign(db, settings, tmp_path)
    make_letters(db, cid, tmp_path / "out", today=TODAY)
    rows = manifest(tmp_path / "out")
    assert [(r["orgnr"], r["postcode"], r["country"]) for r in rows] == [
        (EY, "0107", ""),
        (TELENOR, "1331", ""),
        (NORDEA, "103 86", "Sverige"),
    ]
    items = page_items(tmp_path / "out" / rows[2]["batch_file"], 3)
    window = [t for x, y, t in items if WINDOW.contains(x, y)]
    assert window[-3:] == ["Box 7000", "103 86 STOCKHOLM", "SVERIGE"]


# -- the PDF -----------------------------------------------------------------------------


@pytest.fixture
def made(registry_db: Database, settings: Settings, tmp_path: Path) -> tuple[Database, int, Path]:
    cid = campaign(registry_db, settings, tmp_path)
    make_letters(registry_db, cid, tmp_path / "out", today=TODAY)
    return registry_db, cid, tmp_path / "out" / f"brev-{cid}-1-001.pdf"


def test_the_address_lies_inside_the_envelope_window(made: tuple[Database, int, Path]) -> None:
    _, _, pdf = made
    for page in (1, 2, 3):
        runs = address_runs(pdf, page)
        assert len(runs) == 4  # return address, name, box or street, postcode and city
        for x, top, bottom, glyph_top, _ in runs:
            assert x == pytest.approx(ADDRESS_AREA.x, abs=0.01)
            assert ADDRESS_AREA.y - 0.01 <= top < bottom <= ADDRESS_AREA.y + ADDRESS_AREA.height
            assert WINDOW.contains(x, glyph_top)
            assert WINDOW.contains(x, bottom)
    assert [t for *_, t in address_runs(pdf, 2)] == [
        "Returadresse: Oslo politidistrikt og NSR, Postboks 2094 Vika, 0125 Oslo",
        "ERNST & YOUNG AS",
        "Postboks 1156 Sentrum",
        "0107 OSLO",
    ]


def test_a_long_name_stays_inside_the_window(
    db: Database, brreg: Path, settings: Settings, tmp_path: Path
) -> None:
    def long(record: dict[str, Any]) -> None:
        record["navn"] = "ÅSE ERNST & YOUNG " + "REVISJON OG RÅDGIVNING " * 6 + "AS"
        record["postadresse"]["adresse"] = ["c/o Resepsjonen", "Postboks 1156 Sentrum", "Bygg B"]

    load_registry(db, brreg, tmp_path, {EY: long})
    cid = campaign(db, settings, tmp_path)
    make_letters(db, cid, tmp_path / "out", today=TODAY)
    page = next(int(r["page"]) for r in manifest(tmp_path / "out") if r["orgnr"] == EY)
    runs = address_runs(tmp_path / "out" / f"brev-{cid}-1-001.pdf", page)
    assert [t for *_, t in runs][-4:] == [
        "c/o Resepsjonen",
        "Postboks 1156 Sentrum",
        "Bygg B",
        "0107 OSLO",
    ]
    assert len(runs) == 9  # the name takes four lines
    for _, top, bottom, glyph_top, _ in runs:
        assert ADDRESS_AREA.y - 0.01 <= top < bottom <= ADDRESS_AREA.y + ADDRESS_AREA.height
        assert glyph_top > WINDOW.y


def too_long(record: dict[str, Any]) -> None:
    record["postadresse"]["adresse"] = ["c/o " + "RESEPSJONEN" * 8, "Postboks 1156 Sentrum"]


def test_an_address_too_long_for_the_window_is_left_out_and_every_other_letter_made(
    db: Database, brreg: Path, settings: Settings, tmp_path: Path
) -> None:
    load_registry(db, brreg, tmp_path, {EY: too_long})
    cid = campaign(db, settings, tmp_path)
    # One letter a batch: EY's would have been the second of three.
    run = make_letters(db, cid, tmp_path / "out", batch_size=1, today=TODAY)
    rows = manifest(tmp_path / "out")
    assert [(r["orgnr"], r["batch_file"]) for r in rows] == [
        (NORDEA, f"brev-{cid}-1-001.pdf"),
        (TELENOR, f"brev-{cid}-1-002.pdf"),
    ]
    assert [len(PdfReader(tmp_path / "out" / b).pages) for b in run.batches] == [1, 1]
    assert unreachable(tmp_path / "out") == [
        {
            "orgnr": EY,
            "name": "ERNST & YOUNG AS",
            "reason": "address_too_long",
            "explanation": "adressen får ikke plass i konvoluttvinduet",
        }
    ]
    assert (run.letters, run.unreachable, run.by_reason) == (2, 1, {"address_too_long": 1})
    assert "1 enhet kan ikke nås med brev (1 adressen får ikke plass i konvoluttvinduet)" in (
        run.summary()
    )
    stored = letter_rows(db, cid)
    assert {k: (v[2], v[4]) for k, v in stored.items()} == {
        NORDEA: ("produced", None),
        EY: ("failed", "address_too_long"),
        TELENOR: ("produced", None),
    }
    events = db.query(
        "SELECT kind, detail FROM events WHERE delivery_id = ? ORDER BY id", (stored[EY][0],)
    )
    assert events == [("letter_unreachable", '{"reason": "address_too_long"}')]
    # The reports say why the business was not reached.
    from varsel.coverage import Reason, coverage

    assert coverage(db, cid).unreachable[Reason.ADDRESS_TOO_LONG] == 1


def test_a_letter_left_out_for_its_address_is_made_again_only_once_the_address_changed(
    db: Database, brreg: Path, settings: Settings, tmp_path: Path
) -> None:
    load_registry(db, brreg, tmp_path, {EY: too_long})
    cid = campaign(db, settings, tmp_path)
    make_letters(db, cid, tmp_path / "one", today=TODAY)
    failed = letter_rows(db, cid)[EY]
    events = db.scalar("SELECT count(*) FROM events")
    again = make_letters(db, cid, tmp_path / "two", today=TODAY)
    assert (again.letters, again.by_reason) == (0, {"address_too_long": 1})
    assert letter_rows(db, cid)[EY] == failed
    # Nothing new about the letter: only the run itself is recorded.
    kinds = db.query("SELECT kind FROM events WHERE id > ? ORDER BY id", (events,))
    assert "letter_unreachable" not in {k for (k,) in kinds}
    load_registry(db, brreg, tmp_path, {})  # the registry has a shorter address now
    make_letters(db, cid, tmp_path / "three", today=TODAY)
    assert [r["orgnr"] for r in manifest(tmp_path / "three")] == [EY]
    assert letter_rows(db, cid)[EY] == (failed[0], EY, "produced", failed[3], None)


def test_an_unreachable_letter_keeps_the_reason_of_its_last_run(
    db: Database, brreg: Path, settings: Settings, tmp_path: Path
) -> None:
    load_registry(db, brreg, tmp_path, {EY: no_address})
    cid = campaign(db, settings, tmp_path)
    make_letters(db, cid, tmp_path / "one", today=TODAY)
    assert letter_rows(db, cid)[EY][4] == "no_postal_address"
    load_registry(db, brreg, tmp_path, {EY: too_long})
    make_letters(db, cid, tmp_path / "two", today=TODAY)
    assert letter_rows(db, cid)[EY][3:] == (letter_rows(db, cid)[EY][3], "address_too_long")
    assert [r["reason"] for r in unreachable(tmp_path / "two")] == ["address_too_long"]


def test_each_page_carries_its_deliverys_code_and_the_verify_address(
    made: tuple[Database, int, Path],
) -> None:
    db, cid, pdf = made
    stored = {v[0]: v[3] for v in letter_rows(db, cid).values()}
    for row in manifest(pdf.parent):
        text = page_text(pdf, int(row["page"]))
        code = codes.format_code(stored[int(row["delivery_id"])])
        assert code in text
        assert "https://www.politiet.no/varsel/kontroll" in text
        assert f"{cid}-{row['delivery_id']}" in text  # the reference
        assert "Altinn" in text
    assert len(PdfReader(pdf).pages) == 3


def test_norwegian_letters_come_out_right(
    db: Database, brreg: Path, settings: Settings, tmp_path: Path
) -> None:
    def norwegian(record: dict[str, Any]) -> None:
        record["navn"] = "BÆRUM ØSTRE ÅS «KAFÉ» AS"
        record["postadresse"]["adresse"] = ["Øvre Ærøveien 5 å"]

    load_registry(db, brreg, tmp_path, {EY: norwegian})
    cid = campaign(db, settings, tmp_path)
    make_letters(db, cid, tmp_path / "out", today=TODAY)
    page = next(int(r["page"]) for r in manifest(tmp_path / "out") if r["orgnr"] == EY)
    texts = [t for _, _, t in page_items(tmp_path / "out" / f"brev-{cid}-1-001.pdf", page)]
    assert "BÆRUM ØSTRE ÅS «KAFÉ» AS" in texts
    assert "Øvre Ærøveien 5 å" in texts
    assert "Dato: 3. mars 2026" in texts
    assert "Sikkerhetsråd til virksomheten" in texts


def test_fonts_are_embedded_and_are_the_shipped_ones(made: tuple[Database, int, Path]) -> None:
    _, _, pdf = made
    seen = set()
    for page in PdfReader(pdf).pages:
        for ref in page["/Resources"]["/Font"].values():
            font = ref.get_object()
            descendant = font["/DescendantFonts"][0].get_object()
            descriptor = descendant["/FontDescriptor"].get_object()
            assert "/FontFile2" in descriptor  # the TrueType program is in the file
            seen.add(str(font["/BaseFont"]).split("+", 1)[1])
    assert seen == {"LiberationSans", "LiberationSans-Bold"}


def test_batches_are_bounded_and_sorted_by_postcode(
    registry_db: Database, settings: Settings, tmp_path: Path
) -> None:
    cid = campaign(registry_db, settings, tmp_path)
    run = make_letters(registry_db, cid, tmp_path / "out", batch_size=2, today=TODAY)
    rows = manifest(tmp_path / "out")
    assert run.batches == (f"brev-{cid}-1-001.pdf", f"brev-{cid}-1-002.pdf")
    assert [(r["batch_file"][-7:], r["page"], r["postcode"]) for r in rows] == [
        ("001.pdf", "1", "0107"),
        ("001.pdf", "2", "0107"),
        ("002.pdf", "1", "1331"),
    ]
    assert [len(PdfReader(tmp_path / "out" / b).pages) for b in run.batches] == [2, 1]
    first = page_text(tmp_path / "out" / run.batches[1], 1)
    assert rows[2]["code"] in first


def test_per_letter_writes_one_pdf_per_letter_too(
    registry_db: Database, settings: Settings, tmp_path: Path
) -> None:
    cid = campaign(registry_db, settings, tmp_path)
    run = make_letters(registry_db, cid, tmp_path / "out", per_letter=True, today=TODAY)
    rows = manifest(tmp_path / "out")
    assert run.letter_files == 3
    for row in rows:
        assert row["letter_file"] == f"brev-{cid}-{row['delivery_id']}.pdf"
        pdf = tmp_path / "out" / row["letter_file"]
        assert len(PdfReader(pdf).pages) == 1
        assert row["code"] in page_text(pdf, 1)


def test_the_letters_and_their_lists_are_readable_by_their_owner_alone(
    db: Database, brreg: Path, settings: Settings, tmp_path: Path
) -> None:
    # They name businesses, and sole proprietorships are people: personal data.
    load_registry(db, brreg, tmp_path, {TELENOR: no_address})
    cid = campaign(db, settings, tmp_path)
    old = os.umask(0o022)
    try:
        make_letters(db, cid, tmp_path / "ny" / "brev", per_letter=True, today=TODAY)
    finally:
        os.umask(old)
    out = tmp_path / "ny" / "brev"
    modes = {p.name: p.stat().st_mode & 0o777 for p in out.iterdir()}
    assert len(modes) == 5  # a batch, two letters on their own, manifest.csv, unreachable.csv
    assert set(modes.values()) == {0o600}
    assert [(p.stat().st_mode & 0o777) for p in (out, out.parent)] == [0o700, 0o700]


# -- the outbox --------------------------------------------------------------------------


def test_running_again_makes_no_letter_twice(
    registry_db: Database, settings: Settings, tmp_path: Path
) -> None:
    cid = campaign(registry_db, settings, tmp_path)
    make_letters(registry_db, cid, tmp_path / "one", today=TODAY)
    before = letter_rows(registry_db, cid)
    again = make_letters(registry_db, cid, tmp_path / "two", today=TODAY)
    assert (again.letters, again.before, again.batches) == (0, 3, ())
    assert manifest(tmp_path / "two") == []
    assert letter_rows(registry_db, cid) == before
    assert "3 brev ble laget tidligere og lages ikke på nytt." in again.summary()


def test_a_second_run_makes_only_the_new_letters(
    registry_db: Database, settings: Settings, tmp_path: Path
) -> None:
    cid = campaign(registry_db, settings, tmp_path)
    make_letters(registry_db, cid, tmp_path / "one", today=TODAY)
    delivery_id, orgnr = email_deliveries(registry_db)[0]
    hard_bounce(registry_db, delivery_id)
    run = make_letters(registry_db, cid, tmp_path / "two", today=TODAY)
    assert [r["orgnr"] for r in manifest(tmp_path / "two")] == [orgnr]
    assert run.batches == (f"brev-{cid}-2-001.pdf",)


def fail_at_batch(monkeypatch: pytest.MonkeyPatch, number: int) -> None:
    """Make the run fail while it renders its batch `number` (a crash, a full disk)."""
    from varsel.letter_render import Renderer

    render = Renderer.render
    calls = []

    def failing(self: Renderer, letters: Any, out: Path) -> None:
        calls.append(out)
        if len(calls) == number:
            raise RuntimeError("disken er full")
        render(self, letters, out)

    monkeypatch.setattr(Renderer, "render", failing)


def died_at_second_batch(
    db: Database, settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> tuple[int, Path]:
    """A campaign whose first letters run (one letter a batch, into "one") failed in its
    second batch: (campaign id, the run's folder)."""
    cid = campaign(db, settings, tmp_path)
    out = tmp_path / "one"
    with monkeypatch.context() as m:
        fail_at_batch(m, 2)
        with pytest.raises(RuntimeError):
            make_letters(db, cid, out, batch_size=1, today=TODAY)
    return cid, out


def produced_batches(db: Database) -> dict[int, str]:
    """The batch file each produced letter is recorded in, by delivery id."""
    return {
        int(d): json.loads(x)["batch"]
        for d, x in db.query(
            "SELECT delivery_id, detail FROM events WHERE kind = 'letter_produced'"
        )
    }


def test_a_run_that_fails_in_its_own_letter_files_keeps_manifest_and_store_alike(
    registry_db: Database, settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # --per-letter, one letter a batch: the renders are batch 1, its letter, batch 2, ...
    # A failure in batch 2's own letter file took back none of batch 2, which no manifest
    # listed: letters recorded as made that the print house would never be told of.
    cid = campaign(registry_db, settings, tmp_path)
    out = tmp_path / "one"
    with monkeypatch.context() as m:
        fail_at_batch(m, 4)
        with pytest.raises(RuntimeError):
            make_letters(registry_db, cid, out, batch_size=1, per_letter=True, today=TODAY)
    rows = manifest(out)
    assert [r["batch_file"] for r in rows] == [f"brev-{cid}-1-001.pdf"]
    assert list(produced_batches(registry_db)) == [int(rows[0]["delivery_id"])]
    assert sorted(p.name for p in out.iterdir()) == sorted(
        ["manifest.csv", f"brev-{cid}-1-001.pdf", rows[0]["letter_file"]]
    )
    run = make_letters(registry_db, cid, tmp_path / "two", per_letter=True, today=TODAY)
    assert (run.letters, run.letter_files, run.before) == (2, 2, 1)


def test_ctrl_c_while_a_batch_is_made_leaves_no_file_of_unrecorded_letters(
    registry_db: Database, settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The batch's PDF is written, then Ctrl-C before the commit: the letters are not
    # recorded, so a .part left behind would hold codes the verify page calls not ours.
    from varsel.letter_render import Renderer

    render = Renderer.render
    calls = []

    def interrupted(self: Renderer, letters: Any, out_path: Path) -> None:
        render(self, letters, out_path)
        calls.append(out_path)
        if len(calls) == 2:
            raise KeyboardInterrupt

    monkeypatch.setattr(Renderer, "render", interrupted)
    cid = campaign(registry_db, settings, tmp_path)
    out = tmp_path / "one"
    with pytest.raises(KeyboardInterrupt):
        make_letters(registry_db, cid, out, batch_size=1, today=TODAY)
    assert calls[1].name == f"brev-{cid}-1-002.pdf.part"
    assert sorted(p.name for p in out.iterdir()) == [f"brev-{cid}-1-001.pdf", "manifest.csv"]
    assert len(produced_batches(registry_db)) == 1


def test_ctrl_c_as_a_batch_is_committed_waits_until_its_file_and_rows_are_written(
    registry_db: Database, settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import signal

    from varsel import letters

    replace_file = os.replace

    def interrupted(src: Path, dst: Path) -> None:
        os.kill(os.getpid(), signal.SIGINT)  # Ctrl-C just after the commit
        replace_file(src, dst)

    monkeypatch.setattr(letters.os, "replace", interrupted)
    cid = campaign(registry_db, settings, tmp_path)
    out = tmp_path / "one"
    with pytest.raises(KeyboardInterrupt):
        make_letters(registry_db, cid, out, batch_size=1, today=TODAY)
    rows = manifest(out)
    assert [r["batch_file"] for r in rows] == [f"brev-{cid}-1-001.pdf"]
    assert sorted(p.name for p in out.iterdir()) == [f"brev-{cid}-1-001.pdf", "manifest.csv"]
    assert list(produced_batches(registry_db)) == [int(rows[0]["delivery_id"])]
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_a_run_stops_before_making_a_letter_another_run_made_meanwhile(
    registry_db: Database, settings: Settings, tmp_path: Path
) -> None:
    # Two operators at once: the other run makes Telenor's letter while this one is on its
    # first batch. This run must not print it a second time.
    from varsel.letters import new_delivery
    from varsel.outbox import DeliveryState

    cid = campaign(registry_db, settings, tmp_path)

    def other_run(_: int) -> None:
        with registry_db.transaction():
            new_delivery(
                registry_db, cid, TELENOR, "nb", DeliveryState.PRODUCED, "QDETH290W7BE", "now"
            )

    out = tmp_path / "one"
    with pytest.raises(LetterError) as e:
        make_letters(registry_db, cid, out, batch_size=2, today=TODAY, progress=other_run)
    assert e.value.message == (
        f"kampanje {cid}: en annen kjøring av «varsel letters» har laget brev til de samme "
        "enhetene i mellomtiden; denne stanset før den laget dem to ganger (bunkene den laget "
        "før, er hele); kjør igjen i en ny mappe når den andre er ferdig"
    )
    assert [r["orgnr"] for r in manifest(out)] == [NORDEA, EY]
    assert sorted(p.name for p in out.iterdir()) == [f"brev-{cid}-1-001.pdf", "manifest.csv"]
    assert letter_rows(registry_db, cid)[TELENOR][3] == "QDETH290W7BE"


def test_the_same_folder_is_not_used_twice(
    registry_db: Database, settings: Settings, tmp_path: Path
) -> None:
    cid = campaign(registry_db, settings, tmp_path)
    make_letters(registry_db, cid, tmp_path / "out", today=TODAY)
    with pytest.raises(LetterError) as e:
        make_letters(registry_db, cid, tmp_path / "out", today=TODAY)
    folder = tmp_path / "out"
    assert e.value.message == (
        f"{folder} har allerede en manifest.csv fra en tidligere kjøring; velg en ny mappe"
    )


def test_a_folder_that_cannot_be_made_says_why_in_bokmal(
    registry_db: Database, settings: Settings, tmp_path: Path
) -> None:
    cid = campaign(registry_db, settings, tmp_path)
    (tmp_path / "fil").write_text("ikke en mappe")
    with pytest.raises(LetterError) as e:
        make_letters(registry_db, cid, tmp_path / "fil" / "brev", today=TODAY)
    assert e.value.message == (
        f"{tmp_path}/fil/brev: mappen kan ikke lages (en del av stien er ikke en mappe)"
    )
    assert registry_db.scalar("SELECT count(*) FROM deliveries WHERE channel = 'letter'") == 0


def test_an_unreachable_unit_gets_its_letter_once_it_has_an_address(
    db: Database, brreg: Path, settings: Settings, tmp_path: Path
) -> None:
    load_registry(db, brreg, tmp_path, {EY: no_address})
    cid = campaign(db, settings, tmp_path)
    make_letters(db, cid, tmp_path / "one", today=TODAY)
    failed = letter_rows(db, cid)[EY]
    load_registry(db, brreg, tmp_path, {})  # the registry has the address again
    make_letters(db, cid, tmp_path / "two", today=TODAY)
    assert [r["orgnr"] for r in manifest(tmp_path / "two")] == [EY]
    assert letter_rows(db, cid)[EY] == (failed[0], EY, "produced", failed[3], None)
    assert unreachable(tmp_path / "two") == []


def test_letter_codes_are_genuine_on_the_verify_page(made: tuple[Database, int, Path]) -> None:
    db, cid, _ = made
    row = manifest(made[2].parent)[1]
    found = verify.lookup(db, row["code"])
    assert found is not None
    assert (found.delivery_id, found.campaign_id) == (int(row["delivery_id"]), cid)
    assert [u.orgnr for u in found.units] == [row["orgnr"]]


def test_events_record_each_letters_batch_and_page(made: tuple[Database, int, Path]) -> None:
    db, cid, pdf = made
    events = db.query(
        "SELECT delivery_id, detail FROM events WHERE kind = 'letter_produced' ORDER BY id"
    )
    assert [(d, json.loads(x)) for d, x in events] == [
        (int(r["delivery_id"]), {"batch": pdf.name, "page": int(r["page"]), "date": "2026-03-03"})
        for r in manifest(pdf.parent)
    ]
    assert letter_counts(db, cid) == {
        "produced": 3,
        "posted": 0,
        "returned": 0,
        "failed": 0,
        "suppressed": 0,
    }


def test_the_export_is_audited_without_names(made: tuple[Database, int, Path]) -> None:
    db, cid, pdf = made
    actor, obj, detail = db.query(
        "SELECT actor, object, detail FROM audit_log WHERE action = 'personal_data_export'"
    )[0]
    assert (actor, obj) == ("system", f"campaign:{cid}")
    assert json.loads(detail) == {
        "what": "letters",
        "files": ["manifest.csv", "unreachable.csv", pdf.name],
        "out_dir": str(pdf.parent),
        "letters": 3,
        "unreachable": 0,
    }
    assert "ERNST" not in detail


def test_the_letter_outbox_is_never_claimed_by_the_email_sender(
    made: tuple[Database, int, Path],
) -> None:
    db, _, _ = made
    states = {s for (s,) in db.query("SELECT state FROM deliveries WHERE channel = 'letter'")}
    assert states == {"produced"}


def test_a_cancelled_campaign_gets_no_letters(
    registry_db: Database, settings: Settings, tmp_path: Path
) -> None:
    cid = campaign(registry_db, settings, tmp_path)
    set_status(registry_db, cid, CampaignStatus.CANCELLED)
    with pytest.raises(LetterError) as e:
        make_letters(registry_db, cid, tmp_path / "out", today=TODAY)
    assert e.value.message == f"kampanje {cid} er kansellert; det lages ingen brev"


def test_a_forgotten_campaign_gets_no_letters(
    registry_db: Database, settings: Settings, tmp_path: Path
) -> None:
    # Who needs a letter is read from the e-mail replies and addresses that forget erases.
    cid = campaign(registry_db, settings, tmp_path)
    with registry_db.transaction():
        registry_db.execute(
            "UPDATE campaigns SET forgotten_at = '2026-11-29T12:00:00.000Z' WHERE id = ?", (cid,)
        )
    with pytest.raises(LetterError) as e:
        make_letters(registry_db, cid, tmp_path / "out", today=TODAY)
    assert e.value.message == (
        f"kampanje {cid} har glemt kontaktopplysningene sine, så det kan ikke lenger avgjøres "
        "hvem som trenger brev; brevene må lages før «campaign forget»"
    )
    assert not (tmp_path / "out").exists()
    assert registry_db.scalar("SELECT count(*) FROM deliveries WHERE channel = 'letter'") == 0


# -- the template ------------------------------------------------------------------------


def test_a_letter_template_without_the_code_is_refused_before_anything_is_made(
    registry_db: Database, settings: Settings, tmp_path: Path
) -> None:
    text = CAMPAIGN + '\n[templates.nb]\nletter = "Hei {{ verify_url }}"\n'
    cid = campaign(registry_db, settings, tmp_path, text)
    with pytest.raises(LetterTemplateError) as e:
        make_letters(registry_db, cid, tmp_path / "out", today=TODAY)
    assert e.value.message == (
        "brevmalen (nb) viser ikke kontrollkoden: skriv {{ code }} der den skal stå"
    )
    assert letter_rows(registry_db, cid) == {}
    assert not (tmp_path / "out" / "manifest.csv").exists()


def test_a_letter_longer_than_a_page_is_refused(
    registry_db: Database, settings: Settings, tmp_path: Path
) -> None:
    long = "\\n\\n".join(["Et langt avsnitt om sikkerhet. " * 12] * 14)
    text = CAMPAIGN + (
        f'\n[templates.nb]\nletter = "{{{{ code }}}} {{{{ verify_url }}}}\\n\\n{long}"\n'
    )
    cid = campaign(registry_db, settings, tmp_path, text)
    with pytest.raises(LetterTemplateError) as e:
        make_letters(registry_db, cid, tmp_path / "out", today=TODAY)
    assert re.fullmatch(
        r"brevet til org.nr. \d{3} \d{3} \d{3}: teksten blir lengre enn én side; kort ned "
        r"brevmalen",
        e.value.message,
    )
    assert letter_rows(registry_db, cid) == {}
    assert not list((tmp_path / "out").glob("*.pdf"))


def test_the_campaign_keeps_its_letter_template_and_return_address(
    registry_db: Database, settings: Settings, tmp_path: Path
) -> None:
    text = CAMPAIGN + '\n[templates.nn]\nletter = "# Hei\\n\\n{{ code }} {{ verify_url }}"\n'
    cid = campaign(registry_db, settings, tmp_path, text)
    from varsel.campaign import get_campaign
    from varsel.letter_render import default_letter_templates

    spec = get_campaign(registry_db, cid).spec
    assert spec.templates["nn"].letter == "# Hei\n\n{{ code }} {{ verify_url }}"
    assert spec.templates["nb"].letter == default_letter_templates()["nb"]
    assert spec.sender_postal_address == "Postboks 2094 Vika\n0125 Oslo"


def test_a_run_summary_says_one_in_the_singular(tmp_path: Path) -> None:
    one = LetterRun(
        campaign_id=4,
        out_dir=tmp_path,
        letters=3,
        batches=("bunke-001.pdf",),
        unreachable=1,
        suppressed=1,
        before=0,
        letter_files=1,
        by_reason={"no_postal_address": 1},
    )
    assert one.summary().splitlines() == [
        f"Kampanje 4: 3 brev i 1 PDF-bunke i {tmp_path} (oversikt: manifest.csv).",
        "1 brev også som egen PDF-fil.",
        "1 enhet kan ikke nås med brev (1 ingen postadresse eller forretningsadresse i "
        "registeret); se unreachable.csv.",
        "1 enhet har bedt om ikke å bli kontaktet.",
    ]
    two = replace(one, batches=("a.pdf", "b.pdf"), suppressed=2, letter_files=2)
    assert "3 brev i 2 PDF-bunker i" in two.summary()
    assert "2 brev også som egne PDF-filer." in two.summary()
    assert "2 enheter har bedt om ikke å bli kontaktet." in two.summary()
