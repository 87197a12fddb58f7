"""The SMTP client against the real aiosmtpd sink on loopback (and a scripted peer for garbage)."""

from __future__ import annotations

import asyncio
import ssl
import time
from collections.abc import Awaitable, Callable, Coroutine
from pathlib import Path
from typing import Any, TypeVar

import pytest
from hypothesis import given
from hypothesis import strategies as st

from helpers import make_tls
from varsel.channel.smtp import SmtpConnectError, SmtpConnection, _dot_stuff
from varsel.channel.smtp_relay import RelayConfig
from varsel.channel.smtp_replies import ReplyKind, SendOutcome, SmtpReply
from varsel.testing import Fault, FaultKind, FaultPlan, SmtpSink, Stage
from varsel.web.console_auth import translate

SENDER = "varsel@politiet.example"
RECIPIENT = "post@bedrift.example"
T = TypeVar("T")
MESSAGE = b"From: <varsel@politiet.example>\r\nSubject: Sikkerhetsrad\r\n\r\nHei!\r\n"


def run(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coro)


async def send_one(
    url: str,
    data: bytes = MESSAGE,
    rcpt: str = RECIPIENT,
    before_data_end: Callable[[], Awaitable[None]] | None = None,
) -> SendOutcome:
    connection = await SmtpConnection.open(RelayConfig.from_url(url))
    try:
        return await connection.send(SENDER, rcpt, data, before_data_end=before_data_end)
    finally:
        await connection.close()


# Plain sending


@pytest.mark.parametrize(("pipelining", "per_message"), [(True, 2), (False, 4)])
def test_send_takes_two_round_trips_with_pipelining_and_four_without(
    pipelining: bool, per_message: int
) -> None:
    async def three(url: str, sink: SmtpSink) -> tuple[list[SendOutcome], int]:
        connection = await SmtpConnection.open(RelayConfig.from_url(url))
        assert connection.pipelining is pipelining
        before = sink.round_trips
        outcomes = [
            await connection.send(SENDER, f"post{n}@bedrift.example", MESSAGE) for n in range(3)
        ]
        trips = sink.round_trips - before
        await connection.close()
        return outcomes, trips

    with SmtpSink(pipelining=pipelining) as sink:
        outcomes, trips = run(three(sink.url, sink))
        received = sink.wait_for(3, 5)
    assert [o.kind for o in outcomes] == [ReplyKind.ACCEPTED] * 3
    assert outcomes[0] == SendOutcome(SmtpReply(250, "2.0.0", "OK: queued as 1"), True, None)
    assert trips == 3 * per_message
    assert [m.rcpt_tos for m in received] == [(f"post{n}@bedrift.example",) for n in range(3)]
    assert {m.mail_from for m in received} == {SENDER}
    assert {m.data for m in received} == {MESSAGE}


def test_extensions_are_read_from_ehlo(sink: SmtpSink) -> None:
    async def extensions() -> dict[str, str]:
        connection = await SmtpConnection.open(RelayConfig.from_url(sink.url))
        await connection.close()
        assert connection.closed
        return connection.extensions

    found = run(extensions())
    assert found["SIZE"] == "33554432"
    assert "PIPELINING" in found
    assert "AUTH" not in found


@pytest.mark.parametrize(
    ("data", "received"),
    [
        (b".a dot\r\n..two\r\n.\r\nend\r\n", b".a dot\r\n..two\r\n.\r\nend\r\n"),
        (b"Subject: x\r\n\r\n.\r\n", b"Subject: x\r\n\r\n.\r\n"),
        (b"bare\nline feeds\n.dot\n", b"bare\r\nline feeds\r\n.dot\r\n"),
        (b"bare\rcarriage\rreturn", b"bare\r\ncarriage\r\nreturn\r\n"),
        (b"no newline at the end", b"no newline at the end\r\n"),
        (b"", b""),
    ],
)
def test_data_round_trips_through_dot_stuffing(
    sink: SmtpSink, data: bytes, received: bytes
) -> None:
    outcome = run(send_one(sink.url, data))
    assert outcome.kind is ReplyKind.ACCEPTED
    assert sink.wait_for(1, 5)[0].data == received


