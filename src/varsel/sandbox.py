"""The Jinja environment that renders the templates operators write: messages, letters, Altinn.

Immutable: a template cannot change the context shared by every recipient. Sandboxed:
campaign templates are written by operators, not by us. Strict: a misspelt field is an error
at lint time, not an empty gap in 10,000 messages. Blocks leave no blank lines of their own.
Bounded: a template renders in the web process too (previews, lint), so it may not take the
process's CPU or memory with one operation or loop forever. Every operation that can make a text
much longer than its inputs (`~`, `+`, `%`, widths, `replace`, `join`, `indent`, ...) is
checked before it allocates, and what the rest make is checked after. Every list, tuple or
dict a template makes has a weight, the items it holds with a list inside it counted whole each
time it is held: [t, t] forty times over is forty short lists but 2 ** 40 items to compare, hash
or sort in C, so a container is refused when its weight passes the bound.
"""

from __future__ import annotations

import functools
import re
import textwrap
from collections.abc import Callable, Iterable, Iterator, Mapping
from itertools import chain, islice
from typing import Any, TypeVar, cast, overload

import jinja2
from jinja2 import nodes
from jinja2.exceptions import FilterArgumentError, SecurityError
from jinja2.filters import make_attrgetter
from jinja2.runtime import Context, Macro, markup_join, str_join
from jinja2.sandbox import (
    ImmutableSandboxedEnvironment,
    SandboxedEscapeFormatter,
    SandboxedFormatter,
)
from jinja2.utils import Cycler, Namespace, _PassArg
from jinja2.visitor import NodeTransformer
from markupsafe import Markup, soft_str

from varsel.unit import format_orgnr

# Loop turns a render may take in all: the sandbox's own limit on one range(), for every loop
# of a template together. A message loops over its units (hundreds at most).
MAX_LOOP_TURNS = 100_000
MAX_ITEMS = 100_000  # characters or items one operation ("-" * 40, a ~ b, |replace) may make
MAX_OUTPUT = 1_000_000  # characters a whole render (or a macro, or a captured block) may write
# Characters (or list items) the operations of one render may make in all, kept or not: what
# bounds a loop's 100,000 turns when each makes a long text (~10 ms of work, ~40 MB at most).
MAX_MADE = 10_000_000
# Shorter ones are not counted: counting costs as much as a short join, and 100,000 turns can
# make no more than a few of them each, the loop's count bounds them.
_COUNTED = 1000
MAX_BITS = 4096  # bits a number made by ** or * may have
_LOOP_FILTER = "varsel_loop_turns"  # not a name a template can write: Jinja's are words
_CONCAT_FILTER = "varsel_concat"
_WEIGH_FILTER = "varsel_weighed"
V = TypeVar("V")
_SEQUENCES = (str, bytes, list, tuple)  # what + joins and * repeats
_TURNS = "_varsel_loop_turns"  # where a render's count is kept, on its Context
_MADE = "_varsel_made"  # and its count of characters made
_WEIGHTS = "_varsel_weights"  # and the weights of the containers it has weighed, by id
_CONTAINERS = (list, tuple, dict, set, frozenset)
# Containers that weigh this much or more are remembered for the render, and counted against its
# MAX_MADE (which bounds what is kept). A lighter one costs less to weigh again than to keep.
_KEPT = 64


