from __future__ import annotations

from varsel.i18n import fmt_decimal, fmt_int, fmt_share


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
