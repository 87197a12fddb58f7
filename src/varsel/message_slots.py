"""Message templates compiled into fixed bytes and slots, so that no Jinja runs per recipient.

A campaign's template is rendered once per language and number of units, with stand-ins
(`Slot`) for the values that differ per recipient: code, address, unsubscribe URL, the units'
names and numbers. A stand-in may only be written out (`{{ code }}`, also through the filters
that know stand-ins, such as `orgnr` and `link`). Any other use (a test, a comparison, another
filter, its length, its text inside an expression, an attribute) raises `NotCompilable`, and the
factory renders that template with Jinja for every recipient, as before; so a template that does
more with a value than write it out is slower, never wrong. Templates that capture their own
output as a value (`{% set x %}...{% endset %}`, macros, call and filter blocks) are refused
before rendering, since the captured text would hold markers instead of the value.

Written out, a stand-in leaves a marker in the output that also shows whether it was
HTML-escaped. The output's lines without markers are encoded once (quoted-printable, as the
factory encodes any line); per recipient only the lines with markers are filled in and encoded.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass
from typing import Any

import jinja2
import markupsafe
from jinja2 import nodes
from markupsafe import escape

from varsel.sandbox_texts import checked_output

OPEN, CLOSE = "\ue000", "\ue001"  # private-use characters around a marker's number
# "&" in the marker becomes "&amp;" when the output it lands in is HTML-escaped.
MARKER = re.compile("\ue000(&amp;|&)([0-9]+)\ue001")
# Nodes that turn rendered output into a value the template can work on.
_CAPTURING = (
    nodes.Macro,
    nodes.CallBlock,
    nodes.FilterBlock,
    nodes.AssignBlock,
    nodes.Block,
    nodes.Extends,
    nodes.Include,
    nodes.Import,
    nodes.FromImport,
)
# Filters and globals whose result changes from one call to the next: a compiled template
# would freeze one result for every recipient.
_RANDOM_FILTERS = ("random",)
RANDOM_GLOBALS = ("lipsum",)

Transform = Callable[[Any], Any]


class NotCompilable(Exception):  # a reason to render with Jinja, not an error
    """The template uses a recipient's value other than by writing it out."""


def _refuse(self: object, *args: object, **kwargs: object) -> Any:
    raise NotCompilable(f"a template uses a recipient's value ({type(self).__name__})")


class Slot:
    """A stand-in for one recipient value, and the filters applied to it on its way out."""

    __slots__ = ("key", "transforms")

    def __init__(self, key: Hashable, transforms: tuple[Transform, ...] = ()) -> None:
        self.key = key
        self.transforms = transforms

    def then(self, transform: Transform) -> Slot:
        """The same value with one more filter applied when it is written out."""
        return Slot(self.key, (*self.transforms, transform))

    def __getattr__(self, name: str) -> Any:
        raise NotCompilable(f"a template reads {name!r} of a recipient's value")


class UnitSlots:
    """A stand-in for one unit: its fields are slots keyed (position, field name)."""

    __slots__ = ("municipality", "name", "orgnr")

    def __init__(self, position: int) -> None:
        self.orgnr = Slot((position, "orgnr"))
        self.name = Slot((position, "name"))
        self.municipality = Slot((position, "municipality"))

    def __getattr__(self, name: str) -> Any:
        raise NotCompilable(f"a template reads {name!r} of a unit")


UNIT_FIELDS = frozenset(UnitSlots.__slots__)
_STAND_INS = (Slot, UnitSlots)
# Every way Python code can look at a value's content, set on the class after its creation
# (the type checker would object to each one's signature in the class body).
_CONTENT_METHODS = (
    "__str__ __repr__ __format__ __bool__ __len__ __iter__ __reversed__ __contains__ "
    "__getitem__ __eq__ __ne__ __lt__ __le__ __gt__ __ge__ __hash__ __add__ __radd__ "
    "__mul__ __rmul__ __mod__ __rmod__ __int__ __float__ __index__ __round__ __neg__ "
    "__abs__ __call__ __bytes__ __fspath__"
)
for _name in _CONTENT_METHODS.split():
    for _kind in _STAND_INS:
        setattr(_kind, _name, _refuse)


