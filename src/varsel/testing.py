"""An SMTP server on loopback for tests and the demo: keeps what it receives, fails on cue.

    python -m varsel.testing --port 2525 --maildir mottatt

runs it in the foreground and stores each message as mottatt/<n>.eml.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import os
import signal
import socket
import ssl
import sys
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from types import TracebackType
from typing import Any, AnyStr

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import MISSING, SMTP, AuthResult, Envelope, LoginPassword, Session

from varsel.errors import os_reason
from varsel.message import MessageSpec, default_templates

HOST = "127.0.0.1"
# The greeting name; aiosmtpd would otherwise look up this machine's FQDN on every connection.
SERVER_NAME = "varsel-sink"
_STOP_TIMEOUT = 5.0


class FaultKind(StrEnum):
    """What a scripted fault makes the server do."""

    REPLY = "reply"  # answer with the fault's code and text instead (421 also hangs up)
    DELAY = "delay"  # wait the fault's seconds before answering: a slow server
    DROP_MID_DATA = "drop_mid_data"  # hang up after part of the body, without a reply
    ACCEPT_THEN_DROP = "accept_then_drop"  # keep the message, hang up before the 250: in doubt


class Stage(StrEnum):
    """The reply a REPLY or DELAY fault applies to."""

    MAIL = "mail"  # the reply to MAIL FROM
    RCPT = "rcpt"  # the reply to RCPT TO
    DATA = "data"  # the reply after the body's final "."


@dataclass(frozen=True)
class Fault:
    """One scripted misbehaviour; build it with the class methods."""

    kind: FaultKind
    stage: Stage = Stage.DATA
    code: int = 0
    text: str = ""
    seconds: float = 0.0
    after_bytes: int = 0

    @classmethod
    def reply(cls, code: int, text: str, *, stage: Stage = Stage.RCPT) -> Fault:
        """Answer `code text` at `stage` (a newline in text: a multi-line reply); not kept."""
        return cls(FaultKind.REPLY, stage, code=code, text=text)

    @classmethod
    def delay(cls, seconds: float, *, stage: Stage = Stage.DATA) -> Fault:
        """Wait before answering at `stage`, then go on as usual."""
        return cls(FaultKind.DELAY, stage, seconds=seconds)

    @classmethod
    def drop_mid_data(cls, after_bytes: int = 1) -> Fault:
        """After 354, read `after_bytes` of the body (or all of a short one), then hang up."""
        return cls(FaultKind.DROP_MID_DATA, after_bytes=after_bytes)

    @classmethod
    def accept_then_drop(cls) -> Fault:
        """Keep the whole message, then hang up instead of saying 250."""
        return cls(FaultKind.ACCEPT_THEN_DROP)


@dataclass(frozen=True)
class FiredFault:
    """A fault that took effect: on which message (numbered from 1) and recipient."""

    number: int
    rcpt: str | None
    fault: Fault


class FaultPlan:
    """Faults by message number (the order MAIL FROM arrives, from 1) or by recipient."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._by_number: dict[int, Fault] = {}
        self._by_rcpt: list[tuple[Callable[[str], bool], Fault]] = []
        self._fired: list[FiredFault] = []

    def on_message(self, number: int, fault: Fault) -> FaultPlan:
        """Apply `fault` to the `number`th transaction the server sees."""
        with self._lock:
            self._by_number[number] = fault
        return self

    def on_rcpt(self, predicate: Callable[[str], bool], fault: Fault) -> FaultPlan:
        """Apply `fault` to every transaction whose recipient matches (not at Stage.MAIL)."""
        with self._lock:
            self._by_rcpt.append((predicate, fault))
        return self

    def for_message(self, number: int) -> Fault | None:
        """The fault scripted for this transaction number, if any."""
        with self._lock:
            return self._by_number.get(number)

    def for_rcpt(self, rcpt: str) -> Fault | None:
        """The first fault whose predicate matches this recipient, if any."""
        with self._lock:
            rules = list(self._by_rcpt)
        return next((fault for predicate, fault in rules if predicate(rcpt)), None)

    def record(self, number: int, rcpt: str | None, fault: Fault) -> None:
        """Note that a fault took effect."""
        with self._lock:
            self._fired.append(FiredFault(number, rcpt, fault))

    def fired(self, kind: FaultKind | None = None) -> int:
        """How many faults (of one kind) took effect so far."""
        with self._lock:
            return sum(1 for f in self._fired if kind is None or f.fault.kind is kind)

    @property
    def history(self) -> list[FiredFault]:
        """Every fault that took effect, in order."""
        with self._lock:
            return list(self._fired)


