"""`varsel audit verify` and `varsel audit show`: exit statuses, messages and filters."""

from __future__ import annotations

import json

from click.testing import CliRunner, Result

from varsel import audit
from varsel.audit import Action
from varsel.cli import cli
from varsel.db import Database


def run(db: Database, *args: str) -> Result:
    return CliRunner().invoke(cli, ["--db", db.url, "audit", *args])


def fill(db: Database) -> None:
    for actor, action, obj in (
        ("kari", Action.CAMPAIGN_CREATE, "campaign:1"),
        ("berit", Action.CAMPAIGN_APPROVE, "campaign:1"),
        ("kari", Action.CAMPAIGN_SEND, "campaign:1"),
        ("cli:ola", Action.USER_ADD, "user:per"),
    ):
        with db.transaction():
            audit.record(db, actor, action, obj, {"n": 1})


def test_verify_an_intact_log(db: Database) -> None:
    fill(db)
    result = run(db, "verify")
    head = audit.entries(db)[-1].hash
    assert result.exit_code == 0
    assert result.output == (
        f"Revisjonsloggen er hel: 4 oppføringer, siste er nr. 4 med hash {head}.\n"
    )


def test_verify_names_an_edited_entry(db: Database) -> None:
    fill(db)
    db.execute("UPDATE audit_log SET actor = 'kari' WHERE seq = 2")
    result = run(db, "verify")
    assert result.exit_code == 1
    assert result.output == (
        "Revisjonsloggen er brutt ved oppføring 2: innholdet er endret etter at det ble skrevet.\n"
    )


def test_verify_names_a_deleted_entry(db: Database) -> None:
    fill(db)
    db.execute("DELETE FROM audit_log WHERE seq = 3")
    result = run(db, "verify")
    assert result.exit_code == 1
    assert result.output == "Revisjonsloggen er brutt ved oppføring 3: den mangler (slettet).\n"


def test_verify_finds_a_cut_off_tail(db: Database) -> None:
    fill(db)
    db.execute("DELETE FROM audit_log WHERE seq = 4")
    result = run(db, "verify", "--json")
    assert result.exit_code == 1
    data = json.loads(result.output)
    assert (data["ok"], data["broken_seq"], data["entries"], data["head_seq"]) == (False, 4, 3, 4)
    assert data["reason"] == (
        "loggen slutter ved nr. 3, men hodet sier 4: de siste oppføringene er slettet"
    )


def test_show_everything(db: Database) -> None:
    fill(db)
    result = run(db, "show")
    assert result.exit_code == 0
    lines = result.output.splitlines()
    assert len(lines) == 4
    assert lines[1].split()[0] == "2"
    assert lines[1].split()[3:] == ["berit", "campaign_approve", "campaign:1", '{"n":1}']


def test_show_filters(db: Database) -> None:
    fill(db)
    by_kari = run(db, "show", "--actor", "kari", "--json")
    assert [json.loads(line)["seq"] for line in by_kari.output.splitlines()] == [1, 3]
    approvals = run(db, "show", "--action", "campaign_approve", "--json")
    (entry,) = [json.loads(line) for line in approvals.output.splitlines()]
    assert (entry["actor"], entry["object"], entry["detail"]) == (
        "berit",
        "campaign:1",
        {"n": 1},
    )
    users = run(db, "show", "--object", "user:per", "--json")
    assert [json.loads(line)["action"] for line in users.output.splitlines()] == ["user_add"]
    last = run(db, "show", "--limit", "1", "--json")
    assert [json.loads(line)["seq"] for line in last.output.splitlines()] == [4]
    future = run(db, "show", "--since", "2999-01-01")
    assert future.output == "Ingen oppføringer.\n"


def test_show_refuses_a_bad_date(db: Database) -> None:
    result = run(db, "show", "--since", "forrige uke")
    assert result.exit_code == 2
    assert result.output == (
        "varsel: --since «forrige uke»: skriv en dato (2025-03-01) eller et tidspunkt "
        "(2025-03-01T12:00Z)\n"
    )


def test_show_refuses_an_unknown_action(db: Database) -> None:
    result = run(db, "show", "--action", "hack")
    assert result.exit_code == 2
    assert result.output == "varsel: --action: «hack» er ikke et av valgene (se --help)\n"


def test_show_prints_a_typed_name_escaped_so_it_cannot_erase_lines(db: Database) -> None:
    # A stranger's name at the sign-in is recorded as typed; printed as it is, «ESC[1A ESC[2K»
    # would move the terminal's cursor up and erase the entries shown before it.
    import pytest

    from helpers import light_settings
    from varsel.signin import SignInError, verify_credentials

    fill(db)
    typed = "x\x1b[1A\x1b[2K\x1b[1A\x1b[2K\u202enimda"
    with pytest.raises(SignInError):
        verify_credentials(db, light_settings(), typed, "feil-passord-her", "123456")
    result = run(db, "show")
    assert result.exit_code == 0
    assert "\x1b" not in result.output
    assert "\u202e" not in result.output
    last = result.output.splitlines()[-1]
    # The typed name is in the detail (a JSON string: its controls are JSON's escapes), never
    # the actor: a stranger's line reads as nobody's.
    assert last.split()[3:6] == [
        "anonym",
        "sign_in_failed",
        '{"name":"x\\u001b[1a\\u001b[2k\\u001b[1a\\u001b[2k\\u202enimda","reason":"unknown_user"}',
    ]
    # The stored entry keeps what was typed, as hashed.
    assert audit.entries(db)[-1].data["name"] == typed.lower()
    assert audit.verify(db).ok
