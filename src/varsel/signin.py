"""Signing in to the console and the CLI: password and TOTP checks, lock-out, sessions.

A code is accepted once: the time step of the last accepted code is kept, and only later steps
are accepted after it. Repeated failures lock the account for a while. Sessions live in the
store (only a hash of their token), end when idle or at an absolute limit, and can be revoked
one by one or all at once. Every sign-in, failure and sign-out is written to the audit log.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, NoReturn
from zoneinfo import ZoneInfo

import pyotp
from argon2.exceptions import InvalidHashError, VerificationError

from varsel import audit
from varsel.accounts import (
    USER_COLUMNS,
    AccountError,
    Enrolment,
    User,
    clean_name,
    end_sessions,
    enrolment_of,
    get_user,
    parse_time,
    password_hasher,
    user_of_row,
)
from varsel.audit import Action
from varsel.clock import iso, utcnow
from varsel.config import Settings
from varsel.db import Database
from varsel.errors import N_, Text, UserError

TOUCH_SECONDS = 60  # how stale last_seen_at may get before a request writes it again
_OSLO = ZoneInfo("Europe/Oslo")


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


# -- enrolment ---------------------------------------------------------------------------


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
    row, user = _password_checked(db, settings, name, password, now)
    if user.disabled:
        # As pending_enrolment: a disabled account takes no step towards signing in again.
        _refuse(db, settings, name, row, now, "disabled")
    if user.enrolled:
        raise AccountError(Text("brukeren «%(name)s» har allerede bekreftet TOTP", name=user.name))
    counter = _code_counter(row[10], code, now)
    if counter is None:
        _refuse(db, settings, name, row, now, "code")
    with db.transaction():
        db.execute(
            "UPDATE users SET totp_confirmed_at = ?, totp_last_counter = ?, failed_attempts = 0, "
            "updated_at = ? WHERE id = ?",
            (iso(now), counter, iso(now), user.id),
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
    row, user = _password_checked(db, settings, name, password, now)
    if user.disabled:
        _refuse(db, settings, name, row, now, "disabled")
    if user.enrolled:
        raise AccountError(Text("brukeren «%(name)s» har allerede bekreftet TOTP", name=user.name))
    return enrolment_of(settings, user, row[10])


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
    row, user = _password_checked(db, settings, name, password, now)
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
            (counter, iso(now), user.id, counter),
        ).rowcount
        if won == 1:
            if password_hasher(settings).check_needs_rehash(row[9]):
                # Hashed under other parameters (the setting changed): renew with today's.
                db.execute(
                    "UPDATE users SET password_hash = ? WHERE id = ?",
                    (password_hasher(settings).hash(password), user.id),
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


def _password_checked(
    db: Database, settings: Settings, name: str, password: str, now: datetime
) -> tuple[Any, User]:
    """The account's credentials row and user once its password is right; else refused."""
    row = _credentials(db, name)
    _refuse_if_locked(db, settings, name, row, password, now)
    # The password is checked (or a dummy hash, for unknown names) before anything about the
    # account is told, so that answers and timing do not reveal which names exist. The hash
    # comes first in the condition: `row is None or ...` would skip it for unknown names.
    if not _password_ok(settings, row, password) or row is None:
        _refuse(db, settings, name, row, now, "password")
    return row, user_of_row(row[:9])


def _credentials(db: Database, name: str) -> Any:
    # The user columns, then password_hash (9), totp_secret (10), totp_last_counter (11).
    if "\x00" in name:
        return None  # no account's name holds one, and PostgreSQL's text cannot be asked it
    return db.query_one(
        f"SELECT {USER_COLUMNS}, password_hash, totp_secret, totp_last_counter FROM users "
        "WHERE name = ?",
        (clean_name(name),),
    )


def _locked(row: Any, now: datetime) -> bool:
    return row is not None and row[6] is not None and bool(row[6] > iso(now))


def _refuse_if_locked(
    db: Database, settings: Settings, name: str, row: Any, password: str, now: datetime
) -> None:
    if _locked(row, now):
        # The password is not checked against the account, but a dummy hash costs what a
        # check would: a locked account (a name that exists) takes as long as an unknown name.
        _password_ok(settings, None, password)
        _refuse(db, settings, name, row, now, "locked")


_DUMMY_HASHES: dict[int, str] = {}  # per memory cost


