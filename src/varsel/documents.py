"""Sending a campaign's document by e-mail: signed, expiring download links, one pending at a time.

The link carries the request's id and expiry, signed with the site's secret (HMAC-SHA256), so a
changed or made-up link is refused without a lookup. An address holds at most one link that is
neither used nor expired: the form cannot be used to flood a third party's inbox.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import format_datetime
from enum import StrEnum
from pathlib import Path
from zoneinfo import ZoneInfo

from babel.dates import format_datetime as local_datetime

from varsel.campaign import CampaignSpec
from varsel.channel.smtp import SmtpConnectError, SmtpConnection
from varsel.channel.smtp_relay import RelayConfig
from varsel.channel.smtp_replies import ReplyKind
from varsel.clock import utcnow_iso
from varsel.config import Settings
from varsel.db import Database
from varsel.digits import ascii_digits
from varsel.dkim import Signer, load_key
from varsel.errors import Text
from varsel.message_fields import (
    clean_text,
    header_address,
    phrase,
    subject_field,
)
from varsel.outbox import record_event
from varsel.quoted_printable import QuotedPrintable


class LinkProblem(StrEnum):
    """Why a download link is refused."""

    INVALID = "invalid"  # not a link we made, or changed since
    EXPIRED = "expired"  # ours, but too old


@dataclass(frozen=True)
class Pending:
    """A link already sent to the address and still usable."""

    expires_at: str


@dataclass(frozen=True)
class Issued:
    """A new link: the row that records it and the token to put in the URL."""

    request_id: int
    token: str
    expires_at: str


@dataclass(frozen=True)
class Valid:
    """A link that checks out: which request and campaign it is for."""

    request_id: int
    campaign_id: int


def _iso(unix: int) -> str:
    return datetime.fromtimestamp(unix, UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")


def _signature(secret: bytes, request_id: int, expires: int) -> str:
    mac = hmac.new(secret, f"document:{request_id}:{expires}".encode(), hashlib.sha256)
    return base64.urlsafe_b64encode(mac.digest()).decode("ascii").rstrip("=")


# Providers that deliver every dotted spelling of a local part to one mailbox, and their name.
_DOTLESS = {"gmail.com": "gmail.com", "googlemail.com": "gmail.com"}


def mailbox(address: str) -> str:
    """The mailbox an address delivers to, for the limits: victim+1@x.no is victim@x.no.

    Lower case, without a "+tag" (and without dots at gmail.com and googlemail.com, one
    mailbox under either name), so that sub-addresses share one limit and one pending link.
    The e-mail still goes to the address as typed; this is only what it is counted as.
    """
    local, at, domain = address.lower().rpartition("@")
    if not at:
        return address.lower()
    local = local.split("+", 1)[0] or local  # "+tag@x.no" alone is its own odd mailbox
    if domain in _DOTLESS:
        domain = _DOTLESS[domain]
        local = local.replace(".", "") or local
    return f"{local}@{domain}"


def _address_lock(db: Database, address: str) -> None:
    # SQLite's BEGIN IMMEDIATE already serialises writers; PostgreSQL needs a lock on the
    # mailbox, or two requests at once could both see "no pending link" and both send.
    if db.dialect == "postgresql":
        digest = hashlib.sha256(mailbox(address).encode("utf-8")).digest()
        db.execute(
            "SELECT pg_advisory_xact_lock(?)", (int.from_bytes(digest[:8], "big", signed=True),)
        )


def issue(
    db: Database,
    secret: bytes,
    campaign_id: int,
    address: str,
    *,
    valid_seconds: int,
    now: float | None = None,
) -> Issued | Pending:
    """A new signed link for the address, or the pending one that stops a second."""
    at = int(time.time() if now is None else now)
    expires = at + valid_seconds
    with db.transaction():
        _address_lock(db, address)
        found = pending(db, address, now=at)
        if found is not None:
            return found
        request_id = int(
            db.execute(
                "INSERT INTO document_requests (campaign_id, address, created_at, expires_at) "
                "VALUES (?, ?, ?, ?) RETURNING id",
                (campaign_id, address, utcnow_iso(), _iso(expires)),
            ).fetchone()[0]
        )
        record_event(db, campaign_id, None, "document_requested", {"request": request_id})
    token = f"{request_id}.{expires}.{_signature(secret, request_id, expires)}"
    return Issued(request_id, token, _iso(expires))


def pending(db: Database, address: str, *, now: float | None = None) -> Pending | None:
    """The link sent to the address's mailbox (see mailbox()) that is neither used nor expired."""
    at = int(time.time() if now is None else now)
    wanted = mailbox(address)
    # The rows keep the address as typed (erasure and the report match it), so the mailbox's
    # are found by its domain and compared here; the domain's own limit keeps them few.
    domains = [d for d, name in _DOTLESS.items() if name == wanted.rpartition("@")[2]] or [
        wanted.rpartition("@")[2]
    ]
    like = " OR ".join("lower(address) LIKE ? ESCAPE '!'" for _ in domains)
    rows = db.query(
        f"SELECT address, expires_at FROM document_requests WHERE ({like}) "
        "AND expires_at > ? AND downloaded_at IS NULL",
        (*("%@" + _like_escaped(d) for d in domains), _iso(at)),
    )
    found = [str(expires) for typed, expires in rows if mailbox(str(typed)) == wanted]
    return Pending(max(found)) if found else None


