"""How long a text an operator's template may make: each operation checked before it allocates.

Every operation that can make a text much longer than its inputs (`~`, `%`, widths, `replace`,
`join`, `indent`, ...) is checked before it allocates, and what the rest make is checked after.
A text of 1,000 characters or more is counted against what one render may make in all. A value
that is no text (lists inside lists) is checked before it is written out as one. The operator
sandbox (varsel.sandbox) puts these checks in its operators, calls and filters.
"""

from __future__ import annotations

import functools
import re
import textwrap
from collections.abc import Callable, Iterable, Mapping
from typing import Any, TypeVar

import jinja2
from jinja2.exceptions import FilterArgumentError, SecurityError
from jinja2.filters import make_attrgetter
from jinja2.runtime import Context, markup_join, str_join
from jinja2.sandbox import SandboxedEscapeFormatter, SandboxedFormatter
from jinja2.utils import Namespace, _PassArg
from markupsafe import Markup, soft_str

MAX_ITEMS = 100_000  # characters or items one operation ("-" * 40, a ~ b, |replace) may make
# Characters (or list items) the operations of one render may make in all, kept or not: what
# bounds a loop's 100,000 turns when each makes a long text (~10 ms of work, ~40 MB at most).
MAX_MADE = 10_000_000
# Shorter ones are not counted: counting costs as much as a short join, and 100,000 turns can
# make no more than a few of them each, the loop's count bounds them.
_COUNTED = 1000
_MADE = "_varsel_made"  # where a render's count of characters made is kept, on its Context
V = TypeVar("V")


def is_int(value: Any) -> bool:
    """Whether value is an int, and not a bool."""
    return isinstance(value, int) and not isinstance(value, bool)


def check_repeat(length: int, times: int) -> None:
    if length * times > MAX_ITEMS:
        raise SecurityError(f"teksten eller listen blir for lang (over {MAX_ITEMS})")


def check_length(length: int, what: str) -> None:
    """SecurityError naming what would make a text or list of the length, when it is too long."""
    if length > MAX_ITEMS:
        raise SecurityError(f"teksten eller listen blir for lang (over {MAX_ITEMS}) med {what}")


def checked_result(value: V, what: str) -> V:
    if isinstance(value, str | bytes):
        check_length(len(value), what)
    return value


def too_big(value: Any, limit: int = MAX_ITEMS) -> bool:
    """Whether value written out as text would be longer than limit (roughly, never less)."""
    # Lists inside lists share their items: [l, l] forty times over is 2 ** 40 items to
    # write out, held in forty lists. The walk stops as soon as the count passes the limit.
    stack = [value]
    total = 0
    while stack:
        item = stack.pop()
        if isinstance(item, str | bytes):
            total += len(item) + 2
        elif isinstance(item, list | tuple | set | frozenset):
            total += len(item) + 2
            if total <= limit:
                stack.extend(item)
        elif isinstance(item, dict):
            total += 2 * len(item) + 2
            if total <= limit:
                stack.extend(item.keys())
                stack.extend(item.values())
        elif isinstance(item, Namespace):
            stack.append(item._Namespace__attrs)
        elif is_int(item):
            total += item.bit_length() // 3 + 1
        else:
            total += 1
        if total > limit:
            return True
    return False


def _text(value: Any, what: str) -> str:
    """str(value), refused before it is made when it would be too long."""
    if type(value) is str:
        return value
    if too_big(value):
        check_length(MAX_ITEMS + 1, what)
    return checked_result(soft_str(value), what)


# A printf conversion: %(name)-10.3f; its width and precision may be "*", taken from the values.
_PRINTF = re.compile(r"%(?:\([^)]*\))?[#0 +-]*(\*|\d+)?(?:\.(\*|\d*))?[hlL]?(.)", re.DOTALL)
_DIGITS = re.compile(r"\d+")


