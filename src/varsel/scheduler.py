"""Messages waiting to go, by recipient domain, handed out within per-domain limits."""

from __future__ import annotations

import asyncio
import collections
import time
from dataclasses import dataclass

from varsel.outbox import Delivery


class TokenBucket:
    """At most rate events per second on average, bursts up to capacity."""

    def __init__(self, rate: float, capacity: float | None = None) -> None:
        self.rate = rate
        self.capacity = capacity if capacity is not None else max(1.0, rate)
        self.tokens = self.capacity
        self.stamp = time.monotonic()
        # Tokens promised to callers of turn() and not yet taken: others wait behind them.
        self.promised = 0

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

    def full(self) -> bool:
        """Whether the bucket holds all it can: as good as a new one."""
        self._refill()
        return self.tokens >= self.capacity

    def try_take(self) -> float:
        """Take a token if one is there (returns 0), else the seconds until one is."""
        self._refill()
        if self.tokens >= 1:
            self.tokens -= 1
            return 0.0
        return (1 - self.tokens) / self.rate

    def turn(self) -> float:
        """Promise the next token to the caller (returns 0), else the seconds until one is free.

        The token stays in the bucket until the caller takes it (end_turn, then try_take), so
        the rate holds for the moment it is spent; no one else's turn comes before then.
        """
        self._refill()
        if self.tokens - self.promised >= 1:
            self.promised += 1
            return 0.0
        return (1 + self.promised - self.tokens) / self.rate

    def end_turn(self) -> None:
        """Give up a promise of turn(): its token is free for whoever takes it first."""
        self.promised -= 1

    async def acquire(self) -> None:
        while (wait := self.try_take()) > 0:
            await asyncio.sleep(wait)


@dataclass(slots=True)
class Item:
    """A built message waiting for a connection."""

    delivery: Delivery
    data: bytes
    message_id: str | None
    domain: str
    mail_from: str = ""  # the envelope sender (VERP), made with the message


# An idle connection looks for a message at least this often; add() and release() wake it
# as soon as one may go.
_IDLE_LOOK = 1.0


def domain_capacity(rate: float) -> float:
    """A domain's bucket holds a second's messages, at least one and at most ten."""
    return max(1.0, min(rate, 10.0))


def bucket_memory(per_minute: float) -> float:
    """Seconds a domain's bucket remembers what it spent: after them it is full again."""
    rate = per_minute / 60.0
    return domain_capacity(rate) / rate