def _like_escaped(text: str) -> str:
    return text.replace("!", "!!").replace("%", "!%").replace("_", "!_")


def withdraw(db: Database, request_id: int) -> None:
    """Forget a link whose e-mail could not be sent, so the address may ask again."""
    with db.transaction():
        db.execute("DELETE FROM document_requests WHERE id = ?", (request_id,))


def check(
    db: Database, secret: bytes, token: str, *, now: float | None = None
) -> Valid | LinkProblem:
    """Whether a download link is ours, unchanged and not expired."""
    parts = token.split(".")
    numbers = parts[:2]
    if len(parts) != 3 or len(token) > 128 or not all(ascii_digits(p) for p in numbers):
        return LinkProblem.INVALID
    request_id, expires = int(parts[0]), int(parts[1])
    if not hmac.compare_digest(parts[2], _signature(secret, request_id, expires)):
        return LinkProblem.INVALID
    if (time.time() if now is None else now) >= expires:
        return LinkProblem.EXPIRED
    campaign_id = db.scalar(
        "SELECT campaign_id FROM document_requests WHERE id = ? AND expires_at = ?",
        (request_id, _iso(expires)),
    )
    if campaign_id is None:
        return LinkProblem.INVALID
    return Valid(request_id, int(campaign_id))


def record_download(db: Database, valid: Valid) -> None:
    """Count one download; the first ends the link's 'pending' state."""
    with db.transaction():
        db.execute(
            "UPDATE document_requests SET downloaded_at = ? WHERE id = ? AND downloaded_at IS NULL",
            (utcnow_iso(), valid.request_id),
        )
        record_event(
            db, valid.campaign_id, None, "document_downloaded", {"request": valid.request_id}
        )


_MAIL = {
    "nb": (
        "Lenke til «{title}»",
        "Du ba om å få dokumentet «{title}» fra {organisation}.\n\n"
        "Last det ned her innen {expires}:\n{url}\n\n"
        "Ba du ikke om dette? Da kan du se bort fra e-posten; lenken slutter å "
        "virke av seg selv.\n",
    ),
    "nn": (
        "Lenkje til «{title}»",
        "Du bad om å få dokumentet «{title}» frå {organisation}.\n\n"
        "Last det ned her innan {expires}:\n{url}\n\n"
        "Bad du ikkje om dette? Då kan du sjå bort frå e-posten; lenkja sluttar å "
        "verke av seg sjølv.\n",
    ),
    "en": (
        "Link to “{title}”",
        "You asked for the document “{title}” from {organisation}.\n\n"
        "Download it here before {expires} (Norwegian time):\n{url}\n\n"
        "If you did not ask for this, you can ignore this e-mail; the link stops "
        "working by itself.\n",
    ),
}
_OSLO = ZoneInfo("Europe/Oslo")
_MAX_SUBJECT = 300  # a long title is cut short in the subject (subject_field takes 400)
# As the languages write a time of day: Norwegian with a dot (kl. 10.01), English with a colon.
_WHEN = {"nb": "d. MMMM y 'kl.' HH.mm", "nn": "d. MMMM y 'kl.' HH.mm", "en": "d MMMM y 'at' HH:mm"}


class Unit(StrEnum):
    """The unit a link's lifetime is told in: the largest that gives a whole number."""

    DAYS = "days"
    HOURS = "hours"
    MINUTES = "minutes"


def lifetime(hours: float) -> tuple[Unit, int]:
    """How long a link made with VARSEL_DOCUMENT_LINK_HOURS stays valid, for the form to say."""
    minutes = round(hours * 60)
    if minutes % (24 * 60) == 0:
        return Unit.DAYS, minutes // (24 * 60)
    if minutes % 60 == 0:
        return Unit.HOURS, minutes // 60
    return Unit.MINUTES, minutes


