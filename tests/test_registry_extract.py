"""Records to rows in Python: in this process for small dumps, in a second one for large."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from test_registry import load, write_csv
from varsel import brreg_csv, registry_extract
from varsel.db import Database, connect
from varsel.dump import Kind
from varsel.registry import import_dump


@pytest.fixture
def second_process(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    """Every dump goes to the second process; the files it was given."""
    given: list[Path] = []
    real = registry_extract._extract_in_worker

    def spy(path: Path, kind: Kind) -> Iterator[Any]:
        given.append(path)
        return real(path, kind)

    monkeypatch.setattr(registry_extract, "PARALLEL_FROM_BYTES", 0)
    monkeypatch.setattr(registry_extract, "_extract_in_worker", spy)
    return given


def test_a_large_dump_is_parsed_in_a_second_process_with_the_same_result(
    db: Database, new_store_url: Any, brreg: Path, tmp_path: Path, second_process: list[Path]
) -> None:
    records = load(brreg / "enheter-sample.json")
    records.append({**records[0], "organisasjonsnummer": "123456789"})  # fails MOD11
    path = write_csv(tmp_path / "enheter.csv.gz", records, brreg_csv.ENHETER_COLUMNS)
    result = import_dump(db, path)
    assert second_process == [path]
    assert (result.snapshot.new, result.snapshot.rejected) == (35, 1)
    assert [r.position for r in result.rejects] == [36]

    registry_extract.PARALLEL_FROM_BYTES = 1 << 40  # the fixture's monkeypatch undoes it
    with connect(new_store_url()) as other:
        import_dump(other, path)
        assert second_process == [path]  # in this process this time
        query = "SELECT orgnr, record_hash, reach FROM units ORDER BY orgnr"
        assert other.query(query) == db.query(query)
