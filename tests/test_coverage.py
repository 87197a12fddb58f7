from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from reportdata import (
    Sent,
    bounce,
    channel_delivery,
    email_deliveries,
    import_registry,
    new_campaign,
    send,
    set_state,
    settings_for,
    units_without_email,
)
from varsel import industry
from varsel.campaign import CampaignStatus, get_campaign, set_status
from varsel.coverage import (
    PENDING_DETAILS,
    SIZE_BANDS,
    Outcome,
    Reason,
    coverage,
    label,
    unit_outcomes,
)
from varsel.db import Database
from varsel.errors import UserError
from varsel.outbox import DeliveryState as S
from varsel.segment import preview
from varsel.segment_criteria import FORMS
from varsel.suppression import SuppressionKind, SuppressionReason, add


def accepted_by_altinn(db: Database, delivery_id: int) -> None:
    """Altinn accepted the delivery's message: it has Altinn's id, as `altinn send` stores it."""
    with db.transaction():
        db.execute(
            "UPDATE deliveries SET message_id = ?, data_started_at = updated_at WHERE id = ?",
            (f"c0ffee-{delivery_id}", delivery_id),
        )


@dataclass(frozen=True)
class Scenario:
    campaign_id: int
    expected: dict[Outcome, int]
    reasons: dict[Reason, int]


def solo_deliveries(db: Database, campaign_id: int) -> list[Sent]:
    """Sent e-mails to one unit each, whose unit has no other e-mail."""
    sent = email_deliveries(db, campaign_id)
    per_unit: dict[str, int] = {}
    for d in sent:
        for u in d.units:
            per_unit[u] = per_unit.get(u, 0) + 1
    return [d for d in sent if len(d.units) == 1 and per_unit[d.units[0]] == 1]


def without_contacts(db: Database, campaign_id: int) -> list[str]:
    """Units with no e-mail delivery and nothing at all in the registry's e-mail field."""
    return [
        o
        for o in units_without_email(db, campaign_id)
        if not db.scalar("SELECT count(*) FROM contacts WHERE orgnr = ?", (o,))
    ]


