"""Leases of sender workers on PostgreSQL: the store's clock, worker rows, and lease recovery.

A worker claims deliveries with a lease (`deliveries.lease_until`) and renews it while it
works. Every time here is the store's clock, never a host's: hosts disagree by seconds, and a
lease judged by two clocks could expire early on one of them. A delivery whose lease ran out
comes back by the single sender's rule: `data_started_at` set means the final dot may have
gone out, so it is `in_doubt`; otherwise it is queued again.
"""

from __future__ import annotations

import datetime as dt
import os
import random
import socket
import time
from dataclasses import dataclass, field
from typing import Any

from varsel.campaign import STATUS_WORDS, CampaignError, CampaignStatus, get_campaign
from varsel.db import Database
from varsel.digits import ascii_digits
from varsel.errors import Text, UserError
from varsel.outbox import PENDING_STATES, DeliveryState, counts, record_event, recover
from varsel.send_window import window_shut_until


def _iso_sql(timestamp: str) -> str:
    """SQL for a PostgreSQL timestamp as varsel keeps time (ISO 8601, milliseconds, Z)."""
    return f"to_char(({timestamp}) AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"')"


# The store's time now, and `?` seconds from now.
NOW_SQL = _iso_sql("clock_timestamp()")
LATER_SQL = _iso_sql("clock_timestamp() + make_interval(secs => ?)")
# campaigns.sender_pid of a campaign handed to the workers (any of them may send it).
WORKERS = "varsel-worker"


def iso_at(epoch: float) -> str:
    """Unix seconds as varsel's ISO 8601 text (milliseconds, Z)."""
    whole = int(epoch)
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(whole))
    return f"{stamp}.{int((epoch - whole) * 1000):03d}Z"


class StoreClock:
    """This host's estimate of the store's clock: the offset measured at the last sync."""

    def __init__(self) -> None:
        self.offset = 0.0

    def sync(self, db: Database) -> float:
        """Measure the offset (store minus this host); returns the store's time now."""
        before = time.time()
        store = float(db.scalar("SELECT extract(epoch FROM clock_timestamp())"))
        after = time.time()
        # The store read its clock somewhere in the round trip: the middle is the best guess.
        self.offset = store - (before + after) / 2
        return store

    def now(self) -> float:
        return time.time() + self.offset

    def iso(self, ahead: float = 0.0) -> str:
        """The store's time, `ahead` seconds from now, as ISO text."""
        return iso_at(self.now() + ahead)


def new_worker_id() -> str:
    """host:pid:random — unique even when a pid is reused after a restart."""
    return f"{socket.gethostname()}:{os.getpid()}:{random.getrandbits(32):08x}"


def holder_gone(holder: str) -> bool:
    """Whether a lease's holder (host:pid:random) is a process of this host that has ended.

    Only then is a lease known to be stale before it runs out: a process on another host, or
    one that still runs here (whatever it is: a pid may be reused), keeps it.
    """
    parts = holder.split(":")
    if len(parts) != 3 or not ascii_digits(parts[1]):
        return False
    if parts[0] not in {socket.gethostname(), os.uname().nodename}:
        return False
    pid = int(parts[1])
    if pid == os.getpid():
        return False  # another sender in this process (the console's threads) holds it
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False  # runs, as another user
    try:
        # A process killed but not yet waited for by its parent still has its pid: a zombie.
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as f:
            return f.read().rsplit(")", 1)[-1].split()[0] == "Z"
    except (OSError, IndexError):
        return False


def local_time(iso: str) -> str:
    """A stored UTC time as this host's local clock time, as Norwegian writes it (HH.MM.SS)."""
    when = dt.datetime.fromisoformat(iso.replace("Z", "+00:00"))
    return when.astimezone().strftime("%H.%M.%S")


def register(db: Database, worker_id: str, connections: int, metrics_port: int | None) -> None:
    """Add this worker to the workers table (its first heartbeat)."""
    host, pid = worker_id.split(":")[:2]
    with db.transaction():
        db.execute(
            "INSERT INTO workers (id, host, pid, started_at, heartbeat_at, connections, "
            f"metrics_port) VALUES (?, ?, ?, {NOW_SQL}, {NOW_SQL}, ?, ?)",
            (worker_id, host, int(pid), connections, metrics_port),
        )


