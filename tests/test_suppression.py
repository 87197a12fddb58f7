"""The suppression list: what an operator types made into stored values; add, list, remove."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import pytest

from varsel import audit, contacts
from varsel.audit import Action
from varsel.db import Database, connect
from varsel.suppression import (
    Entry,
    SuppressionError,
    SuppressionKind,
    SuppressionReason,
    add,
    add_manual,
    entries,
    find,
    list_for_operator,
    matching,
    normalise_value,
    remove,
    remove_manual,
    source_text,
    suppressed,
    unlink_deliveries,
)

ADDRESS, UNIT = SuppressionKind.ADDRESS, SuppressionKind.UNIT


def put(db: Database, kind: SuppressionKind, value: str, reason: str, at: str) -> None:
    """A row as the public pages or bounces left it, at a known time."""
    db.execute(
        "INSERT INTO suppressions (kind, value, reason, source, created_at) VALUES (?, ?, ?, ?, ?)",
        (kind.value, value, reason, "web:delivery:7", at),
    )


@pytest.mark.parametrize(
    ("typed", "stored"),
    [
        ("post@firma.no", "post@firma.no"),
        ("  FirmaPost@Statnett.NO \n", "firmapost@statnett.no"),
        ("<mailto:Post@Firma.no>", "post@firma.no"),
        ("Post@Blåbær.NO", "post@xn--blbr-roah.no"),
    ],
)
def test_an_address_is_stored_as_the_registry_import_stores_it(typed: str, stored: str) -> None:
    assert normalise_value(ADDRESS, typed) == stored
    # The campaign looks suppressions up by the address its contacts were stored as.
    (parsed,) = contacts.parse_addresses(typed)
    assert parsed.address == stored


@pytest.mark.parametrize(
    ("typed", "message"),
    [
        ("ola@firma", "«ola@firma» er ikke en brukbar e-postadresse "
         "(mangler punktum i domenet etter @)"),
        ("post@example.com", "«post@example.com» er ikke en brukbar e-postadresse "
         "(reservert domene som ikke kan motta e-post)"),
        ("   ", "«» er ikke en brukbar e-postadresse (tom adresse)"),
        ("a@b.no\nc@d.no", "«a@b.no c@d.no» er ikke en brukbar e-postadresse "
         "(flere adresser i samme felt)"),
    ],
)  # fmt: skip
def test_a_bad_address_is_refused_in_one_line(typed: str, message: str) -> None:
    with pytest.raises(SuppressionError) as caught:
        normalise_value(ADDRESS, typed)
    assert caught.value.message == message
    assert caught.value.exit_status == 2


def test_test_domains_follow_the_setting() -> None:
    assert normalise_value(ADDRESS, "post@firma.test", allow_test_domains=True) == "post@firma.test"
    with pytest.raises(SuppressionError):
        normalise_value(ADDRESS, "post@firma.test")


@pytest.mark.parametrize("typed", ["974760673", " 974 760 673 ", "974\u00a0760\u00a0673"])
def test_an_orgnr_may_be_typed_with_spaces(typed: str) -> None:
    assert normalise_value(UNIT, typed) == "974760673"


@pytest.mark.parametrize(
    ("typed", "message"),
    [
        (
            "974 760 674",
            "«974 760 674» er ikke et gyldig organisasjonsnummer (feil kontrollsiffer)",
        ),
        ("97476067", "«97476067» er ikke et organisasjonsnummer (det har ni siffer)"),
        ("NO974760673MVA", "«NO974760673MVA» er ikke et organisasjonsnummer (det har ni siffer)"),
        (
            "９７４７６０６７３",
            "«９７４７６０６７３» er ikke et organisasjonsnummer (det har ni siffer)",
        ),
    ],
)
def test_a_bad_orgnr_is_refused_in_one_line(typed: str, message: str) -> None:
    with pytest.raises(SuppressionError) as caught:
        normalise_value(UNIT, typed)
    assert caught.value.message == message


def test_entries_are_newest_first_and_of_one_kind_when_asked(db: Database) -> None:
    with db.transaction():
        put(db, ADDRESS, "post@a.no", "unsubscribed", "2025-03-01T10:00:00.000Z")
        put(db, UNIT, "974760673", "manual", "2025-03-02T10:00:00.000Z")
        put(db, ADDRESS, "post@b.no", "hard_bounce", "2025-03-03T10:00:00.000Z")
    assert [e.value for e in entries(db)] == ["post@b.no", "974760673", "post@a.no"]
    assert [e.value for e in entries(db, ADDRESS)] == ["post@b.no", "post@a.no"]
    assert entries(db, UNIT) == [
        Entry(
            UNIT,
            "974760673",
            SuppressionReason.MANUAL,
            "web:delivery:7",
            "2025-03-02T10:00:00.000Z",
        )
    ]


def test_the_same_address_suppressed_by_two_at_once_is_no_error(db: Database) -> None:
    # A bounce and a one-click unsubscribe for one address, in two transactions at once: on
    # PostgreSQL both looked, found nothing, and the second insert failed (a 500 on the page).
    other = connect(db.url)
    added: list[bool | str] = []

    def second() -> None:
        try:
            with other.transaction():
                added.append(add(other, ADDRESS, "post@a.no", SuppressionReason.UNSUBSCRIBED))
        except Exception as e:  # the failure this test is about, reported below
            added.append(repr(e))

    try:
        with db.transaction():
            assert add(db, ADDRESS, "post@a.no", SuppressionReason.HARD_BOUNCE, "delivery:1")
            thread = threading.Thread(target=second)
            thread.start()
            time.sleep(0.5)  # the second waits on the first's row (PostgreSQL) or lock (SQLite)
        thread.join()
    finally:
        other.close()
    assert added == [False]
    assert [(e.reason, e.source) for e in entries(db)] == [
        (SuppressionReason.HARD_BOUNCE, "delivery:1")
    ]


def test_remove_lifts_one_suppression(db: Database) -> None:
    with db.transaction():
        add(db, ADDRESS, "post@a.no", SuppressionReason.COMPLAINT)
        add(db, UNIT, "974760673", SuppressionReason.UNSUBSCRIBED)
        assert remove(db, ADDRESS, "post@a.no") is True
        assert remove(db, ADDRESS, "post@a.no") is False
        assert remove(db, ADDRESS, "974760673") is False  # the unit kind is its own
    assert suppressed(db, ADDRESS, ["post@a.no"]) == set()
    assert suppressed(db, UNIT, ["974760673"]) == {"974760673"}


def test_add_manual_suppresses_a_unit_and_records_it(db: Database) -> None:
    result = add_manual(db, UNIT, "974760673", actor="cli:ola", note=" ringte 3. mars ")
    assert result.added
    # Where it came from and why, each in its own column.
    assert (result.entry.reason, result.entry.source, result.entry.note) == (
        SuppressionReason.MANUAL,
        "cli",
        "ringte 3. mars",
    )
    assert suppressed(db, UNIT, ["974760673"]) == {"974760673"}
    (entry,) = audit.entries(db, action=Action.SUPPRESSION_ADD)
    assert (entry.actor, entry.object) == ("cli:ola", "unit:974760673")
    assert entry.data == {
        "kind": "unit",
        "value": "974760673",
        "reason": "manual",
        "note": "ringte 3. mars",
    }


def test_add_manual_without_a_note_names_the_command_line(db: Database) -> None:
    assert add_manual(db, ADDRESS, "post@a.no", actor="cli:ola").entry.source == "cli"


def test_add_manual_keeps_what_was_there(db: Database) -> None:
    with db.transaction():
        put(db, ADDRESS, "post@a.no", "unsubscribed", "2025-03-01T10:00:00.000Z")
    result = add_manual(db, ADDRESS, "post@a.no", actor="cli:ola", note="igjen")
    assert not result.added
    assert result.entry.reason is SuppressionReason.UNSUBSCRIBED
    assert result.entry.created_at == "2025-03-01T10:00:00.000Z"
    assert audit.entries(db) == []  # nothing changed, nothing to record


def test_remove_manual_returns_what_it_removed_and_records_it(db: Database) -> None:
    with db.transaction():
        put(db, ADDRESS, "post@a.no", "hard_bounce", "2025-03-01T10:00:00.000Z")
    removed = remove_manual(db, ADDRESS, "post@a.no", actor="cli:ola", note="rettet")
    assert removed.reason is SuppressionReason.HARD_BOUNCE
    assert find(db, ADDRESS, "post@a.no") is None
    (entry,) = audit.entries(db, action=Action.SUPPRESSION_REMOVE)
    assert entry.object == "address:post@a.no"
    assert entry.data == {
        "kind": "address",
        "value": "post@a.no",
        "reason": "hard_bounce",
        "source": "web:delivery:7",
        "note": "rettet",
    }


def test_remove_manual_of_something_not_there_changes_nothing(db: Database) -> None:
    with db.transaction():
        put(db, UNIT, "974760673", "manual", "2025-03-01T10:00:00.000Z")
    with pytest.raises(SuppressionError) as caught:
        remove_manual(db, ADDRESS, "974760673", actor="cli:ola")
    assert caught.value.message == "adressen 974760673 står ikke på sperrelisten"
    assert len(entries(db)) == 1
    assert audit.entries(db) == []


def test_listing_is_recorded_as_a_personal_data_export(db: Database) -> None:
    with db.transaction():
        put(db, ADDRESS, "post@a.no", "unsubscribed", "2025-03-01T10:00:00.000Z")
        put(db, UNIT, "974760673", "manual", "2025-03-02T10:00:00.000Z")
    found = list_for_operator(db, ADDRESS, actor="cli:ola", output="json")
    assert [e.value for e in found.entries] == ["post@a.no"]
    (entry,) = audit.entries(db, action=Action.PERSONAL_DATA_EXPORT)
    assert (entry.actor, entry.object) == ("cli:ola", "suppressions")
    assert entry.data == {
        "what": "suppressions",
        "kind": "address",
        "format": "json",
        "search": False,
        "rows": 1,
    }


def test_a_listing_up_to_a_limit_says_how_many_there_are_and_records_what_it_showed(
    db: Database,
) -> None:
    with db.transaction():
        for day in range(1, 6):
            put(db, ADDRESS, f"post{day}@a.no", "unsubscribed", f"2025-03-0{day}T10:00:00.000Z")
    listing = list_for_operator(db, actor="konsoll", output="console", limit=2)
    assert [e.value for e in listing.entries] == ["post5@a.no", "post4@a.no"]
    assert (listing.matched, listing.total) == (5, 5)
    (entry,) = audit.entries(db, action=Action.PERSONAL_DATA_EXPORT)
    assert entry.data["rows"] == 2


def search_sample(db: Database) -> None:
    """An old unsubscribe, a bounce, a business and an address with an IDN domain."""
    with db.transaction():
        put(db, ADDRESS, "ola.nordmann@firma.no", "unsubscribed", "2019-05-01T10:00:00.000Z")
        put(db, ADDRESS, "post@annen.no", "hard_bounce", "2025-03-01T10:00:00.000Z")
        put(db, UNIT, "974760673", "unsubscribed", "2025-03-02T10:00:00.000Z")
        put(db, ADDRESS, "post@xn--blbr-roah.no", "unsubscribed", "2025-03-03T10:00:00.000Z")
        put(db, ADDRESS, "post@blabar.no", "unsubscribed", "2025-03-04T10:00:00.000Z")


@pytest.mark.parametrize(
    ("typed", "found"),
    [
        ("FIRMA.no", ["ola.nordmann@firma.no"]),  # a part, in any case, however old
        ("ola.nordmann@firma.no", ["ola.nordmann@firma.no"]),
        ("974 760 673", ["974760673"]),  # as an orgnr is often written
        ("974760673", ["974760673"]),
        (" 974 760 ", ["974760673"]),
        ("post@", ["post@blabar.no", "post@xn--blbr-roah.no", "post@annen.no"]),  # newest first
        ("æ", ["post@xn--blbr-roah.no"]),  # the letters the operator sees (post@blåbær.no)
        ("Post@BLÅBÆR.no", ["post@xn--blbr-roah.no"]),
        ("bla\u030abær", ["post@xn--blbr-roah.no"]),  # å as a and a combining ring
        ("xn--blbr", ["post@xn--blbr-roah.no"]),  # as stored, and as --json shows it
        ("kari@firma.no", []),
    ],
)
def test_a_search_finds_what_holds_the_text_as_stored_or_as_shown(
    db: Database, typed: str, found: list[str]
) -> None:
    search_sample(db)
    assert [e.value for e in matching(db, typed)] == found


def test_a_search_takes_percent_and_underscore_as_letters(db: Database) -> None:
    with db.transaction():
        for n, value in enumerate(["ola_n@firma.no", "olaxn@firma.no", "100%@firma.no"]):
            put(db, ADDRESS, value, "manual", f"2025-03-0{n + 1}T10:00:00.000Z")
    assert [e.value for e in matching(db, "a_n")] == ["ola_n@firma.no"]
    assert [e.value for e in matching(db, "%@")] == ["100%@firma.no"]
    assert matching(db, "\\") == []


def test_a_search_of_one_kind(db: Database) -> None:
    search_sample(db)
    assert [e.value for e in matching(db, "7", UNIT)] == ["974760673"]
    assert matching(db, "974", ADDRESS) == []
    assert [e.value for e in matching(db, "bær", ADDRESS)] == ["post@xn--blbr-roah.no"]


def test_an_empty_search_is_refused_in_one_line(db: Database) -> None:
    with pytest.raises(SuppressionError) as caught:
        matching(db, " \t ")
    assert caught.value.message == "søket er tomt: skriv en adresse, en del av en, eller et orgnr"


def test_a_search_is_recorded_as_an_export_without_what_was_searched_for(db: Database) -> None:
    search_sample(db)
    listing = list_for_operator(db, actor="berit", output="console", search="post@", limit=2)
    assert [e.value for e in listing.entries] == ["post@blabar.no", "post@xn--blbr-roah.no"]
    assert (listing.matched, listing.total) == (3, 5)
    (entry,) = audit.entries(db, action=Action.PERSONAL_DATA_EXPORT)
    assert entry.data == {
        "what": "suppressions",
        "kind": None,
        "format": "console",
        "search": True,
        "rows": 2,
    }
    assert "post@" not in str(entry.data)


def test_migration_0011_moves_an_old_manual_note_out_of_the_source(
    new_store_url: Callable[[], str],
) -> None:
    from varsel.db import connect, migrate_store

    old = connect(new_store_url(), migrate=False)
    try:
        migrate_store(old, target=10, use_fresh=False)
        with old.transaction():
            old.executemany(
                "INSERT INTO suppressions (kind, value, reason, source, created_at) "
                "VALUES (?, ?, ?, ?, '2026-11-01T10:00:00.000Z')",
                [
                    ("unit", "974760673", "manual", "ringte 3. mars"),  # a note, in source
                    ("address", "a@b.no", "manual", "console"),  # no note: where it came from
                    ("address", "c@d.no", "unsubscribed", "web:delivery:3"),
                ],
            )
        migrate_store(old, use_fresh=False)
        found = {(e.value, e.source, e.note) for e in entries(old)}
    finally:
        old.close()
    assert found == {
        ("974760673", "operator", "ringte 3. mars"),
        ("a@b.no", "console", None),
        ("c@d.no", "web:delivery:3", None),
    }


@pytest.mark.parametrize(
    ("source", "shown"),
    [
        ("cli", "kommandolinjen"),
        ("console", "konsollen"),
        ("operator", "operatør"),
        ("delivery:21", "retur fra e-posttjenesten (levering 21)"),
        ("web:delivery:3", "avmelding på nettsiden (levering 3)"),
        ("mail:delivery:22", "avmelding per e-post (levering 22)"),
        ("mail:delivery", "avmelding per e-post"),
        ("delivery", "retur fra e-posttjenesten"),
        ("web:delivery:x", "web:delivery:x"),  # not ours: as stored
        (None, ""),
    ],
)
def test_a_source_is_said_in_words(source: str | None, shown: str) -> None:
    assert source_text(source) == shown


def test_unlinking_deliveries_keeps_the_entries_without_naming_them(db: Database) -> None:
    with db.transaction():
        add(db, ADDRESS, "a@firma.no", SuppressionReason.HARD_BOUNCE, "delivery:7")
        add(db, ADDRESS, "b@firma.no", SuppressionReason.UNSUBSCRIBED, "web:delivery:8")
        add(db, UNIT, "974760673", SuppressionReason.UNSUBSCRIBED, "mail:delivery:8")
        add(db, ADDRESS, "c@firma.no", SuppressionReason.UNSUBSCRIBED, "web:delivery:77")
        add(db, ADDRESS, "d@firma.no", SuppressionReason.MANUAL, "cli")
        changed = unlink_deliveries(db, [7, 8])
    assert changed == 3
    assert dict(db.query("SELECT value, source FROM suppressions")) == {
        "a@firma.no": "delivery",
        "b@firma.no": "web:delivery",
        "974760673": "mail:delivery",
        "c@firma.no": "web:delivery:77",  # another delivery: kept
        "d@firma.no": "cli",
    }
    assert unlink_deliveries(db, []) == 0


def test_a_search_with_a_nul_finds_nothing(db: Database) -> None:
    search_sample(db)
    assert matching(db, "post\x00") == []


def test_the_newest_first_listing_is_read_from_an_index_not_sorted(db: Database) -> None:
    # The console's page and `suppress list` show the newest 500: with the index they read
    # 500 rows in order instead of sorting the whole list on every showing.
    sql = (
        "SELECT kind, value, reason, source, created_at, note FROM suppressions "
        "ORDER BY created_at DESC, kind, value LIMIT 500"
    )
    with db.transaction():
        if db.dialect == "sqlite":
            plan = " ".join(str(r[3]) for r in db.query(f"EXPLAIN QUERY PLAN {sql}"))
            assert plan == "SCAN suppressions USING INDEX suppressions_newest"
        else:
            # An empty table is scanned whatever indexes it has: ask whether the order can be
            # had without a sort at all.
            db.execute("SET LOCAL enable_sort = off")
            db.execute("SET LOCAL enable_seqscan = off")
            plan = " ".join(r[0] for r in db.query(f"EXPLAIN {sql}"))
            assert "Index Scan using suppressions_newest on suppressions" in plan
            assert "Sort" not in plan