@pytest.fixture
def scenario(db: Database, tmp_path: Path) -> Scenario:
    """The pilot in small: a campaign sent to an SMTP sink, then every kind of outcome."""
    settings = settings_for(tmp_path)
    import_registry(db, tmp_path)
    cid = new_campaign(db, settings, tmp_path)
    received = send(db, settings, cid)
    assert received == len(email_deliveries(db, cid))
    accepted_units = {u for d in email_deliveries(db, cid) for u in d.units}
    solo = solo_deliveries(db, cid)
    plain = without_contacts(db, cid)
    assert len(solo) >= 10
    assert len(plain) >= 15
    # E-mail that came back, some followed by a letter.
    for d in solo[:5]:
        bounce(db, d, "5.1.1")
    bounce(db, solo[5], "", "complaint")
    channel_delivery(db, cid, solo[0].units[0], "letter", S.PRODUCED)
    channel_delivery(db, cid, solo[1].units[0], "letter", S.POSTED)
    channel_delivery(db, cid, solo[2].units[0], "letter", S.RETURNED)
    # E-mail that did not get through for other reasons.
    set_state(db, solo[6].id, S.FAILED)
    set_state(db, solo[7].id, S.IN_DOUBT)
    set_state(db, solo[8].id, S.CANCELLED)
    # A soft bounce changes nothing: still accepted.
    bounce(db, solo[9], "4.2.2", "soft")
    # Units without e-mail: letters, Altinn, suppression, no address at all.
    for o in plain[0:3]:
        channel_delivery(db, cid, o, "letter", S.PRODUCED)
    for o in plain[3:6]:
        channel_delivery(db, cid, o, "letter", S.POSTED)
    channel_delivery(db, cid, plain[6], "letter", S.RETURNED)
    channel_delivery(db, cid, plain[7], "altinn", S.DELIVERED)
    channel_delivery(db, cid, plain[8], "altinn", S.DELIVERED)
    accepted_by_altinn(db, channel_delivery(db, cid, plain[9], "altinn", S.SUBMITTED))
    channel_delivery(db, cid, plain[10], "altinn", S.FAILED)
    with db.transaction():
        add(db, SuppressionKind.UNIT, plain[11], SuppressionReason.MANUAL, "test")
        db.execute(
            "UPDATE units SET post_lines = NULL, post_postcode = NULL, addr_lines = NULL, "
            "addr_postcode = NULL WHERE orgnr = ?",
            (plain[12],),
        )
    channel_delivery(db, cid, plain[13], "letter", S.FAILED)
    channel_delivery(db, cid, plain[14], "letter", S.FAILED)
    with db.transaction():
        for orgnr, why in ((plain[13], "incomplete_address"), (plain[14], "address_too_long")):
            db.execute(
                "UPDATE deliveries SET last_reply = ? WHERE channel = 'letter' AND address = ?",
                (why, orgnr),
            )
    units = int(db.scalar("SELECT count(*) FROM recipients WHERE campaign_id = ?", (cid,)))
    invalid = int(
        db.scalar(
            "SELECT count(*) FROM recipients r WHERE r.campaign_id = ? AND r.reach <> 'email' "
            "AND EXISTS (SELECT 1 FROM contacts c WHERE c.orgnr = r.orgnr)",
            (cid,),
        )
    )
    expected = {
        Outcome.ALTINN_DELIVERED: 2,
        Outcome.EMAIL_ACCEPTED: len(accepted_units) - 9,
        Outcome.LETTER_POSTED: 1 + 3,
        Outcome.LETTER_PRODUCED: 1 + 3,
        Outcome.PENDING: 2,  # one in doubt, one accepted by Altinn
        Outcome.LETTER_RETURNED: 1 + 1,
        Outcome.EMAIL_BOUNCED: 3,
        Outcome.SUPPRESSED: 1,
    }
    reasons = {
        Reason.EMAIL_FAILED: 1,
        Reason.EMAIL_DEAD: 0,
        Reason.LETTER_FAILED: 0,
        Reason.INCOMPLETE_ADDRESS: 1,
        Reason.ADDRESS_TOO_LONG: 1,
        Reason.NOT_IN_REGISTRY: 0,
        Reason.ALTINN_FAILED: 1,
        Reason.CANCELLED: 1,
        Reason.NOT_ENQUEUED: 0,
        Reason.EMAIL_INVALID: invalid,
        Reason.NO_ADDRESS: 1,
    }
    reasons[Reason.NO_EMAIL] = units - sum(expected.values()) - sum(reasons.values())
    expected[Outcome.UNREACHABLE] = sum(reasons.values())
    return Scenario(cid, expected, reasons)


def test_every_targeted_unit_has_exactly_one_outcome(db: Database, scenario: Scenario) -> None:
    result = coverage(db, scenario.campaign_id)
    assert dict(result.outcomes) == scenario.expected
    assert dict(result.unreachable) == scenario.reasons
    assert sum(result.outcomes.values()) == result.units


def test_totals_add_up_to_the_segment(db: Database, scenario: Scenario) -> None:
    criteria = get_campaign(db, scenario.campaign_id).spec.criteria
    result = coverage(db, scenario.campaign_id)
    assert result.units == preview(db, criteria).units
    assert result.reached + result.on_the_way + result.not_reached == result.units


def test_pending_says_what_it_waits_for(db: Database, scenario: Scenario) -> None:
    result = coverage(db, scenario.campaign_id)
    assert dict(result.pending) == {"in_doubt": 1, "submitted": 1}


def test_json_has_units_and_outcomes_that_add_up(db: Database, scenario: Scenario) -> None:
    data = coverage(db, scenario.campaign_id).as_dict()
    assert set(data["outcomes"]) == {o.value for o in Outcome}
    assert sum(data["outcomes"].values()) == data["units"]
    assert data["outcomes"]["email_bounced"] == 3
    assert data["unreachable"]["no_address"] == 1


