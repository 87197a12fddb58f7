"""Signing in: both factors, TOTP replay, lock-out, sessions and signing out."""

from __future__ import annotations

import hashlib
import threading
from datetime import timedelta
from pathlib import Path

import pytest

from helpers import GENERIC, PASSWORD, T0, audit_actions, enrolled_at_t0, light_settings, totp_code
from varsel import audit
from varsel.accounts import (
    AccountError,
    Role,
    add_user,
    get_user,
)
from varsel.config import Settings
from varsel.db import Database, connect
from varsel.signin import (
    SignInError,
    authenticate,
    confirm_totp,
    pending_enrolment,
    session_for_token,
    sign_out,
    sign_out_everywhere,
    verify_credentials,
)


@pytest.fixture
def settings() -> Settings:
    return light_settings()


def test_a_hash_made_with_other_parameters_is_renewed_at_sign_in(
    db: Database, settings: Settings
) -> None:
    secret = enrolled_at_t0(db, settings)
    stronger = Settings.load(environ={}, password_memory_kib=16384)
    t1 = T0 + timedelta(seconds=30)
    verify_credentials(db, stronger, "kari", PASSWORD, totp_code(secret, t1), now=t1)
    stored = db.scalar("SELECT password_hash FROM users WHERE name = 'kari'")
    assert stored.startswith("$argon2id$v=19$m=16384,t=3,p=4$")


def test_unconfirmed_account_cannot_sign_in(db: Database, settings: Settings) -> None:
    enrolment = add_user(db, settings, "kari", Role.AUTHOR, PASSWORD, actor="admin")
    with pytest.raises(SignInError) as e:
        verify_credentials(db, settings, "kari", PASSWORD, totp_code(enrolment.secret, T0), now=T0)
    assert e.value.message == (
        "kontoen «kari» er ikke tatt i bruk ennå: bekreft først en kode fra appen "
        "(varsel user confirm-totp kari)"
    )


def test_enrolment_is_confirmed_only_with_a_valid_code(db: Database, settings: Settings) -> None:
    enrolment = add_user(db, settings, "kari", Role.AUTHOR, PASSWORD, actor="admin")
    wrong = f"{(int(totp_code(enrolment.secret, T0)) + 1) % 1_000_000:06d}"
    with pytest.raises(SignInError, match=f"^{GENERIC}$"):
        confirm_totp(db, settings, "kari", PASSWORD, wrong, now=T0)
    assert get_user(db, "kari").failed_attempts == 1
    user = confirm_totp(db, settings, "kari", PASSWORD, totp_code(enrolment.secret, T0), now=T0)
    assert user.enrolled
    assert user.failed_attempts == 0


def test_a_pending_enrolment_is_shown_to_its_password_only(
    db: Database, settings: Settings
) -> None:
    enrolment = add_user(db, settings, "kari", Role.AUTHOR, PASSWORD, actor="admin")
    assert pending_enrolment(db, settings, "kari", PASSWORD, now=T0) == enrolment
    with pytest.raises(SignInError, match=f"^{GENERIC}$"):
        pending_enrolment(db, settings, "kari", "feil-passord-helt-klart", now=T0)
    assert get_user(db, "kari").failed_attempts == 1
    confirm_totp(db, settings, "kari", PASSWORD, totp_code(enrolment.secret, T0), now=T0)
    with pytest.raises(AccountError, match=r"^brukeren «kari» har allerede bekreftet TOTP$"):
        pending_enrolment(db, settings, "kari", PASSWORD, now=T0)