def check_printf(form: str | bytes, values: Any, what: str) -> None:
    """SecurityError when the form's widths or values would make too long a text."""
    text = form.decode("latin-1") if isinstance(form, bytes) else form
    given = values if isinstance(values, tuple) else (values,)
    position = 0
    for width, precision, kind in _PRINTF.findall(text):
        for written in (width, precision):
            size: Any = written
            if written == "*":
                size = given[position] if position < len(given) else 0
                position += 1
            elif written:
                size = int(written) if len(written) <= 6 else MAX_ITEMS + 1
            if is_int(size) and size > MAX_ITEMS:
                check_length(MAX_ITEMS + 1, f"{what} «{text[:20]}»")
        if kind != "%":
            position += 1
    for value in values.values() if isinstance(values, Mapping) else given:
        if not isinstance(value, str | bytes) and too_big(value):
            check_length(MAX_ITEMS + 1, what)


def _check_spec(spec: str, what: str) -> None:
    """SecurityError when a format spec ("{:>999999999}") asks for too wide a field."""
    if any(len(d) > 6 and int(d) > MAX_ITEMS for d in _DIGITS.findall(spec)):
        check_length(MAX_ITEMS + 1, f"{what} «{spec}»")


def _replaced_length(text: str | bytes, old: Any, new: Any, count: Any) -> int:
    """How long text.replace(old, new, count) would be."""
    times = len(text) + 1 if not old else text.count(old)
    if is_int(count) and count >= 0:
        times = min(times, count)
    return len(text) + times * (len(new) - len(old))


def check_method(
    owner: Any, name: str, args: tuple[Any, ...], kwargs: dict[str, Any], what: str
) -> None:
    """SecurityError before a str, bytes or int method makes too long a text."""
    first = args[0] if args else None
    if name in ("center", "ljust", "rjust", "zfill") and isinstance(first, int):
        check_length(first, what)
    elif name == "expandtabs":
        size = kwargs.get("tabsize", 8 if first is None else first)
        if isinstance(size, int):
            check_length(
                len(owner) + owner.count("\t" if isinstance(owner, str) else b"\t") * size, what
            )
    elif name == "replace" and len(args) >= 2 and type(args[0]) is type(args[1]) is type(owner):
        check_length(
            _replaced_length(
                owner, args[0], args[1], kwargs.get("count", args[2] if len(args) > 2 else -1)
            ),
            what,
        )
    elif name == "join" and args and isinstance(first, list | tuple):
        check_length(
            sum(len(i) for i in first if isinstance(i, str | bytes)) + len(first) * len(owner), what
        )
    elif name == "translate" and isinstance(first, dict):
        longest = max((len(v) for v in first.values() if isinstance(v, str | bytes)), default=1)
        check_length(len(owner) * longest, what)
    elif name == "to_bytes":
        size = kwargs.get("length", first if first is not None else 1)
        if is_int(size):
            check_length(size, what)


class BoundedFormatter(SandboxedFormatter):
    def format_field(self, value: Any, format_spec: str) -> Any:
        _check_spec(format_spec, "«.format()»")
        if not isinstance(value, str | bytes) and too_big(value):
            check_length(MAX_ITEMS + 1, "«.format()»")
        return checked_result(super().format_field(value, format_spec), "«.format()»")


class BoundedEscapeFormatter(SandboxedEscapeFormatter, BoundedFormatter):
    pass


def spend(context: Context, made: int) -> None:
    """Count characters made against the render's MAX_MADE."""
    total = getattr(context, _MADE, 0) + made
    if total > MAX_MADE:
        raise SecurityError(f"malen lager for mye tekst i alt (over {MAX_MADE} tegn)")
    setattr(context, _MADE, total)


def made_text(context: Context, value: V, what: str) -> V:
    """value, refused when too long a text, and counted against the render's MAX_MADE."""
    if isinstance(value, str | bytes):
        made = len(value)
        if made >= _COUNTED:
            check_length(made, what)
            spend(context, made)
    return value


