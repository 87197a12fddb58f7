"""`varsel suppress add|list|remove`: messages, exit statuses, the audit log, and the effect."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from helpers import campaign_toml
from varsel import audit
from varsel.audit import Action
from varsel.campaign import create_campaign
from varsel.cli import cli, out
from varsel.config import Settings
from varsel.db import Database
from varsel.registry import import_dump


@pytest.fixture(autouse=True)
def wide(monkeypatch: pytest.MonkeyPatch) -> None:
    """A wide terminal: on 80 columns the table folds long values onto two lines."""
    monkeypatch.setattr(out, "_width", 200)


def run(db: Database, *args: str) -> Result:
    return CliRunner().invoke(cli, ["--db", db.url, "suppress", *args])


def stored(db: Database) -> list[tuple[str, str, str, str]]:
    return [
        (str(r[0]), str(r[1]), str(r[2]), str(r[3]))
        for r in db.query("SELECT kind, value, reason, source FROM suppressions ORDER BY value")
    ]


def test_add_then_list_shows_it(db: Database) -> None:
    added = run(db, "add", "--address", " Post@Blåbær.NO ", "--note", "ringte 3. mars")
    assert added.exit_code == 0
    # Shown as the operator wrote the domain, stored (and in --json) as its A-label.
    assert added.output == "Adressen post@blåbær.no er satt på sperrelisten.\n"
    table = run(db, "list")
    assert table.exit_code == 0
    assert "post@blåbær.no" in table.output
    assert "lagt inn av operatør" in table.output
    assert "ringte 3. mars" in table.output
    listed = run(db, "list", "--json")
    [entry] = json.loads(listed.output)
    assert {k: v for k, v in entry.items() if k != "created_at"} == {
        "kind": "address",
        "value": "post@xn--blbr-roah.no",
        "reason": "manual",
        "source": "cli",
        "note": "ringte 3. mars",
    }


def test_list_by_kind_newest_first_in_oslo_time(db: Database) -> None:
    with db.transaction():
        for kind, value, reason, at in (
            ("address", "post@a.no", "unsubscribed", "2025-01-15T08:30:00.000Z"),  # CET
            ("unit", "974760673", "manual", "2025-07-01T22:15:00.000Z"),  # CEST: the 2nd
            ("address", "post@b.no", "complaint", "2025-08-01T10:00:00.000Z"),
        ):
            db.execute(
                "INSERT INTO suppressions (kind, value, reason, source, created_at) "
                "VALUES (?, ?, ?, 'cli', ?)",
                (kind, value, reason, at),
            )
    every = json.loads(run(db, "list", "--json").output)
    assert [e["value"] for e in every] == ["post@b.no", "974760673", "post@a.no"]
    addresses = json.loads(run(db, "list", "--address", "--json").output)
    assert [e["value"] for e in addresses] == ["post@b.no", "post@a.no"]
    units = run(db, "list", "--orgnr")
    assert "974760673" in units.output
    assert "2025-07-02 00:15" in units.output
    assert "post@" not in units.output
    table = run(db, "list").output
    for words in ("avmeldt", "klage (spam)", "2025-01-15 09:30"):
        assert words in table


def test_an_empty_list(db: Database) -> None:
    assert run(db, "list").output == "Sperrelisten er tom.\n"
    assert json.loads(run(db, "list", "--json").output) == []


def test_add_twice_says_it_was_there_and_why(db: Database) -> None:
    with db.transaction():
        db.execute(
            "INSERT INTO suppressions (kind, value, reason, source, created_at) "
            "VALUES ('unit', '974760673', 'unsubscribed', 'web:delivery:3', "
            "'2025-03-01T13:05:00.000Z')"
        )
    again = run(db, "add", "--orgnr", "974 760 673", "--note", "ringte")
    assert again.exit_code == 0
    assert again.output == (
        "Organisasjonsnummeret 974760673 stod allerede på sperrelisten "
        "(avmeldt, 2025-03-01 14:05).\n"
    )
    assert stored(db) == [("unit", "974760673", "unsubscribed", "web:delivery:3")]
    assert audit.entries(db, action=Action.SUPPRESSION_ADD) == []


def test_remove_takes_it_off(db: Database) -> None:
    run(db, "add", "--address", "post@firma.no")
    removed = run(db, "remove", "--address", "POST@firma.no", "--note", "adressen er rettet")
    assert removed.exit_code == 0
    assert removed.output.startswith("Adressen post@firma.no er tatt av sperrelisten (stod der ")
    assert removed.output.endswith(": lagt inn av operatør).\n")
    assert stored(db) == []


def test_remove_takes_off_a_value_stored_under_rules_that_now_refuse_it(db: Database) -> None:
    # Added while test domains were allowed (or before a rule came): the console could lift it,
    # the command line refused the address it had to name.
    with db.transaction():
        db.execute(
            "INSERT INTO suppressions (kind, value, reason, source, created_at) "
            "VALUES ('address', 'post@example.com', 'manual', 'cli', '2025-03-01T10:00:00.000Z')"
        )
    removed = run(db, "remove", "--address", "post@example.com")
    assert removed.exit_code == 0
    assert removed.output == (
        "Adressen post@example.com er tatt av sperrelisten "
        "(stod der siden 2025-03-01 11:00: lagt inn av operatør).\n"
    )
    assert stored(db) == []
    [entry] = audit.entries(db, action=Action.SUPPRESSION_REMOVE)
    assert entry.object == "address:post@example.com"
    refused = run(db, "remove", "--address", "post@example.com")
    assert refused.exit_code == 2
    assert refused.output == (
        "varsel: «post@example.com» er ikke en brukbar e-postadresse "
        "(reservert domene som ikke kan motta e-post)\n"
    )


def test_remove_of_an_absent_value_exits_2_and_changes_nothing(db: Database) -> None:
    run(db, "add", "--orgnr", "974760673")
    before = (stored(db), audit.verify(db).head_seq)
    result = run(db, "remove", "--address", "post@firma.no")
    assert result.exit_code == 2
    assert result.output == "varsel: adressen post@firma.no står ikke på sperrelisten\n"
    assert (stored(db), audit.verify(db).head_seq) == before


def test_a_bad_address_exits_2_and_stores_nothing(db: Database) -> None:
    result = run(db, "add", "--address", "post@firma,no")
    assert result.exit_code == 2
    assert result.output == (
        "varsel: «post@firma,no» er ikke en brukbar e-postadresse "
        "(mangler punktum i domenet etter @)\n"
    )
    assert stored(db) == []
    assert audit.entries(db) == []


def test_a_bad_orgnr_exits_2_and_stores_nothing(db: Database) -> None:
    result = run(db, "add", "--orgnr", "974 760 674")
    assert result.exit_code == 2
    assert result.output == (
        "varsel: «974 760 674» er ikke et gyldig organisasjonsnummer (feil kontrollsiffer)\n"
    )
    assert stored(db) == []
    assert audit.entries(db) == []


def test_exactly_one_of_address_and_orgnr(db: Database) -> None:
    for args in ((), ("--address", "post@firma.no", "--orgnr", "974760673")):
        result = run(db, "add", *args)
        assert result.exit_code == 2
        assert result.output == "varsel: oppgi enten --address ADRESSE eller --orgnr NUMMER\n"
    assert stored(db) == []


def test_add_remove_and_list_are_audited(db: Database) -> None:
    run(db, "add", "--orgnr", "974760673", "--note", "ba om å slippe")
    run(db, "list", "--json")
    run(db, "remove", "--orgnr", "974760673")
    found = audit.entries(db)
    assert [e.action for e in found] == [
        "suppression_add",
        "personal_data_export",
        "suppression_remove",
    ]
    assert all(e.actor.startswith("cli:") for e in found)
    assert [e.data.get("note") for e in found] == ["ba om å slippe", None, None]
    assert audit.verify(db).ok


def test_an_added_address_and_unit_are_skipped_by_the_next_campaign(
    db: Database, brreg: Path, settings: Settings, tmp_path: Path
) -> None:
    import_dump(db, brreg / "enheter-sample.json")
    import_dump(db, brreg / "underenheter-sample.json")
    assert run(db, "add", "--address", " FirmaPost@Statnett.NO ").exit_code == 0
    assert run(db, "add", "--orgnr", "958 935 420").exit_code == 0  # Oslo kommune
    path = tmp_path / "campaign.toml"
    path.write_text(campaign_toml(segment="min_employees = 2\n"), "utf-8")
    result = create_campaign(db, settings, path)
    states = dict(
        db.query(
            "SELECT address, state FROM deliveries WHERE campaign_id = ?", (result.campaign.id,)
        )
    )
    assert result.suppressed == 2
    assert states["firmapost@statnett.no"] == "suppressed"
    assert list(states.values()).count("suppressed") == 2


def test_list_gives_the_note_its_own_column_apart_from_the_source(db: Database) -> None:
    with db.transaction():
        db.execute(
            "INSERT INTO suppressions (kind, value, reason, source, created_at) "
            "VALUES ('address', 'post@a.no', 'unsubscribed', 'web:delivery:3', "
            "'2025-03-01T13:05:00.000Z')"
        )
        # One from before the note had a column of its own (migration 0011).
        db.execute(
            "INSERT INTO suppressions (kind, value, reason, source, created_at) "
            "VALUES ('address', 'post@c.no', 'manual', 'operator', '2025-02-01T13:05:00.000Z')"
        )
    run(db, "add", "--orgnr", "974760673", "--note", "ringte 3. mars")
    run(db, "add", "--address", "post@b.no")
    cells = [
        [c.strip() for c in line.replace("┃", "│").split("│")[1:-1]]
        for line in run(db, "list").output.splitlines()
        if "│" in line or "┃" in line
    ]
    assert cells[0] == ["Type", "Verdi", "Årsak", "Kilde", "Merknad", "Lagt inn"]
    assert [row[1:5] for row in cells[1:]] == [
        ["post@b.no", "lagt inn av operatør", "kommandolinjen", ""],
        ["974760673", "lagt inn av operatør", "kommandolinjen", "ringte 3. mars"],
        ["post@a.no", "avmeldt", "avmelding på nettsiden (levering 3)", ""],
        ["post@c.no", "lagt inn av operatør", "operatør", ""],
    ]
    listed = json.loads(run(db, "list", "--json").output)
    assert [(e["value"], e["reason"], e["source"], e["note"]) for e in listed] == [
        ("post@b.no", "manual", "cli", None),
        ("974760673", "manual", "cli", "ringte 3. mars"),
        ("post@a.no", "unsubscribed", "web:delivery:3", None),
        ("post@c.no", "manual", "operator", None),
    ]


def test_list_into_a_file_keeps_each_address_whole(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    # 80 columns folded it (the address in two pieces, a line below) into a file too,
    # where it is searched for and copied from.
    monkeypatch.setattr(out, "_width", 80)
    address = "fakturamottak.regnskap@regnskapskontoret-oslo-vest.no"
    run(db, "add", "--address", address, "--note", "ringte og ba om å slippe e-post fra oss")
    listed = run(db, "list")
    assert listed.exit_code == 0, listed.output
    assert any(address in line for line in listed.output.splitlines())
    assert any(
        "ringte og ba om å slippe e-post fra oss" in line for line in listed.output.splitlines()
    )


def test_list_search_finds_an_old_entry_by_a_part_or_an_orgnr_with_spaces(db: Database) -> None:
    with db.transaction():
        for kind, value, at in (
            ("address", "ola.nordmann@firma.no", "2019-05-01T10:00:00.000Z"),
            ("unit", "974760673", "2025-03-02T10:00:00.000Z"),
            ("address", "post@xn--blbr-roah.no", "2025-03-03T10:00:00.000Z"),
        ):
            db.execute(
                "INSERT INTO suppressions (kind, value, reason, source, created_at) "
                "VALUES (?, ?, 'unsubscribed', 'web:delivery:3', ?)",
                (kind, value, at),
            )
    found = run(db, "list", "--search", "Firma.NO")
    assert found.exit_code == 0, found.output
    assert "ola.nordmann@firma.no" in found.output
    assert "2019-05-01 12:00" in found.output
    assert "974760673" not in found.output
    assert found.output.splitlines()[-1] == "1 av 3 oppføringer passer til «Firma.NO»."
    unit = json.loads(run(db, "list", "--search", "974 760 673", "--json").output)
    assert [e["value"] for e in unit] == ["974760673"]
    # As the operator sees it (post@blåbær.no), though stored with the domain's A-label.
    idn = run(db, "list", "--search", "blåbær", "--address")
    assert "post@blåbær.no" in idn.output
    assert idn.output.splitlines()[-1] == "1 av 2 oppføringer passer til «blåbær»."


def test_list_search_that_finds_nothing_says_so(db: Database) -> None:
    run(db, "add", "--orgnr", "974760673")
    none = run(db, "list", "--search", "kari@firma.no")
    assert (none.exit_code, none.output) == (
        0,
        "Ingen oppføringer passer til «kari@firma.no».\n",
    )
    assert json.loads(run(db, "list", "--search", "kari", "--json").output) == []


def test_list_search_records_that_it_searched_but_not_for_what(db: Database) -> None:
    run(db, "add", "--address", "kari@firma.no")
    run(db, "list", "--search", "kari@")
    (entry,) = audit.entries(db, action=Action.PERSONAL_DATA_EXPORT)
    assert entry.data == {
        "what": "suppressions",
        "kind": None,
        "format": "table",
        "search": True,
        "rows": 1,
    }


def test_list_search_for_nothing_exits_2(db: Database) -> None:
    empty = run(db, "list", "--search", "  ")
    assert (empty.exit_code, empty.output) == (
        2,
        "varsel: søket er tomt: skriv en adresse, en del av en, eller et orgnr\n",
    )
    assert audit.entries(db) == []
