"""Charts for the evaluation report: horizontal and 100 % stacked bars as inline SVG.

Every text placed in a chart is escaped here; the SVG names itself (<title>) and carries its
numbers in aria-label for screen readers, and the report shows the same numbers in tables.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from markupsafe import escape

from varsel.coverage import Outcome, label
from varsel.i18n import fmt_int, fmt_share

# Outcome colours: each at least 3:1 against white (WCAG 1.4.11); the tables carry the same
# numbers, so nothing depends on telling the colours apart.
COLOURS: dict[Outcome, str] = {
    Outcome.ALTINN_DELIVERED: "#6a3d9a",
    Outcome.EMAIL_ACCEPTED: "#1b5e9b",
    Outcome.LETTER_POSTED: "#2e7d32",
    Outcome.LETTER_PRODUCED: "#558b2f",
    Outcome.PENDING: "#a86400",
    Outcome.LETTER_RETURNED: "#795548",
    Outcome.EMAIL_BOUNCED: "#c62828",
    Outcome.SUPPRESSED: "#546e7a",
    Outcome.UNREACHABLE: "#6d6d6d",
}
_FONT = "font-family=\"'Helvetica Neue', Arial, 'Liberation Sans', sans-serif\""
_TEXT = "#1a1a1a"


def _svg(width: int, height: int, title: str, alt: str, body: list[str]) -> str:
    # aria-label carries the numbers, for screen readers; <title> names the chart.
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" '
        f'width="{width}" height="{height}" role="img" aria-label="{escape(alt)}" '
        f'{_FONT} font-size="13"><title>{escape(title)}</title>' + "".join(body) + "</svg>"
    )


def bar_chart(
    title: str, bars: Sequence[tuple[str, int, str]], alt: str, *, language: str = "nb"
) -> str:
    """Horizontal bars with a label on the left and the number (in the language) on the right."""
    width, label_w, row_h, value_w = 720, 230, 28, 90
    scale = max((n for _, n, _ in bars), default=0) or 1
    body = []
    for i, (name, n, colour) in enumerate(bars):
        y = 6 + i * row_h
        w = round((width - label_w - value_w) * n / scale)
        body.append(
            f'<text x="{label_w - 8}" y="{y + 17}" text-anchor="end" fill="{_TEXT}">'
            f"{escape(name)}</text>"
            f'<rect x="{label_w}" y="{y + 3}" width="{max(w, 1 if n else 0)}" height="20" '
            f'fill="{colour}"/>'
            f'<text x="{label_w + w + 6}" y="{y + 17}" fill="{_TEXT}">{fmt_int(n, language)}</text>'
        )
    return _svg(width, 12 + row_h * len(bars), title, alt, body)


def stacked_bars(
    title: str,
    rows: Sequence[tuple[str, Mapping[Outcome, int]]],
    alt: str,
    *,
    legend: bool,
    language: str = "nb",
    names: Mapping[Outcome, str] | None = None,
) -> str:
    """One 100 % bar per row, split by outcome, with a legend of the outcomes that occur;
    names are the outcomes' names in the language (the Norwegian labels without them)."""
    name_of = names or {o: label(o) for o in Outcome}
    width, label_w, row_h, bar_w = 720, 200, 26, 500
    used = [o for o in Outcome if any(counts.get(o, 0) for _, counts in rows)]
    body = []
    for i, (name, counts) in enumerate(rows):
        y = 6 + i * row_h
        total = sum(counts.values())
        body.append(
            f'<text x="{label_w - 8}" y="{y + 16}" text-anchor="end" fill="{_TEXT}">'
            f"{escape(name)}</text>"
        )
        x = float(label_w)
        for o in Outcome:
            n = counts.get(o, 0)
            if not n or not total:
                continue
            w = bar_w * n / total
            body.append(
                f'<rect x="{x:.1f}" y="{y + 3}" width="{w:.1f}" height="18" '
                f'fill="{COLOURS[o]}" stroke="#ffffff" stroke-width="1">'
                f"<title>{escape(name)}: {escape(name_of[o])} {fmt_int(n, language)} "
                f"({fmt_share(n, total, language)})</title></rect>"
            )
            x += w
    height = 12 + row_h * len(rows)
    if legend and used:
        per_line = 3
        for j, o in enumerate(used):
            lx = 10 + (j % per_line) * 236
            ly = height + 8 + (j // per_line) * 22
            body.append(
                f'<rect x="{lx}" y="{ly}" width="14" height="14" fill="{COLOURS[o]}"/>'
                f'<text x="{lx + 20}" y="{ly + 12}" fill="{_TEXT}">{escape(name_of[o])}</text>'
            )
        height += 12 + 22 * ((len(used) + per_line - 1) // per_line)
    return _svg(width, height, title, alt, body)
