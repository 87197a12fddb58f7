"""The Jinja environment that renders the templates operators write: messages, letters, Altinn.

Immutable: a template cannot change the context shared by every recipient. Sandboxed:
campaign templates are written by operators, not by us. Strict: a misspelt field is an error
at lint time, not an empty gap in 10,000 messages. Blocks leave no blank lines of their own.
"""

from __future__ import annotations

from typing import Any, TypeVar, overload

import jinja2
from jinja2.sandbox import ImmutableSandboxedEnvironment

from varsel.unit import format_orgnr

E = TypeVar("E", bound=ImmutableSandboxedEnvironment)


@overload
def operator_sandbox(*, autoescape: bool = False) -> ImmutableSandboxedEnvironment: ...


@overload
def operator_sandbox(kind: type[E], *, autoescape: bool = False) -> E: ...


def operator_sandbox(
    kind: type[Any] = ImmutableSandboxedEnvironment, *, autoescape: bool = False
) -> Any:
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
