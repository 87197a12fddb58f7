"""The evaluation report's numbers: the reach funnel, letters, Altinn, code checks, feedback.

Everything is counted in businesses (units), as the campaign selected them, from the store's
own facts: delivery states, `verify_ok` events, document downloads and feedback answers. There
is no tracking, so only what recipients chose to do on our own pages is seen. The rendering to
HTML and PDF is in `evaluate_render`; docs/reports.md gives every definition.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass

from varsel.campaign import Campaign, get_campaign
from varsel.clock import utcnow_iso
from varsel.coverage import Coverage, coverage
from varsel.db import Database
from varsel.errors import N_
from varsel.feedback import Channel
from varsel.outbox import DeliveryState

# Comments shown in the report at most; the count of all is always given.
MAX_COMMENTS = 500


@dataclass(frozen=True)
class Funnel:
    """The e-mail path, in units: each step a subset of the one before, except `bounced`."""

    selected: int  # the campaign's frozen recipients
    on_record: int  # the registry's e-mail field holds something (usable or not)
    valid: int  # a usable address when the campaign was created
    accepted: int  # the relay accepted at least one of its e-mails
    bounced: int  # every e-mail the relay accepted came back (hard bounce or complaint)
    verified: int  # someone checked the code of one of its e-mails on the verify page
    downloaded: int  # its address fetched the document through a link from our page
    feedback: int  # feedback was given with the code of one of its e-mails

    @property
    def delivered(self) -> int:
        return self.accepted - self.bounced


@dataclass(frozen=True)
class ChannelStats:
    """Letters or Altinn, in units."""

    units: int  # units with at least one delivery on the channel
    sent: int  # letters produced, posted or returned; Altinn accepted (it has an Altinn id)
    arrived: int  # letters posted (not returned); Altinn delivered
    failed: int  # letters returned; Altinn failed
    verified: int  # the code of the letter or Altinn message was checked
    pending: int = 0  # letters produced, not yet posted; Altinn accepted, not yet delivered


@dataclass(frozen=True)
class CodeChecks:
    """Did recipients check the code before acting? See docs/reports.md for the definitions."""

    delivered: int  # units reached by e-mail
    verified: int  # of those, units whose code was checked
    downloaded: int  # units whose address fetched the document through our page
    downloaded_after_check: int  # ... whose code was checked before the first download
    answers: int  # feedback answers to the campaign
    answers_with_code: int  # ... sent from the verify page, i.e. after checking a code
    lookups: int  # successful code checks, every channel, repeats included
    downloads: int  # documents fetched through our page, by anyone
    email_lookups: int = 0  # successful checks of the codes of the campaign's e-mails only


@dataclass(frozen=True)
class Comment:
    """One free-text answer; possibly personal, shown escaped."""

    at: str
    language: str
    usefulness: int | None
    text: str


@dataclass(frozen=True)
class FeedbackSummary:
    """What the feedback form's answers say."""

    answers: int
    scores: Mapping[int, int]  # usefulness 1..5 → answers
    relevant_yes: int
    relevant_no: int
    channels: Mapping[str, int]  # preferred channel → answers
    comments_total: int
    comments: tuple[Comment, ...]  # the newest MAX_COMMENTS

    @property
    def scored(self) -> int:
        return sum(self.scores.values())

    @property
    def mean(self) -> float | None:
        n = self.scored
        return sum(k * v for k, v in self.scores.items()) / n if n else None


@dataclass(frozen=True)
class BounceReason:
    """E-mails that came back or were refused, by reason."""

    key: str
    label: str
    bounced: int  # came back after the relay accepted them
    refused: int  # the relay refused them for good at sending


@dataclass(frozen=True)
class Unsubscribes:
    """The campaign's e-mails whose recipients asked to get no more (page or one-click)."""

    emails: int  # e-mails whose unsubscribe link or address was used, each counted once
    address: int  # ... that stopped the address
    organisation: int  # ... that stopped the businesses
    one_click: int  # ... through the mail program's one-click button


