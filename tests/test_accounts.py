"""Accounts: argon2id passwords, TOTP enrolment, roles, and changes to accounts."""

from __future__ import annotations

from datetime import timedelta

import pytest

from helpers import GENERIC, PASSWORD, T0, audit_actions, enrolled_at_t0, light_settings, totp_code
from varsel import audit
from varsel.accounts import (
    AccountError,
    Forbidden,
    Role,
    add_user,
    disable_user,
    get_user,
    require_role,
    reset_totp,
    set_password,
    set_role,
    unlock_user,
)
from varsel.config import Settings
from varsel.db import Database
from varsel.signin import (
    SignInError,
    authenticate,
    confirm_totp,
    session_for_token,
    verify_credentials,
)
from varsel.web.console_auth import translate


@pytest.fixture
def settings() -> Settings:
    return light_settings()


def test_enrolment_gives_secret_uri_and_qr_codes(db: Database, settings: Settings) -> None:
    enrolment = add_user(db, settings, "Kari", Role.AUTHOR, PASSWORD, actor="admin")
    assert enrolment.user.name == "kari"
    assert enrolment.uri == (f"otpauth://totp/varsel:kari?secret={enrolment.secret}&issuer=varsel")
    assert len(enrolment.secret) == 32
    assert enrolment.qr_svg().startswith("<svg ")
    assert "<title>TOTP</title>" in enrolment.qr_svg()
    assert "▄" in enrolment.qr_text()
    assert not enrolment.user.enrolled
    assert audit_actions(db) == [("admin", "user_add", "user:kari")]


def test_password_is_stored_as_argon2id(db: Database) -> None:
    add_user(db, Settings.load(environ={}), "kari", Role.AUTHOR, PASSWORD, actor="admin")
    stored = db.scalar("SELECT password_hash FROM users WHERE name = 'kari'")
    assert stored.startswith("$argon2id$v=19$m=65536,t=3,p=4$")
    assert PASSWORD not in stored


def test_an_admin_can_lift_a_lock(db: Database, settings: Settings) -> None:
    secret = enrolled_at_t0(db, settings)
    for _ in range(5):
        with pytest.raises(SignInError):
            verify_credentials(db, settings, "kari", "feil-passord-helt-klart", "1", now=T0)
    unlock_user(db, "kari", actor="admin")
    t1 = T0 + timedelta(seconds=30)
    assert verify_credentials(db, settings, "kari", PASSWORD, totp_code(secret, t1), now=t1)


def test_disabled_account_loses_its_sessions_and_cannot_sign_in(
    db: Database, settings: Settings
) -> None:
    enrolled_at_t0(db, settings, "anne", Role.ADMIN)
    secret = enrolled_at_t0(db, settings)
    t1 = T0 + timedelta(seconds=30)
    token = authenticate(db, settings, "kari", PASSWORD, totp_code(secret, t1), now=t1).token
    disable_user(db, "kari", actor="anne")
    assert session_for_token(db, settings, token, now=t1) is None
    t2 = T0 + timedelta(seconds=60)
    with pytest.raises(SignInError) as e:
        verify_credentials(db, settings, "kari", PASSWORD, totp_code(secret, t2), now=t2)
    assert e.value.message == "kontoen «kari» er deaktivert"


def test_new_password_ends_sessions(db: Database, settings: Settings) -> None:
    secret = enrolled_at_t0(db, settings)
    t1 = T0 + timedelta(seconds=30)
    token = authenticate(db, settings, "kari", PASSWORD, totp_code(secret, t1), now=t1).token
    set_password(db, settings, "kari", "et-helt-nytt-passord", actor="kari")
    assert session_for_token(db, settings, token, now=t1) is None
    t2 = T0 + timedelta(seconds=60)
    assert verify_credentials(
        db, settings, "kari", "et-helt-nytt-passord", totp_code(secret, t2), now=t2
    )


