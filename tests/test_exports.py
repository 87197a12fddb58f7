from __future__ import annotations

import os
from pathlib import Path

import pytest

from varsel.exports import csv_cell, make_private_folder, private_opener, write_new


@pytest.mark.parametrize("text", ["=1+1", "+47 22", "-2", "@SUM(A1)", "\tx", "\rx"])
def test_a_cell_a_spreadsheet_would_run_gets_an_apostrophe(text: str) -> None:
    assert csv_cell(text) == "'" + text


def test_other_cells_are_left_as_they_are() -> None:
    assert [csv_cell(t) for t in ("ERNST & YOUNG AS", "0107", "", "A=B")] == [
        "ERNST & YOUNG AS",
        "0107",
        "",
        "A=B",
    ]


def test_a_file_opened_privately_is_its_owners_alone_even_if_it_was_there(tmp_path: Path) -> None:
    path = tmp_path / "liste.csv"
    path.write_text("gammel")
    path.chmod(0o644)
    with open(path, "w", encoding="utf-8", opener=private_opener) as f:
        f.write("ny")
    assert (path.read_text(), path.stat().st_mode & 0o777) == ("ny", 0o600)


def test_a_private_folder_is_made_with_its_parents_and_an_old_one_is_left(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        make_private_folder(tmp_path / "a" / "b")
    finally:
        os.umask(old)
    assert [(tmp_path / p).stat().st_mode & 0o777 for p in ("a", "a/b")] == [0o700, 0o700]
    before = tmp_path.stat().st_mode & 0o777
    make_private_folder(tmp_path)
    assert tmp_path.stat().st_mode & 0o777 == before


def test_a_new_file_is_written_privately_and_leaves_nothing_else(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        write_new(tmp_path / "rapport.html", b"<p>ny</p>")
    finally:
        os.umask(old)
    assert [p.name for p in tmp_path.iterdir()] == ["rapport.html"]
    assert (tmp_path / "rapport.html").read_bytes() == b"<p>ny</p>"
    assert (tmp_path / "rapport.html").stat().st_mode & 0o777 == 0o600


@pytest.mark.parametrize("kind", ["file", "broken link"])
def test_a_new_file_never_replaces_one_that_is_there(tmp_path: Path, kind: str) -> None:
    path = tmp_path / "rapport.html"
    if kind == "file":
        path.write_bytes(b"merknader")
    else:
        path.symlink_to(tmp_path / "borte.html")
    with pytest.raises(FileExistsError):
        write_new(path, b"ny")
    assert [p.name for p in tmp_path.iterdir()] == ["rapport.html"]
    assert path.is_symlink() if kind != "file" else path.read_bytes() == b"merknader"