@pytest.mark.parametrize("dimension", ["by_municipality", "by_size", "by_section", "by_form"])
def test_every_roll_up_adds_up_to_the_outcomes(
    db: Database, scenario: Scenario, dimension: str
) -> None:
    result = coverage(db, scenario.campaign_id)
    groups = getattr(result, dimension)
    assert sum(g.units for g in groups) == result.units
    for outcome in Outcome:
        assert sum(g.outcomes[outcome] for g in groups) == result.outcomes[outcome]


def test_roll_ups_are_named(db: Database, scenario: Scenario) -> None:
    result = coverage(db, scenario.campaign_id)
    assert [(g.key, g.name) for g in result.by_municipality] == [("0301", "Oslo")]
    bands = [g.key for g in result.by_size]
    assert bands == [k for k, _ in SIZE_BANDS if k in bands]
    assert all(g.name == FORMS[g.key] for g in result.by_form)
    sections = dict(industry.sections())
    assert all(g.name == sections[g.key] for g in result.by_section if g.key != "?")


def test_unit_outcomes_agree_with_the_counts(db: Database, scenario: Scenario) -> None:
    rows = list(unit_outcomes(db, scenario.campaign_id))
    counts = {o: sum(1 for r in rows if r.outcome is o) for o in Outcome}
    assert counts == scenario.expected
    assert len({r.orgnr for r in rows}) == len(rows)


def test_unknown_campaign_is_a_user_error(db: Database) -> None:
    with pytest.raises(UserError, match=r"^kampanje 99 finnes ikke$"):
        coverage(db, 99)


# -- precedence: one unit, several deliveries ---------------------------------------------


@pytest.fixture
def one_unit(db: Database, tmp_path: Path) -> tuple[int, str]:
    """A campaign (not sent) and one of its units without e-mail, stripped of deliveries."""
    settings = settings_for(tmp_path)
    import_registry(db, tmp_path, units=60, seed=3)
    cid = new_campaign(db, settings, tmp_path)
    return cid, without_contacts(db, cid)[0]


PRECEDENCE = [
    ([("email", S.SENT), ("letter", S.PRODUCED)], Outcome.EMAIL_ACCEPTED, None),
    ([("email", S.SENT), ("altinn", S.DELIVERED)], Outcome.ALTINN_DELIVERED, None),
    ([("email", S.BOUNCED), ("letter", S.POSTED)], Outcome.LETTER_POSTED, None),
    ([("email", S.BOUNCED), ("letter", S.RETURNED)], Outcome.LETTER_RETURNED, None),
    ([("email", S.BOUNCED), ("email", S.SENT)], Outcome.EMAIL_ACCEPTED, None),
    ([("email", S.BOUNCED), ("email", S.IN_DOUBT)], Outcome.PENDING, "in_doubt"),
    ([("letter", S.PRODUCED), ("email", S.DEFERRED)], Outcome.LETTER_PRODUCED, None),
    ([("email", S.FAILED), ("email", S.SUPPRESSED)], Outcome.SUPPRESSED, None),
    ([("email", S.FAILED), ("letter", S.FAILED)], Outcome.UNREACHABLE, Reason.EMAIL_FAILED),
    ([("email", S.CANCELLED)], Outcome.UNREACHABLE, Reason.CANCELLED),
    ([("altinn", S.SUBMITTED), ("altinn", S.FAILED)], Outcome.PENDING, "altinn_planned"),
]


@pytest.mark.parametrize(("deliveries", "outcome", "detail"), PRECEDENCE)
def test_best_outcome_across_channels_wins(
    db: Database,
    one_unit: tuple[int, str],
    deliveries: list[tuple[str, S]],
    outcome: Outcome,
    detail: str | None,
) -> None:
    cid, orgnr = one_unit
    for i, (channel, state) in enumerate(deliveries):
        channel_delivery(db, cid, orgnr, channel, state, key=f"{orgnr}-{i}")
    found = [u for u in unit_outcomes(db, cid) if u.orgnr == orgnr]
    assert [(u.outcome, u.detail) for u in found] == [(outcome, detail)]


