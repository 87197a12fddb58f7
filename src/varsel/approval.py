"""Four-eyes approval: no campaign is sent unless someone other than its author approved it.

An approval binds a SHA-256 fingerprint of everything that shapes what recipients get: the
templates in every language, the sender, the document (and the file's own hash), the link
rules and public address, the selection (criteria, snapshot) and a digest of the frozen
recipient list and of the e-mail deliveries (addresses, languages, codes). The send limits
are left out: slowing a campaign down changes nothing anyone receives. At send time (the gate
in send_gate.py) the fingerprint is computed again; any difference voids the approval, and the
message says which part changed. An approval also stops holding once its approver's account
is disabled or loses the approver role (a stolen account is disabled: what it approved must
not go out on its word), and stays void if the account is enabled or promoted again.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from varsel import audit
from varsel.accounts import Lapse, Role, User, lapse, require_role
from varsel.campaign import STATUS_WORDS, Campaign, CampaignStatus, get_campaign
from varsel.clock import utcnow_iso
from varsel.config import Settings
from varsel.db import Database
from varsel.errors import N_, Text, UserError, listed

# The parts of a fingerprint, in order, with the words a message uses for each.
PARTS = {
    "templates": N_("malene"),
    "sender": N_("avsenderen"),
    "document": N_("dokumentet"),
    "links": N_("lenkereglene"),
    "selection": N_("utvalget"),
    "other": N_("andre felt i definisjonen"),
    "recipients": N_("mottakerlisten"),
    "deliveries": N_("leveranselisten"),
}
_SPEC_PARTS = {
    "templates": ("templates",),
    "sender": (
        "from_address",
        "from_name",
        "organisation",
        "reply_to",
        "dkim_selector",
        "dkim_ed25519",
    ),
    "document": ("document_title", "document_url", "document_file"),
    "links": ("allow_links", "allowed_link_domains", "public_base_url"),
    "selection": ("criteria", "per_unit"),
}
UNBOUND = ("limits",)  # how fast and when: does not change what anyone receives
# Why an approval no longer holds on its approver's side (accounts.lapse): a stolen account is
# disabled, and what it approved must not go out on its word.
LAPSES = {
    Lapse.MISSING: N_("godkjenneren %(user)s finnes ikke lenger"),
    Lapse.DISABLED: N_("godkjenneren %(user)s er deaktivert"),
    Lapse.ROLE: N_("godkjenneren %(user)s har ikke lenger en rolle som kan godkjenne"),
    Lapse.WAS_DISABLED: N_("godkjenneren %(user)s har vært deaktivert etter godkjenningen"),
    Lapse.WAS_DEMOTED: N_("godkjenneren %(user)s har mistet godkjennerrollen etter godkjenningen"),
}


class ApprovalError(UserError):
    """The campaign cannot be approved or sent as asked."""


class NotApproved(ApprovalError):
    """The campaign has no approval that still holds."""


class StaleDigest(ApprovalError):
    """The campaign changed after the approver saw its fingerprint."""


@dataclass(frozen=True)
class Fingerprint:
    """The digest of a campaign as recipients would get it, and of each of its parts."""

    digest: str
    parts: dict[str, str]

    def changed_since(self, other: dict[str, str]) -> list[str]:
        """The parts that differ from an earlier fingerprint's parts."""
        return [p for p in PARTS if self.parts.get(p) != other.get(p)]


@dataclass(frozen=True)
class Approval:
    """One approval as given; it holds while the campaign's fingerprint equals `digest`."""

    id: int
    campaign_id: int
    approved_by: str
    approved_at: str
    digest: str
    parts: dict[str, str]

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "campaign_id": self.campaign_id,
            "approved_by": self.approved_by,
            "approved_at": self.approved_at,
            "digest": self.digest,
        }


@dataclass(frozen=True)
class ApprovalState:
    """For the console: who wrote the campaign, its latest approval and whether it holds."""

    campaign_id: int
    author: str | None
    approval: Approval | None
    fingerprint: Fingerprint
    changed: tuple[str, ...]  # parts changed since the approval (empty when it holds)
    editors: frozenset[str] = frozenset()  # who changed its definition: none of them may approve
    lapsed: Text | None = None  # why the approver no longer stands behind it (LAPSES), if so

    @property
    def approved(self) -> bool:
        return self.approval is not None and not self.changed and self.lapsed is None


def _canonical(value: Any) -> bytes:
    return json.dumps(
        value, ensure_ascii=False, sort_keys=True, separators=(",", ":"), default=str
    ).encode("utf-8")


