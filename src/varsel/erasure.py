"""Erasing a unit the registry removed on legal grounds (change type `Fjernet`).

The registry removes a unit from its open data when the law requires it (for a sole
proprietor, that is a person's data). Copies must then erase it, not keep it as gone: the
unit and its contact addresses go, and so does what campaigns keep of it — its number, its
name and its addresses in recipients, deliveries and their traces. What a campaign counted
stays countable: a recipient row keeps its form, municipality and size (what coverage and the
evaluation report group by) under a random stand-in for the number, and its delivery keeps
its state, so totals do not change when a unit is erased (but for one thing: the unit's own
opt-out goes with it, and a unit that had opted out counts by its delivery's outcome).

A delivery shared with other units (one address for several) keeps its address: the address
is theirs too. One the unit had alone loses its address, its SMTP reply text (which may quote
the address; its status codes stay, for the evaluation's bounce reasons), the details of its
events, the failed recipient of its bounce reports and the free text of feedback given with
its code. An address on the suppression list stays there (it must go on being honoured), but
no longer names the delivery it came from. `varsel campaign forget` (retention.py) erases a
finished campaign's deliveries with the same erase_deliveries.

Not erased: the hash-chained audit log (an export's audit row may name units; changing it
would break the chain that proves the log is complete), and files an operator has written out
(letters, CSV exports): docs/operators.md says so.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass

from varsel import suppression
from varsel.db import Database

ERASED_NAME = "(fjernet fra Enhetsregisteret)"


@dataclass(frozen=True)
class Erased:
    """What one erasure touched."""

    units: int  # rows in units (0 or 1)
    recipients: int  # campaigns that had the unit as a recipient
    deliveries: int  # deliveries that had the unit alone, their addresses erased
    shared: int  # deliveries shared with other units, kept with their address


_STAND_IN = "fjernet-"


def stand_in() -> str:
    """A random number-like value for an erased unit's rows: unique, and linking nothing."""
    return f"{_STAND_IN}{secrets.token_hex(8)}"


def is_stand_in(orgnr: str) -> bool:
    """Whether an organisation number in a campaign's rows is an erased unit's stand-in."""
    return orgnr.startswith(_STAND_IN)


def erase_unit(db: Database, orgnr: str) -> Erased:
    """Erase a unit and every copy of its identity; call inside the caller's transaction."""
    db.execute("DELETE FROM suppressions WHERE kind = 'unit' AND value = ?", (orgnr,))
    db.execute("DELETE FROM contacts WHERE orgnr = ?", (orgnr,))
    units = db.execute("DELETE FROM units WHERE orgnr = ?", (orgnr,)).rowcount

    deliveries = db.query(
        "SELECT du.delivery_id, d.campaign_id, "
        "(SELECT count(*) FROM delivery_units o WHERE o.delivery_id = du.delivery_id) "
        "FROM delivery_units du JOIN deliveries d ON d.id = du.delivery_id WHERE du.orgnr = ?",
        (orgnr,),
    )
    campaigns = {
        int(cid): stand_in()
        for (cid,) in db.query("SELECT campaign_id FROM recipients WHERE orgnr = ?", (orgnr,))
    }
    for _, cid, _ in deliveries:
        campaigns.setdefault(int(cid), stand_in())
    for cid, other in campaigns.items():
        db.execute(
            "UPDATE recipients SET orgnr = ?, name = ? WHERE campaign_id = ? AND orgnr = ?",
            (other, ERASED_NAME, cid, orgnr),
        )

    alone: dict[int, str | None] = {}
    for delivery_id, cid, count in deliveries:
        other = campaigns[int(cid)]
        db.execute(
            "UPDATE delivery_units SET orgnr = ? WHERE delivery_id = ? AND orgnr = ?",
            (other, delivery_id, orgnr),
        )
        if int(count) == 1:
            alone[int(delivery_id)] = other
    erase_deliveries(db, alone)
    return Erased(int(units), len(campaigns), len(alone), len(deliveries) - len(alone))


def erase_deliveries(db: Database, stand_ins: Mapping[int, str | None]) -> None:
    """Erase the contact data of deliveries: address and key, reply text, event details, the
    failed recipient of bounce reports and feedback's free text; call inside a transaction.

    Each delivery id maps to the stand-in its address becomes, or to None to keep address,
    key and last_reply: a letter's or Altinn delivery's address is its unit's number (public,
    and what coverage counts by) and its last_reply a reason code, not a reply.
    """
    replaced = [d for d, s in stand_ins.items() if s is not None]
    replies: dict[int, str | None] = {}
    for start in range(0, len(replaced), 500):
        chunk = replaced[start : start + 500]
        marks = ", ".join("?" * len(chunk))
        for delivery_id, reply in db.query(
            f"SELECT id, last_reply FROM deliveries WHERE id IN ({marks})", chunk
        ):
            replies[int(delivery_id)] = reply_codes(reply)
    # The key is unique within the campaign and channel, and often the address itself.
    db.executemany(
        "UPDATE deliveries SET address = ?, key = ?, last_reply = ? WHERE id = ?",
        [(stand_ins[d], f"{stand_ins[d]}:{d}", replies.get(d), d) for d in replaced],
    )
    ids = [(d,) for d in stand_ins]
    db.executemany("UPDATE events SET detail = NULL WHERE delivery_id = ?", ids)
    db.executemany("UPDATE bounce_messages SET recipient = NULL WHERE delivery_id = ?", ids)
    db.executemany("UPDATE feedback SET comment = NULL WHERE delivery_id = ?", ids)
    # The suppression list keeps honouring the addresses, without the link to the business.
    suppression.unlink_deliveries(db, stand_ins)


# An SMTP reply's basic (550) and enhanced (5.1.1) status codes.
_CODES = re.compile(r"\b[245]\d\d\b|\b[245]\.\d{1,3}\.\d{1,3}\b")


def reply_codes(reply: str | None) -> str | None:
    """An SMTP reply's status codes without its text, which may quote the address.

    The codes are the evidence the evaluation's bounce reasons are read from; the first
    enhanced code stays first, so they read the same.
    """
    found = _CODES.findall(reply or "")
    return " ".join(dict.fromkeys(found)) or None