def call_filter(
    function: Callable[..., Any],
    passing: _PassArg | None,
    context: Context,
    *args: Any,
    **kwargs: Any,
) -> Any:
    """A Jinja filter called as Jinja would, with the context, eval context or environment."""
    if passing is _PassArg.context:
        return function(context, *args, **kwargs)
    if passing is _PassArg.eval_context:
        return function(context.eval_ctx, *args, **kwargs)
    if passing is _PassArg.environment:
        return function(context.environment, *args, **kwargs)
    return function(*args, **kwargs)


JINJA_FILTERS = jinja2.Environment(autoescape=True).filters  # Jinja's own, to bound and hand on


def _to_text_filter(name: str) -> Callable[..., Any]:
    """A filter that writes its value out whole (string, pprint, tojson), checked first."""
    function = JINJA_FILTERS[name]
    what = f"«|{name}»"

    @jinja2.pass_context
    def bounded(context: Context, value: Any, *args: Any, **kwargs: Any) -> Any:
        if not isinstance(value, str) and too_big(value):
            check_length(MAX_ITEMS + 1, what)
        return made_text(
            context,
            call_filter(function, _PassArg.from_obj(function), context, value, *args, **kwargs),
            what,
        )

    return functools.update_wrapper(bounded, function, assigned=("__name__", "__doc__"))


@jinja2.pass_context
def concat_filter(context: Context, items: list[Any]) -> str:
    """a ~ b ~ c, refused before it is made when too long."""
    for item in items:
        if type(item) is not str:
            break
    else:
        # The common case, texts only, each bounded already: the join is at most a few times
        # MAX_ITEMS, and is checked after.
        return made_text(context, "".join(items), "«~»")
    texts = [item if type(item) is str else _text(item, "«~»") for item in items]
    check_length(sum(map(len, texts)), "«~»")
    joined = markup_join(texts) if context.eval_ctx.autoescape else str_join(texts)
    return made_text(context, joined, "«~»")


@jinja2.pass_context
def _center(context: Context, value: Any, width: int = 80) -> str:
    text = _text(value, "«|center»")
    if isinstance(width, int):
        check_length(width, "«|center»")
    return made_text(context, text.center(width), "«|center»")


@jinja2.pass_context
def _format(context: Context, value: Any, *args: Any, **kwargs: Any) -> str:
    if args and kwargs:
        raise FilterArgumentError("can't handle positional and keyword arguments at the same time")
    text = _text(value, "«|format»")
    values = kwargs or args
    check_printf(text, values, "«|format»")
    return made_text(context, text % values, "«|format»")


@jinja2.pass_context
def _indent(
    context: Context, s: Any, width: int | str = 4, first: bool = False, blank: bool = False
) -> str:
    text = _text(s, "«|indent»")
    step = width if isinstance(width, int) else len(soft_str(width))
    check_length(step, "«|indent»")
    check_length(len(text) + (text.count("\n") + 1) * step, "«|indent»")
    indented: str = JINJA_FILTERS["indent"](text, width, first, blank)
    return made_text(context, indented, "«|indent»")


@jinja2.pass_context
def _wordwrap(
    context: Context,
    s: Any,
    width: int = 79,
    break_long_words: bool = True,
    wrapstring: str | None = None,
    break_on_hyphens: bool = True,
) -> str:
    # Jinja's own, with the lines counted before they are joined with a wrapstring that may be
    # 100,000 characters long. textwrap works word by word in Python, some fifty times slower
    # than the rest: its text counts ten times against the render's MAX_MADE.
    text = _text(s, "«|wordwrap»")
    spend(context, 10 * len(text))
    join = (
        context.environment.newline_sequence
        if wrapstring is None
        else _text(wrapstring, "«|wordwrap»")
    )
    paragraphs = [
        textwrap.wrap(
            line,
            width=width,
            expand_tabs=False,
            replace_whitespace=False,
            break_long_words=break_long_words,
            break_on_hyphens=break_on_hyphens,
        )
        for line in text.splitlines()
    ]
    # Every line its own text, and a wrapstring between each two (paragraphs' too).
    lines = sum(map(len, paragraphs))
    written = sum(len(line) for p in paragraphs for line in p)
    check_length(written + (lines + len(paragraphs)) * len(join), "«|wordwrap»")
    return made_text(context, join.join([join.join(p) for p in paragraphs]), "«|wordwrap»")


