"""Verification codes: format, check symbol, tolerant input, randomness."""

from __future__ import annotations

import math
import re

import pytest

from varsel import codes

SAMPLE = [codes.new_code() for _ in range(5)]


def test_new_code_is_grouped_upper_case_and_valid() -> None:
    for code in SAMPLE:
        assert re.fullmatch(r"[0-9A-Z]{4}-[0-9A-Z]{4}-[0-9A-Z]{4}", code)
        assert codes.is_valid(code)
        assert codes.normalise(code) == code.replace("-", "")


def test_entropy_is_at_least_50_bits() -> None:
    assert len(codes.ALPHABET) == 32
    assert len(set(codes.ALPHABET)) == 32
    assert codes.DATA_SYMBOLS == 11
    # 11 symbols of 5 bits, less what drawing again on a check of 32-36 throws away.
    assert pytest.approx(55 - math.log2(37 / 32)) == codes.ENTROPY_BITS
    assert codes.ENTROPY_BITS >= 50


def test_every_single_substitution_is_detected() -> None:
    for code in SAMPLE:
        canonical = code.replace("-", "")
        for position in range(codes.LENGTH):
            for symbol in codes.ALPHABET:
                if symbol == canonical[position]:
                    continue
                typo = canonical[:position] + symbol + canonical[position + 1 :]
                assert codes.normalise(typo) is None, typo


def test_adjacent_transpositions_are_nearly_always_detected() -> None:
    detected = total = 0
    for _ in range(2000):
        canonical = codes.new_code().replace("-", "")
        for i in range(codes.LENGTH - 1):
            if canonical[i] == canonical[i + 1]:
                continue
            swapped = canonical[:i] + canonical[i + 1] + canonical[i] + canonical[i + 2 :]
            total += 1
            detected += codes.normalise(swapped) is None
    # Swaps among the data symbols are always caught (37 is prime and does not divide 31 * 32^k);
    # only a swap of the last data symbol with the check symbol can slip through, about 1 in 37.
    assert detected / total > 0.995


def test_confusable_letters_spacing_and_case_normalise() -> None:
    canonical = "0123456789AB"
    while not codes.is_valid(canonical):  # find a valid code with 0s and 1s in it
        canonical = "01" + codes.new_code().replace("-", "")[2:]
    typed = canonical.replace("0", "o").replace("1", "l", 1).replace("1", "I").lower()
    assert codes.normalise(typed) == canonical
    assert codes.normalise(" " + " ".join(canonical) + " ") == canonical
    assert codes.normalise(f"{canonical[:4]}.{canonical[4:8]} – {canonical[8:]}") == canonical


def test_u_is_read_as_v() -> None:
    canonical = next(
        c for c in (codes.new_code().replace("-", "") for _ in range(10_000)) if "V" in c
    )
    assert codes.normalise(canonical.replace("V", "u")) == canonical


def test_full_width_input_normalises() -> None:
    canonical = SAMPLE[0].replace("-", "")
    full_width = "".join(chr(ord(c) + 0xFEE0) for c in canonical)
    assert codes.normalise(full_width) == canonical


@pytest.mark.parametrize(
    "text", ["", "ABCD", "ABCD-EFGH-JKMN-P", "ABCD-EFGH-JK*M", "ÆØÅA-BCDE-FGHJ", "x" * 10_000]
)
def test_not_a_code(text: str) -> None:
    assert codes.normalise(text) is None
    assert not codes.is_valid(text)


def test_format_code() -> None:
    assert codes.format_code("ABCD2345WXYZ") == "ABCD-2345-WXYZ"
    with pytest.raises(ValueError, match="not a canonical code"):
        codes.format_code("abcd2345wxyz")


def test_codes_are_unique() -> None:
    made = {codes.new_code() for _ in range(100_000)}
    assert len(made) == 100_000


def test_check_symbols_spread_over_the_alphabet() -> None:
    checks = {codes.new_code()[-1] for _ in range(5000)}
    assert checks == set(codes.ALPHABET)
