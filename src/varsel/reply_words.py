"""Why deliveries wait or failed, as operators read it: grouped by reason, never an address.

A relay's reply usually names the recipient (`550 5.1.1 <post@firma.no>: User unknown`) and
often a message id of its own (Gmail: `… 41be03b00d2f7-b1bd6f6c6b4si12345a12.123 - gsmtp`), so
the same refusal differs for every delivery. Grouping the stored replies as they are would show
five refusals of one each and hide the one that refused five hundred. So each reply is worded
first (addresses and ids hidden; a letter's code and Altinn's reply in words), then counted:
`varsel campaign status` and the console's campaign page both read reasons this way.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from varsel.db import Database
from varsel.errors import N_
from varsel.outbox import DeliveryState

# Says a Bokmål message id (or a Text) in the reader's language; the CLI's is Bokmål itself.
Say = Callable[[str], str]

ADDRESS_HIDDEN = N_("(adresse)")
ID_HIDDEN = "…"
# An e-mail address inside a relay's or bounce's words: personal data for a sole proprietor.
# Matched from the start of a run of such characters only, so that a long run with no @ in it
# is read once, not once from each of its characters.
_ADDRESS = re.compile(r"(?<![\w.!#$%&'*+/=?^`{|}~-])[\w.!#$%&'*+/=?^`{|}~-]+@[\w-]+(?:\.[\w-]+)+")
# A relay's id of one message or session: ten or more of letters, digits, dots and dashes, of
# which at least four are digits and one a letter (not a status code like 5.1.1, a host such
# as mx01.firma.no, or a word).
_ID = re.compile(r"(?<![\w.-])(?=(?:[\w.-]*?\d){4})(?=[\w.-]*?[A-Za-z])[\w.-]{10,}(?![\w.-])")


def bokmal(text: str) -> str:
    """The CLI's Say: a Bokmål message id (or a Text, already Bokmål) as it is."""
    return str(text)


def hidden(reply: str, say: Say = bokmal) -> str:
    """A reply without the addresses and message ids in it."""
    return _ID.sub(ID_HIDDEN, _ADDRESS.sub(say(ADDRESS_HIDDEN), reply))


def worded(channel: str, state: str, reply: str, say: Say = bokmal) -> str:
    """A delivery's stored reason as operators read it: the same words for the same reason."""
    if channel == "letter" and state == DeliveryState.FAILED.value:
        from varsel.letter_candidates import UNREACHABLE_TEXT, Unreachable

        # A letter that could not be made keeps letter_candidates.Unreachable's code.
        if reply in set(Unreachable):
            return say(UNREACHABLE_TEXT[Unreachable(reply)])
    if channel == "altinn" and state == DeliveryState.FAILED.value:
        from varsel.altinn_client import failure_text

        return hidden(say(failure_text(reply)), say)
    return hidden(reply, say)


@dataclass(frozen=True)
class Reason:
    """How many of a channel's deliveries are in a state for the same reason (as worded)."""

    channel: str  # email | letter | altinn
    state: str  # deferred | failed | bounced | returned
    reason: str  # worded: no addresses; "" when none was given
    count: int

    def as_dict(self) -> dict[str, Any]:
        return {
            "channel": self.channel,
            "state": self.state,
            "reason": self.reason,
            "count": self.count,
        }


def grouped(
    db: Database,
    campaign_id: int,
    states: Sequence[DeliveryState],
    shown: int,
    *,
    channel: str | None = None,
    say: Say = bokmal,
) -> list[Reason]:
    """The most common reasons for each state (every channel's, or one's): worded, then counted,
    the most common first; up to `shown` per state."""
    which = "" if channel is None else " AND channel = ?"
    out: list[Reason] = []
    for state in states:
        merged: dict[tuple[str, str], int] = {}
        # Every distinct reply is read (one row each, not one per delivery): which are the
        # most common is only known once they are worded.
        for ch, reply, n in db.query(
            "SELECT channel, coalesce(last_reply, ''), count(*) FROM deliveries "
            f"WHERE campaign_id = ? AND state = ?{which} GROUP BY 1, 2",
            (campaign_id, state.value, *([] if channel is None else [channel])),
        ):
            key = (str(ch), worded(str(ch), state.value, str(reply), say))
            merged[key] = merged.get(key, 0) + int(n)
        ranked = sorted(merged.items(), key=lambda item: (-item[1], item[0]))
        out += [Reason(ch, state.value, words, n) for (ch, words), n in ranked[:shown]]
    return out
