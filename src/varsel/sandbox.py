"""The Jinja environment that renders the templates operators write: messages, letters, Altinn.

Immutable: a template cannot change the context shared by every recipient. Sandboxed:
campaign templates are written by operators, not by us. Strict: a misspelt field is an error
at lint time, not an empty gap in 10,000 messages. Blocks leave no blank lines of their own.
Bounded: a template renders in the web process too (previews, lint), so it may not take the
process's CPU or memory with one operation or loop forever.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any, TypeVar, overload

import jinja2
from jinja2 import nodes
from jinja2.exceptions import SecurityError
from jinja2.runtime import Context
from jinja2.sandbox import ImmutableSandboxedEnvironment

from varsel.unit import format_orgnr

# Loop turns a render may take in all: the sandbox's own limit on one range(), for every loop
# of a template together. A message loops over its units (hundreds at most).
MAX_LOOP_TURNS = 100_000
MAX_ITEMS = 100_000  # characters or items a repetition ("-" * 40) may make
MAX_BITS = 4096  # bits a number made by ** or * may have
_LOOP_FILTER = "varsel_loop_turns"  # not a name a template can write: Jinja's are words
_TURNS = "_varsel_loop_turns"  # where a render's count is kept, on its Context


class OperatorSandbox(ImmutableSandboxedEnvironment):
    """The immutable sandbox, with limits on the work one render can do."""

    # 9 ** 99999999 holds the GIL for minutes: every thread of the web process stops with it.
    intercepted_binops = frozenset({"**", "*"})

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.filters[_LOOP_FILTER] = _loop_turns
        # Placeholder text has no place in a message, and lipsum(1, min=10**9) makes a gigabyte.
        self.globals.pop("lipsum", None)

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        if operator == "**":
            _check_power(left, right)
        elif _is_int(left) and _is_int(right):
            if left.bit_length() + right.bit_length() > MAX_BITS:
                raise SecurityError(f"tallet blir for stort (over {MAX_BITS} bit)")
        elif isinstance(left, str | list | tuple) and _is_int(right):
            _check_repeat(len(left), right)
        elif isinstance(right, str | list | tuple) and _is_int(left):
            _check_repeat(len(right), left)
        return super().call_binop(context, operator, left, right)

    def _parse(self, source: str, name: str | None, filename: str | None) -> nodes.Template:
        tree = super()._parse(source, name, filename)
        # Every loop counts its turns: loops inside loops multiply, and range() alone does not
        # bound them (range(100000) in range(100000) is 10 ** 10 turns).
        for loop in tree.find_all(nodes.For):
            loop.iter = nodes.Filter(loop.iter, _LOOP_FILTER, [], [], None, None)
            loop.iter.set_lineno(loop.lineno)
        return tree


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _check_power(base: Any, exponent: Any) -> None:
    big = _is_int(base) and _is_int(exponent) and exponent > 0 and abs(base) > 1
    if big and (abs(base).bit_length() - 1) * exponent > MAX_BITS:
        raise SecurityError(f"tallet blir for stort (over {MAX_BITS} bit)")


def _check_repeat(length: int, times: int) -> None:
    if length * times > MAX_ITEMS:
        raise SecurityError(f"teksten eller listen blir for lang (over {MAX_ITEMS})")


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
