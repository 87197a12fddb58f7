"""What the SMTP relay says: its replies, parsed as they come, and how a transaction ended."""

from __future__ import annotations

import asyncio
import collections
import re
from dataclasses import dataclass
from enum import StrEnum
from typing import cast

# RFC 3463: class.subject.detail at the start of the text; the class repeats the reply's.
_ENHANCED = re.compile(rb"([245])\.(\d{1,3})\.(\d{1,3})(?= |$)")
# A relay answers MAIL, RCPT and DATA with the same line every time: parsed once, those replies
# are looked up. The first few single-line replies are kept; unique ones (queue ids) don't matter.
_KNOWN_REPLIES = 16
# A reply line longer than this is not SMTP (RFC 5321 allows 512 octets).
_LINE_LIMIT = 64 * 1024


class ReplyKind(StrEnum):
    """What a reply means for the message."""

    ACCEPTED = "accepted"  # 2xx: the relay took responsibility for the message
    TRANSIENT = "transient"  # 4xx, or the connection failed: try again later
    PERMANENT = "permanent"  # 5xx: this relay will never take it; do not retry as it is


@dataclass(frozen=True, slots=True)
class SmtpReply:
    """One reply from the relay: code, RFC 3463 enhanced code if given, and text."""

    code: int
    enhanced: str | None
    text: str

    @property
    def kind(self) -> ReplyKind:
        if self.code < 400:
            return ReplyKind.ACCEPTED
        if self.code < 500:
            return ReplyKind.TRANSIENT
        return ReplyKind.PERMANENT

    def __str__(self) -> str:
        enhanced = f"{self.enhanced} " if self.enhanced else ""
        return f"{self.code} {enhanced}{self.text}".rstrip()


@dataclass(frozen=True, slots=True)
class SendOutcome:
    """How one message's transaction ended."""

    reply: SmtpReply | None  # the final reply (after DATA), or the first refusing one
    data_sent: bool  # the final "." was written: a lost connection now leaves it in doubt
    error: str | None  # the connection failed (timeout, reset, TLS) before a reply came
    # The relay refused MAIL FROM: our envelope sender, the same for every message, so the
    # refusal is about the relay and us, never about this recipient.
    sender_refused: bool = False
    # The relay refused RCPT TO: its reply is about this recipient, or the recipient's domain.
    recipient_refused: bool = False

    @property
    def kind(self) -> ReplyKind:
        return ReplyKind.TRANSIENT if self.reply is None else self.reply.kind

    @property
    def domain_throttled(self) -> bool:
        """The relay closed the session on the recipient (421 to RCPT TO, not a 4.3.x status):
        a per-domain rate limit, its own or the receiving server's (Gmail's and Yahoo's
        `421 4.7.0`), so the recipient's domain waits, not the whole send."""
        reply = self.reply
        return (
            reply is not None
            and self.recipient_refused
            and reply.code == 421
            and not (reply.enhanced or "").startswith("4.3.")
        )

    @property
    def relay_trouble(self) -> bool:
        """The relay, not the recipient, kept the message back: its connection, not its word
        on the address (no reply, 421 but to a recipient, a refused sender, or a 4.3.x
        mail-system status)."""
        reply = self.reply
        if reply is None:
            return True
        if reply.code < 400 or self.domain_throttled:
            return False
        return (
            self.sender_refused
            or reply.code == 421
            or (reply.code < 500 and (reply.enhanced or "").startswith("4.3."))
        )

    @property
    def in_doubt(self) -> bool:
        """The relay may have taken the message, but never said so."""
        return self.reply is None and self.data_sent


class ProtocolError(Exception):
    """The relay said something that is not SMTP."""