@jinja2.pass_context
def _replace(context: Context, s: Any, old: Any, new: Any, count: int | None = None) -> str:
    text = _text(s, "«|replace»")
    if isinstance(old, str) and isinstance(new, str):
        check_length(_replaced_length(text, old, new, count), "«|replace»")
    replaced = JINJA_FILTERS["replace"](context.eval_ctx, s, old, new, count)
    return made_text(context, replaced, "«|replace»")  # type: ignore[no-any-return]


@jinja2.pass_context
def _join(
    context: Context, value: Iterable[Any], d: str = "", attribute: str | int | None = None
) -> str:
    # The items are counted as they come: a generator (range(100000)|map("center", 99999))
    # is refused before it has made them all.
    if attribute is not None:
        value = map(make_attrgetter(context.environment, attribute), value)
    glue = len(_text(d, "«|join»"))
    items = []
    total = 0
    for item in value:
        text = item if type(item) is str else _text(item, "«|join»")
        total += len(text) + glue
        check_length(total - glue, "«|join»")
        items.append(item if hasattr(item, "__html__") else text)
    return made_text(context, JINJA_FILTERS["join"](context.eval_ctx, items, d), "«|join»")  # type: ignore[no-any-return]


@jinja2.pass_context
def _truncate(
    context: Context,
    s: Any,
    length: int = 255,
    killwords: bool = False,
    end: str = "...",
    leeway: int | None = None,
) -> str:
    text = _text(s, "«|truncate»")
    if isinstance(length, int) and length < len(end):
        # Jinja's own check is an assert: an AssertionError is a bug, not the template's error.
        raise FilterArgumentError(f"truncate: lengden ({length}) er kortere enn slutten «{end}»")
    cut = JINJA_FILTERS["truncate"](context.environment, text, length, killwords, end, leeway)
    return made_text(context, cut, "«|truncate»")  # type: ignore[no-any-return]


def stringifying_test(test: Callable[..., Any]) -> Callable[..., Any]:
    """A test that looks at str(value) ("lower", "upper"), with value checked first."""

    @functools.wraps(test)
    def checked(value: Any) -> Any:
        if type(value) is not str and too_big(value):
            check_length(MAX_ITEMS + 1, f"«is {test.__name__.removeprefix('test_')}»")
        return test(value)

    return checked


def checked_output(value: Any) -> Any:
    """Jinja's finalize: a value written out ({{ x }}) that would be too long a text is refused."""
    # Lists inside lists ([l, l], forty times over) hold 2 ** 40 items in forty lists: str()
    # would take the process for hours. What a render writes in all is bounded by
    # OperatorSandbox.concat (varsel.sandbox).
    if type(value) not in _WRITTEN_AS_IS and too_big(value):
        check_length(MAX_ITEMS + 1, "«{{ }}»")
    return value


_WRITTEN_AS_IS = frozenset({str, Markup, int, bool, float})  # each short, or bounded already


# Jinja's filters that may make a text much longer than their value, bounded before they do.
BOUNDED_TEXT_FILTERS: dict[str, Callable[..., Any]] = {
    "center": _center,
    "format": _format,
    "indent": _indent,
    "wordwrap": _wordwrap,
    "replace": _replace,
    "join": _join,
    "truncate": _truncate,
    **{
        name: _to_text_filter(name)
        for name in ("string", "pprint", "tojson", "e", "escape", "forceescape")
    },
}
