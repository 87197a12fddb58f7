# The campaign fixture is imported from test_bounces, so the tests' parameters of that name
# redefine the import, as pytest means them to.
# ruff: noqa: F811
from __future__ import annotations

import contextlib
import mailbox
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from test_bounces import (  # noqa: F401  # campaign is a fixture
    DATA,
    RODEKORS,
    ROOT,
    TOMRA,
    Campaign,
    bounce,
    campaign,
    intake,
    state,
    suppressions,
    unsubscribe_mail,
)
from varsel.bounce_sources import (
    ASIDE,
    DONE,
    BounceInputError,
    ImapMailbox,
    KeepFolderError,
    ingest_bytes,
    ingest_maildir,
    ingest_mbox,
    poll_imap,
)
from varsel.config import Settings
from varsel.db import Database

# -- sources -------------------------------------------------------------------------------


def test_maildir_takes_each_message_once_and_puts_the_unrecognised_aside(
    db: Database, campaign: Campaign, tmp_path: Path
) -> None:
    box = mailbox.Maildir(tmp_path / "Maildir", create=True)
    box.add(bounce("postfix-5.1.1.eml", campaign.sent[TOMRA]))
    box.add(bounce("vacation-rfc3834.eml", campaign.sent[RODEKORS]))
    box.add((DATA / "flufl" / "groupwise_03.txt").read_bytes())
    first = ingest_maildir(intake(db, campaign), tmp_path / "Maildir")
    assert first.as_dict() == {
        "hard": 1,
        "soft": 0,
        "policy": 0,
        "complaint": 0,
        "auto_reply": 1,
        "unsubscribe": 0,
        "unrecognised": 1,
        "forged": 0,
        "unmatched": 0,
        "duplicate": 0,
    }
    aside = mailbox.Maildir(tmp_path / "Maildir" / ".unrecognised", create=False)
    assert [m["Subject"] for m in aside] == ["RE: Vuille  - (PO28169) - IND"]
    assert sorted(m.get_flags() for m in mailbox.Maildir(tmp_path / "Maildir")) == ["S", "S"]
    assert ingest_maildir(intake(db, campaign), tmp_path / "Maildir").total == 0


def test_maildir_messages_are_moved_as_they_came_not_written_anew(
    db: Database, campaign: Campaign, tmp_path: Path
) -> None:
    # mailbox wrote each message anew from its parse: CRLF became LF, a broken MIME part was
    # "repaired", so the copy an operator keeps was no longer what the server sent.
    path = tmp_path / "Maildir"
    mailbox.Maildir(path, create=True)
    hard = bounce("postfix-5.1.1.eml", campaign.sent[TOMRA]).replace(b"\n", b"\r\n")
    unknown = b"Subject: hei\r\nContent-Type: multipart/mixed; boundary=q\r\n\r\n--q\r\nbroken"
    (path / "new" / "1676362324.M1P1.varsel").write_bytes(hard)
    (path / "cur" / "1676362325.M2P1.varsel:2,F").write_bytes(unknown)  # flagged, not seen
    summary = ingest_maildir(intake(db, campaign), path)
    assert (summary.counts["hard"], summary.counts["unrecognised"]) == (1, 1)
    assert sorted(p.name for p in (path / "new").iterdir()) == []
    assert [p.name for p in (path / "cur").iterdir()] == ["1676362324.M1P1.varsel:2,S"]
    assert (path / "cur" / "1676362324.M1P1.varsel:2,S").read_bytes() == hard
    aside = mailbox.Maildir(path / ".unrecognised", create=False)
    assert [aside.get_bytes(k) for k in aside.iterkeys()] == [unknown]
    assert ingest_maildir(intake(db, campaign), path).total == 0


def test_mbox_taken_twice_counts_duplicates(
    db: Database, campaign: Campaign, tmp_path: Path
) -> None:
    box = mailbox.mbox(tmp_path / "returer.mbox", create=True)
    box.add(bounce("gmail-5.1.1.eml", campaign.sent[TOMRA]))
    box.add(bounce("postfix-gmail-5.7.26.eml", campaign.sent[RODEKORS]))
    box.close()
    first = ingest_mbox(intake(db, campaign), tmp_path / "returer.mbox")
    second = ingest_mbox(intake(db, campaign), tmp_path / "returer.mbox")
    assert (first.counts["hard"], first.counts["policy"]) == (1, 1)
    assert second.counts["duplicate"] == 2
    assert second.summary() == (
        "2 meldinger: 0 harde returer, 0 myke, 0 avvist av mottakers regler, 0 klager, "
        "0 autosvar, 0 avmeldinger, 0 ukjente, 0 forfalskede, 0 uten kjent levering, "
        "2 tatt inn før."
    )


