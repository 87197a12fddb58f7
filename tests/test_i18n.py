from __future__ import annotations

import pytest

from varsel.i18n import fmt_decimal, fmt_int, fmt_number, fmt_share


def test_norwegian_numbers() -> None:
    assert fmt_int(1234567) == "1\u00a0234\u00a0567"
    assert fmt_share(204, 1000) == "20,4\u00a0%"
    assert fmt_decimal(4.25) == "4,2"
    assert fmt_int(1234, "nn") == "1\u00a0234"
    assert fmt_share(204, 1000, "nn") == "20,4\u00a0%"


def test_english_numbers() -> None:
    assert fmt_int(1234567, "en") == "1,234,567"
    assert fmt_share(204, 1000, "en") == "20.4%"
    assert fmt_decimal(3.6667, "en") == "3.7"


def test_a_share_of_nothing_is_a_dash() -> None:
    assert fmt_share(0, 0) == fmt_share(0, 0, "en") == "–"


def test_sizes_and_seconds_as_a_norwegian_reader_writes_them() -> None:
    from varsel.i18n import fmt_bytes, fmt_seconds

    assert [fmt_bytes(n) for n in (999, 3_400, 83_124_224, 238_000_000, 1_900_000_000)] == [
        "999 B",
        "3,4 kB",
        "83 MB",
        "238 MB",
        "1,9 GB",
    ]
    assert [fmt_seconds(s) for s in (0.44, 3.25, 42.4)] == ["0,4 s", "3,2 s", "42 s"]


@pytest.mark.parametrize(
    ("number", "shown"),
    [(0.1, "0,1"), (3600, "3\u00a0600"), (24.0, "24"), (1234.25, "1\u00a0234,25"), (-0.5, "-0,5")],
)
def test_a_number_is_shown_as_it_is_in_norwegian(number: float, shown: str) -> None:
    assert fmt_number(number) == shown