def test_a_disabled_account_cannot_confirm_its_enrolment(db: Database, settings: Settings) -> None:
    # An administrator disables a new account whose first password went astray: whoever has
    # it and has seen the QR code must not finish the enrolment, ready for a later «enable».
    from varsel.accounts import disable_user

    add_user(db, settings, "ada", Role.ADMIN, PASSWORD, actor="cli:ola")
    enrolment = add_user(db, settings, "kari", Role.AUTHOR, PASSWORD, actor="ada")
    disable_user(db, "kari", actor="ada")
    with pytest.raises(SignInError) as e:
        confirm_totp(db, settings, "kari", PASSWORD, totp_code(enrolment.secret, T0), now=T0)
    assert e.value.message == "kontoen «kari» er deaktivert"
    assert not get_user(db, "kari").enrolled
    assert audit.entries(db, action=audit.Action.USER_TOTP_CONFIRMED) == []
    [failed] = audit.entries(db, action=audit.Action.SIGN_IN_FAILED)
    assert failed.data == {"reason": "disabled", "name": "kari"}


def test_sign_in_needs_both_password_and_code(db: Database, settings: Settings) -> None:
    secret = enrolled_at_t0(db, settings)
    t1 = T0 + timedelta(seconds=30)
    with pytest.raises(SignInError, match=f"^{GENERIC}$"):
        verify_credentials(
            db, settings, "kari", "feil-passord-helt-klart", totp_code(secret, t1), now=t1
        )
    with pytest.raises(SignInError, match=f"^{GENERIC}$"):
        verify_credentials(db, settings, "kari", PASSWORD, "000000", now=t1)
    with pytest.raises(SignInError, match=f"^{GENERIC}$"):
        verify_credentials(db, settings, "kari", PASSWORD, "", now=t1)
    user = verify_credentials(db, settings, "kari", PASSWORD, totp_code(secret, t1), now=t1)
    assert user.name == "kari"
    assert user.failed_attempts == 0


def test_a_code_is_accepted_once(db: Database, settings: Settings) -> None:
    secret = enrolled_at_t0(db, settings)
    t1 = T0 + timedelta(seconds=60)
    verify_credentials(db, settings, "kari", PASSWORD, totp_code(secret, t1), now=t1)
    with pytest.raises(SignInError) as e:
        verify_credentials(db, settings, "kari", PASSWORD, totp_code(secret, t1), now=t1)
    assert e.value.message == "engangskoden er allerede brukt; vent på neste kode i appen"
    # The previous step's code is still inside the drift window, but older than the used one.
    earlier = totp_code(secret, t1 - timedelta(seconds=30))
    with pytest.raises(SignInError, match="allerede brukt"):
        verify_credentials(db, settings, "kari", PASSWORD, earlier, now=t1)
    later = t1 + timedelta(seconds=30)
    assert verify_credentials(db, settings, "kari", PASSWORD, totp_code(secret, later), now=later)


def test_code_used_to_confirm_cannot_sign_in(db: Database, settings: Settings) -> None:
    secret = enrolled_at_t0(db, settings)
    with pytest.raises(SignInError, match="allerede brukt"):
        verify_credentials(db, settings, "kari", PASSWORD, totp_code(secret, T0), now=T0)


def test_codes_from_the_next_and_previous_step_allow_for_clock_drift(
    db: Database, settings: Settings
) -> None:
    secret = enrolled_at_t0(db, settings)
    t1 = T0 + timedelta(minutes=5)
    ahead = totp_code(secret, t1 + timedelta(seconds=30))
    assert verify_credentials(db, settings, "kari", PASSWORD, ahead, now=t1)
    too_far = totp_code(secret, t1 + timedelta(seconds=120))
    with pytest.raises(SignInError, match=f"^{GENERIC}$"):
        verify_credentials(db, settings, "kari", PASSWORD, too_far, now=t1)


