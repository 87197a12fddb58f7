"""What the console's campaign page says beyond e-mail's progress: why deliveries failed, per
channel and grouped by reason (never an address), and the letters' and Altinn's counts per state.
"""

from __future__ import annotations

from dataclasses import dataclass

from varsel import altinn, outbox, reply_words
from varsel.db import Database
from varsel.errors import Text
from varsel.outbox import DeliveryState
from varsel.web.console_auth import translate
from varsel.web.console_text import STATE_NAMES
from varsel.web.templating import N_, gettext

REASONS_SHOWN = 10  # reasons per channel on the campaign page, the most common first
UNITS_SHOWN = 3  # organisation numbers named per Altinn reason; the rest only counted


@dataclass(frozen=True)
class FailureReason:
    """How many of a channel's deliveries failed (or bounced) with the same reason."""

    state: str  # failed | bounced | returned
    reason: str  # in the page's language, without e-mail addresses; "" when none was given
    count: int
    units: tuple[str, ...] = ()  # Altinn: the first few organisation numbers


@dataclass(frozen=True)
class ChannelFailures:
    """A channel's failed deliveries: the most common reasons, and how many are not shown."""

    channel: str  # email | letter | altinn
    total: int
    reasons: tuple[FailureReason, ...]

    @property
    def rest(self) -> int:
        """Failed deliveries whose reasons are not among those shown."""
        return self.total - sum(r.count for r in self.reasons)


def failures(db: Database, cid: int, language: str) -> list[ChannelFailures]:
    """E-mail's failed and bounced deliveries, letters' failed and returned ones and Altinn's
    failed ones, grouped by reason."""
    by_channel = outbox.counts_by_channel(db, cid)
    out = []
    email = by_channel.get("email", {})
    email_total = email.get("failed", 0) + email.get("bounced", 0)
    if email_total:
        out.append(ChannelFailures("email", email_total, _email_reasons(db, cid, language)))
    letter = by_channel.get("letter", {})
    letter_total = letter.get("failed", 0) + letter.get("returned", 0)
    if letter_total:
        out.append(ChannelFailures("letter", letter_total, _letter_reasons(db, cid, language)))
    altinn_total = by_channel.get("altinn", {}).get("failed", 0)
    if altinn_total:
        out.append(ChannelFailures("altinn", altinn_total, _altinn_reasons(db, cid, language)))
    return out


def _say(language: str) -> reply_words.Say:
    """Says a Bokmål message id, or a library's Text, in the page's language."""
    return lambda text: (
        translate(language, text) if isinstance(text, Text) else gettext(language, text)
    )


def _email_reasons(db: Database, cid: int, language: str) -> tuple[FailureReason, ...]:
    return _grouped(db, cid, "email", (DeliveryState.FAILED, DeliveryState.BOUNCED), language)


def _letter_reasons(db: Database, cid: int, language: str) -> tuple[FailureReason, ...]:
    # A letter that could not be made is worded as `varsel letters` words it; a returned one
    # keeps the print house's own words, as `letters returned` stored them (addresses hidden).
    return _grouped(db, cid, "letter", (DeliveryState.FAILED, DeliveryState.RETURNED), language)


def _grouped(
    db: Database, cid: int, channel: str, states: tuple[DeliveryState, ...], language: str
) -> tuple[FailureReason, ...]:
    """The grouping `varsel campaign status` prints (reply_words), for the channel's states, in
    the page's language: failures first, the most common first."""
    found = reply_words.grouped(db, cid, states, REASONS_SHOWN, channel=channel, say=_say(language))
    ordered = sorted(found, key=lambda r: (r.state != "failed", -r.count))
    return tuple(FailureReason(r.state, r.reason, r.count) for r in ordered)


def _altinn_reasons(db: Database, cid: int, language: str) -> tuple[FailureReason, ...]:
    # Each reason worded as `campaign status` words it (reply_words), in the page's language.
    say = _say(language)
    units: dict[str, list[str]] = {}
    for orgnr, _, stored in altinn.altinn_failures(db, cid):
        units.setdefault(reply_words.worded("altinn", "failed", stored, say), []).append(orgnr)
    ordered = sorted(units.items(), key=lambda item: (-len(item[1]), item[0]))
    return tuple(
        FailureReason("failed", reason, len(orgnrs), tuple(orgnrs[:UNITS_SHOWN]))
        for reason, orgnrs in ordered[:REASONS_SHOWN]
    )


# -- the other channels' progress ------------------------------------------------------------

# Letters' and Altinn's states in the words `varsel campaign status` uses (send_report's
# STATE_WORDS); e-mail's, and the states all channels share, are STATE_NAMES.
DELIVERY_STATE_NAMES = {
    **STATE_NAMES,
    DeliveryState.PRODUCED.value: N_("Produsert"),
    DeliveryState.POSTED.value: N_("Postlagt"),
    DeliveryState.RETURNED.value: N_("Returnert"),
    DeliveryState.SUBMITTED.value: N_("Sendt inn"),
    DeliveryState.DELIVERED.value: N_("Levert"),
}
DELIVERY_CHANNEL_NAMES = {"email": N_("E-post"), "letter": N_("Brev"), "altinn": N_("Altinn")}
# Shown even at zero: where the channel's deliveries go. Any other state only when used.
_MAIN_STATES = {
    "letter": ("produced", "posted", "returned", "failed"),
    "altinn": ("submitted", "delivered", "failed"),
}


@dataclass(frozen=True)
class ChannelCounts:
    """A channel other than e-mail that has deliveries: its total and its states' counts."""

    channel: str  # letter | altinn
    total: int
    states: tuple[tuple[str, int], ...]  # (state, count), in `campaign status` order


def other_channels(db: Database, cid: int) -> list[ChannelCounts]:
    """Letters' and Altinn's counts per state, for each that has deliveries."""
    out = []
    for channel, states in outbox.counts_by_channel(db, cid).items():
        total = sum(states.values())
        if channel == "email" or not total:
            continue
        main = _MAIN_STATES.get(channel, ())
        shown_states = tuple((s, n) for s, n in states.items() if n or s in main)
        out.append(ChannelCounts(channel, total, shown_states))
    return out
