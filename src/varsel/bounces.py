"""Taking in bounces: which delivery a returned message is about, and what it does to it.

A message is read by `bounce_classify` and tied to a delivery by, in order:

1. a genuine VERP envelope address (`bounces+<id>-<mac>@…`, the mac checked) anywhere in it;
2. the Message-ID of the returned original, or the In-Reply-To/References of an auto-reply
   (varsel's Message-IDs begin with the delivery id, so the lookup is by primary key);
3. the verification code the message quotes (a returned original, or a reply quoting the
   message's text): a genuine code of one e-mail delivery (of the campaign, if one is given);
4. the failed recipient's address, among the deliveries that went out (of one campaign if
   given), the latest first: the only way without an exact clue, so the campaign narrows it.
   Neither 3 nor 4 when the message carries a VERP address whose mac fails: that one is forged.

A message sent to the List-Unsubscribe mailto is tied to its delivery by the unsubscribe token
in its subject instead.

Effects, in one transaction per message, and only once per message (`bounce_messages`):

- hard bounce, complaint: the delivery becomes `bounced` (a hard bounce's status and reason in
  last_reply), the address is suppressed (hard_bounce or complaint), an event is written; found
  by the address alone, the address is not suppressed, since anyone can send such a report;
  found by the code, only when the report names the delivery's own address as the failed one
  (whoever holds one message holds its code): otherwise only the event is written;
- soft bounce, policy refusal, auto-reply: an event only (a challenge-response filter's request
  is an auto-reply whose event says `"challenge": true`: the address works, and nothing is
  clicked or answered for it);
- unsubscribe: the address is suppressed (unsubscribed), as the public unsubscribe page does;
- unrecognised, forged, or no delivery found: nothing; counted and kept aside for an operator.

Events: `bounce_hard`, `bounce_soft`, `bounce_policy`, `complaint`, `auto_reply`, each with the
status, diagnostic, recipient and what the delivery was found by in its detail; `unsubscribed`.

Where the messages come from (a pipe, an mbox, a Maildir, IMAP): `bounce_sources`.
"""

from __future__ import annotations

import dataclasses
import hashlib
import re
from collections import Counter
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from varsel.bounce_classify import (
    BounceKind,
    Classification,
    classify,
    message_ids,
    parse,
    quoted_codes,
    status_kind,
)
from varsel.clock import utcnow_iso
from varsel.db import Database
from varsel.erasure import is_stand_in, reply_codes
from varsel.i18n import fmt_count, fmt_int
from varsel.outbox import DeliveryState, record_event
from varsel.suppression import SuppressionKind, SuppressionReason
from varsel.suppression import add as suppress
from varsel.verify import GENUINE_STATES, UnsubscribeScope, by_token, unsubscribe
from varsel.verp import MAC_BYTES, PREFIX, Verp

EVENT_KINDS = {
    BounceKind.HARD: "bounce_hard",
    BounceKind.SOFT: "bounce_soft",
    BounceKind.POLICY: "bounce_policy",
    BounceKind.COMPLAINT: "complaint",
    BounceKind.AUTO_REPLY: "auto_reply",
}
# Headers a bounce is addressed by: the VERP address is here unless a server dropped it.
_ENVELOPE_HEADERS = ("Delivered-To", "X-Original-To", "Envelope-To", "X-Envelope-To", "To")
_OUR_MESSAGE_ID = re.compile(r"<(\d{1,18})\.[0-9a-f]{16}@[^<>\s]+>")
# An address of the shape varsel's envelope senders have, whatever its mac (verp.py's form).
_VERP_SHAPED = re.compile(
    rf"{PREFIX}\+[0-9]{{1,18}}-[0-9a-f]{{{2 * MAC_BYTES}}}@[a-z0-9.-]+", re.IGNORECASE
)


class FoundBy(StrEnum):
    """How the delivery a bounce is about was found."""

    VERP = "verp"  # the signed envelope address
    MESSAGE_ID = "message_id"  # the returned original's Message-ID, or In-Reply-To
    CODE = "code"  # the verification code of the message, quoted in the text
    ADDRESS = "address"  # the failed recipient's address
    TOKEN = "token"  # noqa: S105  # the unsubscribe token in a List-Unsubscribe mail subject


@dataclass(frozen=True)
class Outcome:
    """What taking in one message did."""

    kind: BounceKind
    delivery_id: int | None = None
    found_by: FoundBy | None = None
    duplicate: bool = False  # taken in before: nothing done again
    forged: bool = False  # carries a VERP address whose mac fails: nothing done

    @property
    def kept_aside(self) -> bool:
        """Unrecognised, forged, or a bounce whose delivery is unknown: for an operator."""
        if self.duplicate:
            return False
        if self.kind is BounceKind.UNRECOGNISED or self.forged:
            return True
        return self.delivery_id is None and self.kind is not BounceKind.AUTO_REPLY