@dataclass(frozen=True)
class ReceivedMessage:
    """A message the sink accepted: envelope, the data as received (dots undone), when, whom."""

    mail_from: str
    rcpt_tos: tuple[str, ...]
    data: bytes
    received_at: float  # time.monotonic() on accepting it: after the final "." (and any delay)
    peer: str
    path: Path | None = None  # the .eml file, when the sink has a maildir


class SmtpSink:
    """aiosmtpd on 127.0.0.1 in its own thread; a context manager."""

    def __init__(
        self,
        *,
        maildir: Path | None = None,
        faults: FaultPlan | None = None,
        pipelining: bool = True,
        tls_context: ssl.SSLContext | None = None,
        implicit_tls: bool = False,
        auth: tuple[str, str] | None = None,
        port: int = 0,
    ) -> None:
        self.host = HOST
        self.port = port
        self.maildir = maildir
        self.faults = faults
        self.pipelining = pipelining
        self.tls_context = tls_context
        self.implicit_tls = implicit_tls
        self.auth = auth
        self._cond = threading.Condition()
        self._messages: list[ReceivedMessage] = []
        self._numbers = 0
        self._first_file = 1
        self._round_trips = 0
        self._connections = 0
        # Touched only on the server's thread: the connections to hang up when stopping.
        self._live: set[_SinkSMTP] = set()
        self._controller: _Controller | None = None

    @property
    def url(self) -> str:
        """The URL varsel's RelayConfig.from_url takes for this sink."""
        if self.implicit_tls:
            scheme = "smtps"
        elif self.tls_context is not None:
            scheme = "smtp+starttls"
        else:
            scheme = "smtp"
        return f"{scheme}://{self.host}:{self.port}"

    @property
    def messages(self) -> list[ReceivedMessage]:
        """The messages accepted so far, in order (a copy)."""
        with self._cond:
            return list(self._messages)

    @property
    def round_trips(self) -> int:
        """Replies after which the client had nothing more in flight: it waited for each."""
        with self._cond:
            return self._round_trips

    @property
    def connections(self) -> int:
        """Client connections accepted so far."""
        with self._cond:
            return self._connections

    def wait_for(self, count: int, timeout: float) -> list[ReceivedMessage]:
        """The first `count` messages, waiting up to `timeout` seconds for them."""
        with self._cond:
            if not self._cond.wait_for(lambda: len(self._messages) >= count, timeout):
                raise TimeoutError(
                    f"SMTP-mottaket fikk {len(self._messages)} av {count} meldinger "
                    f"på {timeout:g} s"
                )
            return self._messages[:count]

    def start(self) -> SmtpSink:
        """Listen, and return once the server answers."""
        if self.maildir is not None:
            self.maildir.mkdir(parents=True, exist_ok=True)
            # A folder used before keeps its files: numbering goes on after the highest.
            taken = [int(p.stem) for p in self.maildir.glob("*.eml") if p.stem.isdigit()]
            self._first_file = max(taken, default=0) + 1
        controller = _Controller(self)
        controller.start()
        self._controller = controller
        self.port = controller.port
        with self._cond:
            # Forget the probe connection aiosmtpd makes to see that the server is up.
            self._round_trips = self._connections = 0
        return self

    def stop(self) -> None:
        """Hang up on every client, stop the server and join its thread."""
        controller, self._controller = self._controller, None
        if controller is None:
            return
        # aiosmtpd leaves open connections to be garbage-collected with the loop; closing them
        # first keeps "unclosed transport" warnings out of the tests.
        done = asyncio.run_coroutine_threadsafe(self._hang_up_all(), controller.loop)
        with contextlib.suppress(TimeoutError):
            done.result(_STOP_TIMEOUT)
        controller.stop()

    def __enter__(self) -> SmtpSink:
        return self.start()

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    # Called on the server's thread

    async def _hang_up_all(self) -> None:
        for server in list(self._live):
            if isinstance(server.transport, asyncio.WriteTransport):
                server.transport.abort()
        for _ in range(100):
            if not self._live:
                break
            await asyncio.sleep(0.001)

    def _connected(self, server: _SinkSMTP) -> None:
        if server not in self._live:
            self._live.add(server)
            with self._cond:
                self._connections += 1

    def _next_number(self) -> int:
        with self._cond:
            self._numbers += 1
            return self._numbers

    def _turn(self) -> None:
        with self._cond:
            self._round_trips += 1

    def _store(self, envelope: Envelope, session: Session) -> int:
        received_at = time.monotonic()
        data = envelope.original_content or b""
        peer = session.peer
        shown = f"{peer[0]}:{peer[1]}" if isinstance(peer, tuple) else str(peer)
        with self._cond:
            number = len(self._messages) + 1
            path = None
            if self.maildir is not None:
                path = self.maildir / f"{self._first_file + number - 1}.eml"
            if path is not None:
                # Written whole, then renamed: whoever watches the folder never sees half a file.
                partial = path.with_suffix(".tmp")
                partial.write_bytes(data)
                os.replace(partial, path)
            message = ReceivedMessage(
                mail_from=envelope.mail_from or "",
                rcpt_tos=tuple(envelope.rcpt_tos),
                data=data,
                received_at=received_at,
                peer=shown,
                path=path,
            )
            self._messages.append(message)
            self._cond.notify_all()
        return number


