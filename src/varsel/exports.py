"""Files varsel writes for people to open elsewhere: the letters' CSV files, the unreached.

Those that name businesses hold personal data (sole proprietorships are people): they are
made readable by their owner alone, as `varsel backup` makes its copies.
"""

from __future__ import annotations

import os
from pathlib import Path

# Spreadsheets run a cell that starts with one of these as a formula (CSV injection).
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(text: str) -> str:
    """A CSV cell that a spreadsheet shows as text, never runs as a formula."""
    # A leading apostrophe makes Excel and LibreOffice show the text instead of running it.
    return "'" + text if text.startswith(_FORMULA_START) else text


def private_opener(path: str, flags: int) -> int:
    """An opener for open(): the file is readable and writable by its owner alone (0600)."""
    fd = os.open(path, flags, 0o600)
    try:
        # The mode given to os.open is for a new file only (and umask may lower it, never
        # raise it): a file that was there already, readable by others, is made private too.
        os.fchmod(fd, 0o600)
    except BaseException:
        os.close(fd)
        raise
    return fd


def make_private_folder(path: Path) -> None:
    """Make a folder and any missing parents, each open to its owner alone (0700).

    A folder that exists already is left as it is.
    """
    missing = [p for p in (path, *path.parents) if not p.exists()]
    for folder in reversed(missing):
        folder.mkdir(mode=0o700, exist_ok=True)
