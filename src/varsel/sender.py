"""The send loop: claim deliveries, build and sign messages, deliver them over SMTP.

Guarantee (see docs/delivery.md): every delivery ends in exactly one final state, and none is
sent twice without an operator's decision. Before the final dot of DATA is written, the
delivery's `data_started_at` is committed; its outcome is committed in order after it. A crash
therefore leaves at most one delivery per open connection whose fate is unknown: those become
`in_doubt` and are listed, never resent silently.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import datetime as dt
import functools
import multiprocessing
import os
import random
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

from varsel import outbox
from varsel.builder import Built, Job, build_in_worker, build_jobs, init_worker, ready
from varsel.builder import make_factory as make_factory  # noqa: PLC0414  # re-exported for lint.py
from varsel.campaign import Campaign, CampaignSpec, CampaignStatus, get_campaign
from varsel.channel.smtp import (
    RelayConfig,
    ReplyKind,
    SendOutcome,
    SmtpConnectError,
    SmtpConnection,
)
from varsel.clock import IsoClock, utcnow, utcnow_iso
from varsel.config import Settings
from varsel.db import Database, connect
from varsel.errors import UserError, VarselError
from varsel.i18n import fmt_int
from varsel.message import MessageSpec
from varsel.outbox import Delivery, DeliveryState
from varsel.outbox_commits import DbInline, DbThread
from varsel.scheduler import Item, Scheduler, TokenBucket
from varsel.verp import Verp
from varsel.wal import Checkpointer

LEASE_SECONDS = 30.0
POOL_FROM = 200  # deliveries; smaller sends build messages in-process


class SendError(UserError):
    """The campaign cannot be sent now."""


@dataclass(frozen=True)
class SendOptions:
    """How a send runs; defaults come from the campaign's [limits]."""

    connections: int = 4
    rate_per_second: float = 50.0
    per_domain_concurrency: int = 2
    per_domain_per_minute: int = 600
    retry_base_seconds: float = 60.0
    retry_max_seconds: float = 3600.0
    deadline_hours: float = 48.0
    batch: int = 400
    build_processes: int | None = None  # None: per core for large sends (1 unsigned); 0: none
    respect_window: bool = True
    linger_seconds: float | None = None  # stop when the next retry is further away than this
    # False sends unsigned messages: for benchmarks and tests only (the CLI does not offer it),
    # since receivers check DKIM and a real campaign must always be signed.
    sign: bool = True

    @classmethod
    def for_campaign(cls, spec: CampaignSpec, **overrides: Any) -> SendOptions:
        limits = spec.limits
        base = cls(
            connections=limits.connections,
            rate_per_second=limits.rate_per_second,
            per_domain_concurrency=limits.per_domain_concurrency,
            per_domain_per_minute=limits.per_domain_per_minute,
            deadline_hours=limits.retry_hours,
        )
        return cls(**{**base.__dict__, **{k: v for k, v in overrides.items() if v is not None}})


@dataclass
class SendReport:
    """What one run of the sender did."""

    campaign_id: int
    counts: dict[str, int]
    sent_now: int
    seconds: float
    stopped: str  # done | paused | cancelled | deferred | interrupted
    in_doubt: int

    @property
    def rate(self) -> float:
        return self.sent_now / self.seconds if self.seconds > 0 else 0.0

    def summary(self) -> str:
        c = self.counts
        how = {
            "done": "ferdig",
            "paused": "pauset",
            "cancelled": "avbrutt (kansellert)",
            "interrupted": "stoppet",
            "deferred": "venter på nye forsøk (kjør «campaign send» igjen senere)",
            "relay": "stoppet fordi e-posttjeneren avviste utsendelsen",
        }[self.stopped]
        seconds = f"{self.seconds:.1f}".replace(".", ",")  # Norwegian decimal comma
        text = (
            f"Kampanje {self.campaign_id} {how}: {fmt_int(c['sent'])} sendt, "
            f"{fmt_int(c['deferred'])} utsatt, {fmt_int(c['failed'])} feilet, "
            f"{fmt_int(c['suppressed'])} sperret, {fmt_int(c['in_doubt'])} usikre, "
            f"{fmt_int(c['queued'])} i kø. Denne kjøringen: {fmt_int(self.sent_now)} sendt på "
            f"{seconds} s ({self.rate:.0f}/s)."
        )
        if self.in_doubt:
            text += (
                f"\n{fmt_int(self.in_doubt)} leveranser er usikre (forbindelsen brøt etter at "
                "meldingen var overført). Se «varsel campaign status "
                f"{self.campaign_id}» og send dem på nytt med «varsel campaign resend-in-doubt "
                f"{self.campaign_id}» bare hvis du vil risikere dobbel levering."
            )
        return text


