"""The send loop: claim deliveries, build and sign messages, deliver them over SMTP.

Guarantee (see docs/delivery.md): every delivery ends in exactly one final state, and none is
sent twice without an operator's decision. Before the final dot of DATA is written, the
delivery's `data_started_at` is committed; its outcome is committed in order after it. A crash
therefore leaves at most one delivery per open connection whose fate is unknown: those become
`in_doubt` and are listed, never resent silently.
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import contextlib
import datetime as dt
import functools
import multiprocessing
import os
import random
import re
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

from varsel import outbox
from varsel.campaign import Campaign, CampaignSpec, CampaignStatus, get_campaign
from varsel.channel.smtp import (
    RelayConfig,
    ReplyKind,
    SendOutcome,
    SmtpConnectError,
    SmtpConnection,
)
from varsel.clock import utcnow, utcnow_iso
from varsel.config import Settings
from varsel.db import Database
from varsel.errors import UserError, VarselError
from varsel.i18n import fmt_int
from varsel.message import MessageFactory, MessageSpec, Recipient, UnitRef
from varsel.municipality import name as municipality_name
from varsel.outbox import Delivery, DeliveryState
from varsel.suppression import SuppressionKind, suppressed

_MESSAGE_ID = re.compile(rb"^Message-ID:\s*(<[^>\r\n]+>)", re.MULTILINE | re.IGNORECASE)
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
    build_processes: int | None = None  # None: one per core for large sends; 0: in-process
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
        text = (
            f"Kampanje {self.campaign_id} {how}: {fmt_int(c['sent'])} sendt, "
            f"{fmt_int(c['deferred'])} utsatt, {fmt_int(c['failed'])} feilet, "
            f"{fmt_int(c['suppressed'])} sperret, {fmt_int(c['in_doubt'])} usikre, "
            f"{fmt_int(c['queued'])} i kø. Denne kjøringen: {fmt_int(self.sent_now)} sendt på "
            f"{self.seconds:.1f} s ({self.rate:.0f}/s).".replace(".", ",", 1)
        )
        if self.in_doubt:
            text += (
                f"\n{fmt_int(self.in_doubt)} leveranser er usikre (forbindelsen brøt etter at "
                "meldingen var overført). Se «varsel campaign status "
                f"{self.campaign_id}» og send dem på nytt med «varsel campaign resend-in-doubt "
                f"{self.campaign_id}» bare hvis du vil risikere dobbel levering."
            )
        return text


class TokenBucket:
    """At most rate events per second on average, bursts up to capacity."""

    def __init__(self, rate: float, capacity: float | None = None) -> None:
        self.rate = rate
        self.capacity = capacity if capacity is not None else max(1.0, rate)
        self.tokens = self.capacity
        self.stamp = time.monotonic()

    def _refill(self) -> None:
        now = time.monotonic()
        self.tokens = min(self.capacity, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now

    def wait_time(self) -> float:
        """Seconds until one token is available (0 if now)."""
        self._refill()
        return 0.0 if self.tokens >= 1 else (1 - self.tokens) / self.rate

    def take(self) -> None:
        self._refill()
        self.tokens -= 1

    async def acquire(self) -> None:
        while (wait := self.wait_time()) > 0:
            await asyncio.sleep(wait)
        self.take()


@dataclass
class _Item:
    delivery: Delivery
    data: bytes
    message_id: str | None


class Scheduler:
    """Messages waiting to go, by recipient domain, handed out within per-domain limits."""

    def __init__(self, per_domain_concurrency: int, per_domain_per_minute: int) -> None:
        self.concurrency = per_domain_concurrency
        self.per_minute = per_domain_per_minute
        self.queues: dict[str, collections.deque[_Item]] = {}
        self.active: collections.Counter[str] = collections.Counter()
        self.buckets: dict[str, TokenBucket] = {}
        self.order: collections.deque[str] = collections.deque()
        self.changed = asyncio.Event()
        self.closed = False
        self.size = 0

    def add(self, item: _Item) -> None:
        domain = item.delivery.domain
        if domain not in self.queues:
            self.queues[domain] = collections.deque()
            self.order.append(domain)
            self.buckets[domain] = TokenBucket(
                self.per_minute / 60.0, max(1.0, min(self.per_minute / 60.0, 10.0))
            )
        self.queues[domain].append(item)
        self.size += 1
        self.changed.set()

    def close(self) -> None:
        self.closed = True
        self.changed.set()

    def drain(self) -> list[_Item]:
        """Take every waiting item out (to give them back to the outbox)."""
        items = [i for q in self.queues.values() for i in q]
        for q in self.queues.values():
            q.clear()
        self.size = 0
        return items

    async def next(self) -> _Item | None:
        """The next message some domain may take now; None once closed."""
        while True:
            if self.closed:
                return None
            soonest = 1.0
            for _ in range(len(self.order)):
                domain = self.order[0]
                self.order.rotate(-1)
                queue = self.queues[domain]
                if not queue or self.active[domain] >= self.concurrency:
                    continue
                wait = self.buckets[domain].wait_time()
                if wait > 0:
                    soonest = min(soonest, wait)
                    continue
                self.buckets[domain].take()
                self.active[domain] += 1
                self.size -= 1
                return queue.popleft()
            self.changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.changed.wait(), timeout=soonest)

    def release(self, domain: str) -> None:
        self.active[domain] -= 1
        self.changed.set()


# -- building messages in worker processes ------------------------------------------------

_factory: MessageFactory | None = None


def _init_builder(spec: MessageSpec, key_paths: list[tuple[str, str, str]]) -> None:
    global _factory  # noqa: PLW0603  # one factory per worker process, built once
    _factory = make_factory(spec, key_paths)


def _build_many(recipients: list[Recipient]) -> list[bytes]:
    assert _factory is not None  # noqa: S101  # set by the pool initializer
    return [_factory.build(r) for r in recipients]


def make_factory(spec: MessageSpec, key_paths: list[tuple[str, str, str]]) -> MessageFactory:
    """A message factory with a signer for the given (path, domain, selector) keys."""
    from pathlib import Path

    from varsel.dkim import Signer, load_key

    signer = Signer([load_key(Path(p), d, s) for p, d, s in key_paths]) if key_paths else None
    return MessageFactory(spec, signer)


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


@dataclass
class _Write:
    sql: str
    params: tuple[Any, ...]
    future: asyncio.Future[None] | None = None


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
        self.pending_writes: list[_Write] = []
        self.write_ready: asyncio.Event | None = None
        self.stopping: str | None = None
        self.sent_now = 0
        self.in_flight = 0
        self.started = time.monotonic()
        self.counts: dict[str, int] = {}
        self.mail_domain = self.campaign.spec.sender_domain
        self.fatal: str | None = None

    # -- database, on one thread -----------------------------------------------------

    async def _db(self, fn: Callable[..., Any], *args: Any) -> Any:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._dbx, fn, *args)

    def _apply_writes(self, writes: list[_Write]) -> None:
        with self.db.transaction():
            for w in writes:
                self.db.execute(w.sql, w.params)

    async def write(self, sql: str, params: Iterable[Any], *, durable: bool = False) -> None:
        """Queue a statement for the next group commit; with durable, wait for the commit."""
        future: asyncio.Future[None] | None = (
            asyncio.get_running_loop().create_future() if durable else None
        )
        self.pending_writes.append(_Write(sql, tuple(params), future))
        assert self.write_ready is not None  # noqa: S101
        self.write_ready.set()
        if future is not None:
            await future

    async def _committer(self) -> None:
        assert self.write_ready is not None  # noqa: S101
        while True:
            await self.write_ready.wait()
            self.write_ready.clear()
            batch, self.pending_writes = self.pending_writes, []
            if not batch:
                if self.stopping == "committer":
                    return
                continue
            try:
                await self._db(self._apply_writes, batch)
            except BaseException as e:
                for w in batch:
                    if w.future is not None and not w.future.done():
                        w.future.set_exception(e)
                raise
            for w in batch:
                if w.future is not None and not w.future.done():
                    w.future.set_result(None)

    async def flush(self) -> None:
        """Wait until every queued write is committed."""
        await self.write("SELECT 1", (), durable=True)

    # -- the run ---------------------------------------------------------------------

    def run(self) -> SendReport:
        """Send until done, paused or cancelled."""
        return asyncio.run(self._run())

    async def _run(self) -> SendReport:
        self._dbx = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="varsel-db")
        self.write_ready = asyncio.Event()
        try:
            await self._db(self._start)
            committer = asyncio.create_task(self._committer())
            pool = await self._db(self._make_pool)
            self.scheduler = Scheduler(
                self.options.per_domain_concurrency, self.options.per_domain_per_minute
            )
            self.global_bucket = TokenBucket(
                self.options.rate_per_second, max(1.0, self.options.rate_per_second / 10)
            )
            try:
                workers = [
                    asyncio.create_task(self._connection_worker(i))
                    for i in range(self.options.connections)
                ]
                watcher = asyncio.create_task(self._watch())
                await self._produce(pool)
                await asyncio.gather(*workers)
                watcher.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await watcher
                await self._give_back(self.scheduler.drain())
                await self.flush()
            finally:
                if pool is not None:
                    pool.shutdown(cancel_futures=True)
            self.stopping = self.stopping or "done"
            stop_reason = self.stopping
            self.stopping = "committer"
            self.write_ready.set()
            await committer
            report: SendReport = await self._db(self._finish, stop_reason)
        finally:
            self._dbx.shutdown(wait=True)
        if self.fatal:
            raise SendError(self.fatal)
        return report

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
            processes = (os.cpu_count() or 1) if int(queued or 0) >= POOL_FROM else 0
        if processes <= 0:
            return None
        return concurrent.futures.ProcessPoolExecutor(
            processes,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_init_builder,
            initargs=(spec, keys),
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

    def _claim(self) -> tuple[list[Delivery], dict[str, str], set[str], set[str], str | None]:
        db = self.db
        until = (utcnow() + dt.timedelta(seconds=LEASE_SECONDS * 10)).isoformat()
        deliveries = outbox.claim(
            db, self.campaign.id, self.worker_id, self.options.batch, utcnow_iso(), until
        )
        next_due = None
        if not deliveries:
            next_due = db.scalar(
                "SELECT min(next_attempt_at) FROM deliveries WHERE campaign_id = ? AND state = ?",
                (self.campaign.id, DeliveryState.DEFERRED.value),
            )
        orgnrs = [o for d in deliveries for o in d.units]
        names: dict[str, str] = {}
        for start in range(0, len(orgnrs), 500):
            chunk = orgnrs[start : start + 500]
            for orgnr, name, mun in db.query(
                "SELECT orgnr, name, municipality FROM recipients WHERE campaign_id = ? AND "
                f"orgnr IN ({', '.join('?' for _ in chunk)})",
                [self.campaign.id, *chunk],
            ):
                names[orgnr] = f"{name}\x1f{mun or ''}"
        blocked_addresses = suppressed(db, SuppressionKind.ADDRESS, [d.address for d in deliveries])
        blocked_units = suppressed(db, SuppressionKind.UNIT, orgnrs)
        return deliveries, names, blocked_addresses, blocked_units, next_due

    async def _produce(self, pool: concurrent.futures.ProcessPoolExecutor | None) -> None:
        try:
            while not self.stopping:
                wait = self._window_wait()
                if wait > 0:
                    await self._sleep(min(wait, 5.0))
                    continue
                if self.scheduler.size > self.options.batch * 2:
                    await self._sleep(0.01)
                    continue
                deliveries, names, blocked_a, blocked_u, next_due = await self._db(self._claim)
                if not deliveries:
                    if self.in_flight == 0 and self.scheduler.size == 0 and not next_due:
                        await self.flush()
                        break
                    delay = 0.05
                    if next_due and self.in_flight == 0 and self.scheduler.size == 0:
                        due = dt.datetime.fromisoformat(next_due.replace("Z", "+00:00"))
                        ahead = (due - utcnow()).total_seconds()
                        linger = self.options.linger_seconds
                        if linger is not None and ahead > linger:
                            self.stopping = "deferred"
                            break
                        delay = min(1.0, max(0.01, ahead))
                    await self._sleep(delay)
                    continue
                keep, recipients = await self._recipients(deliveries, names, blocked_a, blocked_u)
                built = await self._build(pool, recipients)
                for d, data in zip(keep, built, strict=True):
                    m = _MESSAGE_ID.search(data)
                    self.scheduler.add(_Item(d, data, m.group(1).decode() if m else None))
        finally:
            # Let the workers run dry, then stop them.
            while self.scheduler.size and not self.stopping:
                await asyncio.sleep(0.01)
            while self.in_flight and not self.stopping:
                await asyncio.sleep(0.01)
            self.scheduler.close()

    async def _recipients(
        self,
        deliveries: list[Delivery],
        names: dict[str, str],
        blocked_addresses: set[str],
        blocked_units: set[str],
    ) -> tuple[list[Delivery], list[Recipient]]:
        """The deliveries still to send and their message inputs; suppressed ones recorded."""
        keep: list[Delivery] = []
        recipients: list[Recipient] = []
        for d in deliveries:
            live = [u for u in d.units if u not in blocked_units]
            if d.address in blocked_addresses or not live:
                await self._outcome_suppressed(d)
                continue
            keep.append(d)
            refs = []
            for orgnr in live:
                name, _, mun = names.get(orgnr, f"{orgnr}\x1f").partition("\x1f")
                refs.append(UnitRef(orgnr, name, municipality_name(mun) if mun else None))
            recipients.append(
                Recipient(
                    d.id, d.address, tuple(refs), d.language, _grouped(d.code), d.unsubscribe_token
                )
            )
        return keep, recipients

    async def _build(
        self, pool: concurrent.futures.ProcessPoolExecutor | None, recipients: list[Recipient]
    ) -> list[bytes]:
        """Build (and sign) the messages, in the worker processes when there are any."""
        if pool is None:
            return [self.local_factory.build(r) for r in recipients]
        loop = asyncio.get_running_loop()
        chunks = [recipients[i : i + 50] for i in range(0, len(recipients), 50)]
        parts = await asyncio.gather(*(loop.run_in_executor(pool, _build_many, c) for c in chunks))
        return [m for part in parts for m in part]

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

    async def _give_back(self, items: list[_Item]) -> None:
        for item in items:
            await self.write(
                "UPDATE deliveries SET state = ?, claimed_by = NULL, updated_at = ? "
                "WHERE id = ? AND state = ?",
                (
                    DeliveryState.QUEUED.value,
                    utcnow_iso(),
                    item.delivery.id,
                    DeliveryState.CLAIMED.value,
                ),
            )

    # -- delivering ------------------------------------------------------------------

    async def _connection_worker(self, number: int) -> None:
        conn: SmtpConnection | None = None
        failures = 0
        try:
            while True:
                item = await self.scheduler.next()
                if item is None:
                    return
                self.in_flight += 1
                try:
                    await self.global_bucket.acquire()
                    if conn is None or conn.closed:
                        try:
                            conn = await SmtpConnection.open(self.relay)
                            failures = 0
                        except SmtpConnectError as e:
                            conn = None
                            if e.reply is not None and e.reply.code >= 500:
                                # The relay refuses us (login, TLS policy): retrying every
                                # message until the deadline would not help. Stop and say why.
                                self.fatal = f"e-posttjeneren {self.relay.redacted()} avviser "
                                self.fatal += f"utsendelsen: {e.message}"
                                self.stopping = "relay"
                                self.scheduler.close()
                                await self._give_back([item])
                                return
                            failures += 1
                            await self._outcome(item, SendOutcome(None, False, e.message))
                            await asyncio.sleep(min(5.0, 0.05 * 2**failures))
                            continue
                        except VarselError as e:
                            failures += 1
                            conn = None
                            await self._outcome(item, SendOutcome(None, False, e.message))
                            await asyncio.sleep(min(5.0, 0.05 * 2**failures))
                            continue
                    try:
                        outcome = await conn.send(
                            self._envelope_from(item.delivery),
                            item.delivery.address,
                            item.data,
                            before_data_end=functools.partial(self._data_started, item.delivery),
                        )
                    except ValueError as e:
                        # Nothing went out: the address or message cannot be sent over SMTP.
                        await self._failed(item.delivery, str(e))
                        continue
                    await self._outcome(item, outcome)
                finally:
                    self.in_flight -= 1
                    self.scheduler.release(item.delivery.domain)
        finally:
            if conn is not None:
                with contextlib.suppress(Exception):
                    await conn.close()

    def _envelope_from(self, delivery: Delivery) -> str:
        # Bounces come back to an address that names the delivery (VERP).
        return f"bounces+{delivery.id}@{self.mail_domain}"

    async def _data_started(self, delivery: Delivery) -> None:
        await self.write(
            "UPDATE deliveries SET data_started_at = ?, updated_at = ? WHERE id = ?",
            (utcnow_iso(), utcnow_iso(), delivery.id),
            durable=True,
        )

    async def _failed(self, d: Delivery, reason: str) -> None:
        await self.write(
            "UPDATE deliveries SET state = ?, last_reply = ?, attempts = attempts + 1, "
            "claimed_by = NULL, updated_at = ? WHERE id = ?",
            (DeliveryState.FAILED.value, reason[:500], utcnow_iso(), d.id),
        )

    async def _outcome_suppressed(self, d: Delivery) -> None:
        await self.write(
            "UPDATE deliveries SET state = ?, claimed_by = NULL, updated_at = ? WHERE id = ?",
            (DeliveryState.SUPPRESSED.value, utcnow_iso(), d.id),
        )

    async def _outcome(self, item: _Item, outcome: SendOutcome) -> None:
        d = item.delivery
        now = utcnow_iso()
        reply = outcome.reply
        reply_text = (
            f"{reply.code} {reply.enhanced + ' ' if reply.enhanced else ''}{reply.text}".strip()
            if reply
            else (outcome.error or "")
        )[:500]
        kind = outcome.kind
        if kind is ReplyKind.ACCEPTED:
            self.sent_now += 1
            await self.write(
                "UPDATE deliveries SET state = ?, sent_at = ?, message_id = ?, last_reply = ?, "
                "attempts = attempts + 1, claimed_by = NULL, updated_at = ? WHERE id = ?",
                (DeliveryState.SENT.value, now, item.message_id, reply_text, now, d.id),
            )
            return
        if reply is None and outcome.data_sent:
            # The whole message went out and the answer was lost: it may have been delivered.
            await self.write(
                "UPDATE deliveries SET state = ?, last_reply = ?, attempts = attempts + 1, "
                "claimed_by = NULL, updated_at = ? WHERE id = ?",
                (DeliveryState.IN_DOUBT.value, reply_text, now, d.id),
            )
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
            await self.write(
                "UPDATE deliveries SET state = ?, last_reply = ?, attempts = ?, "
                "data_started_at = NULL, claimed_by = NULL, updated_at = ? WHERE id = ?",
                (DeliveryState.FAILED.value, reason[:500], attempts, now, d.id),
            )
            return
        delay = min(
            self.options.retry_max_seconds, self.options.retry_base_seconds * 2 ** (attempts - 1)
        )
        delay *= random.uniform(0.8, 1.2)  # noqa: S311  # jitter, not security
        due = (utcnow() + dt.timedelta(seconds=delay)).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
        await self.write(
            "UPDATE deliveries SET state = ?, last_reply = ?, attempts = ?, next_attempt_at = ?, "
            "data_started_at = NULL, claimed_by = NULL, updated_at = ? WHERE id = ?",
            (DeliveryState.DEFERRED.value, reply_text, attempts, due, now, d.id),
        )


def _grouped(code: str) -> str:
    from varsel.codes import format_code

    return format_code(code)


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