class _SinkSMTP(SMTP):
    """aiosmtpd's SMTP with a transaction number, a scripted fault and a round-trip count."""

    def __init__(self, handler: _Handler, sink: SmtpSink, **kwargs: Any) -> None:
        super().__init__(handler, **kwargs)
        self.sink = sink
        self.number = 0
        self.rcpt: str | None = None
        self.fault: Fault | None = None
        self.hang_up_after_reply = False
        self.hang_up_instead_of_reply = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        self.sink._connected(self)

    def connection_lost(self, error: Exception | None) -> None:
        self.sink._live.discard(self)
        super().connection_lost(error)

    async def push(self, status: AnyStr) -> None:
        if self.hang_up_instead_of_reply:
            self.hang_up_instead_of_reply = False
            self._hang_up()
            return
        # A reply's last line with nothing more from the client buffered: the client is
        # waiting for it, so this reply ends one round trip (test instrumentation only).
        last = status.splitlines()[-1][3:4] not in ("-", b"-")
        if last and not getattr(self._reader, "_buffer", b""):
            self.sink._turn()
        await super().push(status)
        if self.hang_up_after_reply:
            self.hang_up_after_reply = False
            self._hang_up()

    async def smtp_DATA(self, arg: str) -> None:
        fault = self.fault
        if fault is None or fault.kind is not FaultKind.DROP_MID_DATA or self.envelope is None:
            await super().smtp_DATA(arg)
            return
        if not self.envelope.rcpt_tos or arg:
            await super().smtp_DATA(arg)  # its own error replies
            return
        await self.push("354 End data with <CR><LF>.<CR><LF>")
        # Up to after_bytes, or the whole body if it is shorter: never an answer either way.
        received, tail = 0, b"\r\n"  # the DATA line's own line end starts the first line
        while received < fault.after_bytes and not tail.endswith(b"\r\n.\r\n"):
            chunk = await self._reader.read(fault.after_bytes - received)
            if not chunk:
                break
            received += len(chunk)
            tail = (tail + chunk)[-5:]
        if self.sink.faults is not None:
            self.sink.faults.record(self.number, self.rcpt, fault)
        self._hang_up()

    async def scripted(self, stage: Stage) -> str | None:
        """The fault's reply at this stage, after its delay; None to answer as usual."""
        fault = self.fault
        if fault is None or fault.stage is not stage:
            return None
        if fault.kind is FaultKind.DELAY:
            if self.sink.faults is not None:
                self.sink.faults.record(self.number, self.rcpt, fault)
            await asyncio.sleep(fault.seconds)
            return None
        if fault.kind is not FaultKind.REPLY:
            return None
        if self.sink.faults is not None:
            self.sink.faults.record(self.number, self.rcpt, fault)
        # RFC 5321 §3.8: a server that says 421 closes the connection.
        self.hang_up_after_reply = fault.code == 421
        *first, last = fault.text.split("\n")
        return "".join(f"{fault.code}-{line}\r\n" for line in first) + f"{fault.code} {last}"

    def _hang_up(self) -> None:
        # As aiosmtpd's own QUIT does: stop reading, then close.
        if self._handler_coroutine is not None:
            self._handler_coroutine.cancel()
        if self.transport is not None:
            self.transport.close()


