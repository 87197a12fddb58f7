"""The audit log: hash chain, tamper detection, concurrent appends, filters, and the hooks."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from helpers import campaign_toml
from varsel import audit, outbox
from varsel.audit import Action, AuditError, entry_hash
from varsel.campaign import CampaignStatus, create_campaign, get_campaign, set_status, update_spec
from varsel.config import Settings
from varsel.db import Database, connect
from varsel.feed import apply_feed
from varsel.lint import lint_campaign
from varsel.registry import import_dump

CAMPAIGN = campaign_toml()


def append(db: Database, n: int, actor: str = "kari") -> None:
    for i in range(n):
        with db.transaction():
            audit.record(db, actor, Action.CAMPAIGN_LINT, f"campaign:{i + 1}", {"ok": True, "n": i})


def test_record_needs_the_use_case_transaction(db: Database) -> None:
    with pytest.raises(RuntimeError, match="inside the use case's transaction"):
        audit.record(db, "kari", Action.SIGN_IN)
    assert db.scalar("SELECT count(*) FROM audit_log") == 0


def test_entries_are_chained_by_hash(db: Database) -> None:
    append(db, 3)
    first, second, third = audit.entries(db)
    assert [first.seq, second.seq, third.seq] == [1, 2, 3]
    assert first.prev_hash == "0" * 64
    assert second.prev_hash == first.hash
    assert third.prev_hash == second.hash
    assert second.detail == '{"n":1,"ok":true}'
    assert second.hash == entry_hash(
        2, second.at, "kari", "campaign_lint", "campaign:2", '{"n":1,"ok":true}', first.hash
    )
    assert db.query_one("SELECT seq, hash FROM audit_head") == (3, third.hash)


def test_rolled_back_use_case_leaves_no_entry(db: Database) -> None:
    append(db, 1)
    with pytest.raises(ZeroDivisionError), db.transaction():
        audit.record(db, "kari", Action.CAMPAIGN_EDIT, "campaign:1")
        _ = 1 / 0
    append(db, 1)
    assert [e.seq for e in audit.entries(db)] == [1, 2]
    assert audit.verify(db).ok


def test_an_intact_log_verifies(db: Database) -> None:
    append(db, 3)
    result = audit.verify(db)
    head = audit.entries(db)[-1].hash
    assert result.ok
    assert result.summary() == (
        f"Revisjonsloggen er hel: 3 oppføringer, siste er nr. 3 med hash {head}."
    )


def test_an_empty_log_verifies(db: Database) -> None:
    assert audit.verify(db).ok
    assert audit.verify(db).entries == 0


def test_an_edited_entry_is_found(db: Database) -> None:
    append(db, 4)
    db.execute("UPDATE audit_log SET actor = 'berit' WHERE seq = 2")
    result = audit.verify(db)
    assert (result.broken_seq, result.reason) == (2, "innholdet er endret etter at det ble skrevet")
    assert result.summary() == (
        "Revisjonsloggen er brutt ved oppføring 2: innholdet er endret etter at det ble skrevet."
    )


def test_an_edited_detail_is_found(db: Database) -> None:
    append(db, 3)
    db.execute('UPDATE audit_log SET detail = \'{"n":1,"ok":false}\' WHERE seq = 2')
    assert audit.verify(db).broken_seq == 2


def test_an_edited_entry_with_its_hash_recomputed_breaks_the_next_link(db: Database) -> None:
    append(db, 3)
    e = audit.entries(db)[1]
    forged = entry_hash(e.seq, e.at, "berit", e.action, e.object, e.detail, e.prev_hash)
    db.execute("UPDATE audit_log SET actor = 'berit', hash = ? WHERE seq = 2", (forged,))
    result = audit.verify(db)
    assert (result.broken_seq, result.reason) == (
        3,
        "peker ikke på oppføring 2 (flyttet, satt inn eller forrige endret)",
    )


def test_a_deleted_entry_is_found(db: Database) -> None:
    append(db, 4)
    db.execute("DELETE FROM audit_log WHERE seq = 2")
    result = audit.verify(db)
    assert (result.broken_seq, result.reason) == (2, "den mangler (slettet)")


def test_deleted_entries_at_the_end_are_found(db: Database) -> None:
    append(db, 5)
    db.execute("DELETE FROM audit_log WHERE seq >= 4")
    result = audit.verify(db)
    assert (result.broken_seq, result.reason) == (
        4,
        "loggen slutter ved nr. 3, men hodet sier 5: de siste oppføringene er slettet",
    )


def test_reordered_entries_are_found(db: Database) -> None:
    append(db, 4)
    # Swap what entries 2 and 3 say, keeping their numbers.
    rows = {
        r[0]: r[1:]
        for r in db.query(
            "SELECT seq, at, actor, action, object, detail, prev_hash, hash FROM audit_log"
        )
    }
    for seq, other in ((2, 3), (3, 2)):
        db.execute(
            "UPDATE audit_log SET at = ?, actor = ?, action = ?, object = ?, detail = ?, "
            "prev_hash = ?, hash = ? WHERE seq = ?",
            (*rows[other], seq),
        )
    result = audit.verify(db)
    assert result.broken_seq == 2
    assert result.reason == "peker ikke på oppføring 1 (flyttet, satt inn eller forrige endret)"


def test_an_entry_added_after_the_head_is_found(db: Database) -> None:
    append(db, 3)
    last = audit.entries(db)[-1]
    at = last.at
    forged = entry_hash(4, at, "berit", "campaign_approve", "campaign:1", "{}", last.hash)
    db.execute(
        "INSERT INTO audit_log (seq, at, actor, action, object, detail, prev_hash, hash) "
        "VALUES (4, ?, 'berit', 'campaign_approve', 'campaign:1', '{}', ?, ?)",
        (at, last.hash, forged),
    )
    result = audit.verify(db)
    assert (result.broken_seq, result.reason) == (
        4,
        "hodet sier nr. 3, men loggen slutter ved nr. 4 med en annen hash",
    )


def test_concurrent_appends_keep_one_chain(db_url: str, db: Database) -> None:
    def work(actor: str) -> None:
        own = connect(db_url)
        try:
            append(own, 25, actor)
        finally:
            own.close()

    threads = [threading.Thread(target=work, args=(f"w{i}",)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert [e.seq for e in audit.entries(db)] == list(range(1, 101))
    assert audit.verify(db).ok


def test_filters(db: Database) -> None:
    append(db, 3, "kari")
    with db.transaction():
        audit.record(db, "berit", Action.CAMPAIGN_APPROVE, "campaign:2", {"approval": 1})
    assert [e.seq for e in audit.entries(db, actor="kari")] == [1, 2, 3]
    assert [e.seq for e in audit.entries(db, action=Action.CAMPAIGN_APPROVE)] == [4]
    assert [e.seq for e in audit.entries(db, object="campaign:2")] == [2, 4]
    assert [e.seq for e in audit.entries(db, limit=2)] == [3, 4]
    assert audit.entries(db, since="2999-01-01") == []
    assert len(audit.entries(db, since="2000-01-01T00:00Z")) == 4


def test_bad_since(db: Database) -> None:
    with pytest.raises(AuditError) as e:
        audit.entries(db, since="i går")
    assert e.value.message == (
        "--since «i går»: skriv en dato (2025-03-01) eller et tidspunkt (2025-03-01T12:00Z)"
    )
    # A Norwegian date is quoted with «» as every other message quotes what was typed.
    with pytest.raises(AuditError) as e:
        audit.entries(db, since="15.12.2025")
    assert e.value.message.startswith("--since «15.12.2025»: skriv en dato (2025-03-01)")


# -- the hooks in the use cases ----------------------------------------------------------------


def test_registry_import_and_update_are_recorded(db: Database, brreg: Path) -> None:
    # Dated before the page's entries: a guessed date (the file's time) would refuse the page.
    import_dump(db, brreg / "enheter-sample.json", dump_date="2026-03-01", actor="cli:ola")
    apply_feed(db, brreg / "oppdateringer-sample.json", actor="cli:ola")
    first, second = audit.entries(db)
    assert (first.actor, first.action, first.object) == ("cli:ola", "registry_import", "snapshot:1")
    assert first.data["file"] == "enheter-sample.json"
    assert first.data["kind"] == "enheter"
    assert first.data["records"] == first.data["new"] > 0
    assert (second.action, second.object) == ("registry_update", "snapshot:2")
    assert second.data["file"] == "oppdateringer-sample.json"
    assert audit.verify(db).ok


def test_an_import_already_done_records_nothing(db: Database, brreg: Path) -> None:
    import_dump(db, brreg / "enheter-sample.json")
    import_dump(db, brreg / "enheter-sample.json")
    assert [e.actor for e in audit.entries(db)] == ["system"]


def test_campaign_lifecycle_is_recorded(db: Database, brreg: Path, tmp_path: Path) -> None:
    settings = Settings.load(environ={}, dkim_key_dir=str(tmp_path / "keys"))
    import_dump(db, brreg / "enheter-sample.json")
    path = tmp_path / "c.toml"
    path.write_text(CAMPAIGN, "utf-8")
    cid = create_campaign(db, settings, path, created_by="kari").campaign.id
    lint_campaign(db, settings, cid, actor="kari")
    spec = get_campaign(db, cid).spec
    update_spec(
        db, cid, spec.__class__(**{**spec.__dict__, "document_title": "Nytt"}), actor="kari"
    )
    set_status(db, cid, CampaignStatus.PAUSED, actor="ola")
    set_status(db, cid, CampaignStatus.READY, actor="ola")
    set_status(db, cid, CampaignStatus.CANCELLED, actor="ola")
    got = [(e.actor, e.action) for e in audit.entries(db) if e.object == f"campaign:{cid}"]
    assert got == [
        ("kari", "campaign_create"),
        ("kari", "campaign_lint"),
        ("kari", "campaign_edit"),
        ("ola", "campaign_pause"),
        ("ola", "campaign_resume"),
        ("ola", "campaign_cancel"),
    ]
    edit = audit.entries(db, action=Action.CAMPAIGN_EDIT)[0]
    assert edit.data == {"changed": ["document_title"]}
    create = audit.entries(db, action=Action.CAMPAIGN_CREATE)[0]
    assert create.data["name"] == "Test"
    assert create.data["snapshot"] == 1
    assert audit.verify(db).ok


def test_resending_in_doubt_deliveries_is_recorded(
    db: Database, brreg: Path, tmp_path: Path
) -> None:
    settings = Settings.load(environ={}, dkim_key_dir=str(tmp_path / "keys"))
    import_dump(db, brreg / "enheter-sample.json")
    path = tmp_path / "c.toml"
    path.write_text(CAMPAIGN, "utf-8")
    cid = create_campaign(db, settings, path, created_by="kari").campaign.id
    # What a sender that died after the final dot of DATA leaves behind.
    db.execute(
        "UPDATE deliveries SET state = 'in_doubt' WHERE id = (SELECT min(id) FROM deliveries)"
    )
    assert outbox.resend_in_doubt(db, cid, actor="cli:ola") == 1
    (entry,) = audit.entries(db, action=Action.CAMPAIGN_RESEND_IN_DOUBT)
    assert (entry.actor, entry.object, entry.data) == ("cli:ola", f"campaign:{cid}", {"count": 1})


def test_personal_data_export_is_recorded_by_the_exporting_use_case(db: Database) -> None:
    # What an export does (report.py and the console call it inside their own transaction).
    with db.transaction():
        audit.record(
            db,
            "kari",
            Action.PERSONAL_DATA_EXPORT,
            "campaign:7",
            {"what": "unreached ENK", "rows": 412, "format": "xlsx"},
        )
    (entry,) = audit.entries(db, action=Action.PERSONAL_DATA_EXPORT)
    assert entry.data == {"format": "xlsx", "rows": 412, "what": "unreached ENK"}
