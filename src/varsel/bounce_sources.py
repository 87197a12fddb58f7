"""Where bounces come from: a pipe, an mbox file, a Maildir, an IMAP mailbox.

Each message is handed to `bounces.BounceIntake`; what it did is counted (`IngestSummary`).
A message kept aside (unrecognised, forged, or its delivery unknown) goes to a Maildir for an
operator: `--keep` for a pipe or an mbox, the Maildir's own `.unrecognised` folder, or the
IMAP keyword `$VarselUnrecognised` (left unread).
"""

from __future__ import annotations

import contextlib
import imaplib
import mailbox
import os
import ssl
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from varsel.bounces import BounceIntake, IngestSummary, Outcome
from varsel.config import Settings
from varsel.errors import UserError, os_reason, quoted, redact_url


class BounceInputError(UserError):
    """The bounce input cannot be read."""


class KeepFolderError(UserError):
    """The Maildir for messages kept aside cannot be made: the setup's fault, not the input's
    (so `--tempfail` keeps the MTA's message for a later try)."""


def ingest_many(
    intake: BounceIntake,
    messages: Iterable[tuple[bytes, Any]],
    source: str,
    keep: mailbox.Maildir | None = None,
) -> tuple[IngestSummary, list[tuple[Any, Outcome]]]:
    """Take in (message, handle) pairs; those kept aside are copied into keep if given."""
    summary = IngestSummary()
    done: list[tuple[Any, Outcome]] = []
    for raw, handle in messages:
        outcome = intake.ingest(raw, source)
        summary.add(outcome)
        if outcome.kept_aside and keep is not None:
            _keep(keep, raw)  # nothing was stored for it: taken in again, it is kept then
        done.append((handle, outcome))
    return summary, done


def ingest_bytes(intake: BounceIntake, raw: bytes, keep: Path | None = None) -> IngestSummary:
    """One message, from a pipe."""
    if not raw.strip():
        raise BounceInputError("ingen melding på standard inn")
    summary, _ = ingest_many(intake, [(raw, None)], "stdin", _maildir(keep) if keep else None)
    return summary


def ingest_mbox(intake: BounceIntake, path: Path, keep: Path | None = None) -> IngestSummary:
    """Every message of an mbox file (left as it is; taking one twice does nothing)."""
    if not path.is_file():
        raise BounceInputError(f"{path}: finnes ikke eller er ikke en fil")
    try:
        with path.open("rb") as f:
            start = f.read(5)
    except OSError as e:
        raise BounceInputError(f"{path}: kan ikke leses ({os_reason(e)})") from None
    # An mbox starts with its first message's "From " line; mailbox passes by whatever comes
    # before one, so a single .eml (or any other file) would be "0 meldinger" and taken in.
    if start and start != b"From ":
        raise BounceInputError(
            f"{path}: er ikke en mbox (den første linjen begynner ikke med «From »); "
            "én melding tas inn fra standard inn: varsel bounces ingest < FIL"
        )
    box = mailbox.mbox(path, create=False)
    try:
        messages = ((box.get_bytes(k), k) for k in box.iterkeys())
        summary, _ = ingest_many(intake, messages, "mbox", _maildir(keep) if keep else None)
    finally:
        box.close()
    return summary


def ingest_maildir(intake: BounceIntake, path: Path) -> IngestSummary:
    """New and unseen messages of a Maildir: then seen, or moved to its .unrecognised folder.

    Each message's file is renamed into cur/ with the seen flag, never written again: the
    message stays byte for byte as it came (mailbox would write it anew from its parse, line
    ends and broken MIME "repaired"), and a message seen before is passed by on its name.
    """
    if not all((path / d).is_dir() for d in ("new", "cur", "tmp")):
        raise BounceInputError(f"{path}: ikke en Maildir (mangler new/, cur/ eller tmp/)")
    aside = _maildir(path / ".unrecognised")
    summary = IngestSummary()
    for file in _unseen(path):
        try:
            raw = file.read_bytes()
        except FileNotFoundError:
            continue  # taken in and moved by another intake meanwhile
        except OSError as e:
            raise BounceInputError(f"{file}: kan ikke leses ({os_reason(e)})") from None
        outcome = intake.ingest(raw, "maildir")
        summary.add(outcome)
        if outcome.kept_aside:
            _keep(aside, raw)
            file.unlink(missing_ok=True)
        else:
            _mark_seen(file, path / "cur")
    return summary


def _unseen(path: Path) -> list[Path]:
    """The files of new/, and those of cur/ without the seen flag, in the order they came."""
    found: list[tuple[str, Path]] = []
    for sub in ("new", "cur"):
        for name in os.listdir(path / sub):
            if name.startswith("."):
                continue  # not a message (as mailbox passes such names by)
            key, _, info = name.partition(":")
            if sub == "cur" and info.startswith("2,") and "S" in info[2:]:
                continue
            found.append((key, path / sub / name))
    return [file for _, file in sorted(found)]


def _mark_seen(file: Path, cur: Path) -> None:
    """Move a message's file to cur/ with the seen flag (the Maildir way: a rename)."""
    key, _, info = file.name.partition(":")
    flags = info[2:] if info.startswith("2,") else ""
    seen = f"{key}:2,{''.join(sorted(set(flags) | {'S'}))}"
    with contextlib.suppress(FileNotFoundError):  # moved by another intake meanwhile
        file.rename(cur / seen)


