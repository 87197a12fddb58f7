"""`varsel campaign forget`: a finished campaign's contact data erased, its evidence kept."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from reportdata import (
    bounce,
    channel_delivery,
    check_code,
    download,
    email_deliveries,
    give_feedback,
    import_registry,
    new_campaign,
    send,
    set_state,
    settings_for,
    units_without_email,
)
from varsel import audit, verify
from varsel.cli import cli
from varsel.coverage import coverage, unit_outcomes
from varsel.db import Database
from varsel.erasure import is_stand_in, reply_codes
from varsel.evaluate import evaluate
from varsel.outbox import DeliveryState as S
from varsel.outbox import record_event
from varsel.retention import Forgotten, NotFinishedError, forget_campaign, forgettable
from varsel.suppression import SuppressionKind, SuppressionReason, add

ACTOR = "cli:test"


@dataclass(frozen=True)
class Finished:
    campaign_id: int
    other_id: int  # a second campaign to the same registry, with traces of its own
    addresses: tuple[str, ...]  # the e-mail addresses of the first campaign


def traces(db: Database, campaign_id: int) -> None:
    """Everything that names an address or holds free text, for one campaign."""
    sent = email_deliveries(db, campaign_id)
    bounce(db, sent[0], "5.1.1")
    bounce(db, sent[1], "4.2.2", "soft")
    with db.transaction():
        db.execute(
            "UPDATE deliveries SET state = 'failed', last_reply = ? WHERE id = ?",
            (f"550 5.1.1 <{sent[2].address}>: no such user", sent[2].id),
        )
        record_event(db, campaign_id, sent[2].id, "failed", {"recipient": sent[2].address})
    check_code(db, sent[3].code)
    download(db, campaign_id, sent[3].address)
    download(db, campaign_id, "en.annen@example.test")  # an address that got no e-mail
    give_feedback(db, campaign_id, code=sent[3].code, usefulness=4, comment=sent[3].address)
    give_feedback(db, campaign_id, usefulness=2, comment="Ring meg på 99 99 99 99")
    plain = units_without_email(db, campaign_id)
    channel_delivery(db, campaign_id, plain[0], "letter", S.POSTED)
    channel_delivery(db, campaign_id, plain[1], "letter", S.RETURNED)
    letter = channel_delivery(db, campaign_id, plain[2], "letter", S.FAILED)
    with db.transaction():
        db.execute(
            "UPDATE deliveries SET last_reply = 'incomplete_address' WHERE id = ?", (letter,)
        )
    channel_delivery(db, campaign_id, plain[3], "altinn", S.DELIVERED)
    with db.transaction():
        db.execute("UPDATE campaigns SET status = 'done' WHERE id = ?", (campaign_id,))


@pytest.fixture
def finished(db: Database, tmp_path: Path) -> Finished:
    settings = settings_for(tmp_path)
    import_registry(db, tmp_path)
    cid = new_campaign(db, settings, tmp_path, "Glemmes")
    other = new_campaign(db, settings, tmp_path, "Beholdes")
    send(db, settings, cid)
    send(db, settings, other)
    traces(db, cid)
    traces(db, other)
    addresses = tuple(d.address for d in email_deliveries(db, cid)) + tuple(
        d.address for state in ("bounced", "failed") for d in email_deliveries(db, cid, state)
    )
    return Finished(cid, other, addresses)


def dump(db: Database, campaign_id: int | None = None) -> dict[str, Any]:
    """The rows of every table but the audit log's (of one campaign, if given)."""
    where = {
        "campaigns": "id = ?",
        "deliveries": "campaign_id = ?",
        "events": "campaign_id = ?",
        "feedback": "campaign_id = ?",
        "document_requests": "campaign_id = ?",
        "recipients": "campaign_id = ?",
        "bounce_messages": "delivery_id IN (SELECT id FROM deliveries WHERE campaign_id = ?)",
    }
    tables = sorted(where) if campaign_id else [*sorted(where), "suppressions", "delivery_units"]
    return {
        t: sorted(
            json.dumps(list(r), default=str)
            for r in (
                db.query(f"SELECT * FROM {t} WHERE {where[t]}", (campaign_id,))
                if campaign_id
                else db.query(f"SELECT * FROM {t}")
            )
        )
        for t in tables
    }


def evaluation(db: Database, campaign_id: int) -> dict[str, Any]:
    """The evaluation report's numbers; the feedback's free text is what forget erases."""
    found = dataclasses.asdict(evaluate(db, campaign_id))
    del found["feedback"]["comments"], found["feedback"]["comments_total"], found["generated_at"]
    return found


