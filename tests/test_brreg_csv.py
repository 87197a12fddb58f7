from __future__ import annotations

import csv
from pathlib import Path

from varsel import brreg_csv


def test_enheter_columns_are_the_real_header(brreg: Path) -> None:
    lines = (brreg / "csv-headers.txt").read_text("utf-8").splitlines()
    header = next(csv.reader([next(x for x in lines if not x.startswith("#"))]))
    assert tuple(header) == brreg_csv.ENHETER_COLUMNS
    assert len(header) == 90


def test_underenheter_columns_use_the_location_address() -> None:
    cols = brreg_csv.UNDERENHETER_COLUMNS
    assert "beliggenhetsadresse.kommunenummer" in cols
    assert "forretningsadresse.kommunenummer" not in cols
    assert len(cols) == len(set(cols))


def test_encode_row_writes_like_the_registry() -> None:
    record = {
        "organisasjonsnummer": "923609016",
        "navn": "EQUINOR ASA",
        "organisasjonsform": {"kode": "ASA"},
        "konkurs": False,
        "antallAnsatte": 21496.0,
        "registreringsdatoEnhetsregisteret": "1995-03-12",
        "forretningsadresse": {"adresse": ["Forusbeen 50", ""], "kommunenummer": "1103"},
    }
    row = dict(
        zip(
            brreg_csv.ENHETER_COLUMNS,
            brreg_csv.encode_row(record, brreg_csv.ENHETER_COLUMNS),
            strict=True,
        )
    )
    assert row["organisasjonsform.kode"] == "ASA"
    assert row["konkurs"] == "false"
    assert row["antallAnsatte"] == "21496"
    assert row["registreringsdatoenhetsregisteret"] == "1995-03-12"
    assert row["forretningsadresse.adresse"] == "Forusbeen 50\n"
    assert row["postadresse.adresse"] == ""