def test_reset_totp_needs_a_new_enrolment_and_a_new_password(
    db: Database, settings: Settings
) -> None:
    old = enrolled_at_t0(db, settings)
    t1 = T0 + timedelta(seconds=30)
    token = authenticate(db, settings, "kari", PASSWORD, totp_code(old, t1), now=t1).token
    enrolment = reset_totp(db, settings, "kari", "et-helt-nytt-passord", actor="admin")
    assert enrolment.secret != old
    assert session_for_token(db, settings, token, now=t1) is None
    (reset,) = audit.entries(db, action=audit.Action.USER_TOTP_RESET)
    assert (reset.actor, reset.data) == ("admin", {"password": True, "sessions": 1})
    t2 = T0 + timedelta(seconds=60)
    new_code = totp_code(enrolment.secret, t2)
    with pytest.raises(SignInError, match="ikke tatt i bruk"):
        verify_credentials(db, settings, "kari", "et-helt-nytt-passord", new_code, now=t2)
    # The old password enrols nothing: its thief cannot race the owner to a new phone.
    with pytest.raises(SignInError, match=f"^{GENERIC}$"):
        confirm_totp(db, settings, "kari", PASSWORD, new_code, now=t2)
    confirm_totp(db, settings, "kari", "et-helt-nytt-passord", new_code, now=t2)
    t3 = T0 + timedelta(seconds=90)
    with pytest.raises(SignInError, match=f"^{GENERIC}$"):
        verify_credentials(db, settings, "kari", "et-helt-nytt-passord", totp_code(old, t3), now=t3)


def test_reset_totp_refuses_a_bad_password_and_changes_nothing(
    db: Database, settings: Settings
) -> None:
    enrolled_at_t0(db, settings)
    before = db.query("SELECT password_hash, totp_secret, totp_confirmed_at FROM users")
    with pytest.raises(AccountError, match=r"^passordet er for lett å gjette"):
        reset_totp(db, settings, "kari", "passord12345", actor="admin")
    assert db.query("SELECT password_hash, totp_secret, totp_confirmed_at FROM users") == before
    assert audit.entries(db, action=audit.Action.USER_TOTP_RESET) == []


def test_password_rules(db: Database, settings: Settings) -> None:
    with pytest.raises(AccountError, match=r"^passordet må ha minst 12 tegn$"):
        add_user(db, settings, "kari", Role.AUTHOR, "kort", actor="admin")
    with pytest.raises(AccountError, match=r"^passordet kan ikke være brukernavnet$"):
        add_user(db, settings, "kari.nordmann", Role.AUTHOR, "Kari.Nordmann", actor="admin")
    assert db.scalar("SELECT count(*) FROM users") == 0


@pytest.mark.parametrize(
    "password",
    [
        "passord12345",  # a common password, twelve characters long
        "qwertyuiop123",  # a keyboard pattern
        "kari.nordmann2025",  # the user's own name with a year
        "politiet2023!",  # this system's own words
        "aaaaaaaaaaaaaaaa",  # a repeat
    ],
)
def test_a_long_password_that_is_easy_to_guess_is_refused(
    db: Database, settings: Settings, password: str
) -> None:
    with pytest.raises(AccountError, match=r"^passordet er for lett å gjette: "):
        add_user(db, settings, "kari.nordmann", Role.AUTHOR, password, actor="admin")
    assert db.scalar("SELECT count(*) FROM users") == 0


def test_a_long_passphrase_is_judged_and_accepted(db: Database, settings: Settings) -> None:
    # Longer than the 72 characters zxcvbn judges: its first 72 are, and they are strong.
    phrase = "fjord sykkel lampe orkan " * 6
    add_user(db, settings, "kari", Role.AUTHOR, phrase, actor="admin")
    with pytest.raises(AccountError, match=r"^passordet er for lett å gjette: "):
        add_user(db, settings, "ola", Role.AUTHOR, "a" * 200, actor="admin")


def test_a_new_password_that_is_easy_to_guess_is_refused(db: Database, settings: Settings) -> None:
    add_user(db, settings, "kari", Role.AUTHOR, PASSWORD, actor="admin", email="kari@nsr.no")
    before = db.query("SELECT password_hash, updated_at FROM users")
    with pytest.raises(AccountError, match=r"^passordet er for lett å gjette: "):
        set_password(db, settings, "kari", "kari@nsr.no2025", actor="admin")
    assert db.query("SELECT password_hash, updated_at FROM users") == before


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