class Scheduler:
    """Messages waiting to go, by recipient domain, handed out within per-domain limits."""

    def __init__(self, per_domain_concurrency: int, per_domain_per_minute: int) -> None:
        self.concurrency = per_domain_concurrency
        self.per_minute = per_domain_per_minute
        self.queues: dict[str, collections.deque[Item]] = {}
        self.active: collections.Counter[str] = collections.Counter()
        self.buckets: dict[str, TokenBucket] = {}
        # Only domains that have messages waiting and room for one more connection take turns:
        # a campaign reaches thousands of domains, and most of them are idle at any moment.
        self.ready: collections.deque[str] = collections.deque()
        self.listed: set[str] = set()
        self.waiters: collections.deque[asyncio.Future[None]] = collections.deque()
        self.closed = False
        self.size = 0
        self.sweep_at = _SWEEP_FROM
        # Tokens a domain's new bucket starts without: what an earlier run of the campaign
        # spent on it recently (seed()), so that a resumed send does not burst past the limit.
        self.spent: dict[str, int] = {}
        self.spent_at = 0.0

    def add(self, item: Item) -> None:
        domain = item.domain
        queue = self.queues.get(domain)
        if queue is None:
            if len(self.queues) >= self.sweep_at:
                self._sweep()
            queue = self.queues[domain] = collections.deque()
            self.buckets[domain] = self._bucket(domain)
        queue.append(item)
        self.size += 1
        self._list(domain)

    def seed(self, spent: dict[str, int]) -> None:
        """The tokens spent per domain in the last bucket_memory() seconds, by an earlier run."""
        self.spent, self.spent_at = spent, time.monotonic()

    def _bucket(self, domain: str) -> TokenBucket:
        """The rate limit of a domain seen for the first time (or again after a sweep)."""
        rate = self.per_minute / 60.0
        bucket = TokenBucket(rate, domain_capacity(rate))
        spent = self.spent.pop(domain, 0)
        if spent:
            # A bucket that never stopped would hold at least this many now (it was never
            # below empty, and refills its capacity within its memory): never more generous.
            bucket.tokens = max(0.0, bucket.capacity - spent)
            bucket.stamp = self.spent_at
        return bucket

    def close(self) -> None:
        self.closed = True
        while self.waiters:
            self._wake()

    def drain(self) -> list[Item]:
        """Take every waiting item out (to give them back to the outbox)."""
        items = [i for q in self.queues.values() for i in q]
        for q in self.queues.values():
            q.clear()
        self.size = 0
        return items

    def withdraw(self, domain: str) -> list[Item]:
        """Take the messages waiting for one domain out (to hold them back)."""
        queue = self.queues.get(domain)
        if not queue:
            return []
        items = list(queue)
        queue.clear()
        self.size -= len(items)
        return items

    def take(self) -> Item | None:
        """A message some domain may take now, if there is one (no waiting)."""
        return None if self.closed else self._take()

    async def next(self) -> Item | None:
        """The next message some domain may take now; None once closed."""
        loop = asyncio.get_running_loop()
        while not self.closed:
            item = self._take()
            if item is not None:
                return item
            # One future per idle connection, woken one at a time as messages come: waking
            # every connection for every message would cost a scan each.
            waiter = loop.create_future()
            self.waiters.append(waiter)
            timer = loop.call_later(_IDLE_LOOK, _resolve, waiter)
            try:
                await waiter
            finally:
                timer.cancel()
                # Waiters whose time ran out stay queued until a wake passes them: drop them,
                # so that a long wait (a closed send window) does not pile them up.
                while self.waiters and self.waiters[0].done():
                    self.waiters.popleft()
        return None

    def _take(self) -> Item | None:
        """A message that may go now, or None."""
        ready = self.ready
        for _ in range(len(ready)):
            domain = ready.popleft()
            queue = self.queues[domain]
            if not queue or self.active[domain] >= self.concurrency:
                self.listed.discard(domain)
                continue
            # The domain's rate is not checked here but at the final dot (gate()): a token
            # taken now would be spent whenever the message's durable mark is committed, and
            # stalled commits would let messages taken apart arrive together.
            self.active[domain] += 1
            self.size -= 1
            item = queue.popleft()
            if queue and self.active[domain] < self.concurrency:
                ready.append(domain)  # to the back: domains take turns
            else:
                self.listed.discard(domain)
            if ready:
                self._wake()  # pass the turn on: a domain that was listed once may hold more
            return item
        return None

    def gate(self, domain: str) -> TokenBucket:
        """The domain's rate limit: each message waits for its turn before its durable mark,
        and takes the token just before its dot."""
        return self.buckets[domain]

    def release(self, domain: str) -> None:
        self.active[domain] -= 1
        self._list(domain)

    def _list(self, domain: str) -> None:
        """Give a domain its turn again if it has messages waiting and room for them."""
        if (
            domain not in self.listed
            and self.queues[domain]
            and self.active[domain] < self.concurrency
        ):
            self.listed.add(domain)
            self.ready.append(domain)
            self._wake()

    def _sweep(self) -> None:
        """Forget the domains that are idle and whose rate limit has recovered."""
        # A campaign reaches tens of thousands of domains, most of them once: their queues
        # and buckets would otherwise grow with the campaign. A full bucket is as good as
        # the new one the domain gets if it comes back.
        for domain in [d for d, q in self.queues.items() if not q and d not in self.listed]:
            if not self.active[domain] and self.buckets[domain].full():
                del self.queues[domain], self.buckets[domain]
                self.active.pop(domain, None)
        self.sweep_at = max(_SWEEP_FROM, 2 * len(self.queues))  # amortised: O(1) per domain

    def _wake(self) -> None:
        while self.waiters:
            waiter = self.waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return


_SWEEP_FROM = 1024  # domains the scheduler knows before it forgets idle ones


def _resolve(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)
