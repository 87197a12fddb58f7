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
its code. A letter or Altinn delivery (address and key: the unit's number) takes the
stand-in as both, so the recipient still finds its letter and none is made again, and keeps
a letter's reason code (`incomplete_address`), which coverage counts by. `varsel campaign
forget` (retention.py) erases a finished campaign's deliveries with the same
erase_deliveries.

Also erased, as copies of the unit's number, name or addresses:
- the parent number (`parent_orgnr`) of its sub-units (and of units that name it as their
  overordnet enhet): it becomes NULL, and their record hash is computed again without it, so
  a later dump or feed that names a parent sets it as any other change. Selection through a
  sub-unit needs the parent in the store, so nothing it selected changes;
- an address that asked for a campaign's document (`document_requests`), when it was the
  unit's own (its registry address, or the address of a delivery it had alone) and no other
  unit or delivery of that campaign has it: it becomes the campaign's stand-in, as the
  delivery did, so the download is still counted;
- operators' notes on the suppression list (`note`) on an entry for the unit's own address
  (when no other unit's contacts or delivery has it), and any note that names the unit (its
  number, spaced or not, or its registered name); the entries stay: an address on the list
  must go on being honoured. An entry that named the delivery it came from keeps only the
  kind of source;
- feedback's free text in the unit's campaigns that names it in the same way (an answer given
  with the code of a shared delivery, or with no code at all).

Kept, so that the erasure holds: the unit's number and the day of its removal
(`removed_units`, written by feed.py), which no more than names what must stay erased; a dump
made before that day, imported later, would otherwise bring the unit back (registry.py
erases it again).

Not erased:
- the hash-chained audit log (an export's audit row may name units, a suppression entry's
  note is in the entry that added it; changing it would break the chain that proves the log
  is complete);
- files outside the store: the dumps themselves (`snapshots.file_path`, the archive of
  record), change-feed pages kept with `registry update --fetch --keep`, letters and CSV
  exports an operator has written out: docs/operators.md says so;
- a sub-unit's own record, whose name often repeats its parent's (`LYSE AS AVD BODØ`, or a
  sole proprietor's name): the registry removes such a sub-unit with a `Fjernet` of its own;
- free text that names the person otherwise than by the unit's number or registered name (a
  note or comment is not read for first names);
- what names an address, not the unit: a shared delivery's address, other units' contacts,
  the rate limiter's buckets per domain (`send_buckets`, a domain, refilled and deleted as
  sending goes) and the public pages' rate limits (keyed hashes that expire).
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from varsel import suppression, unit
from varsel.clock import utcnow_iso
from varsel.db import Database
from varsel.dump import Kind

ERASED_NAME = "(fjernet fra Enhetsregisteret)"


@dataclass(frozen=True)
class Erased:
    """What one erasure touched."""

    units: int  # rows in units (0 or 1)
    recipients: int  # campaigns that had the unit as a recipient
    deliveries: int  # deliveries that had the unit alone, their addresses erased
    shared: int  # deliveries shared with other units, kept with their address
    sub_units: int = 0  # units that had it as their parent, which lose the parent's number


_STAND_IN = "fjernet-"


def stand_in() -> str:
    """A random number-like value for an erased unit's rows: unique, and linking nothing."""
    return f"{_STAND_IN}{secrets.token_hex(8)}"


def is_stand_in(orgnr: str) -> bool:
    """Whether an organisation number in a campaign's rows is an erased unit's stand-in."""
    return orgnr.startswith(_STAND_IN)


def erase_unit(db: Database, orgnr: str) -> Erased:
    """Erase a unit and every copy of its identity; call inside the caller's transaction."""
    mentioned = _mentions(db, orgnr)
    own = {str(a) for (a,) in db.query("SELECT address FROM contacts WHERE orgnr = ?", (orgnr,))}
    db.execute("DELETE FROM suppressions WHERE kind = 'unit' AND value = ?", (orgnr,))
    db.execute("DELETE FROM contacts WHERE orgnr = ?", (orgnr,))
    units = db.execute("DELETE FROM units WHERE orgnr = ?", (orgnr,)).rowcount
    children = _orphan(db, orgnr)

    deliveries = db.query(
        "SELECT du.delivery_id, d.campaign_id, d.channel, d.address, "
        "(SELECT count(*) FROM delivery_units o WHERE o.delivery_id = du.delivery_id) "
        "FROM delivery_units du JOIN deliveries d ON d.id = du.delivery_id WHERE du.orgnr = ?",
        (orgnr,),
    )
    campaigns = {
        int(cid): stand_in()
        for (cid,) in db.query("SELECT campaign_id FROM recipients WHERE orgnr = ?", (orgnr,))
    }
    for _, cid, _, _, _ in deliveries:
        campaigns.setdefault(int(cid), stand_in())
    for cid, other in campaigns.items():
        db.execute(
            "UPDATE recipients SET orgnr = ?, name = ? WHERE campaign_id = ? AND orgnr = ?",
            (other, ERASED_NAME, cid, orgnr),
        )

    alone: dict[int, str | None] = {}
    addresses: dict[str, set[int]] = {}  # e-mail addresses its own deliveries had: campaigns
    for delivery_id, cid, channel, address, count in deliveries:
        other = campaigns[int(cid)]
        db.execute(
            "UPDATE delivery_units SET orgnr = ? WHERE delivery_id = ? AND orgnr = ?",
            (other, delivery_id, orgnr),
        )
        if int(count) == 1:
            alone[int(delivery_id)] = other
            if channel == "email" and not is_stand_in(str(address)):
                addresses.setdefault(str(address), set()).add(int(cid))
    erase_deliveries(db, alone)
    _erase_requests(db, addresses, own, campaigns)
    _erase_mentions(db, mentioned, own | addresses.keys(), campaigns)
    return Erased(int(units), len(campaigns), len(alone), len(deliveries) - len(alone), children)


def _mentions(db: Database, orgnr: str) -> Callable[[str], bool]:
    """Whether a free text names the unit: its number (spaced or not) or its name."""
    names = {
        " ".join(str(n).split()).casefold()
        for (n,) in db.query(
            "SELECT name FROM units WHERE orgnr = ? UNION SELECT name FROM recipients "
            "WHERE orgnr = ?",
            (orgnr, orgnr),
        )
    }
    # A name of a few letters would be found inside ordinary words.
    names = {n for n in names if len(n) >= _SHORTEST_NAME and n != ERASED_NAME.casefold()}

    def mentions(text: str) -> bool:
        if orgnr in _DIGIT_GAPS.sub("", text):
            return True
        flat = " ".join(text.split()).casefold()
        return any(n in flat for n in names)

    return mentions


_SHORTEST_NAME = 5
# Between two digits, what an organisation number is written with: "974 760 673", "974.760.673".
_DIGIT_GAPS = re.compile(r"(?<=\d)[ .\u00a0](?=\d)")


def _orphan(db: Database, orgnr: str) -> int:
    """Units whose parent (overordnet enhet) is the erased unit lose the parent's number.

    Their record hash is computed again without it, so that a later dump or feed that still
    names a parent counts the unit as changed and sets it, as it sets any other change.
    """
    cols = ", ".join(unit.UNIT_COLUMNS)
    rows = db.query(f"SELECT {cols} FROM units WHERE parent_orgnr = ?", (orgnr,))
    now = utcnow_iso()
    updates = []
    for row in rows:
        values = list(row)
        values[unit.COL["parent_orgnr"]] = None
        kind = Kind.UNDERENHETER if values[unit.COL["kind"]] == "underenhet" else Kind.ENHETER
        try:
            record, _ = unit.extract(unit.to_record(values), kind)
            digest = unit.record_hash(record)
        except unit.Rejected:
            # A row the import would reject now (the rules grew stricter since): any hash
            # that differs makes the next dump set it again.
            digest = 0
        updates.append((digest, now, values[unit.COL["orgnr"]]))
    db.executemany(
        "UPDATE units SET parent_orgnr = NULL, record_hash = ?, updated_at = ? WHERE orgnr = ?",
        updates,
    )
    return len(updates)


def _erase_requests(
    db: Database, addresses: Mapping[str, set[int]], own: set[str], campaigns: Mapping[int, str]
) -> None:
    """The unit's addresses that asked for a campaign's document, where nobody else has them.

    A request in a campaign where the unit had a delivery to it gets the campaign's stand-in,
    as the delivery did, so that its download is still counted.
    """
    for address in sorted(addresses.keys() | own):
        if db.query_one("SELECT 1 FROM contacts WHERE address = ? LIMIT 1", (address,)):
            continue  # another unit's registry address too: theirs as much as the unit's
        for (cid,) in db.query(
            "SELECT DISTINCT campaign_id FROM document_requests WHERE address = ?", (address,)
        ):
            still = db.query_one(
                "SELECT 1 FROM deliveries WHERE campaign_id = ? AND channel = 'email' "
                "AND address = ? LIMIT 1",
                (cid, address),
            )
            if still is None:
                kept = campaigns.get(int(cid)) if int(cid) in addresses.get(address, ()) else None
                db.execute(
                    "UPDATE document_requests SET address = ? WHERE campaign_id = ? "
                    "AND address = ?",
                    (kept or stand_in(), cid, address),
                )


def _erase_mentions(
    db: Database,
    mentions: Callable[[str], bool],
    addresses: set[str],
    campaigns: Mapping[int, str],
) -> None:
    """Free text that names the unit: operators' notes on the suppression list, and feedback
    in the unit's campaigns (a comment given with a shared delivery's code, for one)."""
    gone = {
        a
        for a in addresses
        if not db.query_one("SELECT 1 FROM contacts WHERE address = ? LIMIT 1", (a,))
        and not db.query_one(
            "SELECT 1 FROM deliveries WHERE channel = 'email' AND address = ? LIMIT 1", (a,)
        )
    }
    suppression.forget_notes(db, gone, mentions)
    for cid in campaigns:
        db.executemany(
            "UPDATE feedback SET comment = NULL WHERE id = ?",
            [
                (fid,)
                for fid, comment in db.query(
                    "SELECT id, comment FROM feedback WHERE campaign_id = ? "
                    "AND comment IS NOT NULL",
                    (cid,),
                )
                if mentions(str(comment))
            ],
        )


def erase_deliveries(db: Database, stand_ins: Mapping[int, str | None]) -> None:
    """Erase the contact data of deliveries: address and key, reply text, event details, the
    failed recipient of bounce reports and feedback's free text; call inside a transaction.

    Each delivery id maps to the stand-in its address becomes, or to None to keep address and
    key: a letter's or Altinn delivery's address and key are its unit's number (public, and
    what coverage counts by). A letter or Altinn delivery given a stand-in (its unit erased)
    takes it as its key too, as letters and Altinn find a recipient's delivery by the key.
    A letter keeps its reason code (`incomplete_address`, which coverage counts by) but not
    the print house's words on why it came back; an Altinn delivery given None keeps
    Altinn's reply, any other reply keeps only its status codes.
    """
    updates = []
    for start in range(0, len(ids := list(stand_ins)), 500):
        chunk = ids[start : start + 500]
        marks = ", ".join("?" * len(chunk))
        for delivery_id, channel, old_key, old_address, reply in db.query(
            f"SELECT id, channel, key, address, last_reply FROM deliveries WHERE id IN ({marks})",
            chunk,
        ):
            d, new = int(delivery_id), stand_ins[int(delivery_id)]
            if channel == "letter":
                kept = letter_reason(reply)
            elif channel == "email" or new is not None:
                kept = reply_codes(reply)
            else:
                kept = reply
            if new is None:
                updates.append((old_address, old_key, kept, d))
            else:
                # An e-mail's key is unique within campaign and channel, and often the address;
                # there is one letter (one Altinn message) per unit and campaign.
                updates.append((new, f"{new}:{d}" if channel == "email" else new, kept, d))
    db.executemany(
        "UPDATE deliveries SET address = ?, key = ?, last_reply = ? WHERE id = ?", updates
    )
    rows = [(d,) for d in stand_ins]
    db.executemany("UPDATE events SET detail = NULL WHERE delivery_id = ?", rows)
    db.executemany("UPDATE bounce_messages SET recipient = NULL WHERE delivery_id = ?", rows)
    db.executemany("UPDATE feedback SET comment = NULL WHERE delivery_id = ?", rows)
    # The suppression list keeps honouring the addresses, without the link to the business.
    suppression.unlink_deliveries(db, stand_ins)


# A letter's reason it could not be made (letter_candidates.Unreachable), as coverage counts it.
_REASON_CODE = re.compile(r"[a-z_]+")


def letter_reason(reply: str | None) -> str | None:
    """A letter's last_reply without free text: its reason code, or the status codes of
    anything else (the print house's words on a returned letter may name the addressee)."""
    if reply is not None and _REASON_CODE.fullmatch(reply):
        return reply
    return reply_codes(reply)


# An SMTP reply's basic (550) and enhanced (5.1.1) status codes.
_CODES = re.compile(r"\b[245]\d\d\b|\b[245]\.\d{1,3}\.\d{1,3}\b")


def reply_codes(reply: str | None) -> str | None:
    """An SMTP reply's status codes without its text, which may quote the address.

    The codes are the evidence the evaluation's bounce reasons are read from; the first
    enhanced code stays first, so they read the same.
    """
    found = _CODES.findall(reply or "")
    return " ".join(dict.fromkeys(found)) or None
