"""Files varsel writes for people to open elsewhere: the letters' CSV files, the unreached."""

from __future__ import annotations

# Spreadsheets run a cell that starts with one of these as a formula (CSV injection).
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(text: str) -> str:
    """A CSV cell that a spreadsheet shows as text, never runs as a formula."""
    # A leading apostrophe makes Excel and LibreOffice show the text instead of running it.
    return "'" + text if text.startswith(_FORMULA_START) else text