class Replies(asyncio.Protocol):
    """The relay's side of a connection: every reply in the bytes read, parsed as they come.

    One read often holds several replies (with PIPELINING, the last message's final reply and
    the next message's three envelope replies arrive together): they are all parsed in one
    call and queued, so the sender takes them without a coroutine or a wake-up per line.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.transport: asyncio.Transport | None = None
        self.replies: collections.deque[SmtpReply] = collections.deque()
        # Set once nothing more will come: the connection was lost, or the relay broke SMTP;
        # the replies before it are still read first.
        self.error: BaseException | None = None
        self.waiter: asyncio.Future[None] | None = None  # a reader waiting for a reply
        self.known: dict[bytes, SmtpReply] = {}
        self._partial = b""  # the start of a line whose end has not come yet
        self._lines: list[bytes] = []  # the lines so far of a multi-line reply
        self._paused = False
        self._drained: asyncio.Future[None] | None = None
        self.lost: asyncio.Future[None] = loop.create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # A stream transport (uvloop's is one without deriving from asyncio.Transport, so no
        # isinstance check: an exception here would leave the connection waiting forever).
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        if self.error is not None:
            return
        if self._partial:
            data = self._partial + data
        lines = data.split(b"\n")
        self._partial = lines.pop()  # b"" when the data ends a line
        known, replies = self.known, self.replies
        for line in lines:
            reply = None if self._lines else known.get(line)
            if reply is not None:
                replies.append(reply)
                continue
            try:
                self._line(line)
            except ProtocolError as e:
                self._fail(e)
                break
        if len(self._partial) > _LINE_LIMIT and self.error is None:
            self._fail(asyncio.LimitOverrunError("for lang svarlinje", len(self._partial)))
        self._wake()

    def _line(self, line: bytes) -> None:
        """One line that is not a known reply: a reply of its own, or part of one."""
        key, line = line, line + b"\n"  # as it came, for what an error message shows
        code = _code(line)
        if self._lines and _code(self._lines[0]) != code:
            raise ProtocolError(f"ugyldig flerlinjesvar fra SMTP-tjeneren: {line[:80]!r}")
        if line[3:4] == b"-":
            self._lines.append(line)
            return
        if self._lines:
            self._lines.append(line)
            lines, self._lines = self._lines, []
            self.replies.append(_reply(code, lines))
            return
        reply = _reply(code, [line])
        if len(self.known) < _KNOWN_REPLIES:
            self.known[key] = reply
        self.replies.append(reply)

    def has_partial(self) -> bool:
        """Whether part of a reply has come (bytes not yet a whole reply)."""
        return bool(self._partial or self._lines)

    def _fail(self, error: BaseException) -> None:
        self.error = error
        if self.transport is not None:
            self.transport.abort()

    def _wake(self) -> None:
        waiter = self.waiter
        if waiter is not None:
            self.waiter = None
            if not waiter.done():
                waiter.set_result(None)

    def eof_received(self) -> bool:
        if self.error is None:
            self.error = asyncio.IncompleteReadError(self._partial, None)
        self._wake()
        return False  # the transport closes itself

    def connection_lost(self, exc: Exception | None) -> None:
        if self.error is None:
            self.error = exc if exc is not None else asyncio.IncompleteReadError(b"", None)
        self._wake()
        drained, self._drained = self._drained, None
        if drained is not None and not drained.done():
            drained.set_exception(self.error)
        if not self.lost.done():
            self.lost.set_result(None)

    def pause_writing(self) -> None:
        self._paused = True

    def resume_writing(self) -> None:
        self._paused = False
        drained, self._drained = self._drained, None
        if drained is not None and not drained.done():
            drained.set_result(None)

    async def drain(self) -> None:
        """Wait while the transport holds more than its high-water mark."""
        if self.error is not None:
            raise self.error
        if self._paused:
            self._drained = self.loop.create_future()
            await self._drained

    async def reply(self) -> SmtpReply:
        """The next reply; raises what ended the connection once none is left."""
        replies = self.replies
        while not replies:
            if self.error is not None:
                raise self.error
            self.waiter = self.loop.create_future()
            await self.waiter
        return replies.popleft()


def _code(line: bytes) -> int:
    head = line[:3]
    if not (head.isdigit() and line[3:4] in (b" ", b"-", b"\r", b"\n") and b"2" <= head < b"6"):
        raise ProtocolError(f"ugyldig svar fra SMTP-tjeneren: {line[:80]!r}")
    return int(head)


def _reply(code: int, lines: list[bytes]) -> SmtpReply:
    texts = [line[4:].rstrip(b"\r\n") for line in lines]
    enhanced = None
    match = _ENHANCED.match(texts[0])
    if match is not None and match[1][0] == code // 100 + 48:  # the same class digit
        found = match[0]
        enhanced = found.decode()
        skip = len(found) + 1
        texts = [text[skip:] if text.startswith(found) else text for text in texts]
    return SmtpReply(code, enhanced, b"\n".join(texts).decode("utf-8", "replace"))
