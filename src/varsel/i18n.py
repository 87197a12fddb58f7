"""Formatting numbers and dates the way Norwegian readers expect (and English ones, when asked)."""

from __future__ import annotations


def fmt_int(n: int, language: str = "nb") -> str:
    """1234567 → '1 234 567' (Norwegian thousands separator); '1,234,567' in English."""
    if language == "en":
        return f"{n:,}"
    return f"{n:,}".replace(",", "\u00a0")


def fmt_share(part: int, whole: int, language: str = "nb") -> str:
    """Share as a percentage with one decimal: '20,4 %' in Norwegian, '20.4%' in English."""
    if whole == 0:
        return "–"
    share = 100 * part / whole
    if language == "en":
        return f"{share:.1f}%"
    return f"{share:.1f}\u00a0%".replace(".", ",")


def fmt_decimal(x: float, language: str = "nb") -> str:
    """4.26 → '4,3': one decimal, with a decimal comma in Norwegian and a point in English."""
    return f"{x:.1f}" if language == "en" else f"{x:.1f}".replace(".", ",")


def fmt_number(x: float) -> str:
    """A number as it is, in Norwegian: 3600 → '3 600', 0.1 → '0,1', 24.0 → '24'."""
    if float(x).is_integer():
        return fmt_int(int(x))
    whole, _, decimals = repr(abs(float(x))).partition(".")
    return f"{'-' if x < 0 else ''}{fmt_int(int(whole))},{decimals}"


def fmt_count(n: int, one: str, many: str) -> str:
    """A count with its noun in the right number: '1 e-post', '20 000 e-poster'."""
    return f"{fmt_int(n)} {one if n == 1 else many}"


def fmt_bytes(size: int) -> str:
    """Bytes in decimal units with a Norwegian decimal comma: 212 MB, 3,4 kB."""
    if size < 1000:
        return f"{size} B"
    for unit, factor in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if size >= factor:
            value = size / factor
            text = f"{value:.0f}" if value >= 10 else f"{value:.1f}".replace(".", ",")
            return f"{text} {unit}"
    return f"{size} B"  # pragma: no cover - the loop always returns


def fmt_seconds(seconds: float) -> str:
    """Seconds as a Norwegian reader writes them: 0,4 s, 3,2 s, 42 s."""
    if seconds >= 10:
        return f"{seconds:.0f} s"
    return f"{seconds:.1f}".replace(".", ",") + " s"
