"""Letters on paper: the advisory text of each letter, and the typst layout that prints a batch.

The text comes from the campaign's `letter` template (Jinja2 in a sandbox, one per language),
read as a few plain-text blocks; the layout (templates/letter/letter.typ) places the address
for a left-window envelope and prints a whole batch in one typst compile, with the data passed
as JSON. Fonts come from the package (Liberation Sans), never from the system.
"""

from __future__ import annotations

import datetime as dt
import importlib.resources
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jinja2

from varsel import codes
from varsel.campaign import LANGUAGES, CampaignSpec
from varsel.errors import UserError
from varsel.exports import private_opener
from varsel.message_fields import clean_text
from varsel.sandbox import operator_sandbox
from varsel.unit import format_orgnr


@dataclass(frozen=True)
class Area:
    """A rectangle on the page, in millimetres from its top-left corner."""

    x: float
    y: float
    width: float
    height: float

    def contains(self, x: float, y: float) -> bool:
        return self.x <= x <= self.x + self.width and self.y <= y <= self.y + self.height


# Where window envelopes show the page. Posten's common left-window envelopes open 15 mm from
# the left edge and 39-44 mm from the top, 95-105 mm wide and 30-40 mm tall (C5: 44 mm down,
# 105 x 35; EC4: 42 mm down, 100 x 40); DIN C5/C4 windows open 20 mm from the left and 45 mm
# down, 90 x 45. WINDOW is the part the C5 and C4 windows both show.
WINDOW = Area(x=15, y=44, width=100, height=35)
# The address block: inside WINDOW and the DIN window, with room for the letter's play in the
# envelope (5 mm at the sides, 3 mm above and below). letter.typ never prints outside it.
ADDRESS_AREA = Area(x=20, y=47, width=90, height=29)

_MONTHS = {
    "nb": [
        *("januar", "februar", "mars", "april", "mai", "juni", "juli", "august"),
        *("september", "oktober", "november", "desember"),
    ],
    "en": [
        *("January", "February", "March", "April", "May", "June", "July", "August"),
        *("September", "October", "November", "December"),
    ],
}
_MONTHS["nn"] = _MONTHS["nb"]
_LABELS = {
    "nb": {"date": "Dato", "reference": "Vår referanse", "orgnr": "Org.nr."},
    "nn": {"date": "Dato", "reference": "Vår referanse", "orgnr": "Org.nr."},
    "en": {"date": "Date", "reference": "Our reference", "orgnr": "Org. no."},
}
_RETURN = {"nb": "Returadresse", "nn": "Returadresse", "en": "Returadresse"}
_OVERFLOW = "varsel-letter-overflow:"  # letter.typ's panics, followed by the delivery id
_ADDRESS_OVERFLOW = "varsel-address-overflow:"


class LetterTemplateError(UserError):
    """The campaign's letter template cannot make a letter."""


class AddressTooLongError(UserError):
    """A unit's address does not fit the envelope window."""


def default_letter_templates() -> dict[str, str]:
    """The shipped letter texts (Jinja2), by language."""
    folder = importlib.resources.files("varsel") / "templates" / "letter"
    return {lang: (folder / f"{lang}.txt.j2").read_text("utf-8") for lang in LANGUAGES}


def format_date(day: dt.date, language: str) -> str:
    """'3. mars 2026' in Norwegian, '3 March 2026' in English."""
    month = _MONTHS.get(language, _MONTHS["nb"])[day.month - 1]
    return f"{day.day} {month} {day.year}" if language == "en" else f"{day.day}. {month} {day.year}"


@dataclass(frozen=True)
class PostalAddress:
    """Where a letter goes: street or box lines, postcode and city, and the country if abroad."""

    lines: tuple[str, ...]
    postcode: str
    city: str
    country: str | None  # None in Norway; else the country's name as the registry gives it

    def block(self, name: str) -> list[str]:
        """The lines of the address block, as Posten wants them."""
        place = " ".join(p for p in (self.postcode, self.city) if p)
        out = [name, *self.lines, place]
        if self.country:
            out.append(self.country.upper())  # the country last, in capitals, on its own line
        return [line for line in out if line]


@dataclass(frozen=True)
class Letter:
    """One letter to print."""

    delivery_id: int
    orgnr: str
    name: str
    language: str
    code: str  # canonical
    address: PostalAddress
    reason: str  # no_email | bounced: why the unit gets a letter


# -- the text ---------------------------------------------------------------------------

_ORDERED = re.compile(r"\d{1,2}[.)] ")


