"""The Altinn channel: messages in the Altinn inbox of units e-mail did not reach.

Who: the campaign's recipients that `bounces.units_needing_another_channel` names (no usable
e-mail address, or every e-mail hard-bounced or failed for the address), except units that
asked not to be contacted and units no longer in the registry.

Each gets one delivery of channel `altinn` (key and address: the orgnr) with its own
verification code, written as `submitted` before anything is sent. Its Altinn id
(`message_id`) is stored when Altinn accepts it: until then, "submitted" means "the request
may have reached Altinn". The e-mail sender never claims these rows (it takes queued and
deferred ones only), and a new run sends every submitted delivery without an Altinn id again
with the same idempotent key, derived from the delivery: Altinn answers 409 for a key it has
seen, and the correspondence is then looked up by its key. So a crash at any moment never
makes a second correspondence.

`poll` asks Altinn for each accepted correspondence's status: published or anything after it
(fetched, read, confirmed …) makes the delivery `delivered`; Failed or Reserved make it `failed`.

Both keep up to `altinn_concurrency` requests in flight, the first alone (`in_flight`). Only the
HTTP requests run on a thread pool: the store stays on the calling thread, which stamps each
delivery before its request is handed over (`send`) and records each outcome (an accepted or
refused correspondence, a status) as its request completes.
"""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from functools import partial
from typing import Any, TypeVar

from varsel import codes
from varsel.altinn_client import (
    AltinnClient,
    AltinnConfig,
    AltinnError,
    AltinnRejected,
    AltinnStatus,
    AltinnUnavailable,
    Created,
    failure_text,
)
from varsel.altinn_message import AltinnTexts, request_body
from varsel.bounces import units_needing_another_channel
from varsel.campaign import STATUS_WORDS, CampaignSpec, CampaignStatus, get_campaign
from varsel.clock import utcnow_iso
from varsel.config import Settings
from varsel.db import Database
from varsel.i18n import fmt_count
from varsel.letters import new_delivery
from varsel.outbox import DeliveryState, record_event
from varsel.retention import forgotten_at
from varsel.suppression import SuppressionKind

CHANNEL = "altinn"
# Published and every later status: the message is in the organisation's inbox.
DELIVERED = frozenset(
    {
        AltinnStatus.PUBLISHED,
        AltinnStatus.FETCHED,
        AltinnStatus.READ,
        AltinnStatus.REPLIED,
        AltinnStatus.CONFIRMED,
        AltinnStatus.ARCHIVED,
        AltinnStatus.ATTACHMENTS_DOWNLOADED,
    }
)
FAILED = frozenset({AltinnStatus.FAILED, AltinnStatus.RESERVED})
PURGED = frozenset({AltinnStatus.PURGED_BY_ALTINN, AltinnStatus.PURGED_BY_RECIPIENT})
_Req = TypeVar("_Req")  # a request `in_flight` hands to a pool thread
_Res = TypeVar("_Res")  # what the pool thread makes of it

# -- who gets one ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Candidate:
    """A recipient e-mail did not reach, and its Altinn delivery if it has one."""

    orgnr: str
    name: str
    language: str
    reason: str  # no_email | bounced
    present: bool  # still in the registry (not gone, not deleted)
    suppressed: bool  # the unit asked not to be contacted
    delivery_id: int | None
    state: DeliveryState | None
    altinn_id: str | None


def candidates(db: Database, campaign_id: int) -> list[Candidate]:
    """Every recipient of the campaign that needs another channel than e-mail, by orgnr."""
    needing = set(units_needing_another_channel(db, campaign_id))
    rows = db.query(
        "SELECT r.orgnr, r.name, r.language, "
        "CASE WHEN u.orgnr IS NULL OR u.gone_snapshot_id IS NOT NULL "
        "OR u.deleted_date IS NOT NULL THEN 0 ELSE 1 END, "
        "CASE WHEN s.value IS NULL THEN 0 ELSE 1 END, "
        "CASE WHEN EXISTS (SELECT 1 FROM delivery_units du JOIN deliveries d "
        "ON d.id = du.delivery_id WHERE du.orgnr = r.orgnr AND d.campaign_id = r.campaign_id "
        "AND d.channel = 'email') THEN 1 ELSE 0 END, "
        "a.id, a.state, a.message_id "
        "FROM recipients r LEFT JOIN units u ON u.orgnr = r.orgnr "
        "LEFT JOIN deliveries a ON a.campaign_id = r.campaign_id AND a.channel = ? "
        "AND a.key = r.orgnr "
        "LEFT JOIN suppressions s ON s.kind = ? AND s.value = r.orgnr "
        "WHERE r.campaign_id = ? ORDER BY r.orgnr",
        (CHANNEL, SuppressionKind.UNIT.value, campaign_id),
    )
    return [
        Candidate(
            orgnr=r[0],
            name=r[1],
            language=r[2],
            reason="bounced" if r[5] else "no_email",
            present=bool(r[3]),
            suppressed=bool(r[4]),
            delivery_id=None if r[6] is None else int(r[6]),
            state=None if r[7] is None else DeliveryState(r[7]),
            altinn_id=r[8],
        )
        for r in rows
        if r[0] in needing
    ]


