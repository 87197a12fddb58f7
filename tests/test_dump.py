"""Reading dump files: where a damaged gzip stream breaks."""

from __future__ import annotations

import gzip
import random
import struct
import zlib
from pathlib import Path

import pytest

from varsel.dump import CorruptGzipError, gzip_problem, open_dump
from varsel.errors import BadFileError


def test_a_whole_gzip_file_has_no_problem(tmp_path: Path) -> None:
    path = tmp_path / "e.json.gz"
    path.write_bytes(gzip.compress(b"[]" * 10_000) + gzip.compress(b"x"))  # two members
    assert gzip_problem(path) is None


def test_bad_deflate_data_is_placed_by_its_compressed_position(tmp_path: Path) -> None:
    good = zlib.compressobj(9, zlib.DEFLATED, -15)
    body = good.compress(b"[" + b'{"a": 1},' * 5000) + good.flush(zlib.Z_FULL_FLUSH)
    # A final block of the reserved type 3: no decoder reads past it.
    header = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff"
    path = tmp_path / "e.json.gz"
    path.write_bytes(header + body + b"\x07" + struct.pack("<II", 0, 0))
    at = len(header) + len(body)
    assert gzip_problem(path) == (
        f"ødelagt gzip ved byte {at // 1024 * 1024:,}: ugyldige komprimerte data "
        "(invalid block type)"
    ).replace(",", "\u00a0")


def test_a_changed_byte_only_the_crc_finds_has_no_position(tmp_path: Path) -> None:
    data = bytearray(gzip.compress(b"[" + b'{"navn": "A"},' * 10_000 + b"{}]"))
    data[-8] ^= 0xFF  # the CRC itself
    path = tmp_path / "e.json.gz"
    path.write_bytes(bytes(data))
    assert gzip_problem(path) == (
        "ødelagt gzip: kontrollsummen (CRC) stemmer ikke, så innholdet er skadet et sted i filen"
    )
    expected = r"e\.json\.gz: ødelagt gzip: kontrollsummen"
    with pytest.raises(CorruptGzipError, match=expected), open_dump(path) as reader:
        list(reader)


def test_a_cut_gzip_file_says_where_it_ends(tmp_path: Path) -> None:
    data = gzip.compress(random.Random(1).randbytes(20_000))  # does not shrink
    path = tmp_path / "e.json.gz"
    path.write_bytes(data[:3000])
    problem = gzip_problem(path)
    assert problem is not None
    assert problem.startswith("ødelagt gzip ved byte 3\u00a0000: filen slutter før")


def test_bytes_appended_after_the_gzip_stream_are_not_called_a_crc_error(tmp_path: Path) -> None:
    member = gzip.compress(b"[]" * 1000)
    path = tmp_path / "e.json.gz"
    path.write_bytes(member + b"<html>feil</html>")
    # zlib calls it "incorrect header check": no gzip header where the next member would start.
    assert gzip_problem(path) == (
        f"ødelagt gzip ved byte {len(member)}: data som ikke er gzip, etter slutten av "
        "gzip-strømmen"
    )


def test_the_diagnosis_reads_bytes_already_read_as_it_reads_a_file() -> None:
    assert gzip_problem(gzip.compress(b"[]")) is None
    assert gzip_problem(b"[]") == "ødelagt gzip: ikke en gzip-fil likevel"
    cut = gzip.compress(random.Random(2).randbytes(5000))[:2500]
    assert gzip_problem(cut) == (
        "ødelagt gzip ved byte 2\u00a0500: filen slutter før gzip-strømmen er ferdig "
        "(avkortet nedlasting?)"
    )


@pytest.mark.parametrize("compressed", [False, True])
def test_a_latin1_byte_in_a_csv_dump_is_reported_on_its_own_line(
    brreg: Path, tmp_path: Path, compressed: bool
) -> None:
    from test_registry import load, write_dump

    records = load(brreg / "enheter-sample.json")
    path = write_dump(tmp_path / "enheter.csv", records * 200)  # far past the decoder's chunk
    lines = path.read_bytes().split(b"\n")
    lines[4000] = lines[4000].replace(b",", b",\xe6", 1)  # «æ» in Latin-1
    data = b"\n".join(lines)
    if compressed:
        path = tmp_path / "enheter.csv.gz"
        data = gzip.compress(data)
    path.write_bytes(data)
    with pytest.raises(BadFileError) as caught, open_dump(path) as reader:
        for _ in reader:
            pass
    assert caught.value.message == (
        f"{path}: ikke UTF-8 på linje 4\u00a0001 (byten 0xe6 hører ikke hjemme i UTF-8; er "
        "filen lagret som Latin-1 eller Windows-1252?)"
    )


def _csv_dump(brreg: Path, tmp_path: Path) -> bytes:
    from test_registry import load, write_dump

    return write_dump(tmp_path / "whole.csv", load(brreg / "enheter-sample.json")).read_bytes()


def test_a_csv_dump_cut_in_a_record_is_refused_not_the_record_rejected(
    brreg: Path, tmp_path: Path
) -> None:
    path = tmp_path / "cut.csv"
    path.write_bytes(_csv_dump(brreg, tmp_path)[:-40])
    with pytest.raises(BadFileError) as caught, open_dump(path) as reader:
        for _ in reader:
            pass
    assert caught.value.message == (
        f"{path}: filen slutter midt i en post på linje 140 (78 av 90 felt; avkortet?)"
    )


def test_a_csv_dump_with_only_its_header_holds_no_units(brreg: Path, tmp_path: Path) -> None:
    path = tmp_path / "header.csv"
    path.write_bytes(_csv_dump(brreg, tmp_path).split(b"\n", 1)[0] + b"\r\n")
    with pytest.raises(BadFileError) as caught, open_dump(path) as reader:
        for _ in reader:
            pass
    assert caught.value.message == f"{path}: dumpen inneholder ingen enheter"


def test_blank_lines_in_a_csv_dump_are_no_records(brreg: Path, tmp_path: Path) -> None:
    path = tmp_path / "blank.csv"
    path.write_bytes(_csv_dump(brreg, tmp_path) + b"\r\n\r\n")
    with open_dump(path) as reader:
        records = [r for batch in reader for r in batch.records]
    assert len(records) == 35
    assert not any("_csv_error" in r for r in records)


def test_a_csv_dump_saved_with_semicolons_says_so(brreg: Path, tmp_path: Path) -> None:
    path = tmp_path / "excel.csv"
    path.write_bytes(_csv_dump(brreg, tmp_path).replace(b'","', b'";"'))
    with pytest.raises(BadFileError) as caught:
        open_dump(path)
    assert caught.value.message == (
        f"{path}: CSV-filen skiller feltene med semikolon, ikke med komma som registerets CSV "
        "(lagret på nytt i et regneark?); bruk filen slik registeret laget den"
    )