class _Handler:
    """aiosmtpd's hooks: the extensions offered, the faults, and keeping each message."""

    def __init__(self, sink: SmtpSink) -> None:
        self.sink = sink

    async def handle_EHLO(
        self,
        server: _SinkSMTP,
        session: Session,
        envelope: Envelope,
        hostname: str,
        responses: list[str],
    ) -> list[str]:
        session.host_name = hostname
        lines = [r for r in responses if self.sink.auth is not None or not r[4:].startswith("AUTH")]
        if self.sink.pipelining:
            lines.insert(-1, "250-PIPELINING")
        lines.insert(-1, "250-ENHANCEDSTATUSCODES")
        return lines

    async def handle_MAIL(
        self,
        server: _SinkSMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        mail_options: list[str],
    ) -> Any:
        if self.sink.auth is not None and not session.authenticated:
            return "530 5.7.0 Authentication required"
        server.number = self.sink._next_number()
        server.rcpt = None
        faults = self.sink.faults
        server.fault = None if faults is None else faults.for_message(server.number)
        return await server.scripted(Stage.MAIL) or MISSING

    async def handle_RCPT(
        self,
        server: _SinkSMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        rcpt_options: list[str],
    ) -> Any:
        server.rcpt = address
        faults = self.sink.faults
        if server.fault is None and faults is not None:
            server.fault = faults.for_rcpt(address)
        return await server.scripted(Stage.RCPT) or MISSING

    async def handle_DATA(self, server: _SinkSMTP, session: Session, envelope: Envelope) -> Any:
        status = await server.scripted(Stage.DATA)
        if status is not None:
            return status
        number = self.sink._store(envelope, session)
        fault = server.fault
        if fault is not None and fault.kind is FaultKind.ACCEPT_THEN_DROP:
            if self.sink.faults is not None:
                self.sink.faults.record(server.number, server.rcpt, fault)
            server.hang_up_instead_of_reply = True
        return f"250 2.0.0 OK: queued as {number}"


def _authenticator(sink: SmtpSink) -> Callable[..., AuthResult]:
    def check(
        server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: Any
    ) -> AuthResult:
        expected = sink.auth
        ok = (
            expected is not None
            and isinstance(data, LoginPassword)
            and (data.login, data.password) == (expected[0].encode(), expected[1].encode())
        )
        return AuthResult(success=ok, handled=False)

    return check


class _Controller(Controller):
    """aiosmtpd's threaded Controller, on a free port, making _SinkSMTP servers."""

    def __init__(self, sink: SmtpSink) -> None:
        starttls = None if sink.implicit_tls else sink.tls_context
        super().__init__(
            _Handler(sink),
            hostname=sink.host,
            port=sink.port,
            ssl_context=sink.tls_context if sink.implicit_tls else None,
            server_hostname=SERVER_NAME,
            tls_context=starttls,
            authenticator=_authenticator(sink),
            # AUTH is checked at MAIL instead (see _Handler.handle_MAIL): aiosmtpd would refuse
            # AUTH on implicit TLS, and warns when AUTH is required without TLS.
            auth_require_tls=False,
        )
        self.sink = sink

    def factory(self) -> SMTP:
        return _SinkSMTP(self.handler, self.sink, **self.SMTP_kwargs)

    def _trigger_server(self) -> None:
        # Port 0 asked the kernel for a free port: learn which, before aiosmtpd probes it.
        if isinstance(self.server, asyncio.Server):
            self.port = self.server.sockets[0].getsockname()[1]
        super()._trigger_server()  # type: ignore[no-untyped-call]