@dataclass
class IngestSummary:
    """Counts of one intake run."""

    counts: Counter[str] = field(default_factory=Counter)

    def add(self, outcome: Outcome) -> None:
        if outcome.duplicate:
            self.counts["duplicate"] += 1
        elif outcome.forged:
            self.counts["forged"] += 1
        elif outcome.kind is not BounceKind.UNRECOGNISED and outcome.kept_aside:
            self.counts["unmatched"] += 1
        else:
            self.counts[outcome.kind.value] += 1

    def as_dict(self) -> dict[str, int]:
        keys = [k.value for k in BounceKind] + ["forged", "unmatched", "duplicate"]
        return {k: self.counts.get(k, 0) for k in keys}

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def summary(self) -> str:
        """One line in Norwegian."""
        c = self.as_dict()
        return (
            f"{fmt_count(self.total, 'melding', 'meldinger')}: "
            f"{fmt_count(c['hard'], 'hard retur', 'harde returer')}, "
            f"{fmt_count(c['soft'], 'myk', 'myke')}, "
            f"{fmt_int(c['policy'])} avvist av mottakers regler, "
            f"{fmt_count(c['complaint'], 'klage', 'klager')}, "
            f"{fmt_count(c['auto_reply'], 'autosvar', 'autosvar')}, "
            f"{fmt_count(c['unsubscribe'], 'avmelding', 'avmeldinger')}, "
            f"{fmt_count(c['unrecognised'], 'ukjent', 'ukjente')}, "
            f"{fmt_count(c['forged'], 'forfalsket', 'forfalskede')}, "
            f"{fmt_int(c['unmatched'])} uten kjent levering, "
            f"{fmt_int(c['duplicate'])} tatt inn før."
        )