def _runs(line: str, strong: Sequence[str]) -> list[list[str]]:
    """A line as [text, style] runs: the strong strings (code, verify address) in bold."""
    out: list[list[str]] = []
    at = 0
    while True:
        hits = [(i, s) for s in strong if (i := line.find(s, at)) >= 0]
        if not hits:
            break
        start, found = min(hits)
        if start > at:
            out.append([line[at:start], ""])
        out.append([found, "b"])
        at = start + len(found)
    if at < len(line):
        out.append([line[at:], ""])
    return out


def text_blocks(text: str, strong: Sequence[str] = ()) -> list[dict[str, Any]]:
    """A letter's text as blocks: '# ' title, '## ' heading, '1. ' or '- ' lists, paragraphs.

    Blocks are separated by blank lines; a single line break inside a paragraph is kept.
    """
    pattern = [s for s in strong if s]
    out: list[dict[str, Any]] = []
    for chunk in re.split(r"\n[ \t]*\n", text.strip()):
        lines = [clean_text(line) for line in chunk.strip("\n").split("\n")]
        lines = [line for line in lines if line]
        if not lines:
            continue
        first = lines[0]
        if first.startswith("# ") or first.startswith("## "):
            kind = "t" if first.startswith("# ") else "h"
            title = " ".join(lines).split(" ", 1)[1]
            out.append({"k": kind, "r": _runs(title, pattern)})
        elif all(_ORDERED.match(line) for line in lines):
            items = [_runs(_ORDERED.sub("", line, count=1), pattern) for line in lines]
            out.append({"k": "ol", "items": items})
        elif all(line.startswith("- ") for line in lines):
            out.append({"k": "ul", "items": [_runs(line[2:], pattern) for line in lines]})
        else:
            runs: list[list[str]] = []
            for i, line in enumerate(lines):
                if i:
                    runs.append(["", "n"])  # a line break
                runs += _runs(line, pattern)
            out.append({"k": "p", "r": runs})
    return out


class LetterTexts:
    """Renders each letter's text from the campaign's letter template in its language."""

    def __init__(self, spec: CampaignSpec) -> None:
        env = operator_sandbox()
        defaults = default_letter_templates()
        self._templates: dict[str, jinja2.Template] = {}
        for lang in LANGUAGES:
            template = spec.templates.get(lang)
            source = (template.letter if template is not None else "") or defaults[lang]
            try:
                self._templates[lang] = env.from_string(source)
            except jinja2.TemplateSyntaxError as e:
                raise LetterTemplateError(
                    f"brevmalen ({lang}), linje {e.lineno}: {e.message}"
                ) from None
        self._base = {
            "sender": {
                "name": clean_text(spec.from_name),
                "organisation": clean_text(spec.organisation),
                "address": spec.from_address,
            },
            "document_title": clean_text(spec.document_title),
            "document_url": spec.document_url,
            "verify_url": spec.verify_url,
            "fields": {k: clean_text(v) for k, v in spec.fields.items()},
        }
        self.verify_url = spec.verify_url

    def render(self, letter: Letter) -> str:
        """The letter's text, checked to show its code and the verify address."""
        code = codes.format_code(letter.code)
        unit = {"orgnr": letter.orgnr, "name": clean_text(letter.name), "municipality": None}
        context = {
            **self._base,
            "unit": unit,
            "units": [unit],
            "organisation_names": unit["name"],
            "code": code,
            "language": letter.language,
            "reason": letter.reason,
        }
        lang = letter.language if letter.language in self._templates else "nb"
        try:
            text = self._templates[lang].render(context)
        except (jinja2.TemplateError, ArithmeticError, LookupError, TypeError, ValueError) as e:
            raise LetterTemplateError(f"brevmalen ({lang}): malfeil: {e}") from None
        if code not in text:
            raise LetterTemplateError(
                f"brevmalen ({lang}) viser ikke kontrollkoden: skriv {{{{ code }}}} "
                "der den skal stå"
            )
        if self.verify_url not in text:
            raise LetterTemplateError(
                f"brevmalen ({lang}) viser ikke kontrolladressen: skriv {{{{ verify_url }}}} "
                "der den skal stå"
            )
        return text


# -- the layout ---------------------------------------------------------------------------

# The root of the page tree that typst writes: "/Type /Pages ... /Count N".
_PAGE_COUNT = re.compile(rb"/Type\s*/Pages\b[^>]*?/Count\s+(\d+)")