def test_nul_characters_in_a_report_stop_neither_the_mbox_nor_the_store(
    db: Database, campaign: Campaign, tmp_path: Path
) -> None:
    # PostgreSQL refuses NUL in text: the message stopped the mbox there, with a traceback.
    to = campaign.sent[TOMRA]
    broken = (
        bounce("postfix-5.1.1.eml", to)
        .replace(b"Message-Id: <4PGQ1m2Yd1z9sTR@", b"Message-Id: <4PGQ1m2Yd1z9\x00sTR@")
        .replace(b"Final-Recipient: rfc822; ", b"Final-Recipient: rfc822; \x00")
        .replace(b"Recipient address\n    rejected", b"Recipient address\x00\n    rejected")
    )
    box = mailbox.mbox(tmp_path / "returer.mbox", create=True)
    box.add(broken)
    box.add(bounce("postfix-gmail-5.7.26.eml", campaign.sent[RODEKORS]))
    box.close()
    first = ingest_mbox(intake(db, campaign), tmp_path / "returer.mbox")
    assert (first.counts["hard"], first.counts["policy"]) == (1, 1)
    assert state(db, to.id) == (
        "bounced",
        f"5.1.1 smtp; 550 5.1.1 <{TOMRA}>: Recipient address rejected: User unknown in "
        "virtual mailbox table",
    )
    assert db.scalar("SELECT key FROM bounce_messages WHERE delivery_id = ?", (to.id,)) == (
        "mid:<4PGQ1m2Yd1z9sTR@relay.nsr-org.no>"
    )
    assert ingest_mbox(intake(db, campaign), tmp_path / "returer.mbox").counts["duplicate"] == 2


def test_a_single_message_given_as_an_mbox_is_refused_not_passed_by(
    db: Database, campaign: Campaign, tmp_path: Path
) -> None:
    # mailbox reads messages from "From " lines only: a .eml was "0 meldinger", status 0.
    eml = tmp_path / "retur.eml"
    eml.write_bytes(bounce("gmail-5.1.1.eml", campaign.sent[TOMRA]))
    with pytest.raises(BounceInputError) as caught:
        ingest_mbox(intake(db, campaign), eml)
    assert caught.value.message == (
        f"{eml}: er ikke en mbox (den første linjen begynner ikke med «From »); "
        "én melding tas inn fra standard inn: varsel bounces ingest < FIL"
    )
    assert db.scalar("SELECT count(*) FROM bounce_messages") == 0
    (tmp_path / "empty.mbox").write_bytes(b"")  # an empty mailbox is one
    assert ingest_mbox(intake(db, campaign), tmp_path / "empty.mbox").total == 0


def test_pipe_keeps_an_unrecognised_message_where_told(
    db: Database, campaign: Campaign, tmp_path: Path
) -> None:
    raw = (DATA / "flufl" / "bounce_01.txt").read_bytes()
    summary = ingest_bytes(intake(db, campaign), raw, keep=tmp_path / "aside")
    assert summary.counts["unrecognised"] == 1
    assert [m["Subject"] for m in mailbox.Maildir(tmp_path / "aside")] == ["Mail Error"]


def test_an_existing_empty_folder_to_keep_in_becomes_a_maildir(
    db: Database, campaign: Campaign, tmp_path: Path
) -> None:
    # mailbox.Maildir makes new/, cur/ and tmp/ only in a folder it makes itself.
    (tmp_path / "aside").mkdir()
    raw = (DATA / "flufl" / "bounce_01.txt").read_bytes()
    ingest_bytes(intake(db, campaign), raw, keep=tmp_path / "aside")
    assert [m["Subject"] for m in mailbox.Maildir(tmp_path / "aside")] == ["Mail Error"]


def test_a_folder_to_keep_in_that_cannot_be_made_is_not_an_input_error(
    db: Database, campaign: Campaign, tmp_path: Path
) -> None:
    (tmp_path / "file").write_text("x", "ascii")
    raw = (DATA / "flufl" / "bounce_01.txt").read_bytes()
    with pytest.raises(KeepFolderError, match=r"file: er en fil, ikke en mappe for en Maildir$"):
        ingest_bytes(intake(db, campaign), raw, keep=tmp_path / "file")
    with pytest.raises(KeepFolderError, match=r"kan ikke lage Maildir: "):
        ingest_bytes(intake(db, campaign), raw, keep=tmp_path / "file" / "aside")
    assert not issubclass(KeepFolderError, BounceInputError)  # --tempfail: 75, not 2