@given(st.lists(st.sampled_from([b"a", b".", b"\r", b"\n", b"\r\n", b".."]), max_size=40))
def test_dot_stuffing_ends_data_once_and_loses_nothing(pieces: list[bytes]) -> None:
    data = b"".join(pieces)
    body, tail = _dot_stuff(data)
    wire = body + tail
    assert wire.endswith(b"\r\n.\r\n") or wire == b".\r\n"
    lines = wire.split(b"\r\n")[:-2]  # what comes before the final "." line
    assert b"\r" not in b"".join(lines)
    assert b"\n" not in b"".join(lines)
    assert all(line[:1] != b"." or line[:2] == b".." for line in lines)
    unstuffed = b"".join((line[1:] if line[:1] == b"." else line) + b"\r\n" for line in lines)
    assert unstuffed == b"".join(line + b"\r\n" for line in data.splitlines())


def test_a_large_message_arrives_whole(sink: SmtpSink) -> None:
    line = b"x" * 76 + b"\r\n"
    data = line * 40_000 + b".last line\r\n"
    outcome = run(send_one(sink.url, data))
    assert outcome.kind is ReplyKind.ACCEPTED
    assert sink.wait_for(1, 5)[0].data == data


def test_addresses_that_could_inject_commands_are_refused(sink: SmtpSink) -> None:
    async def inject() -> None:
        connection = await SmtpConnection.open(RelayConfig.from_url(sink.url))
        try:
            await connection.send(SENDER, "a@b.example>\r\nRCPT TO:<c@d.example", MESSAGE)
        finally:
            await connection.close()

    with pytest.raises(ValueError, match="ugyldig e-postadresse"):
        run(inject())
    assert sink.messages == []


# The next message's envelope with this one's final dot (RFC 2920)


async def send_chain(sink: SmtpSink, rcpts: list[str]) -> tuple[list[SendOutcome], int]:
    """Each message sent with the next one's envelope pipelined behind its final dot; the
    outcomes, and the round trips they took."""
    connection = await SmtpConnection.open(RelayConfig.from_url(sink.url))
    before = sink.round_trips
    outcomes = []
    for n, rcpt in enumerate(rcpts):
        then = (SENDER, rcpts[n + 1], MESSAGE) if n + 1 < len(rcpts) else None
        outcomes.append(await connection.send(SENDER, rcpt, MESSAGE, then=then))
    trips = sink.round_trips - before
    await connection.close()
    return outcomes, trips


def test_then_sends_the_next_envelope_with_the_final_dot(sink: SmtpSink) -> None:
    rcpts = [f"post{n}@bedrift.example" for n in range(3)]
    outcomes, trips = run(send_chain(sink, rcpts))
    received = sink.wait_for(3, 5)
    assert [o.kind for o in outcomes] == [ReplyKind.ACCEPTED] * 3
    # One round trip for the first envelope, then one per message: 4 instead of 6.
    assert trips == 4
    assert [m.rcpt_tos for m in received] == [(rcpt,) for rcpt in rcpts]
    assert {m.data for m in received} == {MESSAGE}


def test_a_refused_recipient_sent_ahead_is_permanent_and_the_connection_goes_on() -> None:
    plan = FaultPlan().on_rcpt(
        lambda rcpt: rcpt == "post1@bedrift.example", Fault.reply(550, "5.1.1 Finnes ikke")
    )
    rcpts = [f"post{n}@bedrift.example" for n in range(3)]
    with SmtpSink(faults=plan) as sink:
        outcomes, _ = run(send_chain(sink, rcpts))
        received = sink.wait_for(2, 5)
    assert [o.kind for o in outcomes] == [
        ReplyKind.ACCEPTED,
        ReplyKind.PERMANENT,
        ReplyKind.ACCEPTED,
    ]
    assert outcomes[1] == SendOutcome(
        SmtpReply(550, "5.1.1", "Finnes ikke"), False, None, recipient_refused=True
    )
    assert [m.rcpt_tos[0] for m in received] == ["post0@bedrift.example", "post2@bedrift.example"]