# -- sending --------------------------------------------------------------------------------


@dataclass(frozen=True)
class SendRun:
    """What one `varsel altinn send` did."""

    campaign_id: int
    submitted: int  # accepted by Altinn in this run
    failed: int  # refused by Altinn for the recipient (not registered, reserved, roles)
    waiting: int  # not yet accepted: to be sent again by the next run
    suppressed: int  # units that asked not to be contacted
    not_in_registry: int  # units gone from the registry since the campaign was made
    before: int  # units whose Altinn delivery was settled by an earlier run
    interrupted: str | None = None  # why the run stopped early (Altinn unavailable)

    def summary(self) -> str:
        if self.submitted:
            them = "den" if self.submitted == 1 else "de"
            first = (
                f"Kampanje {self.campaign_id}: "
                f"{fmt_count(self.submitted, 'melding', 'meldinger')} tatt imot av Altinn; "
                f"«varsel altinn poll {self.campaign_id}» viser når {them} er publisert."
            )
        else:
            first = f"Kampanje {self.campaign_id}: ingen nye meldinger sendt til Altinn."
        lines = [first]
        if self.failed:
            lines.append(
                f"{fmt_count(self.failed, 'enhet', 'enheter')} kan ikke få melding i Altinn "
                f"(se «varsel altinn status {self.campaign_id}»)."
            )
        if self.suppressed:
            who = fmt_count(self.suppressed, "enhet", "enheter")
            lines.append(f"{who} har bedt om ikke å bli kontaktet.")
        if self.not_in_registry:
            gone = fmt_count(self.not_in_registry, "enhet", "enheter")
            lines.append(f"{gone} er ikke lenger i registeret.")
        if self.before:
            earlier = fmt_count(self.before, "enhet", "enheter")
            lines.append(f"{earlier} fikk Altinn-melding i en tidligere kjøring.")
        if self.interrupted:
            lines.append(f"Stoppet: {self.interrupted}")
        if self.waiting:
            them = "den" if self.waiting == 1 else "de"
            lines.append(
                f"{fmt_count(self.waiting, 'melding', 'meldinger')} venter; kjør «varsel altinn "
                f"send {self.campaign_id}» igjen ({them} sendes med samme nøkkel og kommer ikke "
                "dobbelt)."
            )
        return "\n".join(lines)

    def as_dict(self) -> dict[str, Any]:
        return {
            "campaign_id": self.campaign_id,
            "submitted": self.submitted,
            "failed": self.failed,
            "waiting": self.waiting,
            "suppressed": self.suppressed,
            "not_in_registry": self.not_in_registry,
            "before": self.before,
            "interrupted": self.interrupted,
        }


@dataclass(frozen=True)
class _Pending:
    delivery_id: int
    orgnr: str
    name: str
    language: str
    code: str
    reason: str


def _open_campaign(db: Database, campaign_id: int) -> CampaignSpec:
    campaign = get_campaign(db, campaign_id)
    if campaign.status in (CampaignStatus.CANCELLED, CampaignStatus.PAUSED):
        raise AltinnError(
            f"kampanje {campaign_id} er «{STATUS_WORDS[campaign.status]}»; "
            "det sendes ingenting i Altinn"
        )
    if forgotten_at(db, campaign_id) is not None:
        # Who needs Altinn is read from the e-mail replies and addresses forget erased.
        raise AltinnError(
            f"kampanje {campaign_id} har glemt kontaktopplysningene sine, så det kan ikke "
            "lenger avgjøres hvem som trenger Altinn; send i Altinn før «campaign forget»"
        )
    return campaign.spec