def _sha(value: Any) -> str:
    return hashlib.sha256(_canonical(value)).hexdigest()


def fingerprint(db: Database, campaign_id: int) -> Fingerprint:
    """The fingerprint of a campaign as it is in the store now."""
    row = db.query_one(
        "SELECT spec, criteria, snapshot_id, per_unit FROM campaigns WHERE id = ?", (campaign_id,)
    )
    if row is None:
        get_campaign(db, campaign_id)  # raises the usual "finnes ikke"
        raise AssertionError("unreachable")
    spec = json.loads(row[0])
    parts: dict[str, str] = {}
    for part, keys in _SPEC_PARTS.items():
        chosen = {k: spec.pop(k, None) for k in keys}
        if part == "document":
            chosen["file_sha256"] = _file_sha256(chosen["document_file"])
        if part == "selection":
            # The store's own columns too: they are what recipients were frozen from.
            chosen["stored"] = [json.loads(row[1]), int(row[2]), bool(row[3])]
        parts[part] = _sha(chosen)
    for key in UNBOUND:
        spec.pop(key, None)
    # Anything not named above (a field added later) is bound too, rather than forgotten.
    parts["other"] = _sha(spec)
    parts["recipients"] = _recipients_digest(db, campaign_id)
    parts["deliveries"] = _deliveries_digest(db, campaign_id)
    return Fingerprint(_sha(parts), parts)


def _file_sha256(path: str | None) -> str | None:
    if path is None:
        return None
    try:
        return hashlib.sha256(Path(path).read_bytes()).hexdigest()
    except OSError:
        return "missing"


def _recipients_digest(db: Database, campaign_id: int) -> str:
    h = hashlib.sha256()
    cursor = db.execute(
        "SELECT orgnr, name, form, municipality, employees, has_employees, nace1, sector, "
        "language, reach FROM recipients WHERE campaign_id = ? ORDER BY orgnr",
        (campaign_id,),
    )
    while batch := cursor.fetchmany(5000):
        for r in batch:
            h.update(_canonical([*r[:5], bool(r[5]), *r[6:]]) + b"\n")
    return h.hexdigest()


def _deliveries_digest(db: Database, campaign_id: int) -> str:
    # The e-mail deliveries `campaign send` sends. Letters and Altinn messages are made later,
    # for frozen recipients e-mail did not reach, by use cases of their own; binding them here
    # would void the approval of a campaign whose e-mail retries are still running.
    # Ordered by id (the order they were made in) so both stores agree without collations.
    h = hashlib.sha256()
    cursor = db.execute(
        "SELECT d.id, d.channel, d.key, d.address, d.language, d.code, d.unsubscribe_token, "
        "du.orgnr FROM deliveries d LEFT JOIN delivery_units du ON du.delivery_id = d.id "
        "WHERE d.campaign_id = ? AND d.channel = 'email' ORDER BY d.id, du.orgnr",
        (campaign_id,),
    )
    current: list[Any] | None = None
    current_id = None
    while batch := cursor.fetchmany(5000):
        for r in batch:
            if r[0] != current_id:
                if current is not None:
                    h.update(_canonical(current) + b"\n")
                current_id, current = r[0], [*r[1:7], []]
            if r[7] is not None and current is not None:
                current[-1].append(r[7])
    if current is not None:
        h.update(_canonical(current) + b"\n")
    return h.hexdigest()


# -- approving ----------------------------------------------------------------------------


def latest_approval(db: Database, campaign_id: int) -> Approval | None:
    """The campaign's most recent approval, whether or not it still holds."""
    row = db.query_one(
        "SELECT id, campaign_id, approved_by, approved_at, digest, parts FROM approvals "
        "WHERE campaign_id = ? ORDER BY id DESC LIMIT 1",
        (campaign_id,),
    )
    if row is None:
        return None
    return Approval(int(row[0]), int(row[1]), row[2], row[3], row[4], json.loads(row[5]))


def editors(db: Database, campaign_id: int) -> frozenset[str]:
    """Who changed the campaign's definition (the audit log's record; a save that changed
    nothing is no change)."""
    found = set()
    for actor, detail in db.query(
        "SELECT actor, detail FROM audit_log WHERE action = ? AND object = ?",
        (audit.Action.CAMPAIGN_EDIT.value, f"campaign:{campaign_id}"),
    ):
        try:
            changed = json.loads(detail or "{}").get("changed", True)
        except (ValueError, AttributeError):
            changed = True  # a record that cannot be read counts as a change
        if changed:
            found.add(str(actor))
    return frozenset(found)


