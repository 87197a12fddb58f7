"""Pages compiled into fixed text and slots, so that a page of a known shape runs no Jinja.

A page such as the genuine-code page is the same text for every code of a campaign version,
but for a few values: the code, the date sent, the businesses' names and numbers, and the
address of the page itself (in the language links). `compile_page` renders the template once
with Jinja, with stand-ins (`Stand`) for those values: a stand-in is a str whose text is a
marker, so Jinja writes it out (escaped or not) like any text, and the filters that know
stand-ins (`slot_filter`: `date`, `orgnr`, `urlencode`) note themselves on it instead of
running. The output splits into fixed text and slots; `Compiled.fill` puts each value through
its filters and markupsafe's escaping, as Jinja would have.

What a template may do with a stand-in is write it out, through those filters, and join it
with fixed text. A template that does more (compares it, tests it, applies another filter,
reads an attribute the stand-in lacks, shows a CSRF token) either fails to compile or changes
the marker; both are caught, and the page is then rendered by Jinja as before. As a last
check, the first page of every compiled shape is also rendered by Jinja and compared: a page
that differs is never served from slots (see `Pages`).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass
from typing import Any

from varsel.message_slots import slot_output

OPEN, CLOSE = "\ue000", "\ue001"  # private-use characters around a marker's number
# "&" in a marker becomes "&amp;" when the text it lands in is HTML-escaped.
MARKER = re.compile("\ue000(&amp;|&)([0-9]+)\ue001")

Transform = Callable[[Any], Any]


class NotCompilable(Exception):  # a reason to render with Jinja, not an error
    """The template does something with a per-request value that slots cannot reproduce."""


class Stand(str):
    """A stand-in for a per-request value: text that is its marker, and the filters it went
    through (in order) on its way out."""

    key: Hashable
    transforms: tuple[Transform, ...]
    outputs: list[Stand]

    def __new__(
        cls, key: Hashable, outputs: list[Stand], transforms: tuple[Transform, ...] = ()
    ) -> Stand:
        stand = super().__new__(cls, f"{OPEN}&{len(outputs)}{CLOSE}")
        stand.key, stand.transforms, stand.outputs = key, transforms, outputs
        outputs.append(stand)
        return stand

    def then(self, transform: Transform) -> Stand:
        """The same value with one more filter applied when it is written out."""
        return Stand(self.key, self.outputs, (*self.transforms, transform))


def _refuse(self: object, *args: object, **kwargs: object) -> Any:
    raise NotCompilable("a template works on a per-request value other than writing it out")


# Every way a template could look into or change a stand-in's text (a filter such as upper,
# a test, a comparison, slicing): each would act on the marker instead of the value, so each
# refuses. Left as str has them: str() and escaping, and joining with text (+); a stand-in is
# true (a value that is there: the page's shape decides which ones are).
_REFUSED = (
    "upper lower title capitalize casefold swapcase replace strip lstrip rstrip split rsplit "
    "splitlines partition rpartition startswith endswith find rfind index rindex count "
    "format format_map join center ljust rjust zfill expandtabs encode removeprefix "
    "removesuffix translate isdigit isalpha isalnum isspace isupper islower istitle "
    "__getitem__ __iter__ __contains__ __eq__ __ne__ __lt__ __le__ __gt__ __ge__ __mod__ "
    "__rmod__ __mul__ __rmul__ __format__ __len__"
)
for _name in _REFUSED.split():
    setattr(Stand, _name, _refuse)
Stand.__hash__ = str.__hash__  # type: ignore[method-assign]
Stand.__bool__ = lambda self: True  # type: ignore[attr-defined]


def slot_filter(function: Transform) -> Transform:
    """A filter that applies function to values, and notes it on stand-ins."""

    @functools.wraps(function)
    def apply(value: Any) -> Any:
        return value.then(function) if type(value) is Stand else function(value)

    return apply


class Refuse:
    """A context value that a compiled page must not show (a CSRF token: it is per visitor
    and sets a cookie); showing it makes the template fall back to Jinja."""

    def __str__(self) -> str:
        raise NotCompilable("the page shows a value that slots do not reproduce")

    __html__ = __str__


Piece = str | tuple[Hashable, Callable[[Any], str]]


@dataclass(frozen=True)
class Compiled:
    """A page as fixed text and slots: (key of the value, what writing it out does)."""

    pieces: tuple[Piece, ...]

    def fill(self, values: Mapping[Hashable, Any]) -> str:
        """The page for these values."""
        return "".join([p if isinstance(p, str) else p[1](values[p[0]]) for p in self.pieces])


def compile_output(rendered: str, outputs: list[Stand]) -> Compiled:
    """Split output rendered with stand-ins into fixed text and slots."""
    pieces: list[Piece] = []
    position = 0
    seen: set[int] = set()
    for match in MARKER.finditer(rendered):
        if match.start() > position:
            pieces.append(rendered[position : match.start()])
        number = int(match.group(2))
        if number >= len(outputs):
            raise NotCompilable("a marker that no stand-in wrote")
        stand = outputs[number]
        seen.add(number)
        pieces.append((stand.key, slot_output(stand.transforms, match.group(1) == "&amp;")))
        position = match.end()
    if position < len(rendered):
        pieces.append(rendered[position:])
    for piece in pieces:
        if type(piece) is str and (OPEN in piece or CLOSE in piece):
            # A marker a filter changed, or the template's own private-use characters.
            raise NotCompilable("a marker did not come through unchanged")
    # A stand-in that went through a filter that knows stand-ins leaves only the derived
    # stand-in's marker; one that was made but never written out is fine.
    return Compiled(tuple(pieces))


def compile_page(render: Callable[[list[Stand]], str]) -> Compiled:
    """Compile a page: render(outputs) renders it with stand-ins made on that list."""
    outputs: list[Stand] = []
    try:
        rendered = render(outputs)
    except NotCompilable:
        raise
    except Exception as e:  # an attribute a stand-in lacks, a filter that met a marker, …
        raise NotCompilable(f"rendering with stand-ins failed: {e!r}") from e
    return compile_output(rendered, outputs)


class Pages:
    """Compiled pages by shape, each checked against Jinja on its first use.

    A shape is whatever decides the page's fixed text (language, campaign version, how many
    businesses, …); `page` returns the page's text from the shape's slots, or None when the
    shape did not compile or its first page differed from Jinja's (render it as before).
    """

    MAX = 1024  # shapes kept before starting afresh

    def __init__(self) -> None:
        # shape -> (what the shape's fixed text came from, compiled or None for "use Jinja")
        self._shapes: dict[Hashable, tuple[object, Compiled | None]] = {}

    def page(
        self,
        shape: Hashable,
        source: object,
        compile: Callable[[], Compiled],
        values: Callable[[], Mapping[Hashable, Any]],
        jinja: Callable[[], str],
    ) -> str | None:
        """The page from the shape's slots with values(), or None.

        source is the object the fixed text was made from (a campaign's parsed definition): a
        shape whose source is not the same object any more is compiled afresh. jinja()
        renders the same page with Jinja, for the check on the shape's first page.
        """
        known = self._shapes.get(shape)
        if known is None or known[0] is not source:
            compiled: Compiled | None
            try:
                compiled = compile()
                if compiled.fill(values()) != jinja():
                    compiled = None  # never serve a page that Jinja would not have made
            except NotCompilable:
                compiled = None
            if len(self._shapes) >= self.MAX:
                self._shapes.clear()
            known = self._shapes[shape] = (source, compiled)
        compiled = known[1]
        return None if compiled is None else compiled.fill(values())
