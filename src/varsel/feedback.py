"""What readers thought of a campaign: usefulness, relevance, preferred channel, free text."""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

from varsel.clock import utcnow_iso
from varsel.db import Database
from varsel.outbox import record_event

MAX_COMMENT = 2000

# Control characters other than tab and line break: no one types them, they mean nothing in a
# comment, and PostgreSQL refuses a NUL (an error, not a stored comment). Format characters
# such as the bidi marks stay: right-to-left writing needs them.
_CONTROLS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")


def comment_text(typed: str) -> str:
    """A comment as kept: each line break as one \\n, without control characters."""
    # A browser sends the textarea's line breaks as CR LF, while its maxlength counts each as
    # one character: counted (and kept) as the reader typed them.
    return _CONTROLS.sub("", typed.replace("\r\n", "\n").replace("\r", "\n"))


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
