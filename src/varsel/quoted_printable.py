"""Quoted-printable bodies ready for SMTP and for DKIM's relaxed canonicalisation."""

from __future__ import annotations

import binascii

_QP_WIDTH = 76  # RFC 2045: encoded lines of at most 76 characters


def quoted_printable_line(line: str) -> bytes:
    """One line (no line break) as quoted-printable, soft breaks CRLF, in relaxed DKIM form.

    No physical line of the result starts with ".": messages leave the factory ready for SMTP,
    and the SMTP client sends them without scanning them for dots to double.
    """
    if (
        len(line) < _QP_WIDTH
        and line.isascii()
        and line.isprintable()
        and "=" not in line
        and "  " not in line
        and line[:1] != "."
        and line[-1:] != " "
    ):
        # Printable ASCII that needs no escape, no soft break and nothing for DKIM: itself.
        # The usual line naming a recipient (code, address, link), at a tenth of the cost.
        return line.encode("ascii")
    encoded = binascii.b2a_qp(line.encode("utf-8"), istext=True)
    if b"\t" in encoded or b"  " in encoded:
        # Tabs and double spaces would change under DKIM's relaxed canonicalisation; encoded as
        # =09 and =20 they survive it, and the body needs no canonicalising before hashing.
        encoded = binascii.b2a_qp(line.encode("utf-8"), quotetabs=True, istext=True)
    # With no line break in its input b2a_qp breaks long lines with a bare LF.
    if b"\n" in encoded:
        encoded = encoded.replace(b"=\n", b"=\r\n")
        if b"\n." in encoded:
            return _without_leading_dots(encoded)
    return _without_leading_dots(encoded) if encoded[:1] == b"." else encoded


def _without_leading_dots(encoded: bytes) -> bytes:
    """Quoted-printable wrapped again so that a "." starting a physical line is written =2E."""
    flat = encoded.replace(b"=\r\n", b"")
    tokens = []  # one character, or one =XX escape: never split by a soft break
    i = 0
    while i < len(flat):
        step = 3 if flat[i] == 61 else 1  # "="
        tokens.append(flat[i : i + step])
        i += step
    lines, line = [], b""
    for token in tokens:
        if len(line) + len(token) > _QP_WIDTH - 1:  # room for the soft break's "="
            lines.append(line + b"=")
            line = b""
        line += b"=2E" if not line and token == b"." else token
    lines.append(line)
    return b"\r\n".join(lines)


class QuotedPrintable:
    """UTF-8 quoted-printable with CRLF line ends, lines of at most 76 characters."""

    # Quoted-printable encodes each line on its own, and most lines of a campaign's messages
    # are the same for every recipient: caching lines makes encoding a message a few lookups.
    _MAX_CACHED = 8192

    def __init__(self) -> None:
        self._lines: dict[str, bytes] = {}

    def encode(self, text: str) -> bytes:
        if "\r" in text:
            text = text.replace("\r\n", "\n").replace("\r", "\n")
        lines = text.split("\n")
        if lines[-1] == "":
            lines.pop()
        cache = self._lines
        # Looked up in C (map, the None test, join); only the lines not seen before, those
        # that name the recipient, take a turn in Python.
        out = list(map(cache.get, lines))
        if None in out:
            if len(cache) >= self._MAX_CACHED:
                cache.clear()  # lines naming one recipient never come back
            for i, encoded in enumerate(out):
                if encoded is None:
                    line = lines[i]
                    out[i] = cache[line] = quoted_printable_line(line)
        out.append(b"")
        # "=" is always encoded (as =3D), so a boundary starting with "=_" never occurs in a part.
        return b"\r\n".join(out)  # type: ignore[arg-type]  # no None is left
