from __future__ import annotations

import pytest

from varsel.digits import ascii_digits


@pytest.mark.parametrize("text", ["0", "0301", "123456789"])
def test_ascii_digits_are_numbers(text: str) -> None:
    assert ascii_digits(text)


@pytest.mark.parametrize("text", ["", "²", "١٢٣", "12a", " 1", "-1", "1.5", "½"])
def test_other_digits_and_signs_are_not(text: str) -> None:
    assert not ascii_digits(text)