def test_forget_erases_the_contact_data_of_that_campaign_only(
    db: Database, finished: Finished
) -> None:
    cid = finished.campaign_id
    other = dump(db, finished.other_id)
    suppressions = dump(db)["suppressions"]
    counted = forgettable(db, cid)

    found = forget_campaign(db, cid, actor=ACTOR)

    emails = int(
        db.scalar(
            "SELECT count(*) FROM deliveries WHERE campaign_id = ? AND channel = 'email'", (cid,)
        )
    )
    assert found == counted
    # Every relay reply counts: even a 250's text may quote the address.
    assert found == Forgotten(
        emails, found.replies, found.events, bounces=2, comments=2, document_requests=2
    )
    assert found.replies >= 2
    assert found.events >= 2
    mine = json.dumps(dump(db, cid))
    for address in finished.addresses:
        assert address not in mine
    assert "99 99 99 99" not in mine
    assert "no such user" not in mine
    for address, key, reply in db.query(
        "SELECT address, key, last_reply FROM deliveries WHERE campaign_id = ? "
        "AND channel = 'email'",
        (cid,),
    ):
        assert is_stand_in(address)
        assert key.startswith(f"{address}:")
        assert reply == reply_codes(reply)
    assert db.query(
        "SELECT last_reply FROM deliveries WHERE campaign_id = ? AND channel = 'email' "
        "AND state = 'failed'",
        (cid,),
    ) == [("550 5.1.1",)]
    assert db.query(
        "SELECT count(*) FROM events WHERE campaign_id = ? AND delivery_id IS NOT NULL "
        "AND detail IS NOT NULL",
        (cid,),
    ) == [(0,)]
    # Kept: the unit's number on letters and Altinn, a letter's reason, opt-outs, the other.
    assert (
        db.scalar(
            "SELECT count(*) FROM deliveries WHERE campaign_id = ? AND channel <> 'email' "
            "AND address = key AND length(address) = 9",
            (cid,),
        )
        == 4
    )
    assert (
        db.scalar(
            "SELECT last_reply FROM deliveries WHERE campaign_id = ? AND channel = 'letter' "
            "AND state = 'failed'",
            (cid,),
        )
        == "incomplete_address"
    )
    assert dump(db)["suppressions"] == suppressions
    assert dump(db, finished.other_id) == other
    assert db.scalar("SELECT forgotten_at FROM campaigns WHERE id = ?", (cid,)) is not None
    assert (
        db.scalar("SELECT forgotten_at FROM campaigns WHERE id = ?", (finished.other_id,)) is None
    )


def test_forget_keeps_the_suppressions_but_not_their_link_to_the_business(
    db: Database, finished: Finished
) -> None:
    # An address suppressed from a delivery named it (source delivery:ID), and the delivery
    # names the business: after forget the address is still honoured, the link is gone.
    mine = email_deliveries(db, finished.campaign_id)
    theirs = email_deliveries(db, finished.other_id)
    with db.transaction():
        add(
            db,
            SuppressionKind.ADDRESS,
            "x@a.no",
            SuppressionReason.HARD_BOUNCE,
            f"delivery:{mine[0].id}",
        )
        add(
            db,
            SuppressionKind.ADDRESS,
            "y@a.no",
            SuppressionReason.UNSUBSCRIBED,
            f"web:delivery:{mine[1].id}",
        )
        add(
            db,
            SuppressionKind.ADDRESS,
            "z@a.no",
            SuppressionReason.UNSUBSCRIBED,
            f"web:delivery:{theirs[0].id}",
        )

    forget_campaign(db, finished.campaign_id, actor=ACTOR)

    sources = dict(
        db.query(
            "SELECT value, source FROM suppressions WHERE value IN ('x@a.no', 'y@a.no', 'z@a.no')"
        )
    )
    assert sources == {
        "x@a.no": "delivery",
        "y@a.no": "web:delivery",
        "z@a.no": f"web:delivery:{theirs[0].id}",
    }


def test_forget_keeps_coverage_the_evaluation_and_the_unreached(
    db: Database, finished: Finished
) -> None:
    cid = finished.campaign_id

    def evidence() -> tuple[Any, ...]:
        return (
            coverage(db, cid).as_dict(),
            evaluation(db, cid),
            list(unit_outcomes(db, cid)),
            db.query(
                "SELECT id, channel, state, code, created_at, sent_at FROM deliveries "
                "WHERE campaign_id = ? ORDER BY id",
                (cid,),
            ),
        )

    before = evidence()
    forget_campaign(db, cid, actor=ACTOR)
    after = evidence()
    assert after == before
    # The request still matches the e-mail it came from; the refusal's reason is still read.
    assert after[1]["funnel"]["downloaded"] == 1
    assert [(b["key"], b["refused"]) for b in after[1]["bounces"] if b["refused"]] == [
        ("mailbox", 1)
    ]


def test_the_code_of_a_forgotten_delivery_is_still_genuine(
    db: Database, finished: Finished
) -> None:
    delivery = email_deliveries(db, finished.campaign_id)[3]
    before = verify.by_code(db, delivery.code)
    assert before is not None
    forget_campaign(db, finished.campaign_id, actor=ACTOR)
    after = verify.by_code(db, delivery.code)
    assert after is not None
    assert is_stand_in(after.address)
    assert dataclasses.replace(after, address=before.address) == before


