"""The send loop: claim deliveries, build and sign messages, deliver them over SMTP.

Guarantee (see docs/delivery.md): every delivery ends in exactly one final state, and none is
sent twice without an operator's decision. Before the final dot of DATA is written, the
delivery's `data_started_at` is committed; its outcome is committed in order after it. A crash
therefore leaves at most one delivery per open connection whose fate is unknown: those become
`in_doubt` and are listed, never resent silently.

Beside the loop: the checks before it starts and the campaign's lock (send_lock), its claims
(outbox_claims), where messages are built (build_pool), the per-domain scheduler (scheduler),
the statements it writes (outcomes) and their group commits (outbox_commits), and its report
(send_report).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import functools
import os
import random
import signal
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import uvloop

from varsel import claimed_units, outbox, outcomes, reply_words, send_lock
from varsel.build_pool import BuildPool
from varsel.builder import Outcome, Suppressed, Unbuildable
from varsel.campaign import CampaignStatus, get_campaign
from varsel.channel.smtp import SmtpConnectError, SmtpConnection
from varsel.channel.smtp_relay import RelayConfig
from varsel.channel.smtp_replies import ReplyKind, SendOutcome
from varsel.clock import IsoClock, iso, utcnow, utcnow_iso
from varsel.config import Settings
from varsel.db import Database, normalise_url
from varsel.errors import N_, Text, VarselError
from varsel.message import MessageFactory
from varsel.outbox import Delivery, DeliveryState
from varsel.outbox_claims import Claim, Claimer
from varsel.outbox_commits import DbInline, DbThread
from varsel.scheduler import Item, Scheduler, TokenBucket, bucket_memory
from varsel.send_config import SendError as SendError  # noqa: PLC0414  # re-exported
from varsel.send_config import SendOptions as SendOptions  # noqa: PLC0414  # re-exported
from varsel.send_config import message_spec
from varsel.send_report import SendReport
from varsel.send_window import window_opens
from varsel.verp import Verp
from varsel.wal import Checkpointer

# -- the sender -------------------------------------------------------------------------

CHECKPOINT_EVERY = 0.25  # seconds between the checkpoints of a SQLite store's WAL while sending


class _StoppedBeforeDot(Exception):
    """The run stopped while a message waited for its domain's turn: its dot never went out."""