def test_empty_pipe_and_missing_sources_are_user_errors(
    db: Database, campaign: Campaign, tmp_path: Path
) -> None:
    run = intake(db, campaign)
    with pytest.raises(BounceInputError, match=r"^ingen melding på standard inn$"):
        ingest_bytes(run, b"\n")
    with pytest.raises(
        BounceInputError, match=r"ikke en Maildir \(mangler new/, cur/ eller tmp/\)"
    ):
        ingest_maildir(run, tmp_path)
    with pytest.raises(BounceInputError, match="finnes ikke eller er ikke en fil"):
        ingest_mbox(run, tmp_path / "none.mbox")


# -- IMAP, against a real Dovecot on loopback ----------------------------------------------


@dataclass(frozen=True)
class Dovecot:
    imap_port: int
    imaps_port: int
    ca_file: Path


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _certificate(folder: Path) -> None:
    """A self-signed certificate for 127.0.0.1, which the client is told to trust."""
    subprocess.run(
        [
            "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
            "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
            "-keyout", str(folder / "key.pem"), "-out", str(folder / "cert.pem"),
        ],
        check=True,
        capture_output=True,
    )  # fmt: skip


@pytest.fixture(scope="module")
def dovecot() -> Iterator[Dovecot]:
    """Dovecot in the foreground, on free loopback ports; mail kept as the `mail` user."""
    subprocess.run([str(ROOT / "scripts" / "ensure-dovecot")], check=True)  # quick if there
    # Dovecot's login processes run as dovenull and must reach base_dir: not under pytest's
    # private tmp folders.
    base = Path(tempfile.mkdtemp(prefix="varsel-dovecot-"))
    base.chmod(0o755)
    (base / "mail").mkdir()
    shutil.chown(base / "mail", "mail", "mail")
    _certificate(base)
    imap_port, imaps_port = _free_port(), _free_port()
    (base / "dovecot.conf").write_text(
        f"""
protocols = imap
listen = 127.0.0.1
base_dir = {base}/run
state_dir = {base}/state
log_path = {base}/dovecot.log
ssl = required
ssl_cert = <{base}/cert.pem
ssl_key = <{base}/key.pem
auth_mechanisms = plain
first_valid_uid = 8
last_valid_uid = 8
mail_location = maildir:{base}/mail/%u
passdb {{
  driver = static
  args = password=hemmelig
}}
userdb {{
  driver = static
  args = uid=mail gid=mail home={base}/mail/%u
}}
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {imap_port}
  }}
  inet_listener imaps {{
    address = 127.0.0.1
    port = {imaps_port}
    ssl = yes
  }}
}}
""",
        "ascii",
    )
    output = (base / "output.log").open("wb")
    process = subprocess.Popen(
        ["/usr/sbin/dovecot", "-F", "-c", str(base / "dovecot.conf")],
        stdout=output,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 15
        while True:
            with (
                contextlib.suppress(OSError),
                socket.create_connection(("127.0.0.1", imaps_port), 1),
            ):
                break
            if process.poll() is not None or time.monotonic() > deadline:
                logs = [
                    p.read_text() for p in (base / "output.log", base / "dovecot.log") if p.exists()
                ]
                raise RuntimeError(f"dovecot did not start: {logs}")
            time.sleep(0.1)
        yield Dovecot(imap_port, imaps_port, base / "cert.pem")
    finally:
        process.terminate()
        process.wait(10)
        output.close()
        shutil.rmtree(base, ignore_errors=True)


def _mailbox(dovecot: Dovecot, user: str, scheme: str = "imaps") -> ImapMailbox:
    port = dovecot.imaps_port if scheme == "imaps" else dovecot.imap_port
    settings = Settings.load(
        environ={"VARSEL_IMAP_PASSWORD": "hemmelig", "VARSEL_IMAP_CA_FILE": str(dovecot.ca_file)}
    )
    return ImapMailbox.from_url(f"{scheme}://{user}@127.0.0.1:{port}/INBOX", settings)


def _append(box: ImapMailbox, *messages: bytes) -> None:
    conn = box.connect()
    for raw in messages:
        conn.append("INBOX", None, None, raw)
    conn.logout()


def _flags(box: ImapMailbox) -> list[str]:
    conn = box.connect()
    conn.select("INBOX", readonly=True)
    _, data = conn.fetch("1:*", "(FLAGS)")
    conn.logout()
    return [
        " ".join(sorted(item.decode().split("FLAGS (")[1].rstrip(")").split()))
        for item in data
        if isinstance(item, bytes)
    ]


def test_imap_poll_takes_each_message_once_and_flags_it(
    db: Database, campaign: Campaign, dovecot: Dovecot
) -> None:
    box = _mailbox(dovecot, f"bounces-{os.getpid()}-{db.dialect}@nsr-org.no")
    _append(
        box,
        bounce("office365-5.1.10.eml", campaign.sent[TOMRA]),
        (DATA / "flufl" / "groupwise_03.txt").read_bytes(),
    )
    first = poll_imap(intake(db, campaign), box)
    assert (first.counts["hard"], first.counts["unrecognised"]) == (1, 1)
    assert state(db, campaign.sent[TOMRA].id)[0] == "bounced"
    assert _flags(box) == [f"{DONE} \\Seen", f"{DONE} {ASIDE}"]
    assert poll_imap(intake(db, campaign), box).total == 0


def test_imap_poll_takes_an_unsubscribe_mail_in(
    db: Database, campaign: Campaign, dovecot: Dovecot
) -> None:
    # The avmelding@ mailbox polled like the bounce mailbox.
    box = _mailbox(dovecot, f"avmelding-{os.getpid()}-{db.dialect}@nsr-org.no")
    _append(box, unsubscribe_mail(campaign.sent[RODEKORS], prefix="Re: "))
    summary = poll_imap(intake(db, campaign), box)
    assert summary.as_dict()["unsubscribe"] == 1
    assert suppressions(db) == [
        ("address", RODEKORS, "unsubscribed", f"mail:delivery:{campaign.sent[RODEKORS].id}")
    ]
    assert _flags(box) == [f"{DONE} \\Seen"]


def test_imap_with_starttls(db: Database, campaign: Campaign, dovecot: Dovecot) -> None:
    box = _mailbox(dovecot, f"starttls-{os.getpid()}-{db.dialect}@nsr-org.no", "imap")
    _append(box, bounce("arf-abuse.eml", campaign.sent[RODEKORS]))
    assert poll_imap(intake(db, campaign), box).counts["complaint"] == 1


def test_imap_refuses_an_untrusted_certificate(dovecot: Dovecot) -> None:
    settings = Settings.load(environ={"VARSEL_IMAP_PASSWORD": "hemmelig"})
    box = ImapMailbox.from_url(f"imaps://a@127.0.0.1:{dovecot.imaps_port}/INBOX", settings)
    with pytest.raises(
        BounceInputError,
        match=r"^IMAP 127\.0\.0\.1:\d+: sertifikatet godtas ikke: CERTIFICATE_VERIFY_FAILED "
        r"\(self-signed certificate\)$",
    ):
        box.connect()


def test_imap_wrong_password_is_one_line(dovecot: Dovecot) -> None:
    settings = Settings.load(
        environ={"VARSEL_IMAP_PASSWORD": "feil", "VARSEL_IMAP_CA_FILE": str(dovecot.ca_file)}
    )
    box = ImapMailbox.from_url(f"imaps://a@127.0.0.1:{dovecot.imaps_port}/INBOX", settings)
    with pytest.raises(
        BounceInputError,
        match=r"^IMAP 127\.0\.0\.1:\d+: \[AUTHENTICATIONFAILED\] Authentication failed\.$",
    ):
        box.connect()


def test_imap_url_must_name_a_user_and_a_password_must_be_set() -> None:
    settings = Settings.load(environ={})
    with pytest.raises(BounceInputError, match="ugyldig IMAP-adresse «https://x/»"):
        ImapMailbox.from_url("https://x/", settings)
    with pytest.raises(
        BounceInputError, match=r"^ugyldig port i IMAP-adressen «imaps://b:\*\*\*@x:99999/»$"
    ):
        ImapMailbox.from_url("imaps://b:pw@x:99999/", settings)
    with pytest.raises(
        BounceInputError, match=r"^IMAP-passordet mangler: sett VARSEL_IMAP_PASSWORD$"
    ):
        ImapMailbox.from_url("imaps://bounces@mail.nsr-org.no/INBOX", settings)
    box = ImapMailbox.from_url("imap://bounces%40nsr-org.no:pw@mail.nsr-org.no/Returer", settings)
    assert (box.user, box.password, box.port, box.mailbox, box.implicit_tls) == (
        "bounces@nsr-org.no",
        "pw",
        143,
        "Returer",
        False,
    )
