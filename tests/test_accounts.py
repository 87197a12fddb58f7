"""Accounts: argon2id passwords, TOTP enrolment and replay, lock-out, sessions, roles."""

from __future__ import annotations

import hashlib
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyotp
import pytest

from varsel import audit
from varsel.accounts import (
    AccountError,
    Forbidden,
    Role,
    SignInError,
    add_user,
    authenticate,
    confirm_totp,
    disable_user,
    get_user,
    pending_enrolment,
    require_role,
    reset_totp,
    session_for_token,
    set_password,
    set_role,
    sign_out,
    sign_out_everywhere,
    unlock_user,
    verify_credentials,
)
from varsel.config import Settings
from varsel.db import Database, connect

T0 = datetime(2025, 3, 3, 11, 0, 0, tzinfo=UTC)  # 12:00 in Oslo
PASSWORD = "korrekt-hest-batteri-stift"  # noqa: S105 - a test account's password
GENERIC = "feil brukernavn, passord eller engangskode"


@pytest.fixture
def settings() -> Settings:
    # Real argon2id with less memory than in production, so that the many sign-ins are quick.
    return Settings.load(environ={}, password_memory_kib=8192)


def code(secret: str, at: datetime) -> str:
    return str(pyotp.TOTP(secret).at(at))


def enrolled(db: Database, settings: Settings, name: str = "kari", role: Role = Role.AUTHOR) -> str:
    """An account confirmed at T0; later codes must be from later time steps."""
    enrolment = add_user(db, settings, name, role, PASSWORD, actor="admin")
    confirm_totp(db, settings, name, PASSWORD, code(enrolment.secret, T0), now=T0)
    return enrolment.secret


def actions(db: Database) -> list[tuple[str, str, str | None]]:
    return [(e.actor, e.action, e.object) for e in audit.entries(db)]


def test_enrolment_gives_secret_uri_and_qr_codes(db: Database, settings: Settings) -> None:
    enrolment = add_user(db, settings, "Kari", Role.AUTHOR, PASSWORD, actor="admin")
    assert enrolment.user.name == "kari"
    assert enrolment.uri == (f"otpauth://totp/varsel:kari?secret={enrolment.secret}&issuer=varsel")
    assert len(enrolment.secret) == 32
    assert enrolment.qr_svg().startswith("<svg ")
    assert "<title>TOTP</title>" in enrolment.qr_svg()
    assert "▄" in enrolment.qr_text()
    assert not enrolment.user.enrolled
    assert actions(db) == [("admin", "user_add", "user:kari")]


def test_password_is_stored_as_argon2id(db: Database) -> None:
    add_user(db, Settings.load(environ={}), "kari", Role.AUTHOR, PASSWORD, actor="admin")
    stored = db.scalar("SELECT password_hash FROM users WHERE name = 'kari'")
    assert stored.startswith("$argon2id$v=19$m=65536,t=3,p=4$")
    assert PASSWORD not in stored


def test_a_hash_made_with_other_parameters_is_renewed_at_sign_in(
    db: Database, settings: Settings
) -> None:
    secret = enrolled(db, settings)
    stronger = Settings.load(environ={}, password_memory_kib=16384)
    t1 = T0 + timedelta(seconds=30)
    verify_credentials(db, stronger, "kari", PASSWORD, code(secret, t1), now=t1)
    stored = db.scalar("SELECT password_hash FROM users WHERE name = 'kari'")
    assert stored.startswith("$argon2id$v=19$m=16384,t=3,p=4$")


def test_unconfirmed_account_cannot_sign_in(db: Database, settings: Settings) -> None:
    enrolment = add_user(db, settings, "kari", Role.AUTHOR, PASSWORD, actor="admin")
    with pytest.raises(SignInError) as e:
        verify_credentials(db, settings, "kari", PASSWORD, code(enrolment.secret, T0), now=T0)
    assert e.value.message == (
        "kontoen «kari» er ikke tatt i bruk ennå: bekreft først en kode fra appen "
        "(varsel user confirm-totp kari)"
    )