def _plan(db: Database, campaign_id: int, found: Sequence[Candidate], texts: AltinnTexts) -> None:
    """Write a submitted delivery (without an Altinn id) for each unit that has none yet.

    A delivery Altinn has not accepted yet (a run with --limit, or one cut short) is held back
    as suppressed while its unit asks not to be contacted, and made sendable again after.
    """
    new = [c for c in found if c.delivery_id is None and c.present and not c.suppressed]
    unsent = [c for c in found if c.delivery_id is not None and c.altinn_id is None]
    hold = [c for c in unsent if c.suppressed and c.state is DeliveryState.SUBMITTED]
    free = [c for c in unsent if not c.suppressed and c.state is DeliveryState.SUPPRESSED]
    for language in sorted({c.language for c in new}):
        # A text that cannot be made is found before anything is stored.
        sample = next(c for c in new if c.language == language)
        texts.render(
            sample.orgnr, sample.name, language, codes.new_code().replace("-", ""), "no_email"
        )
    now = utcnow_iso()
    with db.transaction():
        for c in new:
            code = codes.new_code().replace("-", "")  # the canonical form the store keeps
            delivery_id = new_delivery(
                db,
                campaign_id,
                c.orgnr,
                c.language,
                DeliveryState.SUBMITTED,
                code,
                now,
                channel=CHANNEL,
            )
            record_event(db, campaign_id, delivery_id, "altinn_planned", {"reason": c.reason})
        for c, state, event in [
            *((c, DeliveryState.SUPPRESSED, "altinn_suppressed") for c in hold),
            *((c, DeliveryState.SUBMITTED, "altinn_planned") for c in free),
        ]:
            db.execute(
                "UPDATE deliveries SET state = ?, updated_at = ? WHERE id = ?",
                (state.value, now, c.delivery_id),
            )
            record_event(db, campaign_id, c.delivery_id, event, {"reason": c.reason})


def _pending(db: Database, campaign_id: int, reasons: dict[str, str]) -> list[_Pending]:
    rows = db.query(
        "SELECT d.id, d.key, coalesce(r.name, d.key), d.language, d.code FROM deliveries d "
        "LEFT JOIN recipients r ON r.campaign_id = d.campaign_id AND r.orgnr = d.key "
        "WHERE d.campaign_id = ? AND d.channel = ? AND d.state = ? AND d.message_id IS NULL "
        "ORDER BY d.id",
        (campaign_id, CHANNEL, DeliveryState.SUBMITTED.value),
    )
    return [
        _Pending(int(r[0]), r[1], r[2], r[3], r[4], reasons.get(r[1], "no_email")) for r in rows
    ]


def send(
    db: Database,
    settings: Settings,
    campaign_id: int,
    *,
    client: AltinnClient | None = None,
    limit: int | None = None,
    concurrency: int | None = None,
    progress: Callable[[int], None] | None = None,
) -> SendRun:
    """Send the campaign's Altinn messages that have not been accepted yet.

    Up to `concurrency` requests (default: the altinn_concurrency setting) are in flight at
    once, the first alone; the store is used from the calling thread only.
    """
    with client_for(settings, client) as http:
        return _send(db, http, campaign_id, limit, concurrency_for(settings, concurrency), progress)


def _send(
    db: Database,
    http: AltinnClient,
    campaign_id: int,
    limit: int | None,
    concurrency: int,
    progress: Callable[[int], None] | None,
) -> SendRun:
    config = http.config
    spec = _open_campaign(db, campaign_id)
    texts = AltinnTexts(spec)
    found = candidates(db, campaign_id)
    # Settled: accepted by Altinn, or refused or delivered; not waiting, not held back.
    settled = {
        c.orgnr
        for c in found
        if c.altinn_id or c.state not in (None, DeliveryState.SUBMITTED, DeliveryState.SUPPRESSED)
    }
    _plan(db, campaign_id, found, texts)
    todo = _pending(db, campaign_id, {c.orgnr: c.reason for c in found})
    if limit is not None:
        todo = todo[:limit]
    submitted, failed, interrupted = _send_all(
        db, http, config, campaign_id, todo, texts, concurrency, progress
    )
    waiting = int(
        db.scalar(
            "SELECT count(*) FROM deliveries WHERE campaign_id = ? AND channel = ? "
            "AND state = ? AND message_id IS NULL",
            (campaign_id, CHANNEL, DeliveryState.SUBMITTED.value),
        )
        or 0
    )
    return SendRun(
        campaign_id,
        submitted,
        failed,
        waiting,
        sum(1 for c in found if c.suppressed and c.orgnr not in settled),
        sum(1 for c in found if not c.present and c.delivery_id is None),
        len(settled),
        interrupted,
    )


@dataclass(frozen=True)
class _Request:
    """One delivery's request, built and stamped on the calling thread."""

    item: _Pending
    body: dict[str, Any]
    key: str
    what: str


