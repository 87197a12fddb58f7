"""`varsel user ...`: accounts from the command line, with their exit statuses and messages."""

from __future__ import annotations

import io
import json
import time
from pathlib import Path

import pyotp
import pytest
from click.testing import CliRunner, Result

from varsel import audit
from varsel.accounts import Role, get_user, list_users
from varsel.cli import cli
from varsel.db import Database

PASSWORD = "korrekt-hest-batteri-stift"  # noqa: S105 - a test account's password
SHORT, NEW = "kort", "et-helt-nytt-passord"
FAST = {"VARSEL_PASSWORD_MEMORY_KIB": "8192"}  # real argon2id, less memory: quick tests


class Terminal(io.BytesIO):
    """What an operator types at a terminal (CliRunner's own input is a pipe, not a terminal)."""

    def isatty(self) -> bool:
        return True


def run(db: Database, *args: str, input: Terminal | None = None, **env: str) -> Result:
    return CliRunner().invoke(cli, ["--db", db.url, *args], env={**FAST, **env}, input=input)


def add(db: Database, name: str = "kari", role: str = "author") -> str:
    """Add an account through the CLI; returns its TOTP secret from the printed key."""
    result = run(db, "user", "add", name, "--role", role, VARSEL_PASSWORD=PASSWORD)
    assert result.exit_code == 0, result.output
    return db.scalar("SELECT totp_secret FROM users WHERE name = ?", (name,))  # type: ignore[no-any-return]


def confirm(db: Database, name: str, secret: str) -> Result:
    code = pyotp.TOTP(secret).now()
    return run(db, "user", "confirm-totp", name, VARSEL_PASSWORD=PASSWORD, VARSEL_TOTP=code)


def test_add_prints_the_enrolment(db: Database) -> None:
    result = run(
        db,
        "user",
        "add",
        "Kari",
        "--role",
        "author",
        "--email",
        "kari@politiet.no",
        VARSEL_PASSWORD=PASSWORD,
    )
    assert result.exit_code == 0, result.output
    secret = db.scalar("SELECT totp_secret FROM users WHERE name = 'kari'")
    lines = result.output.splitlines()
    assert lines[0] == "Brukeren «kari» er laget med rollen «forfatter»."
    assert secret in result.output.replace("\n", "")
    assert f"otpauth://totp/varsel:kari?secret={secret}&issuer=varsel" in lines
    assert lines[-1] == "Kontoen kan brukes når koden er bekreftet: varsel user confirm-totp kari"
    assert sum("█" in line for line in lines) > 10  # the QR code, in block characters
    assert get_user(db, "kari").email == "kari@politiet.no"


def test_add_asks_for_the_password_twice(db: Database) -> None:
    typed = Terminal(f"{PASSWORD}\n{PASSWORD}\n".encode())
    result = run(db, "user", "add", "kari", "--role", "viewer", input=typed)
    assert result.exit_code == 0, result.output
    assert "Nytt passord: " in result.output
    assert "Gjenta passordet: " in result.output
    assert get_user(db, "kari").role.value == "viewer"


def test_add_refuses_a_short_password(db: Database) -> None:
    result = run(db, "user", "add", "kari", "--role", "author", VARSEL_PASSWORD=SHORT)
    assert result.exit_code == 2
    assert result.output == "varsel: passordet må ha minst 12 tegn\n"
    assert db.scalar("SELECT count(*) FROM users") == 0


def test_add_refused_leaves_no_store_it_made_behind(tmp_path: Path) -> None:
    store = tmp_path / "varsel.db"
    result = CliRunner().invoke(
        cli,
        ["--db", str(store), "user", "add", "kari", "--role", "author"],
        env={**FAST, "VARSEL_PASSWORD": SHORT},
    )
    assert (result.exit_code, result.output) == (2, "varsel: passordet må ha minst 12 tegn\n")
    assert list(tmp_path.iterdir()) == []


def test_add_refuses_an_unknown_role(db: Database) -> None:
    result = run(db, "user", "add", "kari", "--role", "sjef", VARSEL_PASSWORD=PASSWORD)
    assert result.exit_code == 2
    assert result.output == (
        "varsel: --role: «sjef» er ikke en rolle (velg leser, forfatter, godkjenner eller "
        "administrator)\n"
    )