class OperatorSandbox(ImmutableSandboxedEnvironment):
    """The immutable sandbox, with limits on the work one render can do."""

    # 9 ** 99999999 holds the GIL for minutes: every thread of the web process stops with it.
    # A text that doubles in a loop (s + s) needs only 40 turns to want a terabyte, and
    # "%999999999s" % x a gigabyte in one.
    intercepted_binops = frozenset({"**", "*", "+", "%"})

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("finalize", checked_output)
        super().__init__(*args, **kwargs)
        for name in (*_TEXT_FILTERS, *_LIST_FILTERS):
            self.filters[name] = _checked(name, self.filters[name])
        self.filters.update(_BOUNDED_FILTERS)
        self.filters[_LOOP_FILTER] = _loop_turns
        self.filters[_CONCAT_FILTER] = _concat
        self.filters[_WEIGH_FILTER] = _weighed_filter
        # str(value) of a list inside lists, before anything could check what they make.
        for name in ("lower", "upper"):
            self.tests[name] = _stringifying_test(cast("Callable[..., Any]", self.tests[name]))
        # Placeholder text has no place in a message, and lipsum(1, min=10**9) makes a gigabyte.
        self.globals.pop("lipsum", None)

    def concat(self, pieces: Iterable[str]) -> str:
        """The pieces joined, refused as soon as they pass MAX_OUTPUT characters."""
        # What a render, a macro or a captured block writes: a loop's 100,000 turns that each
        # write a 100,000-character text would otherwise make ten gigabytes.
        # Counted 64 pieces at a time, before they are joined: a loop in Python over every piece
        # would cost a short template a fifth of its time. A piece may be a macro's whole
        # output, so even 64 are counted before they are joined (nested macros multiply).
        pieces = iter(pieces)
        kept: list[str] = []
        total = 0
        while batch := list(islice(pieces, 64)):
            total += sum(map(len, batch))
            if total > MAX_OUTPUT:
                raise SecurityError(f"malen skriver for mye tekst (over {MAX_OUTPUT} tegn)")
            if len(batch) < 64 and not kept:  # a short template's all, or a short macro's
                return "".join(batch)
            kept.append("".join(batch))
        return "".join(kept)

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        if operator == "**":
            _check_power(left, right)
        elif operator == "+":
            if isinstance(left, _SEQUENCES) and isinstance(right, _SEQUENCES):
                _check_length(len(left) + len(right), "«+»")
                return _made(context, super().call_binop(context, operator, left, right), "«+»")
        elif operator == "%":
            if isinstance(left, str | bytes):
                _check_printf(left, right, "«%»")
                return _made(context, super().call_binop(context, operator, left, right), "«%»")
        elif _is_int(left) and _is_int(right):
            if left.bit_length() + right.bit_length() > MAX_BITS:
                raise SecurityError(f"tallet blir for stort (over {MAX_BITS} bit)")
        elif isinstance(left, str | bytes | list | tuple) and _is_int(right):
            _check_repeat(len(left), right)
            return _made(context, super().call_binop(context, operator, left, right), "«*»")
        elif isinstance(right, str | bytes | list | tuple) and _is_int(left):
            _check_repeat(len(right), left)
            return _made(context, super().call_binop(context, operator, left, right), "«*»")
        return super().call_binop(context, operator, left, right)

    def call(__self, __context: Context, __obj: Any, *args: Any, **kwargs: Any) -> Any:
        """Call from a template: a str or bytes method that would make too long a text fails,
        and so does a call that makes or is handed too heavy a container."""
        owner = getattr(__obj, "__self__", None)
        if isinstance(owner, str | bytes) or (_is_int(owner) and __obj.__name__ == "to_bytes"):
            what = f"«.{__obj.__name__}()»"
            _check_method(owner, __obj.__name__, args, kwargs, what)
            return _made(__context, super().call(__context, __obj, *args, **kwargs), what)
        if type(__obj) is Macro or __obj is Cycler:
            # A macro's varargs and kwargs, and a cycler's items, are containers of what it is
            # handed: m(t, t) in a macro calling itself doubles t as [t, t] would.
            _check_handed(__context, args, kwargs, f"«{getattr(__obj, 'name', 'cycler')}()»")
        made = super().call(__context, __obj, *args, **kwargs)
        if isinstance(made, _CONTAINERS):  # dict(a=t, b=t), {}.fromkeys(l, t), l.copy()
            name = getattr(__obj, "__name__", "")
            _weighed(__context, made, f"«.{name}()»" if owner is not None else f"«{name}()»")
        return made

    def wrap_str_format(self, value: Any) -> Callable[..., str] | None:
        """str.format and format_map, with the widths in their fields bounded."""
        wrapped = super().wrap_str_format(value)
        if wrapped is None:
            return None
        text: str = value.__self__
        formatter: SandboxedFormatter
        if isinstance(text, Markup):
            formatter = _BoundedEscapeFormatter(self, escape=text.escape)
        else:
            formatter = _BoundedFormatter(self)
        is_map = value.__name__ == "format_map"

        def bounded(*args: Any, **kwargs: Any) -> str:
            if is_map:
                if kwargs or len(args) != 1:
                    return wrapped(*args, **kwargs)  # its own TypeError
                kwargs = args[0]
                args = ()
            what = f"«.{value.__name__}()»"
            return _checked_result(type(text)(formatter.vformat(text, args, kwargs)), what)

        return functools.update_wrapper(bounded, value)

    def _parse(self, source: str, name: str | None, filename: str | None) -> nodes.Template:
        tree = super()._parse(source, name, filename)
        # Every loop counts its turns: loops inside loops multiply, and range() alone does not
        # bound them (range(100000) in range(100000) is 10 ** 10 turns).
        for loop in tree.find_all(nodes.For):
            loop.iter = nodes.Filter(loop.iter, _LOOP_FILTER, [], [], None, None)
            loop.iter.set_lineno(loop.lineno)
        # a ~ b is compiled to a join Jinja imports itself, which no environment can replace:
        # it becomes a filter that checks the length first. The containers a template writes
        # ([a, b], (a, b), {"a": b}) are weighed by a filter too.
        return _Bounds().visit(tree)  # type: ignore[no-any-return]


