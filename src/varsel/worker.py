"""`varsel worker`: any number of sender processes on any number of hosts, on one PostgreSQL.

Each worker claims batches of deliveries (`FOR UPDATE SKIP LOCKED`) under a lease it renews
while it works, and sends them with the single sender's machinery (`sender.Sender`: group
commits, the per-domain scheduler, build processes, and the rule that `data_started_at` is
committed before the final dot). What differs is kept here and in `leases.py` and
`shared_limits.py`:

- leases: claimed rows carry `lease_until` on the store's clock, renewed every few seconds; a
  worker that cannot renew stops writing final dots before its lease runs out (`LeaseLost`),
  and any worker returns an expired lease's rows (in doubt if DATA may have gone out);
- rate limits (overall, per campaign, per recipient domain) are token buckets in the store;
- pause, resume and cancel arrive by LISTEN/NOTIFY, with a poll every second as fallback;
- SIGTERM finishes the SMTP transactions on the wire, gives the rest back, and deregisters.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import datetime as dt
import signal
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import psycopg

from varsel import leases, outbox
from varsel.campaign import CampaignError, CampaignStatus, get_campaign
from varsel.channel.smtp_relay import RelayConfig
from varsel.channel.smtp_replies import ReplyKind, SendOutcome
from varsel.config import Settings
from varsel.db import LOST_TAIL, connect, lost
from varsel.errors import N_, StoreError, StoreLost, UserError
from varsel.metrics import WorkerMetrics
from varsel.outbox import Delivery, DeliveryState
from varsel.scheduler import Item, Scheduler, TokenBucket, domain_capacity
from varsel.send_report import SendReport
from varsel.send_window import window_opens
from varsel.sender import Sender, SendOptions
from varsel.shared_limits import BucketChain, Request, SharedLimits, grant, purge_full

TIDY_SECONDS = 600.0  # how often an idle worker purges stopped workers and full buckets

_GIVE_BACK_SQL = (
    "UPDATE deliveries SET state = ?, claimed_by = NULL, updated_at = ? "
    "WHERE state = 'claimed' AND claimed_by = ? AND id = ?"
)


class LeaseLost(ConnectionError):
    """The store no longer backs this worker's claim: like a dropped connection, no dot goes out."""


@dataclass(frozen=True)
class WorkerOptions:
    """How one worker runs; settings give the defaults."""

    campaign_id: int | None = None  # only this campaign; stop once it is done or cancelled
    connections: int | None = None  # SMTP connections; None: the campaign's [limits]
    build_processes: int | None = None  # as SendOptions.build_processes
    lease_seconds: float = 30.0
    reconnect_seconds: float = 60.0  # how long a store that went away is waited for; 0: not
    global_rate: float = 0.0  # messages per second over all workers and campaigns; 0: none
    metrics_port: int = 0  # Prometheus /metrics on 127.0.0.1; 0: none
    poll_seconds: float = 1.0  # how often status is read when no notification comes
    slice_seconds: float = 60.0  # then move on, when other campaigns are waiting too
    # False sends unsigned messages: for benchmarks and tests only (the CLI does not offer it).
    sign: bool = True

    @classmethod
    def from_settings(cls, settings: Settings, **overrides: Any) -> WorkerOptions:
        base = cls(
            lease_seconds=settings.worker_lease_seconds,
            reconnect_seconds=settings.worker_reconnect_seconds,
            global_rate=settings.worker_global_rate,
            metrics_port=settings.worker_metrics_port,
        )
        given = {k: v for k, v in overrides.items() if v is not None}
        return cls(**{**base.__dict__, **given})


@dataclass
class WorkerReport:
    """What one worker did before it stopped."""

    worker_id: str
    counts: dict[str, int]
    runs: int
    seconds: float
    stopped: str  # done (its campaign is finished) | interrupted (SIGTERM or Ctrl-C)

    def summary(self) -> str:
        c = self.counts
        how = "ferdig" if self.stopped == "done" else "stoppet"
        seconds = f"{self.seconds:.1f}".replace(".", ",")
        return (
            f"Arbeider {self.worker_id} {how} etter {seconds} s: {c['sent']} sendt, "
            f"{c['deferred']} utsatt, {c['failed']} feilet, {c['in_doubt']} usikre."
        )


