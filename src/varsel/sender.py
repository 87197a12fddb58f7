"""The send loop: claim deliveries, build and sign messages, deliver them over SMTP.

Guarantee (see docs/delivery.md): every delivery ends in exactly one final state, and none is
sent twice without an operator's decision. Before the final dot of DATA is written, the
delivery's `data_started_at` is committed; its outcome is committed in order after it. A crash
therefore leaves at most one delivery per open connection whose fate is unknown: those become
`in_doubt` and are listed, never resent silently.

Beside the loop: its claims (outbox_claims), where messages are built (build_pool), the
per-domain scheduler (scheduler), the statements it writes (outcomes) and their group commits
(outbox_commits).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import functools
import os
import random
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

from varsel import outbox, outcomes
from varsel.build_pool import BuildPool
from varsel.builder import Built, make_factory
from varsel.campaign import Campaign, CampaignStatus, get_campaign
from varsel.channel.smtp import (
    RelayConfig,
    ReplyKind,
    SendOutcome,
    SmtpConnectError,
    SmtpConnection,
)
from varsel.clock import IsoClock, utcnow, utcnow_iso
from varsel.config import Settings
from varsel.db import Database
from varsel.errors import Text, VarselError
from varsel.i18n import fmt_int
from varsel.outbox import Delivery, DeliveryState
from varsel.outbox_claims import Claimer
from varsel.outbox_commits import DbInline, DbThread
from varsel.scheduler import Item, Scheduler, TokenBucket
from varsel.send_config import SendError as SendError  # noqa: PLC0414  # re-exported
from varsel.send_config import SendOptions as SendOptions  # noqa: PLC0414  # re-exported
from varsel.send_config import key_paths, message_spec
from varsel.verp import Verp
from varsel.wal import Checkpointer

LEASE_SECONDS = 30.0


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


# -- the sender -------------------------------------------------------------------------

CHECKPOINT_EVERY = 0.25  # seconds between the checkpoints of a SQLite store's WAL while sending


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
        self.build_error: BaseException | None = None
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
        self.claims = Claimer(
            self.db,
            self.campaign.id,
            self.worker_id,
            self.options.batch,
            self._db,
            self._claim_times,
        )
        try:
            await self._db(self._start)
            self.checkpointer = await self._db(Checkpointer.start, self.db, CHECKPOINT_EVERY)
            self.pool = await self._db(self._make_pool)
            self.pool.start()
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
                await self.pool.finished()
                self._give_back([item.delivery for item in self.scheduler.drain()])
                await self.flush()
            finally:
                await self.pool.shutdown()
            self.stopping = self.stopping or "done"
            stop_reason = self.stopping
            await self.flush()
            report: SendReport = await self._db(self._finish, stop_reason)
        finally:
            await self.dbt.aclose()
            self.claims.close()
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
                # The status is named as the store and the command line name it.
                raise SendError(
                    Text(
                        "kampanje %(campaign)s er «%(status)s»; "
                        "gjenoppta den med «varsel campaign resume» først",
                        campaign=cid,
                        status=status,
                    )
                    if status == CampaignStatus.PAUSED.value
                    else Text(
                        "kampanje %(campaign)s er «%(status)s»; den kan ikke sendes",
                        campaign=cid,
                        status=status,
                    )
                )
            if holder and lease and lease > utcnow_iso():
                raise SendError(
                    Text(
                        "kampanje %(campaign)s sendes allerede av %(holder)s; "
                        "vent, eller stopp den prosessen",
                        campaign=cid,
                        holder=holder,
                    )
                )
            until = (now + dt.timedelta(seconds=LEASE_SECONDS)).isoformat()
            db.execute(
                "UPDATE campaigns SET status = ?, sender_pid = ?, sender_lease_until = ?, "
                "updated_at = ? WHERE id = ?",
                (CampaignStatus.SENDING.value, self.worker_id, until, utcnow_iso(), cid),
            )
        # Whoever held the campaign before is gone: settle what it left claimed.
        outbox.recover(db, cid)

    def _make_pool(self) -> BuildPool:
        spec = message_spec(self.campaign)
        keys = key_paths(self.settings, self.campaign.spec) if self.options.sign else []
        local_factory = make_factory(spec, keys)
        queued = self.db.scalar(
            "SELECT count(*) FROM deliveries WHERE campaign_id = ? AND state IN (?, ?)",
            (self.campaign.id, DeliveryState.QUEUED.value, DeliveryState.DEFERRED.value),
        )
        return BuildPool(
            spec,
            keys,
            local_factory,
            self.verp,
            self.options.build_processes,
            int(queued or 0),
            self._schedule,
            self._build_failed,
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
                if self.scheduler.size + self.pool.building > room:
                    await self._sleep(0.005)
                    continue
                claim = await self.claims.claim()
                for d in claim.suppressed:
                    self._outcome_suppressed(d)
                if not claim.count and not claim.next_due and not self.pool.building:
                    self.pool.close_early()
                if not claim.count:
                    idle = (
                        self.in_flight == 0 and self.scheduler.size == 0 and self.pool.building == 0
                    )
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
                await self.pool.build(claim.deliveries, claim.jobs)
        finally:
            # Let the workers run dry, then stop them.
            while (self.scheduler.size or self.pool.building) and not self.stopping:
                await asyncio.sleep(0.01)
            while self.in_flight and not self.stopping:
                await asyncio.sleep(0.01)
            self.scheduler.close()

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
        for d in deliveries:
            self.write(*outcomes.given_back(d.id, now))

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
                # deadline would not help. Stop and say why: the relay's own reply (e.message)
                # as the relay wrote it.
                self.fatal = Text(
                    "e-posttjeneren %(relay)s avviser utsendelsen: %(reply)s",
                    relay=self.relay.redacted(),
                    reply=e.message,
                )
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
        self.write(*outcomes.mark(delivery_id, self.now_iso()))
        return self._commit_waiter()

    def _failed(self, d: Delivery, reason: str) -> None:
        self.write(*outcomes.failed(d.id, reason, self.now_iso()))

    def _outcome_suppressed(self, d: Delivery) -> None:
        self.write(*outcomes.suppressed(d.id, self.now_iso()))

    def _outcome(self, item: Item, outcome: SendOutcome) -> None:
        if outcome.kind is ReplyKind.ACCEPTED:
            self.sent_now += 1
        options = self.options
        self.write(
            *outcomes.after_send(
                item.delivery,
                item.message_id,
                outcome,
                self.now_iso(),
                deadline_hours=options.deadline_hours,
                retry_base_seconds=options.retry_base_seconds,
                retry_max_seconds=options.retry_max_seconds,
            )
        )


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