class _Bounds(NodeTransformer):
    def visit_Concat(self, node: nodes.Concat) -> nodes.Node:
        operands = [self.visit(n) for n in node.nodes]
        items = nodes.List(operands, lineno=node.lineno)
        return nodes.Filter(items, _CONCAT_FILTER, [], [], None, None, lineno=node.lineno)

    def visit_List(self, node: nodes.List) -> nodes.Node:
        self.generic_visit(node)
        return _weighing(node, "«[ ]»")

    def visit_Tuple(self, node: nodes.Tuple) -> nodes.Node:
        self.generic_visit(node)
        if node.ctx != "load":  # {% for a, b in ... %}, {% set a, b = ... %}
            return node
        return _weighing(node, "«( )»")

    def visit_Dict(self, node: nodes.Dict) -> nodes.Node:
        self.generic_visit(node)
        return _weighing(node, "«{ }»")

    def visit_Assign(self, node: nodes.Assign) -> nodes.Node:
        # What a namespace keeps is what a loop's next turn can double: whatever made it,
        # it is weighed (a batch's filler, a map's default make containers of their own).
        self.generic_visit(node)
        for ref in node.target.find_all(nodes.NSRef):
            what = f"«{{% set {ref.name}.{ref.attr} %}}»"
            node.node = _weighing(node.node, what, always=True)
            break
        return node


def _constant(node: nodes.Node) -> bool:
    """Whether node is a literal of constants only ([1, "a"]): it holds no container twice."""
    if isinstance(node, nodes.Const):
        return True
    if isinstance(node, nodes.Pair):
        return _constant(node.key) and _constant(node.value)
    return isinstance(node, nodes.List | nodes.Tuple | nodes.Dict) and all(
        _constant(item) for item in node.items
    )


def _weighing(node: nodes.Node, what: str, *, always: bool = False) -> nodes.Node:
    """node, weighed by a filter as it is made, unless it is a literal of constants."""
    if not always and _constant(node):
        return node
    weighed = nodes.Filter(node, _WEIGH_FILTER, [nodes.Const(what)], [], None, None)
    weighed.set_lineno(node.lineno)
    return weighed


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _check_power(base: Any, exponent: Any) -> None:
    big = _is_int(base) and _is_int(exponent) and exponent > 0 and abs(base) > 1
    if big and (abs(base).bit_length() - 1) * exponent > MAX_BITS:
        raise SecurityError(f"tallet blir for stort (over {MAX_BITS} bit)")


def _check_repeat(length: int, times: int) -> None:
    if length * times > MAX_ITEMS:
        raise SecurityError(f"teksten eller listen blir for lang (over {MAX_ITEMS})")


def _check_length(length: int, what: str) -> None:
    """SecurityError naming what would make a text or list of the length, when it is too long."""
    if length > MAX_ITEMS:
        raise SecurityError(f"teksten eller listen blir for lang (over {MAX_ITEMS}) med {what}")


