"""Operator accounts: roles, argon2id passwords, a TOTP second factor, and their changes.

Every account needs both factors: a password (kept as an argon2id hash) and a code from an
authenticator app (TOTP, RFC 6238). An account is made with a TOTP secret and cannot sign in
until its owner has confirmed the enrolment with a valid code (`signin.confirm_totp`). Signing
in, lock-out and sessions are in `signin`. Everything that happens to an account is written to
the audit log.
"""

from __future__ import annotations

import functools
import json
import re
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

import pyotp
import segno
import zxcvbn
from argon2 import PasswordHasher

from varsel import audit, contacts
from varsel.audit import Action
from varsel.clock import iso, utcnow
from varsel.config import Settings
from varsel.db import Database
from varsel.errors import N_, Text, UserError, visible

MIN_PASSWORD = 12
# zxcvbn's score (0-4) a password must reach: 3 is "safely unguessable" against an online attack
# and far beyond what a stolen hash yields to in reasonable time, as its authors grade it.
MIN_PASSWORD_SCORE = 3
_ZXCVBN_MAX = 72  # characters zxcvbn judges (it raises ValueError beyond its max_length)
# Words a password of this system's operators is likeliest to be made of, besides their names.
_OWN_WORDS = ("varsel", "politiet", "politi", "politidistrikt", "nsr", "kontroll", "sikkerhet")
_NAME = re.compile(r"^[a-z][a-z0-9._-]{1,63}$")
# The audit log's actors that are not accounts: an account of such a name would read as them.
RESERVED = frozenset({audit.SYSTEM, audit.ANONYMOUS, "demo", "cli"})
_RESERVED_PREFIX = re.compile(r"^cli[._-]")  # reads as cli:<login>, the command line's actor


class Role(StrEnum):
    """What an operator may do; each role may do everything the roles before it may."""

    VIEWER = "viewer"  # reads campaigns, progress, coverage and feedback
    AUTHOR = "author"  # also imports registry data, makes, edits, lints and sends campaigns
    APPROVER = "approver"  # also approves campaigns others wrote, and reads the audit log
    ADMIN = "admin"  # also manages accounts

    @property
    def rank(self) -> int:
        return list(Role).index(self)

    def allows(self, needed: Role) -> bool:
        """Whether this role may do what `needed` may."""
        return self.rank >= needed.rank


# The roles as the command line names them (the console's are its catalog's, capitalised).
# Marked for the catalogs: a message that names a role names it in the reader's language.
ROLE_LABELS = {
    Role.VIEWER: N_("leser"),
    Role.AUTHOR: N_("forfatter"),
    Role.APPROVER: N_("godkjenner"),
    Role.ADMIN: N_("administrator"),
}


class AccountError(UserError):
    """The account or the change asked for is not valid."""


class Forbidden(UserError):
    """The operator's role does not allow this."""


@dataclass(frozen=True)
class User:
    """One operator account."""

    id: int
    name: str
    role: Role
    email: str | None
    enrolled: bool  # TOTP enrolment confirmed
    disabled: bool
    locked_until: str | None
    failed_attempts: int
    created_at: str

    @property
    def active(self) -> bool:
        """May sign in (a lock-out aside)."""
        return self.enrolled and not self.disabled

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "role": self.role.value,
            "email": self.email,
            "enrolled": self.enrolled,
            "disabled": self.disabled,
            "locked_until": self.locked_until,
            "failed_attempts": self.failed_attempts,
            "created_at": self.created_at,
        }


@dataclass(frozen=True)
class Enrolment:
    """What a new or reset account needs for its authenticator app."""

    user: User
    secret: str  # base32, for typing in by hand
    uri: str  # otpauth://totp/...

    def qr_svg(self) -> str:
        """The URI as a QR code, an inline SVG element."""
        return str(segno.make(self.uri, error="m").svg_inline(scale=5, title="TOTP"))

    def qr_text(self) -> str:
        """The URI as a QR code drawn with block characters, for a terminal."""
        import io

        buffer = io.StringIO()
        segno.make(self.uri, error="m").terminal(out=buffer, compact=True)
        return buffer.getvalue()


# -- reading ------------------------------------------------------------------------------

USER_COLUMNS = (
    "id, name, role, email, totp_confirmed_at, disabled_at, locked_until, failed_attempts, "
    "created_at"
)


def user_of_row(row: Any) -> User:
    return User(
        int(row[0]),
        row[1],
        Role(row[2]),
        row[3],
        row[4] is not None,
        row[5] is not None,
        row[6],
        int(row[7]),
        row[8],
    )