def page_count(pdf: bytes) -> int:
    """The number of pages of a PDF that typst wrote (its page tree is not compressed)."""
    counts = [int(n) for n in _PAGE_COUNT.findall(pdf)]
    if not counts:
        raise RuntimeError("no page tree found in typst's PDF")
    return max(counts)


# What surely fits the address area at 10 pt without measuring. No Latin glyph of Liberation
# Sans is wider than 1.02 em, so 25 characters at 10 pt (90 mm) and 36 at 7 pt always fit a
# line; lines wrap at spaces, so a long word can leave the rest of its line empty. 3.66 mm a
# line at 10 pt, 2.9 mm a line of the 7 pt return address.
_CHARS_10PT, _CHARS_7PT = 25, 36
_LINE_10PT, _LINE_7PT = 3.66, 2.9


def _rows(line: str, per_row: int) -> int | None:
    """The most rows a line wraps into at per_row characters a row; None if a word may not fit."""
    rows, used = 1, 0
    for word in line.split():
        if len(word) > per_row:
            return None
        if used and used + 1 + len(word) > per_row:
            rows, used = rows + 1, len(word)
        else:
            used += (1 if used else 0) + len(word)
    return rows


def fits_at_10pt(ret: str, lines: Sequence[str]) -> bool:
    """True when the address block surely fits the address area at its full size."""
    rows = [_rows(line, _CHARS_10PT) for line in lines]
    ret_rows = _rows(ret, _CHARS_7PT) if ret else 0
    if ret_rows is None or None in rows:
        return False  # measured by letter.typ, which also shrinks a long word to fit
    spacing = 0.6 if ret else 0.0  # between the return address and the address
    total = ret_rows * _LINE_7PT + spacing + sum(r or 0 for r in rows) * _LINE_10PT
    return total <= ADDRESS_AREA.height - 1


def _folder(name: str) -> Path:
    # The package is installed as files (setuptools, editable or not): typst needs paths.
    return Path(str(importlib.resources.files("varsel") / name))


def fonts_folder() -> Path:
    """The folder of the fonts every letter is set in (with their licence)."""
    return _folder("fonts")


def _orgnr_of(data: str, delivery: str) -> str:
    """'brevet til org.nr. 976 389 387': the letter of the delivery id in letter.typ's data."""
    for item in json.loads(data)["letters"]:
        if str(item["id"]) == delivery:
            return f"brevet til org.nr. {item['orgnr']}"
    return f"brev {delivery}"


