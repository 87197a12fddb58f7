"""Rate limits kept in the store, so they hold across workers, hosts and restarts.

Each limit counts hits in fixed windows keyed by (scope, key) and judges a request by a
sliding estimate: the current window's hits plus the previous window's, weighted by how much
of it still overlaps the last `window` seconds. That closes the burst a plain fixed window
allows at its edge, with one row per key and window.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import hmac
import ipaddress
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from varsel.db import Database

GLOBAL = "*"  # the key of a limit that counts everyone together


@dataclass(frozen=True)
class Limit:
    """At most `hits` per `window` seconds, for each key of a scope."""

    scope: str
    hits: int
    window: int


@dataclass(frozen=True)
class Decision:
    """The answer to one request: allowed or not, and when to try again."""

    allowed: bool
    scope: str
    estimate: float  # hits in the last window, by the sliding estimate, this one included
    retry_after: int  # seconds until the estimate falls below the limit (0 when allowed)


@functools.lru_cache(maxsize=4096)  # a visitor asks again and again: hash each once
def hashed_key(secret: bytes, value: str) -> str:
    """A keyed hash of an IP or e-mail address: the store never holds the value itself."""
    return hmac.new(secret, value.encode("utf-8"), hashlib.sha256).hexdigest()[:32]


@functools.lru_cache(maxsize=4096)
def visitor_network(address: str) -> str:
    """What a per-visitor limit counts by: an IPv4 address itself, an IPv6 address's /64.

    Anyone given a /64 (the usual smallest IPv6 assignment) may use any of its 2^64 addresses,
    so counting full IPv6 addresses would give them a fresh limit per request. An IPv4 address
    written as IPv6 (::ffff:192.0.2.1) is the IPv4 address; text that is no address is itself.
    """
    if ":" not in address:
        return address  # IPv4 (or "unknown"): the common case, without parsing
    try:
        ip = ipaddress.IPv6Address(address)
    except ValueError:
        return address
    if ip.ipv4_mapped is not None:
        return str(ip.ipv4_mapped)
    return str(ipaddress.IPv6Network((int(ip) >> 64 << 64, 64)))


# Hits of windows that have ended, by (store, scope, key, window start): no request counts in
# a past window any more, so each is read from the store once per process, not per request.
_ended: dict[tuple[str, str, str, int], int] = {}
_ENDED_MAX = 50_000  # entries kept before starting afresh (a new window needs them no more)

Counter = tuple[str, str, int]  # (scope, key, window start): one row of rate_limits


def _start(limit: Limit, now: float) -> int:
    return int(now) - int(now) % limit.window


def _judge(limit: Limit, start: int, hits: int, previous: int, now: float) -> Decision:
    # The current window's hits, this one included, and the previous window's, weighted by
    # how much of it still overlaps the last `window` seconds.
    overlap = 1.0 - (now - start) / limit.window
    estimate = hits + previous * overlap
    if estimate <= limit.hits:
        return Decision(True, limit.scope, estimate, 0)
    return Decision(False, limit.scope, estimate, _wait(limit, start, hits, previous, now))


def _wait(limit: Limit, start: int, hits: int, previous: int, now: float) -> int:
    """Whole seconds after which one more request is allowed, if none comes before it.

    What is counted stays counted (a refused request too). Later in this window the next
    request adds one to `hits` while the previous window's weight falls; in the next window
    this window's `hits` are the previous ones and fall the same way, and after that nothing
    is left. The visitor is told a time that works, not the end of the window.
    """
    window = limit.window
    end = start + window
    when: float = end + window  # by then both windows have slid out
    room = limit.hits - hits - 1  # what the previous window may weigh for the next request
    if room >= 0 and previous:
        when = start + window * (1.0 - room / previous)
    elif room >= 0:
        when = now
    if when >= end:
        # Not in this window: in the next one, 1 + hits * (1 - (t - end) / window) <= limit.
        room = limit.hits - 1
        when = end if hits <= room else end + window * (1.0 - room / hits)
    wait = max(1, math.ceil(when - now))
    # Whole seconds, and a float's last bit: the next request at now + wait must pass.
    while wait < 2 * window and not _passes(limit, start, hits, previous, now + wait):
        wait += 1
    return wait


def _passes(limit: Limit, start: int, hits: int, previous: int, at: float) -> bool:
    """Would one more request at `at` be allowed, with nothing else counted meanwhile?"""
    if at < start + limit.window:
        overlap = 1.0 - (at - start) / limit.window
        return hits + 1 + previous * overlap <= limit.hits
    if at < start + 2 * limit.window:
        overlap = 1.0 - (at - start - limit.window) / limit.window
        return 1 + hits * overlap <= limit.hits
    return limit.hits >= 1


_UPSERT = (
    "INSERT INTO rate_limits (scope, key, window_start, hits, expires_at) VALUES {rows} "
    "ON CONFLICT (scope, key, window_start) "
    "DO UPDATE SET hits = rate_limits.hits + excluded.hits "
    "RETURNING scope, key, window_start, hits"
)
# A join with the wanted rows, not a row-value IN: SQLite scans the table for the latter.
_PREVIOUS = (
    "WITH wanted (scope, key, window_start) AS (VALUES {rows}) "
    "SELECT r.scope, r.key, r.window_start, r.hits FROM wanted w JOIN rate_limits r "
    "ON r.scope = w.scope AND r.key = w.key AND r.window_start = w.window_start"
)


def consume(
    db: Database, checks: Sequence[tuple[Limit, str]], *, now: float | None = None
) -> Decision:
    """Count one request against each (limit, key) in order; the first refusal stops counting.

    Refused requests count too, so hammering keeps a client out rather than letting it in
    again the moment the window slides. Joins the caller's transaction when there is one.
    """
    return consume_many(db, [checks], now=now)[0]


def consume_many(
    db: Database, requests: Sequence[Sequence[tuple[Limit, str]]], *, now: float | None = None
) -> list[Decision]:
    """consume() for several requests, in order, as if each had been counted alone.

    Joins the caller's transaction when there is one.
    """
    with contextlib.nullcontext() if db.in_transaction else db.transaction():
        return count(db, requests, now=now).decisions()


def count(
    db: Database, requests: Sequence[Sequence[tuple[Limit, str]]], *, now: float | None = None
) -> Counting:
    """Start counting requests: the store is asked, and Counting.decisions() gives the answers.

    Every hit of every request goes to its counter in one upsert, as if no request were
    refused, and the previous windows are asked for in one query; no answer is waited for
    here, so a caller can send other statements first (on PostgreSQL, in one round trip).
    decisions() then judges the requests in turn, as consume() would one after another, and
    takes back the hits of checks a request never reached because an earlier one refused
    it. Both must run in the same transaction: until it commits, the counters' rows are
    locked, so no one else sees a count that is taken back.
    """
    if not db.in_transaction:
        raise RuntimeError("ratelimit.count() needs a transaction")
    at = time.time() if now is None else now
    # Each check's counter and the counter of its previous window, worked out once a key.
    checked: dict[tuple[str, int, int, str], Check] = {}  # by the limit's fields and key
    hits: dict[Counter, int] = {}  # hits sent per counter
    expires: dict[Counter, int] = {}
    previous: dict[Counter, int | None] = {}
    plans = []
    for checks in requests:
        plan = []
        for limit, key in checks:
            found = (limit.scope, limit.hits, limit.window, key)
            check = checked.get(found)
            if check is None:
                check = checked[found] = Check(limit, key, at)
                counter = check.counter
                if counter not in hits:
                    hits[counter] = 0
                expires[counter] = max(expires.get(counter, 0), check.start + 2 * limit.window)
                previous[check.before] = _ended.get((db.url, *check.before))
            hits[check.counter] += 1
            plan.append(check)
        plans.append(plan)
    # In one order everywhere, so that two workers' batches lock the rows they share in the
    # same order and never deadlock on PostgreSQL.
    rows = sorted((*c, n, expires[c]) for c, n in hits.items())
    totals = _send(db, _UPSERT, rows)
    unknown = [c for c, known in previous.items() if known is None]
    ended = _send(db, _PREVIOUS, unknown)
    return Counting(db, plans, at, hits, previous, totals, ended)


class Check:
    """One (limit, key) of a request, with its counter now and in the previous window."""

    __slots__ = ("before", "counter", "limit", "start")

    def __init__(self, limit: Limit, key: str, now: float) -> None:
        self.limit = limit
        self.start = start = _start(limit, now)
        self.counter: Counter = (limit.scope, key, start)
        self.before: Counter = (limit.scope, key, start - limit.window)


def _send(db: Database, template: str, rows: Sequence[tuple[object, ...]]) -> Any:
    """Send a statement with a VALUES row for each of rows; its cursor, or None for no rows."""
    if not rows:
        return None
    sql = _with_rows(template, len(rows), len(rows[0]))
    # Prepared on PostgreSQL: a text per number of rows, the same on every batch of that size.
    return db.execute(sql, [v for r in rows for v in r], prepare=True)


@functools.lru_cache(maxsize=256)
def _with_rows(template: str, rows: int, columns: int) -> str:
    marks = "(" + ", ".join("?" for _ in range(columns)) + ")"
    return template.format(rows=", ".join(marks for _ in range(rows)))


@dataclass
class Counting:
    """Requests whose hits are on their way to the store (see count())."""

    db: Database
    plans: list[list[Check]]  # each request's checks, in order
    at: float
    hits: dict[Counter, int]  # hits sent per counter
    previous: dict[Counter, int | None]  # hits of ended windows, None until the store says
    totals: Any  # the upsert's cursor
    ended: Any  # the query's cursor for the previous windows not known yet, or None

    def decisions(self) -> list[Decision]:
        """Each request's decision; takes back the hits of checks never reached."""
        sent = self.hits
        # Each counter's hits before this batch; the store gives them with this batch's.
        running = {c: total - sent[c] for c, total in _rows(self.totals)}
        previous: dict[Counter, int] = {}
        read = dict(_rows(self.ended)) if self.ended is not None else {}
        for counter, known in self.previous.items():
            if known is not None:
                previous[counter] = known
                continue
            # No row: nobody came in that window.
            previous[counter] = read.get(counter, 0)
            if len(_ended) >= _ENDED_MAX:
                _ended.clear()
            _ended[(self.db.url, *counter)] = previous[counter]
        unused = dict(sent)
        at = self.at
        decisions = []
        for plan in self.plans:
            decision = _ALLOWED
            for check in plan:
                counter = check.counter
                hits = running[counter] = running[counter] + 1
                unused[counter] -= 1
                decision = _judge(check.limit, check.start, hits, previous[check.before], at)
                if not decision.allowed:
                    break
            decisions.append(decision)
        for counter, n in unused.items():
            if n:
                self.db.execute(
                    "UPDATE rate_limits SET hits = hits - ? "
                    "WHERE scope = ? AND key = ? AND window_start = ?",
                    (n, *counter),
                )
        return decisions


_ALLOWED = Decision(True, "", 0.0, 0)  # a request with no checks


def _rows(cursor: Any) -> list[tuple[Counter, int]]:
    if cursor is None:
        return []
    # The store gives the columns as they were written: text, text, integer, integer.
    return [((scope, key, start), hits) for scope, key, start, hits in cursor.fetchall()]


def purge(db: Database, *, now: float | None = None) -> int:
    """Delete counters no limit looks at any more; returns how many."""
    at = int(time.time() if now is None else now)
    with db.transaction():
        return int(db.execute("DELETE FROM rate_limits WHERE expires_at <= ?", (at,)).rowcount)
