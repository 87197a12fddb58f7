"""What readers thought of a campaign: usefulness, relevance, preferred channel, free text."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from varsel.clock import utcnow_iso
from varsel.db import Database
from varsel.outbox import record_event

MAX_COMMENT = 2000


class Channel(StrEnum):
    """How a business would rather be told."""

    EMAIL = "epost"  # e-mail, as now
    LETTER = "brev"  # a postal letter
    ALTINN = "altinn"  # the public sector's inbox for businesses
    SMS = "sms"  # a text message


@dataclass(frozen=True)
class Feedback:
    """One answer to the feedback form; every field but the language may be left out."""

    campaign_id: int | None
    delivery_id: int | None
    usefulness: int | None  # 1 (not useful) .. 5 (very useful)
    relevant: bool | None
    channel: Channel | None
    comment: str | None
    language: str


def store(db: Database, feedback: Feedback) -> int:
    """Keep one answer and record it as an event; returns its id."""
    if feedback.usefulness is not None and not 1 <= feedback.usefulness <= 5:
        raise ValueError(f"usefulness {feedback.usefulness} is not 1..5")
    if feedback.comment is not None and len(feedback.comment) > MAX_COMMENT:
        raise ValueError("comment too long")
    with db.transaction():
        feedback_id = int(
            db.execute(
                "INSERT INTO feedback (at, campaign_id, delivery_id, usefulness, relevant, "
                "channel, comment, language) VALUES (?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
                (
                    utcnow_iso(),
                    feedback.campaign_id,
                    feedback.delivery_id,
                    feedback.usefulness,
                    feedback.relevant,
                    feedback.channel.value if feedback.channel else None,
                    feedback.comment,
                    feedback.language,
                ),
            ).fetchone()[0]
        )
        record_event(
            db, feedback.campaign_id, feedback.delivery_id, "feedback", {"id": feedback_id}
        )
    return feedback_id