def test_after_then_only_that_message_may_follow(sink: SmtpSink) -> None:
    async def scenario() -> bool:
        connection = await SmtpConnection.open(RelayConfig.from_url(sink.url))
        then = (SENDER, "neste@bedrift.example", MESSAGE)
        await connection.send(SENDER, RECIPIENT, MESSAGE, then=then)
        with pytest.raises(RuntimeError, match="then="):
            await connection.send(SENDER, "en-annen@bedrift.example", MESSAGE)
        return connection.closed

    assert run(scenario())
    assert [m.rcpt_tos for m in sink.wait_for(1, 5)] == [(RECIPIENT,)]
    time.sleep(0.2)
    assert len(sink.messages) == 1  # the envelope sent ahead never became a message


def test_close_with_an_envelope_sent_ahead_hangs_up_at_once(sink: SmtpSink) -> None:
    async def scenario() -> float:
        connection = await SmtpConnection.open(RelayConfig.from_url(sink.url))
        await connection.send(SENDER, RECIPIENT, MESSAGE, then=(SENDER, RECIPIENT, MESSAGE))
        started = time.monotonic()
        await connection.close()  # QUIT now would be read as the next message's text
        return time.monotonic() - started

    assert run(scenario()) < 1
    time.sleep(0.2)
    assert len(sink.messages) == 1


def test_smtp_ready_data_is_sent_as_it_is(sink: SmtpSink) -> None:
    # The caller's promise is trusted, not checked: a leading dot is not doubled, so the
    # server takes it away. MessageFactory never writes one (test_message checks that).
    data = b"Subject: x\r\n\r\n..to\r\n"
    outcome = run(send_one_ready(sink.url, data))
    assert outcome.kind is ReplyKind.ACCEPTED
    assert sink.wait_for(1, 5)[0].data == b"Subject: x\r\n\r\n.to\r\n"


async def send_one_ready(url: str, data: bytes) -> SendOutcome:
    connection = await SmtpConnection.open(RelayConfig.from_url(url))
    try:
        return await connection.send(SENDER, RECIPIENT, data, smtp_ready=True)
    finally:
        await connection.close()


# Refusals


def test_refused_recipient_is_permanent_and_the_connection_goes_on() -> None:
    plan = FaultPlan().on_rcpt(
        lambda rcpt: rcpt.startswith("ukjent@"), Fault.reply(550, "5.1.1 Mottakeren finnes ikke")
    )

    async def two(url: str) -> tuple[SendOutcome, SendOutcome, bool]:
        connection = await SmtpConnection.open(RelayConfig.from_url(url))
        refused = await connection.send(SENDER, "ukjent@bedrift.example", MESSAGE)
        accepted = await connection.send(SENDER, RECIPIENT, MESSAGE)
        closed = connection.closed
        await connection.close()
        return refused, accepted, closed

    with SmtpSink(faults=plan) as sink:
        refused, accepted, closed = run(two(sink.url))
        assert [m.rcpt_tos for m in sink.wait_for(1, 5)] == [(RECIPIENT,)]
    assert refused == SendOutcome(
        SmtpReply(550, "5.1.1", "Mottakeren finnes ikke"), False, None, recipient_refused=True
    )
    assert refused.kind is ReplyKind.PERMANENT
    assert accepted.kind is ReplyKind.ACCEPTED
    assert not closed
    assert plan.fired(FaultKind.REPLY) == 1


