"""The SMTP channel: a lean asyncio client that hands one message per transaction to a relay."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import ipaddress
import ssl
from collections.abc import Awaitable, Callable

import numpy as np

from varsel.channel.smtp_relay import BAD_ADDRESS, RelayConfig
from varsel.channel.smtp_replies import ProtocolError, Replies, SendOutcome, SmtpReply
from varsel.errors import Text, VarselError, os_reason

# A message this small is joined with its terminating dot and written in one go: one segment
# on the wire instead of two, at the price of one copy of a few kilobytes.
_JOIN_LIMIT = 64 * 1024
_CHECK_CHUNK = 1 << 20
# QUIT is a courtesy: a relay that does not answer it promptly is not waited for.
_QUIT_TIMEOUT = 5.0


# How a connection's error names its relay: "<relay>: <reason>" or "<relay> <reason>". No
# catalog has these ids: gettext gives them back as they are, and the reason is translated.
_AT = "%(where)s: %(reason)s"
_BY = "%(where)s %(reason)s"


class SmtpConnectError(VarselError):
    """The SMTP relay could not be reached or refused the session."""

    def __init__(
        self, where: str, reason: str, reply: SmtpReply | None = None, *, joined: str = _AT
    ) -> None:
        super().__init__(Text(joined, where=where, reason=reason))
        # Without the relay, for a line that names it already (a Text, translated as it is).
        self.reason = reason
        self.reply = reply


class _Broken(Exception):
    """The connection is unusable; the text says why."""


# Everything the network or a misbehaving relay can throw at a read or write.
_BROKEN = (OSError, EOFError, asyncio.LimitOverrunError, ProtocolError, _Broken)


class SmtpConnection:
    """One open session with the relay; send messages one after another over it."""

    extensions: dict[str, str]
    pipelining: bool

    def __init__(
        self, config: RelayConfig, transport: asyncio.Transport, protocol: Replies
    ) -> None:
        self._config = config
        self._transport = transport
        self._protocol = protocol
        self._timeout = config.timeout
        self.extensions = {}
        self.pipelining = False
        self.closed = False
        self._loop = asyncio.get_running_loop()
        self._timed_out: TimeoutError | None = None
        self._deadline: float | None = None  # when the relay's awaited answer is overdue
        self._timer: asyncio.TimerHandle | None = None
        # The message (from, to, data) whose envelope went out with the last final dot, its
        # replies not read yet.
        self._pending: tuple[str, str, bytes] | None = None

    @classmethod
    async def open(cls, config: RelayConfig) -> SmtpConnection:
        """Connect, greet, secure and log in; raises SmtpConnectError with the relay's reason."""
        where = config.redacted()
        if config.username is not None and config.security == "none" and not _loopback(config):
            raise SmtpConnectError(
                where,
                Text(
                    "sender ikke passord over en ukryptert forbindelse; "
                    "bruk smtp+starttls:// eller smtps://"
                ),
            )
        try:
            context = config.ssl_context if config.security != "none" else None
        except OSError as e:
            raise SmtpConnectError(
                where,
                Text(
                    "kan ikke lese CA-filen %(file)s: %(why)s",
                    file=config.ca_file,
                    why=os_reason(e),
                ),
            ) from None
        implicit = config.security == "tls"
        loop = asyncio.get_running_loop()
        protocol = Replies(loop)
        try:
            async with asyncio.timeout(config.timeout):
                transport, _ = await loop.create_connection(
                    lambda: protocol,
                    config.host,
                    config.port,
                    ssl=context if implicit else None,
                    server_hostname=config.host if implicit else None,
                )
        except OSError as e:
            # A refused or unreachable connect was never made, so _describe's "forbindelsen ble
            # brutt" would be wrong here (and say it twice): the system's own reason will do.
            why = os_reason(e) if isinstance(e, ConnectionError) else _describe(e, config.timeout)
            raise SmtpConnectError(where, Text("kunne ikke koble til: %(why)s", why=why)) from None
        connection = cls(config, transport, protocol)
        try:
            async with asyncio.timeout(config.timeout):
                await connection._handshake(context)
        except SmtpConnectError:
            connection._abort()
            raise
        except _BROKEN as e:
            connection._abort()
            why = _describe(e, config.timeout)
            raise SmtpConnectError(where, why) from None
        except BaseException:
            connection._abort()
            raise
        return connection

    async def send(
        self,
        mail_from: str,
        rcpt_to: str,
        data: bytes,
        *,
        before_data_end: Callable[[], Awaitable[None]] | None = None,
        then: tuple[str, str, bytes] | None = None,
        smtp_ready: bool = False,
    ) -> SendOutcome:
        """Send one message to one recipient; never raises for what the relay or network does.

        `then` is the next message (from, to, data) this connection will send: with PIPELINING
        its MAIL, RCPT and DATA go out with this message's final dot (RFC 2920 lets commands
        follow the end of data in one group), and the next send() must be that message.
        `smtp_ready` is the caller's promise that data has CRLF line ends only, no line that
        starts with "." and a final CRLF (MessageFactory builds them so): it is sent unscanned.
        """
        if self.closed:
            return SendOutcome(None, False, Text("forbindelsen til SMTP-tjeneren er lukket"))
        pending, self._pending = self._pending, None
        if pending is None:
            envelope = self._envelope_commands(mail_from, rcpt_to, data)
        elif pending[0] == mail_from and pending[1] == rcpt_to and pending[2] is data:
            envelope = b""  # on the wire already
        else:
            self._abort()
            raise RuntimeError("send() må sende meldingen som ble varslet med then=")
        if smtp_ready:
            body, tail = data, b".\r\n" if data.endswith(b"\r\n") else b"\r\n.\r\n"
        else:
            body, tail = _dot_stuff(data)
        ahead = b""
        if then is not None and self.pipelining:
            with contextlib.suppress(ValueError):  # an unsendable next message goes alone
                ahead = self._envelope_commands(*then)
        transport, protocol = self._transport, self._protocol
        data_sent = False
        self._arm()
        try:
            refusal = await self._envelope(envelope)
            if refusal is not None:
                return await self._refused(*refusal)
            if len(body) > _JOIN_LIMIT:
                transport.write(body)
                # Waits only while the transport holds more than its high-water mark: large
                # bodies are paced, and a relay that hangs up mid-body is seen before the dot.
                await protocol.drain()
            else:
                tail = body + tail
            if before_data_end is not None:
                self._deadline = None  # the caller's time, not the relay's
                await before_data_end()
                # A transport that lost its connection drops writes silently: check, so that
                # a dot that never left is not reported as sent.
                if protocol.error is not None or transport.is_closing():
                    raise _Broken(Text("SMTP-tjeneren lukket forbindelsen før meldingen var sendt"))
                self._arm()
            # One write: the (rest of the) body, the dot and the next message's envelope.
            transport.write(tail + ahead if ahead else tail)
            data_sent = True
            if ahead:
                self._pending = then
            replies = protocol.replies
            return self._final(replies.popleft() if replies else await protocol.reply())
        except _BROKEN as e:
            self._abort()
            return SendOutcome(None, data_sent, _describe(self._timed_out or e, self._timeout))
        except BaseException:
            # Cancelled, or before_data_end failed: without the dot the relay drops the
            # message, so aborting here keeps the promise that nothing unrecorded goes out.
            self._abort()
            raise
        finally:
            self._deadline = None

    async def reset(self) -> None:
        """Abandon any transaction in progress (RSET); a failure closes the connection."""
        if self.closed:
            return
        if self._pending is not None:
            self._abort()  # the relay may be reading a body: only hanging up ends it unsent
            return
        try:
            async with asyncio.timeout(self._timeout):
                reply = await self._command(b"RSET\r\n")
        except _BROKEN:
            self._abort()
            return
        if reply.code != 250:
            self._abort()

    async def close(self) -> None:
        """Say QUIT and close; failures only mean the connection was already gone."""
        if self.closed:
            return
        if self._pending is not None:
            self._abort()  # the relay may be reading a body: QUIT would be taken as its text
            return
        self.closed = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        try:
            async with asyncio.timeout(min(self._timeout, _QUIT_TIMEOUT)):
                await self._command(b"QUIT\r\n")
                self._transport.close()
                await self._protocol.lost
        except BaseException as e:
            # The relay is gone or slow to part (a TLS close waits for its close_notify):
            # drop the connection without ceremony, so no transport is left half open.
            self._transport.abort()
            if not isinstance(e, _BROKEN):
                raise

    # The transaction

    def _envelope_commands(self, mail_from: str, rcpt_to: str, data: bytes) -> bytes:
        """MAIL FROM, RCPT TO and DATA for one message; ValueError if it cannot go over SMTP."""
        params = b""
        if "SIZE" in self.extensions:
            params = b" SIZE=%d" % len(data)
        if not data.isascii():
            if "8BITMIME" not in self.extensions:
                raise ValueError("meldingen har 8-biters tegn, og tjeneren tilbyr ikke 8BITMIME")
            params += b" BODY=8BITMIME"
        return b"MAIL FROM:<%b>%b\r\nRCPT TO:<%b>\r\nDATA\r\n" % (
            _address(mail_from, allow_empty=True),
            params,
            _address(rcpt_to),
        )

    async def _envelope(self, commands: bytes) -> tuple[SmtpReply, int] | None:
        """MAIL, RCPT and DATA (empty: on the wire already); None when the relay is ready for
        the body, else its refusal and the command refused (0 MAIL, 1 RCPT, 2 DATA)."""
        write = self._transport.write
        protocol = self._protocol
        if self.pipelining:
            # RFC 2920: the group ends with DATA, and the body waits for its 354. The group may
            # be on the wire already, sent with the previous message's final dot.
            if commands:
                write(commands)
            queued = protocol.replies
            if len(queued) >= 3:  # the usual case: all three came in one read, parsed already
                replies = [queued.popleft(), queued.popleft(), queued.popleft()]
                if replies[0].code == 250 and replies[1].code == 250 and replies[2].code == 354:
                    return None
            else:
                replies = []
            for number, reply in enumerate(replies):
                if reply.code == 421:  # the relay is closing: the rest does not matter
                    return reply, number
            while len(replies) < 3:
                reply = queued.popleft() if queued else await protocol.reply()
                replies.append(reply)
                if reply.code == 421:  # the relay is closing: the rest will not come
                    return reply, len(replies) - 1
            refused = next((i for i in (0, 1) if replies[i].code // 100 != 2), None)
            if replies[2].code == 354:
                if refused is None:
                    return None
                # A relay that took DATA after refusing every recipient still needs its dot.
                write(b".\r\n")
                await protocol.reply()
            return (replies[2], 2) if refused is None else (replies[refused], refused)
        mail, rcpt, data = commands.split(b"\r\n")[:3]
        for number, command in enumerate((mail, rcpt)):
            write(command + b"\r\n")
            reply = await self._read_reply()
            if reply.code // 100 != 2:
                return reply, number
        write(data + b"\r\n")
        reply = await self._read_reply()
        return None if reply.code == 354 else (reply, 2)

    async def _refused(self, reply: SmtpReply, command: int) -> SendOutcome:
        if reply.code == 421:
            self._abort()
        else:
            # Leaves the connection ready for the next message.
            await self.reset()
        return SendOutcome(
            reply, False, None, sender_refused=command == 0, recipient_refused=command == 1
        )

    def _final(self, reply: SmtpReply) -> SendOutcome:
        if reply.code == 421:
            self._abort()
        elif reply.code < 200 or 300 <= reply.code < 400:
            raise ProtocolError(f"uventet svar på slutten av DATA: {reply}")
        return SendOutcome(reply, True, None)

    # The session

    async def _handshake(self, context: ssl.SSLContext | None) -> None:
        where = self._config.redacted()
        banner = await self._read_reply()
        if banner.code != 220:
            raise SmtpConnectError(
                where, Text("tar ikke imot post: %(reply)s", reply=str(banner)), banner, joined=_BY
            )
        await self._hello()
        if context is not None and self._config.security == "starttls":
            if "STARTTLS" not in self.extensions:
                raise SmtpConnectError(where, Text("tilbyr ikke STARTTLS"), joined=_BY)
            reply = await self._command(b"STARTTLS\r\n")
            if reply.code != 220:
                raise SmtpConnectError(
                    where,
                    Text("avviste STARTTLS: %(reply)s", reply=str(reply)),
                    reply,
                    joined=_BY,
                )
            # Anything already buffered was sent in clear text after the 220 and would be read
            # as if it came over TLS (the STARTTLS command injection attack): refuse it.
            protocol = self._protocol
            if protocol.replies or protocol.has_partial():
                raise SmtpConnectError(
                    where, Text("sendte data i klartekst etter STARTTLS"), joined=_BY
                )
            transport = await self._loop.start_tls(
                self._transport, protocol, context, server_hostname=self._config.host
            )
            if transport is None:
                raise _Broken(Text("forbindelsen ble lukket under STARTTLS"))
            self._transport = protocol.transport = transport
            await self._hello()
        if self._config.username is not None and self._config.password is not None:
            await self._login(self._config.username.encode(), self._config.password.encode())

    async def _hello(self) -> None:
        helo = self._config.helo_name.encode("ascii")
        reply = await self._command(b"EHLO %b\r\n" % helo)
        extensions: dict[str, str] = {}
        if reply.code == 250:
            for line in reply.text.split("\n")[1:]:
                keyword, _, params = line.strip().partition(" ")
                if keyword.upper().startswith("AUTH="):  # the pre-RFC 4954 form some still send
                    keyword, params = "AUTH", f"{extensions.get('AUTH', '')} {keyword[5:]}"
                extensions[keyword.upper()] = params.strip()
        elif reply.code >= 500:
            # An old relay without ESMTP: plain HELO, no extensions, no pipelining.
            reply = await self._command(b"HELO %b\r\n" % helo)
        if reply.code != 250:
            where = self._config.redacted()
            raise SmtpConnectError(
                where, Text("avviste hilsenen: %(reply)s", reply=str(reply)), reply, joined=_BY
            )
        self.extensions = extensions
        self.pipelining = "PIPELINING" in extensions

    async def _login(self, user: bytes, password: bytes) -> None:
        where = self._config.redacted()
        mechanisms = self.extensions.get("AUTH", "").upper().split()
        if "PLAIN" in mechanisms:
            token = base64.b64encode(b"\0%b\0%b" % (user, password))
            reply = await self._command(b"AUTH PLAIN %b\r\n" % token)
        elif "LOGIN" in mechanisms:
            reply = await self._command(b"AUTH LOGIN\r\n")
            for secret in (user, password):
                if reply.code != 334:
                    break
                reply = await self._command(base64.b64encode(secret) + b"\r\n")
        else:
            raise SmtpConnectError(
                where, Text("tilbyr verken AUTH PLAIN eller AUTH LOGIN"), joined=_BY
            )
        if reply.code != 235:
            raise SmtpConnectError(
                where,
                Text("godtok ikke påloggingen: %(reply)s", reply=str(reply)),
                reply,
                joined=_BY,
            )

    async def _command(self, line: bytes) -> SmtpReply:
        self._transport.write(line)
        return await self._read_reply()

    async def _read_reply(self) -> SmtpReply:
        return await self._protocol.reply()

    def _abort(self) -> None:
        self.closed = True
        self._pending = None
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._transport.abort()

    def _arm(self) -> None:
        """Start the clock on the relay: it has `timeout` seconds from now to answer."""
        # One lazy timer per connection instead of one per wait: setting a deadline costs a
        # clock read, and the timer, when it fires early, sleeps again until the deadline.
        self._deadline = deadline = self._loop.time() + self._timeout
        if self._timer is None:
            self._timer = self._loop.call_at(deadline, self._check_deadline)

    def _check_deadline(self) -> None:
        self._timer = None
        deadline = self._deadline
        if deadline is None or self.closed:
            return  # nothing awaited now; the next wait starts the timer again
        if self._loop.time() < deadline:
            self._timer = self._loop.call_at(deadline, self._check_deadline)
            return
        self._expire()

    def _expire(self) -> None:
        self._timed_out = TimeoutError()
        self._abort()


def _address(address: str, *, allow_empty: bool = False) -> bytes:
    # Contacts are normalised before they reach the outbox; anything else is a bug upstream,
    # and a CR or LF here would smuggle commands into the session.
    if (not address and not allow_empty) or BAD_ADDRESS.search(address):
        raise ValueError(f"ugyldig e-postadresse for SMTP: {address!r}")
    if not address.isascii():
        raise ValueError(f"e-postadressen har tegn utenfor ASCII (trenger SMTPUTF8): {address!r}")
    return address.encode("ascii")


def _dot_stuff(data: bytes) -> tuple[bytes, bytes]:
    """The body with CRLF line ends and leading dots doubled, and the tail that ends DATA."""
    if not data:
        return data, b".\r\n"
    if _ready_for_smtp(data):
        # The common case (messages rendered for SMTP): sent as they are, never copied.
        return data, b".\r\n" if data.endswith(b"\r\n") else b"\r\n.\r\n"
    lines = [b"." + line if line[:1] == b"." else line for line in data.splitlines()]
    lines.append(b"")
    return b"\r\n".join(lines), b".\r\n"


def _ready_for_smtp(data: bytes) -> bool:
    """Whether every CR and LF come as CRLF pairs and no line starts with a dot."""
    # Vectorised passes instead of bytes.count and find over the message four times: a third
    # of the time per message at ten kilobytes (bench/bench_smtp.py). Chunks bound the
    # temporary arrays for a large message; each overlaps the next by the one byte a pair needs.
    octets = np.frombuffer(data, np.uint8)
    if octets[0] in (10, 46) or octets[-1] == 13:
        return False
    for start in range(0, len(octets), _CHECK_CHUNK):
        part = octets[start : start + _CHECK_CHUNK + 1]
        lf = part == 10
        if not np.array_equal(part[:-1] == 13, lf[1:]) or np.any(lf[:-1] & (part[1:] == 46)):
            return False
    return True


def _loopback(config: RelayConfig) -> bool:
    if config.host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(config.host).is_loopback
    except ValueError:
        return False


def _describe(error: BaseException, timeout: float | None = None) -> str:
    """One Norwegian line for an operator: what went wrong with the connection (a Text, which
    the console shows in its page's language)."""
    if isinstance(error, TimeoutError):
        if timeout is None:
            return Text("tidsavbrudd: SMTP-tjeneren svarte ikke")
        return Text(
            "tidsavbrudd: SMTP-tjeneren svarte ikke på %(seconds)s s", seconds=f"{timeout:g}"
        )
    if isinstance(error, ssl.SSLCertVerificationError):
        why = error.verify_message or str(error)
        return Text("TLS-sertifikatet ble ikke godtatt: %(why)s", why=why)
    if isinstance(error, ssl.SSLError):
        return Text("TLS-feil: %(why)s", why=error.reason or str(error))
    if isinstance(error, asyncio.IncompleteReadError):
        return Text("SMTP-tjeneren lukket forbindelsen")
    if isinstance(error, ConnectionError):
        why = os_reason(error) or type(error).__name__
        return Text("forbindelsen ble brutt: %(why)s", why=why)
    if isinstance(error, asyncio.LimitOverrunError):
        return Text("for lang svarlinje fra SMTP-tjeneren")
    if isinstance(error, OSError):
        return Text("nettverksfeil: %(why)s", why=os_reason(error))
    if isinstance(error, _Broken) and isinstance(error.args[0], Text):
        return error.args[0]  # our own words, kept translatable
    return str(error)