def _checked_result(value: V, what: str) -> V:
    if isinstance(value, str | bytes):
        _check_length(len(value), what)
    return value


def _too_big(value: Any, limit: int = MAX_ITEMS) -> bool:
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
        elif _is_int(item):
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
    if _too_big(value):
        _check_length(MAX_ITEMS + 1, what)
    return _checked_result(soft_str(value), what)


# A printf conversion: %(name)-10.3f; its width and precision may be "*", taken from the values.
_PRINTF = re.compile(r"%(?:\([^)]*\))?[#0 +-]*(\*|\d+)?(?:\.(\*|\d*))?[hlL]?(.)", re.DOTALL)
_DIGITS = re.compile(r"\d+")


def _check_printf(form: str | bytes, values: Any, what: str) -> None:
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
            if _is_int(size) and size > MAX_ITEMS:
                _check_length(MAX_ITEMS + 1, f"{what} «{text[:20]}»")
        if kind != "%":
            position += 1
    for value in values.values() if isinstance(values, Mapping) else given:
        if not isinstance(value, str | bytes) and _too_big(value):
            _check_length(MAX_ITEMS + 1, what)


def _check_spec(spec: str, what: str) -> None:
    """SecurityError when a format spec ("{:>999999999}") asks for too wide a field."""
    if any(len(d) > 6 and int(d) > MAX_ITEMS for d in _DIGITS.findall(spec)):
        _check_length(MAX_ITEMS + 1, f"{what} «{spec}»")


def _replaced_length(text: str | bytes, old: Any, new: Any, count: Any) -> int:
    """How long text.replace(old, new, count) would be."""
    times = len(text) + 1 if not old else text.count(old)
    if _is_int(count) and count >= 0:
        times = min(times, count)
    return len(text) + times * (len(new) - len(old))


def _check_method(
    owner: Any, name: str, args: tuple[Any, ...], kwargs: dict[str, Any], what: str
) -> None:
    """SecurityError before a str, bytes or int method makes too long a text."""
    first = args[0] if args else None
    if name in ("center", "ljust", "rjust", "zfill") and isinstance(first, int):
        _check_length(first, what)
    elif name == "expandtabs":
        size = kwargs.get("tabsize", 8 if first is None else first)
        if isinstance(size, int):
            _check_length(
                len(owner) + owner.count("\t" if isinstance(owner, str) else b"\t") * size, what
            )
    elif name == "replace" and len(args) >= 2 and type(args[0]) is type(args[1]) is type(owner):
        _check_length(
            _replaced_length(
                owner, args[0], args[1], kwargs.get("count", args[2] if len(args) > 2 else -1)
            ),
            what,
        )
    elif name == "join" and args and isinstance(first, list | tuple):
        _check_length(
            sum(len(i) for i in first if isinstance(i, str | bytes)) + len(first) * len(owner), what
        )
    elif name == "translate" and isinstance(first, dict):
        longest = max((len(v) for v in first.values() if isinstance(v, str | bytes)), default=1)
        _check_length(len(owner) * longest, what)
    elif name == "to_bytes":
        size = kwargs.get("length", first if first is not None else 1)
        if _is_int(size):
            _check_length(size, what)


class _BoundedFormatter(SandboxedFormatter):
    def format_field(self, value: Any, format_spec: str) -> Any:
        _check_spec(format_spec, "«.format()»")
        if not isinstance(value, str | bytes) and _too_big(value):
            _check_length(MAX_ITEMS + 1, "«.format()»")
        return _checked_result(super().format_field(value, format_spec), "«.format()»")


class _BoundedEscapeFormatter(SandboxedEscapeFormatter, _BoundedFormatter):
    pass


def _spend(context: Context, made: int) -> None:
    """Count characters made against the render's MAX_MADE."""
    total = getattr(context, _MADE, 0) + made
    if total > MAX_MADE:
        raise SecurityError(f"malen lager for mye tekst i alt (over {MAX_MADE} tegn)")
    setattr(context, _MADE, total)