class _NotNow(Exception):
    """The campaign is no longer the workers' to send (paused, cancelled, taken)."""


# -- one campaign, for a while, in this worker --------------------------------------------


class SharedScheduler(Scheduler):
    """The sender's per-domain scheduler, its rate limits drawn from the shared buckets."""

    def __init__(self, concurrency: int, per_minute: int, limits: SharedLimits) -> None:
        super().__init__(concurrency, per_minute)
        self.limits = limits
        limits.refilled.append(self._wake)

    def _bucket(self, domain: str) -> TokenBucket:
        rate = self.per_minute / 60.0
        # Its tokens are taken at the final dot, by the connections holding a message for
        # the domain: that many are wanted at most.
        return self.limits.bucket(
            f"domain:{domain}", rate, domain_capacity(rate), lambda: self.active[domain]
        )


class CampaignRun(Sender):
    """One worker sending one campaign until nothing is due, it stops, or its slice ends."""

    # Not «campaign send»: a worker's deliveries stay with the workers.
    RELAY_UNUSABLE = N_(
        "e-posttjeneren %(relay)s kan ikke brukes: %(reason)s (%(tries)s forsøk); "
        "leveransene som gjenstår, venter i køen til en arbeider kan sende dem (kampanjen er "
        "fortsatt arbeidernes)"
    )

    def __init__(self, worker: Worker, campaign_id: int, options: SendOptions) -> None:
        super().__init__(worker.db, worker.settings, campaign_id, worker.relay, options)
        self.worker = worker
        self.worker_id = worker.id
        self.lease = worker.options.lease_seconds
        self.lease_deadline = time.monotonic() + self.lease / 2  # until the first renewal
        self.withdrawn: set[int] = set()
        self.dot_at: dict[int, float] = {}
        # Refusals not yet counted as failed: more refused alike would take them back as the
        # relay's (Sender._refused_alike), and a Prometheus counter cannot be counted down.
        self.uncounted: list[int] = []
        self.loop: asyncio.AbstractEventLoop | None = None

    # -- control: leases, limits and status, on their own connection and thread -------------

    async def _control(self, fn: Callable[..., Any], *args: Any) -> Any:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._ctlx, fn, *args)

    async def _grant(self, requests: list[Request]) -> dict[str, int]:
        granted: dict[str, int] = await self._control(
            grant, self.worker.control, requests, self.worker.known_buckets
        )
        return granted

    def _limits(self) -> tuple[Scheduler, TokenBucket]:
        options, limits = self.options, self.limits
        scheduler = SharedScheduler(
            options.per_domain_concurrency, options.per_domain_per_minute, limits
        )

        def demand() -> int:  # of the overall limits: the messages waiting to go
            return scheduler.size + options.connections

        chain = [
            limits.bucket(
                f"campaign:{self.campaign.id}",
                options.rate_per_second,
                max(1.0, options.rate_per_second / 10),
                demand,
            )
        ]
        rate = self.worker.options.global_rate
        if rate > 0:
            chain.append(limits.bucket("global", rate, max(1.0, rate / 10), demand))
        return scheduler, BucketChain(*chain)

    async def _run(self) -> SendReport:
        self.loop = asyncio.get_running_loop()
        self._ctlx = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="varsel-lease")
        self.limits = SharedLimits(self._grant)
        grants = asyncio.create_task(self.limits.run())
        grants.add_done_callback(self._grants_ended)
        self.worker.current = self
        # Leases are renewed on a thread of their own: building messages in this process can
        # hold the event loop for a while, and a lease must not run out because of that.
        self.keeping = threading.Event()
        keeper = threading.Thread(target=self._keep_leases, name="varsel-lease", daemon=True)
        keeper.start()
        try:
            return await super()._run()
        finally:
            self._count_refusals()  # those left are failed for good
            self.worker.current = None
            self.keeping.set()
            keeper.join()
            self.worker.metrics.leases.set(0)  # given back or settled: none held between runs
            grants.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await grants
            self._ctlx.shutdown(wait=True)

    def _grants_ended(self, task: asyncio.Task[None]) -> None:
        if not task.cancelled() and (error := task.exception()) is not None:
            # Without grants nothing more would go out: stop, and exit with the reason.
            self.worker.error = self.worker.error or error
            self.stop("interrupted")

    def stop(self, reason: str) -> None:
        """Stop taking messages: those on the wire finish, the rest go back (loop thread only)."""
        if not self.stopping:
            self.stopping = reason
            if hasattr(self, "scheduler"):  # a stop may come before the run has one
                self.scheduler.close()

    # -- the sender's steps, as a worker does them -------------------------------------------

    def _start(self) -> None:
        db, cid = self.db, self.campaign.id
        row = db.query_one("SELECT status, sender_pid FROM campaigns WHERE id = ?", (cid,))
        if row is None or row[0] != CampaignStatus.SENDING.value or row[1] != leases.WORKERS:
            raise _NotNow
        with db.transaction():
            leases.recover_expired(db, cid)

    def _claim_times(self) -> tuple[str, str]:
        clock = self.worker.clock
        return clock.iso(), clock.iso(self.lease)

    async def _watch(self) -> None:
        worker = self.worker
        polled = started = time.monotonic()
        seen = worker.notifications
        while True:
            await asyncio.sleep(0.05)
            now = time.monotonic()
            if worker.stopping or worker.error is not None:
                self.stop("interrupted")
            if now > self.lease_deadline:
                self.stop("interrupted")  # renewals are not getting through
            if now - polled < worker.options.poll_seconds and worker.notifications == seen:
                continue
            polled, seen = now, worker.notifications
            try:
                status, others = await self._control(self._poll)
            except Exception as e:
                worker.error = worker.error or e  # the store is gone: exit with the reason
                self.stop("interrupted")
                return
            if status == CampaignStatus.PAUSED.value:
                self.stop("paused")
            elif status == CampaignStatus.CANCELLED.value:
                self.stop("cancelled")
            elif status != CampaignStatus.SENDING.value:
                self.stop("interrupted")
            elif others and now - started > worker.options.slice_seconds:
                self.stop("interrupted")  # other campaigns wait: take turns

    def _keep_leases(self) -> None:
        """Renew the leases every few seconds until the run ends (on the keeper thread)."""
        every = max(0.2, min(self.lease / 6, 5.0))
        while not self.keeping.wait(every):
            try:
                self._renew_leases()
            except Exception as e:
                # The store is gone or refuses us: stop before the leases run out, and let
                # the worker exit with the reason (systemd starts it again).
                self.worker.error = self.worker.error or e
                return

    def _renew_leases(self) -> None:
        """Renew this worker's leases and the campaign's mark; bring back expired ones."""
        control, cid, worker = self.worker.keeper, self.campaign.id, self.worker
        began = time.monotonic()
        with control.transaction():
            worker.clock.sync(control)
            held = leases.renew(control, worker.id, cid, self.lease)
            leases.hold_campaign(control, cid, self.lease)
            leases.recover_expired(control, cid)
            worker.renewals += 1
            leases.heartbeat(control, worker.id, cid, worker.counters(), held, worker.renewals)
        # No final dot after this: by then another worker may have taken the deliveries
        # back. The margin covers clock drift over one lease and the dot's own write.
        self.lease_deadline = began + self.lease - max(2.0, self.lease / 5)
        worker.metrics.lease_renewed(held)

    def _poll(self) -> tuple[str, bool]:
        """The campaign's status, and whether other campaigns wait for the workers."""
        control, cid = self.worker.control, self.campaign.id
        status = str(control.scalar("SELECT status FROM campaigns WHERE id = ?", (cid,)))
        others = False
        if self.worker.options.campaign_id is None:
            others = (
                control.scalar(
                    "SELECT 1 FROM campaigns WHERE id <> ? AND status = ? AND sender_pid = ? "
                    "LIMIT 1",
                    (cid, CampaignStatus.SENDING.value, leases.WORKERS),
                )
                is not None
            )
        return status, others

    def _dot_going(self, delivery_id: int) -> None:
        """The lease check, after the durable mark and the domain's token, before the dot."""
        if time.monotonic() > self.lease_deadline:
            # The mark is durable, so whoever takes this delivery back sees it in doubt; the
            # dot is not written, so it is in doubt only on paper.
            self.withdrawn.add(delivery_id)
            raise LeaseLost("leieavtalen er utløpt")
        self.dot_at[delivery_id] = time.monotonic()

    def _outcome(self, item: Item, outcome: SendOutcome) -> None:
        d = item.delivery
        if d.id in self.withdrawn:
            self.withdrawn.discard(d.id)
            return  # not ours to write any more
        dot = self.dot_at.pop(d.id, None)
        if dot is not None and outcome.reply is not None:
            self.worker.metrics.smtp_reply(time.monotonic() - dot)
        if outcome.kind is ReplyKind.ACCEPTED:
            self.worker.count(self.campaign.id, "sent")
        elif outcome.in_doubt:
            self.worker.count(self.campaign.id, "in_doubt")
        elif outcome.kind is ReplyKind.PERMANENT:
            # Not counted yet: counted once no more refusals alike can take it back. A refused
            # MAIL FROM is never counted: the run stops, and the delivery goes back as it was.
            if not outcome.sender_refused:
                self.uncounted.append(d.id)
        else:
            self.worker.count(self.campaign.id, "deferred")
        super()._outcome(item, outcome)
        if self.uncounted:
            self._count_refusals(set(self.refusals))

    def _take_back(self, delivery_ids: list[int], now: str) -> None:
        taken = set(delivery_ids)
        self.uncounted = [i for i in self.uncounted if i not in taken]
        super()._take_back(delivery_ids, now)

    def _count_refusals(self, pending: set[int] | frozenset[int] = frozenset()) -> None:
        """Count as failed the refusals no longer `pending` (that more alike could take back)."""
        keep = []
        for delivery_id in self.uncounted:
            if delivery_id in pending:
                keep.append(delivery_id)
            else:
                self.worker.count(self.campaign.id, "failed")
        self.uncounted = keep

    def _give_back(self, deliveries: Iterable[Delivery]) -> None:
        # Only what this worker still holds: a lease that ran out may have passed a delivery
        # to another worker, whose claim must stand.
        now = self.now_iso()
        for d in deliveries:
            self.write(_GIVE_BACK_SQL, (DeliveryState.QUEUED.value, now, self.worker_id, d.id))

    def _failed(self, d: Delivery, reason: str) -> None:
        self.worker.count(self.campaign.id, "failed")
        super()._failed(d, reason)

    def _finish(self, stopped: str) -> SendReport:
        db, cid = self.db, self.campaign.id
        # After a graceful stop nothing of ours is claimed; after a build error or a lost
        # lease some may be: back to the queue, or in doubt if their mark was written.
        outbox.recover(db, cid, worker=self.worker_id)
        with db.transaction():
            status = db.scalar("SELECT status FROM campaigns WHERE id = ?", (cid,))
            if status == CampaignStatus.CANCELLED.value:
                # Given back after the cancel: they are cancelled too, never sent.
                db.execute(
                    f"UPDATE deliveries SET state = ?, updated_at = {leases.NOW_SQL} "
                    "WHERE campaign_id = ? AND state IN (?, ?)",
                    (
                        DeliveryState.CANCELLED.value,
                        cid,
                        DeliveryState.QUEUED.value,
                        DeliveryState.DEFERRED.value,
                    ),
                )
            outbox.record_event(
                db,
                cid,
                None,
                "send_run",
                {"sent": self.sent_now, "stopped": stopped, "worker": self.worker_id},
            )
        leases.finish_if_done(db, cid)
        counts = outbox.counts(db, cid)
        seconds = time.monotonic() - self.started
        return SendReport(cid, counts, self.sent_now, seconds, stopped, counts["in_doubt"])


