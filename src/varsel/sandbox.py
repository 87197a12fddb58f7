"""The Jinja environment that renders the templates operators write: messages, letters, Altinn.

Immutable: a template cannot change the context shared by every recipient. Sandboxed:
campaign templates are written by operators, not by us. Strict: a misspelt field is an error
at lint time, not an empty gap in 10,000 messages. Blocks leave no blank lines of their own.
Bounded: a template renders in the web process too (previews, lint), so it may not take the
process's CPU or memory with one operation or loop forever. Its loops count their turns, its
numbers their bits, what it writes its characters; the texts its operations make are bounded
by varsel.sandbox_texts, the containers by varsel.sandbox_weights.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Iterator
from itertools import islice
from typing import Any, TypeVar, cast, overload

import jinja2
from jinja2 import nodes
from jinja2.exceptions import SecurityError
from jinja2.runtime import Context, Macro
from jinja2.sandbox import ImmutableSandboxedEnvironment, SandboxedFormatter
from jinja2.utils import Cycler, _PassArg
from jinja2.visitor import NodeTransformer
from markupsafe import Markup

from varsel.sandbox_texts import (
    BOUNDED_TEXT_FILTERS,
    JINJA_FILTERS,
    MAX_ITEMS,
    BoundedEscapeFormatter,
    BoundedFormatter,
    call_filter,
    check_length,
    check_method,
    check_printf,
    check_repeat,
    checked_output,
    checked_result,
    concat_filter,
    is_int,
    stringifying_test,
    too_big,
)
from varsel.sandbox_weights import (
    CONTAINERS,
    WEIGH_FILTER,
    check_handed,
    each_weighed,
    made_value,
    weighed,
    weighed_filter,
    weighing,
)
from varsel.unit import format_orgnr

# Loop turns a render may take in all: the sandbox's own limit on one range(), for every loop
# of a template together. A message loops over its units (hundreds at most).
MAX_LOOP_TURNS = 100_000
MAX_OUTPUT = 1_000_000  # characters a whole render (or a macro, or a captured block) may write
MAX_BITS = 4096  # bits a number made by ** or * may have
_LOOP_FILTER = "varsel_loop_turns"  # not a name a template can write: Jinja's are words
_CONCAT_FILTER = "varsel_concat"
_SEQUENCES = (str, bytes, list, tuple)  # what + joins and * repeats
_TURNS = "_varsel_loop_turns"  # where a render's count is kept, on its Context


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
        self.filters[_CONCAT_FILTER] = concat_filter
        self.filters[WEIGH_FILTER] = weighed_filter
        # str(value) of a list inside lists, before anything could check what they make.
        for name in ("lower", "upper"):
            self.tests[name] = stringifying_test(cast("Callable[..., Any]", self.tests[name]))
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
                check_length(len(left) + len(right), "«+»")
                return made_value(
                    context, super().call_binop(context, operator, left, right), "«+»"
                )
        elif operator == "%":
            if isinstance(left, str | bytes):
                check_printf(left, right, "«%»")
                return made_value(
                    context, super().call_binop(context, operator, left, right), "«%»"
                )
        elif is_int(left) and is_int(right):
            if left.bit_length() + right.bit_length() > MAX_BITS:
                raise SecurityError(f"tallet blir for stort (over {MAX_BITS} bit)")
        elif isinstance(left, str | bytes | list | tuple) and is_int(right):
            check_repeat(len(left), right)
            return made_value(context, super().call_binop(context, operator, left, right), "«*»")
        elif isinstance(right, str | bytes | list | tuple) and is_int(left):
            check_repeat(len(right), left)
            return made_value(context, super().call_binop(context, operator, left, right), "«*»")
        return super().call_binop(context, operator, left, right)

    def call(__self, __context: Context, __obj: Any, *args: Any, **kwargs: Any) -> Any:
        """Call from a template: a str or bytes method that would make too long a text fails,
        and so does a call that makes or is handed too heavy a container."""
        owner = getattr(__obj, "__self__", None)
        if isinstance(owner, str | bytes) or (is_int(owner) and __obj.__name__ == "to_bytes"):
            what = f"«.{__obj.__name__}()»"
            check_method(owner, __obj.__name__, args, kwargs, what)
            return made_value(__context, super().call(__context, __obj, *args, **kwargs), what)
        if type(__obj) is Macro or __obj is Cycler:
            # A macro's varargs and kwargs, and a cycler's items, are containers of what it is
            # handed: m(t, t) in a macro calling itself doubles t as [t, t] would.
            check_handed(__context, args, kwargs, f"«{getattr(__obj, 'name', 'cycler')}()»")
        made = super().call(__context, __obj, *args, **kwargs)
        if isinstance(made, CONTAINERS):  # dict(a=t, b=t), {}.fromkeys(l, t), l.copy()
            name = getattr(__obj, "__name__", "")
            weighed(__context, made, f"«.{name}()»" if owner is not None else f"«{name}()»")
        return made

    def wrap_str_format(self, value: Any) -> Callable[..., str] | None:
        """str.format and format_map, with the widths in their fields bounded."""
        wrapped = super().wrap_str_format(value)
        if wrapped is None:
            return None
        text: str = value.__self__
        formatter: SandboxedFormatter
        if isinstance(text, Markup):
            formatter = BoundedEscapeFormatter(self, escape=text.escape)
        else:
            formatter = BoundedFormatter(self)
        is_map = value.__name__ == "format_map"

        def bounded(*args: Any, **kwargs: Any) -> str:
            if is_map:
                if kwargs or len(args) != 1:
                    return wrapped(*args, **kwargs)  # its own TypeError
                kwargs = args[0]
                args = ()
            what = f"«.{value.__name__}()»"
            return checked_result(type(text)(formatter.vformat(text, args, kwargs)), what)

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
        return weighing(node, "«[ ]»")

    def visit_Tuple(self, node: nodes.Tuple) -> nodes.Node:
        self.generic_visit(node)
        if node.ctx != "load":  # {% for a, b in ... %}, {% set a, b = ... %}
            return node
        return weighing(node, "«( )»")

    def visit_Dict(self, node: nodes.Dict) -> nodes.Node:
        self.generic_visit(node)
        return weighing(node, "«{ }»")

    def visit_Assign(self, node: nodes.Assign) -> nodes.Node:
        # What a namespace keeps is what a loop's next turn can double: whatever made it,
        # it is weighed (a batch's filler, a map's default make containers of their own).
        self.generic_visit(node)
        for ref in node.target.find_all(nodes.NSRef):
            what = f"«{{% set {ref.name}.{ref.attr} %}}»"
            node.node = weighing(node.node, what, always=True)
            break
        return node


def _check_power(base: Any, exponent: Any) -> None:
    big = is_int(base) and is_int(exponent) and exponent > 0 and abs(base) > 1
    if big and (abs(base).bit_length() - 1) * exponent > MAX_BITS:
        raise SecurityError(f"tallet blir for stort (over {MAX_BITS} bit)")


def _checked(name: str, function: Callable[..., Any]) -> Callable[..., Any]:
    """A filter whose text or container, when it makes one, is refused when too long (or too
    heavy), and counted; one that writes its value out as text first has it checked before."""
    what = f"«|{name}»"
    passing = _PassArg.from_obj(function)
    stringifies = name in _STRINGIFYING

    @jinja2.pass_context
    @functools.wraps(function)
    def checked(context: Context, *args: Any, **kwargs: Any) -> Any:
        if stringifies and args and type(args[0]) is not str and too_big(args[0]):
            check_length(MAX_ITEMS + 1, what)
        if passing is None:  # most of Jinja's text filters (upper, trim): no dispatch
            return made_value(context, function(*args, **kwargs), what)
        return made_value(context, call_filter(function, passing, context, *args, **kwargs), what)

    return checked


@jinja2.pass_context
def _batch(context: Context, value: Iterable[Any], linecount: int, fill_with: Any = None) -> Any:
    if fill_with is not None and isinstance(linecount, int):
        check_length(linecount, "«|batch»")
    return each_weighed(context, JINJA_FILTERS["batch"](value, linecount, fill_with), "«|batch»")


@jinja2.pass_context
def _slice(context: Context, value: Iterable[Any], slices: int, fill_with: Any = None) -> Any:
    if isinstance(slices, int):
        check_length(slices, "«|slice»")
    made = call_filter(
        JINJA_FILTERS["slice"], _PassArg.eval_context, context, value, slices, fill_with
    )
    return each_weighed(context, made, "«|slice»")


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
        check_length(sum(len(i) for i in iterable if isinstance(i, list | tuple)), "«|sum»")
    return made_value(
        context,
        call_filter(
            JINJA_FILTERS["sum"], _PassArg.environment, context, iterable, attribute, start
        ),
        "«|sum»",
    )


_BOUNDED_FILTERS: dict[str, Callable[..., Any]] = {
    **BOUNDED_TEXT_FILTERS,
    "batch": _batch,
    "slice": _slice,
    "sum": _sum,
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
