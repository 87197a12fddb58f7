"""The SMTP sink for tests and the demo, driven by the standard library's smtplib."""

from __future__ import annotations

import signal
import smtplib
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from varsel.testing import Fault, FaultKind, FaultPlan, FiredFault, SmtpSink, Stage

SENDER = "varsel@politiet.example"
RECIPIENT = "post@bedrift.example"
MESSAGE = b"Subject: Sikkerhetsrad\r\n\r\n.Hei!\r\n"


def client(sink: SmtpSink) -> smtplib.SMTP:
    # A fixed name: smtplib would otherwise look up this machine's FQDN.
    return smtplib.SMTP(sink.host, sink.port, local_hostname="varsel.example", timeout=10)


def test_each_message_is_kept_and_stored_as_a_numbered_eml_file(tmp_path: Path) -> None:
    maildir = tmp_path / "mottatt"
    with SmtpSink(maildir=maildir) as sink, client(sink) as smtp:
        smtp.sendmail(SENDER, [RECIPIENT], MESSAGE)
        smtp.sendmail(SENDER, [RECIPIENT, "kopi@bedrift.example"], b"Subject: 2\r\n\r\nTo\r\n")
        first, second = sink.wait_for(2, 5)
    assert sorted(p.name for p in maildir.iterdir()) == ["1.eml", "2.eml"]
    assert (maildir / "1.eml").read_bytes() == MESSAGE
    assert first.path == maildir / "1.eml"
    assert (first.mail_from, first.rcpt_tos, first.data) == (SENDER, (RECIPIENT,), MESSAGE)
    assert second.rcpt_tos == (RECIPIENT, "kopi@bedrift.example")
    assert first.peer.startswith("127.0.0.1:")
    assert first.received_at <= second.received_at <= time.monotonic()


def test_a_maildir_used_before_keeps_its_files(tmp_path: Path) -> None:
    (tmp_path / "7.eml").write_bytes(b"old")
    with SmtpSink(maildir=tmp_path) as sink, client(sink) as smtp:
        smtp.sendmail(SENDER, [RECIPIENT], MESSAGE)
        assert sink.wait_for(1, 5)[0].path == tmp_path / "8.eml"
    assert (tmp_path / "7.eml").read_bytes() == b"old"
    assert (tmp_path / "8.eml").read_bytes() == MESSAGE


def test_url_says_how_to_reach_it() -> None:
    with SmtpSink() as sink:
        assert sink.url == f"smtp://127.0.0.1:{sink.port}"
        assert sink.port > 0


@pytest.mark.parametrize("pipelining", [True, False])
def test_ehlo_offers_pipelining_only_when_asked_and_auth_only_with_credentials(
    pipelining: bool,
) -> None:
    with SmtpSink(pipelining=pipelining) as sink, client(sink) as smtp:
        smtp.ehlo()
        assert bool(smtp.has_extn("pipelining")) is pipelining
        assert not smtp.has_extn("auth")
    with SmtpSink(auth=("varsel", "hemmelig")) as sink, client(sink) as smtp:
        smtp.ehlo()
        assert smtp.has_extn("auth")


def test_round_trips_count_the_replies_a_client_waited_for() -> None:
    with SmtpSink() as sink, client(sink) as smtp:
        smtp.ehlo()
        before = sink.round_trips
        smtp.sendmail(SENDER, [RECIPIENT], MESSAGE)
        # smtplib does not pipeline: MAIL, RCPT, DATA and the body each wait for a reply.
        assert sink.round_trips - before == 4
    assert sink.connections == 1