def get_user(db: Database, name: str) -> User:
    """One account by name; an AccountError if there is none."""
    row = None
    if "\x00" not in name:  # no name holds one, and PostgreSQL's text cannot even be asked
        row = db.query_one(f"SELECT {USER_COLUMNS} FROM users WHERE name = ?", (clean_name(name),))
    if row is None:
        raise AccountError(Text("brukeren «%(name)s» finnes ikke", name=name))
    return user_of_row(row)


def list_users(db: Database) -> list[User]:
    """Every account, by name."""
    return [user_of_row(r) for r in db.query(f"SELECT {USER_COLUMNS} FROM users ORDER BY name")]


def require_role(user: User, role: Role) -> None:
    """Raise Forbidden unless the user is active and has `role` or a role above it."""
    if not user.active:
        raise Forbidden(Text("kontoen «%(name)s» er ikke i bruk", name=user.name))
    if not user.role.allows(role):
        raise Forbidden(
            Text(
                "%(name)s har rollen «%(role)s»; dette krever «%(needed)s» eller høyere",
                name=user.name,
                role=Text(ROLE_LABELS[user.role]),
                needed=Text(ROLE_LABELS[role]),
            )
        )


# -- making and changing accounts ----------------------------------------------------------


def add_user(
    db: Database,
    settings: Settings,
    name: str,
    role: Role,
    password: str,
    *,
    actor: str,
    email: str | None = None,
) -> Enrolment:
    """Make an account; it can sign in once its enrolment is confirmed (confirm_totp)."""
    clean = clean_name(name)
    if not _NAME.match(clean):
        raise AccountError(
            Text(
                "brukernavnet «%(name)s» er ugyldig: bruk 2–64 tegn a–z, 0–9, punktum, bindestrek "
                "eller understrek, og begynn med en bokstav",
                name=visible(name),
            )
        )
    if clean in RESERVED or _RESERVED_PREFIX.match(clean):
        raise AccountError(
            Text(
                "brukernavnet «%(name)s» er reservert: revisjonsloggen bruker det om handlinger "
                "ingen konto gjorde (system, anonym, demo, cli:…); velg et annet",
                name=clean,
            )
        )
    address = _email(email, settings) if email else None
    _check_password(clean, password, address)
    secret = pyotp.random_base32()
    password_hash = password_hasher(settings).hash(password)
    now = iso(utcnow())
    with db.transaction():
        if db.query_one("SELECT 1 FROM users WHERE name = ?", (clean,)):
            raise AccountError(Text("brukeren «%(name)s» finnes allerede", name=clean))
        db.execute(
            "INSERT INTO users (name, role, email, password_hash, totp_secret, created_at, "
            "updated_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (clean, role.value, address, password_hash, secret, now, now),
        )
        audit.record(
            db, actor, Action.USER_ADD, f"user:{clean}", {"role": role.value, "email": address}
        )
    return enrolment_of(settings, get_user(db, clean), secret)


def set_role(db: Database, name: str, role: Role, *, actor: str) -> User:
    """Give an account another role; below approver, its approvals stop holding."""
    user = get_user(db, name)
    with db.transaction():
        if user.role is Role.ADMIN and role is not Role.ADMIN:
            _keep_an_admin(db, user)
        detail: dict[str, Any] = {"from": user.role.value, "to": role.value}
        if not role.allows(Role.APPROVER) and (lapsing := lapsing_approvals(db, user.name)):
            detail["approvals"] = lapsing
        _update(db, user, "role = ?", (role.value,))
        audit.record(db, actor, Action.USER_ROLE, f"user:{user.name}", detail)
    return get_user(db, user.name)


def set_password(db: Database, settings: Settings, name: str, password: str, *, actor: str) -> User:
    """Set a new password; every session of the account ends."""
    user = get_user(db, name)
    _check_password(user.name, password, user.email)
    password_hash = password_hasher(settings).hash(password)
    with db.transaction():
        _update(db, user, "password_hash = ?", (password_hash,))
        ended = end_sessions(db, user)
        audit.record(db, actor, Action.USER_PASSWORD, f"user:{user.name}", {"sessions": ended})
    return get_user(db, user.name)


def disable_user(db: Database, name: str, *, actor: str) -> User:
    """Disable an account: it cannot sign in, its sessions end now, its approvals stop holding."""
    user = get_user(db, name)
    with db.transaction():
        if user.role is Role.ADMIN:
            _keep_an_admin(db, user)
        detail: dict[str, Any] = {}
        if lapsing := lapsing_approvals(db, user.name):
            detail["approvals"] = lapsing  # the campaigns that need a new approval now
        _update(db, user, "disabled_at = ?", (iso(utcnow()),))
        detail["sessions"] = end_sessions(db, user)
        audit.record(db, actor, Action.USER_DISABLE, f"user:{user.name}", detail)
    return get_user(db, user.name)


