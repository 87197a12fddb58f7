"""Files varsel writes for people to open elsewhere: the letters' CSV files, the unreached,
the evaluation report.

Those that name businesses or hold what recipients wrote are personal data (sole
proprietorships are people): they are made readable by their owner alone, as `varsel backup`
makes its copies. The reports never replace a file: an operator may have annotated the copy
that is there.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from varsel.errors import Text

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


def taken(path: Path) -> bool:
    """Whether a file (or a link, even a broken one) has the name already."""
    return path.exists() or path.is_symlink()


def name_taken(path: Path) -> Text:
    """The one line that refuses a name a file has already: it is never overwritten."""
    return Text("%(path)s: filen finnes allerede; velg et nytt navn", path=str(path))


def write_new(path: Path, data: bytes) -> None:
    """Write data to a new file at path, readable and writable by its owner alone (0600).

    FileExistsError when the name is taken, also by a file that appeared while this one was
    written; nothing is left behind then.
    """
    # mkstemp makes the file 0600 and never opens one that is there (nor follows a link).
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        # A link, not a rename: a file that appeared at the path meanwhile is not replaced.
        os.link(tmp, path)
    finally:
        os.unlink(tmp)