# -- the worker process ---------------------------------------------------------------


class Worker:
    """One `varsel worker` process: picks campaigns, sends them, until stopped."""

    def __init__(
        self,
        settings: Settings,
        relay: RelayConfig,
        options: WorkerOptions,
        predecessor: str | None = None,
    ) -> None:
        self.settings = settings
        self.relay = relay
        self.options = options
        # The worker of this process whose store went away: what it held is taken back.
        self.predecessor = predecessor
        self.db = connect(settings.database_url)
        opened = [self.db]
        try:
            leases.require_postgresql(self.db)
            # grants and status; lease renewals
            self.control = connect(settings.database_url, migrate=False)
            opened.append(self.control)
            self.keeper = connect(settings.database_url, migrate=False)
        except BaseException:
            for db in opened:
                db.close()
            raise
        self.id = leases.new_worker_id()
        self.clock = leases.StoreClock()
        self.metrics = WorkerMetrics(self.id)
        self.known_buckets: set[str] = set()
        self.totals = {"sent": 0, "deferred": 0, "failed": 0, "in_doubt": 0}
        self.rate_mark = (time.monotonic(), 0)
        self.rate = 0.0
        self.renewals = 0
        self.runs = 0  # campaign runs started
        self.registered = False  # in the workers table (and its predecessor taken over)
        self.current: CampaignRun | None = None
        self.stopping = False
        self.asked_to_stop = False  # by SIGTERM or Ctrl-C
        self.error: BaseException | None = None
        self.notifications = 0  # bumped by the listener thread on every NOTIFY
        self.wake = threading.Event()
        self.last_campaign = 0
        self.finished = False
        self.tidy_at = 0.0  # when idle next tidies the shared tables

    # -- counters ----------------------------------------------------------------------

    def count(self, campaign_id: int, kind: str) -> None:
        self.totals[kind] += 1
        self.metrics.outcome(campaign_id, kind)

    def counters(self) -> leases.Counters:
        now, sent = time.monotonic(), self.totals["sent"]
        then, before = self.rate_mark
        if now - then >= 1.0:
            self.rate = (sent - before) / (now - then)
            self.rate_mark = (now, sent)
            self.metrics.rate(self.rate)
        t = self.totals
        return leases.Counters(t["sent"], t["deferred"], t["failed"], t["in_doubt"], self.rate)

    # -- stopping ----------------------------------------------------------------------

    def request_stop(self, *_: object) -> None:
        """SIGTERM and Ctrl-C: finish what is on the wire, give back the rest, deregister."""
        self.stopping = self.asked_to_stop = True
        self.wake.set()
        run = self.current
        if run is not None and run.loop is not None:
            # Safe from a signal handler: the loop is woken through its own pipe.
            run.loop.call_soon_threadsafe(run.stop, "interrupted")

    # -- the loop ----------------------------------------------------------------------

    def run(self) -> WorkerReport:
        """Work until stopped (or, with a campaign given, until it is done or cancelled)."""
        started = time.monotonic()
        handlers = self._install_signals()
        try:
            self.clock.sync(self.control)
            with self.control.transaction():
                leases.register(self.control, self.id, self.options.connections or 0, self._port())
                if self.predecessor is not None:
                    # It has stopped sending (it ran in this process): its deliveries need not
                    # wait for their leases, and its row is not left looking dead.
                    leases.take_over(self.control, self.predecessor)
            self.registered = True
        except BaseException:
            # The store gone again already: a worker started again must not leak these.
            self._restore_signals(handlers)
            self._close()
            raise
        listener = threading.Thread(target=self._listen, name="varsel-listen", daemon=True)
        listener.start()
        server = (
            self.metrics.serve(self.options.metrics_port) if self.options.metrics_port else None
        )
        try:
            while not self.stopping and self.error is None:
                cid = self._pick()
                if cid is None:
                    if self.finished:
                        break
                    self._idle()
                    continue
                self.runs += 1
                self._send(cid)
        finally:
            self.stopping = True
            with contextlib.suppress(Exception):
                leases.deregister(self.control, self.id, self.counters(), self.renewals)
            if server is not None:
                server.shutdown()
                server.server_close()  # the port, for a worker started again in this process
            listener.join(timeout=5)
            self._restore_signals(handlers)
            self._close()
        if self.error is not None:
            raise self.error
        return WorkerReport(
            self.id,
            dict(self.totals),
            self.runs,
            time.monotonic() - started,
            "done" if self.finished else "interrupted",
        )

    def _close(self) -> None:
        self.control.close()
        self.keeper.close()
        self.db.close()

    def _port(self) -> int | None:
        return self.options.metrics_port or None

    def _install_signals(self) -> dict[int, Any]:
        if threading.current_thread() is not threading.main_thread():
            return {}  # a worker inside a test's thread is stopped by request_stop
        return {
            sig: signal.signal(sig, self.request_stop) for sig in (signal.SIGTERM, signal.SIGINT)
        }

    @staticmethod
    def _restore_signals(handlers: dict[int, Any]) -> None:
        for sig, handler in handlers.items():
            signal.signal(sig, handler)

    def _listen(self) -> None:
        """LISTEN for campaign changes; the poll in the send loop covers a lost connection."""
        try:
            db = connect(self.settings.database_url, migrate=False)
        except UserError:
            return
        try:
            raw = db.raw_connection()
            raw.execute(f"LISTEN {leases.CHANNEL}")
            while not self.stopping:
                for _ in raw.notifies(timeout=0.5):
                    self.notifications += 1
                    self.wake.set()
        except Exception:  # noqa: S110  # the poll fallback takes over
            pass
        finally:
            db.close()

    def _idle(self) -> None:
        """Nothing to send now: say so, and wait for a notification or the next poll."""
        with self.control.transaction():
            self.clock.sync(self.control)
            leases.heartbeat(self.control, self.id, None, self.counters(), 0, self.renewals)
            if time.monotonic() >= self.tidy_at:
                # Rows that would otherwise only grow: workers long stopped or dead, and the
                # buckets of domains nobody has sent to for a while (full again: no limit lost).
                self.tidy_at = time.monotonic() + TIDY_SECONDS
                leases.forget_stopped(self.control)
                purge_full(self.control)
        self.wake.wait(self.options.poll_seconds)
        self.wake.clear()

    def _pick(self) -> int | None:
        """The next campaign with something due now, taking turns; None if there is none."""
        db = self.control
        wanted = self.options.campaign_id
        if wanted is not None:
            status = db.scalar("SELECT status FROM campaigns WHERE id = ?", (wanted,))
            if status is None:
                raise CampaignError(f"kampanje {wanted} finnes ikke")
            if status == CampaignStatus.READY.value:
                # Resumed after a pause, it is still the workers': go on. A campaign not
                # handed to them (`campaign start`, the four-eyes gate) is waited for.
                leases.resume_campaign(db, wanted)
            elif status in (CampaignStatus.DONE.value, CampaignStatus.CANCELLED.value):
                self.finished = True
                return None
            ids = [wanted]
        else:
            leases.resume_campaign(db, None)
            ids = [
                int(r[0])
                for r in db.query(
                    "SELECT id FROM campaigns WHERE status = ? AND sender_pid = ? ORDER BY id",
                    (CampaignStatus.SENDING.value, leases.WORKERS),
                )
            ]
            # Take turns: the first campaign after the one sent last.
            ids = [i for i in ids if i > self.last_campaign] + [
                i for i in ids if i <= self.last_campaign
            ]
        for cid in ids:
            status, holder = db.query_one(
                "SELECT status, sender_pid FROM campaigns WHERE id = ?", (cid,)
            ) or (None, None)
            if status != CampaignStatus.SENDING.value or holder != leases.WORKERS:
                continue
            with db.transaction():
                leases.recover_expired(db, cid)
            if leases.due(db, cid) and self._in_window(cid):
                self.last_campaign = cid
                return cid
            if leases.finish_if_done(db, cid) and wanted is not None:
                self.finished = True
        return None

    def _in_window(self, campaign_id: int) -> bool:
        """Whether the campaign's send window is open: outside it the worker stays idle,
        holding nothing, rather than sit in the campaign waiting for it (see Sender)."""
        now = dt.datetime.now(dt.UTC)
        return window_opens(get_campaign(self.control, campaign_id).spec.limits, now) <= now

    def _send(self, campaign_id: int) -> None:
        """Send one campaign for a while (see CampaignRun)."""
        spec = get_campaign(self.db, campaign_id).spec
        options = SendOptions.for_campaign(
            spec,
            connections=self.options.connections,
            build_processes=self.options.build_processes,
            # Back to the campaign list soon when only retries wait: other campaigns may not.
            linger_seconds=2.0,
            sign=self.options.sign,
        )
        run = CampaignRun(self, campaign_id, options)
        with contextlib.suppress(_NotNow):
            run.run()


