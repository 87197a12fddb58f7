from __future__ import annotations

import json

from varsel.evaluate_view import Chrome, Paragraph, Section, Table, View, figure


def test_the_view_as_json_keeps_each_blocks_kind_and_its_text_as_written() -> None:
    # The Typst template picks how to draw a block by its kind, and reads text as data.
    view = View(
        language="nn",
        title="Evaluering av «Sikkerhetsråd»",
        meta=(("Kampanje", "7"),),
        summary="Kort.",
        sections=(
            Section(
                "naadd",
                "Kven vart nådd",
                (Paragraph("<b>æ</b> #set"), Table("T", ("A",), (("1",),))),
            ),
        ),
        chrome=Chrome("Samandrag", "Laga av varsel.", "Side {page} av {pages}"),
    )
    data = json.loads(view.as_json())
    blocks = data["sections"][0]["blocks"]
    assert blocks == [
        {"text": "<b>æ</b> #set", "kind": "p"},
        {"caption": "T", "head": ["A"], "rows": [["1"]], "kind": "table"},
    ]
    assert data["chrome"]["page"] == "Side {page} av {pages}"
    assert "Kven vart nådd" in view.as_json()  # not \u-escaped


def test_a_figure_draws_its_chart_with_its_own_alternative_text() -> None:
    made = figure(lambda alt: f"<svg><desc>{alt}</desc></svg>", "Fordeling.", "1: 2; 5: 3.")
    assert made.svg == "<svg><desc>1: 2; 5: 3.</desc></svg>"
    assert (made.caption, made.alt, made.kind) == ("Fordeling.", "1: 2; 5: 3.", "figure")