def _maildir(path: Path) -> mailbox.Maildir:
    if path.exists() and not path.is_dir():
        raise KeepFolderError(f"{path}: er en fil, ikke en mappe for en Maildir")
    try:
        box = mailbox.Maildir(path, factory=None, create=True)
        # Maildir makes new/, cur/ and tmp/ only in a folder it makes itself: an existing empty
        # folder would fail at the first message, after it was taken in.
        for sub in ("new", "cur", "tmp"):
            (path / sub).mkdir(exist_ok=True)
    except OSError as e:
        raise KeepFolderError(f"{path}: kan ikke lage Maildir: {os_reason(e)}") from None
    return box


def _keep(box: mailbox.Maildir, raw: bytes) -> None:
    try:
        box.add(raw)
    except OSError as e:
        raise KeepFolderError(
            f"{box._path}: kan ikke legge meldingen til side: {os_reason(e)}"
        ) from None


# -- IMAP -----------------------------------------------------------------------------

DONE = "$VarselDone"  # keyword on every message taken in: each is fetched once
ASIDE = "$VarselUnrecognised"  # and on those kept aside (left unread, for an operator)


@dataclass(frozen=True)
class ImapMailbox:
    """Where `bounces poll` reads: imaps://user@host[:port]/MAILBOX, or imap:// (STARTTLS)."""

    host: str
    port: int
    user: str
    password: str
    mailbox: str
    implicit_tls: bool
    ca_file: str | None = None

    @classmethod
    def from_url(cls, url: str, settings: Settings) -> ImapMailbox:
        parts = urlsplit(url)
        if parts.scheme not in ("imap", "imaps") or not parts.hostname or not parts.username:
            raise BounceInputError(
                f"ugyldig IMAP-adresse {quoted(redact_url(url))}: bruk imaps://bruker@vert/INBOX "
                "eller imap://bruker@vert/INBOX (STARTTLS)"
            )
        password = unquote(parts.password or "") or settings.imap_password
        if not password:
            raise BounceInputError("IMAP-passordet mangler: sett VARSEL_IMAP_PASSWORD")
        try:
            port = parts.port or (993 if parts.scheme == "imaps" else 143)
        except ValueError:
            raise BounceInputError(
                f"ugyldig port i IMAP-adressen {quoted(redact_url(url))}"
            ) from None
        return cls(
            host=parts.hostname,
            port=port,
            user=unquote(parts.username),
            password=password,
            mailbox=unquote(parts.path.lstrip("/")) or "INBOX",
            implicit_tls=parts.scheme == "imaps",
            ca_file=settings.imap_ca_file or None,
        )

    def connect(self, timeout: float = 30.0) -> imaplib.IMAP4:
        """A logged-in connection, always over TLS with the certificate checked."""
        context = ssl.create_default_context(cafile=self.ca_file)
        where = f"{self.host}:{self.port}"
        conn: imaplib.IMAP4 | None = None
        try:
            if self.implicit_tls:
                conn = imaplib.IMAP4_SSL(self.host, self.port, ssl_context=context, timeout=timeout)
            else:
                conn = imaplib.IMAP4(self.host, self.port, timeout=timeout)
                conn.starttls(ssl_context=context)
            conn.login(self.user, self.password)
        except (OSError, imaplib.IMAP4.error) as e:
            if conn is not None:
                with contextlib.suppress(OSError):
                    conn.shutdown()
            raise BounceInputError(f"IMAP {where}: {_reason(e)}") from None
        return conn


def poll_imap(intake: BounceIntake, box: ImapMailbox) -> IngestSummary:
    """One pass over the mailbox: every message without the DONE keyword, taken in once."""
    conn = box.connect()
    summary = IngestSummary()
    try:
        status, _ = conn.select(_quoted(box.mailbox))
        if status != "OK":
            raise BounceInputError(f"IMAP: finner ikke postkassen {quoted(box.mailbox)}")
        _, data = conn.uid("SEARCH", "UNKEYWORD", DONE)
        for uid in (data[0] or b"").decode("ascii").split():
            _, fetched = conn.uid("FETCH", uid, "(BODY.PEEK[])")
            raw = next(
                (item[1] for item in fetched if isinstance(item, tuple) and len(item) > 1), None
            )
            if not isinstance(raw, bytes):
                continue  # expunged by someone else meanwhile
            outcome = intake.ingest(raw, "imap")
            summary.add(outcome)
            flags = f"({DONE} {ASIDE})" if outcome.kept_aside else f"(\\Seen {DONE})"
            conn.uid("STORE", uid, "+FLAGS.SILENT", flags)
        conn.close()
    except (OSError, imaplib.IMAP4.error) as e:
        raise BounceInputError(f"IMAP {box.host}:{box.port}: {_reason(e)}") from None
    finally:
        # If the connection is gone already, what was taken in is committed all the same.
        with contextlib.suppress(OSError, imaplib.IMAP4.error):
            conn.logout()
    return summary


def poll_forever(
    intake: BounceIntake, box: ImapMailbox, interval: float, report: Any = None
) -> None:
    """Poll every interval seconds until interrupted; report(summary) after each pass."""
    while True:
        summary = poll_imap(intake, box)
        if report is not None:
            report(summary)
        time.sleep(interval)


def _quoted(name: str) -> str:
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _reason(e: BaseException) -> str:
    if isinstance(e, ssl.SSLCertVerificationError):
        return f"sertifikatet godtas ikke: {e.reason} ({e.verify_message})"
    if isinstance(e, ssl.SSLError):
        return f"TLS: {e.reason or e}"
    if isinstance(e, OSError):
        return os_reason(e) or type(e).__name__
    text = e.args[0] if e.args else str(e)
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    return str(text) or type(e).__name__
