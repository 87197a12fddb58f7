from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from conftest import BRREG
from helpers import unit_row, units
from test_feed import EARLY, SAMPLE_PAGE
from varsel.db import Database
from varsel.errors import BadFileError
from varsel.feed import apply_feed
from varsel.i18n import fmt_int
from varsel.registry import import_dump
from varsel.snapshot import list_snapshots


def test_a_gzipped_page_is_applied_as_the_plain_one(
    db: Database, brreg: Path, tmp_path: Path
) -> None:
    import_dump(db, brreg / "enheter-sample.json", dump_date=EARLY)
    page = tmp_path / "oppdateringer.json.gz"
    page.write_bytes(gzip.compress((brreg / "oppdateringer-sample.json").read_bytes()))
    result = apply_feed(db, page)
    assert result.snapshot is not None
    assert (result.snapshot.records, result.snapshot.changed, result.snapshot.skipped) == (8, 6, 2)
    assert unit_row(db, "923609016")["employees"] == 21272


DUMP = (BRREG / "enheter-sample.json").read_bytes()
ONE_UNIT = json.dumps(json.loads(DUMP)[0]).encode()

BAD_PAGES = [
    ("cut.json", SAMPLE_PAGE[:200], "ugyldig JSON ved byte 200: teksten slutter for tidlig"),
    (
        "cut.json.gz",
        gzip.compress(SAMPLE_PAGE[:200]),
        "ugyldig JSON ved byte 200 (utpakket): teksten slutter for tidlig",
    ),
    (
        "short.json.gz",
        gzip.compress(SAMPLE_PAGE)[:300],
        "ødelagt gzip ved byte 300: filen slutter før gzip-strømmen er ferdig "
        "(avkortet nedlasting?)",
    ),
    (
        "appended.json.gz",
        gzip.compress(SAMPLE_PAGE) + b"\n<html>",
        f"ødelagt gzip ved byte {fmt_int(len(gzip.compress(SAMPLE_PAGE)))}: data som ikke er gzip, "
        "etter slutten av gzip-strømmen",
    ),
    (
        "twice.json.gz",
        gzip.compress(gzip.compress(SAMPLE_PAGE)),
        "gzip inne i gzip; pakk ut filen én gang først",
    ),
    (
        "page.bin",
        b"\x00\xfe\xff\x10junk",
        "ikke tekst (begynner med b'\\x00\\xfe\\xff\\x10junk'), "
        "altså ikke en side fra endringsloggen",
    ),
    (
        "enheter.xlsx",
        b"PK\x03\x04\x14\x00\x06\x00",
        "en zip-fil (et regneark?), ikke en side fra endringsloggen",
    ),
    (
        "enheter.csv",
        b'"organisasjonsnummer","navn"\n"923609016","EQUINOR ASA"\n',
        "dette er en CSV-dump, ikke en endringslogg; bruk «varsel registry import»",
    ),
    (
        "enheter_alle.json.gz",
        gzip.compress(DUMP),
        "dette er en dump, ikke en endringslogg; bruk «varsel registry import»",
    ),
    ("enhet.json", ONE_UNIT, "dette er én enhet, ikke en side fra endringsloggen"),
    (
        "sok.json",
        b'{"_embedded": {"enheter": []}, "page": {"size": 20}}',
        "dette er et søkeresultat, ikke en side fra endringsloggen "
        "(/api/oppdateringer/enheter eller /underenheter)",
    ),
    (
        "roller.json",
        b'[{"specversion": "1.0", "id": "1", "type": "no.brreg.enhetsregisteret.rolle"}]',
        "dette er endringsloggen for roller; varsel bruker bare den for enheter og underenheter",
    ),
    (
        "liste.json",
        b'{"_embedded": {"oppdaterteEnheter": {"oppdateringsid": 1}}}',
        "_embedded.oppdaterteEnheter er ikke en liste",
    ),
    ("tall.json", b"42", "ikke en side fra endringsloggen (oppdateringer)"),
    ("null-byte.json", b"", "filen er tom"),
    ("blank.json.gz", gzip.compress(b"  \n"), "filen er tom (utpakket)"),
    ("tom.json", b"[]", "ikke en side fra endringsloggen (oppdateringer): en tom liste"),
    (
        "tall-liste.json",
        b"[1, 2]",
        "ikke en side fra endringsloggen (oppdateringer): en liste som ikke bare er endringer",
    ),
    ("annet.json", b'{"navn": "x"}', "ikke en side fra endringsloggen (oppdateringer)"),
    (
        "tall-side.json",
        b'{"_embedded": {"oppdaterteEnheter": [1, 2, 3]}, "page": {"size": 20}}',
        "ikke en side fra endringsloggen (oppdateringer): ingen av postene i "
        "_embedded.oppdaterteEnheter er endringer",
    ),
]


@pytest.mark.parametrize(("name", "content", "message"), BAD_PAGES, ids=[p[0] for p in BAD_PAGES])
def test_a_bad_page_is_a_one_line_error_and_changes_nothing(
    db: Database, brreg: Path, tmp_path: Path, name: str, content: bytes, message: str
) -> None:
    import_dump(db, brreg / "enheter-sample.json", dump_date=EARLY)
    before = units(db)
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(BadFileError) as caught:
        apply_feed(db, path)
    assert str(caught.value) == f"{path}: {message}"
    assert units(db) == before
    assert len(list_snapshots(db)) == 1
    assert db.scalar("SELECT count(*) FROM feed_state") == 0


def test_a_page_whose_gzip_crc_fails_is_said_in_bokmal(
    db: Database, brreg: Path, tmp_path: Path
) -> None:
    damaged = bytearray(gzip.compress((brreg / "oppdateringer-sample.json").read_bytes()))
    damaged[-8] ^= 1  # the CRC, stored in the last eight bytes with the length
    path = tmp_path / "side.json.gz"
    path.write_bytes(bytes(damaged))
    with pytest.raises(BadFileError) as caught:
        apply_feed(db, path)
    assert str(caught.value) == (
        f"{path}: ødelagt gzip: kontrollsummen (CRC) stemmer ikke, så innholdet er skadet "
        "et sted i filen"
    )