@dataclass(frozen=True)
class Evaluation:
    """Everything the evaluation report shows about one campaign."""

    campaign: Campaign
    coverage: Coverage
    funnel: Funnel
    letters: ChannelStats
    altinn: ChannelStats
    checks: CodeChecks
    feedback: FeedbackSummary
    bounces: tuple[BounceReason, ...]  # e-mails returned (state bounced) or refused at sending
    auto_replies: int  # out-of-office and other automatic replies: not bounces
    generated_at: str
    delayed: tuple[BounceReason, ...] = ()  # e-mails refused for a while, not returned
    unsubscribes: Unsubscribes = Unsubscribes(0, 0, 0, 0)


# -- gathering --------------------------------------------------------------------------


def evaluate(db: Database, campaign_id: int) -> Evaluation:
    """Count everything the report shows for one campaign."""
    campaign = get_campaign(db, campaign_id)
    cov = coverage(db, campaign_id)
    per_unit = _per_unit(db, campaign_id)
    on_record, valid = _email_on_record(db, campaign_id)
    funnel = Funnel(
        selected=cov.units,
        on_record=on_record,
        valid=valid,
        accepted=per_unit["accepted"],
        bounced=per_unit["accepted"] - per_unit["delivered"],
        verified=per_unit["verified"],
        downloaded=per_unit["downloaded"],
        feedback=per_unit["feedback"],
    )
    letters = ChannelStats(
        units=per_unit["letter"],
        sent=per_unit["letter_sent"],
        arrived=per_unit["letter_posted"],
        failed=per_unit["letter_returned"],
        pending=per_unit["letter_produced"],
        verified=per_unit["letter_verified"],
    )
    altinn = ChannelStats(
        units=per_unit["altinn"],
        sent=per_unit["altinn_sent"],
        arrived=per_unit["altinn_delivered"],
        failed=per_unit["altinn_failed"],
        pending=per_unit["altinn_submitted"],
        verified=per_unit["altinn_verified"],
    )
    fb = _feedback(db, campaign_id)
    returned, delayed = _bounces(db, campaign_id)
    totals = _totals(db, campaign_id)
    checks = CodeChecks(
        delivered=per_unit["delivered"],
        verified=per_unit["delivered_verified"],
        downloaded=per_unit["downloaded"],
        downloaded_after_check=per_unit["checked_first"],
        answers=fb.answers,
        answers_with_code=totals["answers_with_code"],
        lookups=totals["lookups"],
        email_lookups=totals["email_lookups"],
        downloads=totals["downloads"],
    )
    return Evaluation(
        campaign=campaign,
        coverage=cov,
        funnel=funnel,
        letters=letters,
        altinn=altinn,
        checks=checks,
        feedback=fb,
        bounces=returned,
        delayed=delayed,
        unsubscribes=unsubscribes(db, campaign_id),
        auto_replies=auto_replies(db, campaign_id),
        generated_at=utcnow_iso(),
    )


_FLAGS = {
    "accepted": "d.channel = 'email' AND d.state IN ('sent', 'bounced')",
    "delivered": "d.channel = 'email' AND d.state = 'sent'",
    "verified": "d.channel = 'email' AND d.verified_at IS NOT NULL",
    "delivered_verified": "d.channel = 'email' AND d.state = 'sent' AND d.verified_at IS NOT NULL",
    "downloaded": "d.downloaded_at IS NOT NULL",
    "checked_first": "d.downloaded_at IS NOT NULL AND d.verified_at < d.downloaded_at",
    "feedback": "d.channel = 'email' AND d.fed = 1",
    "letter": "d.channel = 'letter'",
    "letter_sent": "d.channel = 'letter' AND d.state IN ('produced', 'posted', 'returned')",
    "letter_posted": "d.channel = 'letter' AND d.state = 'posted'",
    "letter_returned": "d.channel = 'letter' AND d.state = 'returned'",
    "letter_produced": "d.channel = 'letter' AND d.state = 'produced'",
    "letter_verified": "d.channel = 'letter' AND d.verified_at IS NOT NULL",
    "altinn": "d.channel = 'altinn'",
    # A submitted message without an Altinn id is only planned (a run with --limit, or cut
    # short): the request may never have gone out. One Altinn accepted and then failed to
    # publish (Failed, Reserved) keeps its id: it was sent, as a returned letter was.
    "altinn_sent": "d.channel = 'altinn' AND (d.state = 'delivered' "
    "OR d.state IN ('submitted', 'failed') AND d.message_id IS NOT NULL)",
    "altinn_delivered": "d.channel = 'altinn' AND d.state = 'delivered'",
    "altinn_failed": "d.channel = 'altinn' AND d.state = 'failed'",
    "altinn_submitted": "d.channel = 'altinn' AND d.state = 'submitted' "
    "AND d.message_id IS NOT NULL",
    "altinn_verified": "d.channel = 'altinn' AND d.verified_at IS NOT NULL",
}


