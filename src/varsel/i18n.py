"""Formatting numbers and dates the way Norwegian readers expect."""

from __future__ import annotations


def fmt_int(n: int) -> str:
    """1234567 → '1 234 567' (Norwegian thousands separator)."""
    return f"{n:,}".replace(",", "\u00a0")


def fmt_share(part: int, whole: int) -> str:
    """Share as a Norwegian percentage with one decimal: '20,4 %'."""
    if whole == 0:
        return "–"
    return f"{100 * part / whole:.1f}\u00a0%".replace(".", ",")


def fmt_count(n: int, one: str, many: str) -> str:
    """A count with its noun in the right number: '1 e-post', '20 000 e-poster'."""
    return f"{fmt_int(n)} {one if n == 1 else many}"