def test_enrolment_is_confirmed_only_with_a_valid_code(db: Database, settings: Settings) -> None:
    enrolment = add_user(db, settings, "kari", Role.AUTHOR, PASSWORD, actor="admin")
    wrong = f"{(int(code(enrolment.secret, T0)) + 1) % 1_000_000:06d}"
    with pytest.raises(SignInError, match=f"^{GENERIC}$"):
        confirm_totp(db, settings, "kari", PASSWORD, wrong, now=T0)
    assert get_user(db, "kari").failed_attempts == 1
    user = confirm_totp(db, settings, "kari", PASSWORD, code(enrolment.secret, T0), now=T0)
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
    confirm_totp(db, settings, "kari", PASSWORD, code(enrolment.secret, T0), now=T0)
    with pytest.raises(AccountError, match=r"^brukeren «kari» har allerede bekreftet TOTP$"):
        pending_enrolment(db, settings, "kari", PASSWORD, now=T0)


def test_sign_in_needs_both_password_and_code(db: Database, settings: Settings) -> None:
    secret = enrolled(db, settings)
    t1 = T0 + timedelta(seconds=30)
    with pytest.raises(SignInError, match=f"^{GENERIC}$"):
        verify_credentials(
            db, settings, "kari", "feil-passord-helt-klart", code(secret, t1), now=t1
        )
    with pytest.raises(SignInError, match=f"^{GENERIC}$"):
        verify_credentials(db, settings, "kari", PASSWORD, "000000", now=t1)
    with pytest.raises(SignInError, match=f"^{GENERIC}$"):
        verify_credentials(db, settings, "kari", PASSWORD, "", now=t1)
    user = verify_credentials(db, settings, "kari", PASSWORD, code(secret, t1), now=t1)
    assert user.name == "kari"
    assert user.failed_attempts == 0


def test_a_code_is_accepted_once(db: Database, settings: Settings) -> None:
    secret = enrolled(db, settings)
    t1 = T0 + timedelta(seconds=60)
    verify_credentials(db, settings, "kari", PASSWORD, code(secret, t1), now=t1)
    with pytest.raises(SignInError) as e:
        verify_credentials(db, settings, "kari", PASSWORD, code(secret, t1), now=t1)
    assert e.value.message == "engangskoden er allerede brukt; vent på neste kode i appen"
    # The previous step's code is still inside the drift window, but older than the used one.
    earlier = code(secret, t1 - timedelta(seconds=30))
    with pytest.raises(SignInError, match="allerede brukt"):
        verify_credentials(db, settings, "kari", PASSWORD, earlier, now=t1)
    later = t1 + timedelta(seconds=30)
    assert verify_credentials(db, settings, "kari", PASSWORD, code(secret, later), now=later)


def test_code_used_to_confirm_cannot_sign_in(db: Database, settings: Settings) -> None:
    secret = enrolled(db, settings)
    with pytest.raises(SignInError, match="allerede brukt"):
        verify_credentials(db, settings, "kari", PASSWORD, code(secret, T0), now=T0)


def test_codes_from_the_next_and_previous_step_allow_for_clock_drift(
    db: Database, settings: Settings
) -> None:
    secret = enrolled(db, settings)
    t1 = T0 + timedelta(minutes=5)
    ahead = code(secret, t1 + timedelta(seconds=30))
    assert verify_credentials(db, settings, "kari", PASSWORD, ahead, now=t1)
    too_far = code(secret, t1 + timedelta(seconds=120))
    with pytest.raises(SignInError, match=f"^{GENERIC}$"):
        verify_credentials(db, settings, "kari", PASSWORD, too_far, now=t1)


