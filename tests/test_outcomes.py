"""What the sender writes about one delivery: its mark, and what a reply makes of it."""

from __future__ import annotations

import datetime as dt

from varsel import outcomes
from varsel.channel.smtp_replies import SendOutcome, SmtpReply
from varsel.clock import utcnow, utcnow_iso
from varsel.outbox import Delivery

NOW = "2026-03-02T09:00:00.000Z"
MESSAGE_ID = "<7.a1b2@nsr-org.no>"
RETRIES = {"deadline_hours": 48.0, "retry_base_seconds": 60.0, "retry_max_seconds": 3600.0}


def delivery(attempts: int = 0, created_at: str | None = None) -> Delivery:
    created = created_at or utcnow_iso()
    return Delivery(7, 3, "post@bakeri.no", "nb", "ABCD", "tok", attempts, created, ("912345678",))


def after(outcome: SendOutcome, d: Delivery | None = None) -> tuple[object, ...]:
    _, params = outcomes.after_send(d or delivery(), MESSAGE_ID, outcome, NOW, **RETRIES)
    return params


def test_an_accepted_message_is_sent_with_its_message_id_and_the_reply() -> None:
    reply = SmtpReply(250, "2.0.0", "Ok: queued as 4Xyz")
    assert after(SendOutcome(reply, True, None)) == (
        "sent",
        NOW,
        MESSAGE_ID,
        "250 2.0.0 Ok: queued as 4Xyz",
        NOW,
        7,
    )


def test_a_reply_lost_after_the_whole_message_went_out_is_in_doubt() -> None:
    outcome = SendOutcome(None, True, "forbindelsen ble brutt")
    assert after(outcome) == ("in_doubt", "forbindelsen ble brutt", NOW, 7)


def test_a_permanent_refusal_fails_at_once_with_the_servers_reason() -> None:
    outcome = SendOutcome(SmtpReply(550, "5.1.1", "No such user"), False, None)
    assert after(outcome, delivery(attempts=2)) == ("failed", "550 5.1.1 No such user", 3, NOW, 7)


def test_a_temporary_refusal_is_deferred_twice_as_long_each_time_with_jitter() -> None:
    outcome = SendOutcome(SmtpReply(451, "4.3.0", "Try again later"), False, None)
    before = utcnow()
    state, reply, attempts, due, now, delivery_id = after(outcome, delivery(attempts=2))
    later = utcnow()
    assert (state, reply, attempts, now, delivery_id) == (
        "deferred",
        "451 4.3.0 Try again later",
        3,
        NOW,
        7,
    )
    # The third attempt: 60 s * 2 ** 2, give or take a fifth.
    assert isinstance(due, str)
    due_at = dt.datetime.fromisoformat(due.replace("Z", "+00:00"))
    assert before + dt.timedelta(seconds=192 - 0.001) <= due_at <= later + dt.timedelta(seconds=288)


def test_a_connection_lost_before_the_dot_is_deferred_with_its_error() -> None:
    params = after(SendOutcome(None, False, "tidsavbrudd"))
    assert (params[0], params[1], params[2]) == ("deferred", "tidsavbrudd", 1)


def test_past_the_deadline_a_temporary_refusal_fails_and_says_how_often_it_was_tried() -> None:
    created = (utcnow() - dt.timedelta(hours=49)).isoformat()
    outcome = SendOutcome(SmtpReply(421, "4.7.0", "Too busy"), False, None)
    assert after(outcome, delivery(attempts=4, created_at=created)) == (
        "failed",
        "ga opp etter 5 forsøk: 421 4.7.0 Too busy",
        5,
        NOW,
        7,
    )


def test_the_other_statements_name_the_delivery_last() -> None:
    assert outcomes.mark(7, NOW)[1] == (NOW, NOW, 7)
    assert outcomes.failed(7, "x" * 600, NOW)[1] == ("failed", "x" * 500, NOW, 7)
    assert outcomes.suppressed(7, NOW)[1] == ("suppressed", NOW, 7)
    assert outcomes.given_back(7, NOW)[1] == ("queued", NOW, "claimed", 7)


def test_a_refusal_taken_back_queues_a_failed_delivery_and_uncounts_its_attempt() -> None:
    sql, params = outcomes.taken_back(7, NOW)
    assert "attempts = attempts - 1" in sql
    assert params == ("queued", NOW, "failed", 7)
