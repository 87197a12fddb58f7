"""Verification codes: random, easy to read aloud and type, with a check symbol."""

from __future__ import annotations

import math
import re
import secrets
import unicodedata

# Crockford's base32: digits and letters without I, L, O and U, so nothing reads as something else.
ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
DATA_SYMBOLS = 11  # 55 random bits
LENGTH = DATA_SYMBOLS + 1  # plus the check symbol
GROUP = 4  # shown as XXXX-XXXX-XXXX
# Crockford's check is the value mod 37. Values 32-36 would need the extra symbols *~$=U, which are
# hard to read aloud and to type on a phone, so new_code() draws again until the check falls in the
# alphabet: 5 in 37 draws are thrown away, which costs log2(37/32) ≈ 0.21 bits of the 55.
CHECK_MODULUS = 37
ENTROPY_BITS = DATA_SYMBOLS * math.log2(len(ALPHABET)) - math.log2(CHECK_MODULUS / len(ALPHABET))

_VALUES = {symbol: value for value, symbol in enumerate(ALPHABET)}
_CANONICAL = re.compile(f"[{ALPHABET}]{{{LENGTH}}}\\Z")
# Crockford symbols to the digits int(x, 32) reads (0-9, A-V): one C call decodes all 11.
_TO_INT32 = str.maketrans(ALPHABET, "0123456789ABCDEFGHIJKLMNOPQRSTUV")
# What people type for what they see: O for 0, I and L for 1, and U, which is not in the alphabet
# (Crockford left it out) and is most likely a V read wrong.
_CONFUSABLES = str.maketrans({"O": "0", "I": "1", "L": "1", "U": "V"})
# Separators people add or copy along: spaces of every kind, hyphens and dashes, dots.
_SEPARATORS = str.maketrans(
    dict.fromkeys(" \t\u00a0\u202f-\u2010\u2011\u2012\u2013\u2014\u2212.", "")
)
_MAX_INPUT = 64  # longer input is not a code; the bound keeps hostile form input cheap


def _check_symbol(value: int) -> str | None:
    check = value % CHECK_MODULUS
    return ALPHABET[check] if check < len(ALPHABET) else None


def new_code() -> str:
    """A fresh random code, grouped for reading: 'XXXX-XXXX-XXXX'."""
    while True:
        value = secrets.randbits(DATA_SYMBOLS * 5)
        check = _check_symbol(value)
        if check is not None:
            break
    symbols = []
    for _ in range(DATA_SYMBOLS):
        value, digit = divmod(value, 32)
        symbols.append(ALPHABET[digit])
    return format_code("".join(reversed(symbols)) + check)


def normalise(text: str) -> str | None:
    """The canonical 12-symbol form of a typed code, or None if it is not a valid code."""
    if len(text) > _MAX_INPUT:
        return None
    # NFKC turns full-width letters and digits (from some phone keyboards) into ASCII.
    text = unicodedata.normalize("NFKC", text).translate(_SEPARATORS).upper()
    text = text.translate(_CONFUSABLES)
    if not _CANONICAL.match(text):
        return None
    if _check_symbol(int(text[:DATA_SYMBOLS].translate(_TO_INT32), 32)) != text[DATA_SYMBOLS]:
        return None
    return text


def is_valid(text: str) -> bool:
    """True if the text, typed with any spacing and case, is a code with a correct check symbol."""
    return normalise(text) is not None


def format_code(canonical: str) -> str:
    """'ABCD2345WXYZ' → 'ABCD-2345-WXYZ'."""
    if len(canonical) != LENGTH or any(symbol not in _VALUES for symbol in canonical):
        raise ValueError(f"not a canonical code: {canonical!r}")
    return "-".join(canonical[i : i + GROUP] for i in range(0, LENGTH, GROUP))