@dataclass(frozen=True)
class Counters:
    """What one worker has done since it started, for its heartbeat."""

    sent: int = 0
    deferred: int = 0
    failed: int = 0
    in_doubt: int = 0
    rate: float = 0.0


def heartbeat(
    db: Database,
    worker_id: str,
    campaign_id: int | None,
    counters: Counters,
    leases: int,
    renewals: int,
) -> None:
    """Say that this worker is alive, what it is sending, and how it goes."""
    db.execute(
        f"UPDATE workers SET heartbeat_at = {NOW_SQL}, campaign_id = ?, sent = ?, deferred = ?, "
        "failed = ?, in_doubt = ?, rate = ?, leases = ?, lease_renewals = ? WHERE id = ?",
        (
            campaign_id,
            counters.sent,
            counters.deferred,
            counters.failed,
            counters.in_doubt,
            counters.rate,
            leases,
            renewals,
            worker_id,
        ),
    )


def deregister(db: Database, worker_id: str, counters: Counters, renewals: int) -> None:
    """A graceful stop: the row stays with its final counts (status shows it stopped)."""
    with db.transaction():
        heartbeat(db, worker_id, None, counters, 0, renewals)
        db.execute(
            f"UPDATE workers SET stopped_at = {NOW_SQL}, heartbeat_at = {NOW_SQL}, "
            "campaign_id = NULL, leases = 0, rate = 0 WHERE id = ?",
            (worker_id,),
        )


def take_over(db: Database, worker_id: str) -> tuple[int, int]:
    """What a worker of this process that has stopped sending still holds, given back at once.

    Its deliveries come back by the in-doubt rule, in every campaign of the workers, without
    waiting for their leases; its row is marked stopped. Returns (in doubt, requeued).
    """
    doubt = requeued = 0
    for (campaign_id,) in db.query("SELECT id FROM campaigns WHERE sender_pid = ?", (WORKERS,)):
        d, q = recover(db, int(campaign_id), worker=worker_id)
        doubt, requeued = doubt + d, requeued + q
    db.execute(
        f"UPDATE workers SET stopped_at = {NOW_SQL}, campaign_id = NULL, leases = 0, rate = 0 "
        "WHERE id = ? AND stopped_at IS NULL",
        (worker_id,),
    )
    return doubt, requeued


def renew(db: Database, worker_id: str, campaign_id: int, seconds: float) -> int:
    """Extend the lease of every delivery this worker holds in a campaign; returns how many."""
    # SKIP LOCKED: a row this worker's own group commit is writing now would otherwise make
    # the two transactions wait for each other's rows (a deadlock). It is renewed next time.
    return int(
        db.execute(
            f"UPDATE deliveries SET lease_until = {LATER_SQL} WHERE id IN (SELECT id FROM "
            "deliveries WHERE campaign_id = ? AND state = ? AND claimed_by = ? "
            "FOR UPDATE SKIP LOCKED)",
            (seconds, campaign_id, DeliveryState.CLAIMED.value, worker_id),
        ).rowcount
    )


def hold_campaign(db: Database, campaign_id: int, seconds: float) -> None:
    """Keep the campaign marked as the workers' while they send, so `campaign send` refuses."""
    db.execute(
        f"UPDATE campaigns SET sender_lease_until = {LATER_SQL} WHERE id = ? AND sender_pid = ?",
        (seconds, campaign_id, WORKERS),
    )


def recover_expired(db: Database, campaign_id: int) -> tuple[int, int]:
    """Deliveries whose lease ran out: in doubt if DATA may have gone out, else queued again.

    Returns (in doubt, requeued). Any worker may run this; rows another transaction holds are
    left for the next time, so two workers recovering at once count each delivery once.
    """
    rows = db.query(
        "UPDATE deliveries SET state = CASE WHEN data_started_at IS NULL THEN ? ELSE ? END, "
        f"claimed_by = NULL, lease_until = NULL, updated_at = {NOW_SQL} "
        f"WHERE id IN (SELECT id FROM deliveries WHERE campaign_id = ? AND state = ? "
        f"AND lease_until < {NOW_SQL} FOR UPDATE SKIP LOCKED) "
        "RETURNING data_started_at IS NOT NULL",
        (
            DeliveryState.QUEUED.value,
            DeliveryState.IN_DOUBT.value,
            campaign_id,
            DeliveryState.CLAIMED.value,
        ),
    )
    doubt = sum(1 for (started,) in rows if started)
    if rows:
        record_event(
            db,
            campaign_id,
            None,
            "lease_expired",
            {"in_doubt": doubt, "requeued": len(rows) - doubt},
        )
    return doubt, len(rows) - doubt