def _dummy_hash(settings: Settings) -> str:
    memory = settings.password_memory_kib
    if memory not in _DUMMY_HASHES:
        _DUMMY_HASHES[memory] = password_hasher(settings).hash(secrets.token_hex(16))
    return _DUMMY_HASHES[memory]


def _password_ok(settings: Settings, row: Any, password: str) -> bool:
    hasher = password_hasher(settings)
    stored = row[9] if row is not None else _dummy_hash(settings)
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
    "password": N_("feil brukernavn, passord eller engangskode"),
    "code": N_("feil brukernavn, passord eller engangskode"),
    "code_reused": N_("engangskoden er allerede brukt; vent på neste kode i appen"),
    "disabled": N_("kontoen «%(name)s» er deaktivert"),
    "not_enrolled": N_(
        "kontoen «%(name)s» er ikke tatt i bruk ennå: bekreft først en kode fra appen "
        "(varsel user confirm-totp %(name)s)"
    ),
    "locked": N_(
        "kontoen «%(name)s» er låst etter for mange mislykkede forsøk; prøv igjen kl. %(until)s"
    ),
}


def _refuse(
    db: Database, settings: Settings, name: str, row: Any, now: datetime, reason: str
) -> NoReturn:
    """Count and audit a failed attempt, then raise SignInError (never returns)."""
    clean = clean_name(name)[:64]
    counts = reason in ("password", "code", "code_reused")
    until: str | None = row[6] if row is not None else None
    with db.transaction():
        locked_now = False
        if row is not None and counts:
            failures = int(
                db.execute(
                    "UPDATE users SET failed_attempts = failed_attempts + 1, updated_at = ? "
                    "WHERE id = ? RETURNING failed_attempts",
                    (iso(now), row[0]),
                ).fetchone()[0]
            )
            if failures >= settings.lockout_failures:
                until = iso(now + timedelta(minutes=settings.lockout_minutes))
                db.execute(
                    "UPDATE users SET failed_attempts = 0, locked_until = ? WHERE id = ?",
                    (until, row[0]),
                )
                locked_now = True
        # Not under the name typed: a stranger could type «system», «cli:root» or an
        # operator's name, and the line would read as theirs. The account tried is the object
        # when there is one; what was typed is kept in the detail.
        detail: dict[str, Any] = {
            "reason": reason if row is not None else "unknown_user",
            "name": clean,
        }
        target = f"user:{clean}" if row is not None else None
        audit.record(db, audit.ANONYMOUS, Action.SIGN_IN_FAILED, target, detail)
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
    message = Text(_REFUSALS[reason], name=clean, until=_local_time(until))
    raise SignInError(message, reason=reason)


def _local_time(stored: str | None) -> str:
    if stored is None:
        return ""
    return parse_time(stored).astimezone(_OSLO).strftime("%H.%M")  # Norwegian: kl. 14.05


# -- sessions -----------------------------------------------------------------------------


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def _new_session(
    db: Database, settings: Settings, user: User, now: datetime, client: str
) -> Session:
    token = secrets.token_urlsafe(32)
    csrf = secrets.token_urlsafe(24)
    created = iso(now)
    expires = iso(now + timedelta(hours=settings.session_hours))
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
        f"{', '.join('u.' + c.strip() for c in USER_COLUMNS.split(','))} "
        "FROM sessions s JOIN users u ON u.id = s.user_id "
        "WHERE s.token_hash = ? AND s.revoked_at IS NULL",
        (_token_hash(token),),
    )
    if row is None:
        return None
    user = user_of_row(row[5:])
    idle_until = parse_time(row[3]) + timedelta(minutes=settings.session_idle_minutes)
    if parse_time(row[4]) <= now or idle_until <= now or not user.active:
        return None
    last_seen = row[3]
    if (now - parse_time(row[3])).total_seconds() >= TOUCH_SECONDS:
        last_seen = iso(now)
        with db.transaction():
            db.execute("UPDATE sessions SET last_seen_at = ? WHERE id = ?", (last_seen, row[0]))
    return Session(int(row[0]), token, user, row[1], row[2], last_seen, row[4])


def sign_out(db: Database, session: Session) -> None:
    """End one session."""
    with db.transaction():
        db.execute(
            "UPDATE sessions SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL",
            (iso(utcnow()), session.id),
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
        ended = end_sessions(db, user)
        audit.record(
            db, actor, Action.SIGN_OUT_EVERYWHERE, f"user:{user.name}", {"sessions": ended}
        )
    return ended
