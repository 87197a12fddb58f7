"""The audit log: an append-only record of what operators did, each entry chained by hash.

Every entry carries the hash of the one before it, and its own hash is SHA-256 over a
canonical encoding of all its columns; the last entry's number and hash are kept again in
`audit_head`. Editing, deleting, reordering or inserting rows, or cutting entries off the end,
breaks the chain in a way `verify` finds. Someone who can write the store can still rebuild
the whole chain; publishing the head now and then (`varsel audit verify` prints it) anchors it.
"""

from __future__ import annotations

import datetime as dt
import getpass
import hashlib
import json
import unicodedata
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from varsel.clock import utcnow_iso
from varsel.db import Database
from varsel.errors import UserError

GENESIS = "0" * 64
SYSTEM = "system"  # the actor of work no operator started (a scheduled job, a library call)
# The actor of a failed sign-in: whoever typed a name is not known to be its owner (the name
# typed is in the detail). Like SYSTEM and `cli:`, never an account's name (accounts.RESERVED).
ANONYMOUS = "anonym"


class Action(StrEnum):
    """What an audit entry records."""

    SIGN_IN = "sign_in"  # password and TOTP code accepted
    SIGN_IN_FAILED = "sign_in_failed"  # wrong name, password or code, or a locked account
    ACCOUNT_LOCKED = "account_locked"  # too many failures in a row
    SIGN_OUT = "sign_out"  # one session ended by its user
    SIGN_OUT_EVERYWHERE = "sign_out_everywhere"  # every session of a user revoked
    USER_ADD = "user_add"  # an account was made (TOTP enrolment pending)
    USER_TOTP_CONFIRMED = "user_totp_confirmed"  # enrolment confirmed: the account is usable
    USER_TOTP_RESET = "user_totp_reset"  # a new TOTP secret; the account waits for enrolment
    USER_ROLE = "user_role"  # role changed
    USER_PASSWORD = "user_password"  # noqa: S105 - the action, not a password
    USER_DISABLE = "user_disable"  # account disabled, its sessions revoked
    USER_ENABLE = "user_enable"  # account enabled again
    USER_UNLOCK = "user_unlock"  # a lock-out lifted by an administrator
    REGISTRY_IMPORT = "registry_import"  # a registry dump imported
    REGISTRY_UPDATE = "registry_update"  # a change-feed page applied
    CAMPAIGN_CREATE = "campaign_create"  # a campaign defined and its recipients frozen
    CAMPAIGN_EDIT = "campaign_edit"  # the definition changed (voids an approval)
    CAMPAIGN_LINT = "campaign_lint"  # lint ran; detail has its result
    CAMPAIGN_APPROVE = "campaign_approve"  # four-eyes approval given
    CAMPAIGN_SEND = "campaign_send"  # a send started (with the approval it relied on)
    CAMPAIGN_SEND_END = "campaign_send_end"  # a send stopped; detail has the counts
    LETTERS_MAKE = "letters_make"  # a letters run started (with the approval it relied on)
    CAMPAIGN_PAUSE = "campaign_pause"
    CAMPAIGN_RESUME = "campaign_resume"
    CAMPAIGN_CANCEL = "campaign_cancel"
    CAMPAIGN_RESEND_IN_DOUBT = "campaign_resend_in_doubt"  # in-doubt deliveries queued again
    # In-doubt deliveries settled without sending again: as sent or as failed; detail has which
    CAMPAIGN_SETTLE_IN_DOUBT = "campaign_settle_in_doubt"
    CAMPAIGN_FORGET = "campaign_forget"  # a finished campaign's contact data erased; counts
    PERSONAL_DATA_EXPORT = "personal_data_export"  # personal data left the system
    SUPPRESSION_ADD = "suppression_add"  # an operator suppressed an address or a unit by hand
    SUPPRESSION_REMOVE = "suppression_remove"  # an operator lifted a suppression by hand


class AuditError(UserError):
    """The audit log cannot be read as asked."""


