"""What the sender writes about one delivery: the mark before its final dot, and its outcome.

Each function returns one statement, `(sql, parameters)` with the delivery's id last, for the
sender's next group commit (outbox_commits). What a reply means (sent, in doubt, failed, or
deferred with back-off until the campaign's deadline) is decided here, as a value.
"""

from __future__ import annotations

import datetime as dt
import random
from typing import Any

from varsel.channel.smtp_replies import ReplyKind, SendOutcome
from varsel.clock import utcnow
from varsel.outbox import Delivery, DeliveryState

Write = tuple[str, tuple[Any, ...]]

# Statements that change one delivery each, with its id as the last parameter.
_MARK_SQL = "UPDATE deliveries SET data_started_at = ?, updated_at = ? WHERE id = ?"
_SENT_SQL = (
    "UPDATE deliveries SET state = ?, sent_at = ?, message_id = ?, last_reply = ?, "
    "attempts = attempts + 1, claimed_by = NULL, updated_at = ? WHERE id = ?"
)
_DOUBT_OR_FAILED_SQL = (
    "UPDATE deliveries SET state = ?, last_reply = ?, attempts = attempts + 1, "
    "claimed_by = NULL, updated_at = ? WHERE id = ?"
)
_GIVE_UP_SQL = (
    "UPDATE deliveries SET state = ?, last_reply = ?, attempts = ?, "
    "data_started_at = NULL, claimed_by = NULL, updated_at = ? WHERE id = ?"
)
_DEFER_SQL = (
    "UPDATE deliveries SET state = ?, last_reply = ?, attempts = ?, next_attempt_at = ?, "
    "data_started_at = NULL, claimed_by = NULL, updated_at = ? WHERE id = ?"
)
_SUPPRESS_SQL = "UPDATE deliveries SET state = ?, claimed_by = NULL, updated_at = ? WHERE id = ?"
_TAKE_BACK_SQL = (
    "UPDATE deliveries SET state = ?, attempts = attempts - 1, claimed_by = NULL, updated_at = ? "
    "WHERE state = ? AND id = ?"
)
_HOLD_BACK_SQL = (
    "UPDATE deliveries SET state = ?, next_attempt_at = ?, last_reply = ?, claimed_by = NULL, "
    "updated_at = ? WHERE state = ? AND claimed_by = ? AND id = ?"
)
_UNMARK_SQL = (
    "UPDATE deliveries SET state = ?, data_started_at = NULL, claimed_by = NULL, updated_at = ? "
    "WHERE state = ? AND claimed_by = ? AND id = ?"
)
_GIVE_BACK_SQL = (
    "UPDATE deliveries SET state = ?, claimed_by = NULL, updated_at = ? WHERE state = ? AND id = ?"
)


def mark(delivery_id: int, now: str) -> Write:
    """The mark that the final dot may go out (`data_started_at`)."""
    return _MARK_SQL, (now, now, delivery_id)


def failed(delivery_id: int, reason: str, now: str) -> Write:
    """Failed with nothing sent: the address or message cannot be sent over SMTP."""
    return _DOUBT_OR_FAILED_SQL, (DeliveryState.FAILED.value, reason[:500], now, delivery_id)


def suppressed(delivery_id: int, now: str) -> Write:
    """Suppressed when claimed: no message is built."""
    return _SUPPRESS_SQL, (DeliveryState.SUPPRESSED.value, now, delivery_id)


def given_back(delivery_id: int, now: str) -> Write:
    """Back to the queue, if it is still claimed: nothing of it went out."""
    queued, claimed = DeliveryState.QUEUED.value, DeliveryState.CLAIMED.value
    return _GIVE_BACK_SQL, (queued, now, claimed, delivery_id)


def held_back(delivery_id: int, until: str, reply: str, worker: str, now: str) -> Write:
    """Deferred until `until`, no attempt counted, if this sender still holds it: its domain
    was throttled by the relay (`reply`), and nothing of it went out."""
    deferred, claimed = DeliveryState.DEFERRED.value, DeliveryState.CLAIMED.value
    return _HOLD_BACK_SQL, (deferred, until, reply[:500], now, claimed, worker, delivery_id)


def unmarked(delivery_id: int, worker: str, now: str) -> Write:
    """Back to the queue with its mark undone, if this sender still holds it: the run stopped
    before its final dot was written (the connection dropped instead), so it was never sent."""
    queued, claimed = DeliveryState.QUEUED.value, DeliveryState.CLAIMED.value
    return _UNMARK_SQL, (queued, now, claimed, worker, delivery_id)


def taken_back(delivery_id: int, now: str) -> Write:
    """A refusal that turned out to be the relay's, not the recipient's: failed → queued, the
    attempt not counted (the reply stays in last_reply)."""
    queued, failed = DeliveryState.QUEUED.value, DeliveryState.FAILED.value
    return _TAKE_BACK_SQL, (queued, now, failed, delivery_id)


def after_send(
    d: Delivery,
    message_id: str | None,
    outcome: SendOutcome,
    now: str,
    *,
    deadline_hours: float,
    retry_base_seconds: float,
    retry_max_seconds: float,
) -> Write:
    """What one SMTP transaction's outcome makes of its delivery."""
    reply = outcome.reply
    reply_text = (str(reply) if reply else (outcome.error or ""))[:500]
    kind = outcome.kind
    if kind is ReplyKind.ACCEPTED:
        return _SENT_SQL, (DeliveryState.SENT.value, now, message_id, reply_text, now, d.id)
    if reply is None and outcome.data_sent:
        # The whole message went out and the answer was lost: it may have been delivered.
        return _DOUBT_OR_FAILED_SQL, (DeliveryState.IN_DOUBT.value, reply_text, now, d.id)
    attempts = d.attempts + 1
    created = dt.datetime.fromisoformat(d.created_at.replace("Z", "+00:00"))
    deadline = created + dt.timedelta(hours=deadline_hours)
    if kind is ReplyKind.PERMANENT or utcnow() >= deadline:
        reason = (
            reply_text
            if kind is ReplyKind.PERMANENT
            else (f"ga opp etter {attempts} forsøk: {reply_text}")
        )
        return _GIVE_UP_SQL, (DeliveryState.FAILED.value, reason[:500], attempts, now, d.id)
    delay = min(retry_max_seconds, retry_base_seconds * 2 ** (attempts - 1))
    delay *= random.uniform(0.8, 1.2)  # noqa: S311  # jitter, not security
    due = (utcnow() + dt.timedelta(seconds=delay)).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
    return _DEFER_SQL, (DeliveryState.DEFERRED.value, reply_text, attempts, due, now, d.id)