@pytest.mark.parametrize(
    "name", ["system", "System", "anonym", "demo", "cli", "cli.root", "cli-ola"]
)
def test_the_names_the_audit_log_uses_for_itself_are_reserved(
    db: Database, settings: Settings, name: str
) -> None:
    # An account «system» would make its actions read as the system's in the audit log.
    with pytest.raises(AccountError) as e:
        add_user(db, settings, name, Role.ADMIN, PASSWORD, actor="admin")
    assert e.value.message == (
        f"brukernavnet «{name.lower()}» er reservert: revisjonsloggen bruker det om handlinger "
        "ingen konto gjorde (system, anonym, demo, cli:…); velg et annet"
    )
    assert db.scalar("SELECT count(*) FROM users") == 0
    assert add_user(db, settings, "clio", Role.VIEWER, PASSWORD, actor="admin").user.name == "clio"


def test_roles_are_ordered() -> None:
    assert [r.value for r in Role] == ["viewer", "author", "approver", "admin"]
    assert Role.ADMIN.allows(Role.APPROVER)
    assert Role.APPROVER.allows(Role.AUTHOR)
    assert not Role.AUTHOR.allows(Role.APPROVER)
    assert not Role.VIEWER.allows(Role.AUTHOR)


def test_require_role(db: Database, settings: Settings) -> None:
    enrolled_at_t0(db, settings, "vera", Role.VIEWER)
    with pytest.raises(Forbidden) as e:
        require_role(get_user(db, "vera"), Role.AUTHOR)
    assert e.value.message == "vera har rollen «leser»; dette krever «forfatter» eller høyere"
    # The console shows it in the page's language, the roles' names too.
    assert translate("nn", e.value.message) == (
        "vera har rolla «lesar»; dette krev «forfattar» eller høgare"
    )
    assert translate("en", e.value.message) == (
        "vera has the role “viewer”; this needs “author” or higher"
    )
    require_role(get_user(db, "vera"), Role.VIEWER)
    add_user(db, settings, "ny", Role.ADMIN, PASSWORD, actor="admin")
    with pytest.raises(Forbidden, match=r"^kontoen «ny» er ikke i bruk$"):
        require_role(get_user(db, "ny"), Role.VIEWER)


def test_the_last_admin_stays(db: Database, settings: Settings) -> None:
    enrolled_at_t0(db, settings, "anne", Role.ADMIN)
    with pytest.raises(AccountError, match=r"^«anne» er den eneste aktive administratoren$"):
        set_role(db, "anne", Role.APPROVER, actor="anne")
    with pytest.raises(AccountError, match="eneste aktive administratoren"):
        disable_user(db, "anne", actor="anne")
    enrolled_at_t0(db, settings, "ola", Role.ADMIN)
    assert set_role(db, "anne", Role.APPROVER, actor="ola").role is Role.APPROVER


def test_an_admin_not_enrolled_yet_does_not_count_as_the_one_that_stays(
    db: Database, settings: Settings
) -> None:
    # per may never enrol (the first password not passed on): with anne gone, no one could
    # sign in to manage accounts.
    enrolled_at_t0(db, settings, "anne", Role.ADMIN)
    add_user(db, settings, "per", Role.ADMIN, PASSWORD, actor="anne")
    before = db.query("SELECT name, role, disabled_at FROM users ORDER BY name")
    with pytest.raises(AccountError, match=r"^«anne» er den eneste aktive administratoren$"):
        disable_user(db, "anne", actor="per")
    with pytest.raises(AccountError, match=r"^«anne» er den eneste aktive administratoren$"):
        set_role(db, "anne", Role.AUTHOR, actor="per")
    assert db.query("SELECT name, role, disabled_at FROM users ORDER BY name") == before
    # Once per has enrolled, anne may go.
    confirm_totp(db, settings, "per", PASSWORD, totp_code(get_user_secret(db, "per"), T0), now=T0)
    assert disable_user(db, "anne", actor="per").disabled


def get_user_secret(db: Database, name: str) -> str:
    return str(db.scalar("SELECT totp_secret FROM users WHERE name = ?", (name,)))


def test_changes_are_audited(db: Database, settings: Settings) -> None:
    enrolled_at_t0(db, settings, "anne", Role.ADMIN)
    enrolled_at_t0(db, settings, "kari")
    set_role(db, "kari", Role.APPROVER, actor="anne")
    disable_user(db, "kari", actor="anne")
    assert audit_actions(db) == [
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
