"""Quoted-printable lines ready for SMTP."""

from __future__ import annotations

import binascii

from varsel.quoted_printable import quoted_printable_line


def test_quoted_printable_writes_a_dot_starting_a_line_as_2e() -> None:
    assert quoted_printable_line(".net") == b"=2Enet"
    # A soft line break that b2a_qp puts just before a dot: the dot starts the next line.
    encoded = quoted_printable_line("a" * 75 + ".b")
    assert encoded == b"a" * 75 + b"=\r\n=2Eb"
    assert binascii.a2b_qp(encoded.replace(b"=\r\n", b"")) == b"a" * 75 + b".b"
