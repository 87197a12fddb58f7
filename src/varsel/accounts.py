"""Operator accounts: roles, argon2id passwords, a TOTP second factor, sessions and lock-out.

Every account needs both factors: a password (kept as an argon2id hash) and a code from an
authenticator app (TOTP, RFC 6238). An account is made with a TOTP secret and cannot sign in
until its owner has confirmed the enrolment with a valid code. A code is accepted once: the
time step of the last accepted code is kept, and only later steps are accepted after it.
Repeated failures lock the account for a while. Sessions live in the store (only a hash of
their token), end when idle or at an absolute limit, and can be revoked one by one or all at
once. Everything that happens to an account is written to the audit log.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any, NoReturn
from zoneinfo import ZoneInfo

import pyotp
import segno
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from varsel import audit, contacts
from varsel.audit import Action
from varsel.clock import utcnow
from varsel.config import Settings
from varsel.db import Database
from varsel.errors import UserError

MIN_PASSWORD = 12
TOUCH_SECONDS = 60  # how stale last_seen_at may get before a request writes it again
_NAME = re.compile(r"^[a-z][a-z0-9._-]{1,63}$")
_OSLO = ZoneInfo("Europe/Oslo")


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


class AccountError(UserError):
    """The account or the change asked for is not valid."""


class SignInError(UserError):
    """Wrong user name, password or code."""

    def __init__(self, message: str | None = None, *, reason: str = "password") -> None:
        super().__init__(message)
        self.reason = reason  # as the audit log records it: password, code, locked, disabled...

    @property
    def before_password(self) -> bool:
        """Says nothing a stranger may learn: the password was wrong, or was not checked.

        The other refusals (disabled, not enrolled, a reused code) come only after the right
        password, so only the account's owner sees them.
        """
        return self.reason in ("password", "code", "locked")


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
class Session:
    """A signed-in operator; `token` goes in the cookie, only its hash is in the store."""

    id: int
    token: str
    user: User
    csrf_token: str
    created_at: str
    last_seen_at: str
    expires_at: str  # the absolute limit; the idle limit counts from last_seen_at


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

_USER_COLUMNS = (
    "id, name, role, email, totp_confirmed_at, disabled_at, locked_until, failed_attempts, "
    "created_at"
)


def _user(row: Any) -> User:
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
    row = db.query_one(f"SELECT {_USER_COLUMNS} FROM users WHERE name = ?", (_clean_name(name),))
    if row is None:
        raise AccountError(f"brukeren «{name}» finnes ikke")
    return _user(row)


def list_users(db: Database) -> list[User]:
    """Every account, by name."""
    return [_user(r) for r in db.query(f"SELECT {_USER_COLUMNS} FROM users ORDER BY name")]


def require_role(user: User, role: Role) -> None:
    """Raise Forbidden unless the user is active and has `role` or a role above it."""
    if not user.active:
        raise Forbidden(f"kontoen «{user.name}» er ikke i bruk")
    if not user.role.allows(role):
        raise Forbidden(
            f"{user.name} har rollen «{user.role.value}»; dette krever «{role.value}» eller høyere"
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
    clean = _clean_name(name)
    if not _NAME.match(clean):
        raise AccountError(
            f"brukernavnet «{name}» er ugyldig: bruk 2–64 tegn a–z, 0–9, punktum, bindestrek "
            "eller understrek, og begynn med en bokstav"
        )
    _check_password(clean, password)
    address = _email(email, settings) if email else None
    secret = pyotp.random_base32()
    password_hash = _hasher(settings).hash(password)
    now = _iso(utcnow())
    with db.transaction():
        if db.query_one("SELECT 1 FROM users WHERE name = ?", (clean,)):
            raise AccountError(f"brukeren «{clean}» finnes allerede")
        db.execute(
            "INSERT INTO users (name, role, email, password_hash, totp_secret, created_at, "
            "updated_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (clean, role.value, address, password_hash, secret, now, now),
        )
        audit.record(
            db, actor, Action.USER_ADD, f"user:{clean}", {"role": role.value, "email": address}
        )
    return _enrolment(settings, get_user(db, clean), secret)


def confirm_totp(
    db: Database,
    settings: Settings,
    name: str,
    password: str,
    code: str,
    *,
    now: datetime | None = None,
) -> User:
    """Finish enrolment: the password and a code from the app prove the owner has the secret."""
    now = now or utcnow()
    row = _credentials(db, name)
    _refuse_if_locked(db, settings, name, row, password, now)
    if not _password_ok(settings, row, password) or row is None:
        _refuse(db, settings, name, row, now, "password")
    user = _user(row[:9])
    if user.enrolled:
        raise AccountError(f"brukeren «{user.name}» har allerede bekreftet TOTP")
    counter = _code_counter(row[10], code, now)
    if counter is None:
        _refuse(db, settings, name, row, now, "code")
    with db.transaction():
        db.execute(
            "UPDATE users SET totp_confirmed_at = ?, totp_last_counter = ?, failed_attempts = 0, "
            "updated_at = ? WHERE id = ?",
            (_iso(now), counter, _iso(now), user.id),
        )
        audit.record(db, user.name, Action.USER_TOTP_CONFIRMED, f"user:{user.name}")
    return get_user(db, user.name)


def pending_enrolment(
    db: Database, settings: Settings, name: str, password: str, *, now: datetime | None = None
) -> Enrolment:
    """The QR code of an account waiting for enrolment, for its owner (the console's page).

    The password proves who asks; a wrong one counts towards the lock-out like a sign-in.
    """
    now = now or utcnow()
    row = _credentials(db, name)
    _refuse_if_locked(db, settings, name, row, password, now)
    if not _password_ok(settings, row, password) or row is None:
        _refuse(db, settings, name, row, now, "password")
    user = _user(row[:9])
    if user.disabled:
        _refuse(db, settings, name, row, now, "disabled")
    if user.enrolled:
        raise AccountError(f"brukeren «{user.name}» har allerede bekreftet TOTP")
    return _enrolment(settings, user, row[10])


def set_role(db: Database, name: str, role: Role, *, actor: str) -> User:
    """Give an account another role."""
    user = get_user(db, name)
    with db.transaction():
        if user.role is Role.ADMIN and role is not Role.ADMIN:
            _keep_an_admin(db, user)
        _update(db, user, "role = ?", (role.value,))
        audit.record(
            db,
            actor,
            Action.USER_ROLE,
            f"user:{user.name}",
            {"from": user.role.value, "to": role.value},
        )
    return get_user(db, user.name)


def set_password(db: Database, settings: Settings, name: str, password: str, *, actor: str) -> User:
    """Set a new password; every session of the account ends."""
    user = get_user(db, name)
    _check_password(user.name, password)
    password_hash = _hasher(settings).hash(password)
    with db.transaction():
        _update(db, user, "password_hash = ?", (password_hash,))
        ended = _revoke_all(db, user)
        audit.record(db, actor, Action.USER_PASSWORD, f"user:{user.name}", {"sessions": ended})
    return get_user(db, user.name)


def disable_user(db: Database, name: str, *, actor: str) -> User:
    """Disable an account: it cannot sign in, and its sessions end now."""
    user = get_user(db, name)
    with db.transaction():
        if user.role is Role.ADMIN:
            _keep_an_admin(db, user)
        _update(db, user, "disabled_at = ?", (_iso(utcnow()),))
        ended = _revoke_all(db, user)
        audit.record(db, actor, Action.USER_DISABLE, f"user:{user.name}", {"sessions": ended})
    return get_user(db, user.name)


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


def reset_totp(db: Database, settings: Settings, name: str, *, actor: str) -> Enrolment:
    """A new TOTP secret (a lost phone): sessions end; the account waits for enrolment."""
    user = get_user(db, name)
    secret = pyotp.random_base32()
    with db.transaction():
        _update(
            db,
            user,
            "totp_secret = ?, totp_confirmed_at = NULL, totp_last_counter = NULL",
            (secret,),
        )
        ended = _revoke_all(db, user)
        audit.record(db, actor, Action.USER_TOTP_RESET, f"user:{user.name}", {"sessions": ended})
    return _enrolment(settings, get_user(db, user.name), secret)


def _update(db: Database, user: User, assignments: str, params: tuple[Any, ...]) -> None:
    db.execute(
        f"UPDATE users SET {assignments}, updated_at = ? WHERE id = ?",
        (*params, _iso(utcnow()), user.id),
    )


def _keep_an_admin(db: Database, user: User) -> None:
    # Without an active administrator nobody could manage accounts from the console.
    others = db.scalar(
        "SELECT count(*) FROM users WHERE role = ? AND disabled_at IS NULL AND id <> ?",
        (Role.ADMIN.value, user.id),
    )
    if not others:
        raise AccountError(f"«{user.name}» er den eneste aktive administratoren")


def _enrolment(settings: Settings, user: User, secret: str) -> Enrolment:
    uri = pyotp.TOTP(secret).provisioning_uri(name=user.name, issuer_name=settings.totp_issuer)
    return Enrolment(user, secret, uri)


def _check_password(name: str, password: str) -> None:
    if len(password) < MIN_PASSWORD:
        raise AccountError(f"passordet må ha minst {MIN_PASSWORD} tegn")
    if len(password) > 1024:
        raise AccountError("passordet kan ha høyst 1024 tegn")
    if password.strip().lower() == name:
        raise AccountError("passordet kan ikke være brukernavnet")


def _email(value: str, settings: Settings) -> str:
    parsed = contacts.normalise_address(value, allow_test_domains=settings.allow_test_domains)
    if not parsed.usable:
        raise AccountError(f"{value!r} er ikke en brukbar e-postadresse")
    return parsed.address


def _clean_name(name: str) -> str:
    return name.strip().lower()


# -- signing in ---------------------------------------------------------------------------


def verify_credentials(
    db: Database,
    settings: Settings,
    name: str,
    password: str,
    code: str,
    *,
    now: datetime | None = None,
    via: str = "console",
) -> User:
    """Check password and TOTP code; a failure is counted, audited and raised as SignInError."""
    return _sign_in(db, settings, name, password, code, now or utcnow(), via, None)[0]


def authenticate(
    db: Database,
    settings: Settings,
    name: str,
    password: str,
    code: str,
    *,
    now: datetime | None = None,
    client: str | None = None,
) -> Session:
    """Sign in with password and TOTP code; returns a new session (its token goes in a cookie)."""
    now = now or utcnow()
    _, session = _sign_in(db, settings, name, password, code, now, "console", client or "")
    if session is None:  # a client was given, so a session was made
        raise RuntimeError("sign-in made no session")
    return session


def _sign_in(
    db: Database,
    settings: Settings,
    name: str,
    password: str,
    code: str,
    now: datetime,
    via: str,
    client: str | None,
) -> tuple[User, Session | None]:
    row = _credentials(db, name)
    _refuse_if_locked(db, settings, name, row, password, now)
    # The password is checked (or a dummy hash, for unknown names) before anything about the
    # account is told, so that answers and timing do not reveal which names exist. The hash
    # comes first in the condition: `row is None or ...` would skip it for unknown names.
    if not _password_ok(settings, row, password) or row is None:
        _refuse(db, settings, name, row, now, "password")
    user = _user(row[:9])
    if user.disabled:
        _refuse(db, settings, name, row, now, "disabled")
    if not user.enrolled:
        _refuse(db, settings, name, row, now, "not_enrolled")
    counter = _code_counter(row[10], code, now)
    if counter is None:
        _refuse(db, settings, name, row, now, "code")
    session: Session | None = None
    with db.transaction():
        # Conditional on the stored step, so two sign-ins racing with one code cannot both win.
        won = db.execute(
            "UPDATE users SET totp_last_counter = ?, failed_attempts = 0, locked_until = NULL, "
            "updated_at = ? WHERE id = ? AND (totp_last_counter IS NULL OR totp_last_counter < ?)",
            (counter, _iso(now), user.id, counter),
        ).rowcount
        if won == 1:
            if _hasher(settings).check_needs_rehash(row[9]):
                # Hashed under other parameters (the setting changed): renew with today's.
                db.execute(
                    "UPDATE users SET password_hash = ? WHERE id = ?",
                    (_hasher(settings).hash(password), user.id),
                )
            if client is not None:
                session = _new_session(db, settings, user, now, client)
            audit.record(
                db,
                user.name,
                Action.SIGN_IN,
                f"user:{user.name}",
                {"via": via, "session": session.id if session else None},
            )
    if won != 1:
        _refuse(db, settings, name, row, now, "code_reused")
    return get_user(db, user.name), session


def _credentials(db: Database, name: str) -> Any:
    # The user columns, then password_hash (9), totp_secret (10), totp_last_counter (11).
    return db.query_one(
        f"SELECT {_USER_COLUMNS}, password_hash, totp_secret, totp_last_counter FROM users "
        "WHERE name = ?",
        (_clean_name(name),),
    )


def _locked(row: Any, now: datetime) -> bool:
    return row is not None and row[6] is not None and bool(row[6] > _iso(now))


def _refuse_if_locked(
    db: Database, settings: Settings, name: str, row: Any, password: str, now: datetime
) -> None:
    if _locked(row, now):
        # The password is not checked against the account, but a dummy hash costs what a
        # check would: a locked account (a name that exists) takes as long as an unknown name.
        _password_ok(settings, None, password)
        _refuse(db, settings, name, row, now, "locked")


@functools.cache
def _argon2id(memory_kib: int) -> PasswordHasher:
    # argon2id, t=3, p=4 (argon2-cffi's defaults, RFC 9106); the memory is a setting.
    return PasswordHasher(memory_cost=memory_kib)


def _hasher(settings: Settings) -> PasswordHasher:
    return _argon2id(settings.password_memory_kib)


@functools.cache
def _dummy_hash(memory_kib: int) -> str:
    return _argon2id(memory_kib).hash(secrets.token_hex(16))


def _password_ok(settings: Settings, row: Any, password: str) -> bool:
    hasher = _hasher(settings)
    stored = row[9] if row is not None else _dummy_hash(settings.password_memory_kib)
    try:
        return hasher.verify(stored, password) and row is not None
    except (VerificationError, InvalidHashError):
        return False


def _code_counter(secret: str, code: str, now: datetime) -> int | None:
    """The time step whose code this is (now, or one step either side for clock drift)."""
    digits = re.sub(r"\s", "", code)
    if not re.fullmatch(r"\d{6}", digits):
        return None
    totp = pyotp.TOTP(secret)
    current = totp.timecode(now)
    for counter in (current - 1, current, current + 1):
        if hmac.compare_digest(totp.generate_otp(counter), digits):
            return counter
    return None


_REFUSALS = {
    "password": "feil brukernavn, passord eller engangskode",
    "code": "feil brukernavn, passord eller engangskode",
    "code_reused": "engangskoden er allerede brukt; vent på neste kode i appen",
    "disabled": "kontoen «{name}» er deaktivert",
    "not_enrolled": (
        "kontoen «{name}» er ikke tatt i bruk ennå: bekreft først en kode fra appen "
        "(varsel user confirm-totp {name})"
    ),
    "locked": "kontoen «{name}» er låst etter for mange mislykkede forsøk; prøv igjen kl. {until}",
}


def _refuse(
    db: Database, settings: Settings, name: str, row: Any, now: datetime, reason: str
) -> NoReturn:
    """Count and audit a failed attempt, then raise SignInError (never returns)."""
    clean = _clean_name(name)[:64]
    counts = reason in ("password", "code", "code_reused")
    until: str | None = row[6] if row is not None else None
    with db.transaction():
        locked_now = False
        if row is not None and counts:
            failures = int(
                db.execute(
                    "UPDATE users SET failed_attempts = failed_attempts + 1, updated_at = ? "
                    "WHERE id = ? RETURNING failed_attempts",
                    (_iso(now), row[0]),
                ).fetchone()[0]
            )
            if failures >= settings.lockout_failures:
                until = _iso(now + timedelta(minutes=settings.lockout_minutes))
                db.execute(
                    "UPDATE users SET failed_attempts = 0, locked_until = ? WHERE id = ?",
                    (until, row[0]),
                )
                locked_now = True
        detail: dict[str, Any] = {"reason": reason if row is not None else "unknown_user"}
        audit.record(db, clean, Action.SIGN_IN_FAILED, f"user:{clean}", detail)
        if locked_now:
            audit.record(
                db,
                audit.SYSTEM,
                Action.ACCOUNT_LOCKED,
                f"user:{clean}",
                {"until": until, "failures": settings.lockout_failures},
            )
    if locked_now:
        reason = "locked"
    message = _REFUSALS[reason].format(name=clean, until=_local_time(until))
    raise SignInError(message, reason=reason)


def _local_time(iso: str | None) -> str:
    if iso is None:
        return ""
    moment = datetime.fromisoformat(iso.replace("Z", "+00:00")).astimezone(_OSLO)
    return moment.strftime("%H:%M")


# -- sessions -----------------------------------------------------------------------------


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def _new_session(
    db: Database, settings: Settings, user: User, now: datetime, client: str
) -> Session:
    token = secrets.token_urlsafe(32)
    csrf = secrets.token_urlsafe(24)
    created = _iso(now)
    expires = _iso(now + timedelta(hours=settings.session_hours))
    session_id = int(
        db.execute(
            "INSERT INTO sessions (token_hash, user_id, csrf_token, client, created_at, "
            "last_seen_at, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING id",
            (_token_hash(token), user.id, csrf, client[:200] or None, created, created, expires),
        ).fetchone()[0]
    )
    return Session(session_id, token, user, csrf, created, created, expires)


def session_for_token(
    db: Database, settings: Settings, token: str, *, now: datetime | None = None
) -> Session | None:
    """The live session a cookie's token names; None if unknown, expired, revoked or disabled."""
    now = now or utcnow()
    row = db.query_one(
        f"SELECT s.id, s.csrf_token, s.created_at, s.last_seen_at, s.expires_at, "
        f"{', '.join('u.' + c.strip() for c in _USER_COLUMNS.split(','))} "
        "FROM sessions s JOIN users u ON u.id = s.user_id "
        "WHERE s.token_hash = ? AND s.revoked_at IS NULL",
        (_token_hash(token),),
    )
    if row is None:
        return None
    user = _user(row[5:])
    idle_until = _parse(row[3]) + timedelta(minutes=settings.session_idle_minutes)
    if _parse(row[4]) <= now or idle_until <= now or not user.active:
        return None
    last_seen = row[3]
    if (now - _parse(row[3])).total_seconds() >= TOUCH_SECONDS:
        last_seen = _iso(now)
        with db.transaction():
            db.execute("UPDATE sessions SET last_seen_at = ? WHERE id = ?", (last_seen, row[0]))
    return Session(int(row[0]), token, user, row[1], row[2], last_seen, row[4])


def sign_out(db: Database, session: Session) -> None:
    """End one session."""
    with db.transaction():
        db.execute(
            "UPDATE sessions SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL",
            (_iso(utcnow()), session.id),
        )
        audit.record(
            db,
            session.user.name,
            Action.SIGN_OUT,
            f"user:{session.user.name}",
            {"session": session.id},
        )


def sign_out_everywhere(db: Database, name: str, *, actor: str) -> int:
    """End every session of an account; returns how many were live."""
    user = get_user(db, name)
    with db.transaction():
        ended = _revoke_all(db, user)
        audit.record(
            db, actor, Action.SIGN_OUT_EVERYWHERE, f"user:{user.name}", {"sessions": ended}
        )
    return ended


def _revoke_all(db: Database, user: User) -> int:
    cursor = db.execute(
        "UPDATE sessions SET revoked_at = ? WHERE user_id = ? AND revoked_at IS NULL",
        (_iso(utcnow()), user.id),
    )
    return int(cursor.rowcount)


# -- time ---------------------------------------------------------------------------------


def _iso(moment: datetime) -> str:
    """A time as the store keeps it (see clock.utcnow_iso)."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def _parse(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))