class _BokmalHelp(argparse.HelpFormatter):
    """argparse's help with «Bruk:» where it says "usage:", as varsel's own commands do."""

    def add_usage(
        self,
        usage: str | None,
        actions: Iterable[argparse.Action],
        groups: Iterable[argparse._MutuallyExclusiveGroup],
        prefix: str | None = None,
    ) -> None:
        super().add_usage(usage, actions, groups, "Bruk: " if prefix is None else prefix)


def main(argv: list[str] | None = None) -> int:
    """Run the sink in the foreground until Ctrl-C; returns the exit status."""
    parser = argparse.ArgumentParser(
        prog="python -m varsel.testing",
        description="SMTP-mottak på 127.0.0.1 for å prøve varsel: "
        "hver melding lagres som en .eml-fil.",
        formatter_class=_BokmalHelp,
        add_help=False,
    )
    parser._optionals.title = "Valg"  # argparse's own word is English ("options")
    parser.add_argument("-h", "--help", action="help", help="vis denne hjelpen og avslutt")
    parser.add_argument("--port", type=int, default=2525, help="porten det lyttes på")
    parser.add_argument(
        "--maildir",
        type=Path,
        default=Path("mottatt"),
        metavar="MAPPE",
        help="mappen meldingene lagres i",
    )
    args = parser.parse_args(argv)
    sink = SmtpSink(maildir=args.maildir, port=args.port)
    try:
        # aiosmtpd reports a taken port only after its start-up timeout: ask first.
        with socket.socket() as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind((HOST, args.port))
        sink.start()
    except OSError as e:
        print(f"kan ikke lytte på {HOST}:{args.port}: {os_reason(e)}", file=sys.stderr)
        return 2
    # Ctrl-C and SIGTERM only set a flag: an exception raised inside the sink's locks could
    # leave them held and hang the shutdown.
    stop = threading.Event()
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    seen = 0
    try:
        print(f"Tar imot e-post på {sink.url}", flush=True)
        print(f"Meldingene lagres i {args.maildir.resolve()}/ (Ctrl-C avslutter)", flush=True)
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                for message in sink.wait_for(seen + 1, 0.2)[seen:]:
                    seen += 1
                    print(
                        f"{message.path}: fra <{message.mail_from}> til "
                        f"{', '.join(message.rcpt_tos)} ({len(message.data)} byte)",
                        flush=True,
                    )
        print(f"\nMottok {seen} meldinger.", flush=True)
    finally:
        sink.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())


def sample_spec(**changes: Any) -> MessageSpec:
    """The pilot's message with the default templates, for tests and benchmarks."""
    subjects, texts, htmls = default_templates()
    spec = MessageSpec(
        campaign_id=42,
        from_address="varsel@nsr.no",
        from_name="Næringslivets sikkerhetsråd",
        reply_to="svar@nsr.no",
        organisation="Oslo politidistrikt",
        subjects=subjects,
        text_templates=texts,
        html_templates=htmls,
        document_title="Sikkerhetsråd for næringslivet 2023",
        document_url="https://www.politiet.no/globalassets/oslo/sikkerhetsrad-2023.pdf",
        verify_url="https://www.politiet.no/kontroll",
        unsubscribe_url="https://varsel.politiet.no/avmelding",
        unsubscribe_mailto="avmelding@nsr.no",
        fields={"partner": "Næringslivets sikkerhetsråd", "area": "Oslo, Asker og Bærum"},
    )
    return dataclasses.replace(spec, **changes)