def test_one_code_racing_on_two_connections_wins_once(
    db_url: str, db: Database, settings: Settings
) -> None:
    secret = enrolled(db, settings)
    t1 = T0 + timedelta(seconds=30)
    results: list[str] = []

    def sign_in() -> None:
        other = connect(db_url)
        try:
            verify_credentials(other, settings, "kari", PASSWORD, code(secret, t1), now=t1)
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
    secret = enrolled(db, settings)
    for i in range(4):
        t = T0 + timedelta(seconds=i)
        with pytest.raises(SignInError, match=f"^{GENERIC}$"):
            verify_credentials(db, settings, "kari", "feil-passord-helt-klart", "123456", now=t)
    fifth = T0 + timedelta(seconds=4)
    locked = "kontoen «kari» er låst etter for mange mislykkede forsøk; prøv igjen kl. 12:15"
    with pytest.raises(SignInError) as e:
        verify_credentials(db, settings, "kari", "feil-passord-helt-klart", "123456", now=fifth)
    assert e.value.message == locked
    # Even the right password and code are refused while it lasts, and are not checked.
    t1 = T0 + timedelta(minutes=14, seconds=30)
    with pytest.raises(SignInError) as e:
        verify_credentials(db, settings, "kari", PASSWORD, code(secret, t1), now=t1)
    assert e.value.message == locked
    t2 = T0 + timedelta(minutes=15, seconds=30)
    assert verify_credentials(db, settings, "kari", PASSWORD, code(secret, t2), now=t2)
    failures = [e.data["reason"] for e in audit.entries(db, action=audit.Action.SIGN_IN_FAILED)]
    assert failures == ["password"] * 5 + ["locked"]
    (lock,) = audit.entries(db, action=audit.Action.ACCOUNT_LOCKED)
    assert lock.object == "user:kari"
    assert lock.data == {"failures": 5, "until": "2025-03-03T11:15:04.000Z"}


def test_failures_are_counted_per_account(db: Database, settings: Settings) -> None:
    enrolled(db, settings, "kari")
    enrolled(db, settings, "berit")
    for _ in range(3):
        with pytest.raises(SignInError):
            verify_credentials(db, settings, "kari", "feil-passord-helt-klart", "1", now=T0)
    assert get_user(db, "kari").failed_attempts == 3
    assert get_user(db, "berit").failed_attempts == 0


def test_a_success_resets_the_count(db: Database, settings: Settings) -> None:
    secret = enrolled(db, settings)
    for _ in range(4):
        with pytest.raises(SignInError):
            verify_credentials(db, settings, "kari", "feil-passord-helt-klart", "1", now=T0)
    t1 = T0 + timedelta(seconds=30)
    verify_credentials(db, settings, "kari", PASSWORD, code(secret, t1), now=t1)
    assert get_user(db, "kari").failed_attempts == 0


def test_an_admin_can_lift_a_lock(db: Database, settings: Settings) -> None:
    secret = enrolled(db, settings)
    for _ in range(5):
        with pytest.raises(SignInError):
            verify_credentials(db, settings, "kari", "feil-passord-helt-klart", "1", now=T0)
    unlock_user(db, "kari", actor="admin")
    t1 = T0 + timedelta(seconds=30)
    assert verify_credentials(db, settings, "kari", PASSWORD, code(secret, t1), now=t1)


def test_unknown_names_get_the_same_answer_and_are_recorded(
    db: Database, settings: Settings
) -> None:
    with pytest.raises(SignInError, match=f"^{GENERIC}$"):
        verify_credentials(db, settings, "Mallory", PASSWORD, "123456", now=T0)
    (entry,) = audit.entries(db)
    assert (entry.actor, entry.action, entry.object) == (
        "mallory",
        "sign_in_failed",
        "user:mallory",
    )
    assert entry.data == {"reason": "unknown_user"}


def test_session_token_is_stored_only_as_a_hash(db: Database, settings: Settings) -> None:
    secret = enrolled(db, settings)
    t1 = T0 + timedelta(seconds=30)
    session = authenticate(db, settings, "kari", PASSWORD, code(secret, t1), now=t1, client="test")
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
    secret = enrolled(db, settings)
    t1 = T0 + timedelta(seconds=30)
    token = authenticate(db, settings, "kari", PASSWORD, code(secret, t1), now=t1).token
    t2 = t1 + timedelta(minutes=29)
    assert session_for_token(db, settings, token, now=t2) is not None  # and counts as activity
    assert session_for_token(db, settings, token, now=t2 + timedelta(minutes=29)) is not None
    assert session_for_token(db, settings, token, now=t2 + timedelta(minutes=59, seconds=1)) is None