RECONNECT_PAUSE = 1.0  # seconds between tries to reach a store that went away


def run_worker(
    settings: Settings,
    relay: RelayConfig,
    options: WorkerOptions,
    say: Callable[[str], None] = lambda _: None,
) -> WorkerReport:
    """Run one worker in this process until it is stopped or its campaign is finished.

    When the store goes away under it (db.lost: PostgreSQL restarted, a failover), the worker
    stops as it would stop the process, says so (`say`), and for up to
    options.reconnect_seconds tries to reach the store again; once it answers, a new worker
    takes over at once what the old one held, and goes on. Past that time, or with 0, the
    store's error is raised (the command's one line, exit status 75).
    """
    started = time.monotonic()
    counts = {"sent": 0, "deferred": 0, "failed": 0, "in_doubt": 0}
    runs = 0
    worker = Worker(settings, relay, options)
    while True:
        try:
            report = worker.run()
            break
        except Exception as e:
            failed = lost(e, settings.database_url)
            if (
                not isinstance(failed, StoreLost)
                or options.reconnect_seconds <= 0
                or worker.asked_to_stop
            ):
                raise
            for kind, n in worker.totals.items():
                counts[kind] += n
            runs += worker.runs
            say(
                f"Arbeider {worker.id}: {failed.message.removesuffix(LOST_TAIL)}; prøver å "
                f"få kontakt igjen i opptil {options.reconnect_seconds:g} s."
            )
            # One that never registered leaves its predecessor to be taken over still.
            before = worker.id if worker.registered else worker.predecessor
            worker = _reconnect(settings, relay, options, before, e)
            taken = f" tar over etter {before}" if before is not None else " fortsetter"
            say(f"Lageret svarer igjen; arbeider {worker.id}{taken}.")
    for kind, n in report.counts.items():
        counts[kind] += n
    return WorkerReport(
        report.worker_id, counts, runs + report.runs, time.monotonic() - started, report.stopped
    )


def _reconnect(
    settings: Settings,
    relay: RelayConfig,
    options: WorkerOptions,
    before: str | None,
    error: Exception,
) -> Worker:
    """A new worker once the store answers again; `error` again if it does not in time."""
    deadline = time.monotonic() + options.reconnect_seconds
    while True:
        time.sleep(min(RECONNECT_PAUSE, max(0.0, deadline - time.monotonic())))
        try:
            return Worker(settings, relay, options, predecessor=before)
        except (StoreError, psycopg.OperationalError):
            if time.monotonic() >= deadline:
                raise error from None