def lapsing_approvals(db: Database, name: str) -> list[int]:
    """The unfinished campaigns whose latest approval is the account's (ids, in order).

    Those are the approvals that stop holding when the account is disabled or may no longer
    approve (`lapse`): the campaigns' next send or resume needs a new approval.
    """
    from varsel.campaign import CampaignStatus

    finished = (CampaignStatus.DONE.value, CampaignStatus.CANCELLED.value)
    return [
        int(r[0])
        for r in db.query(
            "SELECT a.campaign_id FROM approvals a JOIN campaigns c ON c.id = a.campaign_id "
            "WHERE a.approved_by = ? AND c.status NOT IN (?, ?) "
            "AND a.id = (SELECT max(b.id) FROM approvals b WHERE b.campaign_id = a.campaign_id) "
            "ORDER BY a.campaign_id",
            (name, *finished),
        )
    ]


@dataclass(frozen=True)
class LapsedApproval:
    """A campaign that an account's approval no longer holds for (lapsing_approvals)."""

    campaign_id: int
    campaign_name: str
    sending: bool  # let through the gate before the change: it goes on until it is paused


def lapsed_approvals(db: Database, name: str) -> list[LapsedApproval]:
    """lapsing_approvals, each with the campaign's name and whether it is sending now: what the
    command line and the console say after an account is disabled or demoted."""
    from varsel.campaign import CampaignStatus

    ids = lapsing_approvals(db, name)
    if not ids:
        return []
    rows = db.query(
        f"SELECT id, name, status FROM campaigns WHERE id IN ({', '.join('?' for _ in ids)}) "
        "ORDER BY id",
        ids,
    )
    return [
        LapsedApproval(int(i), str(n), CampaignStatus(str(s)) is CampaignStatus.SENDING)
        for i, n, s in rows
    ]


class Lapse(StrEnum):
    """Why an account no longer stands behind what it did with a role (an approval)."""

    MISSING = "missing"  # no account of that name any more
    DISABLED = "disabled"  # disabled now
    ROLE = "role"  # its role now is below the one needed
    WAS_DISABLED = "was_disabled"  # disabled since, and enabled again
    WAS_DEMOTED = "was_demoted"  # given a lower role since, and the role back again


def lapse(db: Database, name: str, role: Role, *, since_seq: int) -> Lapse | None:
    """Whether the account still stands behind what it did with `role` at audit entry
    `since_seq`; the reason if not (None while it does).

    An account disabled or demoted since, even if enabled or promoted again, does not: it was
    disabled because it was stolen, perhaps, and what it did before then may be the thief's.
    """
    row = db.query_one("SELECT role, disabled_at FROM users WHERE name = ?", (name,))
    if row is None:
        return Lapse.MISSING
    if row[1] is not None:
        return Lapse.DISABLED
    if not Role(row[0]).allows(role):
        return Lapse.ROLE
    for action, detail in db.query(
        "SELECT action, detail FROM audit_log WHERE action IN (?, ?) AND seq > ? AND object = ? "
        "ORDER BY seq",
        (Action.USER_DISABLE.value, Action.USER_ROLE.value, since_seq, f"user:{name}"),
    ):
        if action == Action.USER_DISABLE.value:
            return Lapse.WAS_DISABLED
        to = json.loads(detail or "{}").get("to")
        if to not in {r.value for r in Role} or not Role(to).allows(role):
            return Lapse.WAS_DEMOTED
    return None


def enable_user(db: Database, name: str, *, actor: str) -> User:
    """Let a disabled account sign in again."""
    user = get_user(db, name)
    with db.transaction():
        _update(db, user, "disabled_at = NULL, failed_attempts = 0, locked_until = NULL", ())
        audit.record(db, actor, Action.USER_ENABLE, f"user:{user.name}")
    return get_user(db, user.name)


def unlock_user(db: Database, name: str, *, actor: str) -> User:
    """Lift a lock-out before it runs out."""
    user = get_user(db, name)
    with db.transaction():
        _update(db, user, "failed_attempts = 0, locked_until = NULL", ())
        audit.record(db, actor, Action.USER_UNLOCK, f"user:{user.name}")
    return get_user(db, user.name)


