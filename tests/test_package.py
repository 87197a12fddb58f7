"""The installed package has every file the code reads, not only the editable checkout."""

from __future__ import annotations

import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "src" / "varsel"
NOT_SHIPPED = {"data/README.md"}  # notes for developers on where the tables came from


def test_package_data_covers_every_file_that_is_not_python() -> None:
    # Tests run on an editable install, which finds every file in the checkout; a wheel holds
    # only what package-data names. A template or catalog in a new folder would be missing
    # from a real installation and from nothing here.
    config = tomllib.loads((ROOT / "pyproject.toml").read_text("utf-8"))
    patterns = config["tool"]["setuptools"]["package-data"]["varsel"]
    shipped = {
        path.relative_to(PACKAGE).as_posix()
        for pattern in patterns
        for path in PACKAGE.glob(pattern)
        if path.is_file()
    }
    files = {
        path.relative_to(PACKAGE).as_posix()
        for path in PACKAGE.rglob("*")
        if path.is_file() and path.suffix not in {".py", ".pyc"} and "__pycache__" not in path.parts
    }
    assert len(files) > 50
    assert sorted(files - shipped - NOT_SHIPPED) == []