def deadline(expires_at: str, language: str) -> str:
    """When a link runs out, in Oslo's time, written as the language writes a date."""
    language = language if language in _WHEN else "nb"
    at = datetime.fromisoformat(expires_at.replace("Z", "+00:00")).astimezone(_OSLO)
    return local_datetime(at, _WHEN[language], locale=language)


# When the address may have links again: its clock time that day, with the date on another.
_CLOCK = {"nb": "'kl.' HH.mm", "nn": "'kl.' HH.mm", "en": "HH:mm"}
_DAY_CLOCK = {"nb": "d. MMMM 'kl.' HH.mm", "nn": "d. MMMM 'kl.' HH.mm", "en": "d MMMM 'at' HH:mm"}


def next_link_at(wait_seconds: int, language: str, *, now: float | None = None) -> str:
    """When an address refused by its daily limit may have a link again, in Oslo's time."""
    language = language if language in _CLOCK else "nb"
    at = time.time() if now is None else now
    today = datetime.fromtimestamp(at, _OSLO)
    then = datetime.fromtimestamp(at + wait_seconds, _OSLO)
    pattern = _CLOCK if then.date() == today.date() else _DAY_CLOCK
    return local_datetime(then, pattern[language], locale=language)


def purge(db: Database, *, now: float | None = None) -> int:
    """Delete requests whose links have expired: the address is kept no longer than needed.

    The events (requested, downloaded) stay; they name the request's id, not the address.
    """
    at = _iso(int(time.time() if now is None else now))
    with db.transaction():
        return int(
            db.execute("DELETE FROM document_requests WHERE expires_at <= ?", (at,)).rowcount
        )


def signer(settings: Settings, spec: CampaignSpec) -> Signer:
    """The campaign's DKIM signer: the document e-mail comes from its sender domain too."""
    # key_paths raises SendError, a user error, when a key is missing.
    from varsel.send_config import key_paths

    return Signer([load_key(Path(p), d, s) for p, d, s in key_paths(settings, spec)])


def message(
    *,
    from_address: str,
    from_name: str,
    organisation: str,
    to: str,
    title: str,
    url: str,
    expires_at: str,
    language: str,
    signed_by: Signer | None = None,
) -> bytes:
    """The plain-text e-mail that carries one download link, DKIM-signed, ready for SMTP."""
    subject, body = _MAIL.get(language, _MAIL["nb"])
    expires = deadline(expires_at, language)
    values = {"title": title, "organisation": organisation, "url": url, "expires": expires}
    # The header is written by varsel's own code, as a campaign's messages are: the standard
    # library reads "=?utf-8?q?...?=" in a title as an encoded word, and writes out whatever it
    # decodes to, line breaks included (CVE-2024-6923), so a title could add a header.
    name = phrase(from_name, "avsendernavn")
    sender = header_address(from_address, "avsenderadresse")
    # Line breaks become spaces; subject_field writes an encoded word's lookalike encoded.
    subject_text = clean_text(subject.format(**values))
    head = (
        (f"From: {name} <{sender}>\r\n" if name else f"From: {sender}\r\n")
        + f"To: {header_address(to, 'mottakeradresse')}\r\n"
    ).encode("ascii") + subject_field(subject_text[:_MAX_SUBJECT])
    head += (
        f"Date: {format_datetime(datetime.now(UTC))}\r\n"
        f"Message-ID: <{secrets.token_hex(12)}@{sender.rpartition('@')[2]}>\r\n"
        # RFC 3834: made by a program, not a reply to a message (a form is no message).
        "Auto-Submitted: auto-generated\r\n"
        "MIME-Version: 1.0\r\n"
        "Content-Type: text/plain; charset=utf-8\r\n"
        # 7-bit, so that no relay re-encodes the body and breaks its DKIM signature.
        "Content-Transfer-Encoding: quoted-printable\r\n\r\n"
    ).encode("ascii")
    data = head + QuotedPrintable().encode(body.format(**values))
    # Unsigned mail from the authority's domain fails its DMARC policy; only tests leave it out.
    return signed_by.sign(data) if signed_by is not None else data


async def send(relay: RelayConfig, mail_from: str, to: str, data: bytes) -> str | None:
    """Hand one message to the relay; None when accepted, else the reason."""
    try:
        connection = await SmtpConnection.open(relay)
    except SmtpConnectError as e:
        return e.message
    try:
        outcome = await connection.send(mail_from, to, data)
    finally:
        await connection.close()
    if outcome.kind is ReplyKind.ACCEPTED:
        return None
    # The relay's reply is shown as the relay wrote it.
    return str(outcome.reply) if outcome.reply is not None else outcome.error or Text("ingen svar")