def test_faults_by_number_and_by_recipient_fire_and_are_counted() -> None:
    late = Fault.reply(451, "4.3.0 Try again later", stage=Stage.DATA)
    unknown = Fault.reply(550, "5.1.1 No such user")
    plan = FaultPlan().on_message(2, late).on_rcpt(lambda a: a.startswith("ukjent@"), unknown)
    with SmtpSink(faults=plan) as sink, client(sink) as smtp:
        smtp.sendmail(SENDER, [RECIPIENT], MESSAGE)
        with pytest.raises(smtplib.SMTPDataError) as data_error:
            smtp.sendmail(SENDER, [RECIPIENT], MESSAGE)
        with pytest.raises(smtplib.SMTPRecipientsRefused) as refused:
            smtp.sendmail(SENDER, ["ukjent@bedrift.example"], MESSAGE)
        assert len(sink.messages) == 1
    assert (data_error.value.smtp_code, data_error.value.smtp_error) == (
        451,
        b"4.3.0 Try again later",
    )
    assert refused.value.recipients == {"ukjent@bedrift.example": (550, b"5.1.1 No such user")}
    assert plan.history == [
        FiredFault(2, RECIPIENT, late),
        FiredFault(3, "ukjent@bedrift.example", unknown),
    ]
    assert plan.fired(FaultKind.REPLY) == 2
    assert plan.fired(FaultKind.DELAY) == 0


def test_message_numbers_run_across_connections() -> None:
    plan = FaultPlan().on_message(2, Fault.reply(550, "5.7.1 Refused", stage=Stage.MAIL))
    with SmtpSink(faults=plan) as sink:
        with client(sink) as smtp:
            smtp.sendmail(SENDER, [RECIPIENT], MESSAGE)
        with client(sink) as smtp, pytest.raises(smtplib.SMTPSenderRefused):
            smtp.sendmail(SENDER, [RECIPIENT], MESSAGE)
        assert sink.connections == 2
    assert [f.number for f in plan.history] == [2]


def test_421_replies_and_hangs_up() -> None:
    plan = FaultPlan().on_message(1, Fault.reply(421, "4.3.2 Shutting down", stage=Stage.MAIL))
    with SmtpSink(faults=plan) as sink, socket.create_connection((sink.host, sink.port), 5) as s:
        replies = s.makefile("rb")
        replies.readline()
        s.sendall(b"HELO varsel.example\r\nMAIL FROM:<varsel@politiet.example>\r\n")
        assert replies.readline().startswith(b"250 ")
        assert replies.readline() == b"421 4.3.2 Shutting down\r\n"
        assert replies.readline() == b""  # the server hung up
        replies.close()


def test_drop_mid_data_hangs_up_without_a_reply() -> None:
    plan = FaultPlan().on_message(1, Fault.drop_mid_data(after_bytes=5))
    with SmtpSink(faults=plan) as sink, client(sink) as smtp:
        with pytest.raises(smtplib.SMTPServerDisconnected):
            smtp.sendmail(SENDER, [RECIPIENT], MESSAGE)
        assert sink.messages == []
    assert plan.fired(FaultKind.DROP_MID_DATA) == 1


def test_drop_mid_data_hangs_up_on_a_body_shorter_than_asked_for() -> None:
    plan = FaultPlan().on_message(1, Fault.drop_mid_data(after_bytes=1_000_000))
    with SmtpSink(faults=plan) as sink, client(sink) as smtp:
        with pytest.raises(smtplib.SMTPServerDisconnected):
            smtp.sendmail(SENDER, [RECIPIENT], MESSAGE)
        assert sink.messages == []


def test_accept_then_drop_keeps_the_message_but_never_says_so() -> None:
    plan = FaultPlan().on_message(1, Fault.accept_then_drop())
    with SmtpSink(faults=plan) as sink, client(sink) as smtp:
        with pytest.raises(smtplib.SMTPServerDisconnected):
            smtp.sendmail(SENDER, [RECIPIENT], MESSAGE)
        assert [m.data for m in sink.wait_for(1, 5)] == [MESSAGE]
    assert plan.fired(FaultKind.ACCEPT_THEN_DROP) == 1