@dataclass(frozen=True)
class WorkerRow:
    """One worker as the workers table has it, judged alive by the store's clock."""

    id: str
    host: str
    pid: int
    started_at: str
    heartbeat_at: str
    stopped_at: str | None
    campaign_id: int | None
    connections: int
    metrics_port: int | None
    sent: int
    deferred: int
    failed: int
    in_doubt: int
    rate: float
    leases: int
    lease_renewals: int
    seconds_since_heartbeat: float

    @property
    def state(self) -> str:
        """running | stopped | lost (no heartbeat for too long: it died)."""
        if self.stopped_at is not None:
            return "stopped"
        return "running" if self.seconds_since_heartbeat <= LOST_AFTER else "lost"

    def as_dict(self) -> dict[str, Any]:
        return {**self.__dict__, "state": self.state}


LOST_AFTER = 15.0  # seconds without a heartbeat before a worker counts as dead
_WORKER_COLUMNS = (
    "id, host, pid, started_at, heartbeat_at, stopped_at, campaign_id, connections, "
    "metrics_port, sent, deferred, failed, in_doubt, rate, leases, lease_renewals"
)


def workers(db: Database, *, stopped_within: float = 3600.0) -> list[WorkerRow]:
    """Every worker that runs, died, or stopped within the last `stopped_within` seconds."""
    now = float(db.scalar("SELECT extract(epoch FROM clock_timestamp())"))
    out = []
    for row in db.query(f"SELECT {_WORKER_COLUMNS} FROM workers ORDER BY started_at, id"):
        beat = _epoch(row[4])
        if row[5] is not None and now - beat > stopped_within:
            continue
        out.append(
            WorkerRow(
                row[0],
                row[1],
                int(row[2]),
                row[3],
                row[4],
                row[5],
                None if row[6] is None else int(row[6]),
                int(row[7]),
                None if row[8] is None else int(row[8]),
                int(row[9]),
                int(row[10]),
                int(row[11]),
                int(row[12]),
                float(row[13]),
                int(row[14]),
                int(row[15]),
                round(now - beat, 3),
            )
        )
    return out


def workers_for(db: Database, campaign_id: int) -> int | None:
    """How many workers run now for a campaign handed to them; None if it is not theirs.

    A running worker with no campaign of its own counts: it takes any campaign handed to the
    workers. Always None on SQLite, which has no workers.
    """
    if db.dialect != "postgresql":
        return None
    holder = db.scalar("SELECT sender_pid FROM campaigns WHERE id = ?", (campaign_id,))
    if holder != WORKERS:
        return None
    return sum(
        1 for w in workers(db) if w.state == "running" and w.campaign_id in (None, campaign_id)
    )


def forget_stopped(db: Database, older_than: float = 7 * 86400.0) -> int:
    """Delete the rows of workers that stopped or died more than `older_than` seconds ago."""
    return int(
        db.execute(
            f"DELETE FROM workers WHERE heartbeat_at < {LATER_SQL}",
            (-older_than,),
        ).rowcount
    )


def _epoch(iso: str) -> float:
    return dt.datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


# -- campaigns handed to the workers ----------------------------------------------------

CHANNEL = "varsel_campaigns"  # LISTEN/NOTIFY channel: the payload is a campaign id


class WorkerError(UserError):
    """Sender workers cannot run here."""


def require_postgresql(store: Database | str) -> None:
    """Workers share one PostgreSQL; SQLite has the single sender (a store or its dialect)."""
    if (store if isinstance(store, str) else store.dialect) != "postgresql":
        raise WorkerError(
            "varsel worker trenger PostgreSQL (--db postgresql://…); "
            "med SQLite sender du med «varsel campaign send»"
        )