def approval_state(db: Database, campaign_id: int) -> ApprovalState:
    """Who wrote the campaign, its latest approval, and what changed since."""
    campaign = get_campaign(db, campaign_id)
    approval = latest_approval(db, campaign_id)
    now = fingerprint(db, campaign_id)
    changed = tuple(now.changed_since(approval.parts)) if approval else ()
    if approval and not changed and now.digest != approval.digest:
        changed = tuple(PARTS)  # the parts were stored wrongly: trust only the whole digest
    return ApprovalState(
        campaign_id,
        campaign.created_by,
        approval,
        now,
        changed,
        editors(db, campaign_id),
        lapsed(db, approval) if approval else None,
    )


def lapsed(db: Database, approval: Approval) -> Text | None:
    """Why the approver no longer stands behind the approval (disabled, demoted); else None."""
    why = lapse(db, approval.approved_by, Role.APPROVER, since_seq=_approval_seq(db, approval))
    return None if why is None else Text(LAPSES[why], user=approval.approved_by)


def _approval_seq(db: Database, approval: Approval) -> int:
    """The audit entry that recorded the approval (approve writes it in the same transaction)."""
    for seq, detail in db.query(
        "SELECT seq, detail FROM audit_log WHERE action = ? AND object = ? ORDER BY seq DESC",
        (audit.Action.CAMPAIGN_APPROVE.value, f"campaign:{approval.campaign_id}"),
    ):
        if json.loads(detail or "{}").get("approval") == approval.id:
            return int(seq)
    # Not found (an approval stored otherwise): the entries written before its time.
    before = db.scalar("SELECT max(seq) FROM audit_log WHERE at < ?", (approval.approved_at,))
    return int(before or 0)


def approve(
    db: Database,
    settings: Settings,
    campaign_id: int,
    approver: User,
    *,
    expected_digest: str | None = None,
) -> Approval:
    """Approve a campaign as it is now: the approver must not be its author, and lint must pass.

    With `expected_digest` (the fingerprint the approver was shown) the approval is given only
    if the campaign still has that fingerprint, checked in the transaction that stores it: what
    is approved is exactly what was seen. StaleDigest otherwise, and nothing is stored.
    """
    from varsel.lint import lint_campaign

    expected = None if expected_digest is None else check_digest(expected_digest, campaign_id)
    campaign = get_campaign(db, campaign_id)
    require_role(approver, Role.APPROVER)
    _refuse_unapprovable(campaign)
    if campaign.created_by == approver.name:
        raise ApprovalError(
            Text(
                "%(user)s skrev kampanje %(campaign)s og kan ikke godkjenne den selv; "
                "en annen godkjenner må gjøre det",
                user=approver.name,
                campaign=campaign_id,
            )
        )
    if approver.name in editors(db, campaign_id):
        # Four eyes means someone who wrote none of it: an approver who changed the templates
        # or the sender (the console lets an approver edit) has written part of what would go.
        raise ApprovalError(
            Text(
                "%(user)s har endret kampanje %(campaign)s og kan ikke godkjenne den selv; "
                "en annen godkjenner, som ikke har skrevet eller endret den, må gjøre det",
                user=approver.name,
                campaign=campaign_id,
            )
        )
    if expected is not None:
        # Early as well, so that a stale page is told so rather than linted; the check that
        # binds is the one below, in the transaction that stores the approval.
        _require_digest(fingerprint(db, campaign_id), expected, campaign_id)
    report = lint_campaign(db, settings, campaign_id, actor=approver.name)
    if not report.ok:
        raise ApprovalError(
            Text(
                "kampanje %(campaign)s har %(errors)s feil i lint og kan ikke godkjennes; "
                "se «varsel campaign lint %(campaign)s»",
                campaign=campaign_id,
                errors=report.errors,
            )
        )
    with db.transaction():
        # Inside the transaction: an edit cannot slip in between fingerprint and approval.
        # SQLite's transaction holds the write lock already; on PostgreSQL the campaign's row
        # lock makes an edit (an UPDATE of that row) wait until this approval is stored.
        if db.dialect == "postgresql":
            db.execute("SELECT id FROM campaigns WHERE id = ? FOR UPDATE", (campaign_id,))
        now = fingerprint(db, campaign_id)
        if expected is not None:
            _require_digest(now, expected, campaign_id)
        _refuse_approved_again(db, campaign_id, now)
        at = utcnow_iso()
        approval_id = int(
            db.execute(
                "INSERT INTO approvals (campaign_id, approved_by, approved_at, digest, parts) "
                "VALUES (?, ?, ?, ?, ?) RETURNING id",
                (campaign_id, approver.name, at, now.digest, json.dumps(now.parts)),
            ).fetchone()[0]
        )
        audit.record(
            db,
            approver.name,
            audit.Action.CAMPAIGN_APPROVE,
            f"campaign:{campaign_id}",
            {"approval": approval_id, "author": campaign.created_by, "digest": now.digest},
        )
    return Approval(approval_id, campaign_id, approver.name, at, now.digest, now.parts)