def test_confirm_totp(db: Database) -> None:
    secret = add(db)
    result = confirm(db, "kari", secret)
    assert result.exit_code == 0, result.output
    assert result.output == "TOTP er bekreftet; kontoen «kari» kan nå brukes.\n"
    assert get_user(db, "kari").enrolled


def test_confirm_totp_with_a_wrong_code(db: Database) -> None:
    add(db)
    result = run(db, "user", "confirm-totp", "kari", VARSEL_PASSWORD=PASSWORD, VARSEL_TOTP="000000")
    assert result.exit_code == 2
    assert result.output == "varsel: feil brukernavn, passord eller engangskode\n"
    assert not get_user(db, "kari").enrolled


def test_list(db: Database) -> None:
    confirm(db, "kari", add(db, "kari", "author"))
    add(db, "berit", "approver")
    result = run(db, "user", "list", "--json")
    assert result.exit_code == 0, result.output
    listed = [(u["name"], u["role"], u["enrolled"]) for u in json.loads(result.output)]
    assert listed == [("berit", "approver", False), ("kari", "author", True)]
    table = run(db, "user", "list")
    assert "venter på TOTP" in table.output
    assert "aktiv" in table.output
    # A lock-out in Oslo's clock, as the sign-in refusal says it (22:30 UTC is 23.30 in winter).
    db.execute("UPDATE users SET locked_until = ? WHERE name = 'kari'", ("2999-01-01T22:30:00Z",))
    assert "låst til 2999-01-01 kl. 23.30" in run(db, "user", "list").output


def test_set_role_disable_enable(db: Database) -> None:
    add(db)
    assert run(db, "user", "set-role", "kari", "approver").output == (
        "«kari» har nå rollen «godkjenner».\n"
    )
    assert run(db, "user", "disable", "kari").output == (
        "«kari» er deaktivert; alle øktene er avsluttet.\n"
    )
    assert get_user(db, "kari").disabled
    assert run(db, "user", "enable", "kari").output == "«kari» kan logge inn igjen.\n"
    actors = {e.actor for e in audit.entries(db)}
    assert actors == {audit.cli_actor()}


def test_unknown_user(db: Database) -> None:
    result = run(db, "user", "disable", "nils")
    assert result.exit_code == 2
    assert result.output == "varsel: brukeren «nils» finnes ikke\n"


def test_reset_totp_sets_a_new_password_and_shows_a_new_enrolment(db: Database) -> None:
    old = add(db)
    confirm(db, "kari", old)
    result = run(db, "user", "reset-totp", "kari", VARSEL_PASSWORD=NEW)
    assert result.exit_code == 0, result.output
    new = db.scalar("SELECT totp_secret FROM users WHERE name = 'kari'")
    assert new != old
    assert result.output.splitlines()[0] == (
        "«kari» har fått ny TOTP-nøkkel og nytt passord; alle øktene er avsluttet. "
        "Gi passordet til eieren på en trygg måte."
    )
    assert f"otpauth://totp/varsel:kari?secret={new}&issuer=varsel" in result.output
    assert not get_user(db, "kari").enrolled
    # Whoever knows the old password (with the stolen phone, say) cannot enrol a phone first.
    code = pyotp.TOTP(new).now()
    raced = run(db, "user", "confirm-totp", "kari", VARSEL_PASSWORD=PASSWORD, VARSEL_TOTP=code)
    assert raced.exit_code == 2
    assert not get_user(db, "kari").enrolled
    owner = run(db, "user", "confirm-totp", "kari", VARSEL_PASSWORD=NEW, VARSEL_TOTP=code)
    assert owner.exit_code == 0, owner.output


def test_reset_totp_asks_for_the_new_password_twice(db: Database) -> None:
    add(db)
    before = db.scalar("SELECT password_hash FROM users")
    typed = Terminal(f"{NEW}\n{NEW}\n".encode())
    result = run(db, "user", "reset-totp", "kari", input=typed)
    assert result.exit_code == 0, result.output
    assert "Nytt passord: " in result.output
    assert "Gjenta passordet: " in result.output
    assert db.scalar("SELECT password_hash FROM users") != before