@pytest.mark.parametrize("pipelining", [True, False])
@pytest.mark.parametrize(
    ("fault", "kind", "data_sent"),
    [
        (Fault.reply(451, "4.3.0 Try again later", stage=Stage.DATA), ReplyKind.TRANSIENT, True),
        (Fault.reply(452, "4.5.3 Too many recipients"), ReplyKind.TRANSIENT, False),
        (Fault.reply(550, "5.7.1 Refused", stage=Stage.MAIL), ReplyKind.PERMANENT, False),
        (Fault.reply(554, "5.6.0 Bad content", stage=Stage.DATA), ReplyKind.PERMANENT, True),
    ],
)
def test_refusals_keep_the_servers_reply_and_the_connection(
    pipelining: bool, fault: Fault, kind: ReplyKind, data_sent: bool
) -> None:
    async def refused_then_accepted(url: str) -> tuple[SendOutcome, SendOutcome]:
        connection = await SmtpConnection.open(RelayConfig.from_url(url))
        first = await connection.send(SENDER, RECIPIENT, MESSAGE)
        second = await connection.send(SENDER, RECIPIENT, MESSAGE)
        await connection.close()
        return first, second

    with SmtpSink(faults=FaultPlan().on_message(1, fault), pipelining=pipelining) as sink:
        first, second = run(refused_then_accepted(sink.url))
        assert len(sink.wait_for(1, 5)) == 1
    assert first.kind is kind
    assert first.reply is not None
    assert str(first.reply) == f"{fault.code} {fault.text}"
    assert (first.data_sent, first.error) == (data_sent, None)
    assert second.kind is ReplyKind.ACCEPTED


@pytest.mark.parametrize("pipelining", [True, False])
@pytest.mark.parametrize(("stage", "sender_refused"), [(Stage.MAIL, True), (Stage.RCPT, False)])
def test_a_refusal_says_whether_it_was_the_sender_or_the_recipient_the_relay_refused(
    pipelining: bool, stage: Stage, sender_refused: bool
) -> None:
    fault = Fault.reply(553, "5.7.1 Sender address rejected: not owned by user", stage=stage)
    with SmtpSink(faults=FaultPlan().on_message(1, fault), pipelining=pipelining) as sink:
        outcome = run(send_one(sink.url))
    assert outcome == SendOutcome(
        SmtpReply(553, "5.7.1", "Sender address rejected: not owned by user"),
        False,
        None,
        sender_refused=sender_refused,
        recipient_refused=not sender_refused,
    )


@pytest.mark.parametrize("stage", [Stage.MAIL, Stage.RCPT, Stage.DATA])
def test_421_is_transient_and_closes_the_connection(stage: Stage) -> None:
    async def closing(url: str) -> tuple[SendOutcome, SendOutcome, bool]:
        connection = await SmtpConnection.open(RelayConfig.from_url(url))
        first = await connection.send(SENDER, RECIPIENT, MESSAGE)
        closed = connection.closed
        second = await connection.send(SENDER, RECIPIENT, MESSAGE)
        await connection.close()
        return first, second, closed

    plan = FaultPlan().on_message(1, Fault.reply(421, "4.3.2 Shutting down", stage=stage))
    with SmtpSink(faults=plan) as sink:
        first, second, closed = run(closing(sink.url))
    assert first.reply == SmtpReply(421, "4.3.2", "Shutting down")
    assert first.kind is ReplyKind.TRANSIENT
    assert (first.sender_refused, first.recipient_refused) == (
        stage is Stage.MAIL,
        stage is Stage.RCPT,
    )
    assert closed
    assert second == SendOutcome(None, False, "forbindelsen til SMTP-tjeneren er lukket")


def test_multi_line_replies_are_joined_without_their_codes() -> None:
    text = "5.7.1 Message refused\n5.7.1 See https://relay.example/policy"
    plan = FaultPlan().on_message(1, Fault.reply(550, text, stage=Stage.DATA))
    with SmtpSink(faults=plan) as sink:
        outcome = run(send_one(sink.url))
    assert outcome.reply == SmtpReply(
        550, "5.7.1", "Message refused\nSee https://relay.example/policy"
    )