def test_forgetting_again_changes_nothing_and_says_so(db: Database, finished: Finished) -> None:
    cid = finished.campaign_id
    forget_campaign(db, cid, actor=ACTOR)
    first = dump(db)
    assert forgettable(db, cid) == Forgotten(0, 0, 0, 0, 0, 0)
    assert forget_campaign(db, cid, actor=ACTOR) == Forgotten(0, 0, 0, 0, 0, 0)
    assert dump(db) == first


def test_forget_is_audited_with_the_counts(db: Database, finished: Finished) -> None:
    found = forget_campaign(db, finished.campaign_id, actor=ACTOR)
    (entry,) = audit.entries(db, action=audit.Action.CAMPAIGN_FORGET)
    assert (entry.actor, entry.object) == (ACTOR, f"campaign:{finished.campaign_id}")
    assert entry.data == found.as_dict()
    assert audit.verify(db).ok


def test_forget_is_refused_while_deliveries_are_not_final(db: Database, finished: Finished) -> None:
    cid = finished.campaign_id
    sent = email_deliveries(db, cid)
    set_state(db, sent[5].id, S.IN_DOUBT)
    set_state(db, sent[6].id, S.QUEUED)
    set_state(db, sent[7].id, S.QUEUED)
    before = dump(db)
    message = f"kampanje {cid} er ikke ferdig: 3 leveranser er ikke avsluttet (2 i kø, 1 usikre)"
    with pytest.raises(NotFinishedError) as preview:
        forgettable(db, cid)
    with pytest.raises(NotFinishedError) as forget:
        forget_campaign(db, cid, actor=ACTOR)
    assert str(preview.value) == str(forget.value) == message
    assert dump(db) == before
    assert audit.entries(db, action=audit.Action.CAMPAIGN_FORGET) == []


def test_forget_is_refused_for_a_campaign_that_may_go_on(db: Database, finished: Finished) -> None:
    cid = finished.campaign_id
    with db.transaction():
        db.execute("UPDATE campaigns SET status = 'paused' WHERE id = ?", (cid,))
    before = dump(db)
    with pytest.raises(NotFinishedError, match="er «pauset»: bare en kampanje som er «ferdig»"):
        forget_campaign(db, cid, actor=ACTOR)
    assert dump(db) == before


# -- the command line ---------------------------------------------------------------------


def run(db: Database, *args: str) -> Result:
    return CliRunner().invoke(cli, ["--db", db.url, "campaign", "forget", *args])


def test_cli_shows_what_would_go_and_changes_nothing_without_yes(
    db: Database, finished: Finished
) -> None:
    before = dump(db)
    result = run(db, str(finished.campaign_id))
    assert result.exit_code == 0, result.output
    assert "adresser som ba om dokumentet" in result.output
    assert result.output.rstrip().endswith(
        "Ingenting er slettet. Kjør igjen med --yes for å slette kontaktopplysningene; "
        "det kan ikke angres."
    )
    assert dump(db) == before


def test_cli_forgets_with_yes_and_says_so_the_second_time(db: Database, finished: Finished) -> None:
    cid = finished.campaign_id
    result = run(db, str(cid), "--yes")
    assert result.exit_code == 0, result.output
    assert f"Kampanje {cid}: kontaktopplysningene er slettet:" in result.output
    assert "       2  fritekstkommentarer i tilbakemeldinger" in result.output
    again = run(db, str(cid), "--yes")
    assert again.exit_code == 0, again.output
    assert again.output == (
        f"Kampanje {cid} har ingen kontaktopplysninger igjen å slette; ingenting er endret.\n"
    )


def test_cli_refuses_an_unfinished_campaign_in_one_line(db: Database, finished: Finished) -> None:
    cid = finished.campaign_id
    set_state(db, email_deliveries(db, cid)[5].id, S.DEFERRED)
    result = run(db, str(cid), "--yes")
    assert result.exit_code == 2
    assert result.output.strip().splitlines() == [
        f"varsel: kampanje {cid} er ikke ferdig: 1 leveranse er ikke avsluttet (1 utsatt)"
    ]


def test_forget_erases_the_print_houses_words_on_a_returned_letter_and_keeps_its_code(
    db: Database, finished: Finished
) -> None:
    cid = finished.campaign_id
    returned = db.scalar(
        "SELECT id FROM deliveries WHERE campaign_id = ? AND channel = 'letter' "
        "AND state = 'returned'",
        (cid,),
    )
    with db.transaction():
        db.execute(
            "UPDATE deliveries SET last_reply = 'Mottaker Kari Nordmann er flyttet' WHERE id = ?",
            (returned,),
        )
    assert forgettable(db, cid).letter_reasons == 1
    assert "       1  returbrev med fritekst fra trykkeriet" in forgettable(db, cid).lines()

    found = forget_campaign(db, cid, actor=ACTOR)
    assert found.letter_reasons == 1
    assert dict(
        db.query(
            "SELECT state, last_reply FROM deliveries WHERE campaign_id = ? AND channel = 'letter'",
            (cid,),
        )
    ) == {"posted": None, "returned": None, "failed": "incomplete_address"}
    assert forgettable(db, cid).total == 0  # forgetting again finds nothing left