@dataclass(frozen=True)
class Entry:
    """One audit log entry."""

    seq: int
    at: str
    actor: str
    action: str
    object: str | None
    detail: str  # canonical JSON text, exactly as hashed
    prev_hash: str
    hash: str

    @property
    def data(self) -> dict[str, Any]:
        """The detail as a dict."""
        value = json.loads(self.detail)
        return value if isinstance(value, dict) else {"value": value}

    def as_dict(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "at": self.at,
            "actor": self.actor,
            "action": self.action,
            "object": self.object,
            "detail": self.data,
            "prev_hash": self.prev_hash,
            "hash": self.hash,
        }


def cli_actor() -> str:
    """The actor of a command-line action no account signed: the operating-system login."""
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):  # no name for this uid (a bare container)
        return "cli:?"


def canonical_detail(detail: Mapping[str, Any] | None) -> str:
    """Detail as canonical JSON: sorted keys, no spaces, UTF-8 kept as is."""
    return json.dumps(
        dict(detail or {}), ensure_ascii=False, sort_keys=True, separators=(",", ":"), default=str
    )


def entry_hash(
    seq: int, at: str, actor: str, action: str, obj: str | None, detail: str, prev_hash: str
) -> str:
    """SHA-256 over the canonical encoding of an entry's columns (a JSON array)."""
    encoded = json.dumps(
        [seq, at, actor, action, obj, detail, prev_hash],
        ensure_ascii=False,
        separators=(",", ":"),
    ).encode("utf-8")
    return hashlib.sha256(encoded).hexdigest()


def record(
    db: Database,
    actor: str,
    action: Action,
    object: str | None = None,
    detail: Mapping[str, Any] | None = None,
) -> Entry:
    """Append one entry; call inside the use case's transaction, so both commit or neither."""
    if not db.in_transaction:
        raise RuntimeError("audit.record must run inside the use case's transaction")
    # The head row is the lock: PostgreSQL appenders queue on it (SQLite writers are already
    # serialised by BEGIN IMMEDIATE), so numbers never collide and the chain never forks.
    lock = " FOR UPDATE" if db.dialect == "postgresql" else ""
    head = db.query_one(f"SELECT seq, hash FROM audit_head WHERE id = 1{lock}")
    if head is None:
        raise RuntimeError("audit_head is missing: the store was not migrated")
    seq, prev = int(head[0]) + 1, str(head[1])
    at = utcnow_iso()
    text = canonical_detail(detail)
    digest = entry_hash(seq, at, actor, action.value, object, text, prev)
    db.execute(
        "INSERT INTO audit_log (seq, at, actor, action, object, detail, prev_hash, hash) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (seq, at, actor, action.value, object, text, prev, digest),
    )
    db.execute("UPDATE audit_head SET seq = ?, hash = ? WHERE id = 1", (seq, digest))
    return Entry(seq, at, actor, action.value, object, text, prev, digest)


# -- checking ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Verification:
    """The result of checking the chain: intact, or the first broken entry and why."""

    entries: int
    head_seq: int
    head_hash: str
    broken_seq: int | None = None
    reason: str | None = None

    @property
    def ok(self) -> bool:
        return self.broken_seq is None

    def summary(self) -> str:
        if self.ok:
            return (
                f"Revisjonsloggen er hel: {self.entries} "
                f"{'oppføring' if self.entries == 1 else 'oppføringer'}, siste er nr. "
                f"{self.head_seq} med hash {self.head_hash}."
            )
        return f"Revisjonsloggen er brutt ved oppføring {self.broken_seq}: {self.reason}."

    def as_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "entries": self.entries,
            "head_seq": self.head_seq,
            "head_hash": self.head_hash,
            "broken_seq": self.broken_seq,
            "reason": self.reason,
        }


_COLUMNS = "seq, at, actor, action, object, detail, prev_hash, hash"


def _entries(db: Database, where: str = "", params: tuple[Any, ...] = ()) -> Iterator[Entry]:
    cursor = db.execute(f"SELECT {_COLUMNS} FROM audit_log {where} ORDER BY seq", params)
    while batch := cursor.fetchmany(2000):
        for r in batch:
            yield Entry(int(r[0]), r[1], r[2], r[3], r[4], r[5], r[6], r[7])