# Lost connections: data_sent tells "not delivered" from "in doubt"


def test_drop_mid_data_after_the_whole_small_message_was_written_is_in_doubt() -> None:
    plan = FaultPlan().on_message(1, Fault.drop_mid_data(after_bytes=10))
    with SmtpSink(faults=plan) as sink:
        outcome = run(send_one(sink.url))
        assert sink.messages == []
    assert outcome.reply is None
    assert outcome.data_sent
    assert outcome.in_doubt
    assert outcome.error == "SMTP-tjeneren lukket forbindelsen"
    assert outcome.kind is ReplyKind.TRANSIENT
    assert plan.fired(FaultKind.DROP_MID_DATA) == 1


def test_drop_mid_data_before_the_dot_of_a_large_message_is_not_in_doubt() -> None:
    # Far more than loopback's socket buffers hold while the server reads nothing: the
    # write of the body fails before the final dot is ever handed to the transport.
    data = (b"y" * 998 + b"\r\n") * 24_000
    plan = FaultPlan().on_message(1, Fault.drop_mid_data(after_bytes=64 * 1024))
    with SmtpSink(faults=plan) as sink:
        outcome = run(send_one(sink.url, data))
    assert outcome.reply is None
    assert not outcome.data_sent
    assert outcome.error is not None
    assert outcome.error.startswith("forbindelsen ble brutt")


def test_drop_mid_data_while_before_data_end_runs_never_sends_the_dot() -> None:
    # A small body goes out with its dot, after before_data_end: the server hangs up after 354.
    plan = FaultPlan().on_message(1, Fault.drop_mid_data(after_bytes=0))
    calls = []

    async def scenario(url: str) -> SendOutcome:
        connection = await SmtpConnection.open(RelayConfig.from_url(url))

        async def record() -> None:
            calls.append(time.monotonic())
            # The server hangs up meanwhile; wait until this side has seen it.
            async with asyncio.timeout(10):
                while connection._protocol.error is None:
                    await asyncio.sleep(0.01)

        outcome = await connection.send(SENDER, RECIPIENT, MESSAGE, before_data_end=record)
        await connection.close()
        return outcome

    with SmtpSink(faults=plan) as sink:
        outcome = run(scenario(sink.url))
        assert sink.messages == []
    assert len(calls) == 1
    assert outcome == SendOutcome(
        None, False, "SMTP-tjeneren lukket forbindelsen før meldingen var sendt"
    )
    # The reason a run stops on when the relay is in trouble: the console says it in English.
    assert translate("en", outcome.error or "") == (
        "the SMTP server closed the connection before the message was sent"
    )


def test_accept_then_drop_is_in_doubt_and_the_server_has_the_message() -> None:
    plan = FaultPlan().on_message(1, Fault.accept_then_drop())
    with SmtpSink(faults=plan) as sink:
        outcome = run(send_one(sink.url))
        assert [m.data for m in sink.wait_for(1, 5)] == [MESSAGE]
    assert outcome == SendOutcome(None, True, "SMTP-tjeneren lukket forbindelsen")
    assert outcome.in_doubt
    assert plan.fired(FaultKind.ACCEPT_THEN_DROP) == 1


@pytest.mark.parametrize(("stage", "data_sent"), [(Stage.MAIL, False), (Stage.DATA, True)])
def test_a_slow_server_times_out_as_transient(stage: Stage, data_sent: bool) -> None:
    plan = FaultPlan().on_message(1, Fault.delay(5, stage=stage))
    with SmtpSink(faults=plan) as sink:
        started = time.monotonic()
        outcome = run(send_one(f"{sink.url}?timeout=0.3"))
        took = time.monotonic() - started
    assert outcome == SendOutcome(
        None, data_sent, "tidsavbrudd: SMTP-tjeneren svarte ikke på 0.3 s"
    )
    assert outcome.kind is ReplyKind.TRANSIENT
    assert took < 2


