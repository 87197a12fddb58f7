"""Rate limits that hold across every worker together: token buckets kept in PostgreSQL.

One row per limited key (`global`, `campaign:ID`, `domain:NAME`) keeps the tokens left at a
time stamp of the store's clock; a grant refills the bucket for the time since (at its rate,
up to its capacity) and takes whole tokens out, under a row lock. Every worker sees the same
bucket and the same clock, so W workers together never pass rate × seconds + capacity, and the
hosts' clocks do not matter.

A worker does not ask per message: it asks for a small grant (at most one burst, and no more
than it has messages waiting for) for every key it lacks tokens for, in one transaction, at
most every `interval` seconds. A token it was granted and did not use within `HOLD` seconds
is lost, never returned: the limit errs on the side of sending less. Without that expiry a
worker held up elsewhere (another limit, a slow connection) could spend an old grant at the
same moment as the others spend the refill, and W workers together would pass the limit by up
to W grants; with it, any stretch of Δ seconds sees at most capacity + rate × (Δ + HOLD).
Fairness follows from the small grants: each worker takes at most what it can use now, so a
busy worker cannot starve an idle one for longer than one grant, and the bucket's refill is
shared by whoever asks.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from varsel.db import Database
from varsel.scheduler import TokenBucket

UNLIMITED = 1e6  # tokens per second from which a limit is no limit: no row, no round trip
INTERVAL = 0.02  # seconds between two grant requests of one worker, at most 50 per second
HOLD = 0.1  # seconds a worker may keep granted tokens before they are lost


@dataclass(frozen=True)
class Request:
    """Up to `want` tokens of `key`, whose bucket refills at `rate` up to `capacity`."""

    key: str
    want: int
    rate: float
    capacity: float


def grant(db: Database, requests: Sequence[Request], known: set[str]) -> dict[str, int]:
    """Take up to each request's tokens from the shared buckets; returns the whole tokens granted.

    A bucket is made full on its first request. `known` are keys whose rows exist already
    (saves the insert); new ones are added to it.
    """
    ordered = sorted(requests, key=lambda r: r.key)  # one lock order for every worker
    keys = [r.key for r in ordered]
    new = [r for r in ordered if r.key not in known]
    granted: dict[str, int] = {}
    with db.transaction():
        if new:
            db.execute(
                "INSERT INTO send_buckets (key, rate, capacity, tokens, stamp) "
                "SELECT k, r, c, c, extract(epoch FROM clock_timestamp()) "
                "FROM unnest(?::text[], ?::float8[], ?::float8[]) AS t(k, r, c) ORDER BY k "
                "ON CONFLICT (key) DO NOTHING",
                (
                    [r.key for r in new],
                    [float(r.rate) for r in new],
                    [float(r.capacity) for r in new],
                ),
            )
        rows = db.query(
            "SELECT key, rate, capacity, tokens, stamp, extract(epoch FROM clock_timestamp()) "
            "FROM send_buckets WHERE key = ANY(?) ORDER BY key FOR UPDATE",
            (keys,),
        )
        by_key = {r.key: r for r in ordered}
        # A key whose row is gone was purged as full since this worker last asked (see
        # purge_full): none this time, and the next request makes it again, full.
        known.difference_update(set(keys) - {row[0] for row in rows})
        keys = [row[0] for row in rows]
        updates: list[tuple[str, float, float, float, float]] = []
        for key, rate, capacity, tokens, stamp, read_at in rows:
            now = float(read_at)
            request = by_key[key]
            # Refilled at the rate it had since its stamp; the new rate counts from now. A
            # smaller capacity than the row's counts at once: tokens left by a campaign with a
            # larger burst must not be handed out above this one's.
            refilled = float(tokens) + max(0.0, now - float(stamp)) * float(rate)
            have = min(float(capacity), request.capacity, refilled)
            taken = max(0, min(request.want, math.floor(have)))
            granted[key] = taken
            left = min(request.capacity, have - taken)
            updates.append(
                (key, left, max(float(stamp), now), float(request.rate), float(request.capacity))
            )
        db.execute(
            "UPDATE send_buckets AS b SET tokens = t.tokens, stamp = t.stamp, rate = t.rate, "
            "capacity = t.capacity FROM unnest(?::text[], ?::float8[], ?::float8[], "
            "?::float8[], ?::float8[]) AS t(key, tokens, stamp, rate, capacity) "
            "WHERE b.key = t.key",
            tuple(list(column) for column in zip(*updates, strict=True)) if updates else ([],) * 5,
        )
    known.update(keys)
    return granted


def purge_full(db: Database) -> int:
    """Delete the buckets that have refilled to their capacity; returns how many.

    A full bucket is what a missing row becomes on its first request, so deleting one changes
    no limit; without this, every recipient domain of every campaign would keep a row.
    """
    # Only rows no one holds, taken in key order without waiting: grant() locks its rows in
    # key order, and a DELETE locking them in the table's order as it finds them deadlocked
    # with it (a worker died of that in a four-worker test).
    return int(
        db.execute(
            "DELETE FROM send_buckets WHERE key IN (SELECT key FROM send_buckets WHERE tokens + "
            "greatest(0, extract(epoch FROM clock_timestamp()) - stamp) * rate >= capacity "
            "ORDER BY key FOR UPDATE SKIP LOCKED)"
        ).rowcount
    )


class SharedBucket(TokenBucket):
    """The tokens this worker holds of one shared limit, granted from the store."""

    def __init__(
        self,
        limits: SharedLimits,
        key: str,
        rate: float,
        capacity: float,
        demand: Callable[[], int],
    ) -> None:
        super().__init__(rate, max(1.0, capacity))
        self.limits = limits
        self.key = key
        self.demand = demand  # messages waiting for this limit: no grant larger than that
        self.tokens = 0.0
        self.unlimited = rate >= UNLIMITED

    def _refill(self) -> None:
        """No refill (tokens come from grants, never from this host's clock); old ones lapse."""
        if self.tokens and time.monotonic() - self.stamp > HOLD:
            self.tokens = 0.0

    def granted(self, tokens: int) -> None:
        """Tokens from the store, to be spent within HOLD seconds."""
        self._refill()
        self.tokens += tokens
        self.stamp = time.monotonic()

    def try_take(self) -> float:
        """Take a token this worker holds (returns 0), else ask for some; when to look again."""
        if self.limits.error is not None:
            raise self.limits.error  # no grants will come: waiting would hang the send
        if self.unlimited:
            return 0.0
        self._refill()
        if self.tokens >= 1:
            self.tokens -= 1
            return 0.0
        self.limits.need(self)
        return self.limits.interval

    def turn(self) -> float:
        """Promise a token this worker holds to the caller (returns 0), else ask for some."""
        if self.limits.error is not None:
            raise self.limits.error
        if not self.unlimited:
            self._refill()
            if self.tokens - self.promised < 1:
                self.limits.need(self)
                return self.limits.interval
        self.promised += 1
        return 0.0

    def take_if_all(self, others: Sequence[SharedBucket]) -> float:
        """Take one token from this bucket and each of the others, or from none of them."""
        buckets = [self, *others]
        if self.limits.error is not None:
            raise self.limits.error
        for b in buckets:
            b._refill()
        short = [b for b in buckets if not b.unlimited and b.tokens < 1]
        if short:
            for b in short:
                self.limits.need(b)
            return self.limits.interval
        for b in buckets:
            if not b.unlimited:
                b.tokens -= 1
        return 0.0

    def full(self) -> bool:
        """Whether forgetting this bucket loses nothing (it holds no tokens and asks for none)."""
        return self.tokens == 0 and self.limits.wanting.get(self.key) is not self

    def want(self) -> int:
        return max(1, min(int(self.capacity), self.demand()))


class BucketChain(TokenBucket):
    """Several shared limits that every message passes together (campaign and global)."""

    def __init__(self, first: SharedBucket, *rest: SharedBucket) -> None:
        super().__init__(first.rate, first.capacity)
        self.first = first
        self.rest = rest

    def _refill(self) -> None:
        """Nothing: the chained buckets hold the tokens."""

    def try_take(self) -> float:
        return self.first.take_if_all(self.rest)

    def full(self) -> bool:
        return self.first.full() and all(b.full() for b in self.rest)


Grant = Callable[[list[Request]], Awaitable[dict[str, int]]]


class SharedLimits:
    """The task that fetches grants for the shared buckets one worker has run dry."""

    def __init__(self, grant: Grant, interval: float = INTERVAL) -> None:
        self.grant = grant
        self.interval = interval
        self.wanting: dict[str, SharedBucket] = {}
        self.asked = asyncio.Event()
        self.refilled: list[Callable[[], None]] = []  # called after each grant (wake waiters)
        self.grants = 0  # round trips made, for the metrics
        self.error: BaseException | None = None  # why grants stopped coming

    def bucket(
        self, key: str, rate: float, capacity: float, demand: Callable[[], int]
    ) -> SharedBucket:
        """A bucket for a key; its holder keeps it (a scheduler forgets idle domains)."""
        return SharedBucket(self, key, rate, capacity, demand)

    def need(self, bucket: SharedBucket) -> None:
        if bucket.key not in self.wanting:
            self.wanting[bucket.key] = bucket
            self.asked.set()

    async def run(self) -> None:
        """Fetch grants for the buckets that ran dry, at most every `interval` seconds."""
        try:
            await self._serve()
        except Exception as e:
            self.error = e
            for callback in self.refilled:
                callback()  # waiters look again, and see the error
            raise

    async def _serve(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await self.asked.wait()
            self.asked.clear()
            started = loop.time()
            wanted, self.wanting = list(self.wanting.values()), {}
            if wanted:
                requests = [Request(b.key, b.want(), b.rate, b.capacity) for b in wanted]
                granted = await self.grant(requests)
                self.grants += 1
                for b in wanted:
                    b.granted(granted.get(b.key, 0))
                for callback in self.refilled:
                    callback()
            # Whoever still lacks tokens asks again, but not before the interval is over.
            await asyncio.sleep(max(0.0, self.interval - (loop.time() - started)))