class Renderer:
    """Prints batches of letters of one campaign as PDF, one typst compile per batch."""

    # typst-py keeps typst's memoised work from the last ten compiles (comemo::evict(10) after
    # each one). Batches of different letters share little, so that cache would hold about ten
    # batches' layouts; ten tiny compiles after each batch age it out and keep memory flat.
    _AGE_OUT = 10

    def __init__(
        self, campaign_id: int, spec: CampaignSpec, day: dt.date, postal_address: str | None
    ) -> None:
        import typst

        folder = _folder("templates/letter")
        # Only the shipped fonts: neither the system's nor those built into typst, so a letter
        # looks the same on every machine and every font in it is one we may embed.
        fonts = typst.Fonts(
            include_system_fonts=False,
            include_embedded_fonts=False,
            font_paths=[str(fonts_folder())],
        )
        self._compiler = typst.Compiler(
            str(folder / "letter.typ"), root=str(folder), font_paths=fonts, ignore_system_fonts=True
        )
        self._fonts = fonts
        self._ager = typst.Compiler(font_paths=fonts, ignore_system_fonts=True)
        self._error = typst.TypstError
        self.campaign_id = campaign_id
        self.texts = LetterTexts(spec)
        self._dates = {lang: format_date(day, lang) for lang in LANGUAGES}
        lines = [clean_text(line) for line in (postal_address or "").splitlines()]
        lines = [line for line in lines if line]
        organisation = clean_text(spec.organisation)
        self._head: dict[str, Any] = {
            "title": clean_text(spec.name),
            "area": {
                "x": ADDRESS_AREA.x,
                "y": ADDRESS_AREA.y,
                "width": ADDRESS_AREA.width,
                "height": ADDRESS_AREA.height,
            },
            "sender": {"organisation": organisation, "lines": lines},
            "labels": _LABELS,
        }
        # A return address in the window lets Posten send undeliverable letters back.
        self._return = ", ".join([organisation, *lines]) if lines else ""

    def _address(self, letter: Letter) -> dict[str, Any]:
        """The address block's part of a letter in letter.typ's data."""
        lang = letter.language if letter.language in _LABELS else "nb"
        ret = f"{_RETURN[lang]}: {self._return}" if self._return else ""
        block = letter.address.block(clean_text(letter.name))
        return {"lang": lang, "ret": ret, "address": block, "fits": fits_at_10pt(ret, block)}

    def data(self, letters: Sequence[Letter]) -> str:
        """The JSON document letter.typ reads: the letters and their texts (shared when equal)."""
        bodies: dict[str, int] = {}
        blocks: list[list[dict[str, Any]]] = []
        items = []
        for letter in letters:
            text = self.texts.render(letter)
            index = bodies.get(text)
            if index is None:
                code = codes.format_code(letter.code)
                index = bodies[text] = len(blocks)
                blocks.append(text_blocks(text, (code, self.texts.verify_url)))
            address = self._address(letter)
            items.append(
                {
                    "id": letter.delivery_id,
                    "ref": f"{self.campaign_id}-{letter.delivery_id}",
                    "orgnr": format_orgnr(letter.orgnr),
                    "date": self._dates[address["lang"]],
                    **address,
                    "body": index,
                }
            )
        return json.dumps({**self._head, "bodies": blocks, "letters": items}, ensure_ascii=False)

    def misfits(self, letters: Sequence[Letter]) -> list[Letter]:
        """The letters whose address does not fit the envelope window at any size.

        Only the addresses fits_at_10pt() cannot vouch for are measured, all in one typst
        query that lays out nothing else, so a run finds them before it stores or prints any
        letter: render() would stop at the first (AddressTooLongError).
        """
        items = [{"id": i, **self._address(letter)} for i, letter in enumerate(letters)]
        items = [item for item in items if not item["fits"]]
        if not items:
            return []
        import typst

        data = json.dumps({**self._head, "bodies": [], "letters": items}, ensure_ascii=False)
        folder = _folder("templates/letter")
        checker = typst.Compiler(
            str(folder / "letter.typ"),
            root=str(folder),
            font_paths=self._fonts,
            ignore_system_fonts=True,
            sys_inputs={"data": data, "mode": "fit"},
        )
        verdicts = json.loads(checker.query("<fit>", field="value"))
        return [letters[int(v["id"])] for v in verdicts if not v["fits"]]

    def compile(self, data: str, out: Path, letters: int, *, age_out: bool = True) -> None:
        """One typst compile of prepared data into a PDF file of exactly one page per letter.

        age_out=False for small documents made one after another (a letter each), which age
        typst's cache themselves.
        """
        try:
            pdf = self._typst(data, check=False)
            if page_count(pdf) != letters:
                # Some letter ran over a page: compile again with the check that names it.
                self._typst(data, check=True)
                raise RuntimeError(f"{out.name}: {page_count(pdf)} pages for {letters} letters")
        finally:
            for _ in range(self._AGE_OUT if age_out else 0):
                # The input is given each time: typst-py reads an input given to Compiler()
                # as bytes only once.
                self._ager.compile(input=b"#[]", format="svg")
        # A letter names its business: personal data, readable by its owner alone.
        with open(out, "wb", opener=private_opener) as f:
            f.write(pdf)

    def _typst(self, data: str, *, check: bool) -> bytes:
        inputs = {"data": data, "check": "yes" if check else "no"}
        try:
            pdf = self._compiler.compile(format="pdf", sys_inputs=inputs)
        except self._error as e:
            message = str(getattr(e, "message", e))
            for marker in (_OVERFLOW, _ADDRESS_OVERFLOW):
                if marker in message:
                    delivery = message.split(marker, 1)[1].split(maxsplit=1)[0].strip("\"'")
                    # The unit, not the delivery: a new batch's deliveries are taken back
                    # with it, so the delivery number would be found nowhere.
                    who = _orgnr_of(data, delivery)
                    if marker == _OVERFLOW:
                        raise LetterTemplateError(
                            f"{who}: teksten blir lengre enn én side; kort ned brevmalen"
                        ) from None
                    raise AddressTooLongError(
                        f"{who}: adressen får ikke plass i konvoluttvinduet"
                    ) from None
            raise
        if not isinstance(pdf, bytes):
            raise TypeError(f"typst gave {type(pdf).__name__}, not a PDF")
        return pdf

    def render(self, letters: Sequence[Letter], out: Path) -> None:
        """Print letters into one PDF file, in the order given."""
        self.compile(self.data(letters), out, len(letters), age_out=len(letters) > 1)