def test_garbage_from_the_server_closes_the_connection() -> None:
    async def scenario() -> tuple[SendOutcome, bool]:
        async with ScriptedPeer([b"220 hi", b"250 hi", b"hello there"]) as peer:
            connection = await SmtpConnection.open(RelayConfig("127.0.0.1", peer.port, "none"))
            outcome = await connection.send(SENDER, RECIPIENT, MESSAGE)
            closed = connection.closed
            await connection.close()
            return outcome, closed

    outcome, closed = run(scenario())
    assert outcome == SendOutcome(
        None, False, "ugyldig svar fra SMTP-tjeneren: b'hello there\\r\\n'"
    )
    assert closed


# before_data_end: the sender's durable record comes before the final dot


def test_before_data_end_runs_once_before_the_server_has_the_message() -> None:
    seen: list[tuple[float, int]] = []

    with SmtpSink() as sink:

        async def record() -> None:
            await asyncio.sleep(0.2)  # long enough for a dot, had one been sent, to arrive
            seen.append((time.monotonic(), len(sink.messages)))

        outcome = run(send_one(sink.url, before_data_end=record))
        received = sink.wait_for(1, 5)
    assert outcome.kind is ReplyKind.ACCEPTED
    assert len(seen) == 1
    called_at, messages_then = seen[0]
    assert messages_then == 0
    assert received[0].received_at > called_at
    assert received[0].data == MESSAGE


def test_a_failing_before_data_end_aborts_without_the_dot(sink: SmtpSink) -> None:
    async def fail() -> None:
        raise RuntimeError("the store is down")

    async def scenario() -> bool:
        connection = await SmtpConnection.open(RelayConfig.from_url(sink.url))
        with pytest.raises(RuntimeError, match="the store is down"):
            await connection.send(SENDER, RECIPIENT, MESSAGE, before_data_end=fail)
        return connection.closed

    assert run(scenario())
    time.sleep(0.2)
    assert sink.messages == []


# TLS and AUTH


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, ssl.SSLContext]:
    """A CA file and a server context with a certificate it signed for 127.0.0.1."""
    return make_tls(tmp_path_factory.mktemp("tls"))


@pytest.mark.parametrize("implicit", [False, True])
def test_tls_verified_against_the_tests_ca(
    tls: tuple[Path, ssl.SSLContext], implicit: bool
) -> None:
    ca_file, context = tls

    async def secured(url: str) -> tuple[SendOutcome, dict[str, str], str | None]:
        connection = await SmtpConnection.open(RelayConfig.from_url(url))
        outcome = await connection.send(SENDER, RECIPIENT, MESSAGE)
        version = connection._transport.get_extra_info("ssl_object").version()
        await connection.close()
        return outcome, connection.extensions, version

    with SmtpSink(tls_context=context, implicit_tls=implicit) as sink:
        assert sink.url.startswith("smtps://" if implicit else "smtp+starttls://")
        outcome, extensions, version = run(secured(f"{sink.url}?ca={ca_file}"))
        assert sink.wait_for(1, 5)[0].data == MESSAGE
    assert outcome.kind is ReplyKind.ACCEPTED
    assert version is not None
    assert version.startswith("TLS")
    assert "STARTTLS" not in extensions  # the EHLO after the upgrade no longer offers it


@pytest.mark.parametrize("implicit", [False, True])
def test_tls_refuses_a_certificate_from_another_ca(
    tls: tuple[Path, ssl.SSLContext], implicit: bool
) -> None:
    _, context = tls
    with SmtpSink(tls_context=context, implicit_tls=implicit) as sink:
        with pytest.raises(SmtpConnectError, match="TLS-sertifikatet ble ikke godtatt"):
            run(SmtpConnection.open(RelayConfig.from_url(sink.url)))
        # verify=false is the operator's explicit choice for a relay with a private cert.
        outcome = run(send_one(f"{sink.url}?verify=false"))
    assert outcome.kind is ReplyKind.ACCEPTED