def test_reset_totp_with_a_bad_password_changes_nothing(db: Database) -> None:
    add(db)
    before = db.query("SELECT password_hash, totp_secret, updated_at FROM users")
    result = run(db, "user", "reset-totp", "kari", VARSEL_PASSWORD=SHORT)
    assert (result.exit_code, result.output) == (2, "varsel: passordet må ha minst 12 tegn\n")
    assert db.query("SELECT password_hash, totp_secret, updated_at FROM users") == before
    unknown = run(db, "user", "reset-totp", "nils", VARSEL_PASSWORD=NEW)
    assert (unknown.exit_code, unknown.output) == (2, "varsel: brukeren «nils» finnes ikke\n")


def test_sign_out_everywhere(db: Database) -> None:
    from varsel.config import Settings
    from varsel.signin import authenticate

    secret = add(db)
    confirm(db, "kari", secret)
    settings = Settings.load(environ=FAST)
    later = pyotp.TOTP(secret).at(time.time() + 30)
    authenticate(db, settings, "kari", PASSWORD, later)
    result = run(db, "user", "sign-out-everywhere", "kari")
    assert result.exit_code == 0, result.output
    assert result.output == "1 økt for «kari» er avsluttet.\n"
    assert db.scalar("SELECT count(*) FROM sessions WHERE revoked_at IS NULL") == 0


def test_set_password(db: Database) -> None:
    add(db)
    before = db.scalar("SELECT password_hash FROM users")
    result = run(db, "user", "set-password", "kari", VARSEL_PASSWORD=NEW)
    assert result.exit_code == 0, result.output
    assert result.output == "Passordet til «kari» er byttet; alle øktene er avsluttet.\n"
    assert db.scalar("SELECT password_hash FROM users") != before


def test_unlock(db: Database) -> None:
    add(db)
    db.execute("UPDATE users SET locked_until = '2999-01-01T00:00:00.000Z'")
    assert run(db, "user", "unlock", "kari").output == "«kari» er låst opp.\n"
    assert get_user(db, "kari").locked_until is None


@pytest.mark.parametrize(
    "command",
    [
        "add",
        "confirm-totp",
        "list",
        "set-role",
        "set-password",
        "disable",
        "enable",
        "unlock",
        "reset-totp",
        "sign-out-everywhere",
    ],
)
def test_every_command_is_documented(command: str) -> None:
    result = CliRunner().invoke(cli, ["user", command, "--help"])
    assert result.exit_code == 0
    help_text = result.output.split("Options:")[0]
    assert len(help_text.split("\n\n", 1)[1].strip()) > 20


def test_no_terminal_to_ask_for_a_password_on(db: Database) -> None:
    result = run(db, "user", "add", "kari", "--role", "author")
    assert result.exit_code == 2
    assert result.output == (
        "varsel: ingen terminal å spørre om passord på; sett VARSEL_PASSWORD og VARSEL_TOTP\n"
    )
    assert db.scalar("SELECT count(*) FROM users") == 0


def test_no_terminal_to_ask_for_a_code_on(db: Database) -> None:
    secret = add(db)
    confirm(db, "kari", secret)
    result = run(db, "user", "confirm-totp", "kari", VARSEL_PASSWORD=PASSWORD)
    assert result.exit_code == 2
    assert result.output == (
        "varsel: ingen terminal å spørre om engangskode på; sett VARSEL_PASSWORD og VARSEL_TOTP\n"
    )


def test_roles_are_named_in_bokmal_and_either_name_is_taken(db: Database) -> None:
    result = run(db, "user", "add", "kari", "--role", "Godkjenner", VARSEL_PASSWORD=PASSWORD)
    assert result.exit_code == 0, result.output
    assert "Brukeren «kari» er laget med rollen «godkjenner»." in result.output
    assert run(db, "user", "set-role", "kari", "viewer").output == "«kari» har nå rollen «leser».\n"
    add(db, "ada", "administrator")
    rows = [line.replace("│", " ").split() for line in run(db, "user", "list").output.splitlines()]
    assert [row[:2] for row in rows if row[:1] in (["ada"], ["kari"])] == [
        ["ada", "administrator"],
        ["kari", "leser"],
    ]
    assert [(u.name, u.role) for u in list_users(db)] == [
        ("ada", Role.ADMIN),
        ("kari", Role.VIEWER),
    ]