def message_spec(campaign: Campaign) -> MessageSpec:
    """The per-campaign half of every message."""
    spec = campaign.spec
    return MessageSpec(
        campaign_id=campaign.id,
        from_address=spec.from_address,
        from_name=spec.from_name,
        reply_to=spec.reply_to,
        organisation=spec.organisation,
        subjects={k: t.subject for k, t in spec.templates.items()},
        text_templates={k: t.text for k, t in spec.templates.items()},
        html_templates={k: t.html for k, t in spec.templates.items()},
        document_title=spec.document_title,
        document_url=spec.document_url,
        verify_url=spec.verify_url,
        unsubscribe_url=spec.unsubscribe_url,
        unsubscribe_mailto=f"avmelding@{spec.sender_domain}",
        allow_links=spec.allow_links,
        allowed_link_domains=spec.allowed_link_domains,
        fields=dict(spec.fields),
        feedback_id=f"c{campaign.id}:varsel:{spec.sender_domain}",
    )


def key_paths(settings: Settings, spec: CampaignSpec) -> list[tuple[str, str, str]]:
    """(path, domain, selector) of the campaign's DKIM keys; RSA first, then Ed25519."""
    from varsel.keys import key_path

    domain, selector = spec.sender_domain, spec.dkim_selector
    paths = [(str(key_path(settings, domain, selector)), domain, selector)]
    if spec.dkim_ed25519:
        ed = f"{selector}e"
        paths.append((str(key_path(settings, domain, ed)), domain, ed))
    for path, _, _ in paths:
        if not os.path.exists(path):
            raise SendError(f"DKIM-nøkkelen {path} finnes ikke; lag den med «varsel keys generate»")
    return paths


# -- the sender -------------------------------------------------------------------------

# Statements that change one delivery each, with its id as the last parameter.
_MARK_SQL = "UPDATE deliveries SET data_started_at = ?, updated_at = ? WHERE id = ?"
_SENT_SQL = (
    "UPDATE deliveries SET state = ?, sent_at = ?, message_id = ?, last_reply = ?, "
    "attempts = attempts + 1, claimed_by = NULL, updated_at = ? WHERE id = ?"
)
_DOUBT_OR_FAILED_SQL = (
    "UPDATE deliveries SET state = ?, last_reply = ?, attempts = attempts + 1, "
    "claimed_by = NULL, updated_at = ? WHERE id = ?"
)
_GIVE_UP_SQL = (
    "UPDATE deliveries SET state = ?, last_reply = ?, attempts = ?, "
    "data_started_at = NULL, claimed_by = NULL, updated_at = ? WHERE id = ?"
)
_DEFER_SQL = (
    "UPDATE deliveries SET state = ?, last_reply = ?, attempts = ?, next_attempt_at = ?, "
    "data_started_at = NULL, claimed_by = NULL, updated_at = ? WHERE id = ?"
)
_SUPPRESS_SQL = "UPDATE deliveries SET state = ?, claimed_by = NULL, updated_at = ? WHERE id = ?"
_GIVE_BACK_SQL = (
    "UPDATE deliveries SET state = ?, claimed_by = NULL, updated_at = ? WHERE state = ? AND id = ?"
)
# Messages per task for a build worker: each task costs two trips between the processes.
CHUNK = 128
LOCAL_SLICE = 16  # messages built at a time in this process, between turns of the connections
CHECKPOINT_EVERY = 0.25  # seconds between the checkpoints of a SQLite store's WAL while sending


@dataclass
class _Claim:
    """One claimed batch: what to build, what was suppressed, and when more is due."""

    count: int
    deliveries: list[Delivery]
    jobs: list[Job]
    suppressed: list[Delivery]
    next_due: str | None


