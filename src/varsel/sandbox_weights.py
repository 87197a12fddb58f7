"""How heavy a container an operator's template may make: lists, tuples and dicts weighed.

Every list, tuple or dict a template makes has a weight, the items it holds with a container
inside it counted whole each time it is held: [t, t] forty times over is forty short lists but
2 ** 40 items to compare, hash or sort in C, so a container is refused when its weight passes
MAX_ITEMS. The heavier ones count against what one render may make in all (MAX_MADE).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from itertools import chain
from typing import Any, TypeVar

import jinja2
from jinja2 import nodes
from jinja2.exceptions import SecurityError
from jinja2.runtime import Context

from varsel.sandbox_texts import MAX_ITEMS, made_text, spend

WEIGH_FILTER = "varsel_weighed"  # not a name a template can write: Jinja's are words
_WEIGHTS = "_varsel_weights"  # where a render's weights of containers are kept, by id
CONTAINERS = (list, tuple, dict, set, frozenset)
# Containers that weigh this much or more are remembered for the render, and counted against its
# MAX_MADE (which bounds what is kept). A lighter one costs less to weigh again than to keep.
_KEPT = 64
V = TypeVar("V")


def _constant(node: nodes.Node) -> bool:
    """Whether node is a literal of constants only ([1, "a"]): it holds no container twice."""
    if isinstance(node, nodes.Const):
        return True
    if isinstance(node, nodes.Pair):
        return _constant(node.key) and _constant(node.value)
    return isinstance(node, nodes.List | nodes.Tuple | nodes.Dict) and all(
        _constant(item) for item in node.items
    )


def weighing(node: nodes.Node, what: str, *, always: bool = False) -> nodes.Node:
    """node, weighed by a filter as it is made, unless it is a literal of constants."""
    if not always and _constant(node):
        return node
    weighed = nodes.Filter(node, WEIGH_FILTER, [nodes.Const(what)], [], None, None)
    weighed.set_lineno(node.lineno)
    return weighed


def made_value(context: Context, value: V, what: str) -> V:
    """value, refused when too long a text or too heavy a container, and counted against the
    render's MAX_MADE."""
    if isinstance(value, CONTAINERS):
        return weighed(context, value, what)
    return made_text(context, value, what)


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
        if not any(issubclass(kind, CONTAINERS) for kind in kinds):
            items = ()
        elif isinstance(value, dict):
            items = chain(value, value.values())
    for item in items:
        if isinstance(item, CONTAINERS):
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


def weighed(context: Context, value: V, what: str) -> V:
    """A container just made, refused when it weighs over MAX_ITEMS, and counted."""
    known = _known(context)
    if id(value) in known:  # weighed and counted already: {% set ns.t = t %}
        return value
    weight = _weight(value, known)
    if weight > MAX_ITEMS:
        raise _too_heavy(what)
    if weight >= _KEPT:
        spend(context, weight)
    return value


@jinja2.pass_context
def weighed_filter(context: Context, value: V, what: str) -> V:
    """A container a template writes ([a, b]) or keeps in a namespace, weighed."""
    if isinstance(value, CONTAINERS):
        weighed(context, value, what)
    return value


def check_handed(
    context: Context, args: tuple[Any, ...], kwargs: dict[str, Any], what: str
) -> None:
    """SecurityError when what a call is handed, together, weighs over MAX_ITEMS."""
    known = _known(context)
    total = len(args) + len(kwargs)
    for item in chain(args, kwargs.values()):
        if isinstance(item, CONTAINERS):
            total += _weight(item, known)
            if total > MAX_ITEMS:
                raise _too_heavy(what)


def each_weighed(context: Context, lists: Iterable[list[Any]], what: str) -> Iterator[list[Any]]:
    """The lists a batch or slice makes, each weighed: its fill_with may be a list, many times."""
    for made in lists:
        yield weighed(context, made, what)