def test_one_code_racing_on_two_connections_wins_once(
    db_url: str, db: Database, settings: Settings
) -> None:
    secret = enrolled_at_t0(db, settings)
    t1 = T0 + timedelta(seconds=30)
    results: list[str] = []

    def sign_in() -> None:
        other = connect(db_url)
        try:
            verify_credentials(other, settings, "kari", PASSWORD, totp_code(secret, t1), now=t1)
            results.append("ok")
        except SignInError as e:
            results.append(e.message)
        finally:
            other.close()

    threads = [threading.Thread(target=sign_in) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == [
        "engangskoden er allerede brukt; vent på neste kode i appen",
        "engangskoden er allerede brukt; vent på neste kode i appen",
        "ok",
    ]


def test_five_failures_lock_the_account_for_fifteen_minutes(
    db: Database, settings: Settings
) -> None:
    secret = enrolled_at_t0(db, settings)
    for i in range(4):
        t = T0 + timedelta(seconds=i)
        with pytest.raises(SignInError, match=f"^{GENERIC}$"):
            verify_credentials(db, settings, "kari", "feil-passord-helt-klart", "123456", now=t)
    fifth = T0 + timedelta(seconds=4)
    locked = "kontoen «kari» er låst etter for mange mislykkede forsøk; prøv igjen kl. 12.15"
    with pytest.raises(SignInError) as e:
        verify_credentials(db, settings, "kari", "feil-passord-helt-klart", "123456", now=fifth)
    assert e.value.message == locked
    # Even the right password and code are refused while it lasts, and are not checked.
    t1 = T0 + timedelta(minutes=14, seconds=30)
    with pytest.raises(SignInError) as e:
        verify_credentials(db, settings, "kari", PASSWORD, totp_code(secret, t1), now=t1)
    assert e.value.message == locked
    t2 = T0 + timedelta(minutes=15, seconds=30)
    assert verify_credentials(db, settings, "kari", PASSWORD, totp_code(secret, t2), now=t2)
    failures = [e.data["reason"] for e in audit.entries(db, action=audit.Action.SIGN_IN_FAILED)]
    assert failures == ["password"] * 5 + ["locked"]
    (lock,) = audit.entries(db, action=audit.Action.ACCOUNT_LOCKED)
    assert lock.object == "user:kari"
    assert lock.data == {"failures": 5, "until": "2025-03-03T11:15:04.000Z"}


def test_failures_are_counted_per_account(db: Database, settings: Settings) -> None:
    enrolled_at_t0(db, settings, "kari")
    enrolled_at_t0(db, settings, "berit")
    for _ in range(3):
        with pytest.raises(SignInError):
            verify_credentials(db, settings, "kari", "feil-passord-helt-klart", "1", now=T0)
    assert get_user(db, "kari").failed_attempts == 3
    assert get_user(db, "berit").failed_attempts == 0


def test_a_success_resets_the_count(db: Database, settings: Settings) -> None:
    secret = enrolled_at_t0(db, settings)
    for _ in range(4):
        with pytest.raises(SignInError):
            verify_credentials(db, settings, "kari", "feil-passord-helt-klart", "1", now=T0)
    t1 = T0 + timedelta(seconds=30)
    verify_credentials(db, settings, "kari", PASSWORD, totp_code(secret, t1), now=t1)
    assert get_user(db, "kari").failed_attempts == 0


def test_unknown_names_get_the_same_answer_and_are_recorded(
    db: Database, settings: Settings
) -> None:
    with pytest.raises(SignInError, match=f"^{GENERIC}$"):
        verify_credentials(db, settings, "Mallory", PASSWORD, "123456", now=T0)
    (entry,) = audit.entries(db)
    # No account was tried: no object; what was typed is in the detail, never the actor.
    assert (entry.actor, entry.action, entry.object) == ("anonym", "sign_in_failed", None)
    assert entry.data == {"reason": "unknown_user", "name": "mallory"}


@pytest.mark.parametrize("typed", ["system", "cli:root", "berit"])
def test_a_failed_sign_in_never_reads_as_anothers_action(
    db: Database, settings: Settings, typed: str
) -> None:
    # A stranger types the name of the system, of a login on the command line, or of a real
    # operator: the audit line must not read as something they did.
    enrolled_at_t0(db, settings, "berit", "approver")
    with pytest.raises(SignInError, match=f"^{GENERIC}$"):
        verify_credentials(db, settings, typed, "feil-passord-her", "123456", now=T0)
    (failed,) = audit.entries(db, action=audit.Action.SIGN_IN_FAILED)
    assert failed.actor == audit.ANONYMOUS == "anonym"
    assert failed.data["name"] == typed
    assert failed.object == ("user:berit" if typed == "berit" else None)
    assert audit.entries(db, action=audit.Action.SIGN_IN_FAILED, actor=typed) == []
    assert audit.verify(db).ok


def test_session_token_is_stored_only_as_a_hash(db: Database, settings: Settings) -> None:
    secret = enrolled_at_t0(db, settings)
    t1 = T0 + timedelta(seconds=30)
    code = totp_code(secret, t1)
    session = authenticate(db, settings, "kari", PASSWORD, code, now=t1, client="test")
    row = db.query_one("SELECT token_hash, client, expires_at FROM sessions")
    assert row == (
        hashlib.sha256(session.token.encode()).hexdigest(),
        "test",
        "2025-03-03T23:00:30.000Z",
    )
    found = session_for_token(db, settings, session.token, now=t1)
    assert found is not None
    assert (found.id, found.user.name, found.csrf_token) == (
        session.id,
        "kari",
        session.csrf_token,
    )
    assert session_for_token(db, settings, session.token + "x", now=t1) is None
    (entry,) = audit.entries(db, action=audit.Action.SIGN_IN)
    assert entry.data == {"session": session.id, "via": "console"}


def test_session_ends_after_thirty_idle_minutes(db: Database, settings: Settings) -> None:
    secret = enrolled_at_t0(db, settings)
    t1 = T0 + timedelta(seconds=30)
    token = authenticate(db, settings, "kari", PASSWORD, totp_code(secret, t1), now=t1).token
    t2 = t1 + timedelta(minutes=29)
    assert session_for_token(db, settings, token, now=t2) is not None  # and counts as activity
    assert session_for_token(db, settings, token, now=t2 + timedelta(minutes=29)) is not None
    assert session_for_token(db, settings, token, now=t2 + timedelta(minutes=59, seconds=1)) is None


def test_session_ends_after_twelve_hours_however_busy(db: Database, settings: Settings) -> None:
    secret = enrolled_at_t0(db, settings)
    t1 = T0 + timedelta(seconds=30)
    token = authenticate(db, settings, "kari", PASSWORD, totp_code(secret, t1), now=t1).token
    for minutes in range(20, 12 * 60, 20):
        t = t1 + timedelta(minutes=minutes)
        assert session_for_token(db, settings, token, now=t) is not None
    assert session_for_token(db, settings, token, now=t1 + timedelta(hours=12)) is None


def test_sign_out_ends_one_session(db: Database, settings: Settings) -> None:
    secret = enrolled_at_t0(db, settings)
    t1, t2 = T0 + timedelta(seconds=30), T0 + timedelta(seconds=60)
    first = authenticate(db, settings, "kari", PASSWORD, totp_code(secret, t1), now=t1)
    second = authenticate(db, settings, "kari", PASSWORD, totp_code(secret, t2), now=t2)
    sign_out(db, first)
    assert session_for_token(db, settings, first.token, now=t2) is None
    assert session_for_token(db, settings, second.token, now=t2) is not None


def test_sign_out_everywhere_ends_every_session(db: Database, settings: Settings) -> None:
    secret = enrolled_at_t0(db, settings)
    tokens = []
    for step in (1, 2, 3):
        t = T0 + timedelta(seconds=30 * step)
        code = totp_code(secret, t)
        tokens.append(authenticate(db, settings, "kari", PASSWORD, code, now=t).token)
    assert sign_out_everywhere(db, "kari", actor="kari") == 3
    later = T0 + timedelta(minutes=2)
    assert [session_for_token(db, settings, t, now=later) for t in tokens] == [None] * 3
    assert audit_actions(db)[-1] == ("kari", "sign_out_everywhere", "user:kari")


def test_failed_sign_in_leaves_a_verifiable_chain(
    db: Database, settings: Settings, tmp_path: Path
) -> None:
    enrolled_at_t0(db, settings)
    with pytest.raises(SignInError):
        verify_credentials(db, settings, "kari", "feil-passord-helt-klart", "1", now=T0)
    assert audit.verify(db).ok
    assert [e.action for e in audit.entries(db)][-1] == "sign_in_failed"