class Sender:
    """One run of sending one campaign, in this process."""

    def __init__(
        self,
        db: Database,
        settings: Settings,
        campaign_id: int,
        relay: RelayConfig,
        options: SendOptions | None = None,
        progress: Callable[[dict[str, int], float], None] | None = None,
    ) -> None:
        self.db = db
        self.settings = settings
        self.campaign = get_campaign(db, campaign_id)
        self.relay = relay
        self.options = options or SendOptions.for_campaign(self.campaign.spec)
        self.progress = progress
        self.worker_id = f"{os.uname().nodename}:{os.getpid()}:{random.getrandbits(32):08x}"
        self.stopping: str | None = None
        self.sent_now = 0
        self.in_flight = 0
        self.building = 0  # messages handed to the build workers and not yet back
        self.builds: set[asyncio.Future[list[Built]]] = set()
        self.build_error: BaseException | None = None
        self.pool: concurrent.futures.ProcessPoolExecutor | None = None
        self.pool_ready = False
        self.pool_closed: asyncio.Future[None] | None = None
        self.started = time.monotonic()
        self.counts: dict[str, int] = {}
        self.verp = Verp.from_settings(settings, self.campaign.spec.sender_domain)
        self.now_iso = IsoClock()
        self.checkpointer: Checkpointer | None = None  # a SQLite store's, while sending
        self.fatal: str | None = None

    # -- database, on one thread -----------------------------------------------------

    async def _db(self, fn: Callable[..., Any], *args: Any) -> Any:
        return await self.dbt.call(fn, *args)

    def _apply_writes(self, writes: list[tuple[str, tuple[Any, ...]]]) -> None:
        # Statements about different deliveries commute, so each kind runs as one executemany.
        # A delivery's own statements never share a batch (its outcome waits for its mark's
        # commit), but if they ever did, their order would matter: then they run as queued.
        groups: dict[str, list[tuple[Any, ...]]] = {}
        for sql, params in writes:
            groups.setdefault(sql, []).append(params)
        one_each = len({params[-1] for _, params in writes}) == len(writes)
        with self.db.transaction():
            if one_each:
                for sql, rows in groups.items():
                    self.db.executemany(sql, rows)
            else:
                for sql, params in writes:
                    self.db.execute(sql, params)
        if self.checkpointer is not None:
            self.checkpointer.wrote.set()

    def write(self, sql: str, params: tuple[Any, ...]) -> None:
        """Queue a statement about one delivery (its id last) for the next group commit."""
        self.dbt.write((sql, params))

    def _commit_waiter(self) -> asyncio.Future[None]:
        """A future done when everything queued so far is committed; starts that commit."""
        return self.dbt.committed_future()

    async def flush(self) -> None:
        """Wait until every queued write is committed."""
        await self._commit_waiter()

    # -- the run ---------------------------------------------------------------------

    def run(self) -> SendReport:
        """Send until done, paused or cancelled."""
        return asyncio.run(self._run())

    async def _run(self) -> SendReport:
        loop = asyncio.get_running_loop()
        # A SQLite file is written on the loop; a server's store (a round trip per statement)
        # on a thread of its own.
        inline = self.db.dialect == "sqlite"
        self.dbt = (DbInline if inline else DbThread)(loop, self._apply_writes)
        # Claimed deliveries' units are read on a connection of their own (SQLite files).
        self.reader_db: Database | None = None
        self.reader = (
            concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="varsel-read")
            if self.db.dialect == "sqlite" and ":memory:" not in self.db.url
            else None
        )
        try:
            await self._db(self._start)
            self.checkpointer = await self._db(Checkpointer.start, self.db, CHECKPOINT_EVERY)
            self.pool = pool = await self._db(self._make_pool)
            if pool is not None:
                # A worker takes some tenths of a second to start (a new interpreter, its
                # imports, the factory); until one has, messages are built here instead.
                started = asyncio.get_running_loop().run_in_executor(pool, ready)
                started.add_done_callback(self._pool_started)
            self.scheduler, self.global_bucket = self._limits()
            try:
                workers = [
                    asyncio.create_task(self._connection_worker(i))
                    for i in range(self.options.connections)
                ]
                watcher = asyncio.create_task(self._watch())
                await self._produce()
                await asyncio.gather(*workers)
                watcher.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await watcher
                # Messages still being built when sending stopped go back to the queue too.
                await asyncio.gather(*self.builds, return_exceptions=True)
                self._give_back([item.delivery for item in self.scheduler.drain()])
                await self.flush()
            finally:
                if self.pool is not None:
                    self.pool.shutdown(cancel_futures=True)
                if self.pool_closed is not None:
                    await self.pool_closed
            self.stopping = self.stopping or "done"
            stop_reason = self.stopping
            await self.flush()
            report: SendReport = await self._db(self._finish, stop_reason)
        finally:
            await self.dbt.aclose()
            if self.reader is not None:
                self.reader.submit(self._close_reader).result()
                self.reader.shutdown()
            if self.checkpointer is not None:
                self.checkpointer.close()
        if self.build_error is not None:
            raise self.build_error
        if self.fatal:
            raise SendError(self.fatal)
        return report

    def _limits(self) -> tuple[Scheduler, TokenBucket]:
        """The per-domain scheduler and the overall rate limit of this run."""
        options = self.options
        return (
            Scheduler(options.per_domain_concurrency, options.per_domain_per_minute),
            TokenBucket(options.rate_per_second, max(1.0, options.rate_per_second / 10)),
        )

    def _start(self) -> None:
        db, cid = self.db, self.campaign.id
        now = utcnow()
        with db.transaction():
            row = db.query_one(
                "SELECT status, sender_pid, sender_lease_until FROM campaigns WHERE id = ?", (cid,)
            )
            assert row is not None  # noqa: S101
            status, holder, lease = row
            if status in (CampaignStatus.CANCELLED.value, CampaignStatus.PAUSED.value):
                raise SendError(
                    f"kampanje {cid} er «{status}»; "
                    + (
                        "gjenoppta den med «varsel campaign resume» først"
                        if status == CampaignStatus.PAUSED.value
                        else "den kan ikke sendes"
                    )
                )
            if holder and lease and lease > utcnow_iso():
                raise SendError(
                    f"kampanje {cid} sendes allerede av {holder}; vent, eller stopp den prosessen"
                )
            until = (now + dt.timedelta(seconds=LEASE_SECONDS)).isoformat()
            db.execute(
                "UPDATE campaigns SET status = ?, sender_pid = ?, sender_lease_until = ?, "
                "updated_at = ? WHERE id = ?",
                (CampaignStatus.SENDING.value, self.worker_id, until, utcnow_iso(), cid),
            )
        # Whoever held the campaign before is gone: settle what it left claimed.
        outbox.recover(db, cid)

    def _make_pool(self) -> concurrent.futures.ProcessPoolExecutor | None:
        spec = message_spec(self.campaign)
        keys = key_paths(self.settings, self.campaign.spec) if self.options.sign else []
        self.local_factory = make_factory(spec, keys)
        queued = self.db.scalar(
            "SELECT count(*) FROM deliveries WHERE campaign_id = ? AND state IN (?, ?)",
            (self.campaign.id, DeliveryState.QUEUED.value, DeliveryState.DEFERRED.value),
        )
        processes = self.options.build_processes
        if processes is None:
            # Signing is most of a message's cost, and takes every core; an unsigned message
            # (benchmarks, tests) costs less to build than to send, so one worker keeps up, and
            # each more would only cost another interpreter's start.
            cores = (os.cpu_count() or 1) if keys else 1
            processes = cores if int(queued or 0) >= POOL_FROM else 0
        if processes <= 0:
            return None
        return concurrent.futures.ProcessPoolExecutor(
            processes,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=init_worker,
            initargs=(spec, keys, self.verp),
        )

    def _finish(self, stopped: str) -> SendReport:
        db, cid = self.db, self.campaign.id
        counts = outbox.counts(db, cid)
        pending = counts["queued"] + counts["deferred"] + counts["claimed"]
        with db.transaction():
            status = db.scalar("SELECT status FROM campaigns WHERE id = ?", (cid,))
            new_status = status
            if status == CampaignStatus.SENDING.value:
                new_status = (CampaignStatus.DONE if pending == 0 else CampaignStatus.READY).value
            db.execute(
                "UPDATE campaigns SET status = ?, sender_pid = NULL, sender_lease_until = NULL, "
                "updated_at = ? WHERE id = ?",
                (new_status, utcnow_iso(), cid),
            )
            outbox.record_event(
                db,
                cid,
                None,
                "send_run",
                {"sent": self.sent_now, "stopped": stopped, "worker": self.worker_id},
            )
        return SendReport(
            cid, counts, self.sent_now, time.monotonic() - self.started, stopped, counts["in_doubt"]
        )

    # -- producing ---------------------------------------------------------------------

    def _window_wait(self) -> float:
        """Seconds until the send window opens (0 when open or when there is none)."""
        limits = self.campaign.spec.limits
        if not self.options.respect_window or not (limits.window_start or limits.window_days):
            return 0.0
        now = dt.datetime.now(ZoneInfo(limits.timezone))
        days = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
        for ahead in range(8):
            day = now + dt.timedelta(days=ahead)
            if limits.window_days and days[day.weekday()] not in limits.window_days:
                continue
            start = dt.time.fromisoformat(limits.window_start or "00:00")
            end = dt.time.fromisoformat(limits.window_end or "23:59")
            opens = dt.datetime.combine(day.date(), start, now.tzinfo)
            closes = dt.datetime.combine(day.date(), end, now.tzinfo)
            if closes <= now:
                continue
            return max(0.0, (opens - now).total_seconds())
        return 3600.0

    def _claim_times(self) -> tuple[str, str]:
        """Now, and when the lease of deliveries claimed now runs out."""
        return utcnow_iso(), (utcnow() + dt.timedelta(seconds=LEASE_SECONDS * 10)).isoformat()

    async def _claim(self) -> _Claim:
        """Claim a batch on the database thread; read what its messages need on another."""
        # The read and the objects made from it took three quarters of a claim's ~10 ms, while
        # every connection's durable mark waited behind it on the database thread.
        rows, next_due = await self._db(self._claim_rows)
        if self.reader is None:
            claim: _Claim = await self._db(self._claimed, self.db, rows, next_due)
            return claim
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self.reader, self._read_claimed, rows, next_due)

    def _claim_rows(self) -> tuple[list[Any], str | None]:
        db = self.db
        now, until = self._claim_times()
        rows = outbox.claim_rows(
            db, self.campaign.id, self.worker_id, self.options.batch, now, until
        )
        next_due = None
        if not rows:
            next_due = db.scalar(
                "SELECT min(next_attempt_at) FROM deliveries WHERE campaign_id = ? AND state = ?",
                (self.campaign.id, DeliveryState.DEFERRED.value),
            )
        return rows, next_due

    def _read_claimed(self, rows: list[Any], next_due: str | None) -> _Claim:
        if self.reader_db is None:
            self.reader_db = connect(self.db.url, migrate=False)
        return self._claimed(self.reader_db, rows, next_due)

    def _claimed(self, db: Database, rows: list[Any], next_due: str | None) -> _Claim:
        claimed = outbox.with_units(db, self.campaign.id, rows)
        claim = _Claim(len(claimed), [], [], [], next_due)
        for c in claimed:
            d = c.delivery
            # Suppressed units are left out; with none left, or the address suppressed, the
            # delivery is settled as suppressed without a message.
            units = tuple(
                (orgnr, name, mun) for orgnr, name, mun, blocked in c.units if not blocked
            )
            if c.address_suppressed or not units:
                claim.suppressed.append(d)
                continue
            claim.deliveries.append(d)
            claim.jobs.append((d.id, d.address, d.language, d.code, d.unsubscribe_token, units))
        return claim

    async def _produce(self) -> None:
        # Claimed messages not yet on the wire: enough to keep the connections and the build
        # workers busy, few enough that memory does not grow with the campaign.
        room = self.options.batch * 2
        settled = False  # everything was committed, then nothing was due: the run is over
        try:
            while not self.stopping:
                wait = self._window_wait()
                if wait > 0:
                    await self._sleep(min(wait, 5.0))
                    continue
                if self.scheduler.size + self.building > room:
                    await self._sleep(0.005)
                    continue
                claim = await self._claim()
                for d in claim.suppressed:
                    self._outcome_suppressed(d)
                if not claim.count and not claim.next_due and not self.building:
                    self._close_pool()
                if not claim.count:
                    idle = self.in_flight == 0 and self.scheduler.size == 0 and self.building == 0
                    if idle and not claim.next_due:
                        if settled:
                            break
                        # Outcomes still queued for a commit may have deferred deliveries the
                        # claim could not see yet: commit them, then look once more.
                        await self.flush()
                        settled = True
                        continue
                    settled = False
                    delay = 0.05
                    if claim.next_due and idle:
                        due = dt.datetime.fromisoformat(claim.next_due.replace("Z", "+00:00"))
                        ahead = (due - utcnow()).total_seconds()
                        linger = self.options.linger_seconds
                        if linger is not None and ahead > linger:
                            self.stopping = "deferred"
                            break
                        delay = min(1.0, max(0.01, ahead))
                    await self._sleep(delay)
                    continue
                settled = False
                await self._build(claim.deliveries, claim.jobs)
        finally:
            # Let the workers run dry, then stop them.
            while (self.scheduler.size or self.building) and not self.stopping:
                await asyncio.sleep(0.01)
            while self.in_flight and not self.stopping:
                await asyncio.sleep(0.01)
            self.scheduler.close()

    def _close_reader(self) -> None:
        if self.reader_db is not None:
            self.reader_db.close()
            self.reader_db = None

    def _pool_started(self, future: asyncio.Future[None]) -> None:
        if not future.cancelled():
            future.exception()  # a worker that cannot start fails the build tasks, with the reason
        self.pool_ready = True

    def _close_pool(self) -> None:
        """Let the build workers exit while the last messages go out (the outbox is empty)."""
        if self.pool is not None:
            # Deliveries deferred from here on are few (those in flight), and built in-process.
            self.pool_closed = asyncio.ensure_future(asyncio.to_thread(self.pool.shutdown))
            self.pool = None

    async def _build(self, deliveries: list[Delivery], jobs: list[Job]) -> None:
        """Build (and sign) the messages, in the worker processes when there are any."""
        pool = self.pool
        if pool is None:
            self._build_here(deliveries, jobs)
            return
        done = 0
        while done < len(jobs) and not self.pool_ready:
            # A few at a time, so that the connections send them while the rest are built.
            here = slice(done, done + LOCAL_SLICE)
            if not self._build_here(deliveries[here], jobs[here]):
                return
            done += LOCAL_SLICE
            await asyncio.sleep(0)
        loop = asyncio.get_running_loop()
        for start in range(done, len(jobs), CHUNK):
            part = deliveries[start : start + CHUNK]
            future = loop.run_in_executor(pool, build_in_worker, jobs[start : start + CHUNK])
            self.building += len(part)
            self.builds.add(future)
            future.add_done_callback(functools.partial(self._built, part))

    def _built(self, deliveries: list[Delivery], future: asyncio.Future[list[Built]]) -> None:
        self.building -= len(deliveries)
        self.builds.discard(future)
        if future.cancelled():
            return  # the pool was shut down: they are still claimed, and requeued next run
        error = future.exception()
        if error is None:
            self._schedule(deliveries, future.result())
        else:
            self._build_failed(deliveries, error)

    def _build_here(self, deliveries: list[Delivery], jobs: list[Job]) -> bool:
        """Build in this process; False if a message could not be built (the run stops)."""
        try:
            built = build_jobs(self.local_factory, jobs, self.verp)
        except Exception as e:
            self._build_failed(deliveries, e)
            return False
        self._schedule(deliveries, built)
        return True

    def _build_failed(self, deliveries: list[Delivery], error: BaseException) -> None:
        # A message that cannot be built (a template error) stops the run with the reason;
        # nothing of it went out, so the deliveries go back to the queue.
        self._give_back(deliveries)
        if self.build_error is None:
            self.build_error = error
            self.stopping = self.stopping or "interrupted"
            self.scheduler.close()

    def _schedule(self, deliveries: list[Delivery], built: list[Built]) -> None:
        add = self.scheduler.add
        for d, (data, message_id, mail_from) in zip(deliveries, built, strict=True):
            add(Item(d, data, message_id, d.domain, mail_from))

    async def _sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)

    async def _watch(self) -> None:
        while True:
            await asyncio.sleep(0.5)
            status = await self._db(self._renew)
            if status in (CampaignStatus.PAUSED.value, CampaignStatus.CANCELLED.value):
                self.stopping = "paused" if status == CampaignStatus.PAUSED.value else "cancelled"
                self.scheduler.close()
            if self.progress is not None:
                self.counts = await self._db(outbox.counts, self.db, self.campaign.id)
                elapsed = time.monotonic() - self.started
                self.progress(self.counts, self.sent_now / elapsed if elapsed else 0.0)

    def _renew(self) -> str:
        until = (utcnow() + dt.timedelta(seconds=LEASE_SECONDS)).isoformat()
        with self.db.transaction():
            self.db.execute(
                "UPDATE campaigns SET sender_lease_until = ? WHERE id = ? AND sender_pid = ?",
                (until, self.campaign.id, self.worker_id),
            )
            return str(
                self.db.scalar("SELECT status FROM campaigns WHERE id = ?", (self.campaign.id,))
            )

    def _give_back(self, deliveries: Iterable[Delivery]) -> None:
        now = utcnow_iso()
        queued, claimed = DeliveryState.QUEUED.value, DeliveryState.CLAIMED.value
        for d in deliveries:
            self.write(_GIVE_BACK_SQL, (queued, now, claimed, d.id))

    # -- delivering ------------------------------------------------------------------

    async def _connection_worker(self, number: int) -> None:
        conn: SmtpConnection | None = None
        failures = 0
        scheduler = self.scheduler
        bucket = self.global_bucket
        # The message this connection takes next, when it took one while sending the last:
        # (item, its envelope sender, whether it holds its token of the overall rate).
        ahead: tuple[Item, str, bool] | None = None
        try:
            while True:
                if ahead is None:
                    # Most of the time a message is waiting: no coroutine is needed to get it.
                    item = scheduler.take() or await scheduler.next()
                    if item is None:
                        return
                    self.in_flight += 1
                    mail_from, has_token = item.mail_from, False
                else:
                    (item, mail_from, has_token), ahead = ahead, None
                try:
                    if not has_token and bucket.try_take() > 0:
                        await bucket.acquire()
                    if conn is None or conn.closed:
                        conn, failures = await self._connect(item, failures)
                        if conn is None:
                            if self.fatal:
                                return
                            continue
                    delivery = item.delivery
                    # With PIPELINING the next message's envelope goes out with this one's
                    # final dot: one write and one round trip per message.
                    then = None
                    if conn.pipelining and (following := scheduler.take()) is not None:
                        self.in_flight += 1
                        token = bucket.try_take() == 0
                        ahead = (following, following.mail_from, token)
                        if token:
                            then = (ahead[1], following.delivery.address, following.data)
                    try:
                        outcome = await conn.send(
                            mail_from,  # VERP: names the delivery, signed
                            delivery.address,
                            item.data,
                            before_data_end=functools.partial(
                                self._before_dot, delivery.id, scheduler.gate(item.domain)
                            ),
                            then=then,
                            smtp_ready=True,  # MessageFactory builds messages ready for SMTP
                        )
                    except ValueError as e:
                        # Nothing went out: the address or message cannot be sent over SMTP.
                        self._failed(delivery, str(e))
                        continue
                    self._outcome(item, outcome)
                finally:
                    self.in_flight -= 1
                    scheduler.release(item.domain)
        finally:
            if ahead is not None:
                # Taken but never sent (the run stopped on an error): still claimed, and
                # settled by the next run as anything claimed without its mark.
                self.in_flight -= 1
                scheduler.release(ahead[0].domain)
            if conn is not None:
                with contextlib.suppress(Exception):
                    await conn.close()

    async def _connect(self, item: Item, failures: int) -> tuple[SmtpConnection | None, int]:
        """A new connection, or None once the item is settled; and the failures in a row."""
        try:
            return await SmtpConnection.open(self.relay), 0
        except SmtpConnectError as e:
            if e.reply is not None and e.reply.code >= 500:
                # The relay refuses us (login, TLS policy): retrying every message until the
                # deadline would not help. Stop and say why.
                self.fatal = f"e-posttjeneren {self.relay.redacted()} avviser "
                self.fatal += f"utsendelsen: {e.message}"
                self.stopping = "relay"
                self.scheduler.close()
                self._give_back([item.delivery])
                return None, failures
            message = e.message
        except VarselError as e:
            message = e.message
        failures += 1
        self._outcome(item, SendOutcome(None, False, message))
        await asyncio.sleep(min(5.0, 0.05 * 2**failures))
        return None, failures

    async def _before_dot(self, delivery_id: int, gate: TokenBucket) -> None:
        """What has to happen before a message's final dot goes out, in this order.

        The durable mark first (a crash after it leaves the delivery in doubt, never sent
        unrecorded), then the recipient domain's token, so that the domain's rate holds for
        the dots as the recipient's server sees them, however long the commit took; then the
        last checks (`_dot_going`), with nothing to wait for between them and the write.
        """
        await self._data_started(delivery_id)
        if gate.try_take() > 0:
            await gate.acquire()
        self._dot_going(delivery_id)

    def _dot_going(self, delivery_id: int) -> None:
        """The last check before the final dot; raising keeps the dot back."""

    def _data_started(self, delivery_id: int) -> asyncio.Future[None]:
        """Queue the mark that the final dot may go out; the future is done once it is durable."""
        now = self.now_iso()
        self.write(_MARK_SQL, (now, now, delivery_id))
        return self._commit_waiter()

    def _failed(self, d: Delivery, reason: str) -> None:
        self.write(
            _DOUBT_OR_FAILED_SQL,
            (DeliveryState.FAILED.value, reason[:500], self.now_iso(), d.id),
        )

    def _outcome_suppressed(self, d: Delivery) -> None:
        self.write(_SUPPRESS_SQL, (DeliveryState.SUPPRESSED.value, self.now_iso(), d.id))

    def _outcome(self, item: Item, outcome: SendOutcome) -> None:
        d = item.delivery
        now = self.now_iso()
        reply = outcome.reply
        reply_text = (str(reply) if reply else (outcome.error or ""))[:500]
        kind = outcome.kind
        if kind is ReplyKind.ACCEPTED:
            self.sent_now += 1
            self.write(
                _SENT_SQL,
                (DeliveryState.SENT.value, now, item.message_id, reply_text, now, d.id),
            )
            return
        if reply is None and outcome.data_sent:
            # The whole message went out and the answer was lost: it may have been delivered.
            self.write(_DOUBT_OR_FAILED_SQL, (DeliveryState.IN_DOUBT.value, reply_text, now, d.id))
            return
        attempts = d.attempts + 1
        created = dt.datetime.fromisoformat(d.created_at.replace("Z", "+00:00"))
        deadline = created + dt.timedelta(hours=self.options.deadline_hours)
        if kind is ReplyKind.PERMANENT or utcnow() >= deadline:
            reason = (
                reply_text
                if kind is ReplyKind.PERMANENT
                else (f"ga opp etter {attempts} forsøk: {reply_text}")
            )
            self.write(
                _GIVE_UP_SQL, (DeliveryState.FAILED.value, reason[:500], attempts, now, d.id)
            )
            return
        delay = min(
            self.options.retry_max_seconds, self.options.retry_base_seconds * 2 ** (attempts - 1)
        )
        delay *= random.uniform(0.8, 1.2)  # noqa: S311  # jitter, not security
        due = (utcnow() + dt.timedelta(seconds=delay)).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
        self.write(_DEFER_SQL, (DeliveryState.DEFERRED.value, reply_text, attempts, due, now, d.id))


def send_campaign(
    db: Database,
    settings: Settings,
    campaign_id: int,
    *,
    relay: RelayConfig | None = None,
    options: SendOptions | None = None,
    progress: Callable[[dict[str, int], float], None] | None = None,
) -> SendReport:
    """Send a campaign until every delivery is final, or it is paused or cancelled."""
    relay = relay or RelayConfig.from_url(settings.smtp_url)
    return Sender(db, settings, campaign_id, relay, options, progress).run()


@dataclass
class StatusReport:
    """A campaign's state for `campaign status`."""

    campaign: Campaign
    counts: dict[str, int]
    in_doubt: list[outbox.InDoubt] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.campaign.id,
            "name": self.campaign.name,
            "status": self.campaign.status.value,
            **self.counts,
            "in_doubt_deliveries": [d.as_dict() for d in self.in_doubt],
        }


def status(db: Database, campaign_id: int) -> StatusReport:
    """Counts per state and the in-doubt deliveries of a campaign."""
    campaign = get_campaign(db, campaign_id)
    return StatusReport(campaign, outbox.counts(db, campaign_id), outbox.in_doubt(db, campaign_id))
