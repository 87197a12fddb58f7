"""Organisation numbers of synthetic units: unique, valid MOD11, and a pure function of the seed."""

from __future__ import annotations

import numpy as np

_WEIGHTS = (3, 2, 7, 6, 5, 4, 3, 2)


def mix(x: int, key: int) -> int:
    """A 32-bit keyed hash of ``x``."""
    x = (x * 0x9E3779B1 + key) & 0xFFFFFFFF
    x ^= x >> 15
    x = (x * 0x85EBCA6B) & 0xFFFFFFFF
    return x ^ (x >> 13)


def orgnr(number: int, keys: tuple[int, ...]) -> str:
    """The organisation number of unit number ``number``: unique, valid MOD11, 8xx or 9xx."""
    # A keyed Feistel permutation of 2 M seven-digit prefixes; each prefix has 9 or 10 valid
    # eighth digits, so numbers below 18 M map to distinct prefix/digit pairs.
    q, k = number % 2_000_000, number // 2_000_000
    a, b = divmod(q, 1000)
    a = (a + mix(b, keys[0])) % 2000
    b = (b + mix(a, keys[1])) % 1000
    a = (a + mix(b, keys[2])) % 2000
    b = (b + mix(a, keys[3])) % 1000
    prefix = 8_000_000 + a * 1000 + b
    digits = [int(c) for c in str(prefix)]
    s7 = sum(d * w for d, w in zip(digits, _WEIGHTS, strict=False))
    valid = [d for d in range(10) if (s7 + 2 * d) % 11 != 1]
    d8 = valid[(mix(prefix, keys[4]) + k) % len(valid)]
    r = (s7 + 2 * d8) % 11
    return f"{prefix}{d8}{0 if r == 0 else 11 - r}"


def orgnrs(first: int, count: int, step: int, keys: tuple[int, ...]) -> list[str]:
    """The organisation numbers of units first, first + step, ...; the same as orgnr."""
    numbers = first + step * np.arange(count, dtype=np.uint64)
    q, k = numbers % np.uint64(2_000_000), numbers // np.uint64(2_000_000)
    a, b = q // np.uint64(1000), q % np.uint64(1000)
    a = (a + _vmix(b, keys[0])) % np.uint64(2000)
    b = (b + _vmix(a, keys[1])) % np.uint64(1000)
    a = (a + _vmix(b, keys[2])) % np.uint64(2000)
    b = (b + _vmix(a, keys[3])) % np.uint64(1000)
    prefix = np.uint64(8_000_000) + a * np.uint64(1000) + b
    s7 = np.zeros(count, dtype=np.int64)
    for place, weight in enumerate(_WEIGHTS[:7]):
        s7 += weight * ((prefix // np.uint64(10 ** (6 - place))) % np.uint64(10)).astype(np.int64)
    valid = (s7[:, None] + 2 * np.arange(10)) % 11 != 1
    slot = ((_vmix(prefix, keys[4]) + k) % valid.sum(1).astype(np.uint64)).astype(np.int64)
    d8 = np.argmax((valid.cumsum(1) == slot[:, None] + 1) & valid, axis=1)
    r = (s7 + 2 * d8) % 11
    full = prefix.astype(np.int64) * 100 + d8 * 10 + np.where(r == 0, 0, 11 - r)
    return [str(x) for x in full.tolist()]


def _vmix(x: np.ndarray, key: int) -> np.ndarray:
    x = (x * np.uint64(0x9E3779B1) + np.uint64(key)) & np.uint64(0xFFFFFFFF)
    x ^= x >> np.uint64(15)
    x = (x * np.uint64(0x85EBCA6B)) & np.uint64(0xFFFFFFFF)
    return x ^ (x >> np.uint64(13))