class BounceIntake:
    """Takes in returned messages for one store."""

    def __init__(self, db: Database, verp: Verp, campaign_id: int | None = None) -> None:
        self.db = db
        self.verp = verp
        self.campaign_id = campaign_id

    def ingest(self, raw: bytes, source: str = "stdin") -> Outcome:
        """Read one message and apply what it says, in one transaction; once per message."""
        msg = parse(raw)
        message_id = msg.get("Message-ID")  # a Header, not a str, if it holds 8-bit bytes
        key = message_key(None if message_id is None else str(message_id), raw)
        with self.db.transaction():
            seen = self.db.query_one(
                "SELECT kind, delivery_id FROM bounce_messages WHERE key = ?", (key,)
            )
            if seen is not None:
                delivery_id = None if seen[1] is None else int(seen[1])
                return Outcome(BounceKind(seen[0]), delivery_id, duplicate=True)
            found = _storable(classify(msg))
            if found.kind is BounceKind.UNRECOGNISED:
                return Outcome(found.kind)  # nothing to do, so nothing to remember
            delivery, forged = self._identify(msg, raw, found)
            if delivery is None:
                if found.kind is BounceKind.UNSUBSCRIBE:
                    return Outcome(BounceKind.UNRECOGNISED)  # no delivery has that token
                return Outcome(found.kind, forged=forged)
            delivery_id, found_by = delivery
            # A forgotten campaign's (or an erased unit's) delivery: the report's recipient is
            # not kept again, as _apply keeps none of its text.
            keep_recipient = found.kind is not BounceKind.UNSUBSCRIBE and not self._erased(
                delivery_id
            )
            inserted = self.db.execute(
                "INSERT INTO bounce_messages (key, received_at, kind, delivery_id, status, "
                "recipient, source) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (key) DO NOTHING",
                (
                    key,
                    utcnow_iso(),
                    found.kind.value,
                    delivery_id,
                    found.status,
                    found.recipient if keep_recipient else None,
                    source,
                ),
            ).rowcount
            if not inserted:  # another intake took the same message in at the same moment
                return Outcome(found.kind, delivery_id, found_by, duplicate=True)
            self._apply(found, delivery_id, found_by)
        return Outcome(found.kind, delivery_id, found_by)

    # -- finding the delivery -------------------------------------------------------

    def _identify(
        self, msg: Any, raw: bytes, found: Classification
    ) -> tuple[tuple[int, FoundBy] | None, bool]:
        """The delivery the message is about and what found it, or None; and whether it is
        forged: it carries an address of our VERP shape and none whose mac checks.

        Only a genuine VERP address is found by, so a forger who names someone's address as the
        failed recipient would otherwise be believed by the address lookup.
        """
        if found.kind is BounceKind.UNSUBSCRIBE:
            asked = by_token(self.db, found.token or "")
            return (None if asked is None else (asked.delivery_id, FoundBy.TOKEN)), False
        text = raw.decode("latin-1")  # addresses and ids are ASCII; any byte maps to one char
        headers = "\n".join(str(v) for h in _ENVELOPE_HEADERS for v in msg.get_all(h, []))
        genuine: int | None = None
        for where in (headers, text):
            genuine = self.verp.find(where)
            if genuine is not None and self._exists(genuine):
                return (genuine, FoundBy.VERP), False
        # `genuine` is now what the whole text holds: no mac checked in it, one of ours is forged.
        forged = genuine is None and _VERP_SHAPED.search(text) is not None
        for message_id in message_ids(msg, raw):
            ours = _OUR_MESSAGE_ID.fullmatch(message_id)
            if ours and self.db.query_one(
                "SELECT 1 FROM deliveries WHERE id = ? AND message_id = ?",
                (int(ours.group(1)), message_id),
            ):
                return (int(ours.group(1)), FoundBy.MESSAGE_ID), forged
        if forged:
            return None, forged
        by_code = self._by_code(quoted_codes(msg))
        if by_code is not None:
            return (by_code, FoundBy.CODE), forged
        if found.recipient:
            row = self.db.query_one(
                "SELECT id FROM deliveries WHERE channel = 'email' AND address = ? "
                "AND sent_at IS NOT NULL"
                + (" AND campaign_id = ?" if self.campaign_id else "")
                + " ORDER BY sent_at DESC, id DESC LIMIT 1",
                (found.recipient,) + ((self.campaign_id,) if self.campaign_id else ()),
            )
            if row is not None:
                return (int(row[0]), FoundBy.ADDRESS), forged
        return None, forged

    def _by_code(self, quoted: list[str]) -> int | None:
        """The one e-mail delivery whose genuine code the message quotes, or None (also when
        the codes name several: no clue which the report is about)."""
        if not quoted:
            return None
        marks = ", ".join("?" for _ in quoted)
        genuine = ", ".join("?" for _ in GENUINE_STATES)
        rows = self.db.query(
            f"SELECT id FROM deliveries WHERE code IN ({marks}) AND channel = 'email' "
            f"AND state IN ({genuine})" + (" AND campaign_id = ?" if self.campaign_id else ""),
            [*quoted, *(s.value for s in GENUINE_STATES)]
            + ([self.campaign_id] if self.campaign_id else []),
        )
        return int(rows[0][0]) if len(rows) == 1 else None

    def _exists(self, delivery_id: int) -> bool:
        return bool(self.db.query_one("SELECT 1 FROM deliveries WHERE id = ?", (delivery_id,)))

    def _erased(self, delivery_id: int) -> bool:
        address = self.db.scalar("SELECT address FROM deliveries WHERE id = ?", (delivery_id,))
        return is_stand_in(str(address or ""))

    # -- what it does -----------------------------------------------------------------

    def _apply(self, found: Classification, delivery_id: int, found_by: FoundBy) -> None:
        if found.kind is BounceKind.UNSUBSCRIBE:
            asked = by_token(self.db, found.token or "")
            assert asked is not None  # noqa: S101  # found just before, in this transaction
            # The token is the secret only the message's reader was given, as on the page.
            unsubscribe(self.db, asked, UnsubscribeScope.ADDRESS, one_click=False, via="mail")
            return
        row = self.db.query_one(
            "SELECT campaign_id, address FROM deliveries WHERE id = ?", (delivery_id,)
        )
        assert row is not None  # noqa: S101  # found just before, in this transaction
        campaign_id, address = int(row[0]), str(row[1])
        # A forgotten campaign's (or an erased unit's) delivery holds a stand-in, not an
        # address: there is nothing to suppress, and the report's text is not kept again.
        erased = is_stand_in(address)
        # Found by the code, the report is about our message, but whoever holds one message
        # holds its code: only a report that names the delivery's own address as the failed
        # one (not a forwarding target's, not a victim's) may mark it bounced and stop it.
        recorded_only = found_by is FoundBy.CODE and not _same_address(found.recipient, address)
        if found.kind in (BounceKind.HARD, BounceKind.COMPLAINT) and not recorded_only:
            reply = found.diagnostic or ""
            if found.kind is BounceKind.HARD and found.status:
                reply = f"{found.status} {reply}".strip()
            if erased:
                reply = reply_codes(reply) or ""
            now = utcnow_iso()
            self.db.execute(
                "UPDATE deliveries SET state = ?, last_reply = ?, updated_at = ? "
                "WHERE id = ? AND state IN (?, ?)",
                (
                    DeliveryState.BOUNCED.value,
                    (reply or found.kind.value)[:500],
                    now,
                    delivery_id,
                    DeliveryState.SENT.value,
                    DeliveryState.IN_DOUBT.value,
                ),
            )
            reason = (
                SuppressionReason.HARD_BOUNCE
                if found.kind is BounceKind.HARD
                else SuppressionReason.COMPLAINT
            )
            # Found by the address alone, the report may come from anyone: the delivery counts
            # as bounced, but only a VERP or Message-ID clue (which only a report about our
            # message carries) may stop the address for every campaign.
            if not erased and found_by is not FoundBy.ADDRESS:
                suppress(
                    self.db, SuppressionKind.ADDRESS, address, reason, f"delivery:{delivery_id}"
                )
        detail: dict[str, str | bool | None] = {
            "status": found.status,
            "diagnostic": None if erased else (found.diagnostic or "")[:500] or None,
            "recipient": None if erased else found.recipient,
            "evidence": found.evidence.value,
            "found_by": found_by.value,
        }
        if found.feedback_type:
            detail["feedback_type"] = found.feedback_type
        if found.challenge:
            detail["challenge"] = True
        if found.kind in (BounceKind.HARD, BounceKind.COMPLAINT) and (
            found_by is FoundBy.ADDRESS or recorded_only
        ):
            detail["suppressed"] = False  # see above
        record_event(
            self.db,
            campaign_id,
            delivery_id,
            EVENT_KINDS[found.kind],
            {k: v for k, v in detail.items() if v is not None},
        )