def _per_unit(db: Database, campaign_id: int) -> dict[str, int]:
    """Each flag of `_FLAGS`, counted once per unit that has it on any of its deliveries."""
    flags = ", ".join(
        f"max(CASE WHEN {cond} THEN 1 ELSE 0 END) AS {name}" for name, cond in _FLAGS.items()
    )
    sums = ", ".join(f"coalesce(sum({name}), 0)" for name in _FLAGS)
    # Per delivery: its first successful check, the first download by its address (a download
    # is tied to a delivery only through the address the link was sent to), and whether a
    # feedback answer carried its code. Index lookups per delivery rather than joins of
    # aggregates: on tables loaded a moment ago, before PostgreSQL has statistics, a join plan
    # can recompute an aggregate for every delivery (minutes); this plan cannot.
    per_delivery = (
        "SELECT x.id AS id, x.channel AS channel, x.state AS state, x.message_id AS message_id, "
        "(SELECT min(e.at) FROM events e WHERE e.delivery_id = x.id "
        "AND e.kind = 'verify_ok') AS verified_at, "
        "CASE WHEN x.channel = 'email' THEN (SELECT min(q.downloaded_at) "
        "FROM document_requests q WHERE q.address = x.address "
        "AND q.campaign_id = x.campaign_id) END AS downloaded_at, "
        "CASE WHEN EXISTS (SELECT 1 FROM feedback f WHERE f.delivery_id = x.id) "
        "THEN 1 ELSE 0 END AS fed FROM deliveries x WHERE x.campaign_id = ?"
    )
    sql = (
        f"WITH pd AS ({per_delivery}), "
        "links AS (SELECT du.orgnr AS orgnr, x.id AS id FROM deliveries x "
        "JOIN delivery_units du ON du.delivery_id = x.id WHERE x.campaign_id = ? "
        "UNION SELECT x.address AS orgnr, x.id AS id FROM deliveries x "
        "WHERE x.campaign_id = ? AND x.channel IN ('letter', 'altinn')), "
        f"per_unit AS (SELECT l.orgnr, {flags} FROM links l JOIN pd d ON d.id = l.id "
        "JOIN recipients r ON r.campaign_id = ? AND r.orgnr = l.orgnr GROUP BY l.orgnr) "
        f"SELECT {sums} FROM per_unit"
    )
    row = db.query_one(sql, (campaign_id,) * 4)
    assert row is not None  # noqa: S101 - an aggregate always returns one row
    return {name: int(value) for name, value in zip(_FLAGS, row, strict=True)}


def _email_on_record(db: Database, campaign_id: int) -> tuple[int, int]:
    row = db.query_one(
        "SELECT coalesce(sum(CASE WHEN r.reach = 'email' OR EXISTS (SELECT 1 FROM contacts c "
        "WHERE c.orgnr = r.orgnr) THEN 1 ELSE 0 END), 0), "
        "coalesce(sum(CASE WHEN r.reach = 'email' THEN 1 ELSE 0 END), 0) "
        "FROM recipients r WHERE r.campaign_id = ?",
        (campaign_id,),
    )
    assert row is not None  # noqa: S101
    return int(row[0]), int(row[1])