def test_a_missing_ca_file_is_a_connect_error(sink: SmtpSink, tmp_path: Path) -> None:
    url = sink.url.replace("smtp://", "smtps://")
    with pytest.raises(SmtpConnectError) as caught:
        run(SmtpConnection.open(RelayConfig.from_url(f"{url}?ca={tmp_path}/mangler.pem")))
    assert caught.value.message == (
        f"{url}: kan ikke lese CA-filen {tmp_path}/mangler.pem: finnes ikke"
    )


def test_starttls_is_required_when_asked_for(sink: SmtpSink) -> None:
    url = sink.url.replace("smtp://", "smtp+starttls://")
    with pytest.raises(SmtpConnectError) as caught:
        run(SmtpConnection.open(RelayConfig.from_url(url)))
    assert caught.value.message == f"{url} tilbyr ikke STARTTLS"


def test_smtp_without_starttls_in_its_url_sends_in_plain_text_though_it_is_offered(
    tls: tuple[Path, ssl.SSLContext],
) -> None:
    # smtp:// is the operator's choice of plain text (a relay on the host or its own network):
    # STARTTLS is not tried, so a relay whose TLS is broken cannot stop such a send either.
    _, context = tls

    async def plain(url: str) -> tuple[SendOutcome, bool, bool]:
        connection = await SmtpConnection.open(RelayConfig.from_url(url))
        outcome = await connection.send(SENDER, RECIPIENT, MESSAGE)
        secured = connection._transport.get_extra_info("ssl_object") is not None
        await connection.close()
        return outcome, "STARTTLS" in connection.extensions, secured

    with SmtpSink(tls_context=context) as sink:
        url = sink.url.replace("smtp+starttls://", "smtp://")
        outcome, offered, secured = run(plain(url))
        assert len(sink.wait_for(1, 5)) == 1
    assert (outcome.kind, offered, secured) == (ReplyKind.ACCEPTED, True, False)


def test_auth_plain_logs_in(tls: tuple[Path, ssl.SSLContext]) -> None:
    ca_file, context = tls
    with SmtpSink(auth=("varsel", "hemme lig%"), tls_context=context) as sink:
        url = sink.url.replace("://", "://varsel:hemme%20lig%25@")
        outcome = run(send_one(f"{url}?ca={ca_file}"))
        assert len(sink.wait_for(1, 5)) == 1
    assert outcome.kind is ReplyKind.ACCEPTED


def test_auth_with_a_wrong_password_is_refused_without_showing_it() -> None:
    with SmtpSink(auth=("varsel", "hemmelig")) as sink:
        url = sink.url.replace("://", "://varsel:feil@")
        with pytest.raises(SmtpConnectError) as caught:
            run(SmtpConnection.open(RelayConfig.from_url(url)))
        # Without logging in, the sink refuses the sender.
        outcome = run(send_one(sink.url))
    assert caught.value.message == (
        f"smtp://varsel:***@127.0.0.1:{sink.port} godtok ikke påloggingen: "
        "535 5.7.8 Authentication credentials invalid"
    )
    assert caught.value.reply is not None
    assert caught.value.reply.kind is ReplyKind.PERMANENT
    assert outcome.reply == SmtpReply(530, "5.7.0", "Authentication required")


def test_auth_login_when_plain_is_not_offered() -> None:
    async def scenario() -> list[bytes]:
        replies = [b"220 hi", b"250-hi\r\n250 AUTH LOGIN", b"334 VXNlcm5hbWU6"]
        replies += [b"334 UGFzc3dvcmQ6", b"235 2.7.0 Authentication successful", b"221 bye"]
        async with ScriptedPeer(replies) as peer:
            config = RelayConfig.from_url(f"smtp://varsel:pw@127.0.0.1:{peer.port}")
            connection = await SmtpConnection.open(config)
            await connection.close()
        return peer.received

    lines = run(scenario())
    assert lines[1:4] == [b"AUTH LOGIN", b"dmFyc2Vs", b"cHc="]