def test_session_ends_after_twelve_hours_however_busy(db: Database, settings: Settings) -> None:
    secret = enrolled(db, settings)
    t1 = T0 + timedelta(seconds=30)
    token = authenticate(db, settings, "kari", PASSWORD, code(secret, t1), now=t1).token
    for minutes in range(20, 12 * 60, 20):
        t = t1 + timedelta(minutes=minutes)
        assert session_for_token(db, settings, token, now=t) is not None
    assert session_for_token(db, settings, token, now=t1 + timedelta(hours=12)) is None


def test_sign_out_ends_one_session(db: Database, settings: Settings) -> None:
    secret = enrolled(db, settings)
    t1, t2 = T0 + timedelta(seconds=30), T0 + timedelta(seconds=60)
    first = authenticate(db, settings, "kari", PASSWORD, code(secret, t1), now=t1)
    second = authenticate(db, settings, "kari", PASSWORD, code(secret, t2), now=t2)
    sign_out(db, first)
    assert session_for_token(db, settings, first.token, now=t2) is None
    assert session_for_token(db, settings, second.token, now=t2) is not None


def test_sign_out_everywhere_ends_every_session(db: Database, settings: Settings) -> None:
    secret = enrolled(db, settings)
    tokens = []
    for step in (1, 2, 3):
        t = T0 + timedelta(seconds=30 * step)
        tokens.append(authenticate(db, settings, "kari", PASSWORD, code(secret, t), now=t).token)
    assert sign_out_everywhere(db, "kari", actor="kari") == 3
    later = T0 + timedelta(minutes=2)
    assert [session_for_token(db, settings, t, now=later) for t in tokens] == [None] * 3
    assert actions(db)[-1] == ("kari", "sign_out_everywhere", "user:kari")


def test_disabled_account_loses_its_sessions_and_cannot_sign_in(
    db: Database, settings: Settings
) -> None:
    enrolled(db, settings, "anne", Role.ADMIN)
    secret = enrolled(db, settings)
    t1 = T0 + timedelta(seconds=30)
    token = authenticate(db, settings, "kari", PASSWORD, code(secret, t1), now=t1).token
    disable_user(db, "kari", actor="anne")
    assert session_for_token(db, settings, token, now=t1) is None
    t2 = T0 + timedelta(seconds=60)
    with pytest.raises(SignInError) as e:
        verify_credentials(db, settings, "kari", PASSWORD, code(secret, t2), now=t2)
    assert e.value.message == "kontoen «kari» er deaktivert"


def test_new_password_ends_sessions(db: Database, settings: Settings) -> None:
    secret = enrolled(db, settings)
    t1 = T0 + timedelta(seconds=30)
    token = authenticate(db, settings, "kari", PASSWORD, code(secret, t1), now=t1).token
    set_password(db, settings, "kari", "et-helt-nytt-passord", actor="kari")
    assert session_for_token(db, settings, token, now=t1) is None
    t2 = T0 + timedelta(seconds=60)
    assert verify_credentials(
        db, settings, "kari", "et-helt-nytt-passord", code(secret, t2), now=t2
    )


def test_reset_totp_needs_a_new_enrolment(db: Database, settings: Settings) -> None:
    old = enrolled(db, settings)
    t1 = T0 + timedelta(seconds=30)
    token = authenticate(db, settings, "kari", PASSWORD, code(old, t1), now=t1).token
    enrolment = reset_totp(db, settings, "kari", actor="admin")
    assert enrolment.secret != old
    assert session_for_token(db, settings, token, now=t1) is None
    t2 = T0 + timedelta(seconds=60)
    with pytest.raises(SignInError, match="ikke tatt i bruk"):
        verify_credentials(db, settings, "kari", PASSWORD, code(enrolment.secret, t2), now=t2)
    confirm_totp(db, settings, "kari", PASSWORD, code(enrolment.secret, t2), now=t2)
    t3 = T0 + timedelta(seconds=90)
    with pytest.raises(SignInError, match=f"^{GENERIC}$"):
        verify_credentials(db, settings, "kari", PASSWORD, code(old, t3), now=t3)