def _same_address(recipient: str | None, address: str) -> bool:
    """The report's failed recipient is the delivery's address (case aside)."""
    return recipient is not None and recipient.strip().casefold() == address.casefold()


def message_key(message_id: str | None, raw: bytes) -> str:
    """What makes a message the same message when it comes twice."""
    message_id = (message_id or "").replace("\x00", "")  # see _storable
    if message_id.strip():
        return f"mid:{' '.join(message_id.split())[:300]}"
    return f"sha256:{hashlib.sha256(raw).hexdigest()}"


def _storable(found: Classification) -> Classification:
    """The classification without NUL characters, which a report may carry in any field.

    PostgreSQL refuses them in text, so one such message would stop an mbox at that message,
    and make an MTA's pipe (--tempfail) try the same message again for days.
    """

    def clean(value: str | None) -> str | None:
        return None if value is None else value.replace("\x00", "")

    return dataclasses.replace(
        found,
        status=clean(found.status),
        diagnostic=clean(found.diagnostic),
        recipient=clean(found.recipient),
        feedback_type=clean(found.feedback_type),
    )


# -- routing to the other channels --------------------------------------------------------


def units_needing_another_channel(db: Database, campaign_id: int) -> list[str]:
    """Units of a campaign that e-mail did not and will not reach: for letters or Altinn.

    The organisation numbers (sorted) of the campaign's recipients that have no e-mail
    delivery at all, or whose every e-mail delivery ended unreachable for the address:

    - `bounced` by a hard bounce (not by a complaint: that recipient was reached);
    - `failed` with a reply that `status_kind` reads as hard (5.1.x, 5.2.1, 5.4.4, …);
    - `suppressed` because the address hard-bounced before.

    A delivery still pending, sent, or refused for another reason keeps its units out.
    """
    recipients = [
        r[0]
        for r in db.query(
            "SELECT orgnr FROM recipients WHERE campaign_id = ? ORDER BY orgnr", (campaign_id,)
        )
    ]
    rows = db.query(
        "SELECT d.id, d.state, d.last_reply, d.address, du.orgnr FROM deliveries d "
        "JOIN delivery_units du ON du.delivery_id = d.id "
        "WHERE d.campaign_id = ? AND d.channel = 'email'",
        (campaign_id,),
    )
    hard_bounced = {
        int(r[0])
        for r in db.query(
            "SELECT DISTINCT delivery_id FROM events WHERE campaign_id = ? AND kind = ?",
            (campaign_id, EVENT_KINDS[BounceKind.HARD]),
        )
        if r[0] is not None
    }
    dead_addresses = {
        r[0]
        for r in db.query(
            "SELECT value FROM suppressions WHERE kind = ? AND reason = ?",
            (SuppressionKind.ADDRESS.value, SuppressionReason.HARD_BOUNCE.value),
        )
    }
    reached: set[str] = set()
    emailed: set[str] = set()
    for delivery_id, state, last_reply, address, orgnr in rows:
        emailed.add(orgnr)
        if not _unreachable(
            int(delivery_id), state, last_reply, address, hard_bounced, dead_addresses
        ):
            reached.add(orgnr)
    return [o for o in recipients if o not in emailed or o not in reached]


def _unreachable(
    delivery_id: int,
    state: str,
    last_reply: str | None,
    address: str,
    hard_bounced: set[int],
    dead_addresses: set[str],
) -> bool:
    if state == DeliveryState.BOUNCED:
        return delivery_id in hard_bounced
    if state == DeliveryState.FAILED:
        return status_kind("", last_reply or "") is BounceKind.HARD
    if state == DeliveryState.SUPPRESSED:
        return address in dead_addresses
    return False