def verify(db: Database) -> Verification:
    """Walk the chain from the start; the first entry that does not fit is reported."""
    head = db.query_one("SELECT seq, hash FROM audit_head WHERE id = 1")
    head_seq, head_hash = (int(head[0]), str(head[1])) if head else (-1, "")
    expected_seq, prev, count = 1, GENESIS, 0
    for e in _entries(db):
        count += 1
        if e.seq < expected_seq:
            return Verification(
                count, head_seq, head_hash, e.seq, "oppføringen hører ikke til kjeden (satt inn)"
            )
        if e.seq > expected_seq:
            return Verification(
                count,
                head_seq,
                head_hash,
                expected_seq,
                "den mangler (slettet)",
            )
        if e.prev_hash != prev:
            return Verification(
                count,
                head_seq,
                head_hash,
                e.seq,
                f"peker ikke på oppføring {e.seq - 1} (flyttet, satt inn eller forrige endret)",
            )
        if entry_hash(e.seq, e.at, e.actor, e.action, e.object, e.detail, e.prev_hash) != e.hash:
            return Verification(
                count, head_seq, head_hash, e.seq, "innholdet er endret etter at det ble skrevet"
            )
        expected_seq, prev = e.seq + 1, e.hash
    last = expected_seq - 1
    if head is None:
        return Verification(count, head_seq, head_hash, last + 1, "hodet (audit_head) mangler")
    if head_seq > last:
        return Verification(
            count,
            head_seq,
            head_hash,
            last + 1,
            f"loggen slutter ved nr. {last}, men hodet sier {head_seq}: "
            "de siste oppføringene er slettet",
        )
    if head_seq < last or head_hash != prev:
        return Verification(
            count,
            head_seq,
            head_hash,
            last,
            f"hodet sier nr. {head_seq}, men loggen slutter ved nr. {last} med en annen hash",
        )
    return Verification(count, head_seq, head_hash)


# -- reading ----------------------------------------------------------------------------

# Characters a line of text must not carry as they are: controls (an escape sequence moves a
# terminal's cursor), format characters (a bidi override shows a name reversed) and breaks.
_HIDDEN = ("Cc", "Cf", "Zl", "Zp")


def printable(text: str, keep: str = "") -> str:
    """Text for one line of a screen, with control and format characters as escapes (\\x1b);
    the characters in `keep` (a line break, where lines are meant) stay as they are.

    An entry may hold what a stranger typed (the name of a failed sign-in): shown as it is, an
    escape sequence would erase lines of `audit show` in the terminal, and so the log would
    seem to say less than it does.
    """
    if text.isprintable():  # the common case, at C speed: nothing to escape
        return text
    return "".join(
        _escaped(c) if c not in keep and unicodedata.category(c) in _HIDDEN else c for c in text
    )


def _escaped(char: str) -> str:
    code = ord(char)
    if code < 0x100:
        return f"\\x{code:02x}"
    return f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


def entries(
    db: Database,
    *,
    action: Action | None = None,
    actor: str | None = None,
    object: str | None = None,
    since: str | None = None,
    limit: int | None = None,
) -> list[Entry]:
    """Entries in order, filtered; `since` is an ISO date or time (UTC), `limit` keeps the last."""
    clauses: list[str] = []
    params: list[Any] = []
    if action is not None:
        clauses.append("action = ?")
        params.append(action.value)
    if actor is not None:
        clauses.append("actor = ?")
        params.append(actor)
    if object is not None:
        clauses.append("object = ?")
        params.append(object)
    if since is not None:
        clauses.append("at >= ?")
        params.append(_since(since))
    where = ("WHERE " + " AND ".join(clauses)) if clauses else ""
    if limit is not None:
        rows = db.query(
            f"SELECT {_COLUMNS} FROM audit_log {where} ORDER BY seq DESC LIMIT ?",
            (*params, limit),
        )
        return [Entry(int(r[0]), *r[1:]) for r in reversed(rows)]
    return list(_entries(db, where, tuple(params)))


def _since(text: str) -> str:
    value = text.strip()
    try:
        if len(value) == 10:
            return dt.date.fromisoformat(value).isoformat() + "T00:00:00.000Z"
        parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise AuditError(
            f"--since «{text}»: skriv en dato (2025-03-01) eller et tidspunkt (2025-03-01T12:00Z)"
        ) from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=dt.UTC)
    return parsed.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