def notify(db: Database, campaign_id: int) -> None:
    """Tell every listening worker that a campaign changed (no-op on SQLite)."""
    if db.dialect == "postgresql":
        db.execute("SELECT pg_notify(?, ?)", (CHANNEL, str(campaign_id)))


def start_campaign(db: Database, campaign_id: int, lease_seconds: float = 30.0) -> bool:
    """Hand a campaign to the workers; False if they have it already.

    Running workers start sending it within a second. Refused while a single sender
    (`campaign send`) holds it, or when it is paused, cancelled or done.
    """
    require_postgresql(db)
    with db.transaction():
        row = db.query_one(
            f"SELECT status, sender_pid, sender_lease_until, {NOW_SQL} FROM campaigns "
            "WHERE id = ? FOR UPDATE",
            (campaign_id,),
        )
        if row is None:
            raise CampaignError(Text("kampanje %(campaign)s finnes ikke", campaign=campaign_id))
        status, holder, until, now = row
        if holder == WORKERS and status == CampaignStatus.SENDING.value:
            return False
        if status != CampaignStatus.READY.value:
            raise CampaignError(_status_refusal(campaign_id, CampaignStatus(status), holder))
        if holder and holder != WORKERS and until and until > now and not holder_gone(holder):
            raise CampaignError(
                Text(
                    "kampanje %(campaign)s sendes allerede av %(holder)s; vent, eller stopp den "
                    "prosessen; låsen går ut kl. %(until)s",
                    campaign=campaign_id,
                    holder=holder,
                    until=local_time(until),
                )
            )
        db.execute(
            f"UPDATE campaigns SET status = ?, sender_pid = ?, updated_at = {NOW_SQL} WHERE id = ?",
            (CampaignStatus.SENDING.value, WORKERS, campaign_id),
        )
        hold_campaign(db, campaign_id, lease_seconds)
        record_event(db, campaign_id, None, "handed_to_workers")
    notify(db, campaign_id)
    return True


def _status_refusal(campaign_id: int, status: CampaignStatus, holder: str | None) -> Text:
    """Why a campaign that is not ready cannot be handed to the workers (a Text: the console
    shows it in the page's language)."""
    # The status word is a Text too: the catalogs say it in Nynorsk and English.
    word = Text(STATUS_WORDS[status])
    if status is CampaignStatus.PAUSED:
        return Text(
            "kampanje %(campaign)s er «%(status)s»; gjenoppta den med «varsel campaign resume»",
            campaign=campaign_id,
            status=word,
        )
    if status is CampaignStatus.SENDING:
        return Text(
            "kampanje %(campaign)s er «%(status)s» av %(holder)s",
            campaign=campaign_id,
            status=word,
            holder=holder,
        )
    return Text("kampanje %(campaign)s er «%(status)s»", campaign=campaign_id, status=word)


def resume_campaign(db: Database, campaign_id: int | None) -> None:
    """Resumed campaigns come back as ready, still marked as the workers': sending again."""
    which = "" if campaign_id is None else " AND id = ?"
    db.execute(
        f"UPDATE campaigns SET status = ?, updated_at = {NOW_SQL} "
        f"WHERE status = ? AND sender_pid = ?{which}",
        (
            CampaignStatus.SENDING.value,
            CampaignStatus.READY.value,
            WORKERS,
            *(() if campaign_id is None else (campaign_id,)),
        ),
    )


def status_changed(db: Database, campaign_id: int) -> None:
    """After a pause, resume or cancel (from the command line or the console).

    A workers' campaign resumed is theirs to send again at once, as each worker would make it
    on its next look; running workers hear of the change now. Nothing on SQLite.
    """
    if db.dialect != "postgresql":
        return
    resume_campaign(db, campaign_id)
    notify(db, campaign_id)