def test_unit_suppression_beats_a_failed_delivery(db: Database, one_unit: tuple[int, str]) -> None:
    cid, orgnr = one_unit
    channel_delivery(db, cid, orgnr, "altinn", S.FAILED)
    with db.transaction():
        add(db, SuppressionKind.UNIT, orgnr, SuppressionReason.UNSUBSCRIBED, "test")
    found = [u for u in unit_outcomes(db, cid) if u.orgnr == orgnr]
    assert [(u.outcome, u.detail) for u in found] == [(Outcome.SUPPRESSED, None)]


def suppressed_email(db: Database, cid: int, orgnr: str, reason: SuppressionReason) -> None:
    """An e-mail to the unit held back because its address is suppressed for this reason."""
    delivery_id = channel_delivery(db, cid, orgnr, "email", S.SUPPRESSED, key="post@firma.no")
    with db.transaction():
        db.execute("UPDATE deliveries SET address = 'post@firma.no' WHERE id = ?", (delivery_id,))
        add(db, SuppressionKind.ADDRESS, "post@firma.no", reason, f"delivery:{delivery_id}")


def test_an_address_that_hard_bounced_before_leaves_the_unit_unreachable_not_suppressed(
    db: Database, one_unit: tuple[int, str]
) -> None:
    # Nobody asked not to be contacted: the address is dead, and the unit needs a letter.
    cid, orgnr = one_unit
    suppressed_email(db, cid, orgnr, SuppressionReason.HARD_BOUNCE)
    channel_delivery(db, cid, orgnr, "letter", S.FAILED)  # no letter could be made either
    found = [(u.outcome, u.detail) for u in unit_outcomes(db, cid) if u.orgnr == orgnr]
    assert found == [(Outcome.UNREACHABLE, Reason.EMAIL_DEAD)]
    assert coverage(db, cid).unreachable[Reason.EMAIL_DEAD] == 1
    assert label(Reason.EMAIL_DEAD) == "e-postadressen virker ikke"


@pytest.mark.parametrize(
    "reason",
    [SuppressionReason.UNSUBSCRIBED, SuppressionReason.COMPLAINT, SuppressionReason.MANUAL],
)
def test_an_address_someone_asked_to_stop_leaves_the_unit_suppressed(
    db: Database, one_unit: tuple[int, str], reason: SuppressionReason
) -> None:
    cid, orgnr = one_unit
    suppressed_email(db, cid, orgnr, reason)
    found = [(u.outcome, u.detail) for u in unit_outcomes(db, cid) if u.orgnr == orgnr]
    assert found == [(Outcome.SUPPRESSED, None)]


def test_a_unit_that_asked_not_to_be_contacted_stays_suppressed_behind_a_dead_address(
    db: Database, one_unit: tuple[int, str]
) -> None:
    cid, orgnr = one_unit
    suppressed_email(db, cid, orgnr, SuppressionReason.HARD_BOUNCE)
    with db.transaction():
        add(db, SuppressionKind.UNIT, orgnr, SuppressionReason.UNSUBSCRIBED, "test")
    found = [(u.outcome, u.detail) for u in unit_outcomes(db, cid) if u.orgnr == orgnr]
    assert found == [(Outcome.SUPPRESSED, None)]


def test_a_unit_without_deliveries_but_with_a_postal_address_has_no_email(
    db: Database, one_unit: tuple[int, str]
) -> None:
    cid, orgnr = one_unit
    found = [u for u in unit_outcomes(db, cid) if u.orgnr == orgnr]
    assert [(u.outcome, u.detail) for u in found] == [(Outcome.UNREACHABLE, Reason.NO_EMAIL)]
    assert found[0].address_kind in ("post", "business")
    assert found[0].postcode