def _totals(db: Database, campaign_id: int) -> dict[str, int]:
    row = db.query_one(
        "SELECT (SELECT count(*) FROM events WHERE campaign_id = ? AND kind = 'verify_ok'), "
        "(SELECT count(*) FROM events WHERE campaign_id = ? AND kind = 'document_downloaded'), "
        "(SELECT count(*) FROM feedback WHERE campaign_id = ? AND delivery_id IS NOT NULL), "
        "(SELECT count(*) FROM events e JOIN deliveries d ON d.id = e.delivery_id "
        "WHERE e.campaign_id = ? AND e.kind = 'verify_ok' AND d.channel = 'email')",
        (campaign_id,) * 4,
    )
    assert row is not None  # noqa: S101
    return {
        "lookups": int(row[0]),
        "downloads": int(row[1]),
        "answers_with_code": int(row[2]),
        "email_lookups": int(row[3]),
    }


def unsubscribes(db: Database, campaign_id: int) -> Unsubscribes:
    """The `unsubscribed` events of the campaign's deliveries, each e-mail counted once.

    The event's detail says what was stopped (scope) and whether the one-click button did it;
    an event without detail counts only in the total.
    """
    scopes: dict[int, set[str]] = {}
    one_click: set[int] = set()
    for delivery_id, detail in db.query(
        "SELECT e.delivery_id, e.detail FROM events e JOIN deliveries d ON d.id = e.delivery_id "
        "WHERE d.campaign_id = ? AND e.kind = 'unsubscribed'",
        (campaign_id,),
    ):
        seen = scopes.setdefault(int(delivery_id), set())
        try:
            facts = json.loads(detail) if detail else {}
        except ValueError:
            facts = {}
        if not isinstance(facts, dict):
            continue
        if isinstance(facts.get("scope"), str):
            seen.add(facts["scope"])
        if facts.get("one_click") is True:
            one_click.add(int(delivery_id))
    return Unsubscribes(
        emails=len(scopes),
        address=sum(1 for s in scopes.values() if "address" in s),
        organisation=sum(1 for s in scopes.values() if "organisation" in s),
        one_click=len(one_click),
    )


def _feedback(db: Database, campaign_id: int) -> FeedbackSummary:
    scores = dict.fromkeys(range(1, 6), 0)
    answers = 0
    relevant_yes = relevant_no = 0
    channels = {c.value: 0 for c in Channel}
    for usefulness, relevant, channel, n in db.query(
        "SELECT usefulness, relevant, channel, count(*) FROM feedback WHERE campaign_id = ? "
        "GROUP BY usefulness, relevant, channel",
        (campaign_id,),
    ):
        count = int(n)
        answers += count
        if usefulness in scores:
            scores[int(usefulness)] += count
        if relevant is not None:
            if bool(relevant):
                relevant_yes += count
            else:
                relevant_no += count
        if channel:
            channels[channel] = channels.get(channel, 0) + count
    comments_total = int(
        db.scalar(
            "SELECT count(*) FROM feedback WHERE campaign_id = ? AND comment IS NOT NULL "
            "AND comment <> ''",
            (campaign_id,),
        )
        or 0
    )
    comments = tuple(
        Comment(str(at), str(language), None if u is None else int(u), str(text))
        for at, language, u, text in db.query(
            "SELECT at, language, usefulness, comment FROM feedback WHERE campaign_id = ? "
            "AND comment IS NOT NULL AND comment <> '' ORDER BY at DESC, id DESC LIMIT ?",
            (campaign_id, MAX_COMMENTS),
        )
    )
    return FeedbackSummary(
        answers, scores, relevant_yes, relevant_no, channels, comments_total, comments
    )


# -- bounce reasons -----------------------------------------------------------------------

_STATUS = re.compile(r"\b([245])\.(\d{1,3})\.(\d{1,3})\b")
_BOUNCE_LABELS = {
    "mailbox": N_("Mottakeradressen finnes ikke"),
    "domain": N_("Domenet finnes ikke eller tar ikke imot e-post"),
    "full": N_("Innboksen er full"),
    "disabled": N_("Innboksen er stengt eller sperret"),
    "policy": N_("Avvist av mottakerens regler (søppelpostfilter, sikkerhet)"),
    "complaint": N_("Mottakeren merket e-posten som søppelpost"),
    "network": N_("Nettverk eller ruting hos mottakeren"),
    "system": N_("Feil i mottakerens e-postsystem"),
    "content": N_("Innholdet ble avvist"),
    "temporary": N_("Midlertidig feil som aldri gikk over"),
    "other": N_("Annen eller ukjent årsak"),
}