def test_delay_slows_the_reply_and_then_goes_on() -> None:
    plan = FaultPlan().on_message(1, Fault.delay(0.3, stage=Stage.RCPT))
    with SmtpSink(faults=plan) as sink, client(sink) as smtp:
        started = time.monotonic()
        smtp.sendmail(SENDER, [RECIPIENT], MESSAGE)
        assert time.monotonic() - started >= 0.3
        assert len(sink.wait_for(1, 5)) == 1
    assert plan.fired(FaultKind.DELAY) == 1


def test_auth_is_required_before_mail_when_credentials_are_given() -> None:
    with SmtpSink(auth=("varsel", "hemmelig")) as sink:
        with client(sink) as smtp, pytest.raises(smtplib.SMTPSenderRefused) as refused:
            smtp.sendmail(SENDER, [RECIPIENT], MESSAGE)
        assert refused.value.smtp_code == 530
        with client(sink) as smtp, pytest.raises(smtplib.SMTPAuthenticationError):
            smtp.login("varsel", "feil")
        with client(sink) as smtp:
            smtp.login("varsel", "hemmelig")
            smtp.sendmail(SENDER, [RECIPIENT], MESSAGE)
        assert len(sink.wait_for(1, 5)) == 1


def test_wait_for_says_how_many_came() -> None:
    with SmtpSink() as sink, pytest.raises(TimeoutError) as caught:
        sink.wait_for(1, 0.1)
    assert str(caught.value) == "SMTP-mottaket fikk 0 av 1 meldinger på 0.1 s"


def test_stopping_with_a_client_still_connected_hangs_up_on_it() -> None:
    sink = SmtpSink().start()
    with client(sink) as smtp:
        smtp.ehlo()
        sink.stop()
        sink.stop()  # twice is harmless
        with pytest.raises(smtplib.SMTPServerDisconnected):
            smtp.noop()


def test_command_line_runs_the_sink_in_the_foreground(tmp_path: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    maildir = tmp_path / "mottatt"
    command = [sys.executable, "-m", "varsel.testing", "--port", str(port)]
    process = subprocess.Popen(
        [*command, "--maildir", str(maildir)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert process.stdout is not None
        assert process.stdout.readline() == f"Tar imot e-post på smtp://127.0.0.1:{port}\n"
        assert process.stdout.readline() == (
            f"Meldingene lagres i {maildir.resolve()}/ (Ctrl-C avslutter)\n"
        )
        with smtplib.SMTP("127.0.0.1", port, local_hostname="varsel.example", timeout=10) as smtp:
            smtp.sendmail(SENDER, [RECIPIENT], MESSAGE)
        assert process.stdout.readline() == (
            f"{maildir / '1.eml'}: fra <{SENDER}> til {RECIPIENT} ({len(MESSAGE)} byte)\n"
        )
        process.send_signal(signal.SIGINT)
        rest, _ = process.communicate(timeout=60)  # generous: CI machines can be loaded
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        if process.stdout is not None:
            process.stdout.close()
    assert rest == "\nMottok 1 meldinger.\n"
    assert process.returncode == 0
    assert (maildir / "1.eml").read_bytes() == MESSAGE


def test_command_line_says_when_the_port_is_taken(tmp_path: Path) -> None:
    with SmtpSink() as sink:
        result = subprocess.run(
            [sys.executable, "-m", "varsel.testing", "--port", str(sink.port)],
            capture_output=True,
            text=True,
            cwd=tmp_path,
            check=False,
            timeout=30,
        )
    assert result.returncode == 2
    assert result.stderr.startswith(f"kan ikke lytte på 127.0.0.1:{sink.port}: ")


def test_the_sinks_help_is_in_bokmal(capsys: pytest.CaptureFixture[str]) -> None:
    from varsel.testing import main

    with pytest.raises(SystemExit) as done:
        main(["--help"])
    assert done.value.code == 0
    shown = capsys.readouterr().out
    assert shown.startswith("Bruk: python -m varsel.testing")
    assert "Valg:" in shown
    assert "vis denne hjelpen og avslutt" in shown
    assert "usage" not in shown
    assert "options" not in shown