@contextlib.contextmanager
def client_for(settings: Settings, client: AltinnClient | None) -> Iterator[AltinnClient]:
    """The client given, or one made from the settings (checked first) and closed after."""
    if client is not None:
        yield client
        return
    with AltinnClient(AltinnConfig.from_settings(settings)) as made:
        yield made


def concurrency_for(settings: Settings, concurrency: int | None) -> int:
    """Requests to keep in flight: as asked, or the altinn_concurrency setting."""
    if concurrency is None:
        return settings.altinn_concurrency  # Settings checks its range
    if concurrency < 1:
        raise ValueError(f"concurrency must be at least 1, not {concurrency}")
    return concurrency


def in_flight(
    requests: Iterator[_Req],
    call: Callable[[_Req], _Res],
    settle: Callable[[_Req, Future[_Res]], bool],
    concurrency: int,
) -> None:
    """Run `call` on each request, up to `concurrency` at once, and `settle` each on this thread.

    Only `call` runs on the pool's threads. The next request is drawn from `requests` on this
    thread when it may start at once, so what drawing it does (stamping a delivery) happens just
    before it goes out. Completed requests are settled as they complete, in the order they
    started when several complete together. When `settle` returns False, or drawing the next
    request raises, no new request starts; those in flight finish and are settled, then the
    error drawing the request, if any, is raised.
    """
    error: Exception | None = None
    stopped = False
    # The first request goes alone: it logs in, and an Altinn that is down or settings it
    # refuses then cost one request, as in a run one at a time, instead of a refusal each.
    room = 1
    order = itertools.count()
    running: dict[Future[_Res], tuple[int, _Req]] = {}
    # Requests are handed over only when there is room, so the pool never holds one waiting.
    # An exception of this thread (Ctrl-C, the store) leaves through the pool's exit, which
    # waits for those in flight; their deliveries stay as they were stamped, and the next run
    # finds what Altinn made of them.
    with ThreadPoolExecutor(concurrency, thread_name_prefix="altinn") as pool:
        while True:
            while not stopped and len(running) < room:
                try:
                    request = next(requests)
                except StopIteration:
                    break
                except Exception as e:  # settled in flight first, raised below
                    error, stopped = e, True
                    break
                running[pool.submit(call, request)] = (next(order), request)
            if not running:
                break
            done, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in sorted(done, key=lambda f: running[f][0]):
                _, request = running.pop(future)
                if not settle(request, future):
                    stopped = True
            room = concurrency
    if error is not None:
        raise error


def _send_all(
    db: Database,
    http: AltinnClient,
    config: AltinnConfig,
    campaign_id: int,
    todo: Sequence[_Pending],
    texts: AltinnTexts,
    concurrency: int,
    progress: Callable[[int], None] | None,
) -> tuple[int, int, str | None]:
    """Send the deliveries, up to `concurrency` at once: (submitted, failed, interrupted).

    A delivery is stamped before its request is handed over, and each outcome is recorded as
    its request completes. After a stop (Altinn unavailable, a refusal not about the recipient,
    any other error) no new request starts; those in flight finish and are recorded. Then the
    run ends as one sending one at a time would: the first error other than unavailability is
    raised, or the run returns interrupted.
    """
    submitted = failed = 0
    interrupted: str | None = None
    error: Exception | None = None

    def settle(request: _Request, future: Future[Created | str]) -> bool:
        nonlocal submitted, failed, interrupted, error
        try:
            result = future.result()
        except AltinnUnavailable as e:
            _record(db, campaign_id, request.item.delivery_id, "altinn_deferred", e.message)
            interrupted = e.message if interrupted is None else interrupted
            return False
        except AltinnRejected as e:
            if not e.problem.recipient_specific:
                # The request itself is wrong (settings, texts, access): no recipient would
                # fare better, so stop; the delivery stays to be sent when the cause is fixed.
                line = e.problem.line()
                _record(db, campaign_id, request.item.delivery_id, "altinn_rejected", line)
                error = e if error is None else error
                return False
            finish(
                db,
                campaign_id,
                request.item.delivery_id,
                DeliveryState.FAILED,
                None,
                e.problem.line(),
                "altinn_failed",
                {"problem": e.problem.line(), "code": e.problem.code},
            )
            failed += 1
        except Exception as e:  # the delivery stays submitted: the next run resends it
            error = e if error is None else error
            return False
        else:
            _settle(db, campaign_id, request, result)
            submitted += 1
        if progress is not None:
            progress(1)
        return True

    requests = (_prepare(db, config, campaign_id, item, texts) for item in todo)
    in_flight(requests, partial(_call, http), settle, concurrency)
    if error is not None:
        raise error
    return submitted, failed, interrupted


