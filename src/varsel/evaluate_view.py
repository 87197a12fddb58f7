"""The evaluation report's view: what both the HTML and the PDF are drawn from.

A list of sections, each a list of blocks (paragraphs, figures, tables, definitions, comments)
with every text already in the report's language and every number formatted for it.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Table:
    """A data table; the first column names the row."""

    caption: str
    head: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    kind: str = "table"


@dataclass(frozen=True)
class Figure:
    """An inline SVG chart with its caption; the SVG carries its own title and description."""

    svg: str
    caption: str
    alt: str
    kind: str = "figure"


@dataclass(frozen=True)
class Paragraph:
    text: str
    kind: str = "p"


@dataclass(frozen=True)
class Definitions:
    """Terms and what they mean."""

    items: tuple[tuple[str, str], ...]
    kind: str = "dl"


@dataclass(frozen=True)
class Comments:
    """Free-text answers; possibly personal, always escaped."""

    items: tuple[tuple[str, str], ...]  # (meta line, text)
    kind: str = "comments"


Block = Table | Figure | Paragraph | Definitions | Comments


@dataclass(frozen=True)
class Section:
    id: str
    heading: str
    blocks: tuple[Block, ...]


@dataclass(frozen=True)
class Chrome:
    """The words around the sections: the summary's heading, the footer, the page numbers."""

    summary: str
    footer: str
    page: str  # "Side {page} av {pages}": Typst fills in the numbers


@dataclass(frozen=True)
class View:
    """The whole report, ready to render."""

    language: str
    title: str
    meta: tuple[tuple[str, str], ...]
    summary: str
    sections: tuple[Section, ...]
    chrome: Chrome

    def as_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), ensure_ascii=False)


def figure(svg: Callable[[str], str], caption: str, alt: str) -> Figure:
    """A figure whose chart is drawn with its own alternative text."""
    return Figure(svg(alt), caption, alt)