def check_approvable(db: Database, campaign_id: int) -> None:
    """Refuse what no approver could approve now (no such campaign, none to approve, or
    approved as it is): the command line asks before anyone types a password and a code."""
    campaign = get_campaign(db, campaign_id)
    _refuse_unapprovable(campaign)
    _refuse_approved_again(db, campaign_id, fingerprint(db, campaign_id))


def _refuse_unapprovable(campaign: Campaign) -> None:
    if campaign.created_by is None:
        raise ApprovalError(
            Text(
                "kampanje %(campaign)s har ingen registrert forfatter og kan ikke godkjennes; "
                "opprett den på nytt med «varsel campaign create FIL --user NAVN»",
                campaign=campaign.id,
            )
        )
    if campaign.status in (CampaignStatus.CANCELLED, CampaignStatus.DONE):
        raise ApprovalError(
            Text(
                "kampanje %(campaign)s er «%(status)s» og kan ikke godkjennes",
                campaign=campaign.id,
                status=STATUS_WORDS[campaign.status],
            )
        )


def _refuse_approved_again(db: Database, campaign_id: int, now: Fingerprint) -> None:
    latest = latest_approval(db, campaign_id)
    # An approval whose approver was disabled since is no approval: the campaign needs another.
    if latest is not None and latest.digest == now.digest and lapsed(db, latest) is None:
        raise ApprovalError(
            Text(
                "kampanje %(campaign)s er allerede godkjent av %(user)s (%(at)s UTC)",
                campaign=campaign_id,
                user=latest.approved_by,
                at=latest.approved_at[:16].replace("T", " "),
            )
        )


def check_digest(value: str, campaign_id: int) -> str:
    """A fingerprint as typed, in lower case; ApprovalError if it is not one."""
    digest = value.strip().lower()
    if not re.fullmatch(r"[0-9a-f]{64}", digest):
        raise ApprovalError(
            Text(
                "fingeravtrykket «%(digest)s» er ikke gyldig: det har 64 tegn 0–9 og a–f "
                "(varsel campaign approve %(campaign)s --show viser det)",
                digest=value.strip()[:70],
                campaign=campaign_id,
            )
        )
    return digest


def _require_digest(now: Fingerprint, expected: str, campaign_id: int) -> None:
    if not hmac.compare_digest(now.digest, expected):
        raise StaleDigest(
            Text(
                "kampanje %(campaign)s er endret siden fingeravtrykket ble vist: det er nå "
                "%(now)s…, ikke %(expected)s…; se over kampanjen på nytt før du godkjenner den",
                campaign=campaign_id,
                now=now.digest[:16],
                expected=expected[:16],
            )
        )


def require_approved(db: Database, campaign_id: int) -> Approval:
    """The approval that holds for the campaign as it is now; NotApproved if there is none."""
    state = approval_state(db, campaign_id)
    why = not_approved(state)
    if why is not None or state.approval is None:
        raise NotApproved(why)
    return state.approval


def not_approved(state: ApprovalState) -> Text | None:
    """Why no approval holds for the campaign (NotApproved's message); None if one does."""
    campaign_id = state.campaign_id
    if state.approval is None:
        return Text(
            "kampanje %(campaign)s er ikke godkjent: en godkjenner som ikke skrev den må "
            "godkjenne den først (varsel campaign approve %(campaign)s --user NAVN)",
            campaign=campaign_id,
        )
    if state.lapsed is not None:
        return Text(
            "godkjenningen av kampanje %(campaign)s gjelder ikke lenger: %(why)s; "
            "den må godkjennes på nytt",
            campaign=campaign_id,
            why=state.lapsed,
        )
    if state.changed:
        return Text(
            "godkjenningen av kampanje %(campaign)s gjelder ikke lenger: %(parts)s er endret "
            "etter at %(user)s godkjente den; den må godkjennes på nytt",
            campaign=campaign_id,
            parts=listed([Text(PARTS[p]) for p in state.changed]),
            user=state.approval.approved_by,
        )
    return None