def test_no_password_in_clear_text_to_a_remote_relay() -> None:
    # Refused before any connection is tried (.invalid never resolves in any case).
    config = RelayConfig.from_url("smtp://varsel:hemmelig@relay.example.invalid:25")
    with pytest.raises(SmtpConnectError, match="sender ikke passord over en ukryptert"):
        run(SmtpConnection.open(config))


def test_connection_refused_is_a_connect_error() -> None:
    with SmtpSink() as sink:
        url = sink.url
    with pytest.raises(SmtpConnectError, match="kunne ikke koble til"):
        run(SmtpConnection.open(RelayConfig.from_url(url)))


def test_a_refused_connection_gives_one_reason_once() -> None:
    with SmtpSink() as sink:
        url = sink.url
    with pytest.raises(SmtpConnectError) as refused:
        run(SmtpConnection.open(RelayConfig.from_url(url)))
    assert refused.value.message == f"{url}: kunne ikke koble til: tilkoblingen ble avvist"


# A scripted peer: for what no real server does on purpose (garbage, AUTH LOGIN only)


class ScriptedPeer:
    """A TCP server on loopback that answers each line it reads with the next scripted reply."""

    def __init__(self, replies: list[bytes]) -> None:
        self.replies = replies
        self.server: asyncio.Server | None = None
        self.writers: list[asyncio.StreamWriter] = []
        self.received: list[bytes] = []
        self.port = 0

    async def __aenter__(self) -> ScriptedPeer:
        async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            self.writers.append(writer)
            replies = iter(self.replies)
            writer.write(next(replies) + b"\r\n")
            for reply in replies:
                line = await reader.readline()
                if not line:
                    break
                self.received.append(line.rstrip(b"\r\n"))
                writer.write(reply + b"\r\n")
            await reader.read()  # until the client hangs up

        self.server = await asyncio.start_server(serve, "127.0.0.1", 0)
        self.port = int(self.server.sockets[0].getsockname()[1])
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.server is not None
        for writer in self.writers:
            writer.close()
        self.server.close()
        await self.server.wait_closed()


# Other event loops


def test_the_client_runs_on_uvloop(tls: tuple[Path, ssl.SSLContext]) -> None:
    # uvloop's transports are not asyncio.Transport subclasses: the client once asserted that
    # they were, in connection_made, where uvloop logs the error and the connection then waits
    # forever for its greeting. The web server runs on uvloop; any caller may.
    import uvloop

    ca_file, context = tls
    with SmtpSink() as plain, SmtpSink(tls_context=context) as secured:
        for url in (plain.url, f"{secured.url}?ca={ca_file}"):
            with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
                outcome = runner.run(asyncio.wait_for(send_one(url), 10))
            assert outcome.kind is ReplyKind.ACCEPTED
        assert plain.wait_for(1, 5)[0].data == MESSAGE
        assert secured.wait_for(1, 5)[0].data == MESSAGE


def test_a_relays_refusal_is_shown_in_the_consoles_language(sink: SmtpSink) -> None:
    # The command line's Bokmål text, and the message id the console translates it by; the
    # reason inside (a connection error's own line) is translated too.
    from varsel.web.console_auth import shown

    url = sink.url.replace("smtp://", "smtp+starttls://")
    with pytest.raises(SmtpConnectError) as caught:
        run(SmtpConnection.open(RelayConfig.from_url(url)))
    assert shown("en", caught.value.message) == f"{url} does not offer STARTTLS"
    assert shown("nn", caught.value.message) == f"{url} tilbyr ikkje STARTTLS"
    closed = sink.url.rsplit(":", 1)[0] + ":1"  # nothing listens on port 1
    with pytest.raises(SmtpConnectError) as refused:
        run(SmtpConnection.open(RelayConfig.from_url(closed)))
    assert refused.value.message.startswith(f"{closed}: kunne ikke koble til: ")
    assert shown("en", refused.value.message).startswith(f"{closed}: could not connect: ")