def bounce_reason(text: str | None, *, complaint: bool = False) -> str:
    """A reason key for a bounce or refusal, from its enhanced status code (RFC 3463)."""
    if complaint:
        return "complaint"
    found = _STATUS.search(text or "")
    if found is None:
        return "other"
    klass, subject, detail = found.groups()
    specific = {
        ("1", "1"): "mailbox",
        ("1", "2"): "domain",
        ("1", "10"): "domain",
        ("2", "2"): "full",
        ("2", "1"): "disabled",
    }.get((subject, detail))
    if specific:
        return specific
    if klass == "4":
        return "temporary"
    by_subject = {"1": "mailbox", "2": "disabled", "3": "system", "4": "network", "6": "content"}
    return by_subject.get(subject, "policy" if subject == "7" else "other")


# When one e-mail got several reports, the one that says most about it gives the reason.
_REPORT_RANK = {"complaint": 0, "hard": 1, "policy": 2, "soft": 3}


def _bounces(
    db: Database, campaign_id: int
) -> tuple[tuple[BounceReason, ...], tuple[BounceReason, ...]]:
    """Reasons for the e-mails returned or refused at sending, and for those only delayed.

    Returned is what the delivery's state says: `bounced` (a hard bounce or a complaint). A
    report on an e-mail that is not bounced (a full inbox, a temporary refusal) is a delay:
    the e-mail may have arrived later, and it is still counted as sent. Counted in e-mails,
    each once, by its most telling report.
    """
    reports: dict[int, tuple[int, str, bool]] = {}
    for delivery_id, kind, status, state in db.query(
        "SELECT b.delivery_id, b.kind, b.status, d.state FROM bounce_messages b "
        "JOIN deliveries d ON d.id = b.delivery_id WHERE d.campaign_id = ? AND b.kind IN "
        "('hard', 'soft', 'policy', 'complaint')",
        (campaign_id,),
    ):
        key = bounce_reason(status, complaint=kind == "complaint")
        if key == "other":
            key = {"soft": "temporary", "policy": "policy"}.get(kind, key)
        rank = _REPORT_RANK[str(kind)]
        known = reports.get(int(delivery_id))
        if known is None or rank < known[0]:
            reports[int(delivery_id)] = (rank, key, state == DeliveryState.BOUNCED.value)
    returned: dict[str, list[int]] = {}
    delayed: dict[str, list[int]] = {}
    for _, key, bounced in reports.values():
        (returned if bounced else delayed).setdefault(key, [0, 0])[0] += 1
    for (reply,) in db.query(
        "SELECT last_reply FROM deliveries WHERE campaign_id = ? AND channel = 'email' "
        "AND state = ?",
        (campaign_id, DeliveryState.FAILED.value),
    ):
        returned.setdefault(bounce_reason(reply), [0, 0])[1] += 1
    return _reasons(returned), _reasons(delayed)


def _reasons(counts: dict[str, list[int]]) -> tuple[BounceReason, ...]:
    order = list(_BOUNCE_LABELS)
    return tuple(
        BounceReason(k, _BOUNCE_LABELS[k], b, r)
        for k, (b, r) in sorted(counts.items(), key=lambda kv: (-sum(kv[1]), order.index(kv[0])))
    )


def auto_replies(db: Database, campaign_id: int) -> int:
    """Automatic replies (out of office and the like) to the campaign's e-mails."""
    return int(
        db.scalar(
            "SELECT count(*) FROM bounce_messages b JOIN deliveries d ON d.id = b.delivery_id "
            "WHERE d.campaign_id = ? AND b.kind = 'auto_reply'",
            (campaign_id,),
        )
        or 0
    )
