"""A returned message read as it was written: headers, text parts and report fields.

Headers with raw 8-bit bytes (UTF-8, else Windows-1252) or broken encoded words, text parts in
their charsets (not those of a returned original), the field blocks of a delivery-status or
feedback report, and the address of a recipient field. `bounce_classify` decides what it means.
"""

from __future__ import annotations

import email.errors
import email.header
import email.message
import email.parser
import email.utils
import re


def report_fields(report: email.message.Message) -> list[dict[str, str]]:
    """The field blocks of a message/delivery-status or message/feedback-report part."""
    payload = report.get_payload()
    if isinstance(payload, list):
        blocks = [b for b in payload if isinstance(b, email.message.Message)]
    else:
        # message/global-delivery-status and unknown message/* types arrive as text.
        text = decoded(report)
        blocks = [
            email.parser.HeaderParser().parsestr(chunk.strip() + "\n")
            for chunk in re.split(r"\r?\n\s*\r?\n", text)
            if chunk.strip()
        ]
    return [_lowered(b) for b in blocks]


def _lowered(block: email.message.Message) -> dict[str, str]:
    out: dict[str, str] = {}
    for name, value in block.items():
        out.setdefault(name.lower(), " ".join(str(value).split()))
    return out


def header(msg: email.message.Message, name: str) -> str | None:
    """A header's value decoded (encoded words, raw 8-bit bytes); None if absent."""
    value = msg.get(name)
    if value is None:
        return None
    text = _eight_bit(value) if isinstance(value, email.header.Header) else str(value)
    try:
        return str(email.header.make_header(email.header.decode_header(text)))
    except (ValueError, LookupError, email.errors.MessageError):
        # A charset name that is no name (8-bit bytes or NUL in it) is as broken as bad MIME.
        return text


def _eight_bit(value: email.header.Header) -> str:
    """A header sent with raw 8-bit bytes: UTF-8 (RFC 6532), else Windows-1252.

    The parser keeps such bytes as unknown-8bit, and str() turns each into U+FFFD, so that
    «Fraværsmelding» would not read as an auto-reply, nor any diagnostic as written.
    """
    out: list[str] = []
    for chunk, charset in email.header.decode_header(value):
        if isinstance(chunk, str):
            out.append(chunk)
            continue
        try:
            out.append(chunk.decode("utf-8" if charset in (None, "unknown-8bit") else charset))
        except (ValueError, LookupError):
            out.append(chunk.decode("cp1252", "replace"))
    return "".join(out)


def from_address(msg: email.message.Message) -> str | None:
    """The From address, lower case; None if there is none."""
    address = email.utils.parseaddr(header(msg, "From") or "")[1]
    return address.lower() or None


def address_of(field: str) -> str | None:
    """The address of an RFC 3464 recipient field (`rfc822; a@b`)."""
    value = field.partition(";")[2] if ";" in field else field
    value = value.strip().strip("<>").strip()
    return value.lower() if "@" in value else None


def decoded(part: email.message.Message) -> str:
    """A part's payload as text, in its charset (UTF-8 if unknown)."""
    data = part.get_payload(decode=True)
    if not isinstance(data, bytes):
        payload = part.get_payload()
        return payload if isinstance(payload, str) else ""
    charset = part.get_content_charset() or "utf-8"
    try:
        return data.decode(charset, "replace")
    except LookupError:
        return data.decode("utf-8", "replace")


def readable_text(msg: email.message.Message) -> str:
    """The readable text parts, not those of a returned original."""
    out: list[str] = []
    for part in own_parts(msg):
        if (
            part.get_content_maintype() == "text"
            and part.get_content_type() != "text/rfc822-headers"
        ):
            out.append(decoded(part))
    return "\n".join(out)


def own_parts(msg: email.message.Message) -> list[email.message.Message]:
    """The leaf parts of the message itself, not those of a returned original."""
    if not msg.is_multipart():
        return [msg]
    parts: list[email.message.Message] = []
    for part in msg.get_payload():
        if (
            not isinstance(part, email.message.Message)
            or part.get_content_type() == "message/rfc822"
        ):
            continue
        parts += own_parts(part)
    return parts
