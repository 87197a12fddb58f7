"""Numbers as people and files write them: the ASCII digits 0-9 and nothing else."""

from __future__ import annotations


def ascii_digits(text: str) -> bool:
    """Whether text is one or more of 0-9.

    str.isdigit alone also takes «²» and other digits, which int() does not read («²») or which
    no number in a form, file or link of ours is written with: checked so, they became server
    errors and tracebacks.
    """
    return text.isascii() and text.isdigit()
