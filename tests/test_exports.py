from __future__ import annotations

import pytest

from varsel.exports import csv_cell


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