def _made(context: Context, value: V, what: str) -> V:
    """value, refused when too long a text or too heavy a container, and counted against the
    render's MAX_MADE."""
    if isinstance(value, str | bytes):
        made = len(value)
        if made >= _COUNTED:
            _check_length(made, what)
            _spend(context, made)
    elif isinstance(value, _CONTAINERS):
        _weighed(context, value, what)
    return value


def _weight(value: Any, known: dict[int, tuple[int, Any]]) -> int:
    """The items a container holds, a container inside it counted whole each time it is held.

    Past MAX_ITEMS the walk stops, with a count over it. Containers weighing _KEPT or more are
    remembered in known (by id, held there so that the id stays theirs): a template cannot
    change a list or dict (the immutable sandbox), so the weight stays true for the render, and
    [t, t] costs two look-ups however heavy t is.
    """
    entry = known.get(id(value))
    if entry is not None:
        return entry[0]
    total = len(value)
    if total > MAX_ITEMS:
        return total
    items: Iterable[Any] = chain(value, value.values()) if isinstance(value, dict) else value
    if total > 16:
        # Most long lists hold no containers: their types are gathered in C, not walked here.
        kinds = set(map(type, items))
        if not any(issubclass(kind, _CONTAINERS) for kind in kinds):
            items = ()
        elif isinstance(value, dict):
            items = chain(value, value.values())
    for item in items:
        if isinstance(item, _CONTAINERS):
            total += _weight(item, known)
            if total > MAX_ITEMS:
                return total
    if total >= _KEPT:
        known[id(value)] = (total, value)
    return total


def _known(context: Context) -> dict[int, tuple[int, Any]]:
    known: dict[int, tuple[int, Any]] | None = getattr(context, _WEIGHTS, None)
    if known is None:
        known = {}
        setattr(context, _WEIGHTS, known)
    return known


def _too_heavy(what: str) -> SecurityError:
    return SecurityError(f"listen blir for stor (over {MAX_ITEMS} elementer) med {what}")


def _weighed(context: Context, value: V, what: str) -> V:
    """A container just made, refused when it weighs over MAX_ITEMS, and counted."""
    known = _known(context)
    if id(value) in known:  # weighed and counted already: {% set ns.t = t %}
        return value
    weight = _weight(value, known)
    if weight > MAX_ITEMS:
        raise _too_heavy(what)
    if weight >= _KEPT:
        _spend(context, weight)
    return value


@jinja2.pass_context
def _weighed_filter(context: Context, value: V, what: str) -> V:
    """A container a template writes ([a, b]) or keeps in a namespace, weighed."""
    if isinstance(value, _CONTAINERS):
        _weighed(context, value, what)
    return value


def _check_handed(
    context: Context, args: tuple[Any, ...], kwargs: dict[str, Any], what: str
) -> None:
    """SecurityError when what a call is handed, together, weighs over MAX_ITEMS."""
    known = _known(context)
    total = len(args) + len(kwargs)
    for item in chain(args, kwargs.values()):
        if isinstance(item, _CONTAINERS):
            total += _weight(item, known)
            if total > MAX_ITEMS:
                raise _too_heavy(what)


