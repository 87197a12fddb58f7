"""The lists a letters run writes beside its batches: manifest.csv's rows and unreachable.csv.

Both name businesses (and, for sole proprietorships, people with their addresses): private
files, and registry text in them is kept as text, never run by a spreadsheet as a formula.
The manifest's name and its lock are letter_runs'.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from varsel import codes
from varsel.exports import csv_cell, private_opener
from varsel.letter_candidates import UNREACHABLE_TEXT, Candidate, Unreachable
from varsel.letter_render import Letter
from varsel.message_fields import clean_text

UNREACHABLE = "unreachable.csv"
MANIFEST_COLUMNS = (
    "delivery_id",
    "orgnr",
    "name",
    "postcode",
    "city",
    "country",
    "language",
    "code",
    "batch_file",
    "page",
    "letter_file",
)


def manifest_row(letter: Letter, batch: str, page: int, single: str) -> list[Any]:
    """A letter's row of the manifest: where it is (batch, page, own file) and its code."""
    a = letter.address
    return [
        letter.delivery_id,
        letter.orgnr,
        # Registry text, which a spreadsheet must show, not run (CSV injection).
        csv_cell(clean_text(letter.name)),
        csv_cell(a.postcode),
        csv_cell(a.city),
        csv_cell(a.country or ""),
        letter.language,
        codes.format_code(letter.code),
        batch,
        page,
        single,
    ]


def write_unreachable(path: Path, units: Iterable[tuple[Candidate, Unreachable]]) -> None:
    """The units that need a letter but cannot have one, each with why."""
    with open(path, "w", encoding="utf-8", newline="", opener=private_opener) as f:
        writer = csv.writer(f)
        writer.writerow(("orgnr", "name", "reason", "explanation"))
        for c, why in units:
            name = csv_cell(clean_text(c.name))  # registry text: shown, never run as a formula
            writer.writerow((c.orgnr, name, why.value, UNREACHABLE_TEXT[why]))