def reset_totp(
    db: Database, settings: Settings, name: str, password: str, *, actor: str
) -> Enrolment:
    """A new TOTP secret (a lost phone) and a new password: sessions end; the account waits
    for enrolment.

    The password changes too: enrolment takes the password, so whoever knows the old one (the
    thief of a stolen phone and password) could otherwise race the owner to enrol a phone.
    """
    user = get_user(db, name)
    _check_password(user.name, password, user.email)
    password_hash = password_hasher(settings).hash(password)
    secret = pyotp.random_base32()
    with db.transaction():
        _update(
            db,
            user,
            "password_hash = ?, totp_secret = ?, totp_confirmed_at = NULL, "
            "totp_last_counter = NULL",
            (password_hash, secret),
        )
        ended = end_sessions(db, user)
        audit.record(
            db,
            actor,
            Action.USER_TOTP_RESET,
            f"user:{user.name}",
            {"sessions": ended, "password": True},
        )
    return enrolment_of(settings, get_user(db, user.name), secret)


def _update(db: Database, user: User, assignments: str, params: tuple[Any, ...]) -> None:
    db.execute(
        f"UPDATE users SET {assignments}, updated_at = ? WHERE id = ?",
        (*params, iso(utcnow()), user.id),
    )


def _keep_an_admin(db: Database, user: User) -> None:
    # Without an active administrator nobody could manage accounts from the console. Only
    # those who can sign in count: an administrator still waiting for TOTP enrolment may never
    # enrol (a first password not passed on, a phone never set up).
    others = db.scalar(
        "SELECT count(*) FROM users WHERE role = ? AND disabled_at IS NULL "
        "AND totp_confirmed_at IS NOT NULL AND id <> ?",
        (Role.ADMIN.value, user.id),
    )
    if not others:
        raise AccountError(Text("«%(name)s» er den eneste aktive administratoren", name=user.name))


def enrolment_of(settings: Settings, user: User, secret: str) -> Enrolment:
    uri = pyotp.TOTP(secret).provisioning_uri(name=user.name, issuer_name=settings.totp_issuer)
    return Enrolment(user, secret, uri)


def _check_password(name: str, password: str, email: str | None = None) -> None:
    if len(password) < MIN_PASSWORD:
        raise AccountError(Text("passordet må ha minst %(length)s tegn", length=MIN_PASSWORD))
    if len(password) > 1024:
        raise AccountError(Text("passordet kan ha høyst %(length)s tegn", length=1024))
    if password.strip().lower() == name:
        raise AccountError(Text("passordet kan ikke være brukernavnet"))
    # Long is not enough: «passord12345» and «qwertyuiop123» are among the first guesses of
    # anyone who has a list of leaked passwords (NIST SP 800-63B asks for such a check).
    own = [name, *re.split(r"[.+_-]", name), email or "", *re.split(r"[@.+_-]", email or "")]
    own += _OWN_WORDS
    # zxcvbn refuses more than 72 characters (its cost grows fast with length): it judges the
    # first 72, which a long passphrase's strength does not depend on beyond that.
    judged = password[:_ZXCVBN_MAX]
    if zxcvbn.zxcvbn(judged, user_inputs=[w for w in own if w])["score"] < MIN_PASSWORD_SCORE:
        raise AccountError(
            Text(
                "passordet er for lett å gjette: det ligner et vanlig passord, et navn, et ord "
                "med tall eller et mønster på tastaturet; bruk for eksempel fire ord som ikke "
                "hører sammen"
            )
        )


def _email(value: str, settings: Settings) -> str:
    parsed = contacts.normalise_address(value, allow_test_domains=settings.allow_test_domains)
    if not parsed.usable:
        # The message and the reason are ids, so that the console says it in its language.
        why = Text(contacts.explain(parsed.reason) if parsed.reason else "ugyldig e-postadresse")
        typed = " ".join(value.split())  # on one line, whatever was typed
        raise AccountError(
            Text("«%(typed)s» er ikke en brukbar e-postadresse (%(why)s)", typed=typed, why=why)
        )
    return parsed.address


def clean_name(name: str) -> str:
    return name.strip().lower()


@functools.cache
def _argon2id(memory_kib: int) -> PasswordHasher:
    # argon2id, t=3, p=4 (argon2-cffi's defaults, RFC 9106); the memory is a setting.
    return PasswordHasher(memory_cost=memory_kib)


def password_hasher(settings: Settings) -> PasswordHasher:
    """The argon2id hasher of the settings' memory cost."""
    return _argon2id(settings.password_memory_kib)


def end_sessions(db: Database, user: User) -> int:
    """Revoke every live session of an account (in the caller's transaction); how many."""
    cursor = db.execute(
        "UPDATE sessions SET revoked_at = ? WHERE user_id = ? AND revoked_at IS NULL",
        (iso(utcnow()), user.id),
    )
    return int(cursor.rowcount)


def parse_time(text: str) -> datetime:
    """A time as the store keeps it, timezone-aware."""
    return datetime.fromisoformat(text.replace("Z", "+00:00"))