def test_password_rules(db: Database, settings: Settings) -> None:
    with pytest.raises(AccountError, match=r"^passordet må ha minst 12 tegn$"):
        add_user(db, settings, "kari", Role.AUTHOR, "kort", actor="admin")
    with pytest.raises(AccountError, match=r"^passordet kan ikke være brukernavnet$"):
        add_user(db, settings, "kari.nordmann", Role.AUTHOR, "Kari.Nordmann", actor="admin")
    assert db.scalar("SELECT count(*) FROM users") == 0


def test_user_names(db: Database, settings: Settings) -> None:
    with pytest.raises(AccountError) as e:
        add_user(db, settings, "kari nordmann", Role.AUTHOR, PASSWORD, actor="admin")
    assert e.value.message == (
        "brukernavnet «kari nordmann» er ugyldig: bruk 2–64 tegn a–z, 0–9, punktum, bindestrek "
        "eller understrek, og begynn med en bokstav"
    )
    add_user(db, settings, "kari", Role.AUTHOR, PASSWORD, actor="admin")
    with pytest.raises(AccountError, match=r"^brukeren «kari» finnes allerede$"):
        add_user(db, settings, "KARI", Role.VIEWER, PASSWORD, actor="admin")


def test_roles_are_ordered() -> None:
    assert [r.value for r in Role] == ["viewer", "author", "approver", "admin"]
    assert Role.ADMIN.allows(Role.APPROVER)
    assert Role.APPROVER.allows(Role.AUTHOR)
    assert not Role.AUTHOR.allows(Role.APPROVER)
    assert not Role.VIEWER.allows(Role.AUTHOR)


def test_require_role(db: Database, settings: Settings) -> None:
    enrolled(db, settings, "vera", Role.VIEWER)
    with pytest.raises(Forbidden) as e:
        require_role(get_user(db, "vera"), Role.AUTHOR)
    assert e.value.message == "vera har rollen «viewer»; dette krever «author» eller høyere"
    require_role(get_user(db, "vera"), Role.VIEWER)
    add_user(db, settings, "ny", Role.ADMIN, PASSWORD, actor="admin")
    with pytest.raises(Forbidden, match=r"^kontoen «ny» er ikke i bruk$"):
        require_role(get_user(db, "ny"), Role.VIEWER)


def test_the_last_admin_stays(db: Database, settings: Settings) -> None:
    enrolled(db, settings, "anne", Role.ADMIN)
    with pytest.raises(AccountError, match=r"^«anne» er den eneste aktive administratoren$"):
        set_role(db, "anne", Role.APPROVER, actor="anne")
    with pytest.raises(AccountError, match="eneste aktive administratoren"):
        disable_user(db, "anne", actor="anne")
    enrolled(db, settings, "ola", Role.ADMIN)
    assert set_role(db, "anne", Role.APPROVER, actor="ola").role is Role.APPROVER


def test_changes_are_audited(db: Database, settings: Settings) -> None:
    enrolled(db, settings, "anne", Role.ADMIN)
    enrolled(db, settings, "kari")
    set_role(db, "kari", Role.APPROVER, actor="anne")
    disable_user(db, "kari", actor="anne")
    assert actions(db) == [
        ("admin", "user_add", "user:anne"),
        ("anne", "user_totp_confirmed", "user:anne"),
        ("admin", "user_add", "user:kari"),
        ("kari", "user_totp_confirmed", "user:kari"),
        ("anne", "user_role", "user:kari"),
        ("anne", "user_disable", "user:kari"),
    ]
    role_change = audit.entries(db, action=audit.Action.USER_ROLE)[0]
    assert role_change.data == {"from": "author", "to": "approver"}
    assert audit.verify(db).ok


def test_failed_sign_in_leaves_a_verifiable_chain(
    db: Database, settings: Settings, tmp_path: Path
) -> None:
    enrolled(db, settings)
    with pytest.raises(SignInError):
        verify_credentials(db, settings, "kari", "feil-passord-helt-klart", "1", now=T0)
    assert audit.verify(db).ok
    assert [e.action for e in audit.entries(db)][-1] == "sign_in_failed"