def _call(
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


_FILTERS = jinja2.Environment(autoescape=True).filters  # Jinja's own, to bound and hand on


def _checked(name: str, function: Callable[..., Any]) -> Callable[..., Any]:
    """A filter whose text or container, when it makes one, is refused when too long (or too
    heavy), and counted; one that writes its value out as text first has it checked before."""
    what = f"«|{name}»"
    passing = _PassArg.from_obj(function)
    stringifies = name in _STRINGIFYING

    @jinja2.pass_context
    @functools.wraps(function)
    def checked(context: Context, *args: Any, **kwargs: Any) -> Any:
        if stringifies and args and type(args[0]) is not str and _too_big(args[0]):
            _check_length(MAX_ITEMS + 1, what)
        if passing is None:  # most of Jinja's text filters (upper, trim): no dispatch
            return _made(context, function(*args, **kwargs), what)
        return _made(context, _call(function, passing, context, *args, **kwargs), what)

    return checked


def _to_text_filter(name: str) -> Callable[..., Any]:
    """A filter that writes its value out whole (string, pprint, tojson), checked first."""
    function = _FILTERS[name]
    what = f"«|{name}»"

    @jinja2.pass_context
    def bounded(context: Context, value: Any, *args: Any, **kwargs: Any) -> Any:
        if not isinstance(value, str) and _too_big(value):
            _check_length(MAX_ITEMS + 1, what)
        return _made(
            context,
            _call(function, _PassArg.from_obj(function), context, value, *args, **kwargs),
            what,
        )

    return functools.update_wrapper(bounded, function, assigned=("__name__", "__doc__"))


@jinja2.pass_context
def _concat(context: Context, items: list[Any]) -> str:
    """a ~ b ~ c, refused before it is made when too long."""
    for item in items:
        if type(item) is not str:
            break
    else:
        # The common case, texts only, each bounded already: the join is at most a few times
        # MAX_ITEMS, and is checked after.
        return _made(context, "".join(items), "«~»")
    texts = [item if type(item) is str else _text(item, "«~»") for item in items]
    _check_length(sum(map(len, texts)), "«~»")
    joined = markup_join(texts) if context.eval_ctx.autoescape else str_join(texts)
    return _made(context, joined, "«~»")


@jinja2.pass_context
def _center(context: Context, value: Any, width: int = 80) -> str:
    text = _text(value, "«|center»")
    if isinstance(width, int):
        _check_length(width, "«|center»")
    return _made(context, text.center(width), "«|center»")


@jinja2.pass_context
def _format(context: Context, value: Any, *args: Any, **kwargs: Any) -> str:
    if args and kwargs:
        raise FilterArgumentError("can't handle positional and keyword arguments at the same time")
    text = _text(value, "«|format»")
    values = kwargs or args
    _check_printf(text, values, "«|format»")
    return _made(context, text % values, "«|format»")


@jinja2.pass_context
def _indent(
    context: Context, s: Any, width: int | str = 4, first: bool = False, blank: bool = False
) -> str:
    text = _text(s, "«|indent»")
    step = width if isinstance(width, int) else len(soft_str(width))
    _check_length(step, "«|indent»")
    _check_length(len(text) + (text.count("\n") + 1) * step, "«|indent»")
    indented: str = _FILTERS["indent"](text, width, first, blank)
    return _made(context, indented, "«|indent»")


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
    _spend(context, 10 * len(text))
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
    _check_length(written + (lines + len(paragraphs)) * len(join), "«|wordwrap»")
    return _made(context, join.join([join.join(p) for p in paragraphs]), "«|wordwrap»")


@jinja2.pass_context
def _replace(context: Context, s: Any, old: Any, new: Any, count: int | None = None) -> str:
    text = _text(s, "«|replace»")
    if isinstance(old, str) and isinstance(new, str):
        _check_length(_replaced_length(text, old, new, count), "«|replace»")
    replaced = _FILTERS["replace"](context.eval_ctx, s, old, new, count)
    return _made(context, replaced, "«|replace»")  # type: ignore[no-any-return]


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
        _check_length(total - glue, "«|join»")
        items.append(item if hasattr(item, "__html__") else text)
    return _made(context, _FILTERS["join"](context.eval_ctx, items, d), "«|join»")  # type: ignore[no-any-return]


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
    cut = _FILTERS["truncate"](context.environment, text, length, killwords, end, leeway)
    return _made(context, cut, "«|truncate»")  # type: ignore[no-any-return]


@jinja2.pass_context
def _batch(context: Context, value: Iterable[Any], linecount: int, fill_with: Any = None) -> Any:
    if fill_with is not None and isinstance(linecount, int):
        _check_length(linecount, "«|batch»")
    return _each_weighed(context, _FILTERS["batch"](value, linecount, fill_with), "«|batch»")


@jinja2.pass_context
def _slice(context: Context, value: Iterable[Any], slices: int, fill_with: Any = None) -> Any:
    if isinstance(slices, int):
        _check_length(slices, "«|slice»")
    made = _call(_FILTERS["slice"], _PassArg.eval_context, context, value, slices, fill_with)
    return _each_weighed(context, made, "«|slice»")


def _each_weighed(context: Context, lists: Iterable[list[Any]], what: str) -> Iterator[list[Any]]:
    """The lists a batch or slice makes, each weighed: its fill_with may be a list, many times."""
    for made in lists:
        yield _weighed(context, made, what)


def _stringifying_test(test: Callable[..., Any]) -> Callable[..., Any]:
    """A test that looks at str(value) ("lower", "upper"), with value checked first."""

    @functools.wraps(test)
    def checked(value: Any) -> Any:
        if type(value) is not str and _too_big(value):
            _check_length(MAX_ITEMS + 1, f"«is {test.__name__.removeprefix('test_')}»")
        return test(value)

    return checked


# Jinja's filters that make a text from a text (at most a few times as long): checked after.
# The rest make none (length, first), are bounded before (_BOUNDED_FILTERS) or below (sum).
_TEXT_FILTERS = (
    "capitalize",
    "filesizeformat",
    "lower",
    "reverse",
    "safe",
    "striptags",
    "title",
    "trim",
    "upper",
    "urlencode",
    "urlize",
    "wordcount",
    "xmlattr",
)
# Those of them that write a value that is no text out as one first (str(list)): checked before,
# as the value would be written out ({{ }}).
_STRINGIFYING = frozenset(_TEXT_FILTERS) - {"reverse", "filesizeformat"}
# Jinja's filters that make a list (or a list of lists, tuples): weighed after.
_LIST_FILTERS = ("dictsort", "groupby", "list", "sort")


@jinja2.pass_context
def _sum(context: Context, iterable: Iterable[Any], attribute: Any = None, start: Any = 0) -> Any:
    # sum(lists, start=[]) copies what it has so far for each list it adds.
    if isinstance(start, list | tuple):
        iterable = list(iterable)
        _check_length(sum(len(i) for i in iterable if isinstance(i, list | tuple)), "«|sum»")
    return _made(
        context,
        _call(_FILTERS["sum"], _PassArg.environment, context, iterable, attribute, start),
        "«|sum»",
    )


def checked_output(value: Any) -> Any:
    """Jinja's finalize: a value written out ({{ x }}) that would be too long a text is refused."""
    # Lists inside lists ([l, l], forty times over) hold 2 ** 40 items in forty lists: str()
    # would take the process for hours. What a render writes in all is bounded by concat.
    if type(value) not in _WRITTEN_AS_IS and _too_big(value):
        _check_length(MAX_ITEMS + 1, "«{{ }}»")
    return value


_WRITTEN_AS_IS = frozenset({str, Markup, int, bool, float})  # each short, or bounded already


_BOUNDED_FILTERS: dict[str, Callable[..., Any]] = {
    "center": _center,
    "format": _format,
    "indent": _indent,
    "wordwrap": _wordwrap,
    "replace": _replace,
    "join": _join,
    "truncate": _truncate,
    "batch": _batch,
    "slice": _slice,
    "sum": _sum,
    **{
        name: _to_text_filter(name)
        for name in ("string", "pprint", "tojson", "e", "escape", "forceescape")
    },
}


@jinja2.pass_context
def _loop_turns(context: Context, iterable: Iterable[Any]) -> Iterator[Any]:
    """The loop's items, counted against the render's MAX_LOOP_TURNS."""
    for item in iterable:
        turns = getattr(context, _TURNS, 0) + 1
        if turns > MAX_LOOP_TURNS:
            raise SecurityError(f"malen går for mange runder i løkker (over {MAX_LOOP_TURNS})")
        setattr(context, _TURNS, turns)
        yield item


E = TypeVar("E", bound=OperatorSandbox)


@overload
def operator_sandbox(*, autoescape: bool = False) -> OperatorSandbox: ...


@overload
def operator_sandbox(kind: type[E], *, autoescape: bool = False) -> E: ...


def operator_sandbox(kind: type[Any] = OperatorSandbox, *, autoescape: bool = False) -> Any:
    """A new environment of the kind, with the filters every template may use (`orgnr`)."""
    env = kind(
        autoescape=autoescape,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["orgnr"] = format_orgnr
    return env