def _has_stand_in(args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> bool:
    return any(type(a) in _STAND_INS for a in args) or any(
        type(v) in _STAND_INS for v in kwargs.values()
    )


def _guarded(function: Callable[..., Any]) -> Callable[..., Any]:
    """A filter or test that refuses stand-ins (it would see them, not the value)."""

    @functools.wraps(function)  # keeps jinja_pass_arg, so Jinja passes the same arguments
    def guarded(*args: Any, **kwargs: Any) -> Any:
        if _has_stand_in(args, kwargs):
            raise NotCompilable(f"a template applies {function.__name__} to a recipient's value")
        return function(*args, **kwargs)

    return guarded


class CompilingSandbox:
    """Mixed in before a sandboxed environment: stand-ins refuse everything but output."""

    slot_outputs: list[Slot]

    def getattr(self, obj: Any, attribute: str) -> Any:
        kind = type(obj)
        if kind is UnitSlots and attribute in UNIT_FIELDS:
            return getattr(obj, attribute)
        if kind in _STAND_INS:
            raise NotCompilable(f"a template reads {attribute!r} of a recipient's value")
        return super().getattr(obj, attribute)  # type: ignore[misc]

    def getitem(self, obj: Any, argument: Any) -> Any:
        kind = type(obj)
        if kind is UnitSlots and argument in UNIT_FIELDS:
            return getattr(obj, argument)
        if kind in _STAND_INS or type(argument) in _STAND_INS:
            raise NotCompilable("a template indexes with or into a recipient's value")
        return super().getitem(obj, argument)  # type: ignore[misc]

    def slot_finalize(self, value: Any) -> Any:
        """Jinja's finalize: a slot written out becomes its marker, the rest is checked."""
        kind = type(value)
        if kind is Slot:
            self.slot_outputs.append(value)
            return f"{OPEN}&{len(self.slot_outputs) - 1}{CLOSE}"
        if kind is UnitSlots:
            raise NotCompilable("a template writes out a whole unit")
        return checked_output(value)


def prepare(env: jinja2.Environment, slot_filters: Mapping[str, Transform]) -> None:
    """Make a CompilingSandbox environment ready: its filters, tests, globals and finalize."""
    assert isinstance(env, CompilingSandbox)  # noqa: S101
    env.slot_outputs = []
    env.finalize = env.slot_finalize
    env.filters = {
        name: slot_filters.get(name) or _guarded(function)
        for name, function in env.filters.items()
        if name not in _RANDOM_FILTERS
    }
    env.filters.update({k: v for k, v in slot_filters.items() if k not in env.filters})
    env.tests = {name: _guarded(test) for name, test in env.tests.items()}  # type: ignore[arg-type]
    for name in RANDOM_GLOBALS:
        env.globals.pop(name, None)


def slot_filter(function: Transform) -> Transform:
    """A filter that applies function to values, and remembers it on slots."""

    def apply(value: Any) -> Any:
        return value.then(function) if type(value) is Slot else function(value)

    return apply


def check_source(env: jinja2.Environment, source: str) -> None:
    """NotCompilable if the template captures its own output as a value."""
    tree = env.parse(source)
    for node in tree.find_all(_CAPTURING):
        raise NotCompilable(f"a template uses {type(node).__name__}")
    for name in tree.find_all(nodes.Name):
        if name.name in ("caller", "self", "super", "varargs", "kwargs"):
            raise NotCompilable(f"a template uses {name.name}")


def render_slots(
    env: jinja2.Environment, template: jinja2.Template, context: dict[str, Any]
) -> tuple[str, list[Slot]]:
    """The template's output with markers for the slots, and the slots in marker order."""
    assert isinstance(env, CompilingSandbox)  # noqa: S101
    outputs: list[Slot] = []
    env.slot_outputs = outputs
    parts = template.root_render_func(template.new_context(context, shared=True))
    text: str = env.concat(parts)  # bounded: varsel.sandbox
    return text, outputs


def escape_text(text: str) -> str:
    """markupsafe.escape() of a str, as str: the same five replacements, no Markup object."""
    return (
        text.replace("&", "&amp;")
        .replace(">", "&gt;")
        .replace("<", "&lt;")
        .replace("'", "&#39;")
        .replace('"', "&#34;")
    )


# markupsafe's C escaping of a str, where this markupsafe has it (a private name).
_escape_inner: Callable[[str], str] = getattr(markupsafe, "_escape_inner", escape_text)


def _escaped(value: Any) -> str:
    """str(markupsafe.escape(value)), sooner for str."""
    return _escape_inner(value) if type(value) is str else str(escape(value))


def slot_output(transforms: tuple[Transform, ...], escaped: bool) -> Callable[[Any], str]:
    """What writing a slot out does to its value: its filters, then str() or escape()."""
    last = _escaped if escaped else str
    if not transforms:
        return last

    def output(value: Any) -> str:
        for transform in transforms:
            value = transform(value)
        return last(value)

    return output


# One slot as written out: the value's key, and the function that makes its text.
SlotOutput = tuple[Hashable, Callable[[Any], str]]
Line = tuple[str | SlotOutput, ...]


@dataclass(frozen=True)
class CompiledPart:
    """A body part: runs of encoded fixed lines (with their CRLF) and lines with slots."""

    pieces: tuple[bytes | Line, ...]
    # The last line holds slots: when it comes out empty the encoder drops it (it would be the
    # empty string after the text's final line break).
    slot_line_last: bool


def compile_output(
    rendered: str, outputs: list[Slot], encode_line: Callable[[str], bytes]
) -> CompiledPart:
    """The part for output rendered with slots, its fixed lines encoded by encode_line."""
    # A line break in a line's text would change how the text splits into lines.
    if "\r" in rendered:
        raise NotCompilable("the template holds a carriage return")
    lines = rendered.split("\n")
    if lines[-1] == "":
        lines.pop()  # as the encoder does: the final line break ends the last line
    pieces: list[bytes | Line] = []
    fixed: list[bytes] = []
    seen: list[int] = []
    last_has_slots = False
    for line in lines:
        last_has_slots = OPEN in line or CLOSE in line
        if not last_has_slots:
            fixed += (encode_line(line), b"\r\n")
            continue
        if fixed:
            pieces.append(b"".join(fixed))
            fixed = []
        parts: list[str | SlotOutput] = []
        position = 0
        for match in MARKER.finditer(line):
            if match.start() > position:
                parts.append(line[position : match.start()])
            number = int(match.group(2))
            seen.append(number)
            slot = outputs[number] if number < len(outputs) else None
            if slot is None:
                raise NotCompilable("a marker that no slot wrote")
            parts.append((slot.key, slot_output(slot.transforms, match.group(1) == "&amp;")))
            position = match.end()
        if position < len(line):
            parts.append(line[position:])
        texts = "".join(p for p in parts if isinstance(p, str))
        if OPEN in texts or CLOSE in texts:
            # A marker a filter changed, or the template's own private-use characters.
            raise NotCompilable("a marker did not come through unchanged")
        pieces.append(tuple(parts))
    if fixed:
        pieces.append(b"".join(fixed))
    if sorted(seen) != list(range(len(outputs))):
        raise NotCompilable("a slot's marker is missing or repeated")
    return CompiledPart(tuple(pieces), last_has_slots)


def fill(
    part: CompiledPart, values: Mapping[Hashable, Any], encode_line: Callable[[str], bytes]
) -> bytes | None:
    """The encoded part for one recipient's values; None if a value holds a line break."""
    out: list[bytes] = []
    for piece in part.pieces:
        if isinstance(piece, bytes):
            out.append(piece)
            continue
        line = "".join([i if isinstance(i, str) else i[1](values[i[0]]) for i in piece])
        if "\n" in line or "\r" in line:
            return None
        if piece is part.pieces[-1] and part.slot_line_last and not line:
            break
        out += (encode_line(line), b"\r\n")
    return b"".join(out)