def _prepare(
    db: Database,
    config: AltinnConfig,
    campaign_id: int,
    item: _Pending,
    texts: AltinnTexts,
) -> _Request:
    """Build one delivery's request and stamp the delivery: the request may go out now."""
    content = texts.render(item.orgnr, item.name, item.language, item.code, item.reason)
    body = request_body(
        config, campaign_id, item.delivery_id, item.orgnr, item.code, content, texts.organisation
    )
    now = utcnow_iso()
    # Counted and stamped before the request: the row says the request may have gone out.
    with db.transaction():
        db.execute(
            "UPDATE deliveries SET attempts = attempts + 1, data_started_at = ?, updated_at = ? "
            "WHERE id = ?",
            (now, now, item.delivery_id),
        )
    what = f"Altinn-melding {item.delivery_id} til {item.orgnr}"
    return _Request(item, body, body["idempotentKey"], what)


def _call(http: AltinnClient, request: _Request) -> Created | str:
    """On a pool thread: what Altinn made, or the id of the one it had made with the key."""
    created = http.create(request.body, request.what)
    if created is not None:
        return created
    found = http.find_by_key(request.key, request.what)
    if found is None:
        raise AltinnError(
            f"{request.what}: Altinn sier nøkkelen {request.key} er brukt, men finner ingen "
            "melding med den"
        )
    return found


def _settle(db: Database, campaign_id: int, request: _Request, result: Created | str) -> None:
    """Record the correspondence Altinn accepted (or had accepted) for the delivery."""
    if isinstance(result, str):
        detail: dict[str, Any] = {
            "correspondence_id": result,
            "found_by": "idempotent_key",
            "key": request.key,
        }
        altinn_id, reply = result, "409 duplicate key"
    else:
        detail = {
            "correspondence_id": result.correspondence_id,
            "status": result.status,
            "notifications": list(result.notifications),
            "key": request.key,
        }
        altinn_id, reply = result.correspondence_id, result.status
    finish(
        db,
        campaign_id,
        request.item.delivery_id,
        DeliveryState.SUBMITTED,
        altinn_id,
        reply,
        "altinn_submitted",
        detail,
    )


def finish(
    db: Database,
    campaign_id: int,
    delivery_id: int,
    state: DeliveryState,
    altinn_id: str | None,
    reply: str,
    event: str,
    detail: dict[str, Any],
) -> None:
    now = utcnow_iso()
    with db.transaction():
        db.execute(
            "UPDATE deliveries SET state = ?, message_id = coalesce(?, message_id), "
            "last_reply = ?, sent_at = coalesce(sent_at, ?), updated_at = ? WHERE id = ?",
            (state.value, altinn_id, reply[:500], now if altinn_id else None, now, delivery_id),
        )
        record_event(db, campaign_id, delivery_id, event, detail)


def _record(db: Database, campaign_id: int, delivery_id: int, event: str, reply: str) -> None:
    with db.transaction():
        db.execute(
            "UPDATE deliveries SET last_reply = ?, updated_at = ? WHERE id = ?",
            (reply[:500], utcnow_iso(), delivery_id),
        )
        record_event(db, campaign_id, delivery_id, event, {"reply": reply})


def altinn_counts(db: Database, campaign_id: int) -> dict[str, int]:
    """Altinn deliveries of a campaign: unsent, accepted (not yet published), delivered, failed."""
    out = {"unsent": 0, "accepted": 0, "delivered": 0, "failed": 0}
    for state, accepted, n in db.query(
        "SELECT state, CASE WHEN message_id IS NULL THEN 0 ELSE 1 END, count(*) FROM deliveries "
        "WHERE campaign_id = ? AND channel = ? GROUP BY 1, 2",
        (campaign_id, CHANNEL),
    ):
        if state == DeliveryState.SUBMITTED:
            out["accepted" if accepted else "unsent"] += int(n)
        elif state in out:
            out[state] += int(n)
    return out


def altinn_failures(db: Database, campaign_id: int) -> list[tuple[str, str, str]]:
    """(orgnr, why, what Altinn said) of every Altinn delivery of the campaign that failed; why
    in Bokmål (a Text the console translates), with Altinn's own words as Altinn wrote them, and
    the stored reply as it is (for programs: its form does not change with the wording)."""
    return [
        (r[0], failure_text(r[1] or ""), r[1] or "")
        for r in db.query(
            "SELECT key, last_reply FROM deliveries WHERE campaign_id = ? AND channel = ? "
            "AND state = ? ORDER BY key",
            (campaign_id, CHANNEL, DeliveryState.FAILED.value),
        )
    ]