def test_pending_details_cover_every_outbox_state() -> None:
    waiting = {S.QUEUED, S.DEFERRED, S.CLAIMED, S.IN_DOUBT, S.SUBMITTED}
    assert {s.value for s in waiting} <= set(PENDING_DETAILS)


# -- Altinn: planned, sent without an answer, accepted ------------------------------------


def altinn_outcome(db: Database, cid: int, orgnr: str) -> tuple[Outcome, str | None]:
    [found] = [(u.outcome, u.detail) for u in unit_outcomes(db, cid) if u.orgnr == orgnr]
    return found


def test_an_altinn_message_only_planned_does_not_say_it_was_sent(
    db: Database, one_unit: tuple[int, str]
) -> None:
    # `altinn send --limit` plans every unit's message and sends some: this one is waiting.
    cid, orgnr = one_unit
    channel_delivery(db, cid, orgnr, "altinn", S.SUBMITTED)
    assert altinn_outcome(db, cid, orgnr) == (Outcome.PENDING, "altinn_planned")
    assert coverage(db, cid).pending["altinn_planned"] == 1
    assert label("altinn_planned") == "planlagt i Altinn, ikke tatt imot av Altinn ennå"
    assert "sendt" not in label("altinn_planned")


def test_an_altinn_message_altinn_accepted_waits_to_be_published(
    db: Database, one_unit: tuple[int, str]
) -> None:
    cid, orgnr = one_unit
    accepted_by_altinn(db, channel_delivery(db, cid, orgnr, "altinn", S.SUBMITTED))
    assert altinn_outcome(db, cid, orgnr) == (Outcome.PENDING, "submitted")
    assert label("submitted") == "tatt imot av Altinn, ikke publisert ennå"


def test_an_altinn_message_never_sent_in_a_cancelled_campaign_never_will_be(
    db: Database, one_unit: tuple[int, str]
) -> None:
    # `altinn send` refuses a cancelled campaign: waiting would be waiting for ever.
    cid, orgnr = one_unit
    channel_delivery(db, cid, orgnr, "altinn", S.SUBMITTED)
    set_status(db, cid, CampaignStatus.CANCELLED)
    assert altinn_outcome(db, cid, orgnr) == (Outcome.UNREACHABLE, Reason.CANCELLED)


def test_an_altinn_message_sent_without_an_answer_before_a_cancel_may_be_in_altinn(
    db: Database, one_unit: tuple[int, str]
) -> None:
    cid, orgnr = one_unit
    delivery_id = channel_delivery(db, cid, orgnr, "altinn", S.SUBMITTED)
    with db.transaction():  # the request went out, as `altinn send` stamps it; no answer came
        db.execute(
            "UPDATE deliveries SET data_started_at = updated_at WHERE id = ?", (delivery_id,)
        )
    set_status(db, cid, CampaignStatus.CANCELLED)
    assert altinn_outcome(db, cid, orgnr) == (Outcome.PENDING, "altinn_planned")


@pytest.mark.parametrize(
    ("state", "accepted", "outcome", "detail"),
    [
        (S.SUBMITTED, False, Outcome.PENDING, "altinn_planned"),
        (S.SUBMITTED, True, Outcome.PENDING, "submitted"),
        (S.DELIVERED, True, Outcome.ALTINN_DELIVERED, None),
        (S.FAILED, False, Outcome.UNREACHABLE, Reason.ALTINN_FAILED),
        (S.FAILED, True, Outcome.UNREACHABLE, Reason.ALTINN_FAILED),
        (S.SUPPRESSED, False, Outcome.SUPPRESSED, None),
    ],
)
def test_every_state_an_altinn_message_can_be_in_has_its_outcome(
    db: Database,
    one_unit: tuple[int, str],
    state: S,
    accepted: bool,
    outcome: Outcome,
    detail: str | None,
) -> None:
    cid, orgnr = one_unit
    delivery_id = channel_delivery(db, cid, orgnr, "altinn", state)
    if accepted:
        accepted_by_altinn(db, delivery_id)
    assert altinn_outcome(db, cid, orgnr) == (outcome, detail)