def waiting_for(db: Database, campaign_id: int) -> str | None:
    """Why a worker given this campaign would wait rather than send; None if it would not.

    A campaign that does not exist is refused (CampaignError), before a worker registers.
    """
    row = db.query_one("SELECT status, sender_pid FROM campaigns WHERE id = ?", (campaign_id,))
    if row is None:
        raise CampaignError(f"kampanje {campaign_id} finnes ikke")
    status, holder = row
    if status == CampaignStatus.PAUSED.value:
        then = "" if holder == WORKERS else f" og «varsel campaign start {campaign_id}»"
        return (
            f"Kampanje {campaign_id} er pauset; arbeideren venter til noen kjører "
            f"«varsel campaign resume {campaign_id}»{then}"
        )
    if holder == WORKERS:
        # Handed over: it waits only for its send window (the workers leave it alone outside).
        if status != CampaignStatus.SENDING.value:
            return None
        limits = get_campaign(db, campaign_id).spec.limits
        when = window_shut_until(limits, dt.datetime.now(dt.UTC))
        if when is None:
            return None
        return (
            f"Kampanje {campaign_id} er utenfor sendevinduet sitt ([window]); arbeideren "
            f"venter til {when}"
        )
    if status == CampaignStatus.READY.value:
        return (
            f"Kampanje {campaign_id} er ikke gitt til arbeiderne ennå; arbeideren venter til "
            f"noen kjører «varsel campaign start {campaign_id}»"
        )
    if status == CampaignStatus.SENDING.value:
        return (
            f"Kampanje {campaign_id} sendes nå av «varsel campaign send»; arbeideren venter "
            "til den er ferdig eller gitt til arbeiderne"
        )
    return None


def due(db: Database, campaign_id: int) -> bool:
    """Whether a delivery of the campaign may be claimed now."""
    return (
        db.scalar(
            "SELECT 1 FROM deliveries WHERE campaign_id = ? AND state IN (?, ?) "
            f"AND next_attempt_at <= {NOW_SQL} LIMIT 1",
            (campaign_id, DeliveryState.QUEUED.value, DeliveryState.DEFERRED.value),
        )
        is not None
    )


def _pending(db: Database, campaign_id: int) -> bool:
    return (
        db.scalar(
            "SELECT 1 FROM deliveries WHERE campaign_id = ? AND state IN (?, ?, ?) LIMIT 1",
            (campaign_id, *(s.value for s in PENDING_STATES)),
        )
        is not None
    )


def finish_if_done(db: Database, campaign_id: int) -> bool:
    """Mark a workers' campaign done when no delivery is pending; True if it is done now."""
    with db.transaction():
        if _pending(db, campaign_id):
            return False
        db.execute(
            "UPDATE campaigns SET status = ?, sender_pid = NULL, sender_lease_until = NULL, "
            f"updated_at = {NOW_SQL} WHERE id = ? AND status = ? AND sender_pid = ?",
            (
                CampaignStatus.DONE.value,
                campaign_id,
                CampaignStatus.SENDING.value,
                WORKERS,
            ),
        )
    return True


# -- status ---------------------------------------------------------------------------


@dataclass(frozen=True)
class CampaignLine:
    """A campaign the workers send or sent lately, with its counts."""

    id: int
    name: str
    status: str
    counts: dict[str, int]

    def as_dict(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "status": self.status, **self.counts}


@dataclass(frozen=True)
class WorkerStatus:
    """`varsel worker --status`: who works on what, how fast, holding how many leases."""

    workers: list[WorkerRow]
    campaigns: list[CampaignLine] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "workers": [w.as_dict() for w in self.workers],
            "campaigns": [c.as_dict() for c in self.campaigns],
        }


def worker_status(db: Database) -> WorkerStatus:
    """The workers that run, died or stopped lately, and the campaigns handed to them."""
    require_postgresql(db)
    rows = workers(db)
    ids = {w.campaign_id for w in rows if w.campaign_id is not None}
    ids |= {
        int(r[0])
        for r in db.query(
            "SELECT id FROM campaigns WHERE sender_pid = ? AND status IN (?, ?, ?)",
            (
                WORKERS,
                CampaignStatus.SENDING.value,
                CampaignStatus.PAUSED.value,
                CampaignStatus.READY.value,
            ),
        )
    }
    campaigns = []
    for cid in sorted(ids):
        row = db.query_one("SELECT name, status FROM campaigns WHERE id = ?", (cid,))
        if row is not None:
            campaigns.append(CampaignLine(cid, row[0], row[1], counts(db, cid)))
    return WorkerStatus(rows, campaigns)