class Sender:
    """One run of sending one campaign, in this process."""

    # Why the run stops when the relay cannot be used, ending with what brings the rest out.
    RELAY_UNUSABLE = N_(
        "e-posttjeneren %(relay)s kan ikke brukes: %(reason)s (%(tries)s forsøk); "
        "leveransene som gjenstår, venter i køen til neste «campaign send»"
    )

    def __init__(
        self,
        db: Database,
        settings: Settings,
        campaign_id: int,
        relay: RelayConfig,
        options: SendOptions | None = None,
        progress: Callable[[dict[str, int], float], None] | None = None,
        on_start: Callable[[Database], None] | None = None,
    ) -> None:
        self.db = db
        self.settings = settings
        self.campaign = get_campaign(db, campaign_id)
        self.relay = relay
        self.options = options or SendOptions.for_campaign(self.campaign.spec)
        self.progress = progress
        self.worker_id = f"{os.uname().nodename}:{os.getpid()}:{random.getrandbits(32):08x}"
        self.stopping: str | None = None
        self.watch_error: BaseException | None = None  # why the watcher stopped, if it failed
        self.sent_now = 0
        # Transactions in a row that the relay, not the recipient, kept back (relay_trouble):
        # enough of them stop the run, so that a relay that is down is not retried message by
        # message until every delivery has given up.
        self.relay_troubles = 0
        # The deliveries just refused in a row with the same words, not about their address,
        # and their domains: as many across domains are the relay's policy (relaying denied,
        # a content filter), not the recipients'.
        self.refusals: list[int] = []
        self.refusal_words = ""
        self.refusal_domains: set[str] = set()
        # Recipient domains the relay throttled (SendOutcome.domain_throttled): until when
        # each waits (monotonic, and as the store keeps time) and the reply; how many times in
        # a row each was throttled (its wait doubles); and the domains throttled since the
        # relay last took a message, each counted once as relay trouble.
        self.held: dict[str, tuple[float, str, str]] = {}
        self.throttles: dict[str, int] = {}
        self.throttled_in_a_row: set[str] = set()
        self.in_flight = 0
        self.build_error: BaseException | None = None
        self.started = time.monotonic()
        self.counts: dict[str, int] = {}
        self.verp = Verp.from_settings(settings, self.campaign.spec.sender_domain)
        self.now_iso = IsoClock()
        self.checkpointer: Checkpointer | None = None  # a SQLite store's, while sending
        self.fatal: str | None = None
        self.on_start = on_start
        self.locked = False  # this run holds the campaign's lease: release it however it ends
        self.factory: MessageFactory | None = None  # made by check(), before the lock
        self.interrupted = False  # Ctrl-C stopped this run
        self.ctrl_c = False  # this run handles Ctrl-C: set by run(), read by _run()
        self.keys: list[tuple[str, str, str]] = []
        self.recent_dots: dict[str, int] = {}  # per domain, by earlier runs (_recent_dots)

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
        self.check()
        # Ctrl-C is handled by the run (as SIGTERM is) unless whoever runs it handles SIGINT.
        # Asked here, before asyncio.Runner puts its own SIGINT handler in place of Python's.
        self.ctrl_c = (
            threading.current_thread() is threading.main_thread()
            and signal.getsignal(signal.SIGINT) is signal.default_int_handler
        )
        # uvloop, as `varsel serve` runs on: the loop's own work is a large part of what a
        # message costs the sender (measured: ~8 % fewer CPU µs a message, ~6 % more messages a
        # second against smtp-sink; docs/benchmarks.md).
        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            report = runner.run(self._run())
        if self.interrupted:
            raise KeyboardInterrupt
        return report

    def check(self) -> None:
        """Refuse, before the campaign is locked, what would stop the send (send_lock.check)."""
        self.keys, self.factory = send_lock.check(self.settings, self.campaign, self.options)

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
            self.options.claim_size,
            self._db,
            self._claim_times,
            lambda: self.pool.reads_units,
        )
        terminate = self._handle_signals(loop)
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
                watcher.add_done_callback(self._watch_ended)
                await self._send_all(workers)
                watcher.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await watcher
                # Messages still being built when sending stopped go back to the queue too.
                await self.pool.finished()
                self._give_back([item.delivery for item in self.scheduler.drain()])
                await self.flush()
                if self.watch_error is not None:
                    raise self.watch_error
            finally:
                await self.pool.shutdown()
            self.stopping = self.stopping or "done"
            stop_reason = self.stopping
            await self.flush()
            report: SendReport = await self._db(self._finish, stop_reason)
        finally:
            if terminate:
                loop.remove_signal_handler(signal.SIGTERM)
            if self.ctrl_c:
                loop.remove_signal_handler(signal.SIGINT)  # Python's own handler again
            await self.dbt.aclose()
            self.claims.close()
            if self.checkpointer is not None:
                self.checkpointer.close()
            if self.locked:
                # An error (or Ctrl-C) ended the run: what it queued is committed (aclose), so
                # what is left claimed is settled as after a crash, and the lock given up.
                self._release()
        if self.build_error is not None:
            raise self.build_error
        if self.fatal:
            raise SendError(self.fatal)
        return report

    async def _send_all(self, workers: list[asyncio.Task[None]]) -> None:
        """Hand the messages to the connections, and wait until they have sent them."""
        try:
            await self._produce()
            await asyncio.gather(*workers)
        except Exception:
            # The first error ends the run (the store lost, most often): the other
            # connections stop now, and their own errors are retrieved here rather than
            # printed as tracebacks when the loop closes.
            for task in workers:
                task.cancel()
            await asyncio.gather(*workers, return_exceptions=True)
            raise

    def _limits(self) -> tuple[Scheduler, TokenBucket]:
        """The per-domain scheduler and the overall rate limit of this run."""
        options = self.options
        scheduler = Scheduler(options.per_domain_concurrency, options.per_domain_per_minute)
        scheduler.seed(self.recent_dots)
        return (
            scheduler,
            TokenBucket(options.rate_per_second, max(1.0, options.rate_per_second / 10)),
        )

    def _start(self) -> None:
        send_lock.take(self.db, self.campaign.id, self.worker_id, self.on_start)
        self.locked = True
        # Whoever held the campaign before is gone: settle what it left claimed.
        outbox.recover(self.db, self.campaign.id)
        self.recent_dots = self._recent_dots()

    def _recent_dots(self) -> dict[str, int]:
        """Final dots per recipient domain that earlier runs wrote within a domain bucket's
        memory: a send resumed after a pause, a stop or a crash spends them again otherwise."""
        memory = bucket_memory(self.options.per_domain_per_minute)
        since = iso(utcnow() - dt.timedelta(seconds=memory))
        # data_started_at is written just before the domain's token is taken, and kept by a
        # delivery that was sent or is in doubt. One deferred or failed after its dot (the
        # relay took DATA, then answered 4xx/5xx) spent a token too, but is not counted: its
        # mark is cleared (outcomes.after_send) because the mark is what the crash rule reads,
        # and a deferred delivery claimed again keeps it, so a crash before its next dot would
        # put it in doubt (outbox.recover, leases.recover_expired). A resumed send may so give
        # a domain that answers after DATA that many messages more than its limit, at most the
        # two bursts a bucket spends within its memory.
        dots: dict[str, int] = {}
        for (address,) in self.db.query(
            "SELECT address FROM deliveries WHERE campaign_id = ? AND data_started_at >= ?",
            (self.campaign.id, since),
        ):
            domain = str(address).rsplit("@", 1)[-1]
            dots[domain] = dots.get(domain, 0) + 1
        return dots

    def _release(self) -> None:
        """After an error: this run's claims settled, the campaign's status and lock restored."""
        send_lock.release(self.db, self.campaign.id, self.worker_id, self.sent_now)
        self.locked = False

    def _watch_ended(self, task: asyncio.Task[None]) -> None:
        """The watcher renews the lock and sees a pause: if it fails, the run stops too.

        Without it the lock would run out under a running send (another sender could take
        the campaign) and a pause would go unseen. Its error, retrieved here, ends the run
        once the messages on the wire are done and the rest given back.
        """
        if task.cancelled() or (error := task.exception()) is None:
            return
        self.watch_error = error
        self._terminate()

    def _terminate(self) -> None:
        """SIGTERM: finish what is on the wire, give the rest back, release the campaign."""
        self.stopping = self.stopping or "interrupted"
        scheduler = getattr(self, "scheduler", None)
        if scheduler is not None:
            scheduler.close()

    def _handle_signals(self, loop: asyncio.AbstractEventLoop) -> bool:
        """SIGTERM and Ctrl-C stop the run; returns whether SIGTERM's handler is this run's."""
        # SIGTERM (a service manager, kill) stops the run as a pause does, the lock released;
        # unless whoever runs this (a worker, the console's threads) handles signals itself.
        terminate = (
            threading.current_thread() is threading.main_thread()
            and signal.getsignal(signal.SIGTERM) is signal.SIG_DFL
        )
        if terminate:
            loop.add_signal_handler(signal.SIGTERM, self._terminate)
        if self.ctrl_c:
            # asyncio's own Ctrl-C cancels the run, which then sent every message already
            # scheduled before it stopped (minutes at a slow rate); as SIGTERM, only what is
            # on the wire finishes. A second Ctrl-C stops at once, as a crash would.
            loop.add_signal_handler(signal.SIGINT, self._interrupt)
        return terminate

    def _interrupt(self) -> None:
        """Ctrl-C: stop as for SIGTERM, then end as Ctrl-C does; a second time, at once."""
        if self.interrupted:
            raise KeyboardInterrupt
        self.interrupted = True
        self._terminate()

    def _make_pool(self) -> BuildPool:
        spec = message_spec(self.campaign)
        if self.factory is None:
            self.check()
        assert self.factory is not None  # noqa: S101  # made by check()
        keys, local_factory = self.keys, self.factory
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
            self._read_units,
            self._store_file(),
        )

    def _store_file(self) -> tuple[str, int] | None:
        """The SQLite file (and campaign) whose units a build worker can read; not a server's."""
        dialect, target = normalise_url(self.db.url)
        if dialect != "sqlite" or target == ":memory:":
            return None
        return str(Path(target).expanduser().resolve()), self.campaign.id

    def _read_units(self, ids: list[int]) -> dict[int, list[claimed_units.UnitToSend]]:
        """Units of jobs built in this process that came without them (on the loop's thread)."""
        return claimed_units.read(self.db.query, self.campaign.id, ids)

    def _finish(self, stopped: str) -> SendReport:
        cid = self.campaign.id
        counts = send_lock.finish(self.db, cid, self.worker_id, self.sent_now, stopped)
        self.locked = False
        return SendReport(
            cid, counts, self.sent_now, time.monotonic() - self.started, stopped, counts["in_doubt"]
        )

    # -- producing ---------------------------------------------------------------------

    def _window_wait(self) -> float:
        """Seconds until the send window opens (0 when open or when there is none)."""
        if not self.options.respect_window:
            return 0.0
        now = dt.datetime.now(dt.UTC)
        return (window_opens(self.campaign.spec.limits, now) - now).total_seconds()

    def _claim_times(self) -> tuple[str, str]:
        """Now, and when the lease of deliveries claimed now runs out."""
        return utcnow_iso(), (
            utcnow() + dt.timedelta(seconds=send_lock.LEASE_SECONDS * 10)
        ).isoformat()

    async def _produce(self) -> None:
        # Claimed messages not yet on the wire: enough to keep the connections and the build
        # workers busy, few enough that memory does not grow with the campaign.
        room = self.options.claim_size * 2
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
                if self.held:
                    self._hold_back_claimed(claim)
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

    def _schedule(self, deliveries: list[Delivery], built: list[Outcome]) -> None:
        add = self.scheduler.add
        for d, b in zip(deliveries, built, strict=True):
            if isinstance(b, Unbuildable):
                self._failed(d, b.reason)  # its units' data: the others still go
                continue
            if isinstance(b, Suppressed):
                self._outcome_suppressed(d)  # every unit it names was suppressed since
                continue
            if self.held and (hold := self._hold(d.domain)) is not None:
                self._hold_back([d], hold)  # its domain was throttled while it was built
                continue
            data, message_id, mail_from = b
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
        return send_lock.renew(self.db, self.campaign.id, self.worker_id)

    def _give_back(self, deliveries: Iterable[Delivery]) -> None:
        now = utcnow_iso()
        for d in deliveries:
            self.write(*outcomes.given_back(d.id, now))

    # -- recipient domains the relay throttles -----------------------------------------

    def _hold(self, domain: str) -> tuple[float, str, str] | None:
        """The domain's hold (until, as monotonic and as stored; the reply), if it holds now."""
        hold = self.held.get(domain)
        if hold is not None and hold[0] <= time.monotonic():
            del self.held[domain]
            return None
        return hold

    def _hold_back(self, deliveries: Iterable[Delivery], hold: tuple[float, str, str]) -> None:
        """Deferred until the hold of their domain ends, no attempt counted: nothing went out."""
        now = self.now_iso()
        _, until, reply = hold
        for d in deliveries:
            self.write(*outcomes.held_back(d.id, until, reply, self.worker_id, now))

    def _hold_back_claimed(self, claim: Claim) -> None:
        """Take the claimed deliveries of held domains out of the claim, before they are built."""
        keep: list[int] = []
        for i, d in enumerate(claim.deliveries):
            hold = self._hold(d.domain)
            if hold is None:
                keep.append(i)
            else:
                self._hold_back([d], hold)
        if len(keep) < len(claim.deliveries):
            claim.deliveries = [claim.deliveries[i] for i in keep]
            claim.jobs = [claim.jobs[i] for i in keep]

    def _domain_throttled(self, item: Item, outcome: SendOutcome) -> None:
        """The relay throttled the item's domain: the domain waits, the other domains go on.

        Its wait starts at the first retry's and doubles each time the domain is throttled
        again before it takes a message; the messages to it waiting here are held back with
        it. Throttles at one domain after another with nothing taken between are no domain's
        limit but the relay's trouble, and count as such (each domain once).
        """
        domain = item.domain
        if domain not in self.throttled_in_a_row:
            self.throttled_in_a_row.add(domain)
            self._relay_troubled(outcome)
        if self.stopping == "relay" or self._hold(domain) is not None:
            return  # the run stops, or the domain is held already (this message was on the wire)
        options = self.options
        level = self.throttles.get(domain, 0)
        self.throttles[domain] = level + 1
        seconds = min(options.retry_max_seconds, options.retry_base_seconds * 2**level)
        until = iso(utcnow() + dt.timedelta(seconds=seconds))
        hold = self.held[domain] = (time.monotonic() + seconds, until, str(outcome.reply))
        self._hold_back([i.delivery for i in self.scheduler.withdraw(domain)], hold)

    def _relay_fine(self) -> None:
        """The relay took a message, or answered about the recipient alone."""
        self.relay_troubles = 0
        if self.throttled_in_a_row:
            self.throttled_in_a_row.clear()

    # -- delivering ------------------------------------------------------------------

    async def _connection_worker(self, number: int) -> None:
        conn: SmtpConnection | None = None
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
                    if not has_token and (wait := bucket.try_take()) > 0:
                        while wait > 0 and not self.stopping:
                            await self._pause(wait)
                            wait = bucket.try_take()
                        if self.stopping:
                            # Stopped (Ctrl-C, a pause) while it waited for its turn under
                            # the rate: it has not gone out, and goes back to the queue.
                            self._give_back([item.delivery])
                            return
                    if conn is None or conn.closed:
                        conn = await self._connect(item)
                        if conn is None:
                            return  # the relay cannot be used, or the run stops
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
                    except (ValueError, _StoppedBeforeDot) as e:
                        if self._not_sent(delivery, e, ahead):
                            return
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

    def _not_sent(
        self, delivery: Delivery, error: Exception, ahead: tuple[Item, str, bool] | None
    ) -> bool:
        """A message that did not go out: True when the connection is to stop.

        A ValueError: the address or message cannot be sent over SMTP, and the delivery fails.
        _StoppedBeforeDot: stopped (a pause, Ctrl-C) while it waited for its domain's turn;
        the connection was dropped instead of its dot, so it goes back to the queue, its mark
        undone, and so does the next message, whose envelope would have gone with the dot
        (the caller's cleanup releases its place).
        """
        if isinstance(error, ValueError):
            self._failed(delivery, str(error))
            return False
        self.write(*outcomes.unmarked(delivery.id, self.worker_id, self.now_iso()))
        if ahead is not None:
            self._give_back([ahead[0].delivery])
        return True

    async def _connect(self, item: Item) -> SmtpConnection | None:
        """A new connection; None, with the item given back, when the run is to stop.

        A connection that cannot be made is the relay's problem, not the message's: the item
        waits, unchanged, while the connection is tried again a few times (a relay that
        restarts), then the whole run stops with the reason (a wrong port or TLS setting, a
        relay that is down), leaving every delivery as it was for the next run.
        """
        options = self.options
        reason = ""
        for attempt in range(options.relay_tries):
            if self.stopping:
                self._give_back([item.delivery])
                return None
            try:
                return await SmtpConnection.open(self.relay)
            except SmtpConnectError as e:
                if e.reply is not None and e.reply.code >= 500:
                    # The relay refuses us (login, TLS policy): retrying would not help. Its
                    # reason, with the relay's own reply as the relay wrote it.
                    self._relay_unusable(item, self._refuses(e.reason))
                    return None
                # Without the relay (the line names it once), still a Text: the console says
                # it in its own language.
                reason = e.reason
            except VarselError as e:
                reason = self._unnamed(e.message)
            if attempt + 1 < options.relay_tries:
                await self._pause(options.relay_retry_seconds * 2**attempt)
        self._relay_unusable(
            item,
            Text(
                self.RELAY_UNUSABLE,
                relay=self.relay.redacted(),
                reason=reason,
                tries=options.relay_tries,
            ),
        )
        return None

    def _unnamed(self, reason: str) -> str:
        """An error without the relay it begins with, if it does: the line names it once."""
        where = self.relay.redacted()
        for prefix in (f"{where}: ", f"{where} "):
            if reason.startswith(prefix):
                return reason.removeprefix(prefix)
        return reason  # as it is: a Text keeps its message id

    async def _pause(self, seconds: float) -> None:
        """Sleep, but wake within a tenth of a second when the run stops."""
        loop = asyncio.get_running_loop()
        end = loop.time() + seconds
        while not self.stopping and (left := end - loop.time()) > 0:
            await asyncio.sleep(min(left, 0.1))

    def _refuses(self, reply: str) -> str:
        """Why the run stops when the relay refuses to send for us at all."""
        return Text(
            "e-posttjeneren %(relay)s avviser utsendelsen: %(reply)s",
            relay=self.relay.redacted(),
            reply=reply,
        )

    def _relay_unusable(self, item: Item | None, why: str) -> None:
        """Stop the run with the reason: the relay cannot take messages; the item waits."""
        if self.fatal is None:
            self.fatal = why
        self.stopping = "relay"
        self.scheduler.close()
        if item is not None:
            self._give_back([item.delivery])

    def _relay_troubled(self, outcome: SendOutcome) -> None:
        """One more transaction the relay kept back; enough in a row stop the run."""
        self.relay_troubles += 1
        tries = self.options.relay_tries + self.options.connections
        if self.relay_troubles < tries:
            return
        where = self.relay.redacted()
        reason = str(outcome.reply) if outcome.reply is not None else outcome.error or ""
        self._relay_unusable(
            None, Text(self.RELAY_UNUSABLE, relay=where, reason=reason, tries=self.relay_troubles)
        )

    async def _before_dot(self, delivery_id: int, gate: TokenBucket) -> None:
        """What has to happen before a message's final dot goes out, in this order.

        The recipient domain's turn first: at a slow domain's rate it can be a minute away,
        and a crash while it waits leaves the delivery without its mark, to be queued again
        rather than put in doubt. Then the durable mark (a crash after it leaves the delivery
        in doubt, never sent unrecorded), the domain's token promised to this message while
        the mark is committed; then the token taken, so that the domain's rate holds for the
        dots as the recipient's server sees them, however long the commit took; then the last
        checks (`_dot_going`), with nothing to wait for between them and the write.
        """
        await self._wait_for(gate.turn)
        try:
            await self._data_started(delivery_id)
        finally:
            gate.end_turn()
        # The promised token is there unless the commit outlasted a worker's hold of its
        # grant (shared_limits.HOLD): then the next is waited for, the mark written.
        await self._wait_for(gate.try_take)
        self._dot_going(delivery_id)

    async def _wait_for(self, turn: Callable[[], float]) -> None:
        """Wait until `turn` returns 0; a stop (pause, Ctrl-C, SIGTERM) does not wait, and the
        dot is not written."""
        wait = turn()
        while wait > 0:
            if self.stopping:
                raise _StoppedBeforeDot
            await self._pause(wait)
            wait = turn()

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
        refused_alike = False
        if outcome.kind is ReplyKind.ACCEPTED:
            self.sent_now += 1
            self._relay_fine()
            if self.refusals:
                self.refusals = []
            if self.throttles:
                self.throttles.pop(item.domain, None)
        elif outcome.kind is ReplyKind.PERMANENT and not outcome.sender_refused:
            self._relay_fine()
            refused_alike = self._refused_alike(item, outcome)
        elif outcome.sender_refused and outcome.kind is ReplyKind.PERMANENT:
            # A refused MAIL FROM is about our sender, the same for every message: failing
            # this delivery would fail them all. The run stops; the delivery waits as it was.
            assert outcome.reply is not None  # noqa: S101  # a refusal is a reply
            self._relay_unusable(item, self._refuses(str(outcome.reply)))
            return
        elif outcome.domain_throttled:
            # Deferred as usual, and its domain waits: a relay's limit per recipient domain.
            self._domain_throttled(item, outcome)
        elif outcome.relay_trouble:
            # Deferred as usual (a message that upsets the relay must not come straight back),
            # but counted: the relay, not the recipient, is in trouble.
            self._relay_troubled(outcome)
        else:
            self._relay_fine()
            if self.refusals:
                self.refusals = []
        options = self.options
        now = self.now_iso()
        self.write(
            *outcomes.after_send(
                item.delivery,
                item.message_id,
                outcome,
                now,
                deadline_hours=options.deadline_hours,
                retry_base_seconds=options.retry_base_seconds,
                retry_max_seconds=options.retry_max_seconds,
            )
        )
        if refused_alike:
            # After their failures, in the same order of commits: back to the queue.
            self._take_back(self.refusals, now)
            self.refusals = []

    def _take_back(self, delivery_ids: list[int], now: str) -> None:
        """Refusals that turned out to be the relay's: failed → queued, no attempt counted."""
        for delivery_id in delivery_ids:
            self.write(*outcomes.taken_back(delivery_id, now))

    def _refused_alike(self, item: Item, outcome: SendOutcome) -> bool:
        """Count a permanent refusal; True (the run stopping) when enough in a row, across
        domains, said the same thing about something other than the address."""
        reply = outcome.reply
        assert reply is not None  # noqa: S101  # permanent: a reply
        if reply.enhanced is not None and reply.enhanced.startswith(("5.1.", "5.2.", "5.4.")):
            # The mailbox, the address or its domain: the recipient's, failed alone.
            self.refusals = []
            return False
        words = reply_words.hidden(str(reply))
        if self.stopping == "relay" and words == self.refusal_words:
            self.refusals = [item.delivery.id]  # on the wire as the run stopped: the same
            return True
        if words != self.refusal_words or not self.refusals:
            self.refusal_words, self.refusals, self.refusal_domains = words, [], set()
        self.refusals.append(item.delivery.id)
        self.refusal_domains.add(item.domain)
        limit = self.options.relay_tries + self.options.connections
        if len(self.refusals) < limit or len(self.refusal_domains) < 2:
            return False
        self._relay_unusable(None, self._refuses(str(reply)))
        return True


def send_campaign(
    db: Database,
    settings: Settings,
    campaign_id: int,
    *,
    relay: RelayConfig | None = None,
    options: SendOptions | None = None,
    progress: Callable[[dict[str, int], float], None] | None = None,
    on_start: Callable[[Database], None] | None = None,
) -> SendReport:
    """Send a campaign until every delivery is final, or it is paused or cancelled.

    `on_start` runs in the transaction that locks the campaign (raising refuses the send).
    """
    relay = relay or RelayConfig.from_url(settings.smtp_url)
    return Sender(db, settings, campaign_id, relay, options, progress, on_start).run()
